#pragma once
// hmm_range_fault: snapshot (and optionally fault in) the CPU page table of a range for a device
// mirror (include/linux/hmm.h, mm/hmm.c, Documentation/mm/hmm.rst; the modern interface).
//
// Invariant (the kernel's, stated in hmm.rst): the hmm_pfns array is only meaningful if
// mmu_interval_read_retry(range.notifier, range.notifierSeq) is false under the driver's update
// lock. hmmRangeFault itself only checks mmu_interval_check_retry before every walk, so -EBUSY
// means "start over", not an error; the driver retries (see hmm/mirror.h for the pattern).
//
// Models: the vma rules (VM_IO/VM_PFNMAP or no VM_READ: ERROR or -EFAULT; VM_MIXEDMAP allowed as in
// current mainline), holes, pte/pmd/pud leaves, hugetlb, owner-matched device-private entries
// (reported, never faulted; PTE and PMD level), foreign device-private entries (faulted, which
// calls migrate_to_ram), the zero page as a normal read-only pfn, special ptes -> ERROR, migration
// entries (wait, then restart internally), internal faults through handleMmFault restarting the
// walk from `last`, REQ_WRITE on a read-only vma -> -EPERM, the order field of huge leaves.
// With an importer (the 2019 RFC's _hmm_range_fault(range, block, device, pas), see HmmRange):
// special device vmas mapped through their p2pMap (HMM_PFN_P2P), and foreign device-private pages
// whose device memory has devmem p2p ops reported instead of migrated (hmm/hmm_dma_map.h decides).
// Leaves out: the sticky HMM_PFN_DMA_MAPPED/P2PDMA bits are reserved and preserved on output like
// the kernel's HMM_PFN_INOUT_FLAGS, but nothing here sets them; hmm_range_fault_unlockable.
// Timing: none (pure core). A SystemC shell charges a walk per page and the faults it took
// (HmmStats counts both).

#include <cstdint>
#include <string>

#include "sim/device.h"
#include "sim/errno.h"
#include "sim/stats.h"
#include "sim/strong_types.h"

