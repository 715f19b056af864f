// Address-space operations with data: faults, COW after fork, shared memory, THP splits by
// munmap/mprotect, mremap moving data, MADV_DONTNEED/FREE/COLLAPSE, exit freeing everything,
// and the notifier rounds of operations on populated ranges.
#include <catch2/catch.hpp>

#include "tests/unit/cpu_mmu/mm_test_support.h"

using namespace hmmsim;
using namespace hmmsim::test;

namespace {
constexpr std::uint64_t kMiB = 1ull << 20;
constexpr int kRW = PROT_READ | PROT_WRITE;
constexpr int kAnon = MAP_PRIVATE | MAP_ANONYMOUS;

/// Fill `pages` pages from `a` with value base + i (one 8-byte word at the start of each page).
void fill(MmFixture& f, Va a, std::uint64_t pages, std::uint64_t base) {
  for (std::uint64_t i = 0; i < pages; ++i) f.store(a + i * kPageSize, base + i);
}

/// An anonymous, 2 MiB-aligned, MADV_HUGEPAGE region of `n` PMDs, written so each is a THP.
Va thpRegion(MmFixture& f, std::uint64_t n) {
  Va a = f.mapAnon(n * kPmdSize);
  REQUIRE(a.isAligned(kPmdSize));
  REQUIRE(f.mm->madvise(a, n * kPmdSize, MADV_HUGEPAGE) == Errno::Ok);
  fill(f, a, n * kPagesPerPmd, 1000);
  for (std::uint64_t i = 0; i < n; ++i)
    REQUIRE(f.mm->pageTable().lookup(a + i * kPmdSize).level == PtLevel::Pmd);
  f.ops.rounds.clear();
  return a;
}
}  // namespace

TEST_CASE("a read of untouched anonymous memory maps the zero page and a write replaces it", "[mm][data]") {
  MmFixture f;
  Va a = f.mapAnon(4 * kPageSize);
  CHECK(f.load(a) == 0);
  PtWalk w = f.mm->pageTable().lookup(a);
  REQUIRE(w.pte.isPresent());
  CHECK(f.pm.isZeroPfn(w.pte.pfn()));
  CHECK(f.mm->mmCounter(MmCounter::AnonPages) == 0);
  f.store(a, 42);
  CHECK(f.load(a) == 42);
  w = f.mm->pageTable().lookup(a);
  CHECK_FALSE(f.pm.isZeroPfn(w.pte.pfn()));
  CHECK(f.mm->mmCounter(MmCounter::AnonPages) == 1);
}

TEST_CASE("after fork the child sees the parent's data and writes diverge (COW)", "[mm][data][fork]") {
  MmFixture f;
  Va a = f.mapAnon(8 * kPageSize);
  fill(f, a, 8, 100);
  ForkResult fr = f.mm->fork("child");
  REQUIRE(fr.ok());
  Mm& child = *fr.child;
  for (std::uint64_t i = 0; i < 8; ++i) CHECK(MmFixture::loadIn(child, a + i * kPageSize) == 100 + i);
  MmFixture::storeIn(child, a, 7);
  f.store(a + kPageSize, 8);
  CHECK(MmFixture::loadIn(child, a) == 7);
  CHECK(f.load(a) == 100);
  CHECK(f.load(a + kPageSize) == 8);
  CHECK(MmFixture::loadIn(child, a + kPageSize) == 101);
}

TEST_CASE("fork write-protects the parent's private pages inside one PROTECTION_PAGE round",
          "[mm][fork][events]") {
  MmFixture f;
  Va a = f.mapAnon(8 * kPageSize);
  fill(f, a, 8, 100);
  f.ops.rounds.clear();
  ForkResult fr = f.mm->fork("child");
  REQUIRE(fr.ok());
  REQUIRE(f.ops.rounds.size() == 1);
  CHECK(f.ops.rounds[0] == Round{MmuNotifierEvent::ProtectionPage, a, a + 8 * kPageSize});
  CHECK_FALSE(f.mm->pageTable().lookup(a).pte.isWrite());
  CHECK_FALSE(fr.child->pageTable().lookup(a).pte.isWrite());
}

