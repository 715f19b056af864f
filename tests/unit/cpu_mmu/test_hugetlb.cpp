// Hugetlb mappings of both hstates: MAP_HUGE_2MB (PMD leaves) and MAP_HUGE_1GB (PUD leaves).
#include <catch2/catch.hpp>

#include <vector>

#include "models/cpu_mmu/gup.h"
#include "models/cpu_mmu/hugetlb.h"
#include "models/cpu_mmu/memory.h"
#include "tests/unit/cpu_mmu/fault_test_support.h"

using namespace hmmsim;
using namespace hmmsim::faulttest;

namespace {

constexpr int kRW = PROT_READ | PROT_WRITE;
constexpr int kPrivHuge1G = MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_HUGE_1GB;
constexpr int kSharedHuge1G = MAP_SHARED | MAP_ANONYMOUS | MAP_HUGETLB | MAP_HUGE_1GB;
constexpr std::uint64_t kRam = 8ull << 30;  // sparse: only what is touched costs host memory

MmParams pools(std::uint64_t pages2M, std::uint64_t pages1G) {
  MmParams p;
  p.hugetlbPages = pages2M;
  p.hugetlbPages1G = pages1G;
  return p;
}

Va mapOk(Fixture& f, std::uint64_t len, int flags, int prot = kRW) {
  const VaResult r = f.mm->mmap(Va(0), len, prot, flags);
  REQUIRE(r.ok());
  return r.addr;
}

}  // namespace

TEST_CASE(
    "MAP_HUGE_1GB maps a 1 GiB aligned vma whose fault installs a PUD leaf of an order-18 hugetlb folio") {
  Fixture f(kRam, pools(0, 2));
  const Va a = mapOk(f, kPudSize - kPageSize, kPrivHuge1G);  // rounded up to one huge page
  CHECK(a.isAligned(kPudSize));
  const Vma* v = f.mm->vmaLookup(a);
  REQUIRE(v != nullptr);
  CHECK(v->length() == kPudSize);
  CHECK(v->kernelPagesize() == kPudSize);
  CHECK(hugetlbLevel(*v) == PtLevel::Pud);
  const std::uint64_t free0 = f.pm.freePages();
  const std::uint64_t tables0 = f.mm->pageTable().tablePages();
  f.store(a + kPudSize / 2 + 8, 1234);
  const PtWalk w = f.walk(a + 12345 * kPageSize);
  REQUIRE(w.level == PtLevel::Pud);
  CHECK(w.pte.isWrite());
  CHECK(w.pte.isDirty());
  const Frame& h = f.pm.frame(w.pte.pfn());
  CHECK(h.test(kFrameHugeTlb));
  CHECK(h.order() == 18);
  CHECK(h.entireMapcount() == 1);
  CHECK(w.pte.pfn().value() % (1u << 18) == 0);
  // The folio, plus the PUD table the fault allocated (page tables are backed by RAM frames).
  CHECK(f.pm.freePages() == free0 - (1u << 18) - (f.mm->pageTable().tablePages() - tables0));
  CHECK(f.load(a + kPudSize / 2 + 8) == 1234);
  CHECK(f.load(a + kPudSize - 8) == 0);
  CHECK(f.counter("hugetlb_fault") == 1);
}

TEST_CASE("hugetlb pages count in hugetlb_usage, not in the rss counters") {
  Fixture f(kRam, pools(2, 1));
  const Va big = mapOk(f, kPudSize, kPrivHuge1G);
  const Va small = mapOk(f, kPmdSize, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_HUGE_2MB);
  f.store(big, 1);
  f.store(small, 2);
  CHECK(f.mm->hugetlbUsage() == std::int64_t((1u << 18) + 512));
  CHECK(f.mm->mmCounter(MmCounter::AnonPages) == 0);
  CHECK(f.mm->rss() == 0);
  REQUIRE(f.mm->munmap(big, kPudSize) == Errno::Ok);
  CHECK(f.mm->hugetlbUsage() == 512);
}

