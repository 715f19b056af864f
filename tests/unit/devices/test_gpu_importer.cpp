// The GPU as importer (gpu_va_kernel.h): kernels whose input is a process VA range read through
// the GPU's device MMU (ImporterDma) from system memory, a peer GPU's VRAM p2p (special vma and
// device-private pages) and the GPU's own device-private pages (locally, no PCIe), with results
// checked word for word; their duration against the compute rate. Assertions after sc_start().
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "models/cpu_mmu/dram.h"
#include "models/devices/common/importer_dma.h"
#include "models/devices/gpu/gpu.h"
#include "models/devices/gpu/gpu_driver.h"
#include "models/devices/gpu/gpu_va_kernel.h"
#include "models/pcie/dma_engine.h"
#include "sim/checker.h"
#include "tests/unit/devices/gpu_importer_fixture.h"

using namespace hmmsim;
using namespace hmmsim::test;

TEST_CASE("gpu importer: sum64 and add64 kernels over system memory are exact", "[devices][gpu][importer]") {
  TwoGpus t;
  constexpr std::uint64_t kBytes = 4ull << 20;
  const Va in = t.anon(kBytes);
  const Va out = t.anon(kBytes);
  const std::vector<std::uint8_t> data = TwoGpus::words(kBytes, 0x9e3779b97f4a7c15ull, 7);
  t.fill(in, data);
  GpuVaKernel add;
  add.op = GpuKernelOp::Add64;
  add.in = in;
  add.bytes = kBytes;
  add.outToVa = true;
  add.out = out;
  add.operand = 0x1111;
  Errno rcSum = Errno::Inval, rcAdd = Errno::Inval;
  GpuVaKernelResult sumRes, addRes;
  QkThread host("host", [&](tlm_utils::tlm_quantumkeeper&) {
    rcSum = t.g1.driver().launch(t.sumKernel(in, kBytes));
    sc_core::wait(t.g1.gpu().computeDone());
    sumRes = t.g1.gpu().vaResult();
    rcAdd = t.g1.driver().launch(add);
    sc_core::wait(t.g1.gpu().computeDone());
    addRes = t.g1.gpu().vaResult();
  });
  sc_core::sc_start();
  REQUIRE(rcSum == Errno::Ok);
  REQUIRE(rcAdd == Errno::Ok);
  CHECK(sumRes.ok());
  CHECK(sumRes.bytesIn == kBytes);
  CHECK(sumRes.sum == TwoGpus::sum(data));
  CHECK(t.vramWord(t.g1.driver().kernelRegionOffset()) == TwoGpus::sum(data));  // stored in VRAM
  CHECK(addRes.ok());
  CHECK(addRes.bytesOut == kBytes);
  std::vector<std::uint8_t> expect(kBytes);
  std::uint64_t unused = 0;
  gpuKernelApply(GpuKernelOp::Add64, 0x1111, data.data(), kBytes, expect.data(), unused);
  CHECK((t.cpu(out, kBytes) == expect));  // (not printed: 4 MiB)
  // Both kernels read the input through gpu1's DMA engine from DRAM (twice) and wrote the output.
  CHECK(t.g1.gpu().dmaEngine().stats().counterValue("bytes_read") == 2 * kBytes);
  CHECK(t.g1.gpu().dmaEngine().stats().counterValue("bytes_written") >= kBytes);
  CHECK(t.plat.dram().stats().counterValue("bytes_read") >= 2 * kBytes);
  CHECK(t.g1.gpu().stats().counterValue("va_kernels") == 2);
  CHECK(t.g1.driver().importerDma()->mirror().kindAt(in) == HmmDmaKind::System);
  CHECK(t.plat.violations().ok());
}

