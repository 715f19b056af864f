#pragma once
// The RFC's devmem p2p ops (RFC 4/5, "mm/hmm: add support for peer to peer to HMM device memory",
// lore: 20190129174728.6430-5-jglisse@redhat.com): how an importing device reaches another
// device's private memory in a regular process vma without migrating it to RAM.
//
// The exporter (the driver that owns the device memory) implements DevmemP2pOps and installs it on
// its DeviceMemory (DeviceMemory::setP2pOps). The importer's DMA-map step (hmm/hmm_dma_map.h) calls
// p2pMap for each run of that memory's pages in a range, and p2pUnmap when it is done with them or
// when an mmu-notifier invalidation covers them. The exporter alone decides: it may map the pages
// into a BAR window and return addresses the importer can reach, or decline (0), in which case
// the pages are faulted back to system memory (migrate_to_ram) and mapped as RAM: the RFC's
// fallback.
//
// Differences from the posted patch (all deliberate, see docs/fidelity.md):
//  - the ops receive the run's hmm pfns and page count instead of the whole hmm_range, because
//    the importer unmaps from its own device page table long after the range is gone (on an
//    invalidation); the RFC passed `range` and indexed it itself;
//  - the return value is the number of pages handled from the first one (the RFC's contract);
//    the caller advances by exactly that (the patch advanced one entry too far, `i += ret` plus
//    the loop's `++i`) and passes &pas[i] (the patch passed `daddrs`).
// Timing: none (pure core).

#include <cstdint>

#include "sim/device.h"
#include "sim/errno.h"
#include "sim/strong_types.h"

namespace hmmsim {

class DeviceMemory;
class Mm;
struct DevPagemap;

/// The exporter's half (hmm_devmem_ops.p2p_map / p2p_unmap of RFC 4/5).
/// Contract for both: `hmmPfns[0..npages)` are the entries of consecutive pages from `addr`, as
/// hmmRangeFault reported them (pfn | VALID [| WRITE]); the run may hold pages of other devices
/// after the first ones, so the callee checks each page and stops at the first it does not own.
/// Both may be called with no lock held, from any context (an invalidation included).
class DevmemP2pOps {
 public:
  virtual ~DevmemP2pOps() = default;
  /// Map the leading pages of the run that belong to `devmem` for `importer`; pas[i] receives the
  /// address the importer uses for page i. `write`: the importer will write them (every entry of
  /// the run has HMM_PFN_WRITE; hmmRangeDmaMap cuts runs where that changes).
  /// Returns the number of pages mapped from addr (<= npages); 0 = declined (policy, no window,
  /// p2p not possible between the two devices): the importer falls back to system memory.
  virtual std::uint64_t p2pMap(DeviceMemory& devmem, Device& importer, Va addr, const unsigned long* hmmPfns,
                               std::uint64_t npages, DmaAddr* pas, bool write) = 0;
  /// Undo p2pMap for the leading pages of the run (as mapped earlier for `importer`, with the
  /// addresses it returned in pas). Returns the number of pages unmapped from addr: >= 1 and
  /// <= npages whenever the first page was mapped (the caller asserts that).
  virtual std::uint64_t p2pUnmap(DeviceMemory& devmem, Device& importer, Va addr,
                                 const unsigned long* hmmPfns, std::uint64_t npages, const DmaAddr* pas) = 0;
};

/// The DeviceMemory behind a ZONE_DEVICE page's pgmap (the RFC's page->pgmap->data), or nullptr
/// when the pgmap's ops are not a DeviceMemory (a driver with its own allocator).
DeviceMemory* devmemOfPgmap(const DevPagemap* pgmap);
/// The devmem p2p ops behind a pgmap, or nullptr (no DeviceMemory, or no p2p ops installed).
DevmemP2pOps* devmemP2pOps(const DevPagemap* pgmap);

/// zap_vma_ptes() as an RFC exporter uses it to revoke importers at any time (a BAR window moved
/// or reclaimed, a device reset, hot-unplug): MMU_NOTIFY_CLEAR over [start, end) of its
/// VM_PFNMAP vma, blockable, so every importer's invalidate runs and p2pUnmaps the range before
/// this returns. The vma keeps no CPU PTEs in hmmsim's special vmas, so there is nothing else to
/// zap. Returns Ok; Inval when [start, end) is not page aligned or not inside one VM_PFNMAP vma.
Errno zapVmaPtes(Mm& mm, Va start, Va end);

}  // namespace hmmsim
