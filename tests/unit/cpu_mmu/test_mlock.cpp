// mlock, mlock2(MLOCK_ONFAULT), munlock, mlockall, munlockall and MAP_LOCKED: vma flags, splits
// and merges, populating, locked_vm, RLIMIT_MEMLOCK / CAP_IPC_LOCK, and what locking changes
// elsewhere (fork, MADV_DONTNEED/FREE, lazyfree reclaim, mprotect, mremap).
#include <catch2/catch.hpp>

#include "tests/unit/cpu_mmu/mm_test_support.h"

using namespace hmmsim;
using namespace hmmsim::test;

namespace {

constexpr int kRW = PROT_READ | PROT_WRITE;
constexpr int kAnon = MAP_PRIVATE | MAP_ANONYMOUS;

bool present(Mm& mm, Va a) {
  return mm.pageTable().lookup(a).level != PtLevel::None;
}

MmParams limit(std::uint64_t bytes, bool cap = false) {
  MmParams p;
  p.rlimitMemlock = bytes;
  p.capIpcLock = cap;
  return p;
}

}  // namespace

TEST_CASE("mlock of the middle of a vma splits it, sets VM_LOCKED, populates writably and counts locked_vm") {
  MmFixture f;
  const Va a = f.mapAnon(8 * kPageSize);
  f.ops.rounds.clear();
  REQUIRE(f.mm->mlock(a + 2 * kPageSize + 100, 3 * kPageSize) == Errno::Ok);  // rounds to pages 2..5
  const Vma* mid = f.mm->vmaLookup(a + 2 * kPageSize);
  CHECK(mid->vmStart == a + 2 * kPageSize);
  CHECK(mid->vmEnd == a + 6 * kPageSize);
  CHECK((mid->vmFlags & VM_LOCKED_MASK) == VM_LOCKED);
  CHECK(f.mm->vmaLookup(a)->vmFlags == (f.mm->vmaLookup(a + 7 * kPageSize)->vmFlags));
  CHECK_FALSE(f.mm->vmaLookup(a)->vmFlags & VM_LOCKED);
  CHECK(f.mm->mapCount() == 3);
  CHECK(f.mm->lockedVm() == 4);
  for (int i = 2; i < 6; ++i) {
    const PtWalk w = f.mm->pageTable().lookup(a + i * kPageSize);
    REQUIRE(w.level == PtLevel::Pte);
    CHECK(w.pte.isWrite());  // write faults: COW broken, a private page each
    CHECK_FALSE(f.mm->physMem().isZeroPfn(w.pte.pfn()));
  }
  CHECK_FALSE(present(*f.mm, a));
  CHECK(f.ops.rounds.empty());  // faults on empty ptes raise nothing
  // munlock merges the three vmas back.
  REQUIRE(f.mm->munlock(a, 8 * kPageSize) == Errno::Ok);
  CHECK(f.mm->mapCount() == 1);
  CHECK(f.mm->lockedVm() == 0);
}

TEST_CASE("mlock2(MLOCK_ONFAULT) locks without populating, bad flags are EINVAL") {
  MmFixture f;
  const Va a = f.mapAnon(4 * kPageSize);
  CHECK(f.mm->mlock2(a, 4 * kPageSize, 2) == Errno::Inval);
  REQUIRE(f.mm->mlock2(a, 4 * kPageSize, MLOCK_ONFAULT) == Errno::Ok);
  CHECK((f.mm->vmaLookup(a)->vmFlags & VM_LOCKED_MASK) == VM_LOCKED_MASK);
  CHECK(f.mm->lockedVm() == 4);
  for (int i = 0; i < 4; ++i) CHECK_FALSE(present(*f.mm, a + i * kPageSize));
  // A plain mlock afterwards turns it into a populating lock.
  REQUIRE(f.mm->mlock(a, 4 * kPageSize) == Errno::Ok);
  CHECK((f.mm->vmaLookup(a)->vmFlags & VM_LOCKED_MASK) == VM_LOCKED);
  for (int i = 0; i < 4; ++i) CHECK(present(*f.mm, a + i * kPageSize));
}

TEST_CASE("mlock over a hole is ENOMEM and locks nothing") {
  MmFixture f;
  const Va a = f.mapAnon(6 * kPageSize);
  REQUIRE(f.mm->munmap(a + 2 * kPageSize, kPageSize) == Errno::Ok);
  CHECK(f.mm->mlock(a, 6 * kPageSize) == Errno::NoMem);
  CHECK(f.mm->munlock(a, 6 * kPageSize) == Errno::NoMem);
  CHECK(f.mm->lockedVm() == 0);
  CHECK_FALSE(present(*f.mm, a));
  CHECK(f.mm->mlock(a - kPageSize, kPageSize) == Errno::NoMem);  // nothing mapped there
}

