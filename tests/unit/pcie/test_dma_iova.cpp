// The two-step DMA API of Linux 6.15+ (models/pcie/dma_iova.cpp): dma_iova_try_alloc,
// dma_iova_link, dma_iova_unlink, dma_iova_free, and the refs that let a mirror hold a page twice.
#include <catch2/catch.hpp>

#include "models/pcie/dma_mapping.h"

using namespace hmmsim;

namespace {
constexpr Bdf kBdf{0, 1, 0, 0};

struct Fixture {
  explicit Fixture(IommuMode mode = IommuMode::Translate)
      : iommu("top.iommu", params(mode)), dma("top.dma", iommu, {}), dev("nic0") {
    DmaDeviceParams p;
    p.bdf = kBdf;
    REQUIRE(dma.attachDevice(dev, p) == Errno::Ok);
  }
  static IommuParams params(IommuMode mode) {
    IommuParams p;
    p.mode = mode;
    return p;
  }
  /// Where the IOMMU sends a device read of `a` (nullopt: it faults).
  std::optional<Pa> through(DmaAddr a) {
    const IommuTranslation t = iommu.translate(kBdf, Iova(a.value()), false, 0);
    return t.ok ? std::optional<Pa>(t.pa) : std::nullopt;
  }
  Iommu iommu;
  DmaMapping dma;
  Device dev;
};
}  // namespace

TEST_CASE("dma_iova_try_alloc gives a translating device one range and a direct-mapped one none") {
  Fixture f;
  DmaIovaState s;
  REQUIRE(f.dma.dmaIovaTryAlloc(f.dev, s, 16 * kPageSize));
  CHECK(s.allocated());
  CHECK(s.addr.value() % (16 * kPageSize) == 0);  // size-aligned, as every IOVA allocation
  CHECK(f.dma.stats().counterValue("iova_ranges") == 1);
  Fixture pt(IommuMode::Passthrough);
  DmaIovaState d;
  CHECK_FALSE(pt.dma.dmaIovaTryAlloc(pt.dev, d, 16 * kPageSize));
  CHECK_FALSE(d.allocated());
  Device stranger("gpu9");
  CHECK_FALSE(f.dma.dmaIovaTryAlloc(stranger, d, kPageSize));  // not attached
}

TEST_CASE("pages linked at their offsets make one IOVA-contiguous range over scattered frames") {
  Fixture f;
  DmaIovaState s;
  REQUIRE(f.dma.dmaIovaTryAlloc(f.dev, s, 4 * kPageSize));
  const Pa frames[] = {Pa(0x9000'0000), Pa(0x1234'5000), Pa(0x4000'0000), Pa(0x4000'1000)};
  for (std::uint64_t i = 0; i < 4; ++i)
    REQUIRE(f.dma.dmaIovaLink(f.dev, s, frames[i], i * kPageSize, kPageSize, DmaDir::Bidirectional) ==
            Errno::Ok);
  for (std::uint64_t i = 0; i < 4; ++i)
    CHECK(f.through(DmaAddr(s.addr.value() + i * kPageSize + 8)) == frames[i] + 8);
  CHECK(s.linked == 4);
  CHECK(f.dma.stats().counterValue("maps") == 0);  // no dma_map_page
  // Misaligned or outside the range: refused, nothing mapped.
  CHECK(f.dma.dmaIovaLink(f.dev, s, Pa(0x5000'0800), 0, kPageSize, DmaDir::Bidirectional) == Errno::Inval);
  CHECK(f.dma.dmaIovaLink(f.dev, s, Pa(0x5000'0000), 4 * kPageSize, kPageSize, DmaDir::Bidirectional) ==
        Errno::Inval);
}

TEST_CASE("a page linked twice to its frame is held twice, and another frame at its offset is refused") {
  Fixture f;
  DmaIovaState s;
  REQUIRE(f.dma.dmaIovaTryAlloc(f.dev, s, 2 * kPageSize));
  REQUIRE(f.dma.dmaIovaLink(f.dev, s, Pa(0x9000'0000), 0, kPageSize, DmaDir::Bidirectional) == Errno::Ok);
  REQUIRE(f.dma.dmaIovaLink(f.dev, s, Pa(0x9000'0000), 0, kPageSize, DmaDir::Bidirectional) == Errno::Ok);
  CHECK(f.dma.dmaIovaLink(f.dev, s, Pa(0x7000'0000), 0, kPageSize, DmaDir::Bidirectional) == Errno::Exist);
  CHECK(f.dma.stats().counterValue("iova_links") == 1);
  REQUIRE(f.dma.dmaIovaUnlink(f.dev, s, 0, kPageSize, DmaDir::Bidirectional) == Errno::Ok);
  CHECK(f.through(s.addr) == Pa(0x9000'0000));  // still held once
  REQUIRE(f.dma.dmaIovaUnlink(f.dev, s, 0, kPageSize, DmaDir::Bidirectional) == Errno::Ok);
  CHECK_FALSE(f.through(s.addr));  // the last unlink unmapped it, and the IOTLB forgot it
  CHECK(f.dma.stats().counterValue("iova_unlinks") == 1);
  CHECK(f.dma.dmaIovaUnlink(f.dev, s, 0, kPageSize, DmaDir::Bidirectional) == Errno::Inval);
}

TEST_CASE("dma_iova_unlink flushes at once even in lazy mode, and dma_iova_free gives the range back") {
  IommuParams ip;
  ip.invalidation = IommuInvalidation::Lazy;
  Iommu iommu("top.iommu", ip);
  DmaMapping dma("top.dma", iommu, {});
  Device dev("nic0");
  DmaDeviceParams p;
  p.bdf = kBdf;
  REQUIRE(dma.attachDevice(dev, p) == Errno::Ok);
  DmaIovaState s;
  REQUIRE(dma.dmaIovaTryAlloc(dev, s, kPageSize));
  const DmaAddr at = s.addr;
  REQUIRE(dma.dmaIovaLink(dev, s, Pa(0x9000'0000), 0, kPageSize, DmaDir::ToDevice) == Errno::Ok);
  REQUIRE(iommu.translate(kBdf, Iova(at.value()), false, 0).ok);  // cached in the IOTLB now
  REQUIRE(dma.dmaIovaUnlink(dev, s, 0, kPageSize, DmaDir::ToDevice) == Errno::Ok);
  CHECK_FALSE(iommu.translate(kBdf, Iova(at.value()), false, 0).ok);  // no stale window
  CHECK(dma.flushQueueDepth(dev) == 0);
  const std::size_t before = dma.iovaDomainOf(dev)->allocatedCount();
  dma.dmaIovaFree(dev, s);
  CHECK_FALSE(s.allocated());
  CHECK(dma.iovaDomainOf(dev)->allocatedCount() == before - 1);
}
