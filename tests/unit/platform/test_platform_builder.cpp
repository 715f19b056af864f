// The platform builder (models/platform/platform.h): a whole machine from a PlatformDesc — DRAM, a
// CPU on the system bus, the fabric from a topology (root complex, a switch, two endpoints under
// it, one on another root port), IOMMU on, device memory at BAR addresses, devices by type name —
// and MSI delivery to CPU driver threads (models/platform/interrupts.h). Assertions after
// sc_start().
#include <catch2/catch.hpp>

#include <cstring>
#include <string>
#include <vector>

#include <systemc>

#include "models/cpu_mmu/memory.h"
#include "models/cpu_mmu/page_table.h"
#include "models/cpu_mmu/vma.h"
#include "models/devices/common/importer_dma.h"
#include "models/devices/common/msi.h"
#include "models/platform/builtin_devices.h"
#include "models/platform/driver_thread.h"
#include "models/platform/platform.h"
#include "tests/unit/pcie/fabric_test_util.h"
#include "tests/unit/pcie/topology_fixtures.h"

using namespace hmmsim;
using namespace hmmsim::test;

namespace {

constexpr std::uint64_t kRam = 256ull << 20;

/// hb0: rp0 -> sw0 -> {gpu0, gpu1}, rp1 -> gpu2; gpu0's BAR 2 is device-coherent memory, gpu1's
/// BAR 2 raw device memory (VRAM); one process, one CPU.
PlatformDesc machine() {
  PlatformDesc d;
  d.ram.ramSize = kRam;
  d.topology = smallPlatform({"gpu0", "gpu1"});
  d.processes = {ProcessDesc{"proc0", {}}};
  CpuDesc cpu;
  cpu.name = "cpu0";
  cpu.process = "proc0";
  cpu.params.tlbHitCostPs = 0;
  d.cpus = {cpu};
  d.deviceMemory = {DeviceMemoryDesc{"gpu0", 2, DeviceMemoryKind::Coherent},
                    DeviceMemoryDesc{"gpu1", 2, DeviceMemoryKind::Raw}};
  return d;
}

std::vector<std::uint8_t> pattern(std::size_t n, std::uint8_t seed) {
  std::vector<std::uint8_t> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::uint8_t>(i * 7 + seed);
  return v;
}

Va mmapAnon(Mm& mm, std::uint64_t len, int flags = MAP_PRIVATE) {
  const VaResult r = mm.mmap(Va(0), len, PROT_READ | PROT_WRITE, flags | MAP_ANONYMOUS);
  REQUIRE(r.ok());
  return r.addr;
}

/// A present pte at `va` for device-coherent frame `pfn` (what migrate_vma_pages leaves).
void mapCoherent(Mm& mm, PhysMem& pm, Va va, Pfn pfn) {
  pm.zoneDevicePageInit(pfn);
  Frame& f = pm.frame(pfn);
  f.clear(kFrameLocked);
  f.set(kFrameAnon);
  f.set(kFrameAnonExclusive);
  f.mapcount = 1;
  Vma* vma = mm.vmaLookup(va);
  REQUIRE(vma);
  f.mapping = &mm.anonVmaPrepare(*vma);
  f.index = vma->linearPageIndex(va);
  Pte* slot = mm.pageTable().ptePtr(va, true);
  REQUIRE(slot);
  *slot = Pte::mkPresent(pfn, true).mkNoExec();
  mm.addMmCounter(MmCounter::AnonPages, 1);
}

}  // namespace

