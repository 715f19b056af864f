// Devmem p2p ops lookup. See p2p.h.
#include "hmm/p2p.h"

#include "hmm/memremap.h"
#include "models/cpu_mmu/dev_pagemap.h"
#include "models/cpu_mmu/mm.h"
#include "models/cpu_mmu/mmu_notifier.h"
#include "models/cpu_mmu/vma.h"

namespace hmmsim {

DeviceMemory* devmemOfPgmap(const DevPagemap* pgmap) {
  if (!pgmap || !pgmap->ops) return nullptr;
  return dynamic_cast<DeviceMemory*>(pgmap->ops);
}

DevmemP2pOps* devmemP2pOps(const DevPagemap* pgmap) {
  DeviceMemory* dm = devmemOfPgmap(pgmap);
  return dm ? dm->p2pOps() : nullptr;
}

Errno zapVmaPtes(Mm& mm, Va start, Va end) {
  if (start >= end || !start.isAligned(kPageSize) || !end.isAligned(kPageSize)) return Errno::Inval;
  Vma* vma = mm.vmaLookup(start);
  if (!vma || end > vma->vmEnd || !(vma->vmFlags & VM_PFNMAP)) return Errno::Inval;
  MmuNotifierRange range;
  mmuNotifierRangeInit(range, MmuNotifierEvent::Clear, 0, &mm, start, end);
  mm.notifierSubscriptions().invalidateRangeStart(range);
  mm.notifierSubscriptions().invalidateRangeEnd(range);
  return Errno::Ok;
}

}  // namespace hmmsim
