// DmaMapping and IovaDomain: the DMA API over the Iommu. One behaviour per case.
#include <catch2/catch.hpp>

#include "models/pcie/dma_mapping.h"

using namespace hmmsim;

namespace {
constexpr Bdf kBdfA{0, 1, 0, 0};
constexpr Bdf kBdfB{0, 2, 0, 0};
// A host bridge's 32-bit memory window and 64-bit prefetchable window (bus addresses).
const IovaWindow kMemWindow{BusAddr(0xc000'0000), 0x2000'0000};         // [3 GiB, 3.5 GiB)
const IovaWindow kPrefWindow{BusAddr(0x38'0000'0000), 0x10'0000'0000};  // 64 GiB at 224 GiB

DmaDeviceParams devParams(Bdf bdf) {
  DmaDeviceParams p;
  p.bdf = bdf;
  p.reservedWindows = {kMemWindow, kPrefWindow};
  return p;
}

IommuParams modeParams(IommuMode mode, IommuInvalidation inv = IommuInvalidation::Strict) {
  IommuParams p;
  p.mode = mode;
  p.invalidation = inv;
  return p;
}

struct Fixture {
  explicit Fixture(IommuParams ip = {}, DmaMappingParams dp = {})
      : iommu("top.iommu", ip), dma("top.dma", iommu, dp), devA("nic0"), devB("gpu0") {
    REQUIRE(dma.attachDevice(devA, devParams(kBdfA)) == Errno::Ok);
  }
  Iommu iommu;
  DmaMapping dma;
  Device devA;
  Device devB;
};

bool insideWindow(std::uint64_t a, std::uint64_t size, const IovaWindow& w) {
  return a < w.start.value() + w.size && w.start.value() < a + size;
}
}  // namespace

// ---- IOVA allocator ----

TEST_CASE("the IOVA allocator hands out the highest free range below the limit") {
  IovaDomain iovad;
  auto a = iovad.allocIova(1, 0xfffff, true);
  auto b = iovad.allocIova(1, 0xfffff, true);
  REQUIRE(a);
  REQUIRE(b);
  CHECK(*a == 0xfffff);
  CHECK(*b == 0xffffe);
}

TEST_CASE("the IOVA allocator aligns a range to its size rounded up to a power of two") {
  IovaDomain iovad;
  REQUIRE(iovad.allocIova(1, 0xfffff, true));      // 0xfffff
  auto three = iovad.allocIova(3, 0xfffff, true);  // needs 4-page alignment
  REQUIRE(three);
  CHECK(*three % 4 == 0);
  CHECK(*three + 3 - 1 < 0xfffff);
  auto unaligned = iovad.allocIova(3, 0xfffff, false);  // may sit right below the previous one
  REQUIRE(unaligned);
  CHECK(*unaligned + 3 == *three);
}

TEST_CASE("the IOVA allocator never hands out pages inside reserved ranges") {
  IovaDomain iovad;
  REQUIRE(iovad.reserveIova(0x80, 0xff) == Errno::Ok);
  std::vector<std::uint64_t> got;
  while (auto p = iovad.allocIova(1, 0xff + 0x10, true)) got.push_back(*p);
  // Pages 1..0x7f and 0x100..0x10f: everything except page 0 and the reservation.
  CHECK(got.size() == 0x7f + 0x10);
  for (std::uint64_t p : got) CHECK((p < 0x80 || p > 0xff));
  for (std::uint64_t p : got) CHECK(p != 0);
}

TEST_CASE("a hole above the last allocation is used only once the space below it runs out") {
  // The kernel searches below its cached node first and retries above it only on failure.
  IovaDomain iovad;
  REQUIRE(iovad.allocIova(1, 0xf, true) == std::optional<std::uint64_t>(0xf));
  REQUIRE(iovad.allocIova(4, 0xf, true) == std::optional<std::uint64_t>(0x8));  // leaves 0xc..0xe free
  CHECK(iovad.allocIova(1, 0xf, true) == std::optional<std::uint64_t>(0x7));    // not 0xe
  for (std::uint64_t p = 6; p >= 1; --p)
    REQUIRE(iovad.allocIova(1, 0xf, true) == std::optional<std::uint64_t>(p));
  CHECK(iovad.allocIova(1, 0xf, true) == std::optional<std::uint64_t>(0xe));  // the retry pass
}

TEST_CASE("a freed IOVA range is handed out again") {
  IovaDomain iovad;
  auto a = iovad.allocIova(4, 0xfff, true);
  REQUIRE(a);
  REQUIRE(iovad.allocIova(4, 0xfff, true));
  REQUIRE(iovad.freeIova(*a + 2) == Errno::Ok);  // any page inside frees the range
  CHECK(iovad.findIova(*a) == nullptr);
  auto again = iovad.allocIova(4, 0xfff, true);
  REQUIRE(again);
  CHECK(*again == *a);
  CHECK(iovad.freeIova(0x5) == Errno::Inval);
}

TEST_CASE("IOVA allocation fails when no range fits below the limit") {
  IovaDomain iovad;
  CHECK(iovad.allocIova(8, 7, true) == std::nullopt);  // pages 1..7 cannot hold an aligned 8
  REQUIRE(iovad.allocIova(4, 7, true));                // 4..7
  CHECK(iovad.allocIova(4, 7, true) == std::nullopt);  // 0..3 would include page 0
}

TEST_CASE("reserving over an allocated IOVA returns EBUSY and reservations merge") {
  IovaDomain iovad;
  auto a = iovad.allocIova(1, 0xff, true);
  REQUIRE(a);
  CHECK(iovad.reserveIova(*a, *a) == Errno::Busy);
  REQUIRE(iovad.reserveIova(0x10, 0x20) == Errno::Ok);
  REQUIRE(iovad.reserveIova(0x18, 0x30) == Errno::Ok);
  const IovaNode* n = iovad.findIova(0x2f);
  REQUIRE(n);
  CHECK(n->pfnLo == 0x10);
  CHECK(n->pfnHi == 0x30);
  CHECK(iovad.freeIova(0x20) == Errno::Inval);  // reservations are not freed
}

// ---- the DMA API with the IOMMU translating ----

TEST_CASE("dma_map_page returns an IOVA that the IOMMU translates to the page, offset kept") {
  Fixture f;
  DmaAddr a = f.dma.dmaMapPage(f.devA, Pa(0x1234'5678), 0x100, DmaDir::Bidirectional);
  REQUIRE_FALSE(f.dma.dmaMappingError(f.devA, a));
  CHECK((a.value() & 0xfff) == 0x678);
  IommuTranslation t = f.iommu.translate(kBdfA, Iova(a.value()), true, 0);
  REQUIRE(t.ok);
  CHECK(t.pa == Pa(0x1234'5678));
}

TEST_CASE("PCI devices get IOVAs below 4 GiB first, top-down and clear of the host-bridge window") {
  Fixture f;
  DmaAddr a = f.dma.dmaMapPage(f.devA, Pa(0x1000'0000), kPageSize, DmaDir::ToDevice);
  DmaAddr b = f.dma.dmaMapPage(f.devA, Pa(0x1000'1000), kPageSize, DmaDir::ToDevice);
  REQUIRE_FALSE(f.dma.dmaMappingError(f.devA, a));
  // Highest page below 4 GiB is 0xfffff000; the MSI range [0xfee00000, 0xfef00000) is reserved.
  CHECK(a.value() == 0xffff'f000);
  CHECK(b.value() == 0xffff'e000);
}

TEST_CASE("DMA IOVAs never alias the host-bridge windows even when the space below them fills") {
  IommuParams ip;
  Fixture f(ip);
  // Map 2 MiB chunks until the 32-bit space above the window is exhausted and allocation moves
  // below the window; no IOVA may overlap it.
  bool belowWindow = false;
  for (int i = 0; i < 300 && !belowWindow; ++i) {
    DmaAddr a = f.dma.dmaMapPage(f.devA, Pa(0x4000'0000 + std::uint64_t(i) * kPmdSize), kPmdSize,
                                 DmaDir::Bidirectional);
    REQUIRE_FALSE(f.dma.dmaMappingError(f.devA, a));
    CHECK_FALSE(insideWindow(a.value(), kPmdSize, kMemWindow));
    CHECK_FALSE(insideWindow(a.value(), kPmdSize, IovaWindow{BusAddr(0xfee0'0000), 0x10'0000}));
    belowWindow = a.value() < kMemWindow.start.value();
  }
  CHECK(belowWindow);
}

TEST_CASE("a device whose 32-bit IOVA space is full gets IOVAs above 4 GiB below its DMA mask") {
  Fixture f;
  Device dev("dev40");
  DmaDeviceParams p = devParams(kBdfB);
  p.dmaMask = dmaBitMask(40);
  p.reservedWindows = {IovaWindow{BusAddr(0x1000), 0xffff'f000}};  // everything below 4 GiB but page 0
  REQUIRE(f.dma.attachDevice(dev, p) == Errno::Ok);
  DmaAddr a = f.dma.dmaMapPage(dev, Pa(0x1000'0000), kPageSize, DmaDir::Bidirectional);
  REQUIRE_FALSE(f.dma.dmaMappingError(dev, a));
  CHECK(a.value() == dmaBitMask(40) - 0xfff);
}

TEST_CASE("an exhausted IOVA space makes dma_map_page return DMA_MAPPING_ERROR") {
  Fixture f;
  Device dev("dev13");
  DmaDeviceParams p = devParams(kBdfB);
  p.dmaMask = dmaBitMask(14);  // pages 1..3 usable
  p.reservedWindows.clear();
  REQUIRE(f.dma.attachDevice(dev, p) == Errno::Ok);
  for (int i = 0; i < 3; ++i)
    REQUIRE_FALSE(
        f.dma.dmaMappingError(dev, f.dma.dmaMapPage(dev, Pa(0x10'0000), kPageSize, DmaDir::ToDevice)));
  CHECK(f.dma.dmaMappingError(dev, f.dma.dmaMapPage(dev, Pa(0x10'0000), kPageSize, DmaDir::ToDevice)));
  CHECK(f.dma.stats().counterValue("iova_alloc_failures") == 1);
}

TEST_CASE("a DMA_TO_DEVICE mapping is read-only for the device") {
  Fixture f;
  DmaAddr a = f.dma.dmaMapPage(f.devA, Pa(0x1000'0000), kPageSize, DmaDir::ToDevice);
  CHECK(f.iommu.translate(kBdfA, Iova(a.value()), false, 0).ok);
  CHECK(f.iommu.translate(kBdfA, Iova(a.value()), true, 0).reason == IommuFaultReason::WriteDenied);
}

TEST_CASE("strict mode: after dma_unmap_page returns the device's access faults and the IOVA is free") {
  Fixture f;
  DmaAddr a = f.dma.dmaMapPage(f.devA, Pa(0x1000'0000), kPageSize, DmaDir::Bidirectional);
  REQUIRE(f.iommu.translate(kBdfA, Iova(a.value()), false, 0).ok);
  REQUIRE(f.dma.dmaUnmapPage(f.devA, a, kPageSize, DmaDir::Bidirectional) == Errno::Ok);
  IommuTranslation t = f.iommu.translate(kBdfA, Iova(a.value()), false, 0);
  CHECK_FALSE(t.ok);
  CHECK(t.reason == IommuFaultReason::NotPresent);
  CHECK(f.dma.iovaDomainOf(f.devA)->allocatedCount() == 0);
}

TEST_CASE("lazy mode: the stale window lasts until the flush-queue timeout and ends at it") {
  Fixture f(modeParams(IommuMode::Translate, IommuInvalidation::Lazy));
  f.dma.tick(1'000'000);
  DmaAddr a = f.dma.dmaMapPage(f.devA, Pa(0x1000'0000), kPageSize, DmaDir::Bidirectional);
  REQUIRE(f.iommu.translate(kBdfA, Iova(a.value()), false, 0).ok);  // fills the IOTLB
  REQUIRE(f.dma.dmaUnmapPage(f.devA, a, kPageSize, DmaDir::Bidirectional) == Errno::Ok);
  CHECK(f.dma.flushQueueDepth(f.devA) == 1);
  // Inside the window (10 ms from the unmap): every access still translates, through a stale entry.
  int inside = 0;
  for (std::uint64_t t = 1'000'000; t < 1'000'000 + 10'000'000'000; t += 1'000'000'000) {
    f.dma.tick(t);
    IommuTranslation r = f.iommu.translate(kBdfA, Iova(a.value()), false, t);
    if (r.ok && r.stale) ++inside;
  }
  CHECK(inside == 10);
  CHECK(f.iommu.stats().counterValue("stale_accesses") == 10);
  // At the deadline the queue flushes: the window closes and the IOVA is freed.
  f.dma.tick(1'000'000 + 10'000'000'000);
  CHECK(f.dma.flushQueueDepth(f.devA) == 0);
  CHECK(f.dma.stats().counterValue("fq_flushes_timeout") == 1);
  CHECK_FALSE(f.iommu.translate(kBdfA, Iova(a.value()), false, 0).ok);
  CHECK(f.iommu.stats().counterValue("stale_accesses") == 10);
  CHECK(f.dma.iovaDomainOf(f.devA)->allocatedCount() == 0);
}

TEST_CASE("lazy mode: a queued IOVA is not handed out again before the flush") {
  Fixture f(modeParams(IommuMode::Translate, IommuInvalidation::Lazy));
  DmaAddr a = f.dma.dmaMapPage(f.devA, Pa(0x1000'0000), kPageSize, DmaDir::Bidirectional);
  REQUIRE(f.dma.dmaUnmapPage(f.devA, a, kPageSize, DmaDir::Bidirectional) == Errno::Ok);
  DmaAddr b = f.dma.dmaMapPage(f.devA, Pa(0x2000'0000), kPageSize, DmaDir::Bidirectional);
  CHECK(b != a);
  f.dma.flushAllQueues();
  DmaAddr c = f.dma.dmaMapPage(f.devA, Pa(0x3000'0000), kPageSize, DmaDir::Bidirectional);
  CHECK(c == a);
}

TEST_CASE("lazy mode: a full flush queue is flushed before the next IOVA is queued") {
  DmaMappingParams dp;
  dp.flushQueueSize = 4;
  Fixture f(modeParams(IommuMode::Translate, IommuInvalidation::Lazy), dp);
  std::vector<DmaAddr> addrs;
  for (int i = 0; i < 5; ++i)
    addrs.push_back(f.dma.dmaMapPage(f.devA, Pa(0x1000'0000 + std::uint64_t(i) * kPageSize), kPageSize,
                                     DmaDir::ToDevice));
  for (int i = 0; i < 4; ++i) {
    f.iommu.translate(kBdfA, Iova(addrs[i].value()), false, 0);
    REQUIRE(f.dma.dmaUnmapPage(f.devA, addrs[i], kPageSize, DmaDir::ToDevice) == Errno::Ok);
  }
  CHECK(f.dma.flushQueueDepth(f.devA) == 4);
  CHECK(f.iommu.translate(kBdfA, Iova(addrs[0].value()), false, 0).stale);
  REQUIRE(f.dma.dmaUnmapPage(f.devA, addrs[4], kPageSize, DmaDir::ToDevice) == Errno::Ok);
  CHECK(f.dma.stats().counterValue("fq_flushes_full") == 1);
  CHECK(f.dma.flushQueueDepth(f.devA) == 1);
  CHECK_FALSE(f.iommu.translate(kBdfA, Iova(addrs[0].value()), false, 0).ok);
}

TEST_CASE("unmapping with a wrong size or direction returns EINVAL and keeps the mapping") {
  Fixture f;
  DmaAddr a = f.dma.dmaMapPage(f.devA, Pa(0x1000'0000), kPageSize, DmaDir::FromDevice);
  CHECK(f.dma.dmaUnmapPage(f.devA, a, 2 * kPageSize, DmaDir::FromDevice) == Errno::Inval);
  CHECK(f.dma.dmaUnmapPage(f.devA, a, kPageSize, DmaDir::ToDevice) == Errno::Inval);
  CHECK(f.dma.dmaUnmapPage(f.devA, a + kPageSize, kPageSize, DmaDir::FromDevice) == Errno::Inval);
  CHECK(f.dma.dmaUnmapResource(f.devA, a, kPageSize, DmaDir::FromDevice) == Errno::Inval);
  CHECK(f.iommu.translate(kBdfA, Iova(a.value()), true, 0).ok);
  CHECK(f.dma.stats().counterValue("bad_unmaps") == 4);
  CHECK(f.dma.dmaUnmapPage(f.devA, a, kPageSize, DmaDir::FromDevice) == Errno::Ok);
}

TEST_CASE("two devices get separate domains: one's IOVA does not reach the other's memory") {
  Fixture f;
  REQUIRE(f.dma.attachDevice(f.devB, devParams(kBdfB)) == Errno::Ok);
  DmaAddr a = f.dma.dmaMapPage(f.devA, Pa(0x1000'0000), kPageSize, DmaDir::Bidirectional);
  DmaAddr b = f.dma.dmaMapPage(f.devB, Pa(0x2000'0000), kPageSize, DmaDir::Bidirectional);
  CHECK(f.dma.domainOf(f.devA) != f.dma.domainOf(f.devB));
  CHECK(a == b);  // same IOVA in two address spaces
  CHECK(f.iommu.translate(kBdfA, Iova(a.value()), false, 0).pa == Pa(0x1000'0000));
  CHECK(f.iommu.translate(kBdfB, Iova(b.value()), false, 0).pa == Pa(0x2000'0000));
  REQUIRE(f.dma.dmaUnmapPage(f.devA, a, kPageSize, DmaDir::Bidirectional) == Errno::Ok);
  CHECK_FALSE(f.iommu.translate(kBdfA, Iova(a.value()), false, 0).ok);
  CHECK(f.iommu.translate(kBdfB, Iova(b.value()), false, 0).ok);
}

TEST_CASE("detaching a device with live mappings returns EBUSY") {
  Fixture f;
  DmaAddr a = f.dma.dmaMapPage(f.devA, Pa(0x1000'0000), kPageSize, DmaDir::Bidirectional);
  CHECK(f.dma.detachDevice(f.devA) == Errno::Busy);
  REQUIRE(f.dma.dmaUnmapPage(f.devA, a, kPageSize, DmaDir::Bidirectional) == Errno::Ok);
  CHECK(f.dma.detachDevice(f.devA) == Errno::Ok);
  CHECK(f.iommu.domainForDev(kBdfA) == nullptr);
}

TEST_CASE("devices of one IOMMU group share a domain, so one's IOVA reaches the other's mapping") {
  Fixture f;
  DmaDeviceParams p = devParams(kBdfB);
  p.groupWith = &f.devA;
  REQUIRE(f.dma.attachDevice(f.devB, p) == Errno::Ok);
  CHECK(f.dma.domainOf(f.devB) == f.dma.domainOf(f.devA));
  DmaAddr a = f.dma.dmaMapPage(f.devA, Pa(0x1000'0000), kPageSize, DmaDir::Bidirectional);
  DmaAddr b = f.dma.dmaMapPage(f.devB, Pa(0x2000'0000), kPageSize, DmaDir::Bidirectional);
  CHECK(a != b);  // one IOVA space for the group
  CHECK(f.iommu.translate(kBdfB, Iova(a.value()), false, 0).pa == Pa(0x1000'0000));
  CHECK(f.iommu.translate(kBdfA, Iova(b.value()), false, 0).pa == Pa(0x2000'0000));
}

TEST_CASE("an IOMMU group's domain lives until its last device detaches") {
  Fixture f;
  DmaDeviceParams p = devParams(kBdfB);
  p.groupWith = &f.devA;
  REQUIRE(f.dma.attachDevice(f.devB, p) == Errno::Ok);
  CHECK(f.dma.detachDevice(f.devA) == Errno::Busy);  // devB joined through it
  REQUIRE(f.dma.detachDevice(f.devB) == Errno::Ok);
  CHECK(f.iommu.domainForDev(kBdfB) == nullptr);
  CHECK(f.iommu.domainForDev(kBdfA) != nullptr);
  REQUIRE(f.dma.detachDevice(f.devA) == Errno::Ok);
  CHECK(f.iommu.domainForDev(kBdfA) == nullptr);
}

TEST_CASE("joining the group of a device that is not attached returns ENODEV") {
  Fixture f;
  Device stranger("stranger");
  DmaDeviceParams p = devParams(kBdfB);
  p.groupWith = &stranger;
  CHECK(f.dma.attachDevice(f.devB, p) == Errno::NoDev);
  CHECK(f.iommu.domainForDev(kBdfB) == nullptr);
}

// ---- direct paths ----

TEST_CASE("with the IOMMU off the DMA address is the physical address plus the bus offset") {
  Fixture f(modeParams(IommuMode::Off));
  Device dev("offset-dev");
  DmaDeviceParams p = devParams(kBdfB);
  p.dmaOffset = 0x8000'0000;
  REQUIRE(f.dma.attachDevice(dev, p) == Errno::Ok);
  CHECK(f.dma.dmaMapPage(f.devA, Pa(0x1234'5000), 64, DmaDir::ToDevice) == DmaAddr(0x1234'5000));
  CHECK(f.dma.dmaMapPage(dev, Pa(0x1234'5000), 64, DmaDir::ToDevice) == DmaAddr(0x9234'5000));
  CHECK(f.dma.domainOf(f.devA) == nullptr);
}

TEST_CASE("passthrough: DMA addresses are physical and the identity domain passes them") {
  Fixture f(modeParams(IommuMode::Passthrough));
  DmaAddr a = f.dma.dmaMapPage(f.devA, Pa(0x7654'3210), 64, DmaDir::Bidirectional);
  CHECK(a == DmaAddr(0x7654'3210));
  REQUIRE(f.dma.domainOf(f.devA));
  CHECK(f.dma.domainOf(f.devA)->type() == IommuDomainType::Identity);
  IommuTranslation t = f.iommu.translate(kBdfA, Iova(a.value()), true, 0);
  CHECK(t.ok);
  CHECK(t.pa == Pa(0x7654'3210));
}

TEST_CASE("a direct mapping beyond the DMA mask fails (no swiotlb bounce)") {
  Fixture f(modeParams(IommuMode::Off));
  Device dev("dev32");
  DmaDeviceParams p = devParams(kBdfB);
  p.dmaMask = dmaBitMask(32);
  REQUIRE(f.dma.attachDevice(dev, p) == Errno::Ok);
  CHECK(f.dma.dmaMappingError(dev, f.dma.dmaMapPage(dev, Pa(0xffff'f000), 0x2000, DmaDir::ToDevice)));
  CHECK(f.dma.stats().counterValue("direct_unreachable") == 1);
  CHECK_FALSE(f.dma.dmaMappingError(dev, f.dma.dmaMapPage(dev, Pa(0xffff'f000), 0x1000, DmaDir::ToDevice)));
}

// ---- resources and p2p ----

TEST_CASE("dma_map_resource maps a peer BAR through the IOMMU as MMIO") {
  Fixture f;
  const Pa bar(0xc010'0000);
  DmaAddr a = f.dma.dmaMapResource(f.devA, bar, 0x10000, DmaDir::Bidirectional);
  REQUIRE_FALSE(f.dma.dmaMappingError(f.devA, a));
  CHECK_FALSE(insideWindow(a.value(), 0x10000, kMemWindow));
  IommuTranslation t = f.iommu.translate(kBdfA, Iova(a.value() + 0x40), true, 0);
  REQUIRE(t.ok);
  CHECK(t.pa == bar + 0x40);
  CHECK((t.prot & kIommuMmio) != 0);
  CHECK(f.dma.dmaUnmapResource(f.devA, a, 0x10000, DmaDir::Bidirectional) == Errno::Ok);
}

TEST_CASE("dma_map_resource without an IOMMU returns the physical address without the bus offset") {
  Fixture f(modeParams(IommuMode::Off));
  Device dev("offset-dev");
  DmaDeviceParams p = devParams(kBdfB);
  p.dmaOffset = 0x8000'0000;
  REQUIRE(f.dma.attachDevice(dev, p) == Errno::Ok);
  CHECK(f.dma.dmaMapResource(dev, Pa(0xc010'0000), 0x1000, DmaDir::ToDevice) == DmaAddr(0xc010'0000));
}

TEST_CASE("dma_map_resource of RAM fails") {
  DmaMappingParams dp;
  dp.isRam = [](Pa pa) { return pa.value() < 0x8000'0000; };
  Fixture f(IommuParams{}, dp);
  CHECK(
      f.dma.dmaMappingError(f.devA, f.dma.dmaMapResource(f.devA, Pa(0x1000'0000), 0x1000, DmaDir::ToDevice)));
  CHECK_FALSE(
      f.dma.dmaMappingError(f.devA, f.dma.dmaMapResource(f.devA, Pa(0xc000'0000), 0x1000, DmaDir::ToDevice)));
}
