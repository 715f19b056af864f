// hmm_range_fault rules (mm/hmm.c), one behaviour per case.

#include <catch2/catch.hpp>

#include "hmm/device_exclusive.h"
#include "hmm/hmm.h"
#include "models/cpu_mmu/vma.h"
#include "tests/unit/hmm/hmm_test_support.h"

using namespace hmmsim;
using namespace hmmsim::test;

namespace {
constexpr std::uint64_t kP = kPageSize;
bool valid(unsigned long e) {
  return (e & HMM_PFN_VALID) != 0;
}
bool writable(unsigned long e) {
  return (e & HMM_PFN_WRITE) != 0;
}
}  // namespace

TEST_CASE("hmmRangeFault reports present writable anon pages as pfn|VALID|WRITE with order 0") {
  HmmFixture f;
  const Va a = f.mapAnon(4 * kP);
  f.fillPattern(a, 4);
  std::vector<unsigned long> pfns;
  REQUIRE(f.rangeFault(a, a + 4 * kP, pfns, 0) == HmmStatus::Ok);
  for (int i = 0; i < 4; ++i) {
    REQUIRE(valid(pfns[i]));
    REQUIRE(writable(pfns[i]));
    REQUIRE(hmmPfnToMapOrder(pfns[i]) == 0);
    REQUIRE(hmmPfnToPfn(pfns[i]) == f.pteAt(a + i * kP).pfn());
  }
}

TEST_CASE("hmmRangeFault without a fault request leaves unpopulated pages 0 and faults nothing") {
  HmmFixture f;
  const Va a = f.mapAnon(8 * kP);
  HmmStats st("t");
  std::vector<unsigned long> pfns;
  REQUIRE(f.rangeFault(a, a + 8 * kP, pfns, 0, nullptr, &st) == HmmStatus::Ok);
  for (unsigned long e : pfns) REQUIRE(e == 0);
  REQUIRE(st.faults.value() == 0);
  REQUIRE(st.pagesWalked.value() == 8);
  REQUIRE(f.mm->rss() == 0);
}

TEST_CASE("hmmRangeFault with REQ_FAULT faults unpopulated pages in (read: the zero page)") {
  HmmFixture f;
  const Va a = f.mapAnon(4 * kP);
  HmmStats st("t");
  std::vector<unsigned long> pfns;
  REQUIRE(f.rangeFault(a, a + 4 * kP, pfns, HMM_PFN_REQ_FAULT, nullptr, &st) == HmmStatus::Ok);
  REQUIRE(st.faults.value() == 4);
  REQUIRE(st.busyRestarts.value() == 1);
  for (unsigned long e : pfns) {
    REQUIRE(valid(e));
    REQUIRE_FALSE(writable(e));
  }
}

TEST_CASE("hmmRangeFault reports the zero page as a normal read-only pfn") {
  HmmFixture f;
  const Va a = f.mapAnon(2 * kP);
  (void)f.load(a);  // CPU read maps the zero page
  std::vector<unsigned long> pfns;
  REQUIRE(f.rangeFault(a, a + kP, pfns, 0) == HmmStatus::Ok);
  REQUIRE(valid(pfns[0]));
  REQUIRE_FALSE(writable(pfns[0]));
  REQUIRE((pfns[0] & HMM_PFN_ERROR) == 0);
  REQUIRE(hmmPfnToPfn(pfns[0]) == f.pm.zeroPfn());
}

TEST_CASE("hmmRangeFault with REQ_WRITE replaces the zero page by a private writable page") {
  HmmFixture f;
  const Va a = f.mapAnon(kP);
  (void)f.load(a);
  std::vector<unsigned long> pfns;
  // The COW of the zero page raises MMU_NOTIFY_CLEAR, so the first call sees its own
  // invalidation and returns Busy (as in the kernel); the retry reports the new page.
  REQUIRE(f.rangeFault(a, a + kP, pfns, HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE) == HmmStatus::Busy);
  REQUIRE(f.rangeFault(a, a + kP, pfns, HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE) == HmmStatus::Ok);
  REQUIRE(writable(pfns[0]));
  REQUIRE(hmmPfnToPfn(pfns[0]) != f.pm.zeroPfn());
}

TEST_CASE("hmmRangeFault reports a hole without a vma as ERROR") {
  HmmFixture f;
  const Va a = f.mapAnon(3 * kP);
  REQUIRE(f.mm->munmap(a + kP, kP) == Errno::Ok);
  std::vector<unsigned long> pfns;
  REQUIRE(f.rangeFault(a, a + 3 * kP, pfns, 0) == HmmStatus::Ok);
  REQUIRE(pfns[0] == 0);
  REQUIRE(pfns[1] == HMM_PFN_ERROR);
  REQUIRE(pfns[2] == 0);
}