namespace {

/// gpu1 sums 2 MiB that live in gpu0's VRAM: through a special-vma mmap of it (`privatePages`
/// false) or as device-private pages migrated there. Every byte must come through gpu0's BAR
/// under the switch.
void peerSum(bool privatePages) {
  TwoGpus t;
  constexpr std::uint64_t kBytes = 2ull << 20;
  const std::vector<std::uint8_t> data = TwoGpus::words(kBytes, 3, 0x5000);
  Va in;
  if (privatePages) {
    in = t.anon(kBytes);
    t.fill(in, data);
  } else {
    in = t.peerVram(0, kBytes);
    t.plat.physMem().write(t.g0.gpu().params().vramPa, data.data(), kBytes);  // gpu0's VRAM holds it
  }
  Errno mig = Errno::Ok, rc = Errno::Inval;
  QkThread host("host", [&](tlm_utils::tlm_quantumkeeper& qk) {
    if (privatePages) mig = t.g0.driver().migrateToVram(t.mm, in, in + kBytes, &qk);
    qk.sync();
    rc = t.g1.driver().launch(t.sumKernel(in, kBytes));
    if (rc == Errno::Ok) sc_core::wait(t.g1.gpu().computeDone());
  });
  sc_core::sc_start();
  REQUIRE(mig == Errno::Ok);
  REQUIRE(rc == Errno::Ok);
  const GpuVaKernelResult& res = t.g1.gpu().vaResult();
  CHECK(res.ok());
  CHECK(res.sum == TwoGpus::sum(data));
  CHECK(t.vramWord(t.g1.driver().kernelRegionOffset()) == TwoGpus::sum(data));
  CHECK(t.g1.driver().importerDma()->mirror().kindAt(in) ==
        (privatePages ? HmmDmaKind::DevmemP2p : HmmDmaKind::VmaP2p));
  if (privatePages)
    CHECK(t.g0.driver().exporter().stats().counterValue("devmem_p2p_pages") == kBytes / kPageSize);
  // Every byte came from gpu0's BAR under the switch; nothing went through the root complex.
  CHECK(t.g0.gpu().bar().stats().counterValue("bytes_read") == kBytes);
  CHECK(t.plat.fabric().rootComplex("hb0").stats().counterValue("p2p_transactions") == 0);
  CHECK(t.plat.directory().checkedPages() >= kBytes / kPageSize);
  CHECK(t.plat.violations().ok());
}

}  // namespace

TEST_CASE("gpu importer: a kernel reads a peer GPU's special-vma VRAM p2p under the switch",
          "[devices][gpu][importer][p2p]") {
  peerSum(false);
}

TEST_CASE("gpu importer: a kernel reads a peer GPU's device-private pages p2p under the switch",
          "[devices][gpu][importer][p2p]") {
  peerSum(true);
}

TEST_CASE("gpu importer: its own device-private pages are read on its VRAM channels, not over PCIe",
          "[devices][gpu][importer]") {
  TwoGpus t;
  constexpr std::uint64_t kBytes = 4ull << 20, kOwn = kBytes / 2;
  const Va in = t.anon(kBytes);
  const std::vector<std::uint8_t> data = TwoGpus::words(kBytes, 0x1234567, 99);
  t.fill(in, data);
  Errno mig = Errno::Inval, rc = Errno::Inval;
  std::uint64_t localBefore = 0;
  QkThread host("host", [&](tlm_utils::tlm_quantumkeeper& qk) {
    mig = t.g1.driver().migrateToVram(t.mm, in + kOwn, in + kBytes, &qk);  // the second half
    qk.sync();
    localBefore = t.g1.gpu().bar().stats().counterValue("local_bytes");
    rc = t.g1.driver().launch(t.sumKernel(in, kBytes));
    if (rc == Errno::Ok) sc_core::wait(t.g1.gpu().computeDone());
  });
  const std::uint64_t readBefore = t.g1.gpu().dmaEngine().stats().counterValue("bytes_read");
  sc_core::sc_start();
  REQUIRE(mig == Errno::Ok);
  REQUIRE(rc == Errno::Ok);
  const GpuVaKernelResult& res = t.g1.gpu().vaResult();
  CHECK(res.ok());
  CHECK(res.sum == TwoGpus::sum(data));
  ImporterDma& mmu = *t.g1.driver().importerDma();
  CHECK(mmu.mirror().kindAt(in) == HmmDmaKind::System);
  CHECK(mmu.mirror().kindAt(in + kOwn) == HmmDmaKind::Local);
  CHECK(mmu.mirror().dmaStats().localMaps.value() == kOwn / kPageSize);
  // PCIe carried the system half only (the migration's copy engine reads count too: kOwn).
  CHECK(t.g1.gpu().dmaEngine().stats().counterValue("bytes_read") - readBefore == kOwn + kOwn);
  // The own half (and the 8-byte result) went over the VRAM channels.
  CHECK(t.g1.gpu().bar().stats().counterValue("local_bytes") - localBefore == kOwn + 8);
  CHECK(t.g1.gpu().bar().stats().counterValue("bytes_read") == 0);          // nothing through its BAR
  CHECK(t.g1.driver().stats().counterValue("migrate_to_ram_faults") == 0);  // never faulted back
  CHECK(t.plat.violations().ok());
}

