// VM_GROWSDOWN stacks: growth on a fault below the vma (expand_stack), its limits (guard gap,
// RLIMIT_STACK, mmap_min_addr), get_unmapped_area keeping the guard gap, mprotect(PROT_GROWSDOWN).
#include <catch2/catch.hpp>

#include "tests/unit/cpu_mmu/mm_test_support.h"

using namespace hmmsim;
using namespace hmmsim::test;

namespace {

constexpr int kRW = PROT_READ | PROT_WRITE;
constexpr int kStack = MAP_PRIVATE | MAP_ANONYMOUS | MAP_GROWSDOWN;
const Va kStackTop(0x7ff000000000ull);

Va mapStack(MmFixture& f, std::uint64_t len) {
  const VaResult r = f.mm->mmap(kStackTop - len, len, kRW, kStack | MAP_FIXED);
  REQUIRE(r.ok());
  return r.addr;
}

}  // namespace

TEST_CASE("a store below a MAP_GROWSDOWN vma grows it down to that page, with no notifier round") {
  MmFixture f;
  const Va s = mapStack(f, 4 * kPageSize);
  const Vma* v = f.mm->vmaLookup(s);
  REQUIRE(v->vmFlags & VM_GROWSDOWN);
  const std::uint64_t pgoff0 = v->vmPgoff;
  f.ops.rounds.clear();
  f.store(s - 3 * kPageSize + 8, 42);  // three pages below
  CHECK(v->vmStart == s - 3 * kPageSize);
  CHECK(v->vmEnd == kStackTop);
  CHECK(v->vmPgoff == pgoff0 - 3);
  CHECK(f.load(s - 3 * kPageSize + 8) == 42);
  CHECK(f.load(s - kPageSize) == 0);
  CHECK(f.ops.rounds.empty());
  CHECK(f.mm->stats().counterValue("stack_expansions") == 1);
  CHECK(f.mm->mapCount() == 1);
}

TEST_CASE("a vma without VM_GROWSDOWN does not grow: the access below it is SIGSEGV") {
  MmFixture f;
  const VaResult r =
      f.mm->mmap(kStackTop - 4 * kPageSize, 4 * kPageSize, kRW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED);
  REQUIRE(r.ok());
  std::uint64_t v = 1;
  CHECK(copyToUser(*f.mm, r.addr - kPageSize, &v, sizeof v) == Errno::Fault);
  CHECK(f.mm->vmaLookup(r.addr)->vmStart == r.addr);
}

TEST_CASE("stack growth stops at RLIMIT_STACK") {
  MmParams p;
  p.rlimitStack = 16 * kPageSize;
  MmFixture f(256ull << 20, p);
  const Va s = mapStack(f, 4 * kPageSize);
  std::uint64_t v = 1;
  CHECK(copyToUser(*f.mm, s - 12 * kPageSize, &v, sizeof v) == Errno::Ok);  // 16 pages in all
  CHECK(copyToUser(*f.mm, s - 13 * kPageSize, &v, sizeof v) == Errno::Fault);
  CHECK(f.mm->vmaLookup(s)->vmStart == s - 12 * kPageSize);
}

TEST_CASE("stack growth keeps the guard gap to the vma below") {
  MmFixture f;
  const Va s = mapStack(f, 4 * kPageSize);
  const Va below = s - (1ull << 20) - 8 * kPageSize;  // 8 pages plus the 1 MiB gap below the stack
  REQUIRE(f.mm->mmap(below - kPageSize, kPageSize, kRW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED).ok());
  std::uint64_t v = 1;
  CHECK(copyToUser(*f.mm, s - 8 * kPageSize, &v, sizeof v) == Errno::Ok);  // exactly the gap left
  CHECK(copyToUser(*f.mm, s - 9 * kPageSize, &v, sizeof v) == Errno::Fault);
  CHECK(f.mm->vmaLookup(s)->vmStart == s - 8 * kPageSize);
}

TEST_CASE("mmap without MAP_FIXED keeps out of the guard gap below a stack") {
  MmFixture f;
  const Va s = mapStack(f, 4 * kPageSize);
  // A hint right below the stack is inside the gap: not honoured.
  const VaResult r = f.mm->mmap(s - 4 * kPageSize, 4 * kPageSize, kRW, MAP_PRIVATE | MAP_ANONYMOUS);
  REQUIRE(r.ok());
  CHECK((r.addr + 4 * kPageSize <= s - (1ull << 20) || r.addr >= kStackTop));
}

TEST_CASE("MAP_GROWSDOWN on shared anonymous memory is EINVAL") {
  MmFixture f;
  CHECK(f.mm->mmap(Va(0), kPageSize, kRW, MAP_SHARED | MAP_ANONYMOUS | MAP_GROWSDOWN).err == Errno::Inval);
}

TEST_CASE("mprotect(PROT_GROWSDOWN) reaches down to the stack's start, and is EINVAL elsewhere") {
  MmFixture f;
  const Va s = mapStack(f, 8 * kPageSize);
  constexpr int kProtGrowsDown = 0x01000000;
  REQUIRE(f.mm->mprotect(s + 6 * kPageSize, kPageSize, PROT_READ | kProtGrowsDown) == Errno::Ok);
  const Vma* v = f.mm->vmaLookup(s);
  CHECK(v->vmStart == s);
  CHECK(v->vmEnd == s + 7 * kPageSize);
  CHECK_FALSE(v->vmFlags & VM_WRITE);
  const Va plain = f.mapAnon(kPageSize);
  CHECK(f.mm->mprotect(plain, kPageSize, PROT_READ | kProtGrowsDown) == Errno::Inval);
}