TEST_CASE("hmmRangeFault returns Fault when a fault is requested for a hole without a vma") {
  HmmFixture f;
  const Va a = f.mapAnon(3 * kP);
  REQUIRE(f.mm->munmap(a + kP, kP) == Errno::Ok);
  std::vector<unsigned long> pfns;
  REQUIRE(f.rangeFault(a, a + 3 * kP, pfns, HMM_PFN_REQ_FAULT) == HmmStatus::Fault);
}

TEST_CASE("hmmRangeFault reports a PROT_NONE vma as ERROR and skips it") {
  HmmFixture f;
  const Va a = f.mapAnon(2 * kP, PROT_NONE);
  std::vector<unsigned long> pfns;
  HmmStats st("t");
  REQUIRE(f.rangeFault(a, a + 2 * kP, pfns, 0, nullptr, &st) == HmmStatus::Ok);
  REQUIRE(pfns[0] == HMM_PFN_ERROR);
  REQUIRE(pfns[1] == HMM_PFN_ERROR);
  REQUIRE(st.faults.value() == 0);
}

TEST_CASE("hmmRangeFault returns Fault when a fault is requested on a PROT_NONE vma") {
  HmmFixture f;
  const Va a = f.mapAnon(2 * kP, PROT_NONE);
  std::vector<unsigned long> pfns;
  REQUIRE(f.rangeFault(a, a + 2 * kP, pfns, HMM_PFN_REQ_FAULT) == HmmStatus::Fault);
}

TEST_CASE("hmmRangeFault reports VM_IO|VM_PFNMAP vmas as ERROR even when populated") {
  HmmFixture f;
  const Va a = f.mapAnon(kP);
  f.store(a, 7);
  f.mm->vmaLookup(a)->vmFlags |= VM_IO | VM_PFNMAP;
  std::vector<unsigned long> pfns;
  REQUIRE(f.rangeFault(a, a + kP, pfns, 0) == HmmStatus::Ok);
  REQUIRE(pfns[0] == HMM_PFN_ERROR);
  REQUIRE(f.rangeFault(a, a + kP, pfns, HMM_PFN_REQ_FAULT) == HmmStatus::Fault);
  f.mm->vmaLookup(a)->vmFlags &= ~(VM_IO | VM_PFNMAP);
}

TEST_CASE("hmmRangeFault reports pages of a VM_MIXEDMAP vma (mainline allows mixedmap)") {
  HmmFixture f;
  const Va a = f.mapAnon(kP);
  Vma* vma = f.mm->vmaLookup(a);
  const Pfn page = *f.pm.allocFrame(0);
  REQUIRE(vmInsertPage(*vma, a, page) == Errno::Ok);
  f.pm.putPage(page);  // the mapping holds its own reference
  REQUIRE((vma->vmFlags & VM_MIXEDMAP) != 0);
  std::vector<unsigned long> pfns;
  REQUIRE(f.rangeFault(a, a + kP, pfns, HMM_PFN_REQ_FAULT) == HmmStatus::Ok);
  REQUIRE(valid(pfns[0]));
  REQUIRE(hmmPfnToPfn(pfns[0]) == page);
}

TEST_CASE("hmmRangeFault reports special ptes (raw pfns) as ERROR") {
  HmmFixture f;
  const Va a = f.mapAnon(kP);
  Vma* vma = f.mm->vmaLookup(a);
  vma->vmFlags |= VM_MIXEDMAP;
  REQUIRE(vmfInsertPfn(*vma, a, Pfn(f.pm.ramEndPfn().value() + 100)) == VmFaultResult::NoPage);
  std::vector<unsigned long> pfns;
  REQUIRE(f.rangeFault(a, a + kP, pfns, 0) == HmmStatus::Ok);
  REQUIRE(pfns[0] == HMM_PFN_ERROR);
  REQUIRE(f.rangeFault(a, a + kP, pfns, HMM_PFN_REQ_FAULT) == HmmStatus::Fault);
}

TEST_CASE("hmmRangeFault returns Perm for REQ_WRITE on a vma without VM_WRITE") {
  HmmFixture f;
  const Va a = f.mapAnon(2 * kP);
  f.fillPattern(a, 2);
  REQUIRE(f.mm->mprotect(a, 2 * kP, PROT_READ) == Errno::Ok);
  std::vector<unsigned long> pfns;
  REQUIRE(f.rangeFault(a, a + 2 * kP, pfns, HMM_PFN_REQ_FAULT) == HmmStatus::Ok);
  REQUIRE(f.rangeFault(a, a + 2 * kP, pfns, HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE) == HmmStatus::Perm);
  REQUIRE(f.load(a + kP) == 1);
}