namespace {

/// gpu1 with a slow compute engine (32 Gb/s = 4 GB/s): an 8 MiB kernel lasts about 2.1 ms, so an
/// event 300 us after its launch lands early in it (and a migration of the input back to RAM,
/// about 0.9 ms, ends well before it).
GpuDeviceParams slowGpu1() {
  GpuDeviceParams g = TwoGpus::gpu1Params();
  g.gpu.computeRateGbps = 32.0;
  return g;
}

/// gpu1 sums 8 MiB of device-private pages (gpu0's: `peer`, else its own) that their owner
/// migrates back to RAM 300 us into the kernel.
void migrateBackMidKernel(bool peer) {
  TwoGpus t(slowGpu1());
  constexpr std::uint64_t kBytes = 8ull << 20;
  const Va in = t.anon(kBytes);
  const std::vector<std::uint8_t> data = TwoGpus::words(kBytes, 0xabcdef12345ull, 1);
  t.fill(in, data);
  GpuDriver& owner = peer ? t.g0.driver() : t.g1.driver();
  Errno toVram = Errno::Inval, rc = Errno::Inval, toRam = Errno::Inval;
  std::uint64_t back = 0, migratedAt = 0;
  QkThread host("host", [&](tlm_utils::tlm_quantumkeeper& qk) {
    toVram = owner.migrateToVram(t.mm, in, in + kBytes, &qk);
    qk.sync();
    rc = t.g1.driver().launch(t.sumKernel(in, kBytes));
    sc_core::wait(sc_core::sc_time(300, sc_core::SC_US));
    toRam = owner.migrateToRam(t.mm, in, in + kBytes, &qk, &back);
    qk.sync();
    migratedAt = sc_core::sc_time_stamp().value();
    sc_core::wait(t.g1.gpu().computeDone());
  });
  sc_core::sc_start();
  INFO((peer ? "gpu0's device-private pages" : "gpu1's own device-private pages"));
  REQUIRE(toVram == Errno::Ok);
  REQUIRE(rc == Errno::Ok);
  CHECK(toRam == Errno::Ok);
  CHECK(back == kBytes / kPageSize);
  const GpuVaKernelResult& res = t.g1.gpu().vaResult();
  CHECK(migratedAt < res.endPs);  // really mid-kernel
  CHECK(res.ok());
  CHECK(res.bytesIn == kBytes);
  CHECK(res.sum == TwoGpus::sum(data));
  ImporterDma& mmu = *t.g1.driver().importerDma();
  CHECK(mmu.stats().counterValue("device_faults") > 0);  // the rest refaulted to system memory
  CHECK(mmu.mirror().kindAt(in + kBytes - kPageSize) == HmmDmaKind::System);
  CHECK(owner.devmem().allocatedPages() == 0);
  CHECK((t.cpu(in, kBytes) == data));
  CHECK(t.plat.violations().ok());
}

}  // namespace

TEST_CASE("gpu importer: peer device-private input migrated to RAM mid-kernel: refault, sum exact",
          "[devices][gpu][importer][migrate]") {
  migrateBackMidKernel(true);
}

TEST_CASE("gpu importer: own device-private input migrated to RAM mid-kernel: refault, sum exact",
          "[devices][gpu][importer][migrate]") {
  migrateBackMidKernel(false);
}

