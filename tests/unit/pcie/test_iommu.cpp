// Iommu, IoPageTable, Iotlb and AtsCache: one behaviour per case.
#include <catch2/catch.hpp>

#include "models/pcie/ats_cache.h"
#include "models/pcie/iommu.h"
#include "sim/checker.h"
#include "sim/trace.h"

using namespace hmmsim;

namespace {
constexpr Bdf kDevA{0, 1, 0, 0};
constexpr Bdf kDevB{0, 2, 0, 0};

struct Fixture {
  explicit Fixture(IommuParams p = {}) : iommu("top.iommu", p), dom(iommu.domainAlloc(IommuDomainType::Dma)) {
    REQUIRE(iommu.attachDevice(dom, kDevA) == Errno::Ok);
  }
  Iommu iommu;
  IommuDomain& dom;
};

IommuParams lazyParams() {
  IommuParams p;
  p.invalidation = IommuInvalidation::Lazy;
  return p;
}
}  // namespace

// ---- page tables ----

TEST_CASE("a 4 KiB mapping translates with a 4-access walk and unmap removes it") {
  Fixture f;
  REQUIRE(f.iommu.map(f.dom, Iova(0x10000), Pa(0x5000'0000), kPageSize, kIommuRead | kIommuWrite) ==
          Errno::Ok);
  IommuTranslation t = f.iommu.translate(kDevA, Iova(0x10040), false, 0);
  REQUIRE(t.ok);
  CHECK(t.pa == Pa(0x5000'0040));
  CHECK(t.pageSize == kPageSize);
  CHECK(t.walkAccesses == 4);
  CHECK(f.iommu.unmap(f.dom, Iova(0x10000), kPageSize) == kPageSize);
  CHECK_FALSE(f.iommu.iovaToPhys(f.dom, Iova(0x10040)).has_value());
  CHECK(f.dom.pageTable().mappedBytes() == 0);
}

TEST_CASE("a 2 MiB mapping is one superpage leaf with a 3-access walk") {
  Fixture f;
  REQUIRE(f.iommu.map(f.dom, Iova(0x4000'0000), Pa(0x8000'0000), kPmdSize, kIommuRead) == Errno::Ok);
  IommuTranslation t = f.iommu.translate(kDevA, Iova(0x4012'3440), false, 0);
  REQUIRE(t.ok);
  CHECK(t.pa == Pa(0x8012'3440));
  CHECK(t.pageSize == kPmdSize);
  CHECK(t.walkAccesses == 3);
  CHECK(f.dom.pageTable().tableCount() == 3);  // root, level 3, level 2 (holds the leaf)
}

TEST_CASE("walks of one 2 MiB region read the same upper entries as a walk from the root") {
  IoPageTable pt(Pa(0x1'0000'0000));
  REQUIRE(pt.mapPage(Iova(0x4000'0000), Pa(0x5000'0000), kPageSize, kIommuRead) == Errno::Ok);
  REQUIRE(pt.mapPage(Iova(0x4000'1000), Pa(0x5000'7000), kPageSize, kIommuRead) == Errno::Ok);
  const IoWalk first = pt.walk(Iova(0x4000'0010));
  const IoWalk second = pt.walk(Iova(0x4000'1020));  // same region: upper entries remembered
  REQUIRE(second.present);
  CHECK(second.pa == Pa(0x5000'7020));
  CHECK(second.accesses == 4);
  for (unsigned i = 0; i < 3; ++i) CHECK(second.accessAddrs[i] == first.accessAddrs[i]);
  CHECK(second.accessAddrs[3] == first.accessAddrs[3] + 8);  // the next leaf entry
  // A page of the region not mapped: 4 reads, nothing present.
  const IoWalk hole = pt.walk(Iova(0x4000'2000));
  CHECK_FALSE(hole.present);
  CHECK(hole.accesses == 4);
  // Another region, then back: the same answers.
  CHECK_FALSE(pt.walk(Iova(0x4020'0000)).present);
  CHECK(pt.walk(Iova(0x4000'1020)).accessAddrs == second.accessAddrs);
}

TEST_CASE("a 2 MiB leaf replacing a walked region's emptied table is what the next walk finds") {
  IoPageTable pt(Pa(0x1'0000'0000));
  REQUIRE(pt.mapPage(Iova(0x4000'0000), Pa(0x5000'0000), kPageSize, kIommuRead) == Errno::Ok);
  REQUIRE(pt.walk(Iova(0x4000'0000)).present);  // the region's walk reached its 4 KiB table
  REQUIRE(pt.unmapPage(Iova(0x4000'0000)) == kPageSize);
  REQUIRE(pt.mapPage(Iova(0x4000'0000), Pa(0x8000'0000), kPmdSize, kIommuRead | kIommuWrite) == Errno::Ok);
  const IoWalk w = pt.walk(Iova(0x4000'3010));
  REQUIRE(w.present);
  CHECK(w.pageSize == kPmdSize);
  CHECK(w.pa == Pa(0x8000'3010));
  CHECK(w.accesses == 3);
  // The freed table is reused for another region; walks of both stay right.
  REQUIRE(pt.mapPage(Iova(0x6000'0000), Pa(0x9000'0000), kPageSize, kIommuRead) == Errno::Ok);
  CHECK(pt.walk(Iova(0x6000'0000)).pa == Pa(0x9000'0000));
  CHECK(pt.walk(Iova(0x4000'3010)).pageSize == kPmdSize);
}

TEST_CASE("iommu_map uses 2 MiB leaves only where both addresses are 2 MiB aligned") {
  Fixture f;
  // IOVA aligned, PA only 4 KiB aligned: 512 small pages.
  REQUIRE(f.iommu.map(f.dom, Iova(0x4000'0000), Pa(0x8000'1000), kPmdSize, kIommuRead) == Errno::Ok);
  CHECK(f.dom.pageTable().walk(Iova(0x4000'0000)).pageSize == kPageSize);
  // Both aligned, 4 MiB + 4 KiB: two superpages and one small page.
  REQUIRE(f.iommu.map(f.dom, Iova(0x8000'0000), Pa(0x1'0000'0000), 2 * kPmdSize + kPageSize, kIommuRead) ==
          Errno::Ok);
  CHECK(f.dom.pageTable().walk(Iova(0x8000'0000)).pageSize == kPmdSize);
  CHECK(f.dom.pageTable().walk(Iova(0x8020'0000)).pageSize == kPmdSize);
  CHECK(f.dom.pageTable().walk(Iova(0x8040'0000)).pageSize == kPageSize);
}

TEST_CASE("largePages=false maps aligned 2 MiB ranges with 4 KiB leaves") {
  IommuParams p;
  p.largePages = false;
  Fixture f(p);
  REQUIRE(f.iommu.map(f.dom, Iova(0x4000'0000), Pa(0x8000'0000), kPmdSize, kIommuRead) == Errno::Ok);
  CHECK(f.dom.pageTable().walk(Iova(0x401f'f000)).pageSize == kPageSize);
}

TEST_CASE("unmapping 4 KiB inside a 2 MiB mapping removes the whole superpage") {
  Fixture f;
  REQUIRE(f.iommu.map(f.dom, Iova(0x4000'0000), Pa(0x8000'0000), kPmdSize, kIommuRead) == Errno::Ok);
  CHECK(f.iommu.unmap(f.dom, Iova(0x4000'0000), kPageSize) == kPmdSize);
  CHECK_FALSE(f.iommu.iovaToPhys(f.dom, Iova(0x401f'f000)).has_value());
}

TEST_CASE("mapping over a live mapping returns EEXIST and keeps the old translation") {
  Fixture f;
  REQUIRE(f.iommu.map(f.dom, Iova(0x20000), Pa(0x1000'0000), kPageSize, kIommuRead) == Errno::Ok);
  CHECK(f.iommu.map(f.dom, Iova(0x1f000), Pa(0x2000'0000), 2 * kPageSize, kIommuRead) == Errno::Exist);
  CHECK(*f.iommu.iovaToPhys(f.dom, Iova(0x20000)) == Pa(0x1000'0000));
  // The failed map rolled back its first page.
  CHECK_FALSE(f.iommu.iovaToPhys(f.dom, Iova(0x1f000)).has_value());
}

TEST_CASE("iommu_map rejects unaligned or empty ranges and missing permissions with EINVAL") {
  Fixture f;
  CHECK(f.iommu.map(f.dom, Iova(0x10800), Pa(0x1000'0000), kPageSize, kIommuRead) == Errno::Inval);
  CHECK(f.iommu.map(f.dom, Iova(0x10000), Pa(0x1000'0800), kPageSize, kIommuRead) == Errno::Inval);
  CHECK(f.iommu.map(f.dom, Iova(0x10000), Pa(0x1000'0000), 100, kIommuRead) == Errno::Inval);
  CHECK(f.iommu.map(f.dom, Iova(0x10000), Pa(0x1000'0000), 0, kIommuRead) == Errno::Inval);
  CHECK(f.iommu.map(f.dom, Iova(0x10000), Pa(0x1000'0000), kPageSize, 0) == Errno::Inval);
  CHECK(f.dom.pageTable().mappedBytes() == 0);
}

// ---- faults ----

TEST_CASE("a translation of an unmapped IOVA faults, aborts and records the fault") {
  Fixture f;
  IommuTranslation t = f.iommu.translate(kDevA, Iova(0x7000'0000), true, 12345);
  CHECK_FALSE(t.ok);
  CHECK(t.reason == IommuFaultReason::NotPresent);
  REQUIRE(f.iommu.faultRecords().size() == 1);
  const IommuFault& r = f.iommu.faultRecords().front();
  CHECK(r.rid == kDevA);
  CHECK(r.iova == Iova(0x7000'0000));
  CHECK(r.write);
  CHECK(r.timePs == 12345);
  CHECK(r.reason == IommuFaultReason::NotPresent);
  CHECK(f.iommu.stats().counterValue("faults") == 1);
}

TEST_CASE("a write through a read-only mapping faults with WriteDenied while reads pass") {
  Fixture f;
  REQUIRE(f.iommu.map(f.dom, Iova(0x10000), Pa(0x1000'0000), kPageSize, kIommuRead) == Errno::Ok);
  CHECK(f.iommu.translate(kDevA, Iova(0x10000), false, 0).ok);
  IommuTranslation w = f.iommu.translate(kDevA, Iova(0x10000), true, 0);  // IOTLB hit, still checked
  CHECK_FALSE(w.ok);
  CHECK(w.reason == IommuFaultReason::WriteDenied);
  REQUIRE(f.iommu.faultRecords().size() == 1);
  CHECK(f.iommu.faultRecords()[0].reason == IommuFaultReason::WriteDenied);
}

TEST_CASE("a read through a write-only mapping faults with ReadDenied") {
  Fixture f;
  REQUIRE(f.iommu.map(f.dom, Iova(0x10000), Pa(0x1000'0000), kPageSize, kIommuWrite) == Errno::Ok);
  IommuTranslation r = f.iommu.translate(kDevA, Iova(0x10000), false, 0);
  CHECK_FALSE(r.ok);
  CHECK(r.reason == IommuFaultReason::ReadDenied);
}

TEST_CASE("a requester without a domain faults with NoDomain") {
  Fixture f;
  IommuTranslation t = f.iommu.translate(kDevB, Iova(0x10000), false, 0);
  CHECK_FALSE(t.ok);
  CHECK(t.reason == IommuFaultReason::NoDomain);
  CHECK(f.iommu.faultRecords().at(0).rid == kDevB);
}

TEST_CASE("a device in a blocked domain has all DMA refused") {
  Iommu iommu("top.iommu", IommuParams{});
  IommuDomain& b = iommu.domainAlloc(IommuDomainType::Blocked);
  REQUIRE(iommu.attachDevice(b, kDevA) == Errno::Ok);
  CHECK(iommu.translate(kDevA, Iova(0x1000), false, 0).reason == IommuFaultReason::Blocked);
}

TEST_CASE("an IOVA beyond 48 bits faults with BeyondAddressWidth") {
  Fixture f;
  CHECK(f.iommu.translate(kDevA, Iova(1ull << 48), false, 0).reason == IommuFaultReason::BeyondAddressWidth);
}

TEST_CASE("the fault log keeps the oldest records and counts the overflow") {
  IommuParams p;
  p.faultRecords = 2;
  Fixture f(p);
  for (int i = 0; i < 5; ++i) f.iommu.translate(kDevA, Iova(0x1000ull * (i + 1)), false, std::uint64_t(i));
  REQUIRE(f.iommu.faultRecords().size() == 2);
  CHECK(f.iommu.faultRecords()[0].iova == Iova(0x1000));
  CHECK(f.iommu.faultRecords()[1].iova == Iova(0x2000));
  CHECK(f.iommu.stats().counterValue("fault_overflows") == 3);
  CHECK(f.iommu.stats().counterValue("faults") == 5);
}

// ---- domains and modes ----

TEST_CASE("distinct domains isolate devices") {
  Fixture f;
  IommuDomain& other = f.iommu.domainAlloc(IommuDomainType::Dma);
  REQUIRE(f.iommu.attachDevice(other, kDevB) == Errno::Ok);
  REQUIRE(f.iommu.map(f.dom, Iova(0x10000), Pa(0x1000'0000), kPageSize, kIommuRead) == Errno::Ok);
  REQUIRE(f.iommu.map(other, Iova(0x10000), Pa(0x2000'0000), kPageSize, kIommuRead) == Errno::Ok);
  REQUIRE(f.iommu.map(other, Iova(0x20000), Pa(0x3000'0000), kPageSize, kIommuRead) == Errno::Ok);
  CHECK(f.iommu.translate(kDevA, Iova(0x10000), false, 0).pa == Pa(0x1000'0000));
  CHECK(f.iommu.translate(kDevB, Iova(0x10000), false, 0).pa == Pa(0x2000'0000));
  // A's IOTLB entry for 0x10000 does not serve B, and B's other mapping is invisible to A.
  CHECK(f.iommu.translate(kDevB, Iova(0x10000), false, 0).pa == Pa(0x2000'0000));
  CHECK(f.iommu.translate(kDevA, Iova(0x20000), false, 0).reason == IommuFaultReason::NotPresent);
}

TEST_CASE("after a detach the device's DMA faults NoDomain, after a re-attach it uses the new domain") {
  Fixture f;
  REQUIRE(f.iommu.map(f.dom, Iova(0x10000), Pa(0x5000'0000), kPageSize, kIommuRead) == Errno::Ok);
  REQUIRE(f.iommu.translate(kDevA, Iova(0x10000), false, 0).ok);
  REQUIRE(f.iommu.detachDevice(kDevA) == Errno::Ok);
  IommuTranslation t = f.iommu.translate(kDevA, Iova(0x10000), false, 0);
  CHECK_FALSE(t.ok);
  CHECK(t.reason == IommuFaultReason::NoDomain);
  IommuDomain& other = f.iommu.domainAlloc(IommuDomainType::Dma);
  REQUIRE(f.iommu.map(other, Iova(0x10000), Pa(0x6000'0000), kPageSize, kIommuRead) == Errno::Ok);
  REQUIRE(f.iommu.attachDevice(other, kDevA) == Errno::Ok);
  t = f.iommu.translate(kDevA, Iova(0x10000), false, 0);
  REQUIRE(t.ok);
  CHECK(t.pa == Pa(0x6000'0000));
}

TEST_CASE("attaching a device already in another domain returns EBUSY") {
  Fixture f;
  IommuDomain& other = f.iommu.domainAlloc(IommuDomainType::Dma);
  CHECK(f.iommu.attachDevice(other, kDevA) == Errno::Busy);
  CHECK(f.iommu.attachDevice(f.dom, kDevA) == Errno::Exist);
  CHECK(f.iommu.domainFree(f.dom) == Errno::Busy);
  CHECK(f.iommu.detachDevice(kDevA) == Errno::Ok);
  CHECK(f.iommu.detachDevice(kDevA) == Errno::NoDev);
  CHECK(f.iommu.attachDevice(other, kDevA) == Errno::Ok);
}

TEST_CASE("with the IOMMU off a request's address passes unchanged and nothing is counted") {
  IommuParams p;
  p.mode = IommuMode::Off;
  Iommu iommu("top.iommu", p);
  IommuTranslation t = iommu.translate(kDevA, Iova(0x1234'5678), true, 0);
  CHECK(t.ok);
  CHECK_FALSE(t.translated);
  CHECK(t.pa == Pa(0x1234'5678));
  CHECK(t.latencyPs == 0);
  CHECK(iommu.stats().counterValue("translations") == 0);
}

TEST_CASE("an identity domain passes addresses through without a walk") {
  Iommu iommu("top.iommu", IommuParams{});
  IommuDomain& id = iommu.domainAlloc(IommuDomainType::Identity);
  REQUIRE(iommu.attachDevice(id, kDevA) == Errno::Ok);
  IommuTranslation t = iommu.translate(kDevA, Iova(0x9'8765'4000), false, 0);
  CHECK(t.ok);
  CHECK_FALSE(t.translated);
  CHECK(t.pa == Pa(0x9'8765'4000));
  CHECK(iommu.stats().counterValue("walk_accesses") == 0);
}

// ---- invalidation ----

TEST_CASE("strict unmap: no translation survives in the IOTLB after unmap returns") {
  Fixture f;
  REQUIRE(f.iommu.map(f.dom, Iova(0x10000), Pa(0x1000'0000), kPageSize, kIommuRead) == Errno::Ok);
  REQUIRE(f.iommu.translate(kDevA, Iova(0x10000), false, 0).ok);
  REQUIRE(f.iommu.translate(kDevA, Iova(0x10000), false, 0).iotlbHit);
  REQUIRE(f.iommu.unmap(f.dom, Iova(0x10000), kPageSize) == kPageSize);
  IommuTranslation t = f.iommu.translate(kDevA, Iova(0x10000), false, 0);
  CHECK_FALSE(t.ok);
  CHECK_FALSE(t.iotlbHit);
  CHECK(t.reason == IommuFaultReason::NotPresent);
  CHECK(f.iommu.stats().counterValue("stale_accesses") == 0);
}

TEST_CASE("unmapFast leaves a stale IOTLB entry usable until iotlbSync") {
  Fixture f(lazyParams());
  REQUIRE(f.iommu.map(f.dom, Iova(0x10000), Pa(0x1000'0000), kPageSize, kIommuRead) == Errno::Ok);
  REQUIRE(f.iommu.translate(kDevA, Iova(0x10000), false, 0).ok);
  IommuIotlbGather g;
  REQUIRE(f.iommu.unmapFast(f.dom, Iova(0x10000), kPageSize, g) == kPageSize);
  IommuTranslation stale = f.iommu.translate(kDevA, Iova(0x10080), false, 0);
  CHECK(stale.ok);
  CHECK(stale.stale);
  CHECK(stale.pa == Pa(0x1000'0080));
  CHECK(f.iommu.stats().counterValue("stale_accesses") == 1);
  REQUIRE(f.iommu.iotlbSync(f.dom, g) == Errno::Ok);
  CHECK_FALSE(f.iommu.translate(kDevA, Iova(0x10080), false, 0).ok);
  CHECK(f.iommu.stats().counterValue("stale_accesses") == 1);
}

TEST_CASE("stale hits inside the lazy window are counted but reach the checker only with reportLazyWindow") {
  for (bool report : {false, true}) {
    IommuParams p = lazyParams();
    p.reportLazyWindow = report;
    Fixture f(p);
    InvariantChecker checker;
    f.iommu.setChecker(&checker);
    REQUIRE(f.iommu.map(f.dom, Iova(0x10000), Pa(0x1000'0000), kPageSize, kIommuRead) == Errno::Ok);
    REQUIRE(f.iommu.translate(kDevA, Iova(0x10000), false, 0).ok);
    IommuIotlbGather g;
    f.iommu.unmapFast(f.dom, Iova(0x10000), kPageSize, g);
    f.iommu.translate(kDevA, Iova(0x10000), false, 777);
    CHECK(f.iommu.stats().counterValue("stale_lazy_window") == 1);
    CHECK(f.iommu.stats().counterValue("stale_unflushed") == 0);
    REQUIRE(checker.count(CheckRule::UnmappedIova) == (report ? 1u : 0u));
    if (report) {
      CHECK(checker.violations()[0].timePs == 777);
      CHECK(checker.violations()[0].address == 0x10000);
    }
  }
}

TEST_CASE("a skipped IOTLB invalidation leaves stale hits that the checker reports as UnmappedIova") {
  IommuParams p;
  p.skipIotlbInvalidation = true;
  Fixture f(p);
  InvariantChecker checker;
  f.iommu.setChecker(&checker);
  REQUIRE(f.iommu.map(f.dom, Iova(0x10000), Pa(0x1000'0000), kPageSize, kIommuRead) == Errno::Ok);
  REQUIRE(f.iommu.translate(kDevA, Iova(0x10000), false, 0).ok);
  REQUIRE(f.iommu.unmap(f.dom, Iova(0x10000), kPageSize) == kPageSize);  // strict, but the flush is skipped
  IommuTranslation t = f.iommu.translate(kDevA, Iova(0x10000), false, 900);
  CHECK(t.ok);
  CHECK(t.stale);
  CHECK(f.iommu.stats().counterValue("stale_unflushed") == 1);
  REQUIRE(checker.count(CheckRule::UnmappedIova) == 1);
  CHECK(checker.violations()[0].timePs == 900);
}

TEST_CASE("an invalidation costs the IOTLB latency plus one ATS round trip per ATS device") {
  Fixture f;
  CHECK(f.iommu.invalidationLatencyPs(f.dom) == 500'000);
  AtsCache atc("top.devA.atc", kDevA, f.iommu, AtsCacheParams{});
  REQUIRE(f.iommu.enableAts(kDevA, atc) == Errno::Ok);
  CHECK(f.iommu.invalidationLatencyPs(f.dom) == 1'500'000);
}

TEST_CASE("the invalidation queue runs submissions in order: the second waits for the first") {
  Fixture f;
  // Two submissions at 1 us of 4 us and 2 us: the second completes at 1 + 4 + 2 us (the sum).
  CHECK(f.iommu.queueInvalidation(1'000'000, 4'000'000) == 5'000'000);
  CHECK(f.iommu.queueInvalidation(1'000'000, 2'000'000) == 7'000'000);
  // One submitted at 6 us waits until 7 us; one at 20 us finds the queue empty.
  CHECK(f.iommu.queueInvalidation(6'000'000, 500'000) == 7'500'000);
  CHECK(f.iommu.queueInvalidation(20'000'000, 500'000) == 20'500'000);
  CHECK(f.iommu.stats().counterValue("invalidation_queue_waits") == 2);
  CHECK(f.iommu.stats().counterValue("invalidation_queue_wait_ps") == 4'000'000 + 1'000'000);
}

TEST_CASE("domain-selective flush drops only that domain's IOTLB entries") {
  Fixture f;
  IommuDomain& other = f.iommu.domainAlloc(IommuDomainType::Dma);
  REQUIRE(f.iommu.attachDevice(other, kDevB) == Errno::Ok);
  REQUIRE(f.iommu.map(f.dom, Iova(0x10000), Pa(0x1000'0000), kPageSize, kIommuRead) == Errno::Ok);
  REQUIRE(f.iommu.map(other, Iova(0x10000), Pa(0x2000'0000), kPageSize, kIommuRead) == Errno::Ok);
  f.iommu.translate(kDevA, Iova(0x10000), false, 0);
  f.iommu.translate(kDevB, Iova(0x10000), false, 0);
  REQUIRE(f.iommu.iotlb().validEntries() == 2);
  f.iommu.flushIotlbAll(f.dom);
  CHECK(f.iommu.iotlb().validEntries() == 1);
  CHECK(f.iommu.translate(kDevB, Iova(0x10000), false, 0).iotlbHit);
  CHECK_FALSE(f.iommu.translate(kDevA, Iova(0x10000), false, 0).iotlbHit);
}

// ---- IOTLB ----

TEST_CASE("an IOTLB set holds `ways` entries and evicts the least recently used") {
  IotlbParams p;
  p.entries4k = 8;
  p.ways4k = 2;  // 4 sets: pages 0, 4, 8 share set 0
  Iotlb tlb(p);
  const auto page = [](std::uint64_t n) { return Iova(n << kPageShift); };
  CHECK_FALSE(tlb.insert(1, page(0), Pa(0x100000), kPageSize, kIommuRead));
  CHECK_FALSE(tlb.insert(1, page(4), Pa(0x200000), kPageSize, kIommuRead));
  REQUIRE(tlb.lookup(1, page(0)));                                     // page 0 becomes most recent
  CHECK(tlb.insert(1, page(8), Pa(0x300000), kPageSize, kIommuRead));  // evicts page 4
  CHECK(tlb.lookup(1, page(0)));
  CHECK_FALSE(tlb.lookup(1, page(4)));
  CHECK(tlb.lookup(1, page(8)));
  // Page 1 maps to another set and is unaffected by set 0's pressure.
  tlb.insert(1, page(1), Pa(0x400000), kPageSize, kIommuRead);
  CHECK(tlb.lookup(1, page(1)));
}

TEST_CASE("an IOTLB refill of a cached page replaces it in place even with a free way before it") {
  IotlbParams p;
  p.entries4k = 4;
  p.ways4k = 4;  // one set
  Iotlb tlb(p);
  const auto page = [](std::uint64_t n) { return Iova(n << kPageShift); };
  tlb.insert(1, page(0), Pa(0x1000), kPageSize, kIommuRead);
  tlb.insert(1, page(1), Pa(0x2000), kPageSize, kIommuRead);
  REQUIRE(tlb.invalidateRange(1, page(0), kPageSize) == 1);  // way 0 free, page 1 in way 1
  CHECK_FALSE(tlb.insert(1, page(1), Pa(0x9000), kPageSize, kIommuRead | kIommuWrite));
  CHECK(tlb.validEntries() == 1);  // refilled, not a second copy
  CHECK(tlb.lookup(1, page(1))->pageBase == Pa(0x9000));
  CHECK(tlb.lookup(1, page(1))->prot == (kIommuRead | kIommuWrite));
  // Three more pages fill the set without an eviction; the fourth evicts the least recent.
  CHECK_FALSE(tlb.insert(1, page(2), Pa(0x3000), kPageSize, kIommuRead));
  CHECK_FALSE(tlb.insert(1, page(3), Pa(0x4000), kPageSize, kIommuRead));
  CHECK_FALSE(tlb.insert(2, page(1), Pa(0x5000), kPageSize, kIommuRead));  // another domain's page 1
  CHECK(tlb.validEntries() == 4);
  CHECK(tlb.insert(1, page(4), Pa(0x6000), kPageSize, kIommuRead));  // evicts page 1 of domain 1
  CHECK_FALSE(tlb.lookup(1, page(1)));
  CHECK(tlb.lookup(2, page(1))->pageBase == Pa(0x5000));
}

TEST_CASE("an IOTLB with a set count not a power of two indexes sets by page number modulo sets") {
  IotlbParams p;
  p.entries4k = 6;
  p.ways4k = 2;  // 3 sets: pages 0, 3, 6 share set 0; pages 1 and 4 set 1
  Iotlb tlb(p);
  const auto page = [](std::uint64_t n) { return Iova(n << kPageShift); };
  CHECK_FALSE(tlb.insert(1, page(0), Pa(0x100000), kPageSize, kIommuRead));
  CHECK_FALSE(tlb.insert(1, page(3), Pa(0x200000), kPageSize, kIommuRead));
  CHECK_FALSE(tlb.insert(1, page(1), Pa(0x300000), kPageSize, kIommuRead));  // set 1: no eviction
  CHECK(tlb.insert(1, page(6), Pa(0x400000), kPageSize, kIommuRead));        // set 0 full: evicts page 0
  CHECK_FALSE(tlb.lookup(1, page(0)));
  CHECK(tlb.lookup(1, page(1))->pageBase == Pa(0x300000));
  CHECK(tlb.lookup(1, page(6))->pageBase == Pa(0x400000));
}

TEST_CASE("IOTLB valid entries follow inserts, evictions and each kind of invalidation") {
  IotlbParams p;
  p.entries4k = 4;
  p.ways4k = 2;
  Iotlb tlb(p);
  const auto page = [](std::uint64_t n) { return Iova(n << kPageShift); };
  tlb.insert(1, page(0), Pa(0x1000), kPageSize, kIommuRead);
  tlb.insert(1, page(2), Pa(0x2000), kPageSize, kIommuRead);
  tlb.insert(1, page(4), Pa(0x3000), kPageSize, kIommuRead);  // set 0 full: an eviction, not a new entry
  tlb.insert(2, page(1), Pa(0x4000), kPageSize, kIommuRead);
  tlb.insert(2, Iova(0x4000'0000), Pa(0x8000'0000), kPmdSize, kIommuRead);
  CHECK(tlb.validEntries() == 4);
  CHECK(tlb.invalidateRange(1, page(4), kPageSize) == 1);
  CHECK(tlb.validEntries() == 3);
  CHECK(tlb.invalidateDomain(2) == 2);  // both arrays
  CHECK(tlb.validEntries() == 1);
  CHECK_FALSE(tlb.lookup(2, Iova(0x4000'0000)));  // the emptied 2 MiB array is not searched
  tlb.insert(2, Iova(0x4000'0000), Pa(0x8000'0000), kPmdSize, kIommuRead);
  CHECK(tlb.lookup(2, Iova(0x4010'0000)));  // and found again once refilled
  CHECK(tlb.invalidateAll() == 2);
  CHECK(tlb.validEntries() == 0);
}

TEST_CASE("2 MiB IOTLB entries live in their own array and do not evict 4 KiB entries") {
  IotlbParams p;
  p.entries4k = 1;
  p.ways4k = 1;
  p.entries2m = 1;
  p.ways2m = 1;
  Iotlb tlb(p);
  tlb.insert(1, Iova(0x1000), Pa(0x5000), kPageSize, kIommuRead);
  CHECK_FALSE(tlb.insert(1, Iova(0x4000'0000), Pa(0x8000'0000), kPmdSize, kIommuRead));
  CHECK(tlb.lookup(1, Iova(0x1000)));
  auto big = tlb.lookup(1, Iova(0x401f'f000));
  REQUIRE(big);
  CHECK(big->pageSize == kPmdSize);
  CHECK(big->pageBase == Pa(0x8000'0000));
}

TEST_CASE("the default IOTLB reaches 64 pages: a 64-page loop hits, a 65-page loop misses") {
  IommuParams p;
  p.largePages = false;
  p.iotlb.ways4k = 64;  // fully associative: a cyclic sweep of 65 pages defeats LRU
  p.iotlb.entries4k = 64;
  Fixture f(p);
  REQUIRE(f.iommu.map(f.dom, Iova(0x100'0000), Pa(0x1000'0000), 65 * kPageSize, kIommuRead) == Errno::Ok);
  const auto sweep = [&](unsigned pages) {
    for (unsigned i = 0; i < pages; ++i) f.iommu.translate(kDevA, Iova(0x100'0000) + i * kPageSize, false, 0);
  };
  sweep(64);
  const std::uint64_t missesWarm = f.iommu.stats().counterValue("iotlb_misses");
  sweep(64);
  CHECK(f.iommu.stats().counterValue("iotlb_misses") == missesWarm);
  sweep(65);
  const std::uint64_t before = f.iommu.stats().counterValue("iotlb_misses");
  sweep(65);
  CHECK(f.iommu.stats().counterValue("iotlb_misses") - before == 65);
}

// ---- timing hook ----

TEST_CASE("default timing: an IOTLB hit costs 4 ns and a 4 KiB miss adds 226 ns") {
  Fixture f;
  REQUIRE(f.iommu.map(f.dom, Iova(0x10000), Pa(0x1000'0000), kPageSize, kIommuRead) == Errno::Ok);
  IommuTranslation miss = f.iommu.translate(kDevA, Iova(0x10000), false, 1'000'000);
  IommuTranslation hit = f.iommu.translate(kDevA, Iova(0x10000), false, 2'000'000);
  CHECK(hit.latencyPs == 4'000);
  CHECK(miss.latencyPs - hit.latencyPs == 226'000);
}

TEST_CASE("concurrent misses beyond the page walkers wait for a free walker") {
  IommuParams p;
  p.pageWalkers = 2;
  Fixture f(p);
  REQUIRE(f.iommu.map(f.dom, Iova(0x10000), Pa(0x1000'0000), 3 * kPageSize, kIommuRead) == Errno::Ok);
  const std::uint64_t t0 = 1'000'000;
  IommuTranslation a = f.iommu.translate(kDevA, Iova(0x10000), false, t0);
  IommuTranslation b = f.iommu.translate(kDevA, Iova(0x11000), false, t0);
  IommuTranslation c = f.iommu.translate(kDevA, Iova(0x12000), false, t0);
  CHECK(a.latencyPs == 230'000);
  CHECK(b.latencyPs == 230'000);
  CHECK(c.latencyPs == 230'000 + 226'000);
}

// ---- ATS ----

TEST_CASE("ATS: the ATC caches a translation so a second access sends no translation request") {
  Fixture f;
  AtsCache atc("top.devA.atc", kDevA, f.iommu, AtsCacheParams{});
  REQUIRE(f.iommu.enableAts(kDevA, atc) == Errno::Ok);
  REQUIRE(f.iommu.map(f.dom, Iova(0x10000), Pa(0x1000'0000), kPageSize, kIommuRead) == Errno::Ok);
  AtsLookup first = atc.translate(Iova(0x10010), false, 0);
  AtsLookup second = atc.translate(Iova(0x10020), false, 0);
  REQUIRE(first.ok);
  CHECK_FALSE(first.atcHit);
  REQUIRE(second.ok);
  CHECK(second.atcHit);
  CHECK(second.pa == Pa(0x1000'0020));
  CHECK(f.iommu.stats().counterValue("ats_translation_requests") == 1);
  // The pre-translated request passes the IOMMU untouched.
  IommuTranslation tr = f.iommu.translatedRequest(kDevA, second.pa, false, 0);
  CHECK(tr.ok);
  CHECK(tr.pa == second.pa);
}

TEST_CASE("ATS: unmap sends an invalidation request that clears the ATC and is completed") {
  Fixture f;
  AtsCache atc("top.devA.atc", kDevA, f.iommu, AtsCacheParams{});
  REQUIRE(f.iommu.enableAts(kDevA, atc) == Errno::Ok);
  REQUIRE(f.iommu.map(f.dom, Iova(0x10000), Pa(0x1000'0000), kPageSize, kIommuRead) == Errno::Ok);
  REQUIRE(atc.translate(Iova(0x10000), false, 0).ok);
  REQUIRE(atc.validEntries() == 1);
  REQUIRE(f.iommu.unmap(f.dom, Iova(0x10000), kPageSize) == kPageSize);
  CHECK(atc.validEntries() == 0);
  CHECK(f.iommu.stats().counterValue("ats_invalidation_requests") == 1);
  CHECK(f.iommu.stats().counterValue("ats_invalidation_completions") == 1);
  CHECK(f.iommu.stats().counterValue("ats_invalidation_timeouts") == 0);
  AtsLookup after = atc.translate(Iova(0x10000), false, 0);
  CHECK_FALSE(after.ok);
}

TEST_CASE("ATS: a device ignoring invalidations times the invalidation out and its stale hits are counted") {
  Fixture f(lazyParams());
  AtsCacheParams ap;
  ap.respondsToInvalidations = false;
  AtsCache atc("top.devA.atc", kDevA, f.iommu, ap);
  REQUIRE(f.iommu.enableAts(kDevA, atc) == Errno::Ok);
  REQUIRE(f.iommu.map(f.dom, Iova(0x10000), Pa(0x1000'0000), kPageSize, kIommuRead) == Errno::Ok);
  REQUIRE(atc.translate(Iova(0x10000), false, 0).ok);
  IommuIotlbGather g;
  f.iommu.unmapFast(f.dom, Iova(0x10000), kPageSize, g);
  CHECK(f.iommu.iotlbSync(f.dom, g) == Errno::TimedOut);
  CHECK(f.iommu.stats().counterValue("ats_invalidation_timeouts") == 1);
  InvariantChecker checker;
  atc.setChecker(&checker);
  AtsLookup stale = atc.translate(Iova(0x10000), false, 42);
  CHECK(stale.atcHit);
  CHECK(stale.stale);
  CHECK(atc.stats().counterValue("stale_accesses") == 1);
  REQUIRE(checker.count(CheckRule::StaleTranslation) == 1);
  CHECK(checker.violations()[0].timePs == 42);
}

TEST_CASE("a pre-translated request from a device without ATS is aborted and logged") {
  Fixture f;
  IommuTranslation t = f.iommu.translatedRequest(kDevA, Pa(0x1000'0000), true, 5);
  CHECK_FALSE(t.ok);
  CHECK(t.reason == IommuFaultReason::TranslatedDenied);
  CHECK(f.iommu.faultRecords().size() == 1);
}

TEST_CASE("an ATS translation request for an unmapped IOVA grants nothing and logs no fault") {
  Fixture f;
  AtsCache atc("top.devA.atc", kDevA, f.iommu, AtsCacheParams{});
  REQUIRE(f.iommu.enableAts(kDevA, atc) == Errno::Ok);
  AtsLookup r = atc.translate(Iova(0x10000), false, 0);
  CHECK_FALSE(r.ok);
  CHECK(atc.stats().counterValue("translation_failures") == 1);
  CHECK(f.iommu.faultRecords().empty());
}

TEST_CASE("with iommu.walk tracing on, walks become slices and faults instants") {
  Fixture f;
  TraceSink trace;
  trace.enable(TraceCategory::IommuWalk);
  f.iommu.setTrace(&trace);
  REQUIRE(f.iommu.map(f.dom, Iova(0x10000), Pa(0x1000'0000), kPageSize, kIommuRead) == Errno::Ok);
  f.iommu.translate(kDevA, Iova(0x10000), false, 1'000'000);  // miss: walk
  f.iommu.translate(kDevA, Iova(0x10000), false, 2'000'000);  // hit: nothing traced
  f.iommu.translate(kDevA, Iova(0x90000), false, 3'000'000);  // miss + fault
  CHECK(trace.eventCount() == 3);
  const std::string json = trace.toJson();
  CHECK(json.find("\"walk\"") != std::string::npos);
  CHECK(json.find("reason=not-present") != std::string::npos);
}

TEST_CASE("a walk memory model is charged once per page-table entry, in walk order") {
  Fixture f;
  REQUIRE(f.iommu.map(f.dom, Iova(0x10000), Pa(0x1000'0000), kPageSize, kIommuRead) == Errno::Ok);
  std::vector<std::pair<Pa, std::uint64_t>> reads;
  f.iommu.setWalkMemory([&](Pa entry, std::uint64_t startPs) {
    reads.emplace_back(entry, startPs);
    return std::uint64_t(100'000);
  });
  IommuTranslation t = f.iommu.translate(kDevA, Iova(0x10000), false, 1'000'000);
  REQUIRE(reads.size() == 4);
  CHECK(t.latencyPs == 4'000 + 4 * 100'000);
  CHECK(reads[0].second == 1'004'000);
  CHECK(reads[3].second == 1'304'000);
  CHECK(reads[0].first ==
        Pa(f.iommu.params().pageTableBase + (std::uint64_t(f.dom.id()) << 32)));  // root table, index 0
  for (std::size_t i = 1; i < reads.size(); ++i) CHECK(reads[i].first != reads[i - 1].first);
}

TEST_CASE("an IOTLB range invalidation drops exactly the range's pages of its domain, small or large") {
  IotlbParams p;
  p.entries4k = 32;
  p.ways4k = 2;  // 16 sets: no eviction below
  Iotlb tlb(p);
  const auto page = [](std::uint64_t n) { return Iova(n << kPageShift); };
  for (std::uint64_t n = 0; n < 12; ++n)
    tlb.insert(1, page(n), Pa((n + 1) << kPageShift), kPageSize, kIommuRead);
  tlb.insert(2, page(3), Pa(0x100000), kPageSize, kIommuRead);
  tlb.insert(1, Iova(0x4000'0000), Pa(0x8000'0000), kPmdSize, kIommuRead);
  REQUIRE(tlb.validEntries() == 14);
  // Three pages (fewer than the sets), from the middle of page 2 to the middle of page 4.
  CHECK(tlb.invalidateRange(1, Iova(page(2).value() + 0x800), 2 * kPageSize) == 3);
  for (std::uint64_t n : {2, 3, 4}) CHECK_FALSE(tlb.lookup(1, page(n)));
  for (std::uint64_t n : {0, 1, 5, 11}) CHECK(tlb.lookup(1, page(n)));
  CHECK(tlb.lookup(2, page(3)));  // another domain's page 3
  // A range of more pages than sets: pages 5..11 of domain 1 and nothing else.
  CHECK(tlb.invalidateRange(1, page(5), 100 * kPageSize) == 7);
  CHECK(tlb.validEntries() == 4);
  CHECK(tlb.lookup(1, page(1)));
  CHECK(tlb.lookup(1, Iova(0x4000'0000)));
  // One byte of the 2 MiB page drops it (and no 4 KiB entry).
  CHECK(tlb.invalidateRange(1, Iova(0x401f'ffff), 1) == 1);
  CHECK(tlb.validEntries() == 3);
}
