// /proc/pid/clear_refs and /proc/pid/pagemap: soft-dirty tracking (MMU_NOTIFY_SOFT_DIRTY) and
// the pagemap bits.
#include <catch2/catch.hpp>

#include <vector>

#include "models/cpu_mmu/task_mmu.h"
#include "tests/unit/cpu_mmu/mm_test_support.h"

using namespace hmmsim;
using namespace hmmsim::test;

namespace {

constexpr int kRW = PROT_READ | PROT_WRITE;

std::vector<std::uint64_t> pagemap(Mm& mm, Va a, std::size_t n, bool showPfn = true) {
  std::vector<std::uint64_t> v(n);
  pagemapRead(mm, a, n, v.data(), showPfn);
  return v;
}

}  // namespace

TEST_CASE(
    "clear_refs 4 raises one SOFT_DIRTY round, write-protects and cleans every entry, and a write re-dirties "
    "its page") {
  MmFixture f;
  const Va a = f.mapAnon(4 * kPageSize);
  for (int i = 0; i < 4; ++i) f.store(a + i * kPageSize, 10 + i);
  for (std::uint64_t e : pagemap(*f.mm, a, 4)) CHECK((e & PM_SOFT_DIRTY) != 0);
  f.ops.rounds.clear();
  REQUIRE(clearRefs(*f.mm, CLEAR_REFS_SOFT_DIRTY) == Errno::Ok);
  REQUIRE(f.ops.rounds.size() == 1);
  CHECK(f.ops.rounds[0].event == MmuNotifierEvent::SoftDirty);
  CHECK(f.ops.rounds[0].start == Va(0));
  for (std::uint64_t e : pagemap(*f.mm, a, 4)) {
    CHECK((e & PM_SOFT_DIRTY) == 0);
    CHECK((e & PM_PRESENT) != 0);
  }
  CHECK_FALSE(f.mm->pageTable().lookup(a).pte.isWrite());
  CHECK_FALSE(f.mm->vmaLookup(a)->vmFlags & VM_SOFTDIRTY);
  f.store(a + 2 * kPageSize, 99);  // write fault: reuse, dirty, soft-dirty
  const auto after = pagemap(*f.mm, a, 4);
  CHECK((after[2] & PM_SOFT_DIRTY) != 0);
  CHECK((after[0] & PM_SOFT_DIRTY) == 0);
  CHECK(f.load(a) == 10);
  CHECK(f.load(a + 2 * kPageSize) == 99);
}

TEST_CASE("a mapping made after clear_refs is soft-dirty as a whole, touched or not") {
  MmFixture f;
  f.mapAnon(kPageSize);
  REQUIRE(clearRefs(*f.mm, CLEAR_REFS_SOFT_DIRTY) == Errno::Ok);
  const Va b = f.mapAnon(2 * kPageSize, PROT_READ);
  const auto e = pagemap(*f.mm, b, 2);
  CHECK(e[0] == PM_SOFT_DIRTY);  // a hole of a soft-dirty vma
  CHECK(e[1] == PM_SOFT_DIRTY);
}

TEST_CASE("clear_refs 4 on a THP cleans the PMD, and a shared mapping's write faults it writable again") {
  MmFixture f;
  VaResult r = f.mm->mmap(Va(0), 2 * kPmdSize, kRW, MAP_PRIVATE | MAP_ANONYMOUS);
  REQUIRE(r.ok());
  const Va thp = r.addr.alignUp(kPmdSize);
  REQUIRE(f.mm->madvise(thp, kPmdSize, MADV_HUGEPAGE) == Errno::Ok);
  f.store(thp, 1);
  REQUIRE(f.mm->pageTable().lookup(thp).level == PtLevel::Pmd);
  const Va sh = f.mapAnon(kPageSize, kRW, MAP_SHARED | MAP_ANONYMOUS);
  f.store(sh, 2);
  REQUIRE(clearRefs(*f.mm, CLEAR_REFS_SOFT_DIRTY) == Errno::Ok);
  const PtWalk w = f.mm->pageTable().lookup(thp);
  REQUIRE(w.level == PtLevel::Pmd);
  CHECK_FALSE(w.pte.isWrite());
  CHECK_FALSE(w.pte.isSoftDirty());
  f.store(sh, 3);
  CHECK(f.mm->pageTable().lookup(sh).pte.isWrite());
  CHECK((pagemap(*f.mm, sh, 1)[0] & PM_SOFT_DIRTY) != 0);
  CHECK(f.load(sh) == 3);
}

