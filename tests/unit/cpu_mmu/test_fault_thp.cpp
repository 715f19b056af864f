// THP faults, the huge zero page, split_huge_pmd on partial operations, collapse, hugetlb.
#include <catch2/catch.hpp>

#include <vector>

#include "models/cpu_mmu/huge_memory.h"
#include "models/cpu_mmu/memory.h"
#include "tests/unit/cpu_mmu/fault_test_support.h"

using namespace hmmsim;
using namespace hmmsim::faulttest;

namespace {

MmParams thpAlways() {
  MmParams p;
  p.thp.enabled = ThpPolicy::Always;
  return p;
}

}  // namespace

TEST_CASE("write fault in an aligned MADV_HUGEPAGE range maps a 2 MiB leaf") {
  Fixture f;
  const Va a = f.mapAnonAligned(kPmdSize);
  REQUIRE(f.mm->madvise(a, kPmdSize, MADV_HUGEPAGE) == Errno::Ok);
  f.store(a + 12345 * 8, 77);
  const PtWalk w = f.walk(a);
  REQUIRE(w.level == PtLevel::Pmd);
  CHECK(w.pte.isWrite());
  const Frame& h = f.pm.frame(w.pte.pfn());
  CHECK(h.order() == 9);
  CHECK(h.entireMapcount() == 1);
  CHECK(f.counter("thp_fault_alloc") == 1);
  CHECK(f.mm->mmCounter(MmCounter::AnonPages) == std::int64_t(kPagesPerPmd));
  CHECK(f.load(a + 12345 * 8) == 77);
  CHECK(f.load(a + kPmdSize - 8) == 0);
}

TEST_CASE("with the madvise policy a vma without MADV_HUGEPAGE gets 4 KiB pages") {
  Fixture f;
  const Va a = f.mapAnonAligned(kPmdSize);
  f.store(a, 1);
  CHECK(f.walk(a).level == PtLevel::Pte);
  CHECK(f.counter("thp_fault_alloc") == 0);
}

TEST_CASE("with the always policy an aligned anonymous range gets a THP without madvise") {
  Fixture f(64ull << 20, thpAlways());
  const Va a = f.mapAnonAligned(kPmdSize);
  f.store(a, 1);
  CHECK(f.walk(a).level == PtLevel::Pmd);
}

TEST_CASE("MADV_NOHUGEPAGE wins over the always policy") {
  Fixture f(64ull << 20, thpAlways());
  const Va a = f.mapAnonAligned(kPmdSize);
  REQUIRE(f.mm->madvise(a, kPmdSize, MADV_NOHUGEPAGE) == Errno::Ok);
  f.store(a, 1);
  CHECK(f.walk(a).level == PtLevel::Pte);
}

TEST_CASE("a THP-eligible fault whose 2 MiB range is not inside the vma uses 4 KiB pages") {
  Fixture f(64ull << 20, thpAlways());
  const Va a = f.mapAnonAligned(kPmdSize);
  REQUIRE(f.mm->munmap(a + kPmdSize - kPageSize, kPageSize) == Errno::Ok);
  f.store(a, 1);
  CHECK(f.walk(a).level == PtLevel::Pte);
}

TEST_CASE("read fault in a THP range maps the huge zero page") {
  Fixture f;
  const Va a = f.mapAnonAligned(kPmdSize);
  REQUIRE(f.mm->madvise(a, kPmdSize, MADV_HUGEPAGE) == Errno::Ok);
  CHECK(f.load(a + 4096 * 3) == 0);
  const PtWalk w = f.walk(a);
  REQUIRE(w.level == PtLevel::Pmd);
  CHECK(f.pm.isHugeZeroPfn(w.pte.pfn()));
  CHECK_FALSE(w.pte.isWrite());
  CHECK(f.counter("thp_fault_alloc") == 0);
  CHECK(f.mm->mmCounter(MmCounter::AnonPages) == 0);
}

TEST_CASE("write after the huge zero page splits the PMD and COWs only the written page") {
  Fixture f;
  const Va a = f.mapAnonAligned(kPmdSize);
  REQUIRE(f.mm->madvise(a, kPmdSize, MADV_HUGEPAGE) == Errno::Ok);
  CHECK(f.load(a) == 0);
  f.rec.rounds.clear();
  f.store(a + 5 * kPageSize, 0x55);
  CHECK(f.walk(a).level == PtLevel::Pte);
  CHECK(f.walk(a).pte.pfn() == f.pm.zeroPfn());
  CHECK(f.walk(a + 5 * kPageSize).pte.isWrite());
  CHECK(f.load(a + 5 * kPageSize) == 0x55);
  CHECK(f.counter("thp_split_pmd") == 1);
  CHECK(f.mm->mmCounter(MmCounter::AnonPages) == 1);
  // split_huge_pmd's CLEAR on the 2 MiB, then wp_page_copy's CLEAR on the page.
  REQUIRE(f.rec.rounds.size() == 2);
  CHECK(f.rec.rounds[0] == Round{MmuNotifierEvent::Clear, a, a + kPmdSize});
  CHECK(f.rec.rounds[1] == Round{MmuNotifierEvent::Clear, a + 5 * kPageSize, a + 6 * kPageSize});
}

