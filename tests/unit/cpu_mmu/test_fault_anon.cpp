// The anonymous fault path: zero page, first-touch allocation, COW, permission failures.
#include <catch2/catch.hpp>

#include <cstring>

#include "models/cpu_mmu/gup.h"
#include "models/cpu_mmu/memory.h"
#include "tests/unit/cpu_mmu/fault_test_support.h"

using namespace hmmsim;
using namespace hmmsim::faulttest;

namespace {

PtWalk walk(Mm& mm, Va va) {
  return mm.pageTable().lookup(va);
}

std::uint64_t counter(Mm& mm, const char* name) {
  return mm.stats().counterValue(name);
}

}  // namespace

TEST_CASE("read fault on anonymous memory maps the shared zero page read-only") {
  Fixture f;
  const Va a = f.mapAnon(kPageSize);
  CHECK(f.load(a) == 0);
  const PtWalk w = walk(*f.mm, a);
  REQUIRE(w.level == PtLevel::Pte);
  CHECK(w.pte.pfn() == f.pm.zeroPfn());
  CHECK_FALSE(w.pte.isWrite());
  CHECK(w.pte.isSpecial());
  CHECK(counter(*f.mm, "zero_page_map") == 1);
  CHECK(f.mm->mmCounter(MmCounter::AnonPages) == 0);
}

TEST_CASE("write after a zero-page read replaces it with a private zeroed page") {
  Fixture f;
  const Va a = f.mapAnon(kPageSize);
  CHECK(f.load(a) == 0);
  f.store(a + 8, 0x1122334455667788ull);
  const PtWalk w = walk(*f.mm, a);
  REQUIRE(w.level == PtLevel::Pte);
  CHECK(w.pte.pfn() != f.pm.zeroPfn());
  CHECK(w.pte.isWrite());
  CHECK(w.pte.isDirty());
  CHECK(f.load(a) == 0);
  CHECK(f.load(a + 8) == 0x1122334455667788ull);
  CHECK(counter(*f.mm, "cow_fault") == 1);
  CHECK(f.mm->mmCounter(MmCounter::AnonPages) == 1);
  // The zero page itself stays zero.
  std::uint64_t z = 1;
  f.pm.read(paOf(f.pm.zeroPfn()) + 8, &z, sizeof z);
  CHECK(z == 0);
}

TEST_CASE("zero-page COW raises MMU_NOTIFY_CLEAR on exactly the written page") {
  Fixture f;
  const Va a = f.mapAnon(4 * kPageSize);
  CHECK(f.load(a + kPageSize) == 0);
  f.rec.rounds.clear();
  f.store(a + kPageSize, 7);
  REQUIRE(f.rec.rounds.size() == 1);
  CHECK(f.rec.rounds[0] == Round{MmuNotifierEvent::Clear, a + kPageSize, a + 2 * kPageSize});
}

TEST_CASE("first write to untouched anonymous memory allocates a writable page without a notifier") {
  Fixture f;
  const Va a = f.mapAnon(kPageSize);
  f.rec.rounds.clear();
  f.store(a, 42);
  const PtWalk w = walk(*f.mm, a);
  REQUIRE(w.level == PtLevel::Pte);
  CHECK(w.pte.isWrite());
  const Frame& fr = f.pm.frame(w.pte.pfn());
  CHECK(fr.isAnon());
  CHECK(fr.test(kFrameAnonExclusive));
  CHECK(fr.mapcount == 1);
  CHECK(fr.refcount() == 1);
  CHECK(counter(*f.mm, "anon_fault_alloc") == 1);
  CHECK(counter(*f.mm, "cow_fault") == 0);
  CHECK(f.rec.rounds.empty());
}

TEST_CASE("COW after fork copies the written page and leaves the other side intact") {
  Fixture f;
  const Va a = f.mapAnon(2 * kPageSize);
  f.store(a, 0xAAAA);
  f.store(a + kPageSize, 0xBBBB);
  ForkResult child = f.mm->fork("child");
  REQUIRE(child.ok());
  const Pfn shared = walk(*f.mm, a).pte.pfn();
  CHECK(walk(*child.child, a).pte.pfn() == shared);
  CHECK_FALSE(walk(*f.mm, a).pte.isWrite());
  CHECK(f.pm.frame(shared).mapcount == 2);

  Fixture::storeIn(*child.child, a, 0xCCCC);
  CHECK(Fixture::loadIn(*child.child, a) == 0xCCCC);
  CHECK(f.load(a) == 0xAAAA);
  CHECK(walk(*child.child, a).pte.pfn() != shared);
  CHECK(f.pm.frame(shared).mapcount == 1);
  // The untouched second page is still shared.
  CHECK(walk(*child.child, a + kPageSize).pte.pfn() == walk(*f.mm, a + kPageSize).pte.pfn());
  CHECK(child.child->stats().counterValue("cow_fault") == 1);
  child.child->exitMmap();
}