TEST_CASE("pagemap reports pfn, file, exclusive and holes, and hides pfns from the unprivileged view") {
  MmFixture f;
  const Va a = f.mapAnon(3 * kPageSize);
  f.store(a, 1);
  const Va sh = f.mapAnon(kPageSize, kRW, MAP_SHARED | MAP_ANONYMOUS);
  f.store(sh, 2);
  const auto e = pagemap(*f.mm, a, 3);
  const Pfn pfn = f.mm->pageTable().lookup(a).pte.pfn();
  CHECK((e[0] & PM_PFRAME_MASK) == pfn.value());
  CHECK((e[0] & PM_PRESENT) != 0);
  CHECK((e[0] & PM_MMAP_EXCLUSIVE) != 0);
  CHECK((e[0] & PM_FILE) == 0);
  CHECK((e[1] & ~PM_SOFT_DIRTY) == 0);  // never touched
  CHECK((pagemap(*f.mm, sh, 1)[0] & PM_FILE) != 0);
  CHECK((pagemap(*f.mm, a, 1, /*showPfn=*/false)[0] & PM_PFRAME_MASK) == 0);
  // After fork the page is mapped twice: no longer exclusive.
  ForkResult c = f.mm->fork("child");
  REQUIRE(c.ok());
  CHECK((pagemap(*f.mm, a, 1)[0] & PM_MMAP_EXCLUSIVE) == 0);
  c.child->exitMmap();
  CHECK(pagemap(*f.mm, Va(0x1000), 1)[0] == 0);  // no vma
}

TEST_CASE("clear_refs 1-3 clear accessed bits of all, anonymous or file mappings, unknown types are EINVAL") {
  MmFixture f;
  const Va a = f.mapAnon(kPageSize);
  const Va sh = f.mapAnon(kPageSize, kRW, MAP_SHARED | MAP_ANONYMOUS);
  f.store(a, 1);
  f.store(sh, 1);
  auto young = [&](Va v) { return f.mm->pageTable().lookup(v).pte.isYoung(); };
  REQUIRE(young(a));
  REQUIRE(young(sh));
  f.ops.rounds.clear();
  REQUIRE(clearRefs(*f.mm, CLEAR_REFS_ANON) == Errno::Ok);
  CHECK_FALSE(young(a));
  CHECK(young(sh));
  REQUIRE(clearRefs(*f.mm, CLEAR_REFS_MAPPED) == Errno::Ok);
  CHECK_FALSE(young(sh));
  f.store(a, 2);
  REQUIRE(clearRefs(*f.mm, CLEAR_REFS_ALL) == Errno::Ok);
  CHECK_FALSE(young(a));
  CHECK(f.ops.rounds.empty());  // only soft-dirty clearing invalidates
  CHECK(clearRefs(*f.mm, 0) == Errno::Inval);
  CHECK(clearRefs(*f.mm, 6) == Errno::Inval);
  CHECK(clearRefs(*f.mm, CLEAR_REFS_MM_HIWATER_RSS) == Errno::Ok);
}

// tools/testing/selftests/mm/soft-dirty.c, case by case (TEST_ITERATIONS kept small: the
// model is deterministic, the kernel loops to catch races).

namespace {
bool softDirty(Mm& mm, Va a) {
  return (pagemap(mm, a, 1)[0] & PM_SOFT_DIRTY) != 0;
}
void clearSoftdirty(Mm& mm) {
  REQUIRE(clearRefs(mm, CLEAR_REFS_SOFT_DIRTY) == Errno::Ok);
}
}  // namespace

TEST_CASE("soft-dirty.test_simple") {
  MmFixture f;
  const Va map = f.mapAnon(kPageSize);
  clearSoftdirty(*f.mm);
  for (int i = 0; i < 100; ++i) {
    REQUIRE_FALSE(softDirty(*f.mm, map));
    clearSoftdirty(*f.mm);
    f.store(map, std::uint64_t(i));  // write something to get the dirty bit
    REQUIRE(softDirty(*f.mm, map));
    clearSoftdirty(*f.mm);
  }
}