TEST_CASE("shared anonymous memory stays shared after fork: the child's write is seen by the parent",
          "[mm][data][fork]") {
  MmFixture f;
  Va a = f.mapAnon(4 * kPageSize, kRW, MAP_SHARED | MAP_ANONYMOUS);
  f.store(a, 1);
  ForkResult fr = f.mm->fork("child");
  REQUIRE(fr.ok());
  CHECK(MmFixture::loadIn(*fr.child, a) == 1);
  MmFixture::storeIn(*fr.child, a + kPageSize, 55);
  MmFixture::storeIn(*fr.child, a, 2);
  CHECK(f.load(a + kPageSize) == 55);
  CHECK(f.load(a) == 2);
}

TEST_CASE("fork raises no round for a shared mapping with pages", "[mm][fork][events]") {
  MmFixture f;
  Va a = f.mapAnon(4 * kPageSize, kRW, MAP_SHARED | MAP_ANONYMOUS);
  f.store(a, 1);
  f.ops.rounds.clear();
  ForkResult fr = f.mm->fork("child");
  REQUIRE(fr.ok());
  CHECK(f.ops.rounds.empty());
  CHECK(f.mm->pageTable().lookup(a).pte.isWrite());
}

TEST_CASE("munmap of half a THP splits it and keeps the other half mapped with its data", "[mm][data][thp]") {
  MmFixture f;
  Va a = thpRegion(f, 1);
  REQUIRE(f.mm->munmap(a + kPmdSize / 2, kPmdSize / 2) == Errno::Ok);
  CHECK(f.mm->pageTable().lookup(a).level == PtLevel::Pte);
  for (std::uint64_t i = 0; i < kPagesPerPmd / 2; i += 37) CHECK(f.load(a + i * kPageSize) == 1000 + i);
  REQUIRE(f.ops.rounds.size() >= 2);
  CHECK(f.ops.rounds.front() == Round{MmuNotifierEvent::Clear, a, a + kPmdSize});
  CHECK(f.ops.rounds.back() == Round{MmuNotifierEvent::Unmap, a + kPmdSize / 2, a + kPmdSize});
  CHECK(f.mm->vmaLookup(a + kPmdSize / 2) == nullptr);
  CHECK(f.mm->vmEvents().thpSplitPmd.value() == 1);
}

TEST_CASE("mprotect of half a THP splits it and the vma, and only that half becomes read-only",
          "[mm][data][thp]") {
  MmFixture f;
  Va a = thpRegion(f, 1);
  REQUIRE(f.mm->mprotect(a, kPmdSize / 2, PROT_READ) == Errno::Ok);
  CHECK(f.mm->pageTable().lookup(a).level == PtLevel::Pte);
  CHECK(f.mm->mapCount() == 2);
  CHECK_FALSE(f.mm->pageTable().lookup(a).pte.isWrite());
  f.store(a + kPmdSize / 2, 9);  // still writable
  CHECK(f.load(a + kPmdSize / 2) == 9);
  CHECK(f.load(a + kPageSize) == 1001);
  std::uint64_t v = 1;
  CHECK(copyToUser(*f.mm, a, &v, sizeof v) == Errno::Fault);
  REQUIRE_FALSE(f.ops.rounds.empty());
  CHECK(f.ops.rounds.front() == Round{MmuNotifierEvent::Clear, a, a + kPmdSize});
  bool sawProt = false;
  for (const Round& r : f.ops.rounds)
    if (r.event == MmuNotifierEvent::ProtectionVma) {
      sawProt = true;
      CHECK(r.start == a);
      CHECK(r.end == a + kPmdSize / 2);
    }
  CHECK(sawProt);
}

