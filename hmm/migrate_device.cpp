// migrate_vma_* / migrate_device_* (mm/migrate_device.c) and the copy step. See
// migrate_device.h; comments here name the kernel function each step reproduces.
//
// Reference and map-count conventions are the fault path's (models/cpu_mmu/memory.cpp): a present
// pte or a device-private entry holds one folio reference and one subpage mapcount (a PMD: one
// reference and one entire mapcount); a migration entry holds neither but stays in rss. The
// migration itself holds one reference per selected folio from collect to finalize.

#include "hmm/migrate_device.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "models/cpu_mmu/dev_pagemap.h"
#include "models/cpu_mmu/frame.h"
#include "models/cpu_mmu/huge_memory.h"
#include "models/cpu_mmu/memory.h"
#include "models/cpu_mmu/mm.h"
#include "models/cpu_mmu/mmu_notifier.h"
#include "models/cpu_mmu/page_table.h"
#include "models/cpu_mmu/phys_mem.h"
#include "models/cpu_mmu/pte.h"
#include "models/cpu_mmu/rmap.h"
#include "models/cpu_mmu/vma.h"
#include "sim/assert.h"

namespace hmmsim {

namespace {

constexpr unsigned kPmdOrder = PhysMem::kPmdOrder;

/// compound_head() without PhysMem's lookup for the common order-0 case.
inline Pfn headOf(PhysMem& pm, Pfn pfn) {
  return pm.frame(pfn).isTail() ? pm.compoundHead(pfn) : pfn;
}
/// folio_order() of a head frame.
inline unsigned orderOf(PhysMem& pm, Pfn head) {
  const Frame& h = pm.frame(head);
  return h.isHead() ? h.order() : 0;
}

/// mk_pte(pfn, vma->vm_page_prot) with an explicit write bit (NX unless VM_EXEC; PROT_NONE vmas
/// get an x86 PROT_NONE entry), as the fault path builds them.
Pte mkVmaPte(Pfn pfn, const Vma& vma, bool writable) {
  Pte p = Pte::mkPresent(pfn, writable);
  if (!(vma.vmFlags & VM_EXEC)) p = p.mkNoExec();
  if (!(vma.vmFlags & (VM_READ | VM_WRITE | VM_EXEC))) p = p.mkProtNone();
  return p;
}

/// One blockable notifier round through the mm (so its per-event counters see it).
template <class Body>
void notifierRound(Mm& mm, MmuNotifierEvent event, Va start, Va end, const void* owner, Body&& body) {
  MmuNotifierRange range;
  mmuNotifierRangeInitOwner(range, event, 0, &mm, start, end, owner);
  mm.invalidateRangeStart(range);
  body();
  mm.invalidateRangeEnd(range);
}

/// What a migration needs to find and rewrite mappings.
struct MigrateCtx {
  PhysMem& pm;
  Mm* own = nullptr;  ///< the vma's mm (migrate_vma_*), null for migrate_device_*
  const Vma* vma = nullptr;
  Va start;  ///< address of slot 0 (migrate_vma_*)
  std::optional<Pfn> faultPage;
  const void* owner = nullptr;