namespace hmmsim {

class MmuIntervalNotifier;

// ---- enum hmm_pfn_flags (include/linux/hmm.h, BITS_PER_LONG = 64; current mainline layout) ----
/// Output: the entry is valid and at least readable (a device-private pfn when the owner matched).
inline constexpr unsigned long HMM_PFN_VALID = 1UL << 63;
/// Output: the CPU mapping is writable.
inline constexpr unsigned long HMM_PFN_WRITE = 1UL << 62;
/// Output: the entry cannot be mirrored (no vma, VM_IO/VM_PFNMAP, no VM_READ, special pte,
/// poisoned or an unsupported swap-style entry).
inline constexpr unsigned long HMM_PFN_ERROR = 1UL << 61;
/// Sticky in/out bits of newer kernels (dma-mapping helpers, p2pdma). Reserved: preserved on
/// output, never set by hmmRangeFault.
inline constexpr unsigned long HMM_PFN_DMA_MAPPED = 1UL << 60;
inline constexpr unsigned long HMM_PFN_P2PDMA = 1UL << 59;
inline constexpr unsigned long HMM_PFN_P2PDMA_BUS = 1UL << 58;
/// The bits hmm_pfns_fill/hmm_vma_handle_* keep from the input (HMM_PFN_INOUT_FLAGS).
inline constexpr unsigned long HMM_PFN_INOUT_FLAGS = HMM_PFN_DMA_MAPPED | HMM_PFN_P2PDMA | HMM_PFN_P2PDMA_BUS;
/// RFC 5/5's HMM_PFN_P2P ("dma address is valid"): the entry belongs to a special device vma
/// whose p2pMap mapped it for the range's importer; the address is in range.p2pAddrs, there is no
/// pfn (hmm_pfn_to_page() is NULL) and HMM_PFN_VALID is not set, so a caller unaware of p2p skips
/// it. With HMM_PFN_WRITE when it was mapped for writing. Output only.
/// The modern layout has no free bit above the order field; hmmsim takes the highest pfn bit
/// (bit 52): modelled physical addresses are < 2^52, so no real pfn reaches it.
inline constexpr unsigned long HMM_PFN_P2P = 1UL << 52;
/// Map order: bits [HMM_PFN_ORDER_SHIFT, +5) hold log2(pages) of the CPU leaf that maps the page.
inline constexpr unsigned HMM_PFN_ORDER_SHIFT = 64 - 11;
/// Every flag bit (what hmmPfnToPfn masks off).
inline constexpr unsigned long HMM_PFN_FLAGS = ~((1UL << HMM_PFN_ORDER_SHIFT) - 1);
/// Input: fault the page in if it is not valid (same bit as VALID).
inline constexpr unsigned long HMM_PFN_REQ_FAULT = HMM_PFN_VALID;
/// Input: fault the page in writable (same bit as WRITE; needs REQ_FAULT).
inline constexpr unsigned long HMM_PFN_REQ_WRITE = HMM_PFN_WRITE;

/// hmm_pfn_to_pfn(): the pfn of a VALID entry.
inline Pfn hmmPfnToPfn(unsigned long hmmPfn) {
  return Pfn(hmmPfn & ~HMM_PFN_FLAGS);
}
/// True for an entry a special vma's p2pMap filled (RFC 5/5).
inline bool hmmPfnIsP2p(unsigned long hmmPfn) {
  return (hmmPfn & (HMM_PFN_P2P | HMM_PFN_VALID | HMM_PFN_ERROR)) == HMM_PFN_P2P;
}
/// hmm_pfn_to_map_order(): log2 of the number of pages the CPU leaf maps (0 = 4 KiB pte,
/// 9 = PMD, 18 = PUD). Drivers may map a larger device page when it is > 0.
inline unsigned hmmPfnToMapOrder(unsigned long hmmPfn) {
  return unsigned((hmmPfn >> HMM_PFN_ORDER_SHIFT) & 0x1F);
}
/// hmm_pfn_flags_order(): the order field for `order`.
inline unsigned long hmmPfnFlagsOrder(unsigned order) {
  return static_cast<unsigned long>(order) << HMM_PFN_ORDER_SHIFT;
}

/// struct hmm_range: one request. hmmPfns has (end - start) / 4 KiB entries; each is read as a
/// request ((in & pfnFlagsMask) | defaultFlags) and overwritten with the result.
struct HmmRange {
  MmuIntervalNotifier* notifier = nullptr;  ///< covers [start, end); its mm is the one walked
  std::uint64_t notifierSeq = 0;            ///< from mmu_interval_read_begin(notifier)
  Va start;                                 ///< first byte (page aligned)
  Va end;                                   ///< one past the last byte (exclusive, page aligned)
  unsigned long* hmmPfns = nullptr;         ///< in: per-page requests; out: pfn | flags | order
  unsigned long defaultFlags = 0;           ///< request bits applied to every page
  unsigned long pfnFlagsMask = 0;           ///< which per-page request bits of hmmPfns count
  const void* devPrivateOwner = nullptr;    ///< device-private pages of this owner are reported