TEST_CASE("munmap of half a THP splits it and keeps the other half mapped with its data") {
  Fixture f;
  const Va a = f.mapAnonAligned(kPmdSize);
  REQUIRE(f.mm->madvise(a, kPmdSize, MADV_HUGEPAGE) == Errno::Ok);
  for (std::uint64_t i = 0; i < kPagesPerPmd; ++i) f.store(a + i * kPageSize, 1000 + i);
  const Pfn head = f.walk(a).pte.pfn();
  REQUIRE(f.walk(a).level == PtLevel::Pmd);
  f.rec.rounds.clear();
  REQUIRE(f.mm->munmap(a + kPmdSize / 2, kPmdSize / 2) == Errno::Ok);
  CHECK(f.counter("thp_split_pmd") == 1);
  for (std::uint64_t i = 0; i < kPagesPerPmd / 2; ++i) {
    const PtWalk w = f.walk(a + i * kPageSize);
    REQUIRE(w.level == PtLevel::Pte);
    CHECK(w.pte.pfn() == head + i);
    CHECK(f.load(a + i * kPageSize) == 1000 + i);
  }
  CHECK(f.walk(a + kPmdSize / 2).level == PtLevel::None);
  CHECK(f.mm->mmCounter(MmCounter::AnonPages) == std::int64_t(kPagesPerPmd / 2));
  CHECK(f.pm.frame(head).refcount() == std::int32_t(kPagesPerPmd / 2));
  CHECK(f.pm.frame(head + kPagesPerPmd / 2).mapcount == 0);
  // The split raised its own CLEAR round over the whole PMD.
  bool sawSplitClear = false;
  for (const Round& r : f.rec.rounds) sawSplitClear |= r == Round{MmuNotifierEvent::Clear, a, a + kPmdSize};
  CHECK(sawSplitClear);
}

TEST_CASE("unmapping the rest of a split THP frees the whole folio") {
  Fixture f;
  const Va a = f.mapAnonAligned(kPmdSize);
  REQUIRE(f.mm->madvise(a, kPmdSize, MADV_HUGEPAGE) == Errno::Ok);
  f.store(a, 1);
  const std::uint64_t freeBefore = f.pm.freePages();
  REQUIRE(f.mm->munmap(a, kPmdSize / 2) == Errno::Ok);
  REQUIRE(f.mm->munmap(a + kPmdSize / 2, kPmdSize / 2) == Errno::Ok);
  CHECK(f.pm.freePages() >= freeBefore + kPagesPerPmd);
  CHECK(f.mm->mmCounter(MmCounter::AnonPages) == 0);
}

TEST_CASE("a THP fault falls back to 4 KiB pages when no 2 MiB block is free") {
  Fixture f(8ull << 20);
  const Va a = f.mapAnonAligned(kPmdSize);
  REQUIRE(f.mm->madvise(a, kPmdSize, MADV_HUGEPAGE) == Errno::Ok);
  // Leave no free 2 MiB block: take every order-9 block. 4 KiB frames remain in the chunk
  // that holds the zero page and the page tables.
  std::vector<Pfn> blocks;
  while (auto b = f.pm.allocFrame(9)) blocks.push_back(*b);
  REQUIRE_FALSE(blocks.empty());
  REQUIRE(f.pm.freePages() > 0);
  f.store(a, 3);
  CHECK(f.walk(a).level == PtLevel::Pte);
  CHECK(f.counter("thp_fault_fallback") == 1);
  CHECK(f.load(a) == 3);
  for (Pfn b : blocks) f.pm.putPage(b);
}

TEST_CASE("fork shares a THP write-protected and a child write splits and copies one page") {
  Fixture f;
  const Va a = f.mapAnonAligned(kPmdSize);
  REQUIRE(f.mm->madvise(a, kPmdSize, MADV_HUGEPAGE) == Errno::Ok);
  f.store(a, 10);
  f.store(a + kPageSize, 11);
  ForkResult c = f.mm->fork("child");
  REQUIRE(c.ok());
  REQUIRE(c.child->pageTable().lookup(a).level == PtLevel::Pmd);
  CHECK_FALSE(f.walk(a).pte.isWrite());
  Fixture::storeIn(*c.child, a, 20);
  CHECK(Fixture::loadIn(*c.child, a) == 20);
  CHECK(Fixture::loadIn(*c.child, a + kPageSize) == 11);
  CHECK(f.load(a) == 10);
  CHECK(c.child->pageTable().lookup(a).level == PtLevel::Pte);
  c.child->exitMmap();
}