  bool isFaultFolio(Pfn head) const { return faultPage && headOf(pm, *faultPage) == head; }
};

/// folio_mapped(): any PTE or PMD mapping left.
bool folioMapped(PhysMem& pm, Pfn head) {
  const Frame& h = pm.frame(head);
  const unsigned order = orderOf(pm, head);
  if (order > 0 && h.entireMapcount() > 0) return true;
  for (std::uint64_t i = 0; i < (1ull << order); ++i)
    if (pm.frame(head + i).mapcount > 0) return true;
  return false;
}

std::int64_t folioMapcount(PhysMem& pm, Pfn head) {
  const unsigned order = orderOf(pm, head);
  std::int64_t n = order > 0 ? std::int64_t(pm.frame(head).entireMapcount()) << order : 0;
  for (std::uint64_t i = 0; i < (1ull << order); ++i) n += pm.frame(head + i).mapcount;
  return n;
}

/// try_to_migrate_one(): replace one mapping of a selected folio by a migration entry, inside an
/// MMU_NOTIFY_CLEAR round of its mm. The migration's own reference keeps the folio alive.
void installMigrationEntry(PhysMem& pm, const RmapMapping& m) {
  const std::uint64_t size = ptLevelSize(m.level);
  notifierRound(*m.mm, MmuNotifierEvent::Clear, m.va, m.va + size, nullptr, [&] {
    const Pte e = *m.slot;
    const Pfn pfn = e.anyPfn();
    Frame& h = pm.frame(headOf(pm, pfn));
    bool write = false;
    if (e.isPresent()) {
      write = e.isWrite();
      if (e.isDirty()) h.set(kFrameDirty);
    } else if (e.isDevicePrivateEntry()) {
      write = e.isWritableDevicePrivateEntry();
    } else {
      return;  // migration or device-exclusive entries are left alone
    }
    const bool exclusive = h.isAnon() && pm.frame(pfn).test(kFrameAnonExclusive);
    Pte mig = Pte::mkMigration(pfn, write, !write && exclusive);
    if (e.isSoftDirty()) mig = mig.mkSoftDirty();
    *m.slot = mig;
    pm.frame(pfn).clear(kFrameAnonExclusive);
    if (m.level == PtLevel::Pte) {
      --pm.frame(pfn).mapcount;
    } else {
      h.setEntireMapcount(h.entireMapcount() - 1);
    }
    pm.putPage(pfn);
  });
}

/// remove_migration_pte() at one leaf: a migration entry for `srcPfn` (the folio's page at that
/// leaf) becomes a mapping of `dstPfn`: a device-private entry for device-private memory, a
/// present pte otherwise, writable iff the migration entry was. Returns true if it replaced one.
bool restoreLeaf(PhysMem& pm, Mm& mm, const Vma& vma, Pte* slot, PtLevel level, Pfn srcPfn, Pfn dstPfn) {
  const Pte e = *slot;
  if (!e.isMigrationEntry() || e.swpPfn() != srcPfn) return false;
  const bool write = e.isWritableMigrationEntry();
  const bool exclusive = write || e.isReadableExclusiveMigrationEntry();
  Frame& dst = pm.frame(dstPfn);
  Frame& dh = pm.frame(headOf(pm, dstPfn));
  Pte n;
  if (isDevicePrivate(dh.pgmap)) {
    n = Pte::mkDevicePrivate(dstPfn, write);
  } else {
    n = mkVmaPte(dstPfn, vma, write).mkYoung();
    if (write) n = n.mkDirty();
  }
  if (e.isSoftDirty()) n = n.mkSoftDirty();
  if (level == PtLevel::Pmd && !isDevicePrivate(dh.pgmap)) n = n.mkHuge();
  if (dh.isAnon() && exclusive) dst.set(kFrameAnonExclusive);
  if (level == PtLevel::Pte) {
    ++dst.mapcount;
  } else {
    dh.setEntireMapcount(dh.entireMapcount() + 1);
  }
  pm.getPage(dstPfn);
  *slot = n;
  (void)mm;
  return true;
}

/// remove_migration_ptes(src, dst): in the own mm at the known address of slot `i`, then in every
/// mapping on the folio's anon_vma chain (rmap_walk). `srcHead`/`dstHead` are folio heads of equal order
/// (or src == dst).
void removeMigrationPtes(MigrateCtx& c, Pfn srcHead, Pfn dstHead, std::optional<Va> knownVa,
                         std::vector<Mm*>& touched) {
  PhysMem& pm = c.pm;
  const unsigned order = orderOf(pm, srcHead);
  if (c.own && knownVa) {
    const PtWalk w = c.own->pageTable().lookup(*knownVa);
    if (w.level == PtLevel::Pmd) {
      restoreLeaf(pm, *c.own, *c.vma, w.slot, w.level, srcHead, dstHead);
    } else if (w.level == PtLevel::Pte) {
      for (std::uint64_t i = 0; i < (1ull << order); ++i) {
        const PtWalk wi = i == 0 ? w : c.own->pageTable().lookup(*knownVa + (i << kPageShift));
        if (wi.level == PtLevel::Pte)
          restoreLeaf(pm, *c.own, *c.vma, wi.slot, wi.level, srcHead + i, dstHead + i);
      }
    }
    if (std::find(touched.begin(), touched.end(), c.own) == touched.end()) touched.push_back(c.own);
  }
  rmapWalkAnon(pm, srcHead, [&](const RmapMapping& mp) {
    const Pfn at = mp.slot->anyPfn();
    if (restoreLeaf(pm, *mp.mm, *mp.vma, mp.slot, mp.level, at, dstHead + (at - srcHead)) &&
        std::find(touched.begin(), touched.end(), mp.mm) == touched.end())
      touched.push_back(mp.mm);
  });
}

/// migrate_vma_check_page(): no references beyond the mappings and the expected ones.
bool checkPage(MigrateCtx& c, Pfn head) {
  PhysMem& pm = c.pm;
  const Frame& h = pm.frame(head);
  std::int64_t extra = 1 + (c.isFaultFolio(head) ? 1 : 0);
  if (h.isZoneDevice()) ++extra;         // "Page from ZONE_DEVICE have one extra reference"
  if (h.test(kFramePageCache)) ++extra;  // the page cache's reference
  return std::int64_t(h.refcount()) - extra <= folioMapcount(pm, head);
}

void unlockFolio(PhysMem& pm, Pfn head) {
  pm.frame(head).clear(kFrameLocked);
}

/// migrate_device_unmap(): unmap the selected folios from every other mapping (try_to_migrate);
/// folios still mapped or pinned lose MIGRATE and are restored, unlocked and released.
/// Returns the number of pages still selected.
unsigned long deviceUnmap(MigrateCtx& c, unsigned long* src, unsigned long npages) {
  PhysMem& pm = c.pm;
  unsigned long selected = 0;
  std::vector<Mm*> touched;
  for (unsigned long i = 0; i < npages; ++i) {
    const auto pfn = migratePfnToPfn(src[i]);
    const unsigned long pages = (src[i] & MIGRATE_PFN_COMPOUND) ? kPagesPerPmd : 1;
    if (!pfn) {
      if (src[i] & MIGRATE_PFN_MIGRATE) selected += pages;
      continue;
    }
    const Pfn head = headOf(pm, *pfn);
    if (folioMapped(pm, head)) {
      // try_to_migrate(): every other mapping becomes a migration entry (the own one already
      // is one, and installMigrationEntry leaves migration entries alone).
      std::vector<RmapMapping> maps;
      rmapWalkAnon(pm, head, [&](const RmapMapping& mp) { maps.push_back(mp); });
      for (const RmapMapping& mp : maps) installMigrationEntry(pm, mp);
    }
    if (folioMapped(pm, head) || !checkPage(c, head)) {
      src[i] &= ~MIGRATE_PFN_MIGRATE;
      // Restore right away (the kernel's second loop): migration entries back to the folio.
      std::optional<Va> known;
      if (c.own) known = c.start + (std::uint64_t(i) << kPageShift);
      removeMigrationPtes(c, head, head, known, touched);
      src[i] = 0;
      if (!c.isFaultFolio(head)) unlockFolio(pm, head);
      pm.putPage(head);
      continue;
    }
    selected += pages;
  }
  for (Mm* m : touched) m->migrationWaitQueue().wakeUpAll();
  return selected;
}

/// split_folio() of an unmapped, locked folio the migration holds one reference on: 2^order
/// order-0 folios, each locked with one reference (the migration's), as migrate_vma_split_folio
/// leaves them. PhysMem::splitFolio(head, 0, 1) ("every subpage keeps one reference") expects
/// the folio's refcount to be 512 * 1 already; the kernel freezes the folio's references and
/// unfreezes every new folio with one, so the 511 references added first are that hand-over,
/// not a pin (undone if the split fails).
Errno splitUnmappedFolio(PhysMem& pm, Pfn head) {
  const unsigned order = orderOf(pm, head);
  const std::uint64_t n = 1ull << order;
  if (pm.frame(head).refcount() != 1) return Errno::Busy;
  pm.folioRefAdd(head, std::int32_t(n - 1));
  const Errno err = pm.splitFolio(head, 0, 1);
  if (err != Errno::Ok) {
    pm.folioPutRefs(head, std::int32_t(n - 1));
    return err;
  }
  for (std::uint64_t i = 1; i < n; ++i) pm.frame(head + i).set(kFrameLocked);
  return Errno::Ok;
}

// ---------------------------------------------------------------------------------------------
// migrate_vma_collect
// ---------------------------------------------------------------------------------------------

class Collector {
 public:
  Collector(MigrateVma& a, MigrateCtx& c) : a_(a), c_(c), pm_(c.pm), mm_(*c.own) {}

