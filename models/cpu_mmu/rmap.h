#pragma once
// The anonymous reverse map (mm/rmap.c): from an anonymous folio to every page-table leaf that
// maps it, in any mm of its fork family, through its anon_vma's chain of vmas (vma.h: AnonVma).
//
// Models: rmap_walk_anon with vma_address() from the folio's index; the page_vma_mapped_walk
// match of present entries, device-private, device-exclusive and migration entries that refer
// to a page of the folio; PTE and PMD leaves.
// Leaves out: the file rmap (address_space i_mmap walks), KSM, the anon_vma interval tree (the
// chain is a list: a walk visits every vma of the family), locking.
// Timing: none.

#include <cstdint>

#include "models/cpu_mmu/frame.h"
#include "models/cpu_mmu/mm.h"
#include "models/cpu_mmu/page_table.h"
#include "models/cpu_mmu/phys_mem.h"
#include "models/cpu_mmu/pte.h"
#include "models/cpu_mmu/vma.h"

namespace hmmsim {

/// One leaf found by an rmap walk.
struct RmapMapping {
  Mm* mm = nullptr;
  const Vma* vma = nullptr;
  Va va;  ///< address of the leaf (aligned to its size)
  Pte* slot = nullptr;
  PtLevel level = PtLevel::None;
};

/// rmap_walk_anon(): call `fn(const RmapMapping&)` for every leaf, in every vma on the anon_vma
/// chain of the anonymous folio headed by `head`, whose entry (present, device-private,
/// device-exclusive or migration) refers to a page of that folio. Nothing for a folio that is
/// not anonymous. `fn` may rewrite the leaf it is given (and split a PMD leaf's table under
/// it), nothing else: no vma may come or go during the walk.
template <class Fn>
void rmapWalkAnon(PhysMem& pm, Pfn head, Fn&& fn) {
  const Frame& h = pm.frame(head);
  if (!h.isAnon() || !h.mapping) return;
  const AnonVma& av = *static_cast<const AnonVma*>(h.mapping);
  const std::uint64_t n = pm.folioNrPages(head);
  for (const Vma& v : av.vmas) {
    if (h.index < v.vmPgoff || !v.vmMm) continue;
    Mm& mm = *v.vmMm;
    const Va base = v.vmStart + ((h.index - v.vmPgoff) << kPageShift);
    if (base >= v.vmEnd) continue;
    for (std::uint64_t i = 0; i < n;) {
      const Va va = base + (i << kPageShift);
      if (va >= v.vmEnd) break;
      const PtWalk w = mm.pageTable().lookup(va);
      if (w.level == PtLevel::None) {
        ++i;
        continue;
      }
      const Pte e = w.pte;
      const Pfn target = e.anyPfn();
      if ((e.isPresent() || e.isPfnSwapEntry()) && target >= head && target - head < n)
        fn(RmapMapping{&mm, &v, va.alignDown(ptLevelSize(w.level)), w.slot, w.level});
      i += (w.level == PtLevel::Pte) ? 1 : ptLevelSize(w.level) >> kPageShift;
    }
  }
}

}  // namespace hmmsim