TEST_CASE(
    "RLIMIT_MEMLOCK: mlock beyond it is ENOMEM, relocking counts once, CAP_IPC_LOCK lifts it, 0 is EPERM") {
  SECTION("limit") {
    MmFixture f(256ull << 20, limit(4 * kPageSize));
    const Va a = f.mapAnon(8 * kPageSize);
    CHECK(f.mm->mlock(a, 5 * kPageSize) == Errno::NoMem);
    CHECK(f.mm->lockedVm() == 0);
    REQUIRE(f.mm->mlock(a, 4 * kPageSize) == Errno::Ok);
    CHECK(f.mm->mlock(a, 4 * kPageSize) == Errno::Ok);  // already locked: not counted twice
    CHECK(f.mm->mlock(a + 4 * kPageSize, kPageSize) == Errno::NoMem);
    // MAP_LOCKED beyond the limit: EAGAIN.
    CHECK(f.mm->mmap(Va(0), kPageSize, kRW, kAnon | MAP_LOCKED).err == Errno::Again);
  }
  SECTION("CAP_IPC_LOCK") {
    MmFixture f(256ull << 20, limit(4 * kPageSize, true));
    const Va a = f.mapAnon(8 * kPageSize);
    CHECK(f.mm->mlock(a, 8 * kPageSize) == Errno::Ok);
    CHECK(f.mm->lockedVm() == 8);
  }
  SECTION("zero limit") {
    MmFixture f(256ull << 20, limit(0));
    const Va a = f.mapAnon(kPageSize);
    CHECK(f.mm->mlock(a, kPageSize) == Errno::Perm);
    CHECK(f.mm->mlockall(MCL_CURRENT) == Errno::Perm);
    CHECK(f.mm->mmap(Va(0), kPageSize, kRW, kAnon | MAP_LOCKED).err == Errno::Perm);
  }
}

TEST_CASE("MAP_LOCKED populates and locks, except special vmas and hugetlb") {
  MmParams p;
  p.hugetlbPages = 1;
  MmFixture f(256ull << 20, p);
  const VaResult r = f.mm->mmap(Va(0), 3 * kPageSize, kRW, kAnon | MAP_LOCKED);
  REQUIRE(r.ok());
  CHECK(f.mm->vmaLookup(r.addr)->vmFlags & VM_LOCKED);
  for (int i = 0; i < 3; ++i) CHECK(present(*f.mm, r.addr + i * kPageSize));
  const VaResult h = f.mm->mmap(Va(0), kPmdSize, kRW, kAnon | MAP_HUGETLB | MAP_LOCKED);
  REQUIRE(h.ok());
  CHECK_FALSE(f.mm->vmaLookup(h.addr)->vmFlags & VM_LOCKED);
  CHECK(present(*f.mm, h.addr));  // still populated (the request had VM_LOCKED)
  CHECK(f.mm->lockedVm() == 3);
}

TEST_CASE("mlock makes MADV_DONTNEED and MADV_FREE EINVAL and keeps lazyfree pages from reclaim") {
  MmFixture f;
  const Va a = f.mapAnon(2 * kPageSize);
  f.store(a, 5);
  f.store(a + kPageSize, 6);
  REQUIRE(f.mm->madvise(a + kPageSize, kPageSize, MADV_FREE) == Errno::Ok);  // lazyfree, clean
  // MLOCK_ONFAULT: nothing is touched, the lazyfree page stays clean but locked.
  REQUIRE(f.mm->mlock2(a, 2 * kPageSize, MLOCK_ONFAULT) == Errno::Ok);
  CHECK(f.mm->madvise(a, kPageSize, MADV_DONTNEED) == Errno::Inval);
  CHECK(f.mm->madvise(a, kPageSize, MADV_FREE) == Errno::Inval);
  CHECK(f.mm->reclaimLazyfree() == 0);
  CHECK(f.load(a + kPageSize) == 6);
  REQUIRE(f.mm->munlock(a, 2 * kPageSize) == Errno::Ok);
  CHECK(f.mm->reclaimLazyfree() == 1);
  CHECK(f.load(a + kPageSize) == 0);
}

TEST_CASE("a populating mlock dirties a lazyfree page, so reclaim keeps it after munlock") {
  MmFixture f;
  const Va a = f.mapAnon(kPageSize);
  f.store(a, 6);
  REQUIRE(f.mm->madvise(a, kPageSize, MADV_FREE) == Errno::Ok);
  // populate_vma_page_range's FOLL_WRITE | FOLL_TOUCH marks the page dirty (follow_page_pte).
  REQUIRE(f.mm->mlock(a, kPageSize) == Errno::Ok);
  REQUIRE(f.mm->munlock(a, kPageSize) == Errno::Ok);
  CHECK(f.mm->reclaimLazyfree() == 0);
  CHECK(f.load(a) == 6);
}