TEST_CASE("mprotect of populated memory raises one PROTECTION_VMA round over the changed range",
          "[mm][mprotect][events]") {
  MmFixture f;
  Va a = f.mapAnon(8 * kPageSize);
  fill(f, a, 8, 1);
  f.ops.rounds.clear();
  REQUIRE(f.mm->mprotect(a + 2 * kPageSize, 4 * kPageSize, PROT_READ) == Errno::Ok);
  REQUIRE(f.ops.rounds.size() == 1);
  CHECK(f.ops.rounds[0] == Round{MmuNotifierEvent::ProtectionVma, a + 2 * kPageSize, a + 6 * kPageSize});
  CHECK_FALSE(f.mm->pageTable().lookup(a + 2 * kPageSize).pte.isWrite());
  CHECK(f.mm->pageTable().lookup(a).pte.isWrite());
}

TEST_CASE("mremap moving a mapping keeps its data at the new address", "[mm][data][mremap]") {
  MmFixture f;
  Va a = f.mapAnon(4 * kPageSize, kRW, kAnon, Va(0x20000000));
  f.mapAnon(kPageSize, PROT_READ, kAnon, Va(0x20004000));  // forces a move
  fill(f, a, 4, 500);
  const auto anonBefore = f.mm->mmCounter(MmCounter::AnonPages);
  VaResult r = f.mm->mremap(a, 4 * kPageSize, 8 * kPageSize, MREMAP_MAYMOVE);
  REQUIRE(r.ok());
  REQUIRE(r.addr != a);
  for (std::uint64_t i = 0; i < 4; ++i) CHECK(f.load(r.addr + i * kPageSize) == 500 + i);
  CHECK(f.load(r.addr + 5 * kPageSize) == 0);  // the grown part is fresh
  CHECK(f.mm->vmaLookup(a) == nullptr);
  CHECK(f.mm->mmCounter(MmCounter::AnonPages) == anonBefore);
}

TEST_CASE("mremap moves a whole THP as one PMD", "[mm][data][mremap][thp]") {
  MmFixture f;
  Va a = thpRegion(f, 1);
  VaResult r = f.mm->mremap(a, kPmdSize, kPmdSize, MREMAP_MAYMOVE | MREMAP_FIXED, Va(0x40000000));
  REQUIRE(r.ok());
  CHECK(f.mm->pageTable().lookup(r.addr).level == PtLevel::Pmd);
  CHECK(f.load(r.addr + 7 * kPageSize) == 1007);
}

TEST_CASE("MREMAP_DONTUNMAP moves the data and leaves an empty mapping behind", "[mm][data][mremap]") {
  MmFixture f;
  Va a = f.mapAnon(4 * kPageSize);
  fill(f, a, 4, 300);
  f.ops.rounds.clear();
  VaResult r = f.mm->mremap(a, 4 * kPageSize, 4 * kPageSize, MREMAP_MAYMOVE | MREMAP_DONTUNMAP);
  REQUIRE(r.ok());
  for (std::uint64_t i = 0; i < 4; ++i) CHECK(f.load(r.addr + i * kPageSize) == 300 + i);
  REQUIRE(f.mm->vmaLookup(a) != nullptr);
  CHECK(f.mm->pageTable().lookup(a).pte.isNone());
  CHECK(f.load(a) == 0);  // a touch faults in zeros
  REQUIRE(f.ops.rounds.size() >= 1);
  CHECK(f.ops.rounds[0] == Round{MmuNotifierEvent::Unmap, a, a + 4 * kPageSize});
}

TEST_CASE("pwrite to a file is seen through a shared mapping of it", "[mm][data][file]") {
  MmFixture f;
  auto file = tmpfile(f.pm, 4 * kPageSize);
  VaResult r = f.mm->mmap(Va(0), 4 * kPageSize, kRW, MAP_SHARED, file, 0);
  REQUIRE(r.ok());
  CHECK(f.load(r.addr + kPageSize) == 0);
  std::uint64_t v = 0xabcdef;
  REQUIRE(file->pwrite(&v, sizeof v, kPageSize).bytes == sizeof v);
  CHECK(f.load(r.addr + kPageSize) == 0xabcdef);
}

