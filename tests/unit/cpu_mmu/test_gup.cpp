// get_user_pages / pin_user_pages: references, pins, faults, FOLL_FORCE, unshare, FOLL_LONGTERM.
#include <catch2/catch.hpp>

#include <vector>

#include "models/cpu_mmu/gup.h"
#include "models/cpu_mmu/memory.h"
#include "tests/unit/cpu_mmu/fault_test_device.h"
#include "tests/unit/cpu_mmu/fault_test_support.h"

using namespace hmmsim;
using namespace hmmsim::faulttest;

TEST_CASE("getUserPages faults pages in, returns their pfns and takes one reference each") {
  Fixture f;
  const Va a = f.mapAnon(4 * kPageSize);
  f.store(a, 1);
  std::vector<Pfn> pages(4);
  const GupResult r = getUserPages(*f.mm, a, 4, kFollWrite, pages.data());
  REQUIRE(r.ok());
  REQUIRE(r.nrPages == 4);
  for (std::size_t i = 0; i < 4; ++i) {
    const PtWalk w = f.walk(a + i * kPageSize);
    REQUIRE(w.pte.isPresent());
    CHECK(w.pte.isWrite());
    CHECK(pages[i] == w.pte.pfn());
    CHECK(f.pm.frame(pages[i]).refcount() == 2);  // mapping + GUP reference
  }
  CHECK(f.counter("gup_pages") == 4);
  for (Pfn p : pages) putUserPage(*f.mm, p);
  CHECK(f.pm.frame(pages[0]).refcount() == 1);
}

TEST_CASE("a GUP reference keeps the page alive after munmap") {
  Fixture f;
  const Va a = f.mapAnon(kPageSize);
  f.store(a, 0x5A5A);
  Pfn p;
  REQUIRE(getUserPages(*f.mm, a, 1, 0, &p).nrPages == 1);
  const std::uint64_t gen = f.pm.generationOf(p);
  REQUIRE(f.mm->munmap(a, kPageSize) == Errno::Ok);
  CHECK(f.pm.frame(p).refcount() == 1);
  CHECK(f.pm.generationOf(p) == gen);
  std::uint64_t v = 0;
  f.pm.read(paOf(p), &v, sizeof v);
  CHECK(v == 0x5A5A);
  putUserPage(*f.mm, p);
  CHECK(f.pm.generationOf(p) != gen);
}

TEST_CASE("pinUserPages adds GUP_PIN_COUNTING_BIAS and unpin removes it") {
  Fixture f;
  const Va a = f.mapAnon(kPageSize);
  Pfn p;
  const GupResult r = pinUserPages(*f.mm, a, 1, kFollWrite | kFollLongterm, &p);
  REQUIRE(r.nrPages == 1);
  CHECK(f.pm.frame(p).refcount() == 1 + kGupPinCountingBias);
  CHECK(folioMaybeDmaPinned(*f.mm, p));
  unpinUserPage(*f.mm, p);
  CHECK(f.pm.frame(p).refcount() == 1);
  CHECK_FALSE(folioMaybeDmaPinned(*f.mm, p));
}

TEST_CASE("pinning the zero page takes no pin") {
  Fixture f;
  const Va a = f.mapAnon(kPageSize, PROT_READ);
  CHECK(f.load(a) == 0);
  Pfn p;
  REQUIRE(pinUserPages(*f.mm, a, 1, 0, &p).nrPages == 1);
  CHECK(p == f.pm.zeroPfn());
  CHECK_FALSE(folioMaybeDmaPinned(*f.mm, p));
  unpinUserPage(*f.mm, p);  // ignored
}

TEST_CASE("pinning a device-private page migrates it to system memory first") {
  Fixture f;
  int owner = 0;
  TestDevice dev(f.pm, &owner);
  const Va a = f.mapAnon(kPageSize);
  const Pfn dpfn = dev.install(*f.mm, a, 0xDE7, true);
  Pfn p;
  const GupResult r = pinUserPages(*f.mm, a, 1, kFollWrite, &p);
  REQUIRE(r.nrPages == 1);
  REQUIRE(dev.calls.size() == 1);
  CHECK(dev.calls[0] == dpfn);
  CHECK(p != dpfn);
  CHECK(f.pm.isRam(p));
  CHECK(f.walk(a).pte.pfn() == p);
  std::uint64_t v = 0;
  f.pm.read(paOf(p), &v, sizeof v);
  CHECK(v == 0xDE7);
  CHECK(folioMaybeDmaPinned(*f.mm, p));
  unpinUserPage(*f.mm, p);
  f.mm->exitMmap();
}

