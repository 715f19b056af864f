// Device-file process mappings of the GPU and the NVMe controller (ProcessDesc::memory of kind
// DeviceFile with an offset): the mapping's pgoff is its offset, a peer reading through it at
// offset k gets the device memory's bytes at k, bad offsets are refused, and the workloads'
// regions placed in such mappings (gpu_stream_out's p2p results in the GPU's kernel region,
// nvme_via_nic's nvme_bar over BAR 0, gpu_monitor's p2p counter page, gpu_reduce's peer_vram
// buffer) run exact. Assertions after sc_start().
#include <catch2/catch.hpp>

#include <vector>

#include <systemc>

#include <tlm_utils/tlm_quantumkeeper.h>

#include "models/cpu_mmu/vma.h"
#include "models/platform/gpu_monitor.h"
#include "models/platform/gpu_reduce.h"
#include "models/platform/gpu_stream_out.h"
#include "models/platform/nvme_via_nic.h"
#include "sim/config.h"
#include "tests/unit/devices/gpu_nic_platform.h"
#include "tests/unit/devices/nic_nvme_platform_desc.h"
#include "tests/unit/platform/mapping_desc.h"

using namespace hmmsim;
using namespace hmmsim::test;

namespace {

constexpr std::uint64_t k64K = 64ull << 10;

/// Device-file mapping `name` of `device`, `bytes` long, from file offset `offset`.
MappingDesc deviceFile(const std::string& name, const std::string& device, std::uint64_t bytes,
                       std::uint64_t offset) {
  MappingDesc m = mapping(name, MapKind::DeviceFile, bytes);
  m.device = device;
  m.offset = offset;
  return m;
}

/// `n` bytes of a pattern seeded with `seed`.
std::vector<std::uint8_t> pattern(std::size_t n, std::uint8_t seed) {
  std::vector<std::uint8_t> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::uint8_t>(seed + i * 7 + (i >> 9));
  return v;
}

/// What the NIC (endpoint `nic`) reads through process `proc`'s mapping `m` with its importer
/// (one ImporterDma over the mapping, as the NIC's driver registers it), after sc_start().
std::vector<std::uint8_t> readThroughNic(Platform& p, const std::string& proc, const ProcessMapping& m,
                                         const std::string& nic, bool& ok) {
  HmmDmaImporter imp;
  imp.device = &p.pci(nic);
  imp.dma = &p.dma();
  ImporterDma dma("nic_reader", p.process(proc), imp, p.fabric().engine(nic), m.start, m.bytes >> kPageShift,
                  {}, &p.checker(), &p.directory());
  std::vector<std::uint8_t> got(m.bytes);
  sc_core::sc_spawn([&] {
    tlm_utils::tlm_quantumkeeper qk;
    qk.reset();
    ok = dma.read(m.start, m.bytes, got.data(), qk).ok();
    qk.sync();
    dma.mirror().unmapAll();
  });
  sc_core::sc_start();
  return got;
}

}  // namespace

TEST_CASE("a GPU device-file mapping at offset k reads the VRAM bytes from k through a peer") {
  PlatformDesc d = gpuNicMachine(smallGpu());
  const std::uint64_t k = (8ull << 20) + 12 * 4096;
  d.processes.front().memory = {deviceFile("vram_k", "gpu1", k64K, k)};
  Platform p("m", d, builtinDevices());
  const Pa vramPa = p.deviceAs<GpuPlatformDevice>("gpu1").gpu().params().vramPa;
  const std::vector<std::uint8_t> atK = pattern(k64K, 3), at0 = pattern(k64K, 101);
  p.physMem().write(vramPa + k, atK.data(), k64K);
  p.physMem().write(vramPa, at0.data(), k64K);  // what a mapping from offset 0 would read
  const ProcessMapping* m = p.mapping("proc0", "vram_k");
  REQUIRE(m);
  CHECK(m->offset == k);
  const Vma* vma = p.process("proc0").findVma(m->start);
  REQUIRE(vma);
  CHECK(vma->vmPgoff == k >> kPageShift);                              // the mmap's pgoff is the offset
  CHECK((vma->vmFlags & (VM_IO | VM_PFNMAP)) == (VM_IO | VM_PFNMAP));  // the GPU's special vma
  bool ok = false;
  const std::vector<std::uint8_t> got = readThroughNic(p, "proc0", *m, "nic", ok);
  CHECK(ok);
  CHECK(got == atK);
  CHECK(p.violations().ok());
}