TEST_CASE("MAP_HUGETLB sizes: 0 is the default 2 MiB hstate, sizes without an hstate are EINVAL") {
  Fixture f(kRam, pools(4, 1));
  const Va d = mapOk(f, kPageSize, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB);
  CHECK(f.mm->vmaLookup(d)->kernelPagesize() == kPmdSize);
  CHECK(f.mm->vmaLookup(d)->length() == kPmdSize);
  const int sizes[] = {12, 16, 20, 22, 29, 31, 63};  // 4 KiB, 64 KiB, 1 MiB, 4 MiB, ... no hstate
  for (int log : sizes) {
    INFO("size log " << log);
    const VaResult r =
        f.mm->mmap(Va(0), kPmdSize, kRW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | (log << MAP_HUGE_SHIFT));
    CHECK(r.err == Errno::Inval);
  }
  CHECK(f.mm->mapCount() == 1);
}

TEST_CASE("each hstate has its own pool: the 2 MiB pool does not back 1 GiB mappings") {
  Fixture f(kRam, pools(1024, 1));
  const Va a = mapOk(f, kPudSize, kPrivHuge1G);
  CHECK(a.isAligned(kPudSize));
  CHECK(f.mm->mmap(Va(0), kPudSize, kRW, kPrivHuge1G).err == Errno::NoMem);
  CHECK(f.mm->mapCount() == 1);
  // 2 MiB pages still come from their own pool.
  CHECK(f.mm->mmap(Va(0), 512 * kPmdSize, kRW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB).ok());
  CHECK(f.mm->mmap(Va(0), 513 * kPmdSize, kRW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB).err ==
        Errno::NoMem);
}

TEST_CASE("munmap returns the 1 GiB reservation and the folio") {
  Fixture f(kRam, pools(0, 1));
  const Va a = mapOk(f, kPudSize, kPrivHuge1G);
  const std::uint64_t free0 = f.pm.freePages();
  const std::uint64_t tables0 = f.mm->pageTable().tablePages();
  f.store(a, 7);
  CHECK(f.pm.freePages() == free0 - (1u << 18) - (f.mm->pageTable().tablePages() - tables0));
  f.rec.rounds.clear();
  REQUIRE(f.mm->munmap(a, kPudSize) == Errno::Ok);
  CHECK(f.pm.freePages() == free0);
  REQUIRE(f.rec.rounds.size() == 1);
  CHECK(f.rec.rounds[0] == Round{MmuNotifierEvent::Unmap, a, a + kPudSize});
  CHECK(f.mm->pageTable().lookup(a).level == PtLevel::None);
  // The pool has its page back.
  CHECK(f.mm->mmap(Va(0), kPudSize, kRW, kPrivHuge1G).ok());
}

TEST_CASE("a 1 GiB hugetlb vma splits only at 1 GiB boundaries: EINVAL and nothing changes") {
  Fixture f(kRam, pools(0, 2));
  const Va a = mapOk(f, 2 * kPudSize, kPrivHuge1G);
  f.store(a, 1);
  f.store(a + kPudSize, 2);
  f.rec.rounds.clear();
  CHECK(f.mm->munmap(a + kPmdSize, kPmdSize) == Errno::Inval);
  CHECK(f.mm->munmap(a, kPmdSize) == Errno::Inval);
  CHECK(f.mm->mprotect(a, kPmdSize, PROT_READ) == Errno::Inval);
  CHECK(f.rec.rounds.empty());
  CHECK(f.mm->vmaLookup(a)->length() == 2 * kPudSize);
  CHECK(f.load(a) == 1);
  // At the 1 GiB boundary the vma splits and the second huge page goes.
  REQUIRE(f.mm->munmap(a + kPudSize, kPudSize) == Errno::Ok);
  CHECK(f.mm->vmaLookup(a)->length() == kPudSize);
  CHECK(f.load(a) == 1);
  CHECK(f.mm->hugetlbUsage() == std::int64_t(1u << 18));
}

TEST_CASE("MAP_FIXED of a 1 GiB hugetlb mapping needs a 1 GiB aligned address") {
  Fixture f(kRam, pools(0, 1));
  const Va at(0x40000000ull * 5 + kPmdSize);
  CHECK(f.mm->mmap(at, kPudSize, kRW, kPrivHuge1G | MAP_FIXED).err == Errno::Inval);
  const VaResult r = f.mm->mmap(Va(0x40000000ull * 5), kPudSize, kRW, kPrivHuge1G | MAP_FIXED);
  REQUIRE(r.ok());
  CHECK(r.addr == Va(0x40000000ull * 5));
}

