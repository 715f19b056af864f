#pragma once
// struct page / struct folio: the metadata the kernel keeps for every physical 4 KiB frame.
//
// Models: reference count, map count (per subpage, plus the folio's entire map count for PMD/PUD
// mappings), the page flags hmmsim needs, the compound (folio) structure of order-9 THPs and
// order-18 hugetlb pages, the owner (mapping/index), ZONE_DEVICE membership (pgmap,
// zone_device_data) and a generation counter the invariant checker uses to catch accesses to
// frames that were freed (use-after-free, access after migration).
// Leaves out: LRU lists, memcg, NUMA node/zone fields, page_ext, KSM, the PG_* bits hmmsim never
// reads. Timing: none (pure data).
//
// Layout: exactly 64 bytes per frame (the kernel's struct page is 64 bytes too), including the
// owning pointer to the frame's sparse data buffer and the allocator's free-list links, which
// share space with fields that are meaningless while a frame is free (see the private section).
// Frames live in PhysMem; a Frame is never copied.

#include <cstdint>
#include <memory>

#include "sim/strong_types.h"

namespace hmmsim {

/// struct dev_pagemap, defined in models/cpu_mmu/dev_pagemap.h (another part of cpu_mmu).
struct DevPagemap;
class PhysMem;

/// Bytes of one frame's data buffer (sparse: allocated on first write, see PhysMem, which owns
/// the buffers).
struct FrameData {
  alignas(64) std::uint8_t bytes[kPageSize];
};

/// Page flags (PG_* and the kernel's page-type/compound encodings), one bit each.
enum FrameFlag : std::uint32_t {
  kFrameLocked = 1u << 0,          ///< PG_locked: folio lock held (migration, split, zone_device_page_init)
  kFrameUptodate = 1u << 1,        ///< PG_uptodate: contents valid (page cache)
  kFrameDirty = 1u << 2,           ///< PG_dirty: contents differ from backing store
  kFrameReferenced = 1u << 3,      ///< PG_referenced
  kFrameLru = 1u << 4,             ///< PG_lru: on an LRU list (isolation for migration clears it)
  kFrameHead = 1u << 5,            ///< PG_head: first frame of a compound folio (order > 0)
  kFrameTail = 1u << 6,            ///< compound_head bit 0: a tail; PhysMem::compoundHead finds the head
  kFrameReserved = 1u << 7,        ///< PG_reserved: never freed, never refcounted (zero pages)
  kFrameSwapBacked = 1u << 8,      ///< PG_swapbacked: anon or shmem
  kFrameAnon = 1u << 9,            ///< PAGE_MAPPING_ANON: `mapping` is an anon_vma
  kFrameAnonExclusive = 1u << 10,  ///< PG_anon_exclusive: owned by exactly one mm (COW reuse, GUP)
  kFrameZeroPage = 1u << 11,       ///< is_zero_pfn / is_huge_zero_folio
  kFrameZoneDevice = 1u << 12,     ///< is_zone_device_page: frame of a DevPagemap (pgmap != nullptr)
  kFramePageCache = 1u << 13,      ///< `mapping` is a file's address_space (page cache)
  kFrameWriteback = 1u << 14,      ///< PG_writeback
  kFrameBuddy = 1u << 15,          ///< PageBuddy: heads a free block on a buddy list (not the pcp list)
  kFrameHugeTlb = 1u << 16,        ///< folio_test_hugetlb: an order-18 (or 9) hugetlb folio
  kFramePageTable = 1u << 17,      ///< PageTable: backs a page-table page (PageTable with PhysMem)
  kFrameMlocked = 1u << 18,        ///< PG_mlocked
  kFrameOwnerPriv1 = 1u << 19,     ///< PG_owner_priv_1: for the owner's private use
};

/// Called when the refcount of a ZONE_DEVICE folio drops to zero (free_zone_device_folio ->
/// pgmap->ops->folio_free). Registered per device range with PhysMem::addDeviceRange.
///
/// Contract: called from PhysMem::putPage (and splitFolio) after PhysMem has cleared the folio's
/// owner fields (mapping, index, anon flags), bumped its generation and left refcount at 0.
/// The frame keeps pgmap, zoneDeviceData and its data bytes (device memory is real memory). The
/// implementation returns the frame to the driver's allocator; it may call back into PhysMem
/// (e.g. frame(), zoneDevicePageInit() of another frame) but must not free the range.
/// The hmm layer's DevPagemapOps adapts to this (its folioFree(Pfn) has the same meaning).
/// During the call the folio's order is still readable (PhysMem::folioOrder(head)); afterwards
/// PhysMem dissolves a compound device folio into free order-0 frames unless the hook
/// re-initialised it.
class FrameFreeHook {
 public:
  virtual void folioFree(Pfn head) = 0;
  /// folio_split: PhysMem::splitFolio made `tail` its own folio (it was part of `head`'s).
  /// Called once per new folio after the split, before any freed subpage is handed back.
  /// Default: nothing (tails inherit the head's zoneDeviceData).
  virtual void folioSplit(Pfn head, Pfn tail) {
    (void)head;
    (void)tail;
  }