  void run() {
    notifierRound(mm_, MmuNotifierEvent::Migrate, a_.start, a_.end, a_.pgmapOwner, [&] {
      Va addr = a_.start;
      while (addr < a_.end) addr = step(addr);
    });
    a_.end = a_.start + (a_.npages << kPageShift);
  }

 private:
  void emit(unsigned long mpfn) {
    a_.dst[a_.npages] = 0;
    a_.src[a_.npages++] = mpfn;
  }
  /// migrate_vma_collect_skip over [addr, end).
  Va skip(Va addr, Va end) {
    for (; addr < end; addr += kPageSize) emit(0);
    return end;
  }
  Va pmdRangeEnd(Va addr) const { return std::min(a_.end, addr.alignDown(kPmdSize) + kPmdSize); }
  bool anon() const { return a_.vma->isAnonymous(); }
  bool select(unsigned long f) const { return (a_.flags & f) != 0; }
  /// A whole aligned PMD at `leaf` inside the range, with SELECT_COMPOUND.
  bool compoundOk(Va addr) const {
    return select(MIGRATE_VMA_SELECT_COMPOUND) && addr.isAligned(kPmdSize) && addr + kPmdSize <= a_.end;
  }

  /// One step of the walk at `addr`; returns the next address to look at.
  Va step(Va addr) {
    PageTable& pt = mm_.pageTable();
    const PtWalk w = pt.lookup(addr);
    if (w.level == PtLevel::None) return hole(addr, w.slotLevel);
    if (w.level == PtLevel::Pud) return skip(addr, std::min(a_.end, addr.alignDown(kPudSize) + kPudSize));
    if (w.level == PtLevel::Pmd) return pmd(addr, w);
    return pte(addr, w);
  }

  /// migrate_vma_collect_hole(): empty slots of an anonymous vma migrate (the driver provides
  /// zeroed pages); others are skipped. A whole empty PMD is one compound entry with
  /// SELECT_COMPOUND.
  Va hole(Va addr, PtLevel slotLevel) {
    const std::uint64_t size = ptLevelSize(slotLevel == PtLevel::None ? PtLevel::Pte : slotLevel);
    const Va end = std::min(a_.end, addr.alignDown(size) + size);
    if (!anon()) return skip(addr, end);
    if (slotLevel >= PtLevel::Pmd && compoundOk(addr)) {
      emit(MIGRATE_PFN_MIGRATE | MIGRATE_PFN_COMPOUND);
      a_.cpages += kPagesPerPmd;
      return skip(addr + kPageSize, addr + kPmdSize);
    }
    // Up to the next PMD boundary, so a later aligned empty PMD can still be compound.
    const Va stop = std::min(end, pmdRangeEnd(addr));
    for (; addr < stop; addr += kPageSize) {
      emit(MIGRATE_PFN_MIGRATE);
      ++a_.cpages;
    }
    return stop;
  }

  /// Lock `head` for the migration (folio_trylock; the fault folio is already locked).
  bool lock(Pfn head) {
    if (c_.isFaultFolio(head)) return true;
    Frame& h = pm_.frame(head);
    if (h.isLocked()) return false;
    h.set(kFrameLocked);
    return true;
  }

