// A CPU fault on a migration entry in SystemC: the faulting SC_THREAD sleeps (ScBlocker) until
// another thread ends the migration and wakes the mm's migration wait queue. Nothing is
// asserted inside the threads: they record, the test case checks after sc_start().

#include <catch2/catch.hpp>

#include <memory>
#include <systemc>

#include "models/cpu_mmu/memory.h"
#include "models/cpu_mmu/mm.h"
#include "models/cpu_mmu/mmu_notifier.h"
#include "models/cpu_mmu/page_table.h"
#include "models/cpu_mmu/phys_mem.h"
#include "models/cpu_mmu/sc_blocker.h"

using namespace hmmsim;
using sc_core::SC_NS;
using sc_core::sc_time;

namespace {

PhysMemParams machine() {
  PhysMemParams p;
  p.ramSize = 64ull << 20;
  return p;
}

// t=0: the migrator replaces the pte of a populated page by a migration entry (the page is being
// copied). t=10 ns: the CPU thread reads the page and must sleep. t=100 ns: the migrator
// installs the new page and wakes the queue; the CPU thread resumes and reads the data from the
// new page.
struct MigrationWait : sc_core::sc_module {
  PhysMem pm{machine()};
  std::unique_ptr<Mm> mm = std::make_unique<Mm>(pm, "mm");
  Va addr;
  Pfn oldPfn, newPfn;
  std::uint64_t value = 0;
  Errno readErr = Errno::Inval;
  sc_time readDoneAt;
  bool entryWasMigrationAtRead = false;

  SC_HAS_PROCESS(MigrationWait);
  explicit MigrationWait(sc_core::sc_module_name n) : sc_core::sc_module(n) {
    mm->notifierSubscriptions().setBlocker(scBlocker());
    addr = mm->mmap(Va(0), kPageSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS).addr;
    const std::uint64_t v = 0xABCDEF;
    (void)copyToUser(*mm, addr, &v, sizeof v);
    SC_THREAD(migrator);
    SC_THREAD(cpu);
  }
  ~MigrationWait() override { mm->notifierSubscriptions().setBlocker(singleThreadBlocker()); }

  void migrator() {
    Pte* slot = mm->pageTable().ptePtr(addr, false);
    oldPfn = slot->pfn();
    newPfn = *pm.allocFrame(0);
    pm.frame(oldPfn).mapcount = 0;
    *slot = Pte::mkMigration(oldPfn, true);
    wait(100, SC_NS);
    pm.copyFrame(newPfn, oldPfn);
    pm.frame(newPfn).set(kFrameAnon);
    pm.frame(newPfn).mapcount = 1;
    *slot = Pte::mkPresent(newPfn, true).mkNoExec();
    migrationEntryWake(*mm);
    pm.putPage(oldPfn);
  }

  void cpu() {
    wait(10, SC_NS);
    entryWasMigrationAtRead = mm->pageTable().lookup(addr).pte.isMigrationEntry();
    readErr = copyFromUser(*mm, &value, addr, sizeof value);
    readDoneAt = sc_core::sc_time_stamp();
  }
};

// A driver holds a device-exclusive folio locked from 0 to 50 ns (make_device_exclusive returns
// it locked; the driver unlocks after programming its page table). The CPU touches the page at
// 10 ns: folio_lock_or_retry sleeps until the unlock, then the entry is restored.
struct ExclusiveLocked : sc_core::sc_module {
  PhysMem pm{machine()};
  std::unique_ptr<Mm> mm = std::make_unique<Mm>(pm, "mm");
  Va addr;
  Pfn pfn;
  std::uint64_t value = 0;
  Errno readErr = Errno::Inval;
  sc_time readDoneAt;

  SC_HAS_PROCESS(ExclusiveLocked);
  explicit ExclusiveLocked(sc_core::sc_module_name n) : sc_core::sc_module(n) {
    mm->notifierSubscriptions().setBlocker(scBlocker());
    addr = mm->mmap(Va(0), kPageSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS).addr;
    const std::uint64_t v = 0x5151;
    (void)copyToUser(*mm, addr, &v, sizeof v);
    SC_THREAD(driver);
    SC_THREAD(cpu);
  }
  ~ExclusiveLocked() override { mm->notifierSubscriptions().setBlocker(singleThreadBlocker()); }

  void driver() {
    Pte* slot = mm->pageTable().ptePtr(addr, false);
    pfn = slot->pfn();
    pm.frame(pfn).set(kFrameLocked);
    *slot = Pte::mkDeviceExclusive(pfn, true);
    wait(50, SC_NS);
    pm.frame(pfn).clear(kFrameLocked);
    migrationEntryWake(*mm);
  }

  void cpu() {
    wait(10, SC_NS);
    readErr = copyFromUser(*mm, &value, addr, sizeof value);
    readDoneAt = sc_core::sc_time_stamp();
  }
};

}  // namespace

TEST_CASE("a CPU access to a device-exclusive folio locked by its driver waits for the unlock") {
  ExclusiveLocked top("top");
  sc_core::sc_start();
  CHECK(top.readErr == Errno::Ok);
  CHECK(top.value == 0x5151);
  CHECK(top.readDoneAt == sc_time(50, SC_NS));
  CHECK(top.mm->pageTable().lookup(top.addr).pte.isPresent());
  CHECK(top.mm->stats().counterValue("device_exclusive_restore") == 1);
}

TEST_CASE("an SC_THREAD faulting on a migration entry sleeps until the migration ends") {
  MigrationWait top("top");
  sc_core::sc_start();
  CHECK(top.entryWasMigrationAtRead);
  CHECK(top.readErr == Errno::Ok);
  CHECK(top.value == 0xABCDEF);
  CHECK(top.readDoneAt == sc_time(100, SC_NS));
  CHECK(top.mm->pageTable().lookup(top.addr).pte.pfn() == top.newPfn);
  CHECK(top.mm->stats().counterValue("migration_entry_wait") == 1);
}