TEST_CASE("FOLL_LONGTERM pin of a device-coherent page migrates it to system RAM") {
  Fixture f;
  int owner = 0;
  TestDevice dev(f.pm, &owner, 16, MemoryType::DeviceCoherent);
  const Va a = f.mapAnon(kPageSize);
  const Pfn dpfn = dev.installPresent(*f.mm, a, 0xC0C0, true);
  f.rec.rounds.clear();
  Pfn p;
  const GupResult r = pinUserPages(*f.mm, a, 1, kFollWrite | kFollLongterm, &p);
  REQUIRE(r.nrPages == 1);
  CHECK(f.pm.isRam(p));
  CHECK(f.walk(a).pte.pfn() == p);
  CHECK(f.load(a) == 0xC0C0);
  REQUIRE(dev.freed.size() == 1);
  CHECK(dev.freed[0] == dpfn);
  CHECK(f.counter("gup_longterm_migrate") == 1);
  REQUIRE(f.rec.rounds.size() == 1);
  CHECK(f.rec.rounds[0] == Round{MmuNotifierEvent::Clear, a, a + kPageSize});
  unpinUserPage(*f.mm, p);
}

TEST_CASE("FOLL_LONGTERM moves every mapping of a device-coherent page shared with a fork child") {
  Fixture f;
  int owner = 0;
  TestDevice dev(f.pm, &owner, 16, MemoryType::DeviceCoherent);
  const Va a = f.mapAnon(kPageSize);
  const Pfn dpfn = dev.installPresent(*f.mm, a, 0xC0DE, true);
  ForkResult c = f.mm->fork("child");
  REQUIRE(c.ok());
  REQUIRE(c.child->pageTable().lookup(a).pte.pfn() == dpfn);
  REQUIRE(f.pm.frame(dpfn).mapcount == 2);
  Pfn p;
  // FOLL_GET (no pin, so no unshare): the page stays COW-shared and both mappings must move.
  const GupResult r = getUserPages(*f.mm, a, 1, kFollLongterm, &p);
  REQUIRE(r.nrPages == 1);
  CHECK(f.pm.isRam(p));
  CHECK(f.walk(a).pte.pfn() == p);
  CHECK(c.child->pageTable().lookup(a).pte.pfn() == p);
  CHECK(f.pm.frame(p).mapcount == 2);
  REQUIRE(dev.freed.size() == 1);
  CHECK(dev.freed[0] == dpfn);
  CHECK(Fixture::loadIn(*c.child, a) == 0xC0DE);
  putUserPage(*f.mm, p);
  c.child->exitMmap();
}

TEST_CASE("FOLL_LONGTERM returns EBUSY when a device-coherent page has a reference besides its mappings") {
  Fixture f;
  int owner = 0;
  TestDevice dev(f.pm, &owner, 16, MemoryType::DeviceCoherent);
  const Va a = f.mapAnon(kPageSize);
  const Pfn dpfn = dev.installPresent(*f.mm, a, 1, true);
  f.pm.getPage(dpfn);  // a driver's own hold
  Pfn p;
  CHECK(pinUserPages(*f.mm, a, 1, kFollWrite | kFollLongterm, &p).err == Errno::Busy);
  CHECK(f.walk(a).pte.pfn() == dpfn);
  CHECK(dev.freed.empty());
  f.pm.putPage(dpfn);
  f.mm->exitMmap();  // the device page goes back to `dev` while it still exists
  CHECK(dev.freed.size() == 1);
}

TEST_CASE("a short-term pin of a device-coherent page pins it where it is") {
  Fixture f;
  int owner = 0;
  TestDevice dev(f.pm, &owner, 16, MemoryType::DeviceCoherent);
  const Va a = f.mapAnon(kPageSize);
  const Pfn dpfn = dev.installPresent(*f.mm, a, 1, true);
  Pfn p;
  REQUIRE(pinUserPages(*f.mm, a, 1, kFollWrite, &p).nrPages == 1);
  CHECK(p == dpfn);
  unpinUserPage(*f.mm, p);
  f.mm->exitMmap();
}

TEST_CASE("GUP of a PROT_NONE range returns EFAULT and takes nothing") {
  Fixture f;
  const Va a = f.mapAnon(kPageSize, PROT_NONE);
  Pfn p;
  const GupResult r = getUserPages(*f.mm, a, 1, 0, &p);
  CHECK(r.nrPages == 0);
  CHECK(r.err == Errno::Fault);
}

TEST_CASE("GUP write to a read-only mapping fails without FOLL_FORCE") {
  Fixture f;
  const Va a = f.mapAnon(kPageSize, PROT_READ);
  Pfn p;
  CHECK(getUserPages(*f.mm, a, 1, kFollWrite, &p).err == Errno::Fault);
}