  Va pmd(Va addr, const PtWalk& w) {
    const Va leaf = addr.alignDown(kPmdSize);
    const Va end = pmdRangeEnd(addr);
    const Pte e = w.pte;
    if (e.isPresent()) {
      const Pfn head = e.pfn();
      if (pm_.isHugeZeroPfn(head)) {
        // migrate_vma_collect_huge_pmd() (mainline since the device-private THP series): the
        // huge zero folio is a hole. With SELECT_SYSTEM | SELECT_COMPOUND over a whole aligned
        // PMD it is one compound MIGRATE entry without a page (like an empty PMD), so a driver
        // whose THP allocation fails can fall back to 512 4 KiB destinations; the PMD stays
        // mapped until migrate_vma_pages replaces it (insertPage) or the migration is dropped.
        if (select(MIGRATE_VMA_SELECT_SYSTEM) && compoundOk(addr)) return hole(addr, PtLevel::Pmd);
        // Deliberate difference: without SELECT_COMPOUND (or SELECT_SYSTEM, or over a range
        // that covers only part of the PMD) hmmsim keeps its earlier behaviour and splits the huge zero PMD
        // into 512 zero-page ptes now (CLEAR round), collected one by one. Mainline collects the same src
        // entries (512 MIGRATE holes, or 0 without SELECT_SYSTEM) without splitting; its
        // migrate_vma_insert_page splits the huge zero PMD only when a destination is inserted.
        if (splitHugePmd(*const_cast<Vma*>(a_.vma), leaf) != Errno::Ok) return skip(addr, end);
        return addr;
      }
      if (!select(MIGRATE_VMA_SELECT_SYSTEM) || e.isSpecial() || !pm_.pfnValid(head))
        return splitAndRetry(addr, leaf, head, end);
      if (compoundOk(addr)) return collectCompound(addr, w, head, e.isWrite());
      return splitAndRetry(addr, leaf, head, end);
    }
    if (e.isDevicePrivateEntry()) {
      const Pfn head = e.swpPfn();
      const Frame& h = pm_.frame(head);
      if (!select(MIGRATE_VMA_SELECT_DEVICE_PRIVATE) || !h.pgmap || h.pgmap->owner != a_.pgmapOwner)
        return skip(addr, end);
      if (compoundOk(addr)) return collectCompound(addr, w, head, e.isWritableDevicePrivateEntry());
      return splitAndRetry(addr, leaf, head, end);
    }
    return skip(addr, end);  // PMD migration entries and anything else
  }

  /// The kernel's split in migrate_vma_collect_pmd: get, trylock, split_huge_pmd + split_folio,
  /// then walk the ptes. A folio that cannot be locked or split is skipped.
  Va splitAndRetry(Va addr, Va leaf, Pfn head, Va end) {
    if (!pm_.pfnValid(head) || pm_.folioOrder(head) == 0) {
      // A special/pfnmap PMD: nothing to migrate.
      return skip(addr, end);
    }
    pm_.getPage(head);
    if (!lock(head)) {
      pm_.putPage(head);
      return skip(addr, end);
    }
    Errno err = splitHugePmd(*const_cast<Vma*>(a_.vma), leaf);
    if (err == Errno::Ok) err = splitLocked(head);
    if (!c_.isFaultFolio(head)) unlockFolio(pm_, head);
    pm_.putPage(head);
    if (err != Errno::Ok) return skip(addr, end);
    return addr;  // walk the new ptes
  }

  /// split_folio() of a folio we referenced and locked (migrate_vma_split_folio): the subpages
  /// come out unlocked except the head (ours) and the fault page, whose lock and fault-path
  /// reference move to its new order-0 folio.
  Errno splitLocked(Pfn head) {
    const bool faultHere = c_.isFaultFolio(head);
    const unsigned order = pm_.folioOrder(head);
    const Errno err = pm_.splitFolio(head, faultHere ? 2 : 1);
    if (err != Errno::Ok) return err;
    for (std::uint64_t j = 1; j < (1ull << order); ++j) unlockFolio(pm_, head + j);
    if (faultHere && *c_.faultPage != head) {
      pm_.frame(*c_.faultPage).set(kFrameLocked);
      pm_.getPage(*c_.faultPage);
      pm_.putPage(head);
    }
    return Errno::Ok;
  }

  /// Collect a whole PMD leaf (THP or device-private PMD) as one compound entry.
  Va collectCompound(Va addr, const PtWalk& w, Pfn head, bool write) {
    const Frame& h = pm_.frame(head);
    if (!h.mapping || pm_.folioOrder(head) != kPmdOrder) return skip(addr, addr + kPmdSize);
    pm_.getPage(head);
    if (!lock(head)) {
      pm_.putPage(head);
      return skip(addr, addr + kPmdSize);
    }
    installMigrationEntry(w.slot, head, w.pte, PtLevel::Pmd);
    emit(migratePfn(head) | MIGRATE_PFN_MIGRATE | MIGRATE_PFN_COMPOUND | (write ? MIGRATE_PFN_WRITE : 0));
    a_.cpages += kPagesPerPmd;
    return skip(addr + kPageSize, addr + kPmdSize);
  }

  /// The migration-entry part of migrate_vma_collect_pmd for one leaf (inside our MIGRATE round,
  /// so no round of its own).
  void installMigrationEntry(Pte* slot, Pfn pfn, Pte e, PtLevel level) {
    Frame& h = pm_.frame(headOf(pm_, pfn));
    Frame& f = pm_.frame(pfn);
    bool write;
    if (e.isPresent()) {
      write = e.isWrite();
      if (e.isDirty()) h.set(kFrameDirty);
    } else {
      write = e.isWritableDevicePrivateEntry();
    }
    const bool exclusive = h.isAnon() && f.test(kFrameAnonExclusive);
    Pte mig = Pte::mkMigration(pfn, write, !write && exclusive);
    if (e.isSoftDirty()) mig = mig.mkSoftDirty();
    if (e.isUffdWp()) mig = mig.mkUffdWp();
    *slot = mig;
    f.clear(kFrameAnonExclusive);
    if (level == PtLevel::Pte) {
      --f.mapcount;
    } else {
      h.setEntireMapcount(h.entireMapcount() - 1);
    }
    pm_.putPage(pfn);  // the mapping's reference; the migration's own keeps the folio
  }