TEST_CASE("write to a page no longer shared after the child exited reuses it without copying") {
  Fixture f;
  const Va a = f.mapAnon(kPageSize);
  f.store(a, 1);
  const Pfn pfn = walk(*f.mm, a).pte.pfn();
  {
    ForkResult child = f.mm->fork("child");
    REQUIRE(child.ok());
    child.child->exitMmap();
  }
  CHECK_FALSE(walk(*f.mm, a).pte.isWrite());
  f.store(a, 2);
  CHECK(walk(*f.mm, a).pte.pfn() == pfn);
  CHECK(walk(*f.mm, a).pte.isWrite());
  CHECK(counter(*f.mm, "cow_reuse") == 1);
  CHECK(counter(*f.mm, "cow_fault") == 0);
}

TEST_CASE("write fault in a read-only vma returns SIGSEGV and changes nothing") {
  Fixture f;
  const Va a = f.mapAnon(kPageSize, PROT_READ);
  Vma* v = f.mm->vmaLookup(a);
  REQUIRE(v);
  CHECK(handleMmFault(*v, a, kFaultFlagWrite) == VmFaultResult::Sigsegv);
  CHECK(walk(*f.mm, a).level == PtLevel::None);
}

TEST_CASE("cpuAccess write to a read-only mapping returns EFAULT and leaves the data") {
  Fixture f;
  const Va a = f.mapAnon(kPageSize, PROT_READ);
  std::uint64_t v = 5;
  CHECK(copyToUser(*f.mm, a, &v, sizeof v) == Errno::Fault);
  CHECK(f.load(a) == 0);
}

TEST_CASE("any access to a PROT_NONE mapping is SIGSEGV and EFAULT") {
  Fixture f;
  const Va a = f.mapAnon(kPageSize, PROT_NONE);
  Vma* v = f.mm->vmaLookup(a);
  REQUIRE(v);
  CHECK(handleMmFault(*v, a, 0) == VmFaultResult::Sigsegv);
  std::uint64_t x = 0;
  CHECK(copyFromUser(*f.mm, &x, a, sizeof x) == Errno::Fault);
}

TEST_CASE("access to an address with no vma is EFAULT and partial copies stop at the hole") {
  Fixture f;
  const Va a = f.mapAnon(kPageSize);
  std::vector<std::uint8_t> buf(2 * kPageSize, 0xEE);
  std::size_t done = 0;
  // The page after the mapping is unmapped (top-down placement leaves a guard-free hole above
  // the highest mapping only if nothing is there; check that first).
  REQUIRE(f.mm->vmaLookup(a + kPageSize) == nullptr);
  CHECK(cpuAccess(*f.mm, a, buf.data(), buf.size(), true, &done) == Errno::Fault);
  CHECK(done == kPageSize);
  CHECK(f.load(a) == 0xEEEEEEEEEEEEEEEEull);
}

TEST_CASE("handleUserFault reports SIGSEGV for an address outside every vma") {
  Fixture f;
  CHECK(handleUserFault(*f.mm, Va(0x1000000), false) == VmFaultResult::Sigsegv);
}

TEST_CASE("cpuAccess moves bytes across page boundaries") {
  Fixture f;
  const Va a = f.mapAnon(3 * kPageSize);
  std::vector<std::uint8_t> in(2 * kPageSize + 100), out(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) in[i] = std::uint8_t(i * 7);
  REQUIRE(copyToUser(*f.mm, a + 50, in.data(), in.size()) == Errno::Ok);
  REQUIRE(copyFromUser(*f.mm, out.data(), a + 50, out.size()) == Errno::Ok);
  CHECK(in == out);
  CHECK(f.mm->mmCounter(MmCounter::AnonPages) == 3);
}

TEST_CASE("mprotect to read-only then back to read-write keeps exclusive pages writable without a fault") {
  Fixture f;
  const Va a = f.mapAnon(kPageSize);
  f.store(a, 9);
  REQUIRE(f.mm->mprotect(a, kPageSize, PROT_READ) == Errno::Ok);
  CHECK_FALSE(walk(*f.mm, a).pte.isWrite());
  REQUIRE(f.mm->mprotect(a, kPageSize, PROT_READ | PROT_WRITE) == Errno::Ok);
  CHECK(walk(*f.mm, a).pte.isWrite());  // can_change_pte_writable: exclusive anon page
  const auto faults = counter(*f.mm, "pgfault");
  f.store(a, 10);
  CHECK(counter(*f.mm, "pgfault") == faults);
}

TEST_CASE("changeProtection to PROT_NONE makes entries inaccessible to the MMU but keeps the page") {
  Fixture f;
  const Va a = f.mapAnon(kPageSize);
  f.store(a, 9);
  const Pfn pfn = walk(*f.mm, a).pte.pfn();
  Vma* v = f.mm->vmaLookup(a);
  REQUIRE(v);
  CHECK(changeProtection(*v, a, a + kPageSize, VM_NONE) == 1);
  const PtWalk w = walk(*f.mm, a);
  CHECK(w.pte.isProtNone());
  CHECK_FALSE(w.pte.isHwPresent());
  CHECK(w.pte.pfn() == pfn);
  CHECK(f.pm.frame(pfn).mapcount == 1);
}