TEST_CASE("a store through a shared file mapping is seen by pread", "[mm][data][file]") {
  MmFixture f;
  auto file = tmpfile(f.pm, 4 * kPageSize);
  VaResult r = f.mm->mmap(Va(0), 4 * kPageSize, kRW, MAP_SHARED, file, 0);
  REQUIRE(r.ok());
  f.store(r.addr + 2 * kPageSize + 8, 77);
  std::uint64_t v = 0;
  REQUIRE(file->pread(&v, sizeof v, 2 * kPageSize + 8).bytes == sizeof v);
  CHECK(v == 77);
}

TEST_CASE("a store through a private file mapping copies the page and leaves the file alone",
          "[mm][data][file]") {
  MmFixture f;
  auto file = tmpfile(f.pm, 2 * kPageSize);
  std::uint64_t v = 5;
  REQUIRE(file->pwrite(&v, sizeof v, 0).ok());
  VaResult r = f.mm->mmap(Va(0), 2 * kPageSize, kRW, MAP_PRIVATE, file, 0);
  REQUIRE(r.ok());
  CHECK(f.load(r.addr) == 5);
  f.store(r.addr, 6);
  CHECK(f.load(r.addr) == 6);
  REQUIRE(file->pread(&v, sizeof v, 0).ok());
  CHECK(v == 5);
  // A later pwrite is not seen by the private copy.
  v = 9;
  REQUIRE(file->pwrite(&v, sizeof v, 0).ok());
  CHECK(f.load(r.addr) == 6);
}

TEST_CASE("a file mapping at an offset maps the file's pages from that offset", "[mm][data][file]") {
  MmFixture f;
  auto file = tmpfile(f.pm, 0);
  for (std::uint64_t i = 0; i < 4; ++i) {
    std::uint64_t v = 10 + i;
    REQUIRE(file->pwrite(&v, sizeof v, i * kPageSize).ok());
  }
  VaResult r = f.mm->mmap(Va(0), 2 * kPageSize, PROT_READ, MAP_SHARED, file, 2 * kPageSize);
  REQUIRE(r.ok());
  CHECK(f.load(r.addr) == 12);
  CHECK(f.load(r.addr + kPageSize) == 13);
}

TEST_CASE("truncating a mapped file unmaps the pages beyond EOF with a CLEAR round",
          "[mm][data][file][events]") {
  MmFixture f;
  auto file = tmpfile(f.pm, 4 * kPageSize);
  VaResult r = f.mm->mmap(Va(0), 4 * kPageSize, kRW, MAP_SHARED, file, 0);
  REQUIRE(r.ok());
  fill(f, r.addr, 4, 1);
  f.ops.rounds.clear();
  REQUIRE(file->ftruncate(2 * kPageSize) == Errno::Ok);
  REQUIRE(f.ops.rounds.size() == 1);
  CHECK(f.ops.rounds[0] == Round{MmuNotifierEvent::Clear, r.addr + 2 * kPageSize, r.addr + 4 * kPageSize});
  CHECK(f.mm->pageTable().lookup(r.addr + 3 * kPageSize).pte.isNone());
  CHECK(f.load(r.addr + kPageSize) == 2);
  std::uint64_t v;
  CHECK(copyFromUser(*f.mm, &v, r.addr + 3 * kPageSize, sizeof v) == Errno::Fault);  // SIGBUS
  CHECK(file->inode().nrPages() == 2);
}

TEST_CASE("madvise(DONTNEED) frees the pages: rss drops and the memory reads as zeros",
          "[mm][data][madvise]") {
  MmFixture f;
  Va a = f.mapAnon(4 * kPageSize);
  fill(f, a, 4, 50);
  const auto freeBefore = f.pm.freePages();
  REQUIRE(f.mm->madvise(a, 2 * kPageSize, MADV_DONTNEED) == Errno::Ok);
  CHECK(f.mm->mmCounter(MmCounter::AnonPages) == 2);
  CHECK(f.pm.freePages() == freeBefore + 2);
  CHECK(f.load(a) == 0);
  CHECK(f.load(a + 2 * kPageSize) == 52);
}

