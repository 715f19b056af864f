// The GPU copy engine's own costs on top of its data movement: one descriptor per page it copies
// or clears (GpuParams::copyDescriptorPs, as nouveau submits one copy per page), and the IOMMU
// invalidation each dma_unmap_page of its runs does (strict mode: the driver waits for it). Each
// test makes one cost dwarf the data's time, so removing the charge fails it. Assertions after
// sc_start().
#include <catch2/catch.hpp>

#include <systemc>

#include "tests/unit/devices/gpu_fixture.h"
#include "tests/unit/pcie/fabric_test_util.h"

using namespace hmmsim;
using namespace hmmsim::test;

namespace {

constexpr std::uint64_t kPages = 16, kLen = kPages * kGpuP;
constexpr std::uint64_t kUs = 1'000'000;  // ps
// What moving 64 KiB costs besides the charge under test, at most: PCIe Gen4 x16 and VRAM
// channel time, latencies, the other (small) charge. Unit: ps.
constexpr std::uint64_t kDataBound = 20 * kUs;

/// Times a migration of kPages pages to VRAM and a copy of kPages pages of VRAM into user memory
/// on `p`'s copy engine, each with the IOMMU's invalidation time it caused.
struct CopyTimes {
  std::uint64_t migratePs = 0, copyPs = 0;
  std::uint64_t migrateInvalPs = 0, copyInvalPs = 0;
  std::uint64_t migrateDescriptors = 0, copyDescriptors = 0;
};

CopyTimes timeCopies(GpuPlatform& p) {
  const Va a = p.mapAnon(kLen), b = p.mapAnon(kLen);
  p.fill(a, kLen, 0x31);
  p.fill(b, kLen, 0x32);
  CopyTimes t;
  Errno mig = Errno::Inval, copied = Errno::Inval;
  std::uint64_t moved = 0;
  QkThread th("host", [&](tlm_utils::tlm_quantumkeeper& qk) {
    Iommu& iommu = p.dma.iommu();
    StatsGroup& gs = p.gpu.stats();
    qk.sync();
    std::uint64_t t0 = sc_core::sc_time_stamp().value(), i0 = iommu.invalidationPs();
    std::uint64_t d0 = gs.counterValue("copy_descriptors");
    mig = p.driver->migrateToVram(*p.mm, a, a + kLen, &qk, &moved);
    qk.sync();
    t.migratePs = sc_core::sc_time_stamp().value() - t0;
    t.migrateInvalPs = iommu.invalidationPs() - i0;
    t.migrateDescriptors = gs.counterValue("copy_descriptors") - d0;
    t0 = sc_core::sc_time_stamp().value();
    i0 = iommu.invalidationPs();
    d0 = gs.counterValue("copy_descriptors");
    copied = p.driver->copyVramToUser(*p.mm, b, p.driver->kernelRegionOffset(), kLen, qk);
    t.copyPs = sc_core::sc_time_stamp().value() - t0;
    t.copyInvalPs = iommu.invalidationPs() - i0;
    t.copyDescriptors = gs.counterValue("copy_descriptors") - d0;
  });
  sc_core::sc_start();
  CHECK(mig == Errno::Ok);
  CHECK(moved == kPages);
  CHECK(copied == Errno::Ok);
  CHECK(p.violations.ok());
  return t;
}

}  // namespace

TEST_CASE("gpu copy engine: a migration and a copy to user memory pay one descriptor per page",
          "[devices][gpu]") {
  GpuParams gp = smallGpu();
  gp.copyDescriptorPs = 10 * kUs;  // 16 pages: 160 us, far beyond the data's time
  GpuPlatform p(gp);
  const CopyTimes t = timeCopies(p);
  CHECK(t.migrateDescriptors == kPages);
  CHECK(t.copyDescriptors == kPages);
  CHECK(t.migratePs >= kPages * gp.copyDescriptorPs);
  CHECK(t.migratePs < kPages * gp.copyDescriptorPs + kDataBound);
  CHECK(t.copyPs >= kPages * gp.copyDescriptorPs);
  CHECK(t.copyPs < kPages * gp.copyDescriptorPs + kDataBound);
}

TEST_CASE("gpu copy engine: a migration and a copy to user memory wait for their unmaps' IOTLB flush",
          "[devices][gpu]") {
  GpuParams gp = smallGpu();
  gp.copyDescriptorPs = 0;
  PlatformDesc d = GpuPlatform::desc(gp, smallGpuDriver());
  d.iommu.iommu.iotlbInvalidationLatencyPs = 50 * kUs;  // strict unmaps: 50 us each
  GpuPlatform p(d);
  const CopyTimes t = timeCopies(p);
  CHECK(t.migrateInvalPs >= 50 * kUs);  // at least one run unmapped
  CHECK(t.copyInvalPs >= 50 * kUs);
  CHECK(t.migratePs >= t.migrateInvalPs);
  CHECK(t.migratePs < t.migrateInvalPs + kDataBound);
  CHECK(t.copyPs >= t.copyInvalPs);
  CHECK(t.copyPs < t.copyInvalPs + kDataBound);
}
