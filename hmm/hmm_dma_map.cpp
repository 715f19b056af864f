// The importer's DMA-map step (the RFC's hmm_range_dma_map/unmap). See hmm_dma_map.h.
#include "hmm/hmm_dma_map.h"

#include <vector>

#include "hmm/memremap.h"
#include "hmm/p2p.h"
#include "models/cpu_mmu/dev_pagemap.h"
#include "models/cpu_mmu/mm.h"
#include "models/cpu_mmu/mmu_notifier.h"
#include "models/cpu_mmu/phys_mem.h"
#include "sim/assert.h"

namespace hmmsim {

const char* hmmDmaKindName(HmmDmaKind k) {
  switch (k) {
    case HmmDmaKind::None:
      return "none";
    case HmmDmaKind::System:
      return "system";
    case HmmDmaKind::Local:
      return "local";
    case HmmDmaKind::DevmemP2p:
      return "devmem-p2p";
    case HmmDmaKind::VmaP2p:
      return "vma-p2p";
  }
  return "?";
}

HmmDmaStats::HmmDmaStats(const std::string& name)
    : group(name),
      systemMaps(group.counter("system_maps", "pages", "system-memory pages mapped with dma_map_page")),
      localMaps(group.counter("local_maps", "pages", "own device-memory pages (local address)")),
      devmemP2pPages(group.counter("devmem_p2p_pages", "pages", "pages a peer's devmem p2p_map mapped")),
      vmaP2pPages(group.counter("vma_p2p_pages", "pages", "pages a special vma's p2p_map mapped")),
      fallbackPages(group.counter("fallback_pages", "pages",
                                  "declined device pages faulted back to system memory (RFC fallback)")),
      mapErrors(group.counter("map_errors", "calls", "dma_map_page failures")),
      systemUnmaps(group.counter("system_unmaps", "pages", "dma_unmap_page calls")),
      devmemUnmaps(group.counter("devmem_p2p_unmap_pages", "pages", "pages given back to devmem p2p_unmap")),
      vmaUnmaps(group.counter("vma_p2p_unmap_pages", "pages", "pages given back to vm_ops p2p_unmap")) {}

namespace {

DmaDir dirOf(unsigned long hmmPfn) {
  return (hmmPfn & HMM_PFN_WRITE) ? DmaDir::Bidirectional : DmaDir::ToDevice;
}

bool isOwnFrame(const Frame& f, const HmmDmaImporter& imp) {
  return f.pgmap && f.pgmap->owner == imp.owner;
}

}  // namespace

HmmStatus hmmRangeDmaMap(HmmRange& range, const HmmDmaImporter& imp, DmaAddr* daddrs, HmmDmaKind* kinds,
                         HmmDmaStats* stats) {
  HMMSIM_ASSERT(imp.device, "hmmRangeDmaMap without an importer device");
  range.importer = imp.device;
  range.p2pAddrs = daddrs;
  const HmmStatus st = hmmRangeFault(range);
  const std::uint64_t n = (range.end - range.start) >> kPageShift;
  for (std::uint64_t i = 0; i < n; ++i) kinds[i] = HmmDmaKind::None;
  if (st != HmmStatus::Ok) return st;

  PhysMem& pm = range.notifier->mm()->physMem();
  std::vector<std::uint64_t> declined;  // page indexes a devmem declined
  for (std::uint64_t i = 0; i < n;) {
    const unsigned long e = range.hmmPfns[i];
    if (hmmPfnIsP2p(e)) {
      kinds[i++] = HmmDmaKind::VmaP2p;
      if (stats) ++stats->vmaP2pPages;
      continue;
    }
    if (!(e & HMM_PFN_VALID)) {
      daddrs[i++] = DmaAddr(0);
      continue;
    }
    const Pfn pfn = hmmPfnToPfn(e);
    const Frame& f = pm.frame(pfn);
    if (isOwnFrame(f, imp)) {
      HMMSIM_ASSERT(imp.localAddress,
                    "importer " << imp.device->name() << " has own device memory but no localAddress");
      daddrs[i] = imp.localAddress(pfn);
      kinds[i++] = HmmDmaKind::Local;
      if (stats) ++stats->localMaps;
      continue;
    }
    if (isDevicePrivate(f.pgmap)) {
      // A peer's private memory: hmmRangeFault reported it only because its devmem has p2p ops.
      DeviceMemory* dm = devmemOfPgmap(f.pgmap);
      DevmemP2pOps* ops = dm ? dm->p2pOps() : nullptr;
      HMMSIM_ASSERT(ops, "foreign device-private pfn " << pfn << " reported without devmem p2p ops");
      // The run of valid pages of the same pgmap (chunk); the callee checks ownership itself.
      std::uint64_t run = 1;
      // ... and of the same access (`write` below covers the whole run).
      while (i + run < n && (range.hmmPfns[i + run] & HMM_PFN_VALID) &&
             pm.frame(hmmPfnToPfn(range.hmmPfns[i + run])).pgmap == f.pgmap &&
             (range.hmmPfns[i + run] & HMM_PFN_WRITE) == (e & HMM_PFN_WRITE))
        ++run;
      const std::uint64_t done = ops->p2pMap(*dm, *imp.device, range.start + (i << kPageShift),
                                             range.hmmPfns + i, run, daddrs + i, (e & HMM_PFN_WRITE) != 0);
      HMMSIM_ASSERT(done <= run, "devmem p2pMap mapped " << done << " pages of a run of " << run);
      if (done == 0) {
        declined.push_back(i);
        daddrs[i++] = DmaAddr(0);
        continue;
      }
      for (std::uint64_t j = 0; j < done; ++j) kinds[i + j] = HmmDmaKind::DevmemP2p;
      if (stats) stats->devmemP2pPages += done;
      i += done;
      continue;
    }
    // System memory, or a device-coherent page of another device (CPU-addressable).
    DmaAddr a = kDmaMappingError;
    if (imp.dma && imp.iova) {
      // hmm_dma_map_pfn() with a linked range: the page goes at its own offset, always
      // DMA_BIDIRECTIONAL (the device page table's write bit says whether the device may write).
      const std::uint64_t off = range.start + (i << kPageShift) - imp.iovaVa;
      if (imp.dma->dmaIovaLink(*imp.device, *imp.iova, paOf(pfn), off, kPageSize, DmaDir::Bidirectional) ==
          Errno::Ok)
        a = DmaAddr(imp.iova->addr.value() + off);
    } else if (imp.dma) {
      a = imp.dma->dmaMapPage(*imp.device, paOf(pfn), kPageSize, dirOf(e));
    }
    if (!imp.dma || imp.dma->dmaMappingError(*imp.device, a)) {
      if (stats) ++stats->mapErrors;
      hmmRangeDmaUnmap(range, imp, daddrs, kinds, range.start, range.start + (i << kPageShift), stats);
      return HmmStatus::Fault;
    }
    daddrs[i] = a;
    kinds[i++] = HmmDmaKind::System;
    if (stats) ++stats->systemMaps;
  }
  if (declined.empty()) return HmmStatus::Ok;

  // The RFC's fallback: undo everything, fault the declined pages back to system memory
  // (a fault request without an importer migrates a foreign device-private page), start over.
  hmmRangeDmaUnmap(range, imp, daddrs, kinds, range.start, range.end, stats);
  for (const std::uint64_t i : declined) {
    const bool write = (range.hmmPfns[i] & HMM_PFN_WRITE) != 0 ||
                       (((range.defaultFlags | range.pfnFlagsMask) & HMM_PFN_REQ_WRITE) != 0);
    unsigned long pfn = 0;
    HmmRange back;
    back.notifier = range.notifier;
    back.notifierSeq = range.notifier->readBegin();
    back.start = range.start + (i << kPageShift);
    back.end = back.start + kPageSize;
    back.hmmPfns = &pfn;
    back.defaultFlags = HMM_PFN_REQ_FAULT | (write ? HMM_PFN_REQ_WRITE : 0);
    back.devPrivateOwner = imp.owner;
    hmmRangeFault(back);  // Busy/Fault: the caller's retry sees what is left
    if (stats) ++stats->fallbackPages;
  }
  return HmmStatus::Busy;
}

std::uint64_t hmmRangeDmaUnmap(HmmRange& range, const HmmDmaImporter& imp, DmaAddr* daddrs, HmmDmaKind* kinds,
                               Va start, Va end, HmmDmaStats* stats) {
  HMMSIM_ASSERT(range.p2pAddrs == daddrs || range.p2pAddrs == nullptr,
                "hmmRangeDmaUnmap: range.p2pAddrs must be the daddrs array");
  range.p2pAddrs = daddrs;
  range.importer = imp.device;
  PhysMem* pm = range.notifier && range.notifier->mm() ? &range.notifier->mm()->physMem() : nullptr;
  std::uint64_t undone = 0;
  const std::uint64_t first = (start - range.start) >> kPageShift;
  const std::uint64_t last = (end - range.start) >> kPageShift;
  auto clear = [&](std::uint64_t i) {
    kinds[i] = HmmDmaKind::None;
    range.hmmPfns[i] &= HMM_PFN_INOUT_FLAGS;
    daddrs[i] = DmaAddr(0);
    ++undone;
  };
  for (std::uint64_t i = first; i < last;) {
    switch (kinds[i]) {
      case HmmDmaKind::None:
        ++i;
        break;
      case HmmDmaKind::Local:
        clear(i++);
        break;
      case HmmDmaKind::System: {
        const Errno err =
            imp.iova
                ? imp.dma->dmaIovaUnlink(*imp.device, *imp.iova, daddrs[i].value() - imp.iova->addr.value(),
                                         kPageSize, DmaDir::Bidirectional)
                : imp.dma->dmaUnmapPage(*imp.device, daddrs[i], kPageSize, dirOf(range.hmmPfns[i]));
        HMMSIM_ASSERT(err == Errno::Ok, "dma_unmap_page of " << daddrs[i] << " for " << imp.device->name()
                                                             << " failed: " << errnoName(err));
        if (stats) ++stats->systemUnmaps;
        clear(i++);
        break;
      }
      case HmmDmaKind::DevmemP2p: {
        HMMSIM_ASSERT(pm, "hmmRangeDmaUnmap of device memory needs the range's mm");
        DeviceMemory* dm = devmemOfPgmap(pm->frame(hmmPfnToPfn(range.hmmPfns[i])).pgmap);
        HMMSIM_ASSERT(dm && dm->p2pOps(), "devmem p2p entry without devmem p2p ops");
        std::uint64_t run = 1;
        const DevPagemap* pgmap = pm->frame(hmmPfnToPfn(range.hmmPfns[i])).pgmap;
        while (i + run < last && kinds[i + run] == HmmDmaKind::DevmemP2p &&
               pm->frame(hmmPfnToPfn(range.hmmPfns[i + run])).pgmap == pgmap)
          ++run;
        const std::uint64_t done = dm->p2pOps()->p2pUnmap(*dm, *imp.device, range.start + (i << kPageShift),
                                                          range.hmmPfns + i, run, daddrs + i);
        HMMSIM_ASSERT(done >= 1 && done <= run,
                      "devmem p2pUnmap returned " << done << " for a run of " << run);
        if (stats) stats->devmemUnmaps += done;
        for (std::uint64_t j = 0; j < done; ++j) clear(i + j);
        i += done;
        break;
      }
      case HmmDmaKind::VmaP2p: {
        std::uint64_t run = 1;
        while (i + run < last && kinds[i + run] == HmmDmaKind::VmaP2p) ++run;
        const Va a = range.start + (i << kPageShift);
        hmmRangeP2pUnmap(range, a, a + (run << kPageShift));
        if (stats) stats->vmaUnmaps += run;
        for (std::uint64_t j = 0; j < run; ++j) clear(i + j);
        i += run;
        break;
      }
    }
  }
  return undone;
}

}  // namespace hmmsim
