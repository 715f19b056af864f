// Devmem p2p ops lookup. See p2p.h.
#include "hmm/p2p.h"

#include "hmm/memremap.h"
#include "models/cpu_mmu/dev_pagemap.h"

namespace hmmsim {

DeviceMemory* devmemOfPgmap(const DevPagemap* pgmap) {
  if (!pgmap || !pgmap->ops) return nullptr;
  return dynamic_cast<DeviceMemory*>(pgmap->ops);
}

DevmemP2pOps* devmemP2pOps(const DevPagemap* pgmap) {
  DeviceMemory* dm = devmemOfPgmap(pgmap);
  return dm ? dm->p2pOps() : nullptr;
}

}  // namespace hmmsim