TEST_CASE(
    "fork of a private 1 GiB hugetlb mapping: CLEAR round, shared read-only, the child's write copies all of "
    "it") {
  Fixture f(kRam, pools(0, 4));
  const Va a = mapOk(f, kPudSize, kPrivHuge1G);
  f.store(a, 1);
  f.store(a + kPudSize - 8, 2);
  const Pfn parentPfn = f.walk(a).pte.pfn();
  f.rec.rounds.clear();
  ForkResult c = f.mm->fork("child");
  REQUIRE(c.ok());
  // copy_hugetlb_page_range: MMU_NOTIFY_CLEAR over the COW vma (not PROTECTION_PAGE).
  REQUIRE(f.rec.rounds.size() == 1);
  CHECK(f.rec.rounds[0] == Round{MmuNotifierEvent::Clear, a, a + kPudSize});
  const PtWalk cw = c.child->pageTable().lookup(a);
  REQUIRE(cw.level == PtLevel::Pud);
  CHECK(cw.pte.pfn() == parentPfn);
  CHECK_FALSE(cw.pte.isWrite());
  CHECK_FALSE(f.walk(a).pte.isWrite());
  CHECK(f.pm.frame(parentPfn).entireMapcount() == 2);
  CHECK(c.child->hugetlbUsage() == std::int64_t(1u << 18));
  f.rec.rounds.clear();
  Fixture::storeIn(*c.child, a + 8, 3);
  const PtWalk cw2 = c.child->pageTable().lookup(a);
  REQUIRE(cw2.level == PtLevel::Pud);
  CHECK(cw2.pte.pfn() != parentPfn);
  CHECK(cw2.pte.isWrite());
  CHECK(Fixture::loadIn(*c.child, a) == 1);
  CHECK(Fixture::loadIn(*c.child, a + 8) == 3);
  CHECK(Fixture::loadIn(*c.child, a + kPudSize - 8) == 2);
  CHECK(f.load(a + 8) == 0);
  CHECK(f.pm.frame(parentPfn).entireMapcount() == 1);
  // The parent's write reuses its now exclusive page.
  f.store(a + 16, 4);
  CHECK(f.walk(a).pte.pfn() == parentPfn);
  CHECK(f.counter("cow_reuse") >= 1);
  c.child->exitMmap();
}

TEST_CASE("a COW break of a 1 GiB hugetlb page raises one CLEAR round over the whole huge page") {
  Fixture f(kRam, pools(0, 4));
  const Va a = mapOk(f, kPudSize, kPrivHuge1G);
  f.store(a, 1);
  ForkResult c = f.mm->fork("child");
  REQUIRE(c.ok());
  f.rec.rounds.clear();
  f.store(a + 5 * kPmdSize, 9);  // the parent breaks COW this time
  REQUIRE(f.rec.rounds.size() == 1);
  CHECK(f.rec.rounds[0] == Round{MmuNotifierEvent::Clear, a, a + kPudSize});
  CHECK(Fixture::loadIn(*c.child, a + 5 * kPmdSize) == 0);
  c.child->exitMmap();
}

TEST_CASE("shared 1 GiB hugetlb memory stays shared after fork") {
  Fixture f(kRam, pools(0, 2));
  const Va a = mapOk(f, kPudSize, kSharedHuge1G);
  f.store(a, 1);
  f.rec.rounds.clear();
  ForkResult c = f.mm->fork("child");
  REQUIRE(c.ok());
  CHECK(f.rec.rounds.empty());  // not a COW mapping: no notifier round
  Fixture::storeIn(*c.child, a + kPudSize - 8, 5);
  CHECK(f.load(a + kPudSize - 8) == 5);
  CHECK(c.child->pageTable().lookup(a).pte.pfn() == f.walk(a).pte.pfn());
  c.child->exitMmap();
}

TEST_CASE("fork copies a maybe-pinned private 1 GiB hugetlb page for the child at once") {
  Fixture f(kRam, pools(0, 4));
  const Va a = mapOk(f, kPudSize, kPrivHuge1G);
  f.store(a, 11);
  Pfn pinned;
  REQUIRE(pinUserPages(*f.mm, a, 1, kFollWrite | kFollLongterm, &pinned).ok());
  ForkResult c = f.mm->fork("child");
  REQUIRE(c.ok());
  const PtWalk cw = c.child->pageTable().lookup(a);
  REQUIRE(cw.level == PtLevel::Pud);
  CHECK(cw.pte.pfn() != f.walk(a).pte.pfn());
  CHECK(cw.pte.isWrite());
  CHECK(f.walk(a).pte.isWrite());  // the parent keeps its pinned page writable
  CHECK(Fixture::loadIn(*c.child, a) == 11);
  f.store(a, 12);
  CHECK(Fixture::loadIn(*c.child, a) == 11);
  unpinUserPage(*f.mm, pinned);
  c.child->exitMmap();
}