TEST_CASE("madvise(FREE) pages that stay clean are discarded by reclaim and read as zeros",
          "[mm][data][madvise]") {
  MmFixture f;
  Va a = f.mapAnon(4 * kPageSize);
  fill(f, a, 4, 60);
  f.ops.rounds.clear();
  REQUIRE(f.mm->madvise(a, 4 * kPageSize, MADV_FREE) == Errno::Ok);
  REQUIRE(f.ops.rounds.size() == 1);
  CHECK(f.ops.rounds[0] == Round{MmuNotifierEvent::Clear, a, a + 4 * kPageSize});
  CHECK(f.load(a) == 60);      // still there until reclaim
  f.store(a + kPageSize, 61);  // re-dirtied: must survive
  CHECK(f.mm->reclaimLazyfree() == 3);
  CHECK(f.load(a) == 0);
  CHECK(f.load(a + kPageSize) == 61);
  CHECK(f.load(a + 2 * kPageSize) == 0);
  CHECK(f.mm->mmStats().lazyfreeDiscarded.value() == 3);
}

TEST_CASE("madvise(COLLAPSE) turns 512 ptes into one THP with the same data", "[mm][data][madvise][thp]") {
  MmFixture f;
  Va a = f.mapAnon(kPmdSize);
  REQUIRE(a.isAligned(kPmdSize));
  fill(f, a, kPagesPerPmd, 7000);
  REQUIRE(f.mm->pageTable().lookup(a).level == PtLevel::Pte);
  f.ops.rounds.clear();
  REQUIRE(f.mm->madvise(a, kPmdSize, MADV_COLLAPSE) == Errno::Ok);
  CHECK(f.mm->pageTable().lookup(a).level == PtLevel::Pmd);
  CHECK(f.load(a + 300 * kPageSize) == 7300);
  REQUIRE_FALSE(f.ops.rounds.empty());
  CHECK(f.ops.rounds[0] == Round{MmuNotifierEvent::Clear, a, a + kPmdSize});
}

TEST_CASE("MAP_POPULATE faults the whole mapping in", "[mm][data][mmap]") {
  MmFixture f;
  VaResult r = f.mm->mmap(Va(0), 16 * kPageSize, kRW, kAnon | MAP_POPULATE);
  REQUIRE(r.ok());
  CHECK(f.mm->mmCounter(MmCounter::AnonPages) == 16);
  CHECK(f.mm->pageTable().lookup(r.addr + 15 * kPageSize).pte.isWrite());
}

TEST_CASE("exit frees every page and every page table", "[mm][data][exit]") {
  MmFixture f;
  const auto freeBefore = f.pm.freePages();
  Va a = f.mapAnon(64 * kPageSize);
  fill(f, a, 64, 1);
  thpRegion(f, 1);
  auto file = tmpfile(f.pm, 4 * kPageSize);
  VaResult r = f.mm->mmap(Va(0), 4 * kPageSize, kRW, MAP_SHARED, file, 0);
  REQUIRE(r.ok());
  fill(f, r.addr, 4, 1);
  f.mm->exitMmap();
  CHECK(f.mm->rss() == 0);
  CHECK(f.mm->pageTable().tablePages() == 1);
  file.reset();  // the page cache's pages go with the last file reference
  // Only the pgd's frame stays allocated (it lives as long as the Mm).
  CHECK(f.pm.freePages() == freeBefore);
}