TEST_CASE(
    "the built machine's CPU reads a BAR and a device-coherent page at the addresses enumeration gave") {
  Platform p("m", machine(), builtinDevices());
  Mm& mm = p.process("proc0");
  PciDev& gpu0 = p.pci("gpu0");
  PciDev& gpu1 = p.pci("gpu1");
  const Pa coherent = pciResourceStart(gpu0, 2), vram = pciResourceStart(gpu1, 2);
  CHECK(p.fabric().barMemory("gpu0").params().baseAddr == pciBusAddress(gpu0, 2).value());
  REQUIRE(p.coherentMemory("gpu0"));
  CHECK(p.coherentMemory("gpu0")->pfnFirst == pfnOf(coherent));
  // gpu1's VRAM mapped into the process as its driver's mmap does (remap_pfn_range).
  const Va bar = mmapAnon(mm, 2 * kPageSize, MAP_SHARED);
  REQUIRE(remapPfnRange(*mm.vmaLookup(bar), bar, pfnOf(vram + 0x5000), 2 * kPageSize) == Errno::Ok);
  const std::vector<std::uint8_t> inVram = pattern(200, 3), inCoherent = pattern(64, 9);
  p.physMem().write(vram + 0x5000 + 4000, inVram.data(), inVram.size());
  // A process page that migrated to gpu0's coherent memory.
  const Va va = mmapAnon(mm, kPageSize);
  const Pfn dpfn = pfnOf(coherent) + 7;
  mapCoherent(mm, p.physMem(), va, dpfn);
  p.physMem().write(paOf(dpfn) + 256, inCoherent.data(), inCoherent.size());
  p.startCpu("cpu0", {CpuOp::load(-1, bar.value() + 4000, 200), CpuOp::load(-1, va.value() + 256, 64),
                      CpuOp::store(-1, va.value() + 8, 8, 0x5a)});
  sc_core::sc_start();
  CpuCore& cpu = p.cpu("cpu0");
  REQUIRE_FALSE(cpu.killed());
  CHECK(cpu.results()[0].data == inVram);  // crosses a page: two BAR reads through the root complex
  CHECK(cpu.results()[1].data == inCoherent);
  std::uint8_t b[8] = {};
  p.physMem().read(paOf(dpfn) + 8, b, 8);
  CHECK(std::vector<std::uint8_t>(b, b + 8) == std::vector<std::uint8_t>(8, 0x5a));
  CHECK(p.fabric().barMemory("gpu1").stats().counterValue("bytes_read") == 200);
  CHECK(p.fabric().barMemory("gpu0").stats().counterValue("bytes_read") == 64);
  CHECK(p.fabric().barMemory("gpu0").stats().counterValue("bytes_written") == 8);
  CHECK(p.bus().stats().counterValue("decode_errors") == 0);
  CHECK(p.violations().ok());
}

TEST_CASE("a device's DMA on the built machine reaches process memory through the IOMMU stage") {
  Platform p("m", machine(), builtinDevices());
  Mm& mm = p.process("proc0");
  constexpr std::uint64_t kPages = 8, kLen = kPages * kPageSize;
  const Va va = mmapAnon(mm, kLen);
  HmmDmaImporter imp;
  imp.device = &p.pci("gpu2");
  imp.dma = &p.dma();
  ImporterDma dma("gpu2.dma", mm, imp, p.fabric().engine("gpu2"), va, kPages, {}, &p.checker(),
                  &p.directory());
  const std::vector<std::uint8_t> out = pattern(kLen, 1);
  ImporterDmaResult w;
  QkThread t("dev", [&](tlm_utils::tlm_quantumkeeper& qk) { w = dma.write(va, kLen, out.data(), qk); });
  sc_core::sc_start();
  REQUIRE(w.ok());
  std::vector<std::uint8_t> back(kLen);
  REQUIRE(copyFromUser(mm, back.data(), va, kLen) == Errno::Ok);
  CHECK(back == out);
  REQUIRE(p.iommuStage("hb0"));
  CHECK(p.iommuStage("hb0")->stats().counterValue("requests") == w.bursts);
  CHECK(p.dram().stats().counterValue("bytes_written") == kLen);
  CHECK(p.violations().ok());
}

TEST_CASE("devices are created by type name and an unknown type is an error naming the known ones") {
  PlatformDesc d = machine();
  DmirrorDeviceParams dp;
  dp.id = 3;
  d.devices = {DeviceDesc{"dmirror", "mirror0", "", dp}};
  {
    Platform p("m", d, builtinDevices());
    DmirrorDevice& dev = p.deviceAs<DmirrorPlatformDevice>("mirror0").dmirror();
    auto file = dev.open(p.process("proc0"));
    CHECK(file != nullptr);
  }
  d.devices = {DeviceDesc{"warp-drive", "x", "", {}}};
  try {
    Platform p("m2", d, builtinDevices());
    FAIL("no error");
  } catch (const ConfigError& e) {
    CHECK(e.key() == "devices.x");
    CHECK(
        std::string(e.message())
            .find("unknown device type \"warp-drive\" (known: camera colour_engine dmirror gpu nic nvme)") !=
        std::string::npos);
  }
}