namespace {

/// gpu1 sums 8 MiB of system memory; 300 us in, the process munmaps its second half (`unmap`)
/// or makes all of it read-only.
void changeMappingMidKernel(bool unmap) {
  TwoGpus t(slowGpu1());
  constexpr std::uint64_t kBytes = 8ull << 20;
  const Va in = t.anon(kBytes);
  const std::vector<std::uint8_t> data = TwoGpus::words(kBytes, 77, 5);
  t.fill(in, data);
  Errno rc = Errno::Inval, op = Errno::Inval;
  QkThread host("host", [&](tlm_utils::tlm_quantumkeeper&) {
    rc = t.g1.driver().launch(t.sumKernel(in, kBytes));
    sc_core::wait(sc_core::sc_time(300, sc_core::SC_US));
    op = unmap ? t.mm.munmap(in + kBytes / 2, kBytes / 2) : t.mm.mprotect(in, kBytes, PROT_READ);
    sc_core::wait(t.g1.gpu().computeDone());
  });
  sc_core::sc_start();
  REQUIRE(rc == Errno::Ok);
  REQUIRE(op == Errno::Ok);
  const GpuVaKernelResult& res = t.g1.gpu().vaResult();
  ImporterDma& mmu = *t.g1.driver().importerDma();
  CHECK(mmu.stats().counterValue("device_faults") > 0);
  if (unmap) {
    INFO("munmap of the input's second half");
    CHECK(res.status == ImporterDmaStatus::Fault);
    CHECK(res.bytesIn == kBytes / 2);  // it ran until the hole
    CHECK(mmu.mirror().kindAt(in + kBytes / 2) == HmmDmaKind::None);
  } else {
    INFO("mprotect(PROT_READ) of the input");
    CHECK(res.ok());
    CHECK(res.sum == TwoGpus::sum(data));
  }
  CHECK(t.plat.violations().ok());
}

}  // namespace

TEST_CASE("gpu importer: mprotect of the input mid-kernel: it refaults, the sum stays exact",
          "[devices][gpu][importer]") {
  changeMappingMidKernel(false);
}

TEST_CASE("gpu importer: a munmap of the input mid-kernel ends the kernel with a fault, checker clean",
          "[devices][gpu][importer]") {
  changeMappingMidKernel(true);
}

TEST_CASE("gpu importer: a driver ignoring invalidations (misbehave switch) is caught at a munmap",
          "[devices][gpu][importer][checker]") {
  TwoGpus t(slowGpu1());
  constexpr std::uint64_t kBytes = 8ull << 20;
  const Va in = t.anon(kBytes);
  t.fill(in, TwoGpus::words(kBytes, 1, 0));
  t.g1.importerDma()->mirror().setMisbehaviour(ImporterMisbehaviour::IgnoreInvalidations);
  Errno rc = Errno::Inval;
  QkThread host("host", [&](tlm_utils::tlm_quantumkeeper&) {
    rc = t.g1.driver().launch(t.sumKernel(in, kBytes));
    sc_core::wait(sc_core::sc_time(300, sc_core::SC_US));
    t.mm.munmap(in + kBytes / 2, kBytes / 2);
    sc_core::wait(t.g1.gpu().computeDone());
  });
  sc_core::sc_start();
  REQUIRE(rc == Errno::Ok);
  CHECK(t.g1.gpu().vaResult().ok());  // it went on reading the freed pages ...
  CHECK(t.plat.violations().count(CheckRule::StaleTranslation) > 0);  // ... and the checker saw it
}

namespace {

/// A 32 MiB sum at a compute rate of 80 Gb/s from system memory, or from gpu1's own VRAM
/// (`own`): its duration must be 32 MiB / 80 Gb/s within 1 %.
void computeBoundDuration(bool own) {
  GpuDeviceParams g = TwoGpus::gpu1Params();
  g.gpu.computeRateGbps = 80.0;  // 10 GB/s: below the Gen4 x16 link and VRAM
  TwoGpus t(g);
  constexpr std::uint64_t kBytes = 32ull << 20;
  const Va in = t.anon(kBytes);
  const std::vector<std::uint8_t> data = TwoGpus::words(kBytes, 11, 3);
  t.fill(in, data);
  Errno rc = Errno::Inval;
  QkThread host("host", [&](tlm_utils::tlm_quantumkeeper& qk) {
    if (own) t.g1.driver().migrateToVram(t.mm, in, in + kBytes, &qk);
    qk.sync();
    rc = t.g1.driver().launch(t.sumKernel(in, kBytes));
    sc_core::wait(t.g1.gpu().computeDone());
  });
  sc_core::sc_start();
  REQUIRE(rc == Errno::Ok);
  const GpuVaKernelResult& res = t.g1.gpu().vaResult();
  CHECK(res.ok());
  CHECK(res.sum == TwoGpus::sum(data));
  const double expectPs = double(kBytes) * 8.0 / 80.0 * 1000.0;
  const double gotPs = double(res.endPs - res.startPs);
  INFO((own ? "own VRAM" : "system memory") << ": " << gotPs / 1e6 << " us, expected " << expectPs / 1e6);
  CHECK(std::abs(gotPs / expectPs - 1.0) < 0.01);
  CHECK(t.plat.violations().ok());
}

}  // namespace

