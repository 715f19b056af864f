// Non-present entries the fault path handles: device-private (migrate_to_ram), device-exclusive
// (restore with an EXCLUSIVE round), migration entries (wait for the migration to end).
#include <catch2/catch.hpp>

#include <vector>

#include "models/cpu_mmu/dev_pagemap.h"
#include "models/cpu_mmu/memory.h"
#include "sim/wait_queue.h"
#include "tests/unit/cpu_mmu/fault_test_device.h"
#include "tests/unit/cpu_mmu/fault_test_support.h"

using namespace hmmsim;
using namespace hmmsim::faulttest;

TEST_CASE("CPU access to a device-private entry calls migrateToRam of that page's pgmap") {
  Fixture f;
  int ownerA = 0, ownerB = 0;
  TestDevice devA(f.pm, &ownerA), devB(f.pm, &ownerB);
  const Va a = f.mapAnon(2 * kPageSize);
  const Pfn dpfn = devB.install(*f.mm, a + kPageSize, 0xD00D, true);
  CHECK(f.load(a + kPageSize) == 0xD00D);
  REQUIRE(devB.calls.size() == 1);
  CHECK(devB.calls[0] == dpfn);
  CHECK(devA.calls.empty());
  CHECK(devB.sawLocked);
  CHECK(devB.sawOrigPte);
  CHECK(f.walk(a + kPageSize).pte.isPresent());
  CHECK(f.walk(a + kPageSize).pte.isWrite());
  CHECK(f.counter("device_private_fault") == 1);
  // The device page lost its last reference when the fault path dropped its own: folio_free.
  REQUIRE(devB.freed.size() == 1);
  CHECK(devB.freed[0] == dpfn);
  CHECK_FALSE(f.pm.frame(dpfn).isLocked());
  f.mm->exitMmap();  // before the device goes away
}

TEST_CASE("migrateToRam returning SIGBUS makes the access fail with EFAULT") {
  struct FailingDevice : TestDevice {
    using TestDevice::TestDevice;
    VmFaultResult migrateToRam(VmFault& vmf) override {
      calls.push_back(*vmf.page);
      return VmFaultResult::Sigbus;
    }
  };
  Fixture f;
  int owner = 0;
  FailingDevice dev(f.pm, &owner);
  const Va a = f.mapAnon(kPageSize);
  dev.install(*f.mm, a, 1, true);
  std::uint64_t v = 0;
  CHECK(copyFromUser(*f.mm, &v, a, sizeof v) == Errno::Fault);
  CHECK(dev.calls.size() == 1);
  CHECK(f.walk(a).pte.isDevicePrivateEntry());
  f.mm->exitMmap();  // before the device goes away
}

TEST_CASE("munmap of a device-private entry drops the device page through folioFree") {
  Fixture f;
  int owner = 0;
  TestDevice dev(f.pm, &owner);
  const Va a = f.mapAnon(kPageSize);
  const Pfn dpfn = dev.install(*f.mm, a, 5, true);
  REQUIRE(f.mm->munmap(a, kPageSize) == Errno::Ok);
  CHECK(dev.calls.empty());
  REQUIRE(dev.freed.size() == 1);
  CHECK(dev.freed[0] == dpfn);
  CHECK(f.mm->mmCounter(MmCounter::AnonPages) == 0);
  f.mm->exitMmap();  // before the device goes away
}

TEST_CASE("fork turns a writable device-private entry into read-only entries in both mms") {
  Fixture f;
  int owner = 0;
  TestDevice dev(f.pm, &owner);
  const Va a = f.mapAnon(kPageSize);
  const Pfn dpfn = dev.install(*f.mm, a, 5, true);
  ForkResult c = f.mm->fork("child");
  REQUIRE(c.ok());
  const Pte parent = f.walk(a).pte;
  const Pte child = c.child->pageTable().lookup(a).pte;
  CHECK(parent.isDevicePrivateEntry());
  CHECK_FALSE(parent.isWritableDevicePrivateEntry());
  CHECK(child == parent);
  CHECK(f.pm.frame(dpfn).mapcount == 2);
  CHECK(f.pm.frame(dpfn).refcount() == 2);
  c.child->exitMmap();
  CHECK(f.pm.frame(dpfn).mapcount == 1);
  f.mm->exitMmap();  // before the device goes away
}