TEST_CASE("a bad description is refused before anything is built") {
  PlatformDesc d = machine();
  d.cpus[0].process = "nobody";
  CHECK_THROWS_WITH(Platform("m", d, builtinDevices()),
                    Catch::Contains("process \"nobody\" is not in processes"));
  d = machine();
  d.deviceMemory[0].bar = 0;
  CHECK_THROWS_WITH(Platform("m2", d, builtinDevices()), Catch::Contains("is not the endpoint's memory BAR"));
  d = machine();  // a host bridge window over 0xFEE00000 would swallow every interrupt message
  d.topology.hostBridges[0].params.mem.size = 1ull << 30;
  d.topology.hostBridges[0].params.mem.cpuBase = Pa(0xC000'0000);
  CHECK_THROWS_WITH(Platform("m3", d, builtinDevices()),
                    Catch::Contains("mem_window covers the MSI window 0xfee00000"));
}

TEST_CASE(
    "an MSI reaches its driver thread through the root complex: entry latency, handler cost, queueing") {
  PlatformDesc d = machine();
  d.interrupts.entryLatencyPs = 700'000;
  Platform p("m", d, builtinDevices());
  constexpr std::uint64_t kCost = 3'000'000;
  Mm& mm = p.process("proc0");
  const Va va = mmapAnon(mm, kPageSize);
  HmmDmaImporter imp;
  imp.device = &p.pci("gpu0");
  imp.dma = &p.dma();
  ImporterDma dma("gpu0.dma", mm, imp, p.fabric().engine("gpu0"), va, 1, {}, &p.checker(), &p.directory());
  // The driver: on each interrupt, read the completion word the device wrote just before.
  std::vector<std::uint64_t> starts, ends, words;
  const MsiMessage msg = p.interrupts().allocateVector("gpu0.done", kCost, [&](IrqContext& c) {
    starts.push_back(c.nowPs());
    std::uint64_t w = 0;  // the completion slot of this interrupt
    copyFromUser(mm, &w, va + 8 * starts.size() - 8, sizeof w);
    words.push_back(w);
    ends.push_back(c.nowPs() + kCost);
  });
  std::vector<DmaIssue> sent;
  QkThread dev("dev", [&](tlm_utils::tlm_quantumkeeper& qk) {
    for (std::uint64_t i = 1; i <= 2; ++i) {
      const std::uint64_t word = 0xc0de0000 + i;
      dma.write(va + 8 * (i - 1), sizeof word, reinterpret_cast<const std::uint8_t*>(&word), qk);
      sent.push_back(sendMsi(p.fabric().engine("gpu0"), msg, qk));  // posted: behind the data
    }
  });
  sc_core::sc_start();
  REQUIRE(sent.size() == 2);
  REQUIRE(starts.size() == 2);
  CHECK(sent[0].status == CplStatus::SuccessfulCompletion);
  // The first starts the entry latency after its message arrived; the second arrived while the
  // first handler ran, so it waits for it, then pays the entry latency.
  CHECK(starts[0] == sent[0].donePs + d.interrupts.entryLatencyPs);
  CHECK(sent[1].donePs < ends[0]);
  CHECK(starts[1] == ends[0] + d.interrupts.entryLatencyPs);
  CHECK(words == std::vector<std::uint64_t>{0xc0de0001, 0xc0de0002});
  CHECK(p.interrupts().handled(msg.data) == 2);
  CHECK(p.interrupts().stats().counterValue("queued_ps") == ends[0] - sent[1].donePs);
  CHECK(p.interrupts().stats().counterValue("cpu_busy_ps") == 2 * (d.interrupts.entryLatencyPs + kCost));
  CHECK(p.dram().stats().counterValue("bytes_written") == 16);  // the MSIs did not reach DRAM
  CHECK(p.violations().ok());
}

TEST_CASE(
    "a driver thread rings a doorbell and sleeps until the device's MSI, waking the entry latency later") {
  PlatformDesc d = machine();
  d.interrupts.entryLatencyPs = 1'500'000;
  Platform p("m", d, builtinDevices());
  PcieMemoryTarget& bar = p.fabric().barMemory("gpu1");
  const std::uint64_t doorbell = pciResourceStart(p.pci("gpu1"), 2).value() + 0x10'0000;
  sc_core::sc_event rung;
  std::uint64_t rungAt = 0;
  REQUIRE(bar.registerMmio(
              0x10'0000, 0x1000,
              [&](const MmioAccess& a) {
                if (!a.isWrite) return;
                rungAt = a.timePs;
                rung.notify(psTime(a.timePs - sc_core::sc_time_stamp().value()));
              },
              "doorbell") == Errno::Ok);
  MsiMessage msg;
  std::uint64_t wokeAt = 0, storedAt = 0;
  DriverThread driver("drv", p, [&](DriverThread& t) {
    const std::uint32_t one = 1;
    t.store(doorbell, &one, sizeof one);
    storedAt = sc_core::sc_time_stamp().value();
    t.waitInterrupt(5);
    wokeAt = sc_core::sc_time_stamp().value();
  });
  msg = driver.bindVector(5);
  DmaIssue sent;
  QkThread dev("dev", [&](tlm_utils::tlm_quantumkeeper& qk) {
    sc_core::wait(rung);
    sc_core::wait(2, sc_core::SC_US);  // the device's work
    qk.reset();
    sent = sendMsi(p.fabric().engine("gpu1"), msg, qk);
  });
  sc_core::sc_start();
  CHECK(rungAt > 0);
  CHECK(storedAt > 0);
  CHECK(sent.status == CplStatus::SuccessfulCompletion);
  CHECK(wokeAt == sent.donePs + d.interrupts.entryLatencyPs);
  CHECK(driver.interrupts() == 1);
  CHECK(driver.busErrors() == 0);
}