TEST_CASE("hmmRangeFault reports owner-matched device-private pages without faulting them") {
  HmmFixture f;
  const Va a = f.mapAnon(4 * kP);
  f.fillPattern(a, 4, 100);
  f.migrateToDevice(a, a + 4 * kP);
  REQUIRE(f.pteAt(a).isDevicePrivateEntry());
  HmmStats st("t");
  std::vector<unsigned long> pfns;
  REQUIRE(f.rangeFault(a, a + 4 * kP, pfns, HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE, f.owner(), &st) ==
          HmmStatus::Ok);
  REQUIRE(st.faults.value() == 0);
  REQUIRE(f.migrateToRamCalls == 0);
  for (int i = 0; i < 4; ++i) {
    REQUIRE(valid(pfns[i]));
    REQUIRE(writable(pfns[i]));
    REQUIRE(hmmPfnToPfn(pfns[i]) == f.pteAt(a + i * kP).swpPfn());
    REQUIRE(f.dev->owns(hmmPfnToPfn(pfns[i])));
  }
}

TEST_CASE("hmmRangeFault reports a foreign device-private page as 0 when no fault is requested") {
  HmmFixture f;
  const Va a = f.mapAnon(kP);
  f.store(a, 5);
  f.migrateToDevice(a, a + kP);
  std::vector<unsigned long> pfns;
  static const int otherDevice = 0;
  REQUIRE(f.rangeFault(a, a + kP, pfns, 0, &otherDevice) == HmmStatus::Ok);
  REQUIRE(pfns[0] == 0);
  REQUIRE(f.migrateToRamCalls == 0);
}

TEST_CASE("hmmRangeFault faults a foreign device-private page back to RAM through migrate_to_ram") {
  HmmFixture f;
  const Va a = f.mapAnon(kP);
  f.store(a, 5);
  f.migrateToDevice(a, a + kP);
  std::vector<unsigned long> pfns;
  static const int otherDevice = 0;
  // migrate_to_ram's MMU_NOTIFY_MIGRATE invalidates the range: Busy first, then the RAM page.
  REQUIRE(f.rangeFault(a, a + kP, pfns, HMM_PFN_REQ_FAULT, &otherDevice) == HmmStatus::Busy);
  REQUIRE(f.migrateToRamCalls == 1);
  REQUIRE(f.rangeFault(a, a + kP, pfns, HMM_PFN_REQ_FAULT, &otherDevice) == HmmStatus::Ok);
  REQUIRE(f.migrateToRamCalls == 1);
  REQUIRE(valid(pfns[0]));
  REQUIRE(f.pm.isRam(hmmPfnToPfn(pfns[0])));
  REQUIRE(f.frameWord(hmmPfnToPfn(pfns[0])) == 5);
}

TEST_CASE("hmmRangeFault gives every subpage of a THP the same flags and map order 9") {
  HmmFixture f;
  const Va a = f.mapAnon(2 * kPmdSize);
  const Va thp = a.alignUp(kPmdSize);
  REQUIRE(f.mm->madvise(a, 2 * kPmdSize, MADV_HUGEPAGE) == Errno::Ok);
  f.store(thp, 1);
  REQUIRE(f.levelAt(thp) == PtLevel::Pmd);
  std::vector<unsigned long> pfns;
  REQUIRE(f.rangeFault(thp, thp + kPmdSize, pfns, 0) == HmmStatus::Ok);
  const Pfn head = f.pteAt(thp).pfn();
  for (std::uint64_t i = 0; i < kPagesPerPmd; ++i) {
    REQUIRE(valid(pfns[i]));
    REQUIRE(writable(pfns[i]));
    REQUIRE(hmmPfnToMapOrder(pfns[i]) == 9);
    REQUIRE(hmmPfnToPfn(pfns[i]) == head + i);
  }
}