TEST_CASE("CPU access to a device-exclusive entry restores the pte inside an EXCLUSIVE round") {
  Fixture f;
  const Va a = f.mapAnon(2 * kPageSize);
  f.store(a + kPageSize, 0x77);
  Pte* slot = f.mm->pageTable().ptePtr(a + kPageSize, false);
  REQUIRE(slot);
  const Pfn pfn = slot->pfn();
  *slot = Pte::mkDeviceExclusive(pfn, true);  // what make_device_exclusive leaves
  f.rec.rounds.clear();
  f.store(a + kPageSize, 0x78);
  REQUIRE(f.rec.rounds.size() == 1);
  CHECK(f.rec.rounds[0] == Round{MmuNotifierEvent::Exclusive, a + kPageSize, a + 2 * kPageSize, nullptr});
  const PtWalk w = f.walk(a + kPageSize);
  CHECK(w.pte.isPresent());
  CHECK(w.pte.pfn() == pfn);
  CHECK(w.pte.isWrite());
  CHECK(f.load(a + kPageSize) == 0x78);
  CHECK(f.counter("device_exclusive_restore") == 1);
  CHECK(f.pm.frame(pfn).mapcount == 1);
}

TEST_CASE("fork restores a device-exclusive entry in the parent and shares the page") {
  Fixture f;
  const Va a = f.mapAnon(kPageSize);
  f.store(a, 0x31);
  Pte* slot = f.mm->pageTable().ptePtr(a, false);
  const Pfn pfn = slot->pfn();
  *slot = Pte::mkDeviceExclusive(pfn, true);
  ForkResult c = f.mm->fork("child");
  REQUIRE(c.ok());
  CHECK(f.walk(a).pte.isPresent());
  CHECK(f.walk(a).pte.pfn() == pfn);
  CHECK(c.child->pageTable().lookup(a).pte.pfn() == pfn);
  CHECK(Fixture::loadIn(*c.child, a) == 0x31);
  c.child->exitMmap();
}

namespace {

/// The "other context" of a migration, run when the faulting context has to sleep: it finishes
/// the migration (remove_migration_ptes: the entry becomes a present pte of the new page) and
/// wakes the waiters, as migrate_vma_finalize + folio_unlock would.
class MigrationCompletingBlocker final : public Blocker {
 public:
  MigrationCompletingBlocker(Mm& mm, Va va, Pfn newPfn) : mm_(mm), va_(va), newPfn_(newPfn) {}
  void sleepOn(WaitQueue& wq, const char* what) override {
    sleeps.push_back(what);
    HMMSIM_ASSERT(&wq == &mm_.migrationWaitQueue(), "sleeping on an unexpected queue");
    Pte* slot = mm_.pageTable().ptePtr(va_, false);
    *slot = Pte::mkPresent(newPfn_, true).mkNoExec();
    mm_.physMem().frame(newPfn_).mapcount = 1;
    migrationEntryWake(mm_);
  }
  std::vector<const char*> sleeps;

 private:
  Mm& mm_;
  Va va_;
  Pfn newPfn_;
};

}  // namespace