TEST_CASE("gpu importer: compute-bound kernel over system memory lasts input / rate within 1 %",
          "[devices][gpu][importer][timing]") {
  computeBoundDuration(false);
}

TEST_CASE("gpu importer: compute-bound kernel over its own VRAM lasts input / rate within 1 %",
          "[devices][gpu][importer][timing]") {
  computeBoundDuration(true);
}

namespace {

/// gpu1, with no prefault and its importer's fault_around `around`, sums one after the other the
/// (offset, bytes) parts of an 8 MiB input placed `skew` pages into its window: the device faults
/// the kernels took.
std::uint64_t faultsOfUnprefaultedSums(std::uint64_t around, std::uint64_t skew,
                                       const std::vector<std::pair<std::uint64_t, std::uint64_t>>& parts) {
  GpuDeviceParams g = TwoGpus::gpu1Params();
  g.driver.prefault = false;
  g.driver.dma.faultAroundPages = around;
  TwoGpus t(g);
  if (skew) t.anon(skew * kPageSize);
  constexpr std::uint64_t kBytes = 8ull << 20;
  const Va in = t.anon(kBytes);
  const std::vector<std::uint8_t> data = TwoGpus::words(kBytes, 13, 1);
  t.fill(in, data);
  std::vector<GpuVaKernelResult> res;
  bool launched = true;
  QkThread host("host", [&](tlm_utils::tlm_quantumkeeper&) {
    for (const auto& [off, n] : parts) {
      launched = t.g1.driver().launch(t.sumKernel(in + off, n)) == Errno::Ok && launched;
      sc_core::wait(t.g1.gpu().computeDone());
      res.push_back(t.g1.gpu().vaResult());
    }
  });
  sc_core::sc_start();
  REQUIRE(launched);
  REQUIRE(res.size() == parts.size());
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const std::vector<std::uint8_t> part(data.begin() + parts[i].first,
                                         data.begin() + parts[i].first + parts[i].second);
    CHECK(res[i].ok());
    CHECK(res[i].sum == TwoGpus::sum(part));
  }
  CHECK(t.plat.violations().ok());
  return t.g1.driver().importerDma()->stats().counterValue("device_faults");
}

}  // namespace

TEST_CASE("gpu importer: a fault maps the rest of the kernel's input (dmaEnd), 2 MiB a fault at most",
          "[devices][gpu][importer]") {
  // fault_around 1, the input one page into the window: faults at input pages 0, 512, 1024, 1536
  // (each capped by fault_ahead, 512 pages). Without dmaEnd: one per 64 KiB chunk read, 128.
  CHECK(faultsOfUnprefaultedSums(1, 1, {{0, 8ull << 20}}) == 4);
}

// A kernel over the input's second MiB, then one over its first.
const std::vector<std::pair<std::uint64_t, std::uint64_t>> kSecondThenFirstMiB = {{1ull << 20, 1ull << 20},
                                                                                  {0, 1ull << 20}};

TEST_CASE("gpu importer: a fault maps its 2 MiB block (amdgpu's SVM granularity), behind the fault too",
          "[devices][gpu][importer]") {
  CHECK(GpuDriverParams{}.dma.faultAroundPages == GpuDriverParams::kSvmGranularityPages);
  CHECK(GpuDriverParams::kSvmGranularityPages == 512);
  // The first kernel's fault maps the whole block: the second kernel takes none.
  CHECK(faultsOfUnprefaultedSums(GpuDriverParams::kSvmGranularityPages, 0, kSecondThenFirstMiB) == 1);
}

TEST_CASE("gpu importer: with fault_around 1 a kernel behind an earlier fault faults its own pages",
          "[devices][gpu][importer]") {
  CHECK(faultsOfUnprefaultedSums(1, 0, kSecondThenFirstMiB) == 2);
}