TEST_CASE("hmmRangeFault reports hugetlb pages with the hstate's order") {
  MmParams p;
  p.hugetlbPages = 2;
  HmmFixture f(512ull << 20, p);
  const VaResult r =
      f.mm->mmap(Va(0), kPmdSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB);
  REQUIRE(r.ok());
  f.store(r.addr + 3 * kP, 9);
  std::vector<unsigned long> pfns;
  REQUIRE(f.rangeFault(r.addr + kP, r.addr + 5 * kP, pfns, 0) == HmmStatus::Ok);
  const Pfn head = f.pteAt(r.addr).pfn();
  for (std::uint64_t i = 0; i < 4; ++i) {
    REQUIRE(valid(pfns[i]));
    REQUIRE(hmmPfnToMapOrder(pfns[i]) == 9);
    REQUIRE(hmmPfnToPfn(pfns[i]) == head + 1 + i);
  }
}

TEST_CASE("hmmRangeFault faults in a 1 GiB hugetlb page and reports map order 18") {
  MmParams p;
  p.hugetlbPages1G = 1;
  HmmFixture f(4ull << 30, p);
  const VaResult r = f.mm->mmap(Va(0), kPudSize, PROT_READ | PROT_WRITE,
                                MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_HUGE_1GB);
  REQUIRE(r.ok());
  std::vector<unsigned long> pfns;
  const Va at = r.addr + 300 * kPmdSize;
  REQUIRE(f.rangeFault(at, at + 4 * kP, pfns, HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE) == HmmStatus::Ok);
  REQUIRE(f.levelAt(r.addr) == PtLevel::Pud);
  const Pfn head = f.pteAt(r.addr).pfn();
  for (std::uint64_t i = 0; i < 4; ++i) {
    REQUIRE(valid(pfns[i]));
    REQUIRE(writable(pfns[i]));
    REQUIRE(hmmPfnToMapOrder(pfns[i]) == 18);
    REQUIRE(hmmPfnToPfn(pfns[i]) == head + 300 * kPagesPerPmd + i);
  }
}