TEST_CASE("an exclusively owned THP write-protected by mprotect is reused on write") {
  Fixture f;
  const Va a = f.mapAnonAligned(kPmdSize);
  REQUIRE(f.mm->madvise(a, kPmdSize, MADV_HUGEPAGE) == Errno::Ok);
  f.store(a, 1);
  const Pfn head = f.walk(a).pte.pfn();
  Vma* v = f.mm->vmaLookup(a);
  REQUIRE(v);
  REQUIRE(changeProtection(*v, a, a + kPmdSize, VM_READ) == kPagesPerPmd);
  CHECK_FALSE(f.walk(a).pte.isWrite());
  REQUIRE(handleMmFault(*v, a, kFaultFlagWrite) == VmFaultResult::None);
  CHECK(f.walk(a).level == PtLevel::Pmd);
  CHECK(f.walk(a).pte.pfn() == head);
  CHECK(f.walk(a).pte.isWrite());
}

TEST_CASE("MADV_COLLAPSE turns 512 exclusive 4 KiB pages into one THP with the same data") {
  Fixture f;
  const Va a = f.mapAnonAligned(kPmdSize);
  for (std::uint64_t i = 0; i < kPagesPerPmd; i += 3) f.store(a + i * kPageSize, i + 1);
  REQUIRE(f.walk(a).level == PtLevel::Pte);
  Vma* v = f.mm->vmaLookup(a);
  REQUIRE(v);
  f.rec.rounds.clear();
  REQUIRE(collapseHugePage(*v, a) == Errno::Ok);
  CHECK(f.walk(a).level == PtLevel::Pmd);
  for (std::uint64_t i = 0; i < kPagesPerPmd; ++i)
    CHECK(f.load(a + i * kPageSize) == (i % 3 == 0 ? i + 1 : 0));
  CHECK(f.mm->mmCounter(MmCounter::AnonPages) == std::int64_t(kPagesPerPmd));
  CHECK(f.counter("thp_collapse_alloc") == 1);
  REQUIRE(f.rec.rounds.size() == 1);
  CHECK(f.rec.rounds[0] == Round{MmuNotifierEvent::Clear, a, a + kPmdSize});
}

TEST_CASE("collapse refuses a range with a page shared with a fork child") {
  Fixture f;
  const Va a = f.mapAnonAligned(kPmdSize);
  f.store(a, 1);
  ForkResult c = f.mm->fork("child");
  REQUIRE(c.ok());
  Vma* v = f.mm->vmaLookup(a);
  REQUIRE(v);
  CHECK(collapseHugePage(*v, a) == Errno::Again);
  CHECK(f.walk(a).level == PtLevel::Pte);
  c.child->exitMmap();
}

TEST_CASE("hugetlb write fault maps a 2 MiB hugetlb page") {
  MmParams p;
  p.hugetlbPages = 2;
  Fixture f(64ull << 20, p);
  const VaResult r =
      f.mm->mmap(Va(0), kPmdSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB);
  REQUIRE(r.ok());
  f.store(r.addr + 4096, 99);
  const PtWalk w = f.walk(r.addr);
  REQUIRE(w.level == PtLevel::Pmd);
  CHECK(f.pm.frame(w.pte.pfn()).test(kFrameHugeTlb));
  CHECK(f.load(r.addr + 4096) == 99);
  CHECK(f.counter("hugetlb_fault") == 1);
}

TEST_CASE("hugetlb private COW after fork copies the whole huge page") {
  MmParams p;
  p.hugetlbPages = 4;
  Fixture f(64ull << 20, p);
  const VaResult r =
      f.mm->mmap(Va(0), kPmdSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB);
  REQUIRE(r.ok());
  f.store(r.addr, 1);
  f.store(r.addr + kPmdSize - 8, 2);
  ForkResult c = f.mm->fork("child");
  REQUIRE(c.ok());
  Fixture::storeIn(*c.child, r.addr, 3);
  CHECK(f.load(r.addr) == 1);
  CHECK(Fixture::loadIn(*c.child, r.addr) == 3);
  CHECK(Fixture::loadIn(*c.child, r.addr + kPmdSize - 8) == 2);
  CHECK(c.child->pageTable().lookup(r.addr).level == PtLevel::Pmd);
  CHECK(c.child->pageTable().lookup(r.addr).pte.pfn() != f.walk(r.addr).pte.pfn());
  c.child->exitMmap();
}
