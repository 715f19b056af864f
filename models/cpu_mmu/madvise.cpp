// madvise(2) (mm/madvise.c) and the lazyfree part of page reclaim (mm/vmscan.c, mm/rmap.c).
#include <algorithm>
#include <vector>

#include "models/cpu_mmu/huge_memory.h"
#include "models/cpu_mmu/memory.h"
#include "models/cpu_mmu/mm.h"
#include "models/cpu_mmu/mm_internal.h"
#include "models/cpu_mmu/page_table.h"
#include "models/cpu_mmu/phys_mem.h"
#include "sim/assert.h"

namespace hmmsim {

namespace {

bool knownAdvice(int a) {
  switch (a) {
    case MADV_NORMAL:
    case MADV_RANDOM:
    case MADV_SEQUENTIAL:
    case MADV_WILLNEED:
    case MADV_DONTNEED:
    case MADV_FREE:
    case MADV_REMOVE:
    case MADV_DONTFORK:
    case MADV_DOFORK:
    case MADV_HUGEPAGE:
    case MADV_NOHUGEPAGE:
    case MADV_DONTDUMP:
    case MADV_DODUMP:
    case MADV_WIPEONFORK:
    case MADV_KEEPONFORK:
    case MADV_POPULATE_READ:
    case MADV_POPULATE_WRITE:
    case MADV_COLLAPSE:
      return true;
    default:
      return false;
  }
}

/// Advice that only changes vma flags (madvise_update_vma): the new flags for `v`, or an error.
Errno flagAdvice(const Vma& v, int advice, VmFlags& nf) {
  nf = v.vmFlags;
  switch (advice) {
    case MADV_NORMAL:
      nf &= ~(VM_RAND_READ | VM_SEQ_READ);
      break;
    case MADV_SEQUENTIAL:
      nf = (nf & ~VM_RAND_READ) | VM_SEQ_READ;
      break;
    case MADV_RANDOM:
      nf = (nf & ~VM_SEQ_READ) | VM_RAND_READ;
      break;
    case MADV_DONTFORK:
      nf |= VM_DONTCOPY;
      break;
    case MADV_DOFORK:
      if (v.vmFlags & VM_IO) return Errno::Inval;
      nf &= ~VM_DONTCOPY;
      break;
    case MADV_WIPEONFORK:
      if (v.vmFile || (v.vmFlags & VM_SHARED)) return Errno::Inval;  // private anon only
      nf |= VM_WIPEONFORK;
      break;
    case MADV_KEEPONFORK:
      nf &= ~VM_WIPEONFORK;
      break;
    case MADV_DONTDUMP:
      nf |= VM_DONTDUMP;
      break;
    case MADV_DODUMP:
      if (!v.isHugetlb() && (v.vmFlags & VM_SPECIAL)) return Errno::Inval;
      nf &= ~VM_DONTDUMP;
      break;
    case MADV_HUGEPAGE:
      // hugepage_madvise: ignored (no change, success) where THP never applies.
      if (v.vmFlags & (VM_SPECIAL | VM_HUGETLB)) break;
      nf = (nf & ~VM_NOHUGEPAGE) | VM_HUGEPAGE;
      break;
    case MADV_NOHUGEPAGE:
      if (v.vmFlags & (VM_SPECIAL | VM_HUGETLB)) break;
      nf = (nf & ~VM_HUGEPAGE) | VM_NOHUGEPAGE;
      break;
    default:
      HMMSIM_ASSERT(false, "flagAdvice: " << advice << " is not a flag advice");
  }
  return Errno::Ok;
}

bool isFlagAdvice(int a) {
  switch (a) {
    case MADV_NORMAL:
    case MADV_SEQUENTIAL:
    case MADV_RANDOM:
    case MADV_DONTFORK:
    case MADV_DOFORK:
    case MADV_WIPEONFORK:
    case MADV_KEEPONFORK:
    case MADV_DONTDUMP:
    case MADV_DODUMP:
    case MADV_HUGEPAGE:
    case MADV_NOHUGEPAGE:
      return true;
    default:
      return false;
  }
}

/// madvise_free_pte_range for [start, end) of an anonymous vma, inside the CLEAR round: pages
/// mapped only here become lazyfree (clean: pte dirty/young cleared, folio swapbacked and dirty
/// cleared); a PMD-mapped THP wholly inside is marked as a whole, one partly inside is split
/// first (the kernel splits the folio; hmmsim splits the mapping, which is what matters for the
/// pages' fate).
void markLazyfree(Mm& mm, Vma& vma, Va start, Va end) {
  PhysMem& pm = mm.physMem();
  PageTable& pt = mm.pageTable();
  pt.walkRange(start, end, [&](const PtRangeEntry& e) {
    if (e.level == PtLevel::None) return WalkAction::Continue;
    Pte pte = *e.slot;
    if (!pte.isPresent() || pte.isSpecial()) return WalkAction::Continue;
    if (e.level == PtLevel::Pmd) {
      if (e.leafStart() < start || e.leafStart() + kPmdSize > end) {
        if (splitHugePmd(vma, e.leafStart()) != Errno::Ok) return WalkAction::Continue;
        return WalkAction::Retry;
      }
    } else if (e.level != PtLevel::Pte) {
      return WalkAction::Continue;
    }
    const Pfn pfn = pte.pfn();
    if (!pm.pfnValid(pfn) || pm.isZeroPfn(pfn) || pm.isHugeZeroPfn(pfn)) return WalkAction::Continue;
    const Pfn head = pm.compoundHead(pfn);
    Frame& f = pm.frame(head);
    if (!f.isAnon() || f.isZoneDevice()) return WalkAction::Continue;
    // Only a folio mapped by this pte alone (folio_mapcount == 1) can be freed lazily.
    const Frame& sub = pm.frame(pfn);
    const int mapcount = e.level == PtLevel::Pmd ? f.entireMapcount() : sub.mapcount;
    if (mapcount != 1) return WalkAction::Continue;
    if (e.level == PtLevel::Pte && pm.folioOrder(pfn) != 0) return WalkAction::Continue;  // part of a THP
    *e.slot = pte.mkClean().mkOld();
    f.clear(kFrameDirty);
    f.clear(kFrameSwapBacked);  // folio_mark_lazyfree
    return WalkAction::Continue;
  });
}

/// madvise_update_vma for every part: the flag advice (MADV_NORMAL/RANDOM/SEQUENTIAL,
/// DONTFORK/DOFORK, WIPEONFORK/KEEPONFORK, DONTDUMP/DODUMP, HUGEPAGE/NOHUGEPAGE). Every part is
/// checked and the boundary splits are allowed before anything changes; then each part whose
/// flags change is split out, updated and merged with its neighbours.
Errno madviseUpdateVmas(Mm& mm, const std::vector<Vma*>& parts, Va start, Va end, int advice) {
  std::vector<VmFlags> newFlags;
  for (Vma* v : parts) {
    VmFlags nf;
    if (Errno e = flagAdvice(*v, advice, nf); e != Errno::Ok) return e;
    newFlags.push_back(nf);
  }
  if (parts.front()->vmStart < start && newFlags.front() != parts.front()->vmFlags) {
    if (Errno e = MmInternals::maySplit(*parts.front(), start); e != Errno::Ok) return e;
  }
  if (parts.back()->vmEnd > end && newFlags.back() != parts.back()->vmFlags) {
    if (Errno e = MmInternals::maySplit(*parts.back(), end); e != Errno::Ok) return e;
  }
  std::vector<std::pair<Va, Va>> ranges;
  ranges.reserve(parts.size());
  for (Vma* v : parts) ranges.emplace_back(std::max(v->vmStart, start), std::min(v->vmEnd, end));
  for (std::size_t i = 0; i < ranges.size(); ++i) {
    auto [ps, pe] = ranges[i];
    Vma* v = mm.vmaLookup(ps);
    if (newFlags[i] == v->vmFlags) continue;
    if (v->vmStart < ps) v = MmInternals::splitVma(mm, *v, ps);
    if (v->vmEnd > pe) MmInternals::splitVma(mm, *v, pe);
    v->vmFlags = newFlags[i];
    MmInternals::mergeAround(mm, *v);
  }
  return Errno::Ok;
}

/// madvise_dontneed_free: MADV_DONTNEED zaps, MADV_FREE marks lazyfree, one MMU_NOTIFY_CLEAR
/// round per vma part. Refuses (Inval, nothing changed) locked or pfnmap vmas, MADV_FREE on
/// non-anonymous or hugetlb vmas, and a hugetlb part not starting on a huge page; a hugetlb part
/// covers only whole huge pages.
Errno madviseDontneedFree(Mm& mm, const std::vector<Vma*>& parts, Va start, Va end, int advice) {
  // madvise_dontneed_free_valid_vma: no locked or pfnmap vmas; FREE only on anonymous ones.
  for (Vma* v : parts) {
    if (v->vmFlags & (VM_LOCKED | VM_PFNMAP)) return Errno::Inval;
    if (advice == MADV_FREE && (!v->isAnonymous() || v->isHugetlb())) return Errno::Inval;
    if (v->isHugetlb()) {
      Va ps = std::max(v->vmStart, start);
      if (!ps.isAligned(v->kernelPagesize())) return Errno::Inval;
    }
  }
  for (Vma* v : parts) {
    Va ps = std::max(v->vmStart, start);
    Va pe = std::min(v->vmEnd, end);
    if (v->isHugetlb()) pe = pe.alignDown(v->kernelPagesize());  // only whole huge pages
    if (pe <= ps) continue;
    if (advice == MADV_DONTNEED) {
      // zap_page_range_single: one MMU_NOTIFY_CLEAR round per vma part.
      mm.notifyRange(MmuNotifierEvent::Clear, ps, pe, nullptr, [&] { zapPageRange(*v, ps, pe, nullptr); });
    } else {
      mm.notifyRange(MmuNotifierEvent::Clear, ps, pe, nullptr, [&] { markLazyfree(mm, *v, ps, pe); });
    }
  }
  return Errno::Ok;
}

/// madvise_remove: punch a hole in a shared file mapping's backing (shmem). Only the checks are
/// modelled: Inval for a locked vma, Acces for a non-shared or anonymous one, else OpNotSupp.
Errno madviseRemove(const std::vector<Vma*>& parts) {
  for (Vma* v : parts) {
    if (v->vmFlags & (VM_LOCKED)) return Errno::Inval;
    if (!v->vmFile || !(v->vmFlags & VM_SHARED)) return Errno::Acces;
  }
  return Errno::OpNotSupp;
}

/// madvise_populate's vma check (under the lock): Inval for VM_IO/VM_PFNMAP parts.
Errno madvisePopulateValid(const std::vector<Vma*>& parts) {
  for (Vma* v : parts) {
    if (v->vmFlags & (VM_IO | VM_PFNMAP)) return Errno::Inval;
  }
  return Errno::Ok;
}

/// madvise_populate (mmap lock not held: mmPopulate takes it): read or write faults over
/// [start, end) as MADV_POPULATE_READ/WRITE asks.
Errno madvisePopulate(Mm& mm, Va start, Va end, int advice) {
  PopulateMode mode;
  mode.forceWrite = advice == MADV_POPULATE_WRITE;
  mode.forceRead = advice == MADV_POPULATE_READ;
  return mmPopulate(mm, start, end, mode);
}

/// madvise_collapse: the vmas must allow THP (ignoring the sysfs policy); every aligned 2 MiB
/// piece inside [start, end) is collapsed. Returns Inval for an unsuitable vma (nothing done),
/// else Ok or the last piece's failure.
Errno madviseCollapse(Mm& mm, const std::vector<Vma*>& parts, Va start, Va end) {
  for (Vma* v : parts) {
    if (!v->isAnonymous() || v->isHugetlb() || (v->vmFlags & (VM_SPECIAL | VM_NOHUGEPAGE)))
      return Errno::Inval;
  }
  Va hs = start.alignUp(kPmdSize);
  Va he = end.alignDown(kPmdSize);
  Errno lastFail = Errno::Ok;
  for (Va a = hs; a < he; a += kPmdSize) {
    Vma* v = mm.vmaLookup(a);
    if (!v || v->vmStart > a || v->vmEnd < a + kPmdSize) {
      lastFail = Errno::Inval;
      continue;
    }
    Errno e = collapseHugePage(*v, a);
    if (e != Errno::Ok) lastFail = e;
  }
  return lastFail;
}

}  // namespace

Errno Mm::madvise(Va addr, std::uint64_t len, int advice) {
  MmInternals::enter(*this);
  ++mmStats_.madviseCalls;
  bool locked = true;
  auto done = [&](Errno e) {
    if (locked) MmInternals::leave(*this);
    return e == Errno::Ok ? e : MmInternals::fail(*this, e);
  };
  if (!addr.isAligned(kPageSize)) return done(Errno::Inval);
  if (!knownAdvice(advice)) return done(Errno::Inval);
  std::uint64_t alen;
  if (!pageAlign(len, alen)) return done(Errno::Inval);
  const Va start = addr;
  const Va end = addr + alen;
  if (end < start) return done(Errno::Inval);
  if (end == start) return done(Errno::Ok);

  // The kernel applies the advice to the mapped parts and then returns ENOMEM for a hole;
  // hmmsim refuses first and changes nothing (deliberate, so bad calls change nothing).
  if (!MmInternals::coveredWithoutHoles(*this, start, end)) return done(Errno::NoMem);
  const std::vector<Vma*> parts = MmInternals::vmasIn(*this, start, end);

  // madvise_vma_behavior: one function per advice family.
  if (isFlagAdvice(advice)) return done(madviseUpdateVmas(*this, parts, start, end, advice));
  switch (advice) {
    case MADV_WILLNEED:
      return done(Errno::Ok);  // read-ahead / swap-in: nothing to do without backing store
    case MADV_DONTNEED:
    case MADV_FREE:
      return done(madviseDontneedFree(*this, parts, start, end, advice));
    case MADV_REMOVE:
      return done(madviseRemove(parts));
    case MADV_POPULATE_READ:
    case MADV_POPULATE_WRITE:
      if (Errno e = madvisePopulateValid(parts); e != Errno::Ok) return done(e);
      MmInternals::leave(*this);
      locked = false;
      return done(madvisePopulate(*this, start, end, advice));
    case MADV_COLLAPSE:
      return done(madviseCollapse(*this, parts, start, end));
    default:
      break;
  }
  HMMSIM_ASSERT(false, "madvise: unhandled advice " << advice);
  return done(Errno::Inval);
}

std::uint64_t Mm::reclaimLazyfree() {
  HMMSIM_ASSERT(!exited_, "reclaimLazyfree after exit");
  MmapWriteLock lock(*this);
  PhysMem& pm = physMem_;
  std::uint64_t discarded = 0;
  for (Vma& v : vmas_) {
    // try_to_unmap_one keeps pages of VM_LOCKED vmas (it mlocks them instead).
    if (!v.isAnonymous() || v.isHugetlb() || (v.vmFlags & VM_LOCKED)) continue;
    // Collect candidates first: the walk must not be disturbed by the per-page rounds.
    std::vector<std::pair<Va, PtLevel>> candidates;
    pageTable_->walkRange(v.vmStart, v.vmEnd, [&](const PtRangeEntry& e) {
      if (e.level != PtLevel::Pte && e.level != PtLevel::Pmd) return WalkAction::Continue;
      Pte pte = *e.slot;
      if (!pte.isPresent() || pte.isSpecial()) return WalkAction::Continue;
      Pfn pfn = pte.pfn();
      if (!pm.pfnValid(pfn) || pm.isZeroPfn(pfn) || pm.isHugeZeroPfn(pfn)) return WalkAction::Continue;
      Frame& f = pm.frame(pm.compoundHead(pfn));
      if (!f.isAnon() || f.isZoneDevice() || f.test(kFrameSwapBacked)) return WalkAction::Continue;
      if (e.level == PtLevel::Pte && pm.folioOrder(pfn) != 0) return WalkAction::Continue;
      candidates.emplace_back(e.leafStart(), e.level);
      return WalkAction::Continue;
    });
    for (const auto& candidate : candidates) {
      const Va a = candidate.first;  // not structured bindings: the CLEAR round's lambda uses them
      const PtLevel level = candidate.second;
      const std::uint64_t size = ptLevelSize(level);
      PtWalk w = pageTable_->lookup(a);
      if (w.level != level || !w.pte.isPresent()) continue;
      const Pfn pfn = w.pte.pfn();
      const Pfn head = pm.compoundHead(pfn);
      Frame& f = pm.frame(head);
      const int mapcount = level == PtLevel::Pmd ? f.entireMapcount() : f.mapcount;
      const int expectedRefs = 1;  // the single mapping; more means a GUP pin or a pending user
      if (w.pte.isDirty() || f.isDirty() || mapcount != 1 || f.refcount() != expectedRefs) {
        // Re-dirtied (or pinned) since MADV_FREE: the page is kept and is normal memory again.
        if (w.pte.isDirty() || f.isDirty()) f.set(kFrameSwapBacked);
        continue;
      }
      // try_to_unmap_one on a clean lazyfree folio: clear the mapping inside a CLEAR round and
      // free the page; the next touch faults in a fresh zero page.
      notifyRange(MmuNotifierEvent::Clear, a, a + size, nullptr, [&] {
        *w.slot = Pte();
        if (level == PtLevel::Pmd) {
          f.setEntireMapcount(0);
        } else {
          f.mapcount = 0;
        }
        addMmCounter(MmCounter::AnonPages, -static_cast<std::int64_t>(size >> kPageShift));
        pm.putPage(head);
      });
      ++mmStats_.lazyfreeDiscarded;
      discarded += size >> kPageShift;
    }
  }
  return discarded;
}

}  // namespace hmmsim