TEST_CASE("hmmRangeFault reports a PUD leaf with map order 18") {
  HmmFixture f(2ull << 30);
  const VaResult r = f.mm->mmap(Va(0), 2 * kPudSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  REQUIRE(r.ok());
  const Va gig = r.addr.alignUp(kPudSize);
  const auto folio = f.pm.allocFrame(PhysMem::kPudOrder);
  REQUIRE(folio);
  Pte* slot = f.mm->pageTable().pudPtr(gig, true);
  REQUIRE(slot);
  *slot = Pte::mkPresent(*folio, false).mkHuge();  // synthetic 1 GiB read-only leaf
  std::vector<unsigned long> pfns;
  REQUIRE(f.rangeFault(gig + 5 * kP, gig + 7 * kP, pfns, 0) == HmmStatus::Ok);
  REQUIRE(valid(pfns[0]));
  REQUIRE_FALSE(writable(pfns[0]));
  REQUIRE(hmmPfnToMapOrder(pfns[0]) == 18);
  REQUIRE(hmmPfnToPfn(pfns[1]) == *folio + 6);
  *slot = Pte();
  f.pm.putPage(*folio);
}

TEST_CASE("hmmRangeFault returns Busy when the range was invalidated after readBegin") {
  HmmFixture f;
  const Va a = f.mapAnon(4 * kP);
  f.fillPattern(a, 4);
  std::vector<unsigned long> pfns(4, 0);
  HmmRange r;
  r.notifier = &f.sub;
  r.notifierSeq = f.sub.readBegin();
  r.start = a;
  r.end = a + 4 * kP;
  r.hmmPfns = pfns.data();
  REQUIRE(f.mm->madvise(a + 2 * kP, kP, MADV_DONTNEED) == Errno::Ok);  // invalidation
  HmmStats st("t");
  MmapReadLock l(*f.mm);
  REQUIRE(hmmRangeFault(r, &st) == HmmStatus::Busy);
  REQUIRE(st.busyReturns.value() == 1);
  r.notifierSeq = f.sub.readBegin();
  REQUIRE(hmmRangeFault(r, &st) == HmmStatus::Ok);
}

TEST_CASE("hmmRangeFault returns Inval for an unaligned or empty range") {
  HmmFixture f;
  const Va a = f.mapAnon(4 * kP);
  std::vector<unsigned long> pfns;
  REQUIRE(f.rangeFault(a, a, pfns, 0) == HmmStatus::Inval);
  pfns.assign(4, 0);
  HmmRange r;
  r.notifier = &f.sub;
  r.start = a + 8;
  r.end = a + kP;
  r.hmmPfns = pfns.data();
  MmapReadLock l(*f.mm);
  REQUIRE(hmmRangeFault(r) == HmmStatus::Inval);
}

TEST_CASE("hmmRangeFault preserves the sticky INOUT bits of the input entries") {
  HmmFixture f;
  const Va a = f.mapAnon(2 * kP);
  f.store(a, 1);
  std::vector<unsigned long> pfns(2, HMM_PFN_DMA_MAPPED);
  HmmRange r;
  r.notifier = &f.sub;
  r.notifierSeq = f.sub.readBegin();
  r.start = a;
  r.end = a + 2 * kP;
  r.hmmPfns = pfns.data();
  MmapReadLock l(*f.mm);
  REQUIRE(hmmRangeFault(r) == HmmStatus::Ok);
  REQUIRE((pfns[0] & HMM_PFN_DMA_MAPPED) != 0);
  REQUIRE(valid(pfns[0]));
  REQUIRE(pfns[1] == HMM_PFN_DMA_MAPPED);
}

namespace {
/// A Blocker that, when a context must sleep, runs "the other thread's" work once and returns.
class RunOtherBlocker final : public Blocker {
 public:
  std::function<void()> other;
  unsigned sleeps = 0;
  void sleepOn(WaitQueue& /*wq*/, const char* /*what*/) override {
    ++sleeps;
    REQUIRE(other);
    auto fn = std::move(other);
    other = nullptr;
    fn();
  }
};
}  // namespace

TEST_CASE("hmmRangeFault waits on a migration entry until the migration finalizes, then restarts") {
  HmmFixture f;
  const Va a = f.mapAnon(kP);
  f.store(a, 77);
  RunOtherBlocker blk;
  f.mm->notifierSubscriptions().setBlocker(blk);
  // Start a migration and stop after setup: a migration entry sits in the page table.
  std::vector<unsigned long> src(1), dst(1);
  MigrateVma m;
  mmapReadLock(*f.mm);
  m.vma = f.mm->vmaLookup(a);
  m.src = src.data();
  m.dst = dst.data();
  m.start = a;
  m.end = a + kP;
  m.pgmapOwner = f.owner();
  m.flags = MIGRATE_VMA_SELECT_SYSTEM;
  REQUIRE(migrateVmaSetup(m) == Errno::Ok);
  REQUIRE(f.pteAt(a).isMigrationEntry());
  // "Another thread" finishes the migration to the device while hmm_range_fault sleeps.
  blk.other = [&] {
    f.allocAndCopy(m, src, dst, true);
    migrateVmaPages(m);
    migrateVmaFinalize(m);
  };
  std::vector<unsigned long> pfns(1, 0);
  HmmRange r;
  r.notifier = &f.sub;
  r.notifierSeq = f.sub.readBegin();
  r.start = a;
  r.end = a + kP;
  r.hmmPfns = pfns.data();
  r.defaultFlags = HMM_PFN_REQ_FAULT;
  r.devPrivateOwner = f.owner();
  HmmStats st("t");
  REQUIRE(hmmRangeFault(r, &st) == HmmStatus::Ok);
  mmapReadUnlock(*f.mm);
  REQUIRE(blk.sleeps == 1);
  REQUIRE(st.migrationWaits.value() == 1);
  REQUIRE(valid(pfns[0]));
  REQUIRE(f.dev->owns(hmmPfnToPfn(pfns[0])));
  REQUIRE(f.frameWord(hmmPfnToPfn(pfns[0])) == 77);
  f.mm->notifierSubscriptions().setBlocker(singleThreadBlocker());
}

TEST_CASE("hmmRangeFault faults a device-exclusive entry back to a present pte when asked") {
  HmmFixture f;
  const Va a = f.mapAnon(kP);
  f.store(a, 3);
  {
    MmapReadLock l(*f.mm);
    auto r = makeDeviceExclusive(*f.mm, a, nullptr);
    REQUIRE(r.ok());
    deviceExclusiveRelease(*f.mm, r.folio);
  }
  std::vector<unsigned long> pfns;
  REQUIRE(f.rangeFault(a, a + kP, pfns, 0) == HmmStatus::Ok);
  REQUIRE(pfns[0] == 0);  // not faultable without a request: reported as 0
  REQUIRE(f.pteAt(a).isDeviceExclusiveEntry());
  // The restore raises MMU_NOTIFY_EXCLUSIVE: Busy first, then the page.
  REQUIRE(f.rangeFault(a, a + kP, pfns, HMM_PFN_REQ_FAULT) == HmmStatus::Busy);
  REQUIRE(f.pteAt(a).isPresent());
  REQUIRE(f.rangeFault(a, a + kP, pfns, HMM_PFN_REQ_FAULT) == HmmStatus::Ok);
  REQUIRE(valid(pfns[0]));
}