TEST_CASE("a failed mprotect leaves vmas, page table and stats unchanged", "[mm][data][errors]") {
  MmFixture f;
  Va a = f.mapAnon(2 * kPageSize, kRW, kAnon, Va(0x20000000));
  f.mapAnon(2 * kPageSize, kRW, kAnon, Va(0x20004000));
  fill(f, a, 2, 1);
  auto vmas = f.shape();
  auto ptes = f.ptes(a, a + 8 * kPageSize);
  auto rss = f.mm->rss();
  auto rounds = f.ops.rounds.size();
  CHECK(f.mm->mprotect(a, 8 * kPageSize, PROT_READ) == Errno::NoMem);
  CHECK(f.mm->munmap(a + 3, kPageSize) == Errno::Inval);
  CHECK(f.mm->madvise(a, 8 * kPageSize, MADV_DONTNEED) == Errno::NoMem);
  CHECK(f.mm->mremap(a, 2 * kPageSize, kPageSize, MREMAP_DONTUNMAP).err == Errno::Inval);
  CHECK(f.shape() == vmas);
  CHECK(f.ptes(a, a + 8 * kPageSize) == ptes);
  CHECK(f.mm->rss() == rss);
  CHECK(f.ops.rounds.size() == rounds);
  CHECK(f.load(a + kPageSize) == 2);
}

TEST_CASE("the mm's stats count syscalls, failures and notifier rounds per event", "[mm][stats]") {
  MmFixture f;
  Va a = f.mapAnon(8 * kPageSize);
  fill(f, a, 8, 1);
  REQUIRE(f.mm->mprotect(a, 4 * kPageSize, PROT_READ) == Errno::Ok);
  REQUIRE(f.mm->madvise(a + 4 * kPageSize, kPageSize, MADV_DONTNEED) == Errno::Ok);
  REQUIRE(f.mm->munmap(a, 8 * kPageSize) == Errno::Ok);
  CHECK(f.mm->munmap(a + 1, kPageSize) == Errno::Inval);
  const StatsGroup& g = f.mm->stats();
  CHECK(g.counterValue("mmap_calls") == 1);
  CHECK(g.counterValue("mprotect_calls") == 1);
  CHECK(g.counterValue("madvise_calls") == 1);
  CHECK(g.counterValue("munmap_calls") == 2);
  CHECK(g.counterValue("failed_calls") == 1);
  CHECK(g.counterValue("notify_protection_vma") == 1);
  CHECK(g.counterValue("notify_clear") == 1);
  CHECK(g.counterValue("notify_unmap") == 1);
  CHECK(g.counterValue("notify_protection_page") == 0);
  CHECK(f.mm->vmEvents().pgfault.value() >= 8);
}

TEST_CASE("MAP_HUGETLB memory is mapped by 2 MiB entries and keeps its data", "[mm][data][hugetlb]") {
  MmParams p;
  p.hugetlbPages = 2;
  MmFixture f(256ull << 20, p);
  VaResult r = f.mm->mmap(Va(0), kPmdSize, kRW, kAnon | MAP_HUGETLB);
  REQUIRE(r.ok());
  f.store(r.addr + 100 * kPageSize, 4242);
  CHECK(f.mm->pageTable().lookup(r.addr).level == PtLevel::Pmd);
  CHECK(f.load(r.addr + 100 * kPageSize) == 4242);
  CHECK(f.load(r.addr) == 0);
}

TEST_CASE("a child's exit leaves the parent's COW pages intact", "[mm][data][fork][exit]") {
  MmFixture f;
  Va a = f.mapAnon(4 * kPageSize);
  fill(f, a, 4, 10);
  {
    ForkResult fr = f.mm->fork("child");
    REQUIRE(fr.ok());
    CHECK(MmFixture::loadIn(*fr.child, a + kPageSize) == 11);
  }                // the child exits here
  f.store(a, 99);  // the parent's write now reuses its page (no other mapper)
  CHECK(f.load(a) == 99);
  CHECK(f.load(a + 3 * kPageSize) == 13);
}