TEST_CASE(
    "mprotect of a 1 GiB hugetlb vma: one PROTECTION_VMA round, write faults SIGSEGV, then writable again") {
  Fixture f(kRam, pools(0, 1));
  const Va a = mapOk(f, kPudSize, kPrivHuge1G);
  f.store(a, 1);
  f.rec.rounds.clear();
  REQUIRE(f.mm->mprotect(a, kPudSize, PROT_READ) == Errno::Ok);
  REQUIRE(f.rec.rounds.size() == 1);
  CHECK(f.rec.rounds[0] == Round{MmuNotifierEvent::ProtectionVma, a, a + kPudSize});
  CHECK_FALSE(f.walk(a).pte.isWrite());
  std::uint64_t v = 2;
  CHECK(copyToUser(*f.mm, a, &v, sizeof v) == Errno::Fault);
  CHECK(f.load(a) == 1);
  REQUIRE(f.mm->mprotect(a, kPudSize, kRW) == Errno::Ok);
  CHECK(f.walk(a).pte.isWrite());  // an exclusive anonymous page becomes writable at once
  f.store(a, 3);
  CHECK(f.load(a) == 3);
}

TEST_CASE("MADV_DONTNEED on 1 GiB hugetlb: an unaligned start is EINVAL, an aligned one drops the page") {
  Fixture f(kRam, pools(0, 1));
  const Va a = mapOk(f, kPudSize, kPrivHuge1G);
  f.store(a + 8, 1);
  CHECK(f.mm->madvise(a + kPmdSize, kPmdSize, MADV_DONTNEED) == Errno::Inval);
  CHECK(f.load(a + 8) == 1);
  f.rec.rounds.clear();
  // A length short of the huge page rounds down to nothing: nothing is dropped.
  REQUIRE(f.mm->madvise(a, kPmdSize, MADV_DONTNEED) == Errno::Ok);
  CHECK(f.load(a + 8) == 1);
  REQUIRE(f.mm->madvise(a, kPudSize, MADV_DONTNEED) == Errno::Ok);
  REQUIRE_FALSE(f.rec.rounds.empty());
  CHECK(f.rec.rounds.back() == Round{MmuNotifierEvent::Clear, a, a + kPudSize});
  CHECK(f.walk(a).level == PtLevel::None);
  CHECK(f.mm->hugetlbUsage() == 0);
  CHECK(f.load(a + 8) == 0);  // a fresh huge page
}

TEST_CASE("MAP_POPULATE of 1 GiB hugetlb memory faults each huge page once") {
  Fixture f(kRam, pools(0, 2));
  const Va a = mapOk(f, 2 * kPudSize, kPrivHuge1G | MAP_POPULATE);
  CHECK(f.walk(a).level == PtLevel::Pud);
  CHECK(f.walk(a + kPudSize).level == PtLevel::Pud);
  CHECK(f.counter("hugetlb_fault") == 2);
}

TEST_CASE("exit releases every 1 GiB hugetlb page") {
  Fixture f(kRam, pools(0, 2));
  const std::uint64_t free0 = f.pm.freePages();
  const Va a = mapOk(f, 2 * kPudSize, kPrivHuge1G);
  f.store(a, 1);
  f.store(a + kPudSize, 1);
  f.mm->exitMmap();
  CHECK(f.pm.freePages() == free0);
  CHECK(f.mm->hugetlbUsage() == 0);
}

TEST_CASE("a 1 GiB hugetlb page costs metadata only for the chunks that were touched") {
  Fixture f(kRam, pools(0, 1));
  const std::uint64_t meta0 = f.pm.metadataBytes();
  const Va a = mapOk(f, kPudSize, kPrivHuge1G);
  f.store(a, 1);
  f.store(a + kPudSize - 8, 2);
  // Two 2 MiB chunks of frames (head and the last one) at most, not 512.
  CHECK(f.pm.metadataBytes() - meta0 <= 2 * 512 * 64 + 4096);
}
