#include "hmm/p2p_bar_vma_revoker.h"

#include <algorithm>

#include "models/cpu_mmu/memory.h"
#include "models/cpu_mmu/mm.h"
#include "models/cpu_mmu/vma.h"
#include "sim/assert.h"

namespace hmmsim {

void zapPageRangeSingle(Vma& vma, Va address, std::uint64_t size) {
  const Va start = std::max(address, vma.vmStart);
  const Va end = std::min(address + size, vma.vmEnd);
  if (start >= end) return;
  HMMSIM_ASSERT(vma.vmMm, "zapPageRangeSingle on a vma without an mm");
  Mm& mm = *vma.vmMm;
  // mmu_notifier_range_init(MMU_NOTIFY_CLEAR) + start, unmap_single_vma, end: the round is
  // raised even when the range has no pte at all (a device vma the CPU never faulted).
  mm.notifyRange(MmuNotifierEvent::Clear, start, end, nullptr, [&] { zapPageRange(vma, start, end); });
}

void BarVmaRevoker::track(Vma& vma) {
  HMMSIM_ASSERT(std::find(vmas_.begin(), vmas_.end(), &vma) == vmas_.end(),
                "BarVmaRevoker: vma [" << vma.vmStart << ", " << vma.vmEnd << ") tracked twice");
  vmas_.push_back(&vma);
}

void BarVmaRevoker::untrack(Vma& vma) {
  auto it = std::find(vmas_.begin(), vmas_.end(), &vma);
  if (it != vmas_.end()) vmas_.erase(it);
}

DevPage BarVmaRevoker::devPageOf(const Vma& vma, Va va) const {
  return DevPage(vma.linearPageIndex(va) - pgoffBase_);
}

void BarVmaRevoker::revoke(DevPage first, std::uint64_t npages, BarEvent /*why*/) {
  ++revokeCalls_;
  const std::uint64_t lo = first.value() + pgoffBase_;  // file pages [lo, hi)
  const std::uint64_t hi = lo + npages;
  // Copy: an importer's reaction must not change the list, but a vma closed by a reaction
  // (not expected) would otherwise invalidate the iteration.
  const std::vector<Vma*> vmas = vmas_;
  for (Vma* v : vmas) {
    const std::uint64_t vLo = v->vmPgoff;
    const std::uint64_t vHi = v->vmPgoff + v->pages();
    const std::uint64_t from = std::max(lo, vLo);
    const std::uint64_t to = std::min(hi, vHi);
    if (from >= to) continue;
    ++clearRounds_;
    zapPageRangeSingle(*v, v->vmStart + ((from - vLo) << kPageShift), (to - from) << kPageShift);
  }
}

}  // namespace hmmsim
