// The fault path and the page-table range operations of mm/memory.c. See memory.h for the
// contracts; comments here explain the kernel behaviour each step reproduces.
//
// Reference and map-count conventions (shared with huge_memory.cpp, gup.cpp and whoever creates
// entries: hmm/ migration, device-exclusive):
//  - a present PTE of a normal page holds one folio reference and one mapcount on its subpage;
//  - a present PMD of a THP (or hugetlb) folio holds one folio reference and one entire mapcount;
//  - a device-private entry holds a reference and a mapcount on its device page, like a present
//    pte (the kernel's remove_migration_pte / migrate_vma_insert_page do folio_add_anon_rmap and
//    get the folio);
//  - a device-exclusive entry also keeps the page's reference and mapcount (the folio stays
//    mapped, as in kernels >= 6.15 where the entry is a marked present mapping);
//  - a migration entry holds neither (the migration owns the folio), but still counts in rss;
//  - special entries (zero page, huge zero page, pfnmap/mixedmap pfns) hold nothing.

#include "models/cpu_mmu/memory.h"

#include <algorithm>
#include <cstring>

#include "models/cpu_mmu/dev_pagemap.h"
#include "models/cpu_mmu/fault_internal.h"
#include "models/cpu_mmu/gup.h"
#include "models/cpu_mmu/huge_memory.h"
#include "models/cpu_mmu/hugetlb.h"
#include "models/cpu_mmu/mm_internal.h"
#include "models/cpu_mmu/mmu_notifier.h"
#include "models/cpu_mmu/vm_operations.h"
#include "sim/assert.h"