TEST_CASE("an NVMe device-file mapping from the CMB's offset reads the CMB bytes through a peer") {
  PlatformDesc d = nicNvmeDesc();
  const std::uint64_t cmb = NvmeParams{}.cmbOffset;  // 2 MiB into BAR 0
  d.processes.front().memory = {deviceFile("cmb", "nvme", k64K, cmb + 4096)};
  Platform p("m", d, builtinDevices());
  const Pa bar0 = p.pci("nvme").bar(0).cpu;
  const std::vector<std::uint8_t> bytes = pattern(k64K, 9);
  p.physMem().write(bar0 + cmb + 4096, bytes.data(), k64K);
  const ProcessMapping* m = p.mapping("proc0", "cmb");
  REQUIRE(m);
  CHECK(p.process("proc0").findVma(m->start)->vmPgoff == (cmb + 4096) >> kPageShift);
  bool ok = false;
  CHECK(readThroughNic(p, "proc0", *m, "nic", ok) == bytes);
  CHECK(ok);
  CHECK(p.violations().ok());
}

TEST_CASE("the platform refuses an offset on an anon mapping, off a page, or past VRAM") {
  PlatformDesc d = gpuNicMachine(smallGpu());
  // Each refused platform its own name: the processes of a platform whose construction threw
  // outlive its modules in SystemC, under their names.
  MappingDesc anon = mapping("a", MapKind::Anon, k64K);
  anon.offset = 4096;
  d.processes.front().memory = {anon};
  CHECK_THROWS_WITH(
      Platform("m1", d, builtinDevices()),
      Catch::Contains("mapping \"a\" (anon) has an offset: only device-file mappings take one"));
  d.processes.front().memory = {deviceFile("v", "gpu1", k64K, 100)};
  CHECK_THROWS_WITH(Platform("m2", d, builtinDevices()),
                    Catch::Contains("offset 100 is not a multiple of 4 KiB"));
  d.processes.front().memory = {deviceFile("v", "gpu1", k64K, (1ull << 30) - 4096)};  // 60 KiB past VRAM
  CHECK_THROWS_WITH(Platform("m3", d, builtinDevices()),
                    Catch::Contains("mmap of \"v\" (device-file at offset 1073737728) failed with EINVAL"));
}

TEST_CASE("gpu_stream_out on p2p sends results placed in a GPU device-file mapping at its offset") {
  PlatformDesc d = gpuNicMachine(smallGpu());
  const std::uint64_t at = (800ull << 20);  // in the kernel region (768 MiB .. 1 GiB)
  MappingDesc vram = deviceFile("vram", "gpu1", 1ull << 20, at);
  vram.prot = PROT_READ;  // the NIC only reads it
  d.processes.front().memory = {vram};
  Platform p("m", d, builtinDevices());
  GpuStreamOutParams s;
  s.gpu = "gpu1";
  s.nic = "nic";
  s.process = "proc0";
  s.bytes = 1ull << 20;
  s.place = {{"results", "vram"}};
  GpuStreamOut w(p, s);
  CHECK(w.regions().front().start == p.mapping("proc0", "vram")->start);
  GpuPlatformDevice& g = p.deviceAs<GpuPlatformDevice>("gpu1");
  std::vector<std::uint8_t> vramAt(s.bytes), kernelStart(s.bytes);
  p.physMem().read(g.gpu().params().vramPa + at, vramAt.data(), s.bytes);
  p.physMem().read(g.gpu().params().vramPa + g.driver().kernelRegionOffset(), kernelStart.data(), s.bytes);
  CHECK(vramAt == gpuResultsPattern(s.bytes, s.seed));          // the results are the VRAM at the offset
  CHECK(kernelStart == std::vector<std::uint8_t>(s.bytes, 0));  // not at the region's start
  w.start();
  sc_core::sc_start();
  w.finish();
  CHECK(workloadFailures(w).empty());
  CHECK(workloadStat(p, w, "workload.bytes_correct") == double(s.bytes));
  CHECK(p.violations().ok());
}

TEST_CASE("gpu_stream_out refuses p2p results in a GPU mapping outside the kernel region") {
  PlatformDesc d = gpuNicMachine(smallGpu());
  d.processes.front().memory = {deviceFile("low", "gpu1", 1ull << 20, 0)};
  Platform p("m", d, builtinDevices());
  GpuStreamOutParams s;
  s.gpu = "gpu1";
  s.nic = "nic";
  s.process = "proc0";
  s.bytes = 1ull << 20;
  s.place = {{"results", "low"}};
  CHECK_THROWS_WITH(GpuStreamOut(p, s), Catch::Contains("give the mapping offset: 768MiB (up to 1023MiB)"));
}