TEST_CASE("a device file's mmap may insert pages at mmap time (dmirror's vm_insert_page)",
          "[mm][data][device]") {
  MmFixture f;
  auto page = f.pm.allocFrame(0);
  REQUIRE(page.has_value());
  std::uint64_t magic = 0x5151;
  f.pm.write(paOf(*page) + 8, &magic, sizeof magic);
  struct Fops : FileOperations {
    explicit Fops(Pfn p) : pfn(p) {}
    Errno mmap(File&, Vma& vma) override { return vmInsertPage(vma, vma.vmStart, pfn); }
    Pfn pfn;
  } fops(*page);
  auto dev = openDeviceFile(f.pm, fops, FMODE_READ | FMODE_WRITE, "dmirror0");
  VaResult r = f.mm->mmap(Va(0), kPageSize, PROT_READ, MAP_PRIVATE, dev, 0);
  REQUIRE(r.ok());
  Vma* v = f.mm->vmaLookup(r.addr);
  CHECK((v->vmFlags & VM_MIXEDMAP) != 0);
  CHECK(f.load(r.addr + 8) == 0x5151);
  REQUIRE(f.mm->munmap(r.addr, kPageSize) == Errno::Ok);
  CHECK(f.pm.frame(*page).refcount() == 1);
  f.pm.putPage(*page);
}

TEST_CASE("mremap to a target that is not 2 MiB aligned splits the THP and keeps the data",
          "[mm][data][mremap][thp]") {
  MmFixture f;
  Va a = thpRegion(f, 1);
  const Va target(0x40000000 + kPageSize);
  VaResult r = f.mm->mremap(a, kPmdSize, kPmdSize, MREMAP_MAYMOVE | MREMAP_FIXED, target);
  REQUIRE(r.ok());
  CHECK(f.mm->pageTable().lookup(target).level == PtLevel::Pte);
  CHECK(f.load(target + 511 * kPageSize) == 1511);
  CHECK(f.load(target) == 1000);
  bool split = false;
  for (const Round& rd : f.ops.rounds) split |= rd == Round{MmuNotifierEvent::Clear, a, a + kPmdSize};
  CHECK(split);
}

TEST_CASE("madvise(FREE) of a whole THP lets reclaim discard all 512 pages while clean",
          "[mm][data][madvise][thp]") {
  MmFixture f;
  Va a = thpRegion(f, 1);
  const auto anon = f.mm->mmCounter(MmCounter::AnonPages);
  REQUIRE(f.mm->madvise(a, kPmdSize, MADV_FREE) == Errno::Ok);
  CHECK(f.mm->reclaimLazyfree() == kPagesPerPmd);
  CHECK(f.mm->mmCounter(MmCounter::AnonPages) == anon - std::int64_t(kPagesPerPmd));
  CHECK(f.mm->pageTable().lookup(a).pte.isNone());
  CHECK(f.load(a + 5 * kPageSize) == 0);
}

TEST_CASE("fork without memory for the child's page tables fails with ENOMEM and the parent keeps its data",
          "[mm][data][fork][errors]") {
  MmFixture f(8ull << 20);
  Va a = f.mapAnon(4 * kPageSize);
  fill(f, a, 4, 70);
  // Leave exactly one free frame: the child's pgd fits, its first PUD table does not.
  std::vector<Pfn> hog;
  while (f.pm.freePages() > 1) hog.push_back(*f.pm.allocFrame(0));
  ForkResult fr = f.mm->fork("child");
  CHECK(fr.err == Errno::NoMem);
  CHECK(fr.child == nullptr);
  CHECK(f.pm.freePages() == 1);  // the partial child was torn down
  CHECK(f.mm->stats().counterValue("failed_calls") == 1);
  // No frame at all: fails before creating the child.
  hog.push_back(*f.pm.allocFrame(0));
  CHECK(f.mm->fork("child2").err == Errno::NoMem);
  for (Pfn p : hog) f.pm.putPage(p);
  for (std::uint64_t i = 0; i < 4; ++i) CHECK(f.load(a + i * kPageSize) == 70 + i);
  f.store(a, 1);
  CHECK(f.load(a) == 1);
}
