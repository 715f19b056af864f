// make_device_exclusive, one behaviour per case.

#include <catch2/catch.hpp>

#include "hmm/device_exclusive.h"
#include "tests/unit/hmm/hmm_test_support.h"

using namespace hmmsim;
using namespace hmmsim::test;

namespace {
constexpr std::uint64_t kP = kPageSize;
}

TEST_CASE("makeDeviceExclusive installs a device-exclusive entry with an EXCLUSIVE event for the owner") {
  HmmFixture f;
  const Va a = f.mapAnon(2 * kP);
  f.store(a + kP, 9);
  const Pfn page = f.pteAt(a + kP).pfn();
  f.rec.events.clear();
  DeviceExclusiveResult r;
  {
    MmapReadLock l(*f.mm);
    r = makeDeviceExclusive(*f.mm, a + kP, f.owner());
  }
  REQUIRE(r.ok());
  REQUIRE(r.page == page);
  REQUIRE(f.pteAt(a + kP).isDeviceExclusiveEntry());
  REQUIRE(f.pteAt(a + kP).swpPfn() == page);
  REQUIRE(f.rec.count(MmuNotifierEvent::Exclusive) == 1);
  REQUIRE(f.rec.events.back().owner == f.owner());
  REQUIRE(f.rec.events.back().start == a + kP);
  REQUIRE(f.pm.frame(r.folio).isLocked());
  deviceExclusiveRelease(*f.mm, r.folio);
}

TEST_CASE("makeDeviceExclusive faults a read-only zero page in writable first") {
  HmmFixture f;
  const Va a = f.mapAnon(kP);
  (void)f.load(a);
  DeviceExclusiveResult r;
  {
    MmapReadLock l(*f.mm);
    r = makeDeviceExclusive(*f.mm, a, nullptr);
  }
  REQUIRE(r.ok());
  REQUIRE(r.page != f.pm.zeroPfn());
  REQUIRE(f.pteAt(a).isDeviceExclusiveEntry());
  deviceExclusiveRelease(*f.mm, r.folio);
}

TEST_CASE("a CPU access revokes device exclusivity with an EXCLUSIVE round and keeps the data") {
  HmmFixture f;
  const Va a = f.mapAnon(kP);
  f.store(a, 41);
  {
    MmapReadLock l(*f.mm);
    auto r = makeDeviceExclusive(*f.mm, a, nullptr);
    REQUIRE(r.ok());
    deviceExclusiveRelease(*f.mm, r.folio);
  }
  f.rec.events.clear();
  f.store(a, f.load(a) + 1);
  REQUIRE(f.rec.count(MmuNotifierEvent::Exclusive) == 1);
  REQUIRE(f.pteAt(a).isPresent());
  REQUIRE(f.load(a) == 42);
}

TEST_CASE("makeDeviceExclusive refuses shared (page-cache) memory with EOPNOTSUPP") {
  HmmFixture f;
  const Va a = f.mapAnon(kP, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS);
  f.store(a, 1);
  MmapReadLock l(*f.mm);
  const auto r = makeDeviceExclusive(*f.mm, a, nullptr);
  REQUIRE(r.err == Errno::OpNotSupp);
  REQUIRE(f.pteAt(a).isPresent());
}

TEST_CASE("makeDeviceExclusive refuses a read-only vma with EFAULT") {
  HmmFixture f;
  const Va a = f.mapAnon(kP, PROT_READ);
  MmapReadLock l(*f.mm);
  REQUIRE(makeDeviceExclusive(*f.mm, a, nullptr).err == Errno::Fault);
}