TEST_CASE("FOLL_FORCE write to a read-only private mapping COWs and leaves the pte read-only") {
  Fixture f;
  const Va a = f.mapAnon(kPageSize, PROT_READ);
  CHECK(f.load(a) == 0);  // zero page
  Pfn p;
  const GupResult r = getUserPages(*f.mm, a, 1, kFollWrite | kFollForce, &p);
  REQUIRE(r.nrPages == 1);
  CHECK(p != f.pm.zeroPfn());
  CHECK(f.walk(a).pte.pfn() == p);
  CHECK_FALSE(f.walk(a).pte.isWrite());
  const std::uint64_t v = 0x77;
  f.pm.write(paOf(p), &v, sizeof v);  // ptrace's write through the page
  CHECK(f.load(a) == 0x77);
  putUserPage(*f.mm, p);
}

TEST_CASE("GUP stops at a hole and reports the pages before it") {
  Fixture f;
  const Va a = f.mapAnon(2 * kPageSize);
  REQUIRE(f.mm->munmap(a + kPageSize, kPageSize) == Errno::Ok);
  std::vector<Pfn> pages(2);
  const GupResult r = getUserPages(*f.mm, a, 2, 0, pages.data());
  CHECK(r.nrPages == 1);
  CHECK(r.ok());
  putUserPage(*f.mm, pages[0]);
}

TEST_CASE("a read pin of a page shared with a fork child unshares it first") {
  Fixture f;
  const Va a = f.mapAnon(kPageSize);
  f.store(a, 0x11);
  ForkResult c = f.mm->fork("child");
  REQUIRE(c.ok());
  const Pfn shared = f.walk(a).pte.pfn();
  Pfn p;
  REQUIRE(pinUserPages(*f.mm, a, 1, 0, &p).nrPages == 1);
  CHECK(p != shared);
  CHECK(f.walk(a).pte.pfn() == p);
  CHECK_FALSE(f.walk(a).pte.isWrite());  // unshare keeps the mapping read-only
  CHECK(f.pm.frame(p).test(kFrameAnonExclusive));
  CHECK(c.child->pageTable().lookup(a).pte.pfn() == shared);
  unpinUserPage(*f.mm, p);
  c.child->exitMmap();
}

TEST_CASE("fork copies a pinned anonymous page eagerly and the parent keeps it writable") {
  Fixture f;
  const Va a = f.mapAnon(kPageSize);
  f.store(a, 0x22);
  Pfn p;
  REQUIRE(pinUserPages(*f.mm, a, 1, kFollWrite | kFollLongterm, &p).nrPages == 1);
  ForkResult c = f.mm->fork("child");
  REQUIRE(c.ok());
  CHECK(f.walk(a).pte.pfn() == p);
  CHECK(f.walk(a).pte.isWrite());
  const Pte child = c.child->pageTable().lookup(a).pte;
  CHECK(child.pfn() != p);
  CHECK(Fixture::loadIn(*c.child, a) == 0x22);
  unpinUserPage(*f.mm, p);
  c.child->exitMmap();
}

TEST_CASE("pin_user_pages_fast pins present pages without faulting") {
  Fixture f;
  const Va a = f.mapAnon(2 * kPageSize);
  f.store(a, 1);
  f.store(a + kPageSize, 2);
  const auto faults = f.counter("pgfault");
  std::vector<Pfn> pages(2);
  REQUIRE(pinUserPagesFast(*f.mm, a, 2, kFollWrite, pages.data()).nrPages == 2);
  CHECK(f.counter("pgfault") == faults);
  unpinUserPages(*f.mm, pages.data(), 2);
}

TEST_CASE("get_user_pages_fast falls back to faulting for missing pages") {
  Fixture f;
  const Va a = f.mapAnon(2 * kPageSize);
  f.store(a, 1);
  std::vector<Pfn> pages(2);
  REQUIRE(getUserPagesFast(*f.mm, a, 2, kFollWrite, pages.data()).nrPages == 2);
  CHECK(f.walk(a + kPageSize).pte.pfn() == pages[1]);
  for (Pfn p : pages) putUserPage(*f.mm, p);
}

TEST_CASE("GUP on a VM_PFNMAP vma is EFAULT") {
  Fixture f;
  const Va a = f.mapAnon(kPageSize);
  Vma* v = f.mm->vmaLookup(a);
  REQUIRE(remapPfnRange(*v, a, f.pm.ramFirstPfn() + 100, kPageSize) == Errno::Ok);
  Pfn p;
  CHECK(getUserPages(*f.mm, a, 1, 0, &p).err == Errno::Fault);
  f.mm->exitMmap();
}

TEST_CASE("MADV_POPULATE_WRITE-style faultin populates writable pages") {
  Fixture f;
  const Va a = f.mapAnon(3 * kPageSize);
  REQUIRE(faultinPageRange(*f.mm, a, a + 3 * kPageSize, true) == Errno::Ok);
  for (int i = 0; i < 3; ++i) CHECK(f.walk(a + i * kPageSize).pte.isWrite());
  CHECK(f.mm->mmCounter(MmCounter::AnonPages) == 3);
}