TEST_CASE("soft-dirty.test_vma_reuse") {
  MmFixture f;
  const Va map = f.mapAnon(kPageSize);
  CHECK(softDirty(*f.mm, map));  // the kernel always marks new regions soft-dirty
  clearSoftdirty(*f.mm);
  REQUIRE(f.mm->munmap(map, kPageSize) == Errno::Ok);
  const Va map2 = f.mapAnon(kPageSize);
  CHECK(map2 == map);             // reused location
  CHECK(softDirty(*f.mm, map2));  // new regions are soft-dirty even when reused
}

TEST_CASE("soft-dirty.test_hugepage") {
  MmFixture f;
  VaResult r = f.mm->mmap(Va(0), 2 * kPmdSize, kRW, MAP_PRIVATE | MAP_ANONYMOUS);
  REQUIRE(r.ok());
  const Va map = r.addr.alignUp(kPmdSize);
  REQUIRE(f.mm->madvise(map, kPmdSize, MADV_HUGEPAGE) == Errno::Ok);
  for (std::uint64_t i = 0; i < kPmdSize; i += kPageSize) f.store(map + i, i);
  REQUIRE(f.mm->pageTable().lookup(map).level == PtLevel::Pmd);  // check_huge_anon
  clearSoftdirty(*f.mm);
  for (int i = 0; i < 100; ++i) {
    REQUIRE_FALSE(softDirty(*f.mm, map));
    clearSoftdirty(*f.mm);
    f.store(map, std::uint64_t(i) + 1);
    REQUIRE(softDirty(*f.mm, map));
    clearSoftdirty(*f.mm);
  }
  CHECK(f.mm->pageTable().lookup(map).level == PtLevel::Pmd);  // still one huge page
}

TEST_CASE("soft-dirty.test_mprotect (anon and shared)") {
  for (const bool anon : {true, false}) {
    INFO((anon ? "anon" : "file"));
    MmFixture f;
    const Va map =
        f.mapAnon(kPageSize, kRW, anon ? (MAP_PRIVATE | MAP_ANONYMOUS) : (MAP_SHARED | MAP_ANONYMOUS));
    f.store(map, 1);
    CHECK(softDirty(*f.mm, map));  // dirty bit of a new written page
    clearSoftdirty(*f.mm);
    CHECK_FALSE(softDirty(*f.mm, map));  // clear after clear_refs
    REQUIRE(f.mm->mprotect(map, kPageSize, PROT_READ) == Errno::Ok);
    CHECK_FALSE(softDirty(*f.mm, map));  // still clear after marking RO
    REQUIRE(f.mm->mprotect(map, kPageSize, kRW) == Errno::Ok);
    CHECK_FALSE(softDirty(*f.mm, map));  // still clear after marking RW
    f.store(map, 2);
    CHECK(softDirty(*f.mm, map));  // soft-dirty after rewritten
  }
}

TEST_CASE("soft-dirty.test_merge: a soft-dirty vma merged into a clean one keeps the merged vma soft-dirty") {
  MmFixture f;
  const Va reserved = f.mapAnon(10 * kPageSize, PROT_NONE);
  REQUIRE(f.mm->munmap(reserved, 10 * kPageSize) == Errno::Ok);
  const VaResult map =
      f.mm->mmap(reserved + kPageSize, 2 * kPageSize, kRW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED);
  REQUIRE(map.ok());
  clearSoftdirty(*f.mm);  // clears VM_SOFTDIRTY too
  CHECK_FALSE(softDirty(*f.mm, map.addr));
  const VaResult map2 =
      f.mm->mmap(reserved + 3 * kPageSize, kPageSize, kRW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED);
  REQUIRE(map2.ok());
  const Vma* v = f.mm->vmaLookup(map.addr);
  CHECK(v->vmEnd == map2.addr + kPageSize);  // merged
  CHECK(softDirty(*f.mm, map.addr));
  CHECK(softDirty(*f.mm, map2.addr));
}