  virtual ~FrameFreeHook() = default;
};

/// struct page (and, on a head frame, struct folio).
///
/// Counts follow the kernel's *logical* values, 0-based: refcount 0 = free, mapcount 0 = not
/// mapped (the kernel stores _mapcount as -1-based; page_mapcount() returns what is stored here).
/// On a compound folio, references are taken on the head only (folio_get); mapcount is per
/// subpage for PTE mappings, and entireMapcount (head only) counts PMD/PUD mappings of the whole
/// folio (folio->_entire_mapcount).
struct Frame {
  Frame() : generation_(0), flags_(0), order_(0) {}
  Frame(const Frame&) = delete;
  Frame& operator=(const Frame&) = delete;

  /// page_ref_count (head frames; tails keep 0). Changed through PhysMem::getPage/putPage/
  /// folioRefAdd so that reaching 0 frees the folio.
  std::int32_t refcount() const { return refcount_; }

  /// folio->_entire_mapcount (head of a compound folio only): PMD/PUD mappings of the whole
  /// folio. Maintained by the mm. Allocator-private (free-list link) while the frame is free.
  std::int32_t entireMapcount() const { return static_cast<std::int32_t>(aux_); }
  void setEntireMapcount(std::int32_t v) { aux_ = static_cast<std::uint32_t>(v); }

  /// Changes every time the frame's folio is allocated or freed (values are unique over the
  /// lifetime of a PhysMem, never reused). Tails: use PhysMem::generationOf(pfn), which reads
  /// the head while the frame belongs to a folio.
  std::uint64_t generation() const { return generation_; }

  std::uint32_t flags() const { return static_cast<std::uint32_t>(flags_); }
  bool test(FrameFlag f) const { return (flags_ & f) != 0; }
  void set(FrameFlag f) { flags_ |= f; }
  void clear(FrameFlag f) { flags_ &= ~static_cast<std::uint64_t>(f); }

  /// folio_order: 0..18 on a head (or order-0 frame); 0 on tails; buddy order while free.
  unsigned order() const { return static_cast<unsigned>(order_); }

  bool isHead() const { return test(kFrameHead); }
  bool isTail() const { return test(kFrameTail); }
  bool isCompound() const { return (flags_ & (kFrameHead | kFrameTail)) != 0; }
  bool isAnon() const { return test(kFrameAnon); }
  bool isLocked() const { return test(kFrameLocked); }
  bool isDirty() const { return test(kFrameDirty); }
  bool isReserved() const { return test(kFrameReserved); }
  bool isZeroPage() const { return test(kFrameZeroPage); }
  bool isZoneDevice() const { return test(kFrameZoneDevice); }
  bool isBuddy() const { return test(kFrameBuddy); }
  /// folio_trylock (head frames): takes kFrameLocked if free; false if already locked.
  bool trylock() {
    if (test(kFrameLocked)) return false;
    set(kFrameLocked);
    return true;
  }
  /// folio_unlock.
  void unlock() { clear(kFrameLocked); }
  /// Data buffer present (the frame was written and not zeroed since).
  bool isTouched() const { return data_ != nullptr; }

  // ---- fields (declared in layout order: 64 bytes in total) ----

  /// page_mapcount: PTE mappings of this frame (0-based). Maintained by the mm (rmap), not by
  /// PhysMem; splitFolio keeps each subpage's value.
  std::int32_t mapcount = 0;

 private:
  friend class PhysMem;
  std::int32_t refcount_ = 0;
  std::uint64_t generation_ : 39;  // 5.5e11 distinct values
  std::uint64_t flags_ : 20;
  std::uint64_t order_ : 5;

 public:
  /// ZONE_DEVICE: the frame's pgmap (page_pgmap); nullptr for system RAM.
  DevPagemap* pgmap = nullptr;
  /// page->mapping: anon_vma (kFrameAnon) or address_space (kFramePageCache) of the owner;
  /// opaque here. Head frames only; cleared when the folio is freed.
  void* mapping = nullptr;
  /// page->index: page offset in the owner (file page index, or anon linear page index).
  std::uint64_t index = 0;
  /// page->zone_device_data: private to the device driver (ZONE_DEVICE frames).
  void* zoneDeviceData = nullptr;

 private:
  FrameData* data_ = nullptr;  // owned by PhysMem's data pool
  // Allocator/compound bookkeeping (PhysMem only):
  //   free buddy head: link_ = next, aux_ = prev (frame indices relative to PhysMem's base pfn,
  //                    PhysMem::kNoLink terminates);
  //   compound tail:   link_ = head (relative index);
  //   allocated head:  aux_ = entire mapcount.
  std::uint32_t link_ = 0;
  std::uint32_t aux_ = 0;
};

static_assert(sizeof(Frame) == 64, "Frame must stay 64 bytes (struct page budget)");

}  // namespace hmmsim
