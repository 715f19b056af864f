// /proc/pid/clear_refs and /proc/pid/pagemap (fs/proc/task_mmu.c). Contracts in task_mmu.h.
#include "models/cpu_mmu/task_mmu.h"

#include "models/cpu_mmu/fault_internal.h"
#include "models/cpu_mmu/mm.h"
#include "models/cpu_mmu/mm_internal.h"
#include "models/cpu_mmu/mmu_notifier.h"
#include "models/cpu_mmu/page_table.h"
#include "sim/assert.h"

namespace hmmsim {

using namespace fault_detail;

namespace {

/// clear_soft_dirty / clear_soft_dirty_pmd: write-protect and clean a present leaf; a
/// swap-style one only loses its soft-dirty bit.
Pte clearSoftDirty(Pte e) {
  if (e.isPresent()) return e.wrprotect().clearSoftDirty();
  return e.isSwap() ? e.clearSoftDirty() : e;
}

}  // namespace

Errno clearRefs(Mm& mm, int type) {
  if (type < CLEAR_REFS_ALL || type > CLEAR_REFS_MM_HIWATER_RSS) return Errno::Inval;
  if (type == CLEAR_REFS_MM_HIWATER_RSS) return Errno::Ok;  // hiwater rss is not tracked
  MmInternals::enter(mm);
  const bool softDirty = type == CLEAR_REFS_SOFT_DIRTY;
  MmuNotifierRange range;
  if (softDirty) {
    for (Vma& v : MmInternals::tree(mm)) v.vmFlags &= ~VM_SOFTDIRTY;
    mmuNotifierRangeInit(range, MmuNotifierEvent::SoftDirty, 0, &mm, Va(0), MmInternals::kVaMax);
    mm.invalidateRangeStart(range);
  }
  for (Vma& v : MmInternals::tree(mm)) {
    // clear_refs_test_walk: no VM_PFNMAP; ANON skips file-backed vmas, MAPPED anonymous ones.
    if (v.vmFlags & VM_PFNMAP) continue;
    if (type == CLEAR_REFS_ANON && v.vmFile) continue;
    if (type == CLEAR_REFS_MAPPED && !v.vmFile) continue;
    mm.pageTable().walkRange(v.vmStart, v.vmEnd, [&](const PtRangeEntry& e) {
      if (e.level == PtLevel::None) return WalkAction::Continue;
      const Pte p = *e.slot;
      *e.slot = softDirty ? clearSoftDirty(p) : (p.isPresent() ? p.mkOld() : p);
      return WalkAction::Continue;
    });
  }
  if (softDirty) mm.invalidateRangeEnd(range);
  MmInternals::leave(mm);
  return Errno::Ok;
}

void pagemapRead(Mm& mm, Va start, std::size_t n, std::uint64_t* out, bool showPfn) {
  HMMSIM_ASSERT(start.isAligned(kPageSize), "pagemapRead: unaligned start " << start);
  MmapMaybeReadLock lock(mm);
  PhysMem& pm = mm.physMem();
  for (std::size_t i = 0; i < n; ++i) {
    const Va va = start + i * kPageSize;
    const Vma* vma = mm.vmaLookup(va);
    std::uint64_t entry = 0;
    if (vma && (vma->vmFlags & VM_SOFTDIRTY)) entry |= PM_SOFT_DIRTY;
    const PtWalk w = vma ? mm.pageTable().lookup(va) : PtWalk{};
    if (w.level != PtLevel::None) {
      const Pte e = w.pte;
      const std::uint64_t sub = (va.value() & (ptLevelSize(w.level) - 1)) >> kPageShift;
      Pfn page;
      bool hasPage = false;
      if (e.isPresent()) {
        entry |= PM_PRESENT;
        page = e.pfn() + sub;
        if (showPfn) entry |= page.value() & PM_PFRAME_MASK;
        hasPage = isNormalPage(pm, e) && !pm.isZeroPfn(page) && !pm.isHugeZeroPfn(e.pfn());
      } else if (e.isSwap()) {
        entry |= PM_SWAP;
        const std::uint64_t frame = e.swpType() | ((e.swpOffset() + sub) << 5);
        if (showPfn || !e.isPfnSwapEntry()) entry |= frame & PM_PFRAME_MASK;
        if (e.isPfnSwapEntry()) {
          page = e.swpPfn() + sub;
          hasPage = true;
        }
      }
      if (e.isSoftDirty()) entry |= PM_SOFT_DIRTY;
      if (hasPage) {
        const Frame& h = headFrame(pm, page);
        if (!h.isAnon()) entry |= PM_FILE;
        const std::int64_t maps = w.level == PtLevel::Pte ? pm.frame(page).mapcount : h.entireMapcount();
        if (maps == 1) entry |= PM_MMAP_EXCLUSIVE;
      }
    }
    out[i] = entry;
  }
}

}  // namespace hmmsim