  Va pte(Va addr, const PtWalk& w) {
    const Pte e = w.pte;
    unsigned long mpfn = 0;
    Pfn page;
    if (!e.isPresent()) {
      // Only device-private entries of our owner; other swap-style entries are not migratable.
      if (!e.isDevicePrivateEntry()) {
        emit(0);
        return addr + kPageSize;
      }
      page = e.swpPfn();
      const Frame& f = pm_.frame(page);
      if (!select(MIGRATE_VMA_SELECT_DEVICE_PRIVATE) || !f.pgmap || f.pgmap->owner != a_.pgmapOwner) {
        emit(0);
        return addr + kPageSize;
      }
      mpfn = migratePfn(page) | MIGRATE_PFN_MIGRATE;
      if (e.isWritableDevicePrivateEntry()) mpfn |= MIGRATE_PFN_WRITE;
    } else {
      const Pfn pfn = e.pfn();
      if (pm_.isZeroPfn(pfn) && select(MIGRATE_VMA_SELECT_SYSTEM)) {
        emit(MIGRATE_PFN_MIGRATE);
        ++a_.cpages;
        return addr + kPageSize;
      }
      const bool normal = !e.isSpecial() && pm_.pfnValid(pfn) && !pm_.isZeroPfn(pfn);
      if (!normal) {  // vm_normal_page() == NULL
        emit(0);
        return addr + kPageSize;
      }
      const Frame& f = pm_.frame(pfn);
      if (!f.isZoneDevice() && !select(MIGRATE_VMA_SELECT_SYSTEM)) {
        emit(0);
        return addr + kPageSize;
      }
      if (f.isZoneDevice() && (!isDeviceCoherent(f.pgmap) || !select(MIGRATE_VMA_SELECT_DEVICE_COHERENT) ||
                               f.pgmap->owner != a_.pgmapOwner)) {
        emit(0);
        return addr + kPageSize;
      }
      page = pfn;
      mpfn = migratePfn(pfn) | MIGRATE_PFN_MIGRATE | (e.isWrite() ? MIGRATE_PFN_WRITE : 0);
    }
    const Pfn head = headOf(pm_, page);
    if (orderOf(pm_, head) > 0) {
      // A pte-mapped large folio: split it (migrate_vma_split_folio) and look again.
      if (pm_.frame(head).test(kFrameHugeTlb) || !pm_.frame(head).mapping) {
        emit(0);
        return addr + kPageSize;
      }
      pm_.getPage(head);
      if (!lock(head)) {
        pm_.putPage(head);
        return skip(addr, pmdRangeEnd(addr));
      }
      const Errno err = splitLocked(head);
      if (!c_.isFaultFolio(head)) unlockFolio(pm_, head);
      pm_.putPage(head);
      if (err != Errno::Ok) return skip(addr, pmdRangeEnd(addr));
      return addr;
    }
    const Frame& f = pm_.frame(page);
    if (!f.mapping) {  // "FIXME support THP" / !page->mapping
      emit(0);
      return addr + kPageSize;
    }
    pm_.getPage(page);
    if (!lock(page)) {
      pm_.putPage(page);
      emit(0);
      return addr + kPageSize;
    }
    installMigrationEntry(w.slot, page, e, PtLevel::Pte);
    ++a_.cpages;
    emit(mpfn);
    return addr + kPageSize;
  }