TEST_CASE("mlockall(MCL_CURRENT | MCL_FUTURE) locks every vma and later mappings, munlockall undoes both") {
  MmFixture f;
  const Va a = f.mapAnon(4 * kPageSize);
  const Va b = f.mapAnon(2 * kPageSize, PROT_READ);
  CHECK(f.mm->mlockall(0) == Errno::Inval);
  CHECK(f.mm->mlockall(MCL_ONFAULT) == Errno::Inval);
  CHECK(f.mm->mlockall(8) == Errno::Inval);
  REQUIRE(f.mm->mlockall(MCL_CURRENT | MCL_FUTURE) == Errno::Ok);
  CHECK(f.mm->vmaLookup(a)->vmFlags & VM_LOCKED);
  CHECK(f.mm->vmaLookup(b)->vmFlags & VM_LOCKED);
  CHECK(present(*f.mm, a + 3 * kPageSize));
  CHECK(present(*f.mm, b));  // read faults: the zero page
  CHECK(f.mm->defFlags() == VM_LOCKED);
  const Va c = f.mapAnon(kPageSize);
  CHECK(f.mm->vmaLookup(c)->vmFlags & VM_LOCKED);
  CHECK(present(*f.mm, c));  // a locked mmap populates
  REQUIRE(f.mm->munlockall() == Errno::Ok);
  CHECK(f.mm->lockedVm() == 0);
  CHECK(f.mm->defFlags() == 0);
  CHECK_FALSE(f.mm->vmaLookup(f.mapAnon(kPageSize))->vmFlags & VM_LOCKED);
}

TEST_CASE("mlockall(MCL_CURRENT) beyond RLIMIT_MEMLOCK is ENOMEM, MCL_FUTURE | MCL_ONFAULT locks on fault") {
  MmFixture f(256ull << 20, limit(2 * kPageSize));
  f.mapAnon(4 * kPageSize);
  CHECK(f.mm->mlockall(MCL_CURRENT) == Errno::NoMem);
  CHECK(f.mm->lockedVm() == 0);
  REQUIRE(f.mm->mlockall(MCL_FUTURE | MCL_ONFAULT) == Errno::Ok);
  const Va c = f.mapAnon(2 * kPageSize);
  CHECK((f.mm->vmaLookup(c)->vmFlags & VM_LOCKED_MASK) == VM_LOCKED_MASK);
  CHECK_FALSE(present(*f.mm, c));
}

TEST_CASE("locks are not inherited by a fork child") {
  MmFixture f;
  const Va a = f.mapAnon(2 * kPageSize);
  REQUIRE(f.mm->mlock(a, 2 * kPageSize) == Errno::Ok);
  ForkResult c = f.mm->fork("child");
  REQUIRE(c.ok());
  CHECK_FALSE(c.child->vmaLookup(a)->vmFlags & VM_LOCKED_MASK);
  CHECK(c.child->lockedVm() == 0);
  CHECK(f.mm->lockedVm() == 2);
  c.child->exitMmap();
}

TEST_CASE("mprotect(PROT_WRITE) of a locked read-only private vma breaks COW at once") {
  MmFixture f;
  const Va a = f.mapAnon(2 * kPageSize, PROT_READ);
  REQUIRE(f.mm->mlock(a, 2 * kPageSize) == Errno::Ok);
  CHECK(f.mm->physMem().isZeroPfn(f.mm->pageTable().lookup(a).pte.pfn()));  // read-populated
  REQUIRE(f.mm->mprotect(a, 2 * kPageSize, kRW) == Errno::Ok);
  const PtWalk w = f.mm->pageTable().lookup(a);
  CHECK_FALSE(f.mm->physMem().isZeroPfn(w.pte.pfn()));
  CHECK(w.pte.isWrite());
}

TEST_CASE(
    "mremap growing a locked vma checks RLIMIT_MEMLOCK and populates the new part, DONTUNMAP unlocks the old "
    "vma") {
  MmFixture f(256ull << 20, limit(6 * kPageSize));
  const Va a = f.mapAnon(2 * kPageSize, kRW, kAnon | MAP_LOCKED);
  CHECK(f.mm->mremap(a, 2 * kPageSize, 7 * kPageSize, MREMAP_MAYMOVE).err == Errno::Again);
  const VaResult r = f.mm->mremap(a, 2 * kPageSize, 4 * kPageSize, MREMAP_MAYMOVE);
  REQUIRE(r.ok());
  for (int i = 0; i < 4; ++i) CHECK(present(*f.mm, r.addr + i * kPageSize));
  CHECK(f.mm->lockedVm() == 4);
  const VaResult d = f.mm->mremap(r.addr, 4 * kPageSize, 4 * kPageSize, MREMAP_MAYMOVE | MREMAP_DONTUNMAP);
  REQUIRE(d.ok());
  CHECK_FALSE(f.mm->vmaLookup(r.addr)->vmFlags & VM_LOCKED_MASK);
  CHECK(f.mm->vmaLookup(d.addr)->vmFlags & VM_LOCKED);
  CHECK(f.mm->lockedVm() == 4);
}