TEST_CASE("nvme_via_nic drives the queue through nvme_bar placed in a device-file mapping of BAR 0") {
  PlatformDesc d = nicNvmeDesc();
  d.processes.front().memory = {deviceFile("bar", "nvme", 4ull << 20, 0)};
  Platform p("m", d, builtinDevices());
  NvmeViaNicParams w = nicNvmeWorkload(NvmeViaNicPath::P2p);
  w.place = {{"nvme_bar", "bar"}};
  NvmeViaNic n(p, w);
  CHECK(n.regions().front().start == p.mapping("proc0", "bar")->start);
  n.start();
  sc_core::sc_start();
  n.finish();
  CHECK(n.imported());
  CHECK(n.stats().counterValue("commands_exact") == w.commands);
  CHECK(n.grantsAfterRelease() == 0);
  CHECK(p.violations().ok());
}

TEST_CASE("nvme_via_nic refuses nvme_bar off BAR 0's start, in anon memory or on the cpu path") {
  PlatformDesc d = nicNvmeDesc();
  d.processes.front().memory = {deviceFile("cmb", "nvme", 2ull << 20, 2ull << 20),
                                mapping("anon", MapKind::Anon, 4ull << 20)};
  Platform p("m", d, builtinDevices());
  NvmeViaNicParams w = nicNvmeWorkload(NvmeViaNicPath::P2p);
  w.place = {{"nvme_bar", "cmb"}};
  CHECK_THROWS_WITH(NvmeViaNic(p, w),
                    Catch::Contains("its mapping starts at offset 2MiB: give the mapping offset: 0"));
  w.place = {{"nvme_bar", "anon"}};
  CHECK_THROWS_WITH(NvmeViaNic(p, w),
                    Catch::Contains("place it in a mapping with kind: device-file, device: nvme"));
  w.path = NvmeViaNicPath::Cpu;
  CHECK_THROWS_WITH(NvmeViaNic(p, w), Catch::Contains("on the cpu path there is no nvme_bar"));
}

TEST_CASE("gpu_monitor on p2p samples its counter through a GPU device-file mapping of its page") {
  PlatformDesc d = gpuNicMachine(smallGpu());
  MappingDesc page = deviceFile("counter_page", "gpu1", 4096, (768ull + 4) << 20);  // kernel region + 4 MiB
  page.prot = PROT_READ;
  d.processes.front().memory = {page};
  Platform p("m", d, builtinDevices());
  GpuMonitorParams m;
  m.gpu = "gpu1";
  m.nic = "nic";
  m.process = "proc0";
  m.samples = 4;
  m.totalBytes = 8ull << 20;
  m.place = {{"counter", "counter_page"}};
  GpuMonitor w(p, m);
  CHECK(w.regions().front().start == p.mapping("proc0", "counter_page")->start);
  w.start();
  sc_core::sc_start();
  w.finish();
  CHECK(workloadFailures(w).empty());
  CHECK(workloadStat(p, w, "workload.samples_held") == 4);
  CHECK(p.violations().ok());
}

TEST_CASE("gpu_reduce sums peer VRAM placed in a device-file mapping of the peer at an offset") {
  PlatformDesc d = GpuPlatform::desc(smallGpu(), smallGpuDriver());  // gpu1, and gpu0 as the peer
  GpuDeviceParams g;
  g.gpu = smallGpu();
  g.gpu.vramPa = Pa(0x880000000ull);  // above gpu1's 1 GiB at 0x800000000
  g.driver = smallGpuDriver();
  d.devices.push_back(DeviceDesc{"gpu", "gpu0", "gpu0", g});
  const std::uint64_t at = 64ull << 20;
  MappingDesc vram = deviceFile("peer_vram", "gpu0", 2ull << 20, at);
  vram.prot = PROT_READ;
  d.processes.front().memory = {vram};
  Platform p("m", d, builtinDevices());
  GpuReduceParams r;
  r.gpu = "gpu1";
  r.peer = "gpu0";
  r.process = "proc";
  r.source = GpuReduceSource::PeerVram;
  r.bytes = 2ull << 20;
  r.seed = 5;
  r.place = {{"buffer", "peer_vram"}};
  GpuReduce w(p, r);
  CHECK(w.regions().front().start == p.mapping("proc", "peer_vram")->start);
  const Pa peerVram = p.deviceAs<GpuPlatformDevice>("gpu0").gpu().params().vramPa;
  std::uint64_t word = 0, first = 0;
  p.physMem().read(peerVram + at, &word, 8);  // the words are the peer's VRAM at the offset
  p.physMem().read(peerVram, &first, 8);
  CHECK(word != 0);
  CHECK(first == 0);
  w.start();
  sc_core::sc_start();
  w.finish();
  CHECK(workloadFailures(w).empty());
  CHECK(w.storedSum() == w.expectedSum());
  CHECK(w.stats().counterValue("sum_correct") == 1);
  CHECK(p.violations().ok());
}