  // ---- RFC 4/5 and 5/5: the importer (the `device` and `pas` the RFC's _hmm_range_fault took) --
  /// The device that will access the range (the RFC's importer), or nullptr (plain mirroring,
  /// the only mode before the RFC). With an importer:
  ///  - VM_IO/VM_PFNMAP/VM_MIXEDMAP vmas whose vm_ops have p2pMap are mapped through it when
  ///    p2pAddrs is set too (entries HMM_PFN_P2P, addresses in p2pAddrs);
  ///  - device-private pages of another owner whose device memory has devmem p2p ops
  ///    (hmm/p2p.h) are reported like own pages (pfn | VALID [| WRITE]) instead of being faulted
  ///    back to RAM, as long as that satisfies the request (a write request on a read-only entry
  ///    still faults): the DMA-map step then asks that devmem's p2pMap, and faults the pages
  ///    back (without an importer) only if it declines.
  Device* importer = nullptr;
  /// One device address per page (same indexing as hmmPfns), filled for HMM_PFN_P2P entries
  /// only; nullptr = no special-vma p2p.
  DmaAddr* p2pAddrs = nullptr;
  /// Out: the exporter's refusal when hmmRangeFault returned Fault because a p2pMap refused
  /// (Errno::Ok otherwise).
  Errno p2pError = Errno::Ok;
};

/// hmm_range_fault()'s result (0 / -errno).
enum class HmmStatus {
  Ok,     ///< 0: every entry of hmmPfns is filled (still subject to mmu_interval_read_retry)
  Busy,   ///< -EBUSY: the range was invalidated (mmu_interval_check_retry): call readBegin and retry
  Fault,  ///< -EFAULT: a fault was requested for a hole, a VM_IO/VM_PFNMAP/no-VM_READ vma or an
          ///< unsupported entry, or handle_mm_fault failed (VM_FAULT_ERROR)
  Perm,   ///< -EPERM: HMM_PFN_REQ_WRITE for a vma without VM_WRITE
  NoMem,  ///< -ENOMEM: out of memory in the walk itself (never produced by this model: page-table
          ///< walks here do not allocate, and a fault's VM_FAULT_OOM becomes -EFAULT as in the kernel)
  Inval,  ///< -EINVAL: bad request (no notifier or mm, unaligned or empty range, no pfn array)
};

const char* hmmStatusName(HmmStatus s);
/// The Errno the kernel function would return (Ok, Busy, Fault, Perm, NoMem, Inval).
Errno hmmStatusToErrno(HmmStatus s);

/// Counters of hmm_range_fault work. One group per user (a mirror, a device); optional.
struct HmmStats {
  explicit HmmStats(const std::string& name);
  StatsGroup group;
  Counter& calls;           ///< "range_fault_calls": hmmRangeFault calls
  Counter& pagesWalked;     ///< "pages_walked": entries written (walk restarts count again)
  Counter& faults;          ///< "faults": handleMmFault calls made on the caller's behalf
  Counter& busyRestarts;    ///< "busy_restarts": internal restarts (after a fault or a migration wait)
  Counter& busyReturns;     ///< "busy_returns": -EBUSY returned (check_retry saw an invalidation)
  Counter& migrationWaits;  ///< "migration_waits": waits on a migration entry
  Counter& errors;          ///< "errors": -EFAULT/-EPERM/-EINVAL returns
  Counter& p2pMaps;         ///< "p2p_maps": special-vma p2pMap calls that succeeded
  Counter& p2pRefused;      ///< "p2p_refused": special-vma p2pMap calls the exporter refused
  Counter& p2pUndone;       ///< "p2p_undone": p2pUnmap calls undoing this call's maps on failure
};

/// hmm_range_fault(): fill range.hmmPfns for [range.start, range.end) of the notifier's mm, faulting
/// pages in where a request asks for it. The caller holds the mmap lock (read).
/// Per entry, on Ok: pfn | HMM_PFN_VALID [| HMM_PFN_WRITE] | order for a mapped page; 0 for an
/// unpopulated page whose fault was not requested (also a migration entry or a foreign
/// device-private page without a request); HMM_PFN_ERROR for holes, VM_IO/VM_PFNMAP/no-VM_READ vmas,
/// special ptes (not the zero page) and unsupported non-present entries. Sticky INOUT bits are kept.
/// With range.importer and range.p2pAddrs (RFC 5/5): a VM_IO/VM_PFNMAP/VM_MIXEDMAP vma whose
/// vm_ops provide p2pMap is mapped for the importer over [max(start, vm_start), min(end, vm_end))
/// with write = "a write fault was requested for some page of it"; its entries become
/// HMM_PFN_P2P [| HMM_PFN_WRITE] and p2pAddrs gets the addresses. A refusal fills the vma's
/// entries with HMM_PFN_ERROR and returns Fault (p2pError = the exporter's Errno).
/// On any return other than Ok, every p2pMap this call made is undone (p2pUnmap) first, so a
/// retry after Busy cannot leak exporter mappings (the posted patch leaked them); on Ok the caller
/// owns them and must p2pUnmap them (hmmRangeDmaUnmap, or on invalidation).
/// Returns (see HmmStatus): Ok, Busy, Fault, Perm, Inval. `stats` (optional) is bumped.
HmmStatus hmmRangeFault(HmmRange& range, HmmStats* stats = nullptr);

/// p2pUnmap the HMM_PFN_P2P entries of [start, end) (a sub-range of `range`, page aligned), vma
/// by vma, with the addresses in range.p2pAddrs; the entries become 0. The vmas must still exist
/// (the importer calls this from its invalidate callback, before the mm removes them). Returns
/// Ok, or the first error an exporter returned (the remaining vmas are still unmapped).
Errno hmmRangeP2pUnmap(HmmRange& range, Va start, Va end);

}  // namespace hmmsim
