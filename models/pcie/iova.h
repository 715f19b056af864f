#pragma once
// IovaDomain: the kernel's IOVA allocator (drivers/iommu/iova.c, struct iova_domain).
//
// Models: a red-black tree of allocated and reserved ranges in units of the granule (4 KiB
// pages) with the kernel's anchor node at the top, allocation top-down from a limit (the
// device's DMA mask), optionally aligned to the size rounded up to a power of two
// (size_aligned, as the DMA layer always asks), reservation of ranges that must never be handed
// out (reserve_iova: host-bridge windows, the MSI range), find and free. The search follows
// __alloc_and_insert_iova_range: it starts below the cached node of the last allocation
// (cached32_node for limits at or below 4 GiB, cached_node above), retries once in the range
// above that node, updates the caches on insert and free as the kernel does, and remembers the
// smallest failed 32-bit size (max32_alloc_size) so hopeless 32-bit requests fail fast. So the
// addresses handed out are the kernel's, not merely "the highest fit". Nodes come from a pool that
// grows and recycles (the kernel's iova kmem_cache), so freeing and re-allocating does not
// allocate memory.
//
// Leaves out: the per-CPU range caches (rcache magazines) that make the kernel hand a freed
// IOVA of the same size back first. Timing: none; pure logic.

#include <cstdint>
#include <deque>
#include <optional>
#include <vector>

#include <boost/intrusive/set.hpp>

#include "sim/errno.h"
#include "sim/strong_types.h"

namespace hmmsim {

/// One allocated or reserved range, inclusive page numbers (struct iova).
struct IovaNode : boost::intrusive::set_base_hook<boost::intrusive::optimize_size<true>> {
  std::uint64_t pfnLo = 0;  ///< first page
  std::uint64_t pfnHi = 0;  ///< last page (inclusive)
  bool reserved = false;    ///< from reserveIova(): never freed by freeIova()
  friend bool operator<(const IovaNode& a, const IovaNode& b) { return a.pfnLo < b.pfnLo; }
};

class IovaDomain {
 public:
  /// init_iova_domain(): `granule` is the page size (power of two, ≤ 4 KiB here = kPageSize);
  /// page numbers below `startPfn` are never allocated (the kernel starts at 1 so IOVA 0,
  /// the classic "no address", is never handed out).
  explicit IovaDomain(std::uint64_t granule = kPageSize, std::uint64_t startPfn = 1);
  ~IovaDomain();
  IovaDomain(const IovaDomain&) = delete;
  IovaDomain& operator=(const IovaDomain&) = delete;

  std::uint64_t granule() const { return granule_; }
  unsigned shift() const { return shift_; }

  /// alloc_iova(): finds the highest free range of `pages` pages ending at or below
  /// `limitPfn` (inclusive) and at or above startPfn. With `sizeAligned`, the range starts on
  /// a multiple of `pages` rounded up to a power of two. Returns the first page number, or
  /// nullopt if no range fits (the kernel returns NULL). `pages` must be > 0.
  std::optional<std::uint64_t> allocIova(std::uint64_t pages, std::uint64_t limitPfn, bool sizeAligned);

  /// reserve_iova(): marks [pfnLo, pfnHi] as never allocatable; overlaps with earlier
  /// reservations merge. Returns Ok; Inval if pfnLo > pfnHi or the range reaches the anchor;
  /// Busy if the range overlaps an allocated (not reserved) range (the kernel would silently
  /// widen that allocation; it only reserves before allocating, so hmmsim refuses instead).
  Errno reserveIova(std::uint64_t pfnLo, std::uint64_t pfnHi);

  /// find_iova(): the allocated or reserved node containing `pfn`, or nullptr.
  const IovaNode* findIova(std::uint64_t pfn) const;

  /// free_iova(): frees the allocated range containing `pfn`. Returns Ok; Inval if no
  /// allocated range contains it (reserved ranges are not freed).
  Errno freeIova(std::uint64_t pfn);

  /// Allocated (not reserved) ranges.
  std::size_t allocatedCount() const { return allocated_; }
  /// All nodes, ascending (for tests and dumps).
  std::vector<IovaNode> ranges() const;

 private:
  using Tree = boost::intrusive::set<IovaNode>;
  IovaNode* newNode(std::uint64_t lo, std::uint64_t hi, bool reserved);
  void deleteNode(IovaNode* n);

  std::uint64_t granule_;
  unsigned shift_;
  std::uint64_t startPfn_;
  std::uint64_t dma32Pfn_;        // first page at or above 4 GiB (dma_32bit_pfn)
  std::uint64_t max32AllocSize_;  // smallest 32-bit-limited size known to fail
  Tree tree_;
  IovaNode anchor_;                   // IOVA_ANCHOR: always the highest node
  IovaNode* cached_ = nullptr;        // cached_node
  IovaNode* cached32_ = nullptr;      // cached32_node
  std::deque<IovaNode> pool_;         // stable addresses; grows only
  std::vector<IovaNode*> freeNodes_;  // recycled nodes
  std::size_t allocated_ = 0;
};

}  // namespace hmmsim