namespace hmmsim {

using namespace fault_detail;

namespace fault_detail {

void initAnonFolio(Mm& mm, Vma& vma, Va address, Pfn head) {
  AnonVma& av = mm.anonVmaPrepare(vma);
  Frame& f = mm.physMem().frame(head);
  f.mapping = &av;
  f.index = vma.linearPageIndex(address);
  f.set(kFrameAnon);
  f.set(kFrameSwapBacked);
  f.set(kFrameAnonExclusive);
  f.set(kFrameUptodate);
}

}  // namespace fault_detail

namespace {

constexpr VmFlags kVmAccessFlags = VM_READ | VM_WRITE | VM_EXEC;

/// Drop what a device-private or device-exclusive entry held.
void dropDeviceEntry(Mm& mm, Pte pte) {
  PhysMem& pm = mm.physMem();
  const Pfn pfn = pte.swpPfn();
  Frame& f = pm.frame(pfn);
  HMMSIM_ASSERT(f.mapcount > 0, "zap of device entry " << pfn << " with mapcount 0");
  --f.mapcount;
  mm.addMmCounter(mmCounterOf(headFrame(pm, pfn)), -1);
  pm.putPage(pfn);
}

/// One blockable notifier round around `body`, through the mm (so its per-event stats count it).
template <class Body>
void notifierRound(Mm& mm, MmuNotifierEvent event, Va start, Va end, const void* owner, Body&& body) {
  MmuNotifierRange range;
  mmuNotifierRangeInitOwner(range, event, 0, &mm, start, end, owner);
  mm.invalidateRangeStart(range);
  body();
  mm.invalidateRangeEnd(range);
}

// ---------------------------------------------------------------------------------------------
// do_anonymous_page
// ---------------------------------------------------------------------------------------------

VmFaultResult doAnonymousPage(VmFault& vmf, Pte* slot) {
  Vma& vma = *vmf.vma;
  Mm& mm = mmOf(vma);
  PhysMem& pm = mm.physMem();
  // A read fault maps the shared zero page read-only and special (no reference, no mapcount);
  // the first write then COWs it (do_wp_page -> wp_page_copy).
  if (!vmf.isWrite() && !(vmf.flags & kFaultFlagUnshare)) {
    *slot = mkPte(pm.zeroPfn(), vma, false).mkSpecial().mkYoung();
    ++mm.vmEvents().zeroPageMap;
    return VmFaultResult::None;
  }
  const auto pfn = pm.allocFrame(0);
  if (!pfn) return VmFaultResult::Oom;
  initAnonFolio(mm, vma, vmf.address, *pfn);
  pm.frame(*pfn).mapcount = 1;  // the allocation's reference becomes the mapping's
  const bool writable = vmf.isWrite() && (vma.vmFlags & VM_WRITE);
  Pte p = mkPte(*pfn, vma, writable).mkYoung();
  if (vmf.isWrite()) p = p.mkDirty();
  *slot = p;
  mm.addMmCounter(MmCounter::AnonPages, 1);
  ++mm.vmEvents().anonFaultAlloc;
  return VmFaultResult::None;
}

// ---------------------------------------------------------------------------------------------
// do_wp_page / wp_page_copy
// ---------------------------------------------------------------------------------------------

/// wp_page_copy: replace the read-only entry at `slot` by a private copy. Old page: the zero
/// page (-> zeroed page), a shared anonymous page, a page-cache page of a private file mapping,
/// or a raw pfn of a private pfnmap. Raises MMU_NOTIFY_CLEAR on the page, as the kernel does
/// around ptep_clear_flush_notify + set_pte.
VmFaultResult wpPageCopy(VmFault& vmf, Pte* slot, Pte oldPte) {
  Vma& vma = *vmf.vma;
  Mm& mm = mmOf(vma);
  PhysMem& pm = mm.physMem();
  const Pfn oldPfn = oldPte.pfn();
  const bool oldIsZero = pm.isZeroPfn(oldPfn) || pm.isHugeZeroPfn(oldPfn);
  const bool oldNormal = isNormalPage(pm, oldPte) && !oldIsZero;

  const auto newPfn = pm.allocFrame(0);
  if (!newPfn) return VmFaultResult::Oom;
  // The old bytes: RAM or device memory with a frame is copied; the zero page needs nothing. A
  // raw pfn without a frame (a BAR in a private VM_PFNMAP) cannot be read through PhysMem, so
  // the copy starts zeroed there (the kernel copies through the user mapping: MMIO reads that
  // hmmsim's pure core does not route).
  if (!oldIsZero && pm.pfnValid(oldPfn)) pm.copyFrame(*newPfn, oldPfn);
  initAnonFolio(mm, vma, vmf.address, *newPfn);
  pm.frame(*newPfn).mapcount = 1;

  const bool unshare = (vmf.flags & kFaultFlagUnshare) != 0;
  // maybe_mkwrite: a FOLL_FORCE write to a read-only private vma gets a COWed, still read-only
  // pte; unshare keeps the mapping read-only.
  const bool writable = !unshare && vmf.isWrite() && (vma.vmFlags & VM_WRITE);
  Pte p = mkPte(*newPfn, vma, writable).mkYoung();
  if (!unshare) p = p.mkDirty();

  notifierRound(mm, MmuNotifierEvent::Clear, vmf.address, vmf.address + kPageSize, nullptr, [&] {
    *slot = p;
    mm.addMmCounter(MmCounter::AnonPages, 1);
    if (oldNormal) {
      Frame& f = pm.frame(oldPfn);
      HMMSIM_ASSERT(f.mapcount > 0, "COW of pfn " << oldPfn << " with mapcount 0");
      --f.mapcount;
      mm.addMmCounter(mmCounterOf(headFrame(pm, oldPfn)), -1);
    }
  });
  // The old page's reference is dropped after the invalidation ended (folio_put after
  // mmu_notifier_invalidate_range_end in wp_page_copy).
  if (oldNormal) pm.putPage(oldPfn);
  ++mm.vmEvents().cowFault;
  return VmFaultResult::None;
}

/// wp_can_reuse_anon_folio: an anonymous page this mm owns exclusively may simply be made
/// writable. PageAnonExclusive says so directly; otherwise a small folio mapped once with no
/// other reference (refcount == 1) is exclusive too (the kernel's refcount test; a DMA pin
/// raises the refcount and so prevents reuse of a page that is not marked exclusive).
bool canReuseAnon(PhysMem& pm, Pfn pfn) {
  Frame& f = pm.frame(pfn);
  if (f.test(kFrameAnonExclusive)) return true;
  Frame& h = headFrame(pm, pfn);
  if (&h != &f || h.order() != 0) return false;  // large folios: only through the flag
  return h.refcount() == 1 && h.mapcount == 1;
}

VmFaultResult doWpPage(VmFault& vmf, Pte* slot, Pte pte) {
  Vma& vma = *vmf.vma;
  Mm& mm = mmOf(vma);
  PhysMem& pm = mm.physMem();
  const bool unshare = (vmf.flags & kFaultFlagUnshare) != 0;
  const Pfn pfn = pte.pfn();
  const bool normal = isNormalPage(pm, pte) && !pm.isZeroPfn(pfn) && !pm.isHugeZeroPfn(pfn);

  if (vma.vmFlags & (VM_SHARED | VM_MAYSHARE)) {
    // Shared mappings never COW: wp_pfn_shared / wp_page_shared make the entry writable (no
    // page_mkwrite in hmmsim's shmem-like files). Unshare has nothing to do there.
    if (unshare) return VmFaultResult::None;
    *slot = pte.mkWrite().mkDirty().mkYoung();
    return VmFaultResult::None;
  }
  if (normal && headFrame(pm, pfn).isAnon()) {
    if (canReuseAnon(pm, pfn)) {
      // wp_page_reuse: keep the page, mark it exclusive, make the pte writable (not for
      // unshare: the page is already this mm's own, nothing else to do).
      pm.frame(pfn).set(kFrameAnonExclusive);
      if (!unshare) {
        const bool writable = vma.vmFlags & VM_WRITE;
        Pte p = pte.mkDirty().mkYoung();
        if (writable) p = p.mkWrite();
        *slot = p;
        ++mm.vmEvents().cowReuse;
      }
      return VmFaultResult::None;
    }
  } else if (unshare && normal) {
    // Unshare only concerns anonymous pages; a page-cache page in a private mapping is left
    // alone for a short-term pin (gup_must_unshare decided to ask only for FOLL_LONGTERM).
  }
  return wpPageCopy(vmf, slot, pte);
}

// ---------------------------------------------------------------------------------------------
// File and special faults: __do_fault, finish_fault, do_read_fault, do_cow_fault, do_shared_fault
// ---------------------------------------------------------------------------------------------

VmFaultResult callFault(VmFault& vmf) {
  Vma& vma = *vmf.vma;
  if (!vma.vmOps || !vma.vmOps->hasFault()) return VmFaultResult::Sigbus;
  VmFaultResult r = vma.vmOps->fault(vmf);
  if (isFaultError(r) || hasAny(r, VmFaultResult::NoPage | VmFaultResult::Retry | VmFaultResult::DoneCow))
    return r;
  // ->fault must provide a page when it did not install the entry itself.
  if (!vmf.page) return r | VmFaultResult::Sigbus;
  return r;
}

/// finish_fault for a page-cache page with the reference ->fault gave us.
void finishFault(VmFault& vmf, Pte* slot, Pfn page, bool writable) {
  Vma& vma = *vmf.vma;
  Mm& mm = mmOf(vma);
  PhysMem& pm = mm.physMem();
  ++pm.frame(page).mapcount;
  Pte p = mkPte(page, vma, writable).mkYoung();
  if (vmf.isWrite()) p = p.mkDirty();
  *slot = p;
  mm.addMmCounter(mmCounterOf(headFrame(pm, page)), 1);
}

/// do_fault_around: let ->map_pages map what the page cache already holds in the
/// fault_around_bytes window around vmf.address, clipped to the vma and to the PTE table.
VmFaultResult doFaultAround(VmFault& vmf) {
  Vma& vma = *vmf.vma;
  const std::uint64_t bytes = std::min<std::uint64_t>(mmOf(vma).params().faultAroundBytes,
                                                      std::uint64_t(PageTable::kEntries) << kPageShift);
  std::uint64_t nrPages = 1;  // rounddown_pow_of_two(bytes) >> PAGE_SHIFT, at least 1
  while ((nrPages << 1) <= (bytes >> kPageShift)) nrPages <<= 1;
  if (nrPages <= 1) return VmFaultResult::None;  // should_fault_around: a single page is no window
  const std::uint64_t pteOff = PageTable::index(vmf.address, PtLevel::Pte);
  const std::uint64_t vmaOff = vmf.pgoff - vma.vmPgoff;
  const std::uint64_t vmaPages = (vma.vmEnd - vma.vmStart) >> kPageShift;
  const std::uint64_t fromPte = std::max(pteOff & ~(nrPages - 1), pteOff - std::min(pteOff, vmaOff));
  const std::uint64_t toPte =
      std::min({fromPte + nrPages, std::uint64_t(PageTable::kEntries), pteOff + vmaPages - vmaOff}) - 1;
  return vma.vmOps->mapPages(vmf, vmf.pgoff + fromPte - pteOff, vmf.pgoff + toPte - pteOff);
}

VmFaultResult doFault(VmFault& vmf, Pte* slot) {
  Vma& vma = *vmf.vma;
  Mm& mm = mmOf(vma);
  PhysMem& pm = mm.physMem();
  const bool shared = (vma.vmFlags & VM_SHARED) != 0;
  if (!vmf.isWrite() || shared) {
    // do_read_fault (fault-around first, ->fault as the fallback) / do_shared_fault.
    if (!vmf.isWrite() && vma.vmOps && vma.vmOps->hasMapPages()) {
      const VmFaultResult around = doFaultAround(vmf);
      if (around != VmFaultResult::None) return around;
    }
    VmFaultResult r = callFault(vmf);
    if (isFaultError(r) || hasAny(r, VmFaultResult::NoPage | VmFaultResult::Retry)) return r;
    // ->fault may have raced with another fault that filled the entry (not in the pure core,
    // but a driver's fault may insert pfns itself and still return a page).
    if (!slot->isNone()) {
      pm.putPage(*vmf.page);
      return r;
    }
    const bool writable = shared ? protWritable(vma) : false;
    finishFault(vmf, slot, *vmf.page, writable);
    return r & VmFaultResult::Major;
  }
  // do_cow_fault: private write to a file page: allocate the copy first, read the page through
  // ->fault, copy, drop the page-cache reference, map the copy as an anonymous page.
  const auto cow = pm.allocFrame(0);
  if (!cow) return VmFaultResult::Oom;
  vmf.cowPage = *cow;
  VmFaultResult r = callFault(vmf);
  if (isFaultError(r) || hasAny(r, VmFaultResult::NoPage | VmFaultResult::Retry | VmFaultResult::DoneCow)) {
    pm.putPage(*cow);
    vmf.cowPage.reset();
    return r;
  }
  pm.copyFrame(*cow, *vmf.page);
  pm.putPage(*vmf.page);
  initAnonFolio(mm, vma, vmf.address, *cow);
  pm.frame(*cow).mapcount = 1;
  const bool writable = (vma.vmFlags & VM_WRITE) != 0;
  *slot = mkPte(*cow, vma, writable).mkDirty().mkYoung();
  mm.addMmCounter(MmCounter::AnonPages, 1);
  ++mm.vmEvents().cowFault;
  return r & VmFaultResult::Major;
}

// ---------------------------------------------------------------------------------------------
// do_swap_page: the non-present entries hmmsim has
// ---------------------------------------------------------------------------------------------

/// remove_device_exclusive_entry: the CPU touched a page a device holds exclusively. An
/// MMU_NOTIFY_EXCLUSIVE round over the page (owner NULL, so the device that made the entry sees
/// it and drops its atomic mapping) around restoring the original pte.
VmFaultResult removeDeviceExclusiveEntry(VmFault& vmf, Pte* slot, Pte entry) {
  Vma& vma = *vmf.vma;
  Mm& mm = mmOf(vma);
  PhysMem& pm = mm.physMem();
  const Pfn pfn = entry.swpPfn();
  Frame& h = headFrame(pm, pfn);
  // folio_try_get: a freed folio means the entry is already gone; retry the access.
  if (h.refcount() == 0) return VmFaultResult::None;
  // folio_lock_or_retry: the folio lock is held by someone converting or migrating it. The
  // kernel drops the mmap lock, waits for the unlock and returns VM_FAULT_RETRY.
  if (h.isLocked()) {
    if (!(vmf.flags & kFaultFlagRetryNowait)) folioWaitLocked(mm, pfn);
    return VmFaultResult::Retry;
  }
  pm.getPage(pfn);
  h.set(kFrameLocked);
  notifierRound(mm, MmuNotifierEvent::Exclusive, vmf.address, vmf.address + kPageSize, nullptr, [&] {
    // restore_exclusive_pte: same page, old-young state, writable when the entry
    // was (maybe_mkwrite: only in a VM_WRITE vma), soft-dirty carried over.
    if (*slot != entry) return;  // changed under us (pte_same failed)
    const bool writable = entry.isWritableDeviceExclusiveEntry() && (vma.vmFlags & VM_WRITE);
    Pte p = mkPte(pfn, vma, writable);
    if (writable) p = p.mkDirty();
    if (entry.isSoftDirty()) p = p.mkSoftDirty();
    *slot = p;
  });
  h.clear(kFrameLocked);
  pm.putPage(pfn);
  ++mm.vmEvents().deviceExclusiveRestore;
  return VmFaultResult::None;
}

VmFaultResult doSwapPage(VmFault& vmf, Pte* slot, Pte entry) {
  Vma& vma = *vmf.vma;
  Mm& mm = mmOf(vma);
  PhysMem& pm = mm.physMem();
  vmf.origPte = entry;
  vmf.flags |= kFaultFlagOrigPteValid;

  if (entry.isMigrationEntry()) {
    ++mm.vmEvents().migrationEntryWait;
    if (vmf.flags & kFaultFlagRetryNowait) return VmFaultResult::Retry;
    migrationEntryWait(mm, vmf.address);
    return VmFaultResult::None;  // the access retries and finds the new entry
  }
  if (entry.isDeviceExclusiveEntry()) return removeDeviceExclusiveEntry(vmf, slot, entry);
  if (entry.isDevicePrivateEntry()) {
    const Pfn pfn = entry.swpPfn();
    Frame& f = pm.frame(pfn);
    DevPagemap* pgmap = f.pgmap;
    HMMSIM_ASSERT(pgmap && pgmap->type == MemoryType::DevicePrivate,
                  "device-private entry for pfn " << pfn << " that is not device-private memory");
    Frame& h = headFrame(pm, pfn);
    // trylock_page failed: a migration of the page is running. The kernel returns and lets
    // the access fault again until the lock holder is done; hmmsim sleeps until the folio is
    // unlocked instead (same outcome, and no zero-time livelock in a SystemC thread), then
    // lets the access retry.
    if (h.isLocked()) {
      if (vmf.flags & kFaultFlagRetryNowait) return VmFaultResult::Retry;
      folioWaitLocked(mm, pfn);
      return VmFaultResult::None;
    }
    h.set(kFrameLocked);
    pm.getPage(pfn);
    vmf.page = pfn;
    ++mm.vmEvents().devicePrivateFault;
    VmFaultResult r = pgmap->ops ? pgmap->ops->migrateToRam(vmf) : VmFaultResult::Sigbus;
    headFrame(pm, pfn).clear(kFrameLocked);
    pm.putPage(pfn);
    return r;
  }
  if (entry.isHwPoisonEntry()) return VmFaultResult::Hwpoison;
  // Swap slots (hmmsim has no swap) and pte markers: print_bad_pte + SIGBUS in the kernel.
  return VmFaultResult::Sigbus;
}

// ---------------------------------------------------------------------------------------------
// handle_pte_fault / __handle_mm_fault
// ---------------------------------------------------------------------------------------------

VmFaultResult handlePteFault(VmFault& vmf, Pte* pmdSlot = nullptr) {
  Vma& vma = *vmf.vma;
  Mm& mm = mmOf(vma);
  PageTable& pt = mm.pageTable();
  Errno err = Errno::Ok;
  // The PMD the caller just looked at points to the pte table: index it directly instead of
  // walking again (pte_offset_map on vmf->pmd).
  Pte* slot = pmdSlot && pmdSlot->isTable()
                  ? &PageTable::tableOf(*pmdSlot)->e[PageTable::index(vmf.address, PtLevel::Pte)]
                  : pt.ptePtr(vmf.address, true, &err);
  if (!slot) {
    if (err == Errno::Exist) return VmFaultResult::Retry;  // a huge PMD appeared: redo from the top
    return VmFaultResult::Oom;
  }
  const Pte pte = *slot;
  if (pte.isNone()) {
    if (vma.isAnonymous()) return doAnonymousPage(vmf, slot);
    return doFault(vmf, slot);
  }
  if (!pte.isPresent()) return doSwapPage(vmf, slot, pte);
  vmf.origPte = pte;
  vmf.flags |= kFaultFlagOrigPteValid;
  if (pte.isProtNone()) {
    // A PROT_NONE entry in an accessible vma would be a NUMA hinting fault (do_numa_page);
    // hmmsim has no NUMA balancing, so this only happens if an entry was left PROT_NONE after
    // an mprotect: restore the vma's protection.
    *slot = pte.clearProtNone();
    return handlePteFault(vmf);
  }
  if ((vmf.flags & (kFaultFlagWrite | kFaultFlagUnshare)) != 0) {
    if (!pte.isWrite()) return doWpPage(vmf, slot, pte);
    if (vmf.flags & kFaultFlagUnshare) {
      // Writable means exclusive already.
      return VmFaultResult::None;
    }
    *slot = pte.mkDirty().mkYoung();
    return VmFaultResult::None;
  }
  *slot = pte.mkYoung();  // spurious fault
  return VmFaultResult::None;
}

VmFaultResult handleMmFaultOnce(Vma& vma, Va address, unsigned faultFlags) {
  Mm& mm = mmOf(vma);
  VmFault vmf;
  vmf.vma = &vma;
  vmf.flags = faultFlags;
  vmf.realAddress = address;
  vmf.address = address.alignDown(kPageSize);
  vmf.pgoff = vma.linearPageIndex(vmf.address);

  if (vma.isHugetlb()) return hugetlbFault(vmf);  // hugetlb.cpp

  PageTable& pt = mm.pageTable();
  Errno err = Errno::Ok;
  Pte* pmdSlot = pt.pmdPtr(vmf.address, true, &err);
  if (!pmdSlot) {
    // A PUD leaf: hmmsim never installs one in a non-hugetlb vma (no PUD THPs, no 1 GiB pfnmaps).
    HMMSIM_ASSERT(err == Errno::NoMem, "fault at " << address << " under a PUD leaf");
    return VmFaultResult::Oom;
  }
  const Pte pmd = *pmdSlot;
  if (pmd.isNone()) {
    if (vma.isAnonymous() && thpVmaAllowable(vma, vmf.address, mm.params().thp)) {
      VmFaultResult r = doHugePmdAnonymousPage(vmf, pmdSlot);
      if (!hasAny(r, VmFaultResult::Fallback)) return r;
    }
  } else if (pmd.isSwap()) {
    // Non-present PMD leaves: a PMD migration entry waits like a pte one; a device-private
    // PMD entry is split into 512 device-private ptes and handled page by page (the kernel's
    // newest do_huge_pmd_device_private hands the whole folio to migrate_to_ram instead; the
    // driver's migrate_to_ram may still migrate the whole folio from the one page).
    if (pmd.isMigrationEntry()) {
      ++mm.vmEvents().migrationEntryWait;
      if (faultFlags & kFaultFlagRetryNowait) return VmFaultResult::Retry;
      migrationEntryWait(mm, vmf.address);
      return VmFaultResult::None;
    }
    if (splitHugePmd(vma, vmf.address) != Errno::Ok) return VmFaultResult::Oom;
  } else if (pmd.isHuge()) {
    vmf.origPte = pmd;
    if (pmd.isProtNone()) {
      *pmdSlot = pmd.clearProtNone();
      return VmFaultResult::None;
    }
    if ((faultFlags & (kFaultFlagWrite | kFaultFlagUnshare)) != 0 && !pmd.isWrite()) {
      VmFaultResult r = doHugePmdWpPage(vmf, pmdSlot);
      if (!hasAny(r, VmFaultResult::Fallback)) return r;
    } else {
      // huge_pmd_set_accessed.
      Pte p = pmd.mkYoung();
      if (faultFlags & kFaultFlagWrite) p = p.mkDirty();
      *pmdSlot = p;
      return VmFaultResult::None;
    }
  }
  return handlePteFault(vmf, pmdSlot);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Public fault entry points
// ---------------------------------------------------------------------------------------------

namespace fault_detail {

VmFaultResult handleMmFaultUnchecked(Vma& vma, Va address, unsigned faultFlags) {
  HMMSIM_ASSERT(vma.contains(address),
                "fault at " << address << " outside its vma [" << vma.vmStart << ", " << vma.vmEnd << ")");
  Mm& mm = mmOf(vma);
  ++mm.vmEvents().pgfault;
  VmFaultResult r = handleMmFaultOnce(vma, address, faultFlags);
  // A Retry from a page-table race inside one call (huge PMD installed between the PMD and the
  // PTE step) is resolved here; Retry for a migration wait with RETRY_NOWAIT goes to the caller.
  for (int i = 0; i < 4 && r == VmFaultResult::Retry && !(faultFlags & kFaultFlagRetryNowait); ++i)
    r = handleMmFaultOnce(vma, address, faultFlags | kFaultFlagTried);
  return r;
}

}  // namespace fault_detail

VmFaultResult handleMmFault(Vma& vma, Va address, unsigned faultFlags) {
  // access_error() (arch/x86/mm/fault.c) + arch_vma_access_permitted: writes need VM_WRITE,
  // other accesses any of VM_READ|VM_WRITE|VM_EXEC (PROT_NONE allows nothing).
  if (faultFlags & kFaultFlagWrite) {
    if (!(vma.vmFlags & VM_WRITE)) return VmFaultResult::Sigsegv;
  } else if (!(vma.vmFlags & kVmAccessFlags)) {
    return VmFaultResult::Sigsegv;
  }
  return handleMmFaultUnchecked(vma, address, faultFlags);
}

namespace {

// Bound on retries of one access: each retry follows a state change (a migration ended, a
// device page came back); more than this many means two contexts livelock, a simulator bug.
constexpr int kMaxFaultRetries = 64;

VmFaultResult userFaultLocked(Mm& mm, Va address, bool write) {
  // lock_mm_and_find_vma: the vma containing the address, or a VM_GROWSDOWN vma above it that
  // can grow down to it (expand_stack); else bad_area (SIGSEGV).
  Vma* vma = mm.vmaLookup(address);
  if (!vma) {
    vma = mm.findVma(address);
    if (!vma || !(vma->vmFlags & VM_GROWSDOWN) ||
        MmInternals::expandDownwards(mm, *vma, address) != Errno::Ok)
      return VmFaultResult::Sigsegv;
  }
  const unsigned flags =
      kFaultFlagUser | kFaultFlagAllowRetry | kFaultFlagKillable | (write ? kFaultFlagWrite : 0u);
  VmFaultResult r = VmFaultResult::Retry;
  for (int i = 0; i < kMaxFaultRetries && hasAny(r, VmFaultResult::Retry); ++i)
    r = handleMmFault(*vma, address, i == 0 ? flags : flags | kFaultFlagTried);
  HMMSIM_ASSERT(!hasAny(r, VmFaultResult::Retry), "fault at " << address << " still asks for a retry after "
                                                              << kMaxFaultRetries << " attempts (livelock)");
  return r;
}

/// The entry at `va` allows the access without a fault: hardware-present, writable for a write.
bool accessOk(const PtWalk& w, bool write) {
  if (w.level == PtLevel::None || !w.pte.isHwPresent()) return false;
  return !write || w.pte.isWrite();
}

}  // namespace

VmFaultResult handleUserFault(Mm& mm, Va address, bool write) {
  MmapMaybeReadLock lock(mm, /*userEntry=*/true);
  return userFaultLocked(mm, address, write);
}

Errno cpuAccess(Mm& mm, Va address, void* buf, std::size_t len, bool write, std::size_t* done) {
  MmapMaybeReadLock lock(mm);
  PhysMem& pm = mm.physMem();
  PageTable& pt = mm.pageTable();
  auto* bytes = static_cast<std::uint8_t*>(buf);
  std::size_t moved = 0;
  Errno result = Errno::Ok;
  while (moved < len) {
    const Va va = address + moved;
    const std::size_t chunk = std::min<std::size_t>(len - moved, kPageSize - (va.value() & (kPageSize - 1)));
    PtWalk w = pt.lookup(va);
    int tries = 0;
    while (!accessOk(w, write)) {
      const VmFaultResult r = userFaultLocked(mm, va, write);
      if (isFaultError(r)) {
        result = vmFaultToErrno(r);
        break;
      }
      w = pt.lookup(va);
      HMMSIM_ASSERT(++tries < kMaxFaultRetries,
                    "access at " << va << " keeps faulting although each fault succeeded");
    }
    if (result != Errno::Ok) break;
    const std::uint64_t leafSize = ptLevelSize(w.level);
    const Pa pa = paOf(w.pte.pfn()) + (va.value() & (leafSize - 1));
    if (!pm.pfnValid(pfnOf(pa))) {
      // MMIO (a BAR mapped with remap_pfn_range): not PhysMem's bytes. The SystemC CPU model
      // routes such accesses to the bus; the pure access path cannot.
      result = Errno::Fault;
      break;
    }
    if (write) {
      pm.write(pa, bytes + moved, chunk);
      *w.slot = w.pte.mkHwDirty().mkYoung();
    } else {
      pm.read(pa, bytes + moved, chunk);
      *w.slot = w.pte.mkYoung();
    }
    moved += chunk;
  }
  if (done) *done = moved;
  return result;
}

Errno copyFromUser(Mm& mm, void* dst, Va src, std::size_t len) {
  return cpuAccess(mm, src, dst, len, false);
}

Errno copyToUser(Mm& mm, Va dst, const void* src, std::size_t len) {
  return cpuAccess(mm, dst, const_cast<void*>(src), len, true);
}

// ---------------------------------------------------------------------------------------------
// migration_entry_wait
// ---------------------------------------------------------------------------------------------

namespace {

/// The entry that maps `address` now (pte or PMD leaf), or none.
Pte currentEntry(Mm& mm, Va address) {
  return mm.pageTable().lookup(address).pte;
}

}  // namespace

void migrationEntryWait(Mm& mm, Va address) {
  const Pte entry = currentEntry(mm, address);
  if (!entry.isMigrationEntry()) return;
  const Pfn pfn = entry.swpPfn();
  // Sleep until the entry is no longer this migration entry (remove_migration_ptes replaced it
  // and folio_unlock woke us). Checking the entry rather than the folio lock is equivalent for
  // the waiter and does not depend on the migration code's lock discipline.
  waitEvent(
      mm.blocker(), mm.migrationWaitQueue(),
      [&] {
        const Pte now = currentEntry(mm, address);
        return !(now.isMigrationEntry() && now.swpPfn() == pfn);
      },
      "migration_entry_wait");
}

void migrationEntryWake(Mm& mm) {
  mm.migrationWaitQueue().wakeUpAll();
}

void folioWaitLocked(Mm& mm, Pfn pfn) {
  PhysMem& pm = mm.physMem();
  const Pfn head = pm.compoundHead(pfn);
  const std::uint64_t gen = pm.generationOf(head);
  waitEvent(
      mm.blocker(), mm.migrationWaitQueue(),
      [&] {
        // Unlocked, or the folio went away meanwhile (freed or reallocated).
        return pm.generationOf(head) != gen || !pm.frame(head).isLocked();
      },
      "folio_wait_locked");
}

// ---------------------------------------------------------------------------------------------
// zap_page_range
// ---------------------------------------------------------------------------------------------

namespace {

/// zap_huge_pmd: drop a whole PMD leaf (THP, huge zero page, hugetlb, PMD migration or
/// device-private entry).
void zapHugePmd(Mm& mm, Pte* slot) {
  PhysMem& pm = mm.physMem();
  const Pte pmd = *slot;
  *slot = Pte();
  if (pmd.isPresent()) {
    const Pfn pfn = pmd.pfn();
    if (pmd.isSpecial() || pm.isHugeZeroPfn(pfn) || !pm.pfnValid(pfn)) return;
    Frame& h = headFrame(pm, pfn);
    HMMSIM_ASSERT(h.entireMapcount() > 0, "zap of PMD-mapped " << pfn << " with entire mapcount 0");
    h.setEntireMapcount(h.entireMapcount() - 1);
    if (pmd.isDirty() && !h.isAnon()) h.set(kFrameDirty);
    mm.addMmCounter(mmCounterOf(h), -std::int64_t(kPagesPerPmd));
    pm.putPage(pfn);
    return;
  }
  if (pmd.isMigrationEntry()) {
    mm.addMmCounter(mmCounterOf(headFrame(pm, pmd.swpPfn())), -std::int64_t(kPagesPerPmd));
    return;
  }
  if (pmd.isDevicePrivateEntry()) {
    Frame& h = headFrame(pm, pmd.swpPfn());
    h.setEntireMapcount(h.entireMapcount() - 1);
    mm.addMmCounter(mmCounterOf(h), -std::int64_t(kPagesPerPmd));
    pm.putPage(pmd.swpPfn());
  }
}

/// zap_pte_range's rss batching (add_mm_rss_vec): the per-counter deltas of one zapPageRange,
/// applied to the mm by flush() before anything else can look at the counters (a THP split
/// during the walk, the end of the walk). Every zap delta is negative, so a counter that would
/// have gone negative page by page still goes negative (and asserts) at the flush.
struct ZapRss {
  std::int64_t delta[kNrMmCounters] = {};
  void add(MmCounter c, std::int64_t pages) { delta[static_cast<unsigned>(c)] += pages; }
  void flush(Mm& mm) {
    for (unsigned c = 0; c < kNrMmCounters; ++c) {
      if (delta[c] != 0) mm.addMmCounter(static_cast<MmCounter>(c), delta[c]);
      delta[c] = 0;
    }
  }
};

/// zap_pte_range's per-entry work; rss changes go to `rss`. Keeps the entry when `details`
/// says so.
void zapPte(Mm& mm, Pte* slot, const ZapDetails* details, ZapRss& rss) {
  PhysMem& pm = mm.physMem();
  const Pte pte = *slot;
  if (pte.isPresent()) {
    const Pfn pfn = pte.pfn();
    if (!isNormalPage(pm, pte) || pm.isZeroPfn(pfn)) {
      if (!details || !details->onlyFilePages) *slot = Pte();
      return;
    }
    // Drop what the pte held (zap_present_ptes): mapcount, rss, reference; a dirty pte marks a
    // page-cache folio dirty (folio_mark_dirty on zap). One metadata lookup for the page and,
    // for a tail, one for its head.
    Frame& f = pm.frame(pfn);
    const Pfn headPfn = pm.compoundHead(pfn);
    Frame& h = headPfn == pfn ? f : pm.frame(headPfn);
    // should_zap_folio: truncation (onlyFilePages) keeps private anonymous COW copies unless
    // even_cows.
    if (details && details->onlyFilePages && h.isAnon() && !details->evenCows) return;
    *slot = Pte();
    HMMSIM_ASSERT(f.mapcount > 0, "zap of pfn " << pfn << " with mapcount 0");
    --f.mapcount;
    if (pte.isDirty() && !h.isAnon()) h.set(kFrameDirty);
    rss.add(mmCounterOf(h), -1);
    // A ZONE_DEVICE folio's last put calls its driver's hook: counters must be current then.
    if (h.isZoneDevice()) rss.flush(mm);
    pm.folioPutRefs(h, headPfn, 1);
    return;
  }
  if (details && details->onlyFilePages) {
    // Truncation only concerns page-cache pages; non-present entries here are anonymous.
    if (!details->evenCows) return;
  }
  *slot = Pte();
  if (pte.isDevicePrivateEntry() || pte.isDeviceExclusiveEntry()) {
    rss.flush(mm);  // dropDeviceEntry updates the counter itself (rare path)
    dropDeviceEntry(mm, pte);
  } else if (pte.isMigrationEntry()) {
    rss.add(mmCounterOf(headFrame(pm, pte.swpPfn())), -1);
  }
  // hwpoison entries and markers just go away.
}

}  // namespace

void zapPageRange(Vma& vma, Va start, Va end, const ZapDetails* details) {
  HMMSIM_ASSERT(start.isAligned(kPageSize) && end.isAligned(kPageSize) && start <= end &&
                    start >= vma.vmStart && end <= vma.vmEnd,
                "zapPageRange [" << start << ", " << end << ") outside vma [" << vma.vmStart << ", "
                                 << vma.vmEnd << ")");
  if (start == end) return;
  if (vma.isHugetlb()) return unmapHugepageRange(vma, start, end);  // unmap_single_vma
  Mm& mm = mmOf(vma);
  PageTable& pt = mm.pageTable();
  ZapRss rss;
  pt.walkRange(start, end, [&](const PtRangeEntry& e) {
    if (e.level == PtLevel::None) return WalkAction::Continue;
    if (e.level == PtLevel::Pmd) {
      const Va leaf = e.leafStart();
      const bool whole = e.start == leaf && e.end == leaf + kPmdSize;
      if (!whole) {
        // zap_pmd_range: a partly covered THP is split (with its own CLEAR round) and the
        // covered part zapped pte by pte.
        rss.flush(mm);
        const Errno err = splitHugePmd(vma, leaf);
        HMMSIM_ASSERT(err == Errno::Ok, "split_huge_pmd failed during zap: " << err);
        return WalkAction::Retry;
      }
      if (details && details->onlyFilePages && e.slot->isPresent() && isNormalPage(mm.physMem(), *e.slot) &&
          !mm.physMem().isHugeZeroPfn(e.slot->pfn()) && headFrame(mm.physMem(), e.slot->pfn()).isAnon() &&
          !details->evenCows)
        return WalkAction::Continue;
      rss.flush(mm);  // zapHugePmd updates the counters itself (PMD paths free device folios)
      zapHugePmd(mm, e.slot);
      return WalkAction::Continue;
    }
    HMMSIM_ASSERT(e.level == PtLevel::Pte, "zap met a PUD leaf at " << e.start);
    zapPte(mm, e.slot, details, rss);
    return WalkAction::Continue;
  });
  rss.flush(mm);
}

// ---------------------------------------------------------------------------------------------
// copy_page_range (fork)
// ---------------------------------------------------------------------------------------------

namespace {

/// copy_present_page: the eager copy for a possibly DMA-pinned anonymous page in a COW mapping.
/// Returns false when no frame is free.
bool copyPresentPage(Vma& dst, Va addr, Pte* dstSlot, Pte srcPte) {
  Mm& dmm = mmOf(dst);
  PhysMem& pm = dmm.physMem();
  const auto pfn = pm.allocFrame(0);
  if (!pfn) return false;
  pm.copyFrame(*pfn, srcPte.pfn());
  initAnonFolio(dmm, dst, addr, *pfn);
  pm.frame(*pfn).mapcount = 1;
  const bool writable = (dst.vmFlags & VM_WRITE) != 0;
  *dstSlot = mkPte(*pfn, dst, writable).mkDirty();
  dmm.addMmCounter(MmCounter::AnonPages, 1);
  return true;
}

/// What one copy step asks the walk over the parent's page table to do next.
enum class CopyStep {
  Copied,  ///< the entry is copied (or there was nothing to copy): go on with the next one
  Retry,   ///< the parent's entry changed shape (PMD split, exclusive pte restored): look again
  NoMem,   ///< no frame or page-table page: fork fails with NoMem
};

/// What every copy step needs: the two vmas, their mms and the child's page table.
struct CopyContext {
  Vma& dst;
  Vma& src;
  Mm& smm;
  Mm& dmm;
  PhysMem& pm;
  PageTable& dpt;
  bool cow;  ///< is_cow_mapping(src->vm_flags): private and may be written
};

/// The child's value of a present entry: in a COW mapping a writable entry is write-protected
/// in the parent (`srcSlot`) and in the returned copy (copy_present_pte, copy_huge_pmd).
Pte wrprotectForCow(const CopyContext& c, Pte* srcSlot, Pte pte) {
  if (c.cow && pte.isWrite()) {
    *srcSlot = pte.wrprotect();
    return pte.wrprotect();
  }
  return pte;
}

/// copy_huge_pmd: a PMD leaf (THP, huge zero page, or a non-present PMD). A maybe-pinned
/// anonymous THP in a COW mapping, and non-present PMDs other than migration entries
/// (device-private), are split and copied as ptes instead (Retry).
CopyStep copyHugePmd(const CopyContext& c, const PtRangeEntry& e) {
  PhysMem& pm = c.pm;
  const Pte pte = *e.slot;
  const Va addr = e.leafStart();
  HMMSIM_ASSERT(e.start == addr && e.end == addr + kPmdSize,
                "PMD leaf at " << addr << " straddles the vma boundary");
  if (pte.isSwap() && !pte.isMigrationEntry()) {
    // copy_huge_pmd handles only migration entries among non-present PMDs here; split the
    // rest (device-private PMDs) and copy them as ptes.
    return splitHugePmdLocked(c.src, addr) == Errno::Ok ? CopyStep::Retry : CopyStep::NoMem;
  }
  const bool anonThp = pte.isPresent() && isNormalPage(pm, pte) && !pm.isHugeZeroPfn(pte.pfn()) &&
                       headFrame(pm, pte.pfn()).isAnon();
  if (anonThp && c.cow && folioMaybeDmaPinned(c.smm, pte.pfn())) {
    // A maybe-pinned anonymous THP cannot be shared; split it and let the pte path copy the
    // pinned subpages eagerly.
    return splitHugePmdLocked(c.src, addr) == Errno::Ok ? CopyStep::Retry : CopyStep::NoMem;
  }
  Errno err = Errno::Ok;
  Pte* dslot = c.dpt.pmdPtr(addr, true, &err);
  if (!dslot) return CopyStep::NoMem;
  Pte copy = pte;
  if (pte.isPresent()) {
    if (isNormalPage(pm, pte) && !pm.isHugeZeroPfn(pte.pfn())) {
      Frame& h = headFrame(pm, pte.pfn());
      pm.getPage(pte.pfn());
      h.setEntireMapcount(h.entireMapcount() + 1);
      h.clear(kFrameAnonExclusive);
      c.dmm.addMmCounter(mmCounterOf(h), std::int64_t(kPagesPerPmd));
    }
    copy = wrprotectForCow(c, e.slot, pte).mkOld();
  } else {  // PMD migration entry
    if (c.cow && pte.isWritableMigrationEntry()) *e.slot = copy = Pte::mkMigration(pte.swpPfn(), false);
    c.dmm.addMmCounter(mmCounterOf(headFrame(pm, pte.swpPfn())), std::int64_t(kPagesPerPmd));
  }
  *dslot = copy;
  return CopyStep::Copied;
}

/// copy_nonpresent_pte: device-private, migration and hwpoison entries. A device-exclusive
/// entry is first made present again in the parent (try_restore_exclusive_pte, inside fork's own
/// notifier round) and then copied as a present pte (Retry), as the kernel's -EBUSY path does.
CopyStep copyNonpresentPte(const CopyContext& c, const PtRangeEntry& e) {
  PhysMem& pm = c.pm;
  const Pte pte = *e.slot;
  if (pte.isDeviceExclusiveEntry()) {
    Pte p = mkPte(pte.swpPfn(), c.src, pte.isWritableDeviceExclusiveEntry() && (c.src.vmFlags & VM_WRITE));
    if (pte.isWritableDeviceExclusiveEntry()) p = p.mkDirty();
    *e.slot = p;
    return CopyStep::Retry;
  }
  Errno err = Errno::Ok;
  Pte* dslot = c.dpt.ptePtr(e.start, true, &err);
  if (!dslot) return CopyStep::NoMem;
  if (pte.isDevicePrivateEntry()) {
    const Pfn pfn = pte.swpPfn();
    pm.getPage(pfn);
    ++pm.frame(pfn).mapcount;
    pm.frame(pfn).clear(kFrameAnonExclusive);
    c.dmm.addMmCounter(mmCounterOf(headFrame(pm, pfn)), 1);
    Pte copy = pte;
    if (c.cow && pte.isWritableDevicePrivateEntry()) {
      copy = Pte::mkDevicePrivate(pfn, false);
      *e.slot = copy;
    }
    *dslot = copy;
  } else if (pte.isMigrationEntry()) {
    Pte copy = pte;
    if (c.cow && (pte.isWritableMigrationEntry() || pte.isReadableExclusiveMigrationEntry())) {
      copy = Pte::mkMigration(pte.swpPfn(), false);
      *e.slot = copy;
    }
    c.dmm.addMmCounter(mmCounterOf(headFrame(pm, pte.swpPfn())), 1);
    *dslot = copy;
  } else if (pte.isHwPoisonEntry()) {
    *dslot = pte;
  }
  return CopyStep::Copied;
}

/// copy_present_pte: share the page (mapcount and refcount +1, write-protected for COW), copy
/// special entries as they are, or copy a maybe-DMA-pinned anonymous page eagerly
/// (copy_present_page).
CopyStep copyPresentPte(const CopyContext& c, const PtRangeEntry& e) {
  PhysMem& pm = c.pm;
  const Pte pte = *e.slot;
  const Va addr = e.start;
  Errno err = Errno::Ok;
  Pte* dslot = c.dpt.ptePtr(addr, true, &err);
  if (!dslot) return CopyStep::NoMem;
  if (!isNormalPage(pm, pte) || pm.isZeroPfn(pte.pfn())) {
    // Special entries (zero page, raw pfns) are copied as they are; COW of the zero page is
    // read-only already.
    *dslot = wrprotectForCow(c, e.slot, pte).mkOld();
    return CopyStep::Copied;
  }
  const Pfn pfn = pte.pfn();
  Frame& h = headFrame(pm, pfn);
  if (c.cow && h.isAnon() && folioMaybeDmaPinned(c.smm, pfn)) {
    // page_needs_cow_for_dma: the child gets its own copy now, the parent keeps its page
    // (and its writable mapping) so the pinned DMA target stays the parent's.
    return copyPresentPage(c.dst, addr, dslot, pte) ? CopyStep::Copied : CopyStep::NoMem;
  }
  pm.getPage(pfn);
  ++pm.frame(pfn).mapcount;
  if (h.isAnon()) pm.frame(pfn).clear(kFrameAnonExclusive);
  c.dmm.addMmCounter(mmCounterOf(h), 1);
  Pte copy = wrprotectForCow(c, e.slot, pte);
  if (c.src.vmFlags & VM_SHARED) copy = copy.mkClean();
  *dslot = copy.mkOld();
  return CopyStep::Copied;
}

}  // namespace

Errno copyPageRange(Vma& dst, Vma& src) {
  HMMSIM_ASSERT(dst.vmStart == src.vmStart && dst.vmEnd == src.vmEnd,
                "copyPageRange between vmas of different ranges");
  if (src.isHugetlb()) return copyHugetlbPageRange(dst, src);
  Mm& smm = mmOf(src);
  Mm& dmm = mmOf(dst);
  const CopyContext c{dst, src, smm, dmm, smm.physMem(), dmm.pageTable(), src.isCowMapping()};

  // copy_pmd_range / copy_pte_range: one step per populated leaf of the parent.
  Errno result = Errno::Ok;
  smm.pageTable().walkRange(src.vmStart, src.vmEnd, [&](const PtRangeEntry& e) {
    if (e.level == PtLevel::None) return WalkAction::Continue;
    CopyStep step;
    if (e.level == PtLevel::Pmd) {
      step = copyHugePmd(c, e);
    } else {
      HMMSIM_ASSERT(e.level == PtLevel::Pte, "fork met a PUD leaf at " << e.start);
      step = e.slot->isSwap() ? copyNonpresentPte(c, e) : copyPresentPte(c, e);
    }
    switch (step) {
      case CopyStep::Copied:
        return WalkAction::Continue;
      case CopyStep::Retry:
        return WalkAction::Retry;
      case CopyStep::NoMem:
        break;
    }
    result = Errno::NoMem;
    return WalkAction::Stop;
  });
  return result;
}

// ---------------------------------------------------------------------------------------------
// change_protection
// ---------------------------------------------------------------------------------------------

namespace fault_detail {

/// The new value of a present entry under `newFlags` (pte_modify + the write upgrade rules).
Pte modifyPresent(PhysMem& pm, Pte pte, VmFlags newFlags, bool huge) {
  Pte p = pte;
  if (!(newFlags & kVmAccessFlags)) return p.isProtNone() ? p : p.mkProtNone();
  if (p.isProtNone()) p = p.clearProtNone();
  p = (newFlags & VM_EXEC) ? p.mkExec() : p.mkNoExec();
  if (!(newFlags & VM_WRITE)) return p.wrprotect();
  if (p.isWrite()) return p;
  // can_change_pte_writable: while soft-dirty tracking is on (VM_SOFTDIRTY clear) a clean pte
  // stays read-only, so that the next write faults and marks it soft-dirty.
  if (!(newFlags & VM_SOFTDIRTY) && !p.isSoftDirty()) return p;
  // Shared mappings may be writable at once; private ones only for an
  // exclusively owned anonymous page (everything else must take the COW fault). Special
  // entries (zero page, raw pfns) never become writable in a private mapping.
  if (newFlags & VM_SHARED) return p.mkWrite();
  if (!isNormalPage(pm, p) || pm.isZeroPfn(p.pfn()) || pm.isHugeZeroPfn(p.pfn())) return p;
  const Frame& h = headFrame(pm, p.pfn());
  if (!h.isAnon()) return p;
  const bool exclusive = huge ? h.test(kFrameAnonExclusive) : pm.frame(p.pfn()).test(kFrameAnonExclusive);
  return exclusive ? p.mkWrite() : p;
}

/// The new value of a non-present entry: writable device-private / migration / device-exclusive
/// entries become read-only when write permission goes away.
Pte modifySwap(Pte pte, VmFlags newFlags) {
  if (newFlags & VM_WRITE) return pte;
  if (pte.isWritableDevicePrivateEntry()) return Pte::mkDevicePrivate(pte.swpPfn(), false);
  if (pte.isWritableMigrationEntry()) return Pte::mkMigration(pte.swpPfn(), false);
  if (pte.isWritableDeviceExclusiveEntry()) return Pte::mkDeviceExclusive(pte.swpPfn(), false);
  return pte;
}

}  // namespace fault_detail

std::uint64_t changeProtection(Vma& vma, Va start, Va end, VmFlags newFlags) {
  HMMSIM_ASSERT(start.isAligned(kPageSize) && end.isAligned(kPageSize) && start <= end &&
                    start >= vma.vmStart && end <= vma.vmEnd,
                "changeProtection [" << start << ", " << end << ") outside the vma");
  if (start == end) return 0;
  Mm& mm = mmOf(vma);
  PhysMem& pm = mm.physMem();
  // The vma's own VM_SHARED decides shared-ness (mprotect never changes it).
  newFlags = (newFlags & ~VmFlags(VM_SHARED)) | (vma.vmFlags & VM_SHARED);
  if (vma.isHugetlb()) return hugetlbChangeProtection(vma, start, end, newFlags);
  std::uint64_t pages = 0;
  mm.pageTable().walkRange(start, end, [&](const PtRangeEntry& e) {
    if (e.level == PtLevel::None) return WalkAction::Continue;
    const Pte pte = *e.slot;
    if (e.level == PtLevel::Pmd) {
      const Va leaf = e.leafStart();
      if (!(e.start == leaf && e.end == leaf + kPmdSize)) {
        const Errno err = splitHugePmd(vma, leaf);
        HMMSIM_ASSERT(err == Errno::Ok, "split_huge_pmd failed during mprotect: " << err);
        return WalkAction::Retry;
      }
      const Pte np = pte.isPresent() ? modifyPresent(pm, pte, newFlags, true) : modifySwap(pte, newFlags);
      if (np != pte) {
        *e.slot = np;
        pages += kPagesPerPmd;
      }
      return WalkAction::Continue;
    }
    const Pte np = pte.isPresent() ? modifyPresent(pm, pte, newFlags, false) : modifySwap(pte, newFlags);
    if (np != pte) {
      *e.slot = np;
      ++pages;
    }
    return WalkAction::Continue;
  });
  return pages;
}

// ---------------------------------------------------------------------------------------------
// Insert helpers for drivers
// ---------------------------------------------------------------------------------------------

namespace {

/// insert_pfn: a special pte for a raw pfn with the vma's protection.
VmFaultResult insertPfn(Vma& vma, Va address, Pfn pfn) {
  if (!vma.contains(address)) return VmFaultResult::Sigbus;
  Mm& mm = mmOf(vma);
  Errno err = Errno::Ok;
  Pte* slot = mm.pageTable().ptePtr(address.alignDown(kPageSize), true, &err);
  if (!slot) return err == Errno::NoMem ? VmFaultResult::Oom : VmFaultResult::Sigbus;
  if (!slot->isNone()) return VmFaultResult::NoPage;  // already there: leave it
  *slot = mkPte(pfn, vma, protWritable(vma)).mkSpecial();
  return VmFaultResult::NoPage;
}

}  // namespace

VmFaultResult vmfInsertPfn(Vma& vma, Va address, Pfn pfn) {
  if (!(vma.vmFlags & (VM_PFNMAP | VM_MIXEDMAP))) return VmFaultResult::Sigbus;
  return insertPfn(vma, address, pfn);
}

VmFaultResult vmfInsertMixed(Vma& vma, Va address, Pfn pfn) {
  // __vm_insert_mixed on x86 (CONFIG_ARCH_HAS_PTE_SPECIAL): every pfn, even one with a struct
  // page, is inserted as a special pte (insert_pfn); vm_normal_page then returns NULL for it.
  if (!(vma.vmFlags & VM_MIXEDMAP)) return VmFaultResult::Sigbus;
  return insertPfn(vma, address, pfn);
}

Errno vmInsertPage(Vma& vma, Va address, Pfn pfn) {
  if (!vma.contains(address) || !address.isAligned(kPageSize)) return Errno::Inval;
  if (vma.vmFlags & VM_PFNMAP) return Errno::Inval;
  Mm& mm = mmOf(vma);
  PhysMem& pm = mm.physMem();
  // validate_page_before_insert: a refcounted page (not the zero page, not free).
  if (!pm.pfnValid(pfn) || pm.isZeroPfn(pfn) || headFrame(pm, pfn).refcount() == 0) return Errno::Inval;
  if (!(vma.vmFlags & VM_MIXEDMAP)) vma.vmFlags |= VM_MIXEDMAP;
  Errno err = Errno::Ok;
  Pte* slot = mm.pageTable().ptePtr(address, true, &err);
  if (!slot) return err == Errno::NoMem ? Errno::NoMem : Errno::Inval;
  if (!slot->isNone()) return Errno::Busy;
  pm.getPage(pfn);
  ++pm.frame(pfn).mapcount;
  *slot = mkPte(pfn, vma, protWritable(vma));
  mm.addMmCounter(mmCounterOf(headFrame(pm, pfn)), 1);
  return Errno::Ok;
}

Errno remapPfnRange(Vma& vma, Va address, Pfn pfn, std::uint64_t size) {
  if (!address.isAligned(kPageSize) || size == 0 || (size & (kPageSize - 1)) != 0 || address < vma.vmStart ||
      address + size > vma.vmEnd || address + size < address)
    return Errno::Inval;
  Mm& mm = mmOf(vma);
  vma.vmFlags |= VM_IO | VM_PFNMAP | VM_DONTEXPAND | VM_DONTDUMP;
  for (std::uint64_t off = 0; off < size; off += kPageSize) {
    Errno err = Errno::Ok;
    Pte* slot = mm.pageTable().ptePtr(address + off, true, &err);
    if (!slot) return err == Errno::NoMem ? Errno::NoMem : Errno::Inval;
    *slot = mkPte(pfn + (off >> kPageShift), vma, protWritable(vma)).mkSpecial();
  }
  return Errno::Ok;
}

}  // namespace hmmsim