TEST_CASE("a fault on a migration entry waits until the migration ends, then sees the new page") {
  Fixture f;
  const Va a = f.mapAnon(kPageSize);
  f.store(a, 0x1234);
  Pte* slot = f.mm->pageTable().ptePtr(a, false);
  const Pfn oldPfn = slot->pfn();
  // The migration: copy into a new page, replace the pte by a migration entry (which holds no
  // mapcount and no reference: the migration holds them).
  const auto newPfn = f.pm.allocFrame(0);
  REQUIRE(newPfn);
  f.pm.copyFrame(*newPfn, oldPfn);
  f.pm.frame(*newPfn).set(kFrameAnon);
  f.pm.frame(oldPfn).mapcount = 0;
  *slot = Pte::mkMigration(oldPfn, true);
  MigrationCompletingBlocker blocker(*f.mm, a, *newPfn);
  f.mm->notifierSubscriptions().setBlocker(blocker);
  CHECK(f.load(a) == 0x1234);
  REQUIRE(blocker.sleeps.size() == 1);
  CHECK(std::string(blocker.sleeps[0]) == "migration_entry_wait");
  CHECK(f.walk(a).pte.pfn() == *newPfn);
  CHECK(f.counter("migration_entry_wait") == 1);
  f.mm->notifierSubscriptions().setBlocker(singleThreadBlocker());
  f.pm.putPage(oldPfn);  // the migration drops the old page
}

TEST_CASE("a fault on a migration entry with RETRY_NOWAIT returns Retry without sleeping") {
  Fixture f;
  const Va a = f.mapAnon(kPageSize);
  f.store(a, 1);
  Pte* slot = f.mm->pageTable().ptePtr(a, false);
  const Pfn pfn = slot->pfn();
  f.pm.frame(pfn).mapcount = 0;
  *slot = Pte::mkMigration(pfn, true);
  Vma* v = f.mm->vmaLookup(a);
  CHECK(handleMmFault(*v, a, kFaultFlagRetryNowait) == VmFaultResult::Retry);
  CHECK(f.walk(a).pte.isMigrationEntry());
  // Finish the "migration" back to the same page so teardown is consistent.
  *slot = Pte::mkPresent(pfn, true);
  f.pm.frame(pfn).mapcount = 1;
}

TEST_CASE("a fault on a hardware-poisoned entry returns HWPOISON and cpuAccess EFAULT") {
  Fixture f;
  const Va a = f.mapAnon(kPageSize);
  Pte* slot = f.mm->pageTable().ptePtr(a, true);
  *slot = Pte::mkHwPoison(Pfn(0x1234));
  Vma* v = f.mm->vmaLookup(a);
  CHECK(handleMmFault(*v, a, 0) == VmFaultResult::Hwpoison);
  std::uint64_t x;
  CHECK(copyFromUser(*f.mm, &x, a, sizeof x) == Errno::Fault);
}

TEST_CASE("mprotect to read-only turns a writable device-private entry read-only") {
  Fixture f;
  int owner = 0;
  TestDevice dev(f.pm, &owner);
  const Va a = f.mapAnon(kPageSize);
  dev.install(*f.mm, a, 5, true);
  REQUIRE(f.mm->mprotect(a, kPageSize, PROT_READ) == Errno::Ok);
  const Pte e = f.walk(a).pte;
  CHECK(e.isDevicePrivateEntry());
  CHECK_FALSE(e.isWritableDevicePrivateEntry());
  f.mm->exitMmap();
}

TEST_CASE("fork copies a writable migration entry as read-only in both mms and counts it in rss") {
  Fixture f;
  const Va a = f.mapAnon(kPageSize);
  f.store(a, 1);
  Pte* slot = f.mm->pageTable().ptePtr(a, false);
  const Pfn pfn = slot->pfn();
  f.pm.frame(pfn).mapcount = 0;
  *slot = Pte::mkMigration(pfn, true);
  ForkResult c = f.mm->fork("child");
  REQUIRE(c.ok());
  CHECK(f.walk(a).pte.isMigrationEntry());
  CHECK_FALSE(f.walk(a).pte.isWritableMigrationEntry());
  CHECK(c.child->pageTable().lookup(a).pte == f.walk(a).pte);
  CHECK(c.child->mmCounter(MmCounter::AnonPages) == 1);
  // Zapping a migration entry only drops rss: the migration still holds the page.
  c.child->exitMmap();
  CHECK(c.child->mmCounter(MmCounter::AnonPages) == 0);
  CHECK(f.pm.frame(pfn).refcount() == 1);
  *slot = Pte::mkPresent(pfn, false);
  f.pm.frame(pfn).mapcount = 1;
}