  MigrateVma& a_;
  MigrateCtx& c_;
  PhysMem& pm_;
  Mm& mm_;
};

// ---------------------------------------------------------------------------------------------
// migrate_vma_pages / migrate_device_pages
// ---------------------------------------------------------------------------------------------

/// migrate_vma_insert_page(): map the destination for an empty (or zero-page) source slot.
/// Clears MIGRATE in *src when the slot is no longer empty or a page table cannot be allocated.
void insertPage(MigrateCtx& c, Va addr, Pfn newHead, bool compound, unsigned long* src) {
  PhysMem& pm = c.pm;
  Mm& mm = *c.own;
  Vma& vma = *const_cast<Vma*>(c.vma);
  PageTable& pt = mm.pageTable();
  if (!vma.isAnonymous()) {
    *src &= ~MIGRATE_PFN_MIGRATE;
    return;
  }
  Frame& h = pm.frame(newHead);
  const bool priv = isDevicePrivate(h.pgmap);
  if (h.isZoneDevice() && !priv && !isDeviceCoherent(h.pgmap)) {  // "Unsupported ZONE_DEVICE page type"
    *src &= ~MIGRATE_PFN_MIGRATE;
    return;
  }
  const bool write = (vma.vmFlags & VM_WRITE) != 0;
  Pte* slot = nullptr;
  // A PMD still mapping the huge zero page (collected as a hole).
  auto isHugeZeroPmd = [&](const Pte* pmd) {
    return pmd->isPresent() && pmd->isHuge() && pm.isHugeZeroPfn(pmd->pfn());
  };
  if (compound) {
    // migrate_vma_insert_huge_pmd_page(): only over pmd_none or the huge zero PMD, which is
    // simply replaced (it holds no reference, mapcount or rss; no page table is deposited).
    slot = pt.pmdPtr(addr, true);
    if (!slot || !(slot->isNone() || isHugeZeroPmd(slot))) {
      *src &= ~MIGRATE_PFN_MIGRATE;
      return;
    }
  } else {
    Pte* pmd = pt.pmdPtr(addr, true);
    if (pmd && isHugeZeroPmd(pmd)) {
      // migrate_vma_insert_page(): a huge zero PMD is split (split_huge_pmd, CLEAR round) and
      // the destination replaces one of its zero-page ptes.
      if (splitHugePmd(vma, addr) != Errno::Ok) {
        *src &= ~MIGRATE_PFN_MIGRATE;
        return;
      }
      pmd = pt.pmdPtr(addr, true);
    }
    if (!pmd || pmd->isHuge() || (!pmd->isNone() && !pmd->isTable())) {
      *src &= ~MIGRATE_PFN_MIGRATE;
      return;
    }
    slot = pt.ptePtr(addr, true);
    if (!slot) {
      *src &= ~MIGRATE_PFN_MIGRATE;
      return;
    }
    const Pte orig = *slot;
    // Only an empty slot or the zero page (a CPU fault may have populated it since collect).
    if (orig.isPresent() ? !pm.isZeroPfn(orig.pfn()) : !orig.isNone()) {
      *src &= ~MIGRATE_PFN_MIGRATE;
      return;
    }
  }
  AnonVma& av = mm.anonVmaPrepare(vma);
  Pte entry;
  if (priv) {
    entry = Pte::mkDevicePrivate(newHead, write);
  } else {
    entry = mkVmaPte(newHead, vma, write).mkYoung();
    if (write) entry = entry.mkDirty();
    if (compound) entry = entry.mkHuge();
  }
  // folio_add_new_anon_rmap(RMAP_EXCLUSIVE) + folio_get.
  h.mapping = &av;
  h.index = vma.linearPageIndex(addr);
  h.set(kFrameAnon);
  h.set(kFrameSwapBacked);
  h.set(kFrameUptodate);
  h.set(kFrameAnonExclusive);
  if (compound) {
    h.setEntireMapcount(h.entireMapcount() + 1);
    mm.addMmCounter(MmCounter::AnonPages, std::int64_t(kPagesPerPmd));
  } else {
    ++h.mapcount;
    mm.addMmCounter(MmCounter::AnonPages, 1);
  }
  pm.getPage(newHead);
  *slot = entry;
  *src = MIGRATE_PFN_MIGRATE | (compound ? MIGRATE_PFN_COMPOUND : 0);
}

/// Split a collected compound source (unmapped: PMD migration entries) whose destination is not
/// compound into 512 order-0 sources: src[i..i+511] become per-page entries.
bool splitCompoundSource(MigrateCtx& c, unsigned long* src, unsigned long i, unsigned long npages) {
  PhysMem& pm = c.pm;
  const Pfn head = *migratePfnToPfn(src[i]);
  const unsigned long flags = src[i] & (MIGRATE_PFN_MIGRATE | MIGRATE_PFN_WRITE);
  // The PMD migration entries become 512 pte migration entries (no references involved).
  auto splitPmdEntry = [&](Mm& m, Va va) {
    const PtWalk w = m.pageTable().lookup(va);
    if (w.level == PtLevel::Pmd && w.pte.isMigrationEntry() && w.pte.swpPfn() == head)
      (void)m.pageTable().splitHugePmd(va);
  };
  if (c.own) splitPmdEntry(*c.own, c.start + (std::uint64_t(i) << kPageShift));
  std::vector<std::pair<Mm*, Va>> at;
  rmapWalkAnon(pm, head, [&](const RmapMapping& mp) {
    if (mp.level == PtLevel::Pmd) at.emplace_back(mp.mm, mp.va);
  });
  for (const auto& [m, va] : at) splitPmdEntry(*m, va);
  if (splitUnmappedFolio(pm, head) != Errno::Ok) return false;
  for (unsigned long j = 0; j < kPagesPerPmd && i + j < npages; ++j)
    src[i + j] = migratePfn(head + j) | flags;
  return true;
}

void migratePages(MigrateCtx& c, unsigned long* src, unsigned long* dst, unsigned long npages, Va end) {
  PhysMem& pm = c.pm;
  bool notified = false;
  MmuNotifierRange range;
  for (unsigned long i = 0; i < npages; ++i) {
    const auto newpage = migratePfnToPfn(dst[i]);
    auto page = migratePfnToPfn(src[i]);
    if (!newpage) {
      src[i] &= ~MIGRATE_PFN_MIGRATE;
      continue;
    }
    const bool dstCompound = (dst[i] & MIGRATE_PFN_COMPOUND) != 0;
    if (!page) {
      if (!(src[i] & MIGRATE_PFN_MIGRATE)) continue;
      if (!c.own) continue;  // migrate_device_pages never has empty sources
      const Va addr = c.start + (std::uint64_t(i) << kPageShift);
      if (!notified) {
        notified = true;
        mmuNotifierRangeInitOwner(range, MmuNotifierEvent::Migrate, 0, c.own, addr, end, c.owner);
        c.own->invalidateRangeStart(range);
      }
      const bool srcCompound = (src[i] & MIGRATE_PFN_COMPOUND) != 0;
      if (srcCompound && !dstCompound) {
        // The empty PMD is migrated page by page with the driver's per-page destinations.
        for (unsigned long j = 1; j < kPagesPerPmd && i + j < npages; ++j) src[i + j] = MIGRATE_PFN_MIGRATE;
        src[i] = MIGRATE_PFN_MIGRATE;
      }
      if (dstCompound && !srcCompound) {
        src[i] &= ~MIGRATE_PFN_MIGRATE;
        continue;
      }
      insertPage(c, addr, *newpage, srcCompound && dstCompound, &src[i]);
      continue;
    }
    Pfn srcHead = *page;
    if ((src[i] & MIGRATE_PFN_COMPOUND) && !dstCompound) {
      if (!(src[i] & MIGRATE_PFN_MIGRATE) || !splitCompoundSource(c, src, i, npages)) {
        src[i] &= ~MIGRATE_PFN_MIGRATE;
        continue;
      }
      page = migratePfnToPfn(src[i]);
      srcHead = *page;
    } else if (dstCompound && !(src[i] & MIGRATE_PFN_COMPOUND)) {
      src[i] &= ~MIGRATE_PFN_MIGRATE;
      continue;
    }
    if (!(src[i] & MIGRATE_PFN_MIGRATE)) continue;
    Frame& sf = pm.frame(srcHead);
    Frame& df = pm.frame(*newpage);
    const bool fileBacked = sf.test(kFramePageCache);
    if (isDevicePrivate(df.pgmap) || isDeviceCoherent(df.pgmap)) {
      // Only anonymous memory migrates to device memory.
      if (fileBacked || !sf.isAnon()) {
        src[i] &= ~MIGRATE_PFN_MIGRATE;
        continue;
      }
    } else if (df.isZoneDevice()) {
      src[i] &= ~MIGRATE_PFN_MIGRATE;  // other ZONE_DEVICE types are not supported
      continue;
    } else if (fileBacked) {
      // Page-cache migration between system frames is not modelled (see the header).
      src[i] &= ~MIGRATE_PFN_MIGRATE;
      continue;
    }
    // folio_migrate_mapping(): exactly the migration's reference (+ the fault path's).
    const std::int32_t expected = 1 + (c.isFaultFolio(srcHead) ? 1 : 0);
    if (sf.refcount() != expected) {
      src[i] &= ~MIGRATE_PFN_MIGRATE;
      continue;
    }
    // folio_migrate_flags(): the destination takes over the source's identity.
    df.mapping = sf.mapping;
    df.index = sf.index;
    for (FrameFlag fl : {kFrameAnon, kFrameSwapBacked, kFrameUptodate, kFrameDirty})
      if (sf.test(fl)) df.set(fl);
  }
  if (notified) c.own->invalidateRangeEnd(range);
}

/// __migrate_device_finalize().
void finalize(MigrateCtx& c, unsigned long* src, unsigned long* dst, unsigned long npages) {
  PhysMem& pm = c.pm;
  std::vector<Mm*> touched;
  for (unsigned long i = 0; i < npages; ++i) {
    const auto newpage = migratePfnToPfn(dst[i]);
    const auto page = migratePfnToPfn(src[i]);
    std::optional<Pfn> dstHead;
    if (newpage) dstHead = headOf(pm, *newpage);
    if (!page) {
      if (dstHead) {
        unlockFolio(pm, *dstHead);
        pm.putPage(*dstHead);
      }
      continue;
    }
    const Pfn srcHead = headOf(pm, *page);
    if (!(src[i] & MIGRATE_PFN_MIGRATE) || !dstHead) {
      if (dstHead) {
        unlockFolio(pm, *dstHead);
        pm.putPage(*dstHead);
      }
      dstHead = srcHead;
    }
    std::optional<Va> known;
    if (c.own) known = c.start + (std::uint64_t(i) << kPageShift);
    removeMigrationPtes(c, srcHead, *dstHead, known, touched);
    if (!c.isFaultFolio(srcHead)) unlockFolio(pm, srcHead);
    pm.putPage(srcHead);
    if (*dstHead != srcHead) {
      unlockFolio(pm, *dstHead);
      pm.putPage(*dstHead);
    }
  }
  // folio_unlock wakes the faults that waited on the migration entries.
  for (Mm* m : touched) m->migrationWaitQueue().wakeUpAll();
}

/// migrate_device_pfn_lock(): reference and lock an allocated device folio head.
unsigned long pfnLock(PhysMem& pm, Pfn pfn) {
  if (!pm.pfnValid(pfn)) return 0;
  const Frame& f = pm.frame(pfn);
  if (f.isTail() || f.refcount() == 0) return 0;  // folio_get_nontail_page
  pm.getPage(pfn);
  Frame& h = pm.frame(pfn);
  if (h.isLocked()) {
    pm.putPage(pfn);
    return 0;
  }
  h.set(kFrameLocked);
  unsigned long mpfn = migratePfn(pfn) | MIGRATE_PFN_MIGRATE;
  if (pm.folioOrder(pfn) == kPmdOrder) mpfn |= MIGRATE_PFN_COMPOUND;
  return mpfn;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Public entry points
// ---------------------------------------------------------------------------------------------

Errno migrateVmaSetup(MigrateVma& a) {
  Vma* vma = a.vma;
  if (!vma || !vma->vmMm || vma->isHugetlb() || (vma->vmFlags & VM_SPECIAL)) return Errno::Inval;
  if (!a.start.isAligned(kPageSize) || !a.end.isAligned(kPageSize) || a.start >= a.end) return Errno::Inval;
  if (a.start < vma->vmStart || a.start >= vma->vmEnd) return Errno::Inval;
  if (a.end <= vma->vmStart || a.end > vma->vmEnd) return Errno::Inval;
  if (!a.src || !a.dst) return Errno::Inval;
  Mm& mm = *vma->vmMm;
  PhysMem& pm = mm.physMem();
  if (a.faultPage) {
    if (!pm.pfnValid(*a.faultPage) || !isDevicePrivate(pm.frame(*a.faultPage).pgmap)) return Errno::Inval;
    if (!pm.frame(headOf(pm, *a.faultPage)).isLocked()) return Errno::Inval;
  }
  mmapAssertLocked(mm);  // migrate_vma_setup runs under the mmap read lock
  const unsigned long n = (a.end - a.start) >> kPageShift;
  std::memset(a.src, 0, sizeof(*a.src) * n);
  std::memset(a.dst, 0, sizeof(*a.dst) * n);
  a.cpages = 0;
  a.npages = 0;
  MigrateCtx c{pm, &mm, vma, a.start, a.faultPage, a.pgmapOwner};
  Collector(a, c).run();
  if (a.cpages) a.cpages = deviceUnmap(c, a.src, a.npages);
  return Errno::Ok;
}

void migrateVmaPages(MigrateVma& a) {
  HMMSIM_ASSERT(a.vma && a.vma->vmMm, "migrate_vma_pages without a vma");
  Mm& mm = *a.vma->vmMm;
  MigrateCtx c{mm.physMem(), &mm, a.vma, a.start, a.faultPage, a.pgmapOwner};
  migratePages(c, a.src, a.dst, a.npages, a.end);
}

void migrateVmaFinalize(MigrateVma& a) {
  HMMSIM_ASSERT(a.vma && a.vma->vmMm, "migrate_vma_finalize without a vma");
  Mm& mm = *a.vma->vmMm;
  MigrateCtx c{mm.physMem(), &mm, a.vma, a.start, a.faultPage, a.pgmapOwner};
  finalize(c, a.src, a.dst, a.npages);
}

Errno migrateDeviceRange(PhysMem& pm, unsigned long* src, Pfn startPfn, unsigned long npages) {
  for (unsigned long i = 0; i < npages;) {
    src[i] = pfnLock(pm, startPfn + i);
    if (src[i] & MIGRATE_PFN_COMPOUND) {
      for (unsigned long j = 1; j < kPagesPerPmd && i + j < npages; ++j) src[i + j] = 0;
      i += kPagesPerPmd;
    } else {
      ++i;
    }
  }
  MigrateCtx c{pm, nullptr, nullptr, Va(0), std::nullopt, nullptr};
  deviceUnmap(c, src, npages);
  return Errno::Ok;
}

Errno migrateDevicePfns(PhysMem& pm, unsigned long* src, unsigned long npages) {
  for (unsigned long i = 0; i < npages; ++i) src[i] = pfnLock(pm, Pfn(src[i]));
  MigrateCtx c{pm, nullptr, nullptr, Va(0), std::nullopt, nullptr};
  deviceUnmap(c, src, npages);
  return Errno::Ok;
}

void migrateDevicePages(PhysMem& pm, unsigned long* src, unsigned long* dst, unsigned long npages) {
  MigrateCtx c{pm, nullptr, nullptr, Va(0), std::nullopt, nullptr};
  migratePages(c, src, dst, npages, Va(0));
}

void migrateDeviceFinalize(PhysMem& pm, unsigned long* src, unsigned long* dst, unsigned long npages) {
  MigrateCtx c{pm, nullptr, nullptr, Va(0), std::nullopt, nullptr};
  finalize(c, src, dst, npages);
}

std::optional<Pfn> migrateAllocSystemFolio(PhysMem& pm, unsigned order) {
  auto p = pm.allocFrame(order);
  if (p) pm.frame(*p).set(kFrameLocked);
  return p;
}

// ---------------------------------------------------------------------------------------------
// MigrateCopier
// ---------------------------------------------------------------------------------------------

MigrateCopier::MigrateCopier(PhysMem& pm, const MigrateCopyParams& params, const std::string& statsName)
    : pm_(pm),
      params_(params),
      stats_(statsName),
      bytesCopied_(stats_.counter("bytes_copied", "bytes", "bytes copied by migrations")),
      bytesCleared_(stats_.counter("bytes_cleared", "bytes", "destination bytes zeroed (empty sources)")),
      folios_(stats_.counter("folios", "folios", "folios copied or cleared")) {
  HMMSIM_ASSERT(params.bytesPerSecond > 0, "MigrateCopyParams.bytesPerSecond must be positive");
}

void MigrateCopier::charge(std::uint64_t bytes) {
  const double ps = double(bytes) / params_.bytesPerSecond * 1e12;
  const std::uint64_t t = static_cast<std::uint64_t>(std::llround(ps)) + params_.perPageLatencyPs;
  pendingPs_ += t;
  totalPs_ += t;
  ++folios_;
}

void MigrateCopier::copyFolio(Pfn dst, Pfn src, unsigned order) {
  const std::uint64_t n = 1ull << order;
  for (std::uint64_t i = 0; i < n; ++i) pm_.copyFrame(dst + i, src + i);
  bytesCopied_ += n << kPageShift;
  charge(n << kPageShift);
}

void MigrateCopier::clearFolio(Pfn dst, unsigned order) {
  const std::uint64_t n = 1ull << order;
  for (std::uint64_t i = 0; i < n; ++i) pm_.zeroFrame(dst + i);
  bytesCleared_ += n << kPageShift;
  charge(n << kPageShift);
}

}  // namespace hmmsim
