// mremap(2) (mm/mremap.c): shrink, grow in place, move (move_vma + move_page_tables), with
// MREMAP_FIXED and MREMAP_DONTUNMAP.
#include <algorithm>
#include <vector>

#include "models/cpu_mmu/huge_memory.h"
#include "models/cpu_mmu/memory.h"
#include "models/cpu_mmu/mm.h"
#include "models/cpu_mmu/mm_internal.h"
#include "models/cpu_mmu/page_table.h"
#include "models/cpu_mmu/vm_operations.h"
#include "sim/assert.h"

namespace hmmsim {

namespace {

/// move_page_tables: move every entry of [oldStart, oldStart+len) of `vma` to the same offset
/// at newStart (in `newVma`), inside one MMU_NOTIFY_UNMAP round over the old range. Entries
/// keep their pages (no refcount or mapcount change, like move_ptes); a PMD leaf moves whole
/// when it lies wholly inside the range and the target PMD slot is free and the new address is
/// equally aligned (move_pgt_entry(HPAGE_PMD)); otherwise it is split first (split_huge_pmd,
/// its own CLEAR round). Returns Ok, or NoMem when a target table could not be allocated (the
/// entries moved so far stay moved, as in the kernel, which then moves them back; hmmsim
/// asserts instead because PhysMem exhaustion by page tables is not a supported scenario).
void movePageTables(Mm& mm, Vma& vma, Va oldStart, Va newStart, std::uint64_t len) {
  PageTable& pt = mm.pageTable();
  const Va oldEnd = oldStart + len;
  MmuNotifierRange range;
  mmuNotifierRangeInit(range, MmuNotifierEvent::Unmap, 0, &mm, oldStart, oldEnd);
  mm.invalidateRangeStart(range);
  // Collect the leaves first: the walk may not create entries, and the target range is outside
  // it but may share upper-level tables with it.
  struct Leaf {
    Va at;
    PtLevel level;
  };
  std::vector<Leaf> leaves;
  pt.walkRange(oldStart, oldEnd, [&](const PtRangeEntry& e) {
    if (e.level == PtLevel::None) return WalkAction::Continue;
    if (e.level == PtLevel::Pmd) {
      const Va ls = e.leafStart();
      const Va target = newStart + (ls - oldStart);
      const bool whole = ls >= oldStart && ls + kPmdSize <= oldEnd;
      if (!whole || !target.isAligned(kPmdSize)) {
        Errno err = splitHugePmd(vma, ls);
        HMMSIM_ASSERT(err == Errno::Ok, "mremap: THP split failed: " << err);
        return WalkAction::Retry;
      }
    }
    HMMSIM_ASSERT(e.level == PtLevel::Pte || e.level == PtLevel::Pmd,
                  "mremap: unexpected leaf level " << unsigned(e.level));
    leaves.push_back(Leaf{e.level == PtLevel::Pmd ? e.leafStart() : e.start, e.level});
    return WalkAction::Continue;
  });
  for (const Leaf& l : leaves) {
    const Va target = newStart + (l.at - oldStart);
    Errno err = Errno::Ok;
    if (l.level == PtLevel::Pmd) {
      Pte* dst = pt.pmdPtr(target, true, &err);
      HMMSIM_ASSERT(dst != nullptr, "mremap: no PMD slot at " << target << ": " << err);
      if (dst->isTable()) {
        // An (empty) PTE table sits there: the kernel splits the source instead; do the same.
        Errno e2 = splitHugePmd(vma, l.at);
        HMMSIM_ASSERT(e2 == Errno::Ok, "mremap: THP split failed: " << e2);
        for (std::uint64_t i = 0; i < kPagesPerPmd; ++i) {
          Va from = l.at + i * kPageSize;
          Pte* src = pt.ptePtr(from, false);
          if (!src || src->isNone()) continue;
          Pte* d = pt.ptePtr(target + i * kPageSize, true, &err);
          HMMSIM_ASSERT(d && d->isNone(), "mremap: target pte busy");
          *d = *src;
          *src = Pte();
        }
        continue;
      }
      HMMSIM_ASSERT(dst->isNone(), "mremap: target PMD busy at " << target);
      Pte* src = pt.pmdPtr(l.at, false);
      *dst = *src;
      *src = Pte();
    } else {
      Pte* src = pt.ptePtr(l.at, false);
      Pte* dst = pt.ptePtr(target, true, &err);
      HMMSIM_ASSERT(dst != nullptr && dst->isNone(), "mremap: target pte at " << target << ": " << err);
      *dst = *src;
      *src = Pte();
    }
  }
  mm.invalidateRangeEnd(range);
}

/// The mremap syscall's argument checks: flag combinations, alignment, page-rounded lengths
/// (`ol`, `nl`), and the old range inside the task. Returns Ok or Inval.
Errno mremapCheckArgs(const Mm& mm, Va oldAddr, std::uint64_t oldLen, std::uint64_t newLen, int flags,
                      std::uint64_t& ol, std::uint64_t& nl) {
  if (flags & ~(MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP)) return Errno::Inval;
  if ((flags & MREMAP_FIXED) && !(flags & MREMAP_MAYMOVE)) return Errno::Inval;
  if ((flags & MREMAP_DONTUNMAP) && (!(flags & MREMAP_MAYMOVE) || oldLen != newLen)) return Errno::Inval;
  if (!oldAddr.isAligned(kPageSize)) return Errno::Inval;
  if (!pageAlign(oldLen, ol) || !pageAlign(newLen, nl)) return Errno::Inval;
  if (nl == 0) return Errno::Inval;
  // old_len == 0 duplicates a shared mapping in the kernel; not modelled: EINVAL like the
  // kernel's answer for private mappings.
  if (ol == 0) return Errno::Inval;
  const std::uint64_t task = mm.params().taskSize.value();
  if (ol > task || oldAddr.value() > task - ol) return Errno::Inval;
  return Errno::Ok;
}

/// vma_to_resize: the vma holding [oldAddr, oldAddr + ol), which may grow to `nl` bytes.
/// Returns Ok with `vma` set, Fault (no vma, or the range leaves it; growing a VM_DONTEXPAND or
/// VM_PFNMAP vma), Inval (hugetlb; MREMAP_DONTUNMAP of such a vma) or Again (RLIMIT_MEMLOCK).
Errno vmaToResize(Mm& mm, Va oldAddr, std::uint64_t ol, std::uint64_t nl, int flags, Vma*& vma) {
  vma = mm.vmaLookup(oldAddr);
  if (!vma) return Errno::Fault;
  if (vma->isHugetlb()) return Errno::Inval;  // hmmsim: hugetlb mremap not modelled
  if (ol > vma->vmEnd - oldAddr) return Errno::Fault;
  if ((flags & MREMAP_DONTUNMAP) && (vma->vmFlags & (VM_DONTEXPAND | VM_PFNMAP))) return Errno::Inval;
  if (nl > ol && (vma->vmFlags & (VM_DONTEXPAND | VM_PFNMAP))) return Errno::Fault;
  if (nl > ol && !MmInternals::mlockFutureOk(mm, vma->vmFlags, nl - ol)) return Errno::Again;
  return Errno::Ok;
}

/// mremap_to's preparation (MREMAP_FIXED): checks the target, unmaps it (UNMAP round) and, when
/// shrinking, the old tail (`ol` becomes `nl`). `vma` is looked up again afterwards. Returns Ok,
/// Inval (misaligned, outside the task, overlapping the old range), Perm (below mmap_min_addr)
/// or a split error (nothing changed).
Errno mremapToPrepare(Mm& mm, Va oldAddr, std::uint64_t& ol, std::uint64_t nl, Va newAddr, Vma*& vma) {
  const std::uint64_t task = mm.params().taskSize.value();
  if (!newAddr.isAligned(kPageSize)) return Errno::Inval;
  if (nl > task || newAddr.value() > task - nl) return Errno::Inval;
  // The two ranges may not overlap.
  if (newAddr < oldAddr + ol && oldAddr < newAddr + nl) return Errno::Inval;
  if (newAddr < mm.params().mmapMinAddr) return Errno::Perm;
  // Split checks for the target's and the old tail's unmapping before changing anything.
  if (Vma* f = mm.findVmaIntersection(newAddr, newAddr + nl)) {
    if (f->vmStart < newAddr) {
      if (Errno e = MmInternals::maySplit(*f, newAddr); e != Errno::Ok) return e;
    }
  }
  if (Errno e = MmInternals::unmapRange(mm, newAddr, newAddr + nl); e != Errno::Ok) return e;
  if (ol > nl) {
    if (Errno e = MmInternals::unmapRange(mm, oldAddr + nl, oldAddr + ol); e != Errno::Ok) return e;
    ol = nl;
  }
  vma = mm.vmaLookup(oldAddr);
  return Errno::Ok;
}

/// move_vma: the new vma (copy_vma) with the pgoff of the moved range, the page tables moved
/// under an UNMAP round on the old range, then the old range unmapped (second UNMAP round)
/// unless MREMAP_DONTUNMAP, which leaves the old vma in place, unlocked.
void moveVma(Mm& mm, Vma& vma, Va oldAddr, std::uint64_t ol, std::uint64_t nl, Va target, int flags) {
  VmaPtr dup = MmInternals::dupVma(vma);
  dup->vmStart = target;
  dup->vmEnd = target + nl;
  dup->vmPgoff = vma.vmPgoff + ((oldAddr - vma.vmStart) >> kPageShift);
  Vma* nv = &MmInternals::linkVma(mm, std::move(dup));
  if (nv->vmOps) nv->vmOps->open(*nv);
  // THPs straddling the old range's edges are split before the move (the vma split does it in
  // the kernel's do_vmi_munmap; move_page_tables splits partial PMDs itself).
  movePageTables(mm, vma, oldAddr, target, ol);
  if (!(flags & MREMAP_DONTUNMAP)) {
    Errno e = MmInternals::unmapRange(mm, oldAddr, oldAddr + ol);
    HMMSIM_ASSERT(e == Errno::Ok, "mremap: unmapping the old range failed: " << e);
  } else {
    vma.vmFlags &= ~VM_LOCKED_MASK;  // move_vma always unlocks the old vma it leaves behind
  }
  MmInternals::mergeAround(mm, *nv);
}

}  // namespace

VaResult Mm::mremap(Va oldAddr, std::uint64_t oldLen, std::uint64_t newLen, int flags, Va newAddr) {
  MmInternals::enter(*this);
  ++mmStats_.mremapCalls;
  auto failed = [&](Errno e) {
    MmInternals::leave(*this);
    return VaResult{MmInternals::fail(*this, e), Va()};
  };
  // A grown VM_LOCKED mapping has its new part populated once the lock is dropped.
  std::uint64_t populateFrom = 0, populateTo = 0;
  auto ok = [&](Va a) {
    MmInternals::leave(*this);
    if (populateTo > populateFrom) mmPopulateIgnoringErrors(*this, a + populateFrom, a + populateTo);
    return VaResult{Errno::Ok, a};
  };
  std::uint64_t ol = 0, nl = 0;
  if (Errno e = mremapCheckArgs(*this, oldAddr, oldLen, newLen, flags, ol, nl); e != Errno::Ok)
    return failed(e);
  Vma* vma = nullptr;
  if (Errno e = vmaToResize(*this, oldAddr, ol, nl, flags, vma); e != Errno::Ok) return failed(e);
  if (nl > ol && (vma->vmFlags & VM_LOCKED)) {
    populateFrom = ol;
    populateTo = nl;
  }

  Va target;
  if (flags & MREMAP_FIXED) {
    if (Errno e = mremapToPrepare(*this, oldAddr, ol, nl, newAddr, vma); e != Errno::Ok) return failed(e);
    target = newAddr;
  } else {
    if (ol >= nl) {
      // Shrink (or same size): unmap the tail.
      if (ol > nl) {
        if (Errno e = MmInternals::unmapRange(*this, oldAddr + nl, oldAddr + ol); e != Errno::Ok)
          return failed(e);
      }
      if (!(flags & MREMAP_DONTUNMAP)) return ok(oldAddr);
    }
    if (!(flags & MREMAP_DONTUNMAP)) {
      // Grow in place when the range ends the vma and the space above is free.
      const std::uint64_t task = params_.taskSize.value();
      if (vma->vmEnd == oldAddr + ol && oldAddr.value() <= task - nl &&
          findVmaIntersection(oldAddr + ol, oldAddr + nl) == nullptr) {
        vma->vmEnd = oldAddr + nl;  // vma_expand: no page-table change, no round
        return ok(oldAddr);
      }
    }
    if (!(flags & MREMAP_MAYMOVE)) return failed(Errno::NoMem);
    const std::uint64_t align =
        (vma->isAnonymous() && params_.thpAlignAnon && nl >= kPmdSize) ? kPmdSize : kPageSize;
    VaResult r = getUnmappedArea(Va(0), nl, align, 0);
    if (!r.ok()) return failed(r.err);
    target = r.addr;
  }
  moveVma(*this, *vma, oldAddr, ol, nl, target, flags);
  return ok(target);
}

}  // namespace hmmsim
