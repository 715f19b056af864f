// make_device_exclusive (mm/rmap.c). See device_exclusive.h.

#include "hmm/device_exclusive.h"

#include "models/cpu_mmu/frame.h"
#include "models/cpu_mmu/huge_memory.h"
#include "models/cpu_mmu/memory.h"
#include "models/cpu_mmu/mm.h"
#include "models/cpu_mmu/mmu_notifier.h"
#include "models/cpu_mmu/page_table.h"
#include "models/cpu_mmu/phys_mem.h"
#include "models/cpu_mmu/pte.h"
#include "models/cpu_mmu/vm_fault.h"
#include "models/cpu_mmu/vma.h"
#include "sim/assert.h"
#include "sim/wait_queue.h"

namespace hmmsim {

namespace {

/// get_user_page_vma_remote(FOLL_GET | FOLL_WRITE | FOLL_SPLIT_PMD) for one page: fault until the
/// page is mapped by a writable pte, then reference it. Returns the page or an error.
Errno gupWritePage(Mm& mm, Vma*& vmaOut, Va addr, Pfn& page) {
  Vma* vma = mm.vmaLookup(addr);
  if (!vma) return Errno::Fault;
  // check_vma_flags(): VM_IO|VM_PFNMAP refused; FOLL_WRITE needs VM_WRITE.
  if ((vma->vmFlags & (VM_IO | VM_PFNMAP)) || !(vma->vmFlags & VM_WRITE)) return Errno::Fault;
  vmaOut = vma;
  PageTable& pt = mm.pageTable();
  for (int attempt = 0; attempt < 16; ++attempt) {
    const PtWalk w = pt.lookup(addr);
    if (w.level == PtLevel::Pmd && w.pte.isPresent()) {
      // FOLL_SPLIT_PMD.
      const Errno err = splitHugePmd(*vma, addr.alignDown(kPmdSize));
      if (err != Errno::Ok) return err;
      continue;
    }
    if (w.level == PtLevel::Pte && w.pte.isPresent() && !w.pte.isProtNone() && w.pte.isWrite()) {
      page = w.pte.pfn();
      mm.physMem().getPage(page);
      return Errno::Ok;
    }
    const VmFaultResult r = handleMmFault(*vma, addr, kFaultFlagWrite | kFaultFlagRemote);
    if (hasAny(r, VmFaultResult::Oom)) return Errno::NoMem;
    if (isFaultError(r)) return Errno::Fault;
  }
  HMMSIM_ASSERT(false, "make_device_exclusive: page at " << addr << " never became writable");
  return Errno::Fault;
}

}  // namespace

DeviceExclusiveResult makeDeviceExclusive(Mm& mm, Va addr, const void* owner) {
  mmapAssertLocked(mm);  // make_device_exclusive: mmap_assert_locked(mm)
  addr = addr.alignDown(kPageSize);
  PhysMem& pm = mm.physMem();
  for (;;) {
    Vma* vma = nullptr;
    Pfn page;
    const Errno err = gupWritePage(mm, vma, addr, page);
    if (err != Errno::Ok) return DeviceExclusiveResult{err, Pfn(0), Pfn(0)};
    const Pfn head = pm.compoundHead(page);
    Frame& h = pm.frame(head);
    if (!h.isAnon() || h.test(kFrameHugeTlb)) {
      pm.putPage(page);
      return DeviceExclusiveResult{Errno::OpNotSupp, Pfn(0), Pfn(0)};
    }
    // folio_lock_killable: sleep until the holder (a migration in another context) unlocks it.
    // Folio unlocks that matter here end migrations, which wake the mm's migration wait queue
    // (hmm/migrate_device.cpp); then start over, since the page may have moved meanwhile.
    if (h.isLocked()) {
      pm.putPage(page);
      waitEvent(
          mm.blocker(), mm.migrationWaitQueue(), [&] { return !pm.frame(head).isLocked(); },
          "folio_lock_killable(make_device_exclusive)");
      continue;
    }
    h.set(kFrameLocked);
    MmuNotifierRange range;
    mmuNotifierRangeInitOwner(range, MmuNotifierEvent::Exclusive, 0, &mm, addr, addr + kPageSize, owner);
    mm.invalidateRangeStart(range);
    // folio_walk_start: still the same page, mapped by a writable pte?
    const PtWalk w = mm.pageTable().lookup(addr);
    if (w.level != PtLevel::Pte || !w.pte.isPresent() || w.pte.pfn() != page || !w.pte.isWrite()) {
      mm.invalidateRangeEnd(range);
      h.clear(kFrameLocked);
      pm.putPage(page);
      continue;
    }
    const Pte old = *w.slot;
    if (old.isDirty()) h.set(kFrameDirty);  // folio_mark_dirty now that the pte is gone
    Pte entry = Pte::mkDeviceExclusive(page, true);
    if (old.isSoftDirty()) entry = entry.mkSoftDirty();
    *w.slot = entry;
    mm.invalidateRangeEnd(range);
    return DeviceExclusiveResult{Errno::Ok, page, head};
  }
}

void deviceExclusiveRelease(Mm& mm, Pfn folio) {
  PhysMem& pm = mm.physMem();
  pm.frame(folio).clear(kFrameLocked);
  pm.putPage(folio);
}

}  // namespace hmmsim
