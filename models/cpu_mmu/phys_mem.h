#pragma once
// PhysMem: the machine's physical memory as the kernel's page allocator and memmap see it.
//
// Models:
//  - system RAM [ramBase, ramBase + ramSize) managed by a buddy allocator (mm/page_alloc.c) with
//    orders 0..18: order 0 = 4 KiB page, 9 = 2 MiB THP folio, 18 = 1 GiB hugetlb folio. Blocks
//    are split and merged with their buddies like __rmqueue_smallest/__free_one_page; free lists
//    are LIFO per order, so allocation is a deterministic function of the call sequence.
//  - struct page metadata (Frame) for every frame, created lazily per 2 MiB chunk (512 frames,
//    32 KiB) on first use: a 64 GiB machine starts in about a millisecond with well under 1 MiB.
//  - folio reference counting: getPage/putPage act on the folio head; the last put frees the
//    folio (RAM) or hands it to the device driver's FrameFreeHook (ZONE_DEVICE).
//  - THP split (split_folio): one order-9 folio into 512 order-0 folios, keeping data, flags,
//    owner, mapcounts, and distributing references like __split_huge_page.
//  - the shared zero page (ZERO_PAGE(0), a reserved frame at the start of RAM) and the huge zero
//    folio (allocated on first use like get_huge_zero_folio, never freed).
//  - ZONE_DEVICE ranges (memremap_pages): frames with metadata and pgmap placed after RAM or at a
//    physical address the caller gives (a BAR address from enumeration: addDeviceRangeAt), never
//    handed out by allocFrame; the device driver allocates them (zoneDevicePageInit). A device
//    range costs one 24 B chunk descriptor per 2 MiB until its frames are used.
//  - sparse frame contents: a frame gets a 4 KiB buffer on first write; untouched frames read as
//    zeros. Device frames hold real bytes too.
// Host cost: 64 B of metadata per frame of a used 2 MiB chunk, 24 B per 2 MiB of address space,
// and 4 KiB per touched frame from a recycled pool of 2 MiB slabs (bench_phys_mem measures it).
//  - the per-cpu page list of order-0 pages (one list: the simulator is one thread): freed pages
//    are reused hot (LIFO) before the buddy lists, refilled/trimmed in batches of 63 with a high
//    mark of 378, and drained back into the buddy lists when an allocation fails. Pages on it
//    count as free (freePages()).
// Leaves out: zones, NUMA nodes, migratetypes and pageblock stealing, per-cpu lists of orders > 0,
// watermarks and reclaim (an empty free list is an immediate allocation failure), memory
// hotplug of RAM, the huge zero folio shrinker, hugetlb pools (order-18 blocks come straight
// from the buddy allocator, as alloc_contig_pages/CMA would give them).
// Deliberate difference: freeing a folio drops its data, so a reallocated frame reads as zeros;
// the kernel leaves stale bytes, but every kernel consumer clears or fills a page before use,
// and the checker catches anyone who reads a freed frame.
// Timing: none (pure core); DRAM timing is the SystemC shell's business.

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "models/cpu_mmu/frame.h"
#include "sim/byte_store.h"
#include "sim/errno.h"
#include "sim/stats.h"
#include "sim/strong_types.h"

namespace hmmsim {

/// Runtime parameters of PhysMem (validated: see check()).
struct PhysMemParams {
  /// Physical address of the first byte of system RAM. Unit: bytes. Default: 0.
  /// Must be 2 MiB aligned.
  Pa ramBase{0};
  /// Size of system RAM. Unit: bytes. Default: 4 GiB. A multiple of 2 MiB, at least 2 MiB,
  /// at most 16 TiB.
  std::uint64_t ramSize = 4ull << 30;

  /// "" when the parameters are valid; otherwise what is wrong, naming the parameter.
  std::string check() const;
};

/// The ByteStore addresses are physical addresses (read/write below).
class PhysMem : public ByteStore {
 public:
  static constexpr unsigned kMaxOrder = 18;   ///< largest folio: 1 GiB (PUD)
  static constexpr unsigned kPmdOrder = 9;    ///< HPAGE_PMD_ORDER: 2 MiB THP
  static constexpr unsigned kPudOrder = 18;   ///< PUD-sized hugetlb page
  static constexpr unsigned kChunkShift = 9;  ///< metadata is created per 2^9 frames
  static constexpr std::uint64_t kChunkFrames = 1ull << kChunkShift;

  /// `p` must satisfy p.check() == "" (HMMSIM_ASSERT otherwise: validation belongs to the
  /// config layer). `statsName` is the stats group name, e.g. "top.phys_mem".
  explicit PhysMem(const PhysMemParams& p, const std::string& statsName = "phys_mem");
  ~PhysMem() override;
  PhysMem(const PhysMem&) = delete;
  PhysMem& operator=(const PhysMem&) = delete;

  // ---------------------------------------------------------------------------------------
  // Allocation and references (system RAM)
  // ---------------------------------------------------------------------------------------

  /// alloc_pages(order): a folio of 2^order frames aligned to its size, refcount 1, mapcount 0,
  /// no flags except kFrameHead/kFrameTail for order > 0, fresh generation, reads as zeros.
  /// Returns the head pfn, or std::nullopt when no free block of that order exists (nothing
  /// changes then). `order` must be <= kMaxOrder.
  std::optional<Pfn> allocFrame(unsigned order = 0);

  /// get_page/folio_get: one more reference on the folio containing `pfn` (a tail resolves to
  /// its head). The folio must be live (refcount > 0); reserved frames (zero pages) ignore it.
  void getPage(Pfn pfn);
  /// put_page/folio_put: drop one reference. Returns true when it was the last one and the
  /// folio was freed: RAM goes back to the buddy allocator (generation changes, data dropped);
  /// a ZONE_DEVICE folio is handed to its range's FrameFreeHook. Reserved frames: no-op, false.
  bool putPage(Pfn pfn);
  /// folio_ref_add: `n` (>= 0) more references on the folio containing `pfn`.
  void folioRefAdd(Pfn pfn, std::int32_t n);
  /// folio_put_refs: drop `n` (>= 0) references; returns true if that freed the folio.
  bool folioPutRefs(Pfn pfn, std::int32_t n);
  /// folioPutRefs for a caller that already holds the folio's head frame `h` (that of `head`):
  /// no second metadata lookup. Same result.
  bool folioPutRefs(Frame& h, Pfn head, std::int32_t n);

  /// page_folio/compound_head: the head pfn of the folio containing `pfn` (itself if order 0
  /// or not in a folio). Does not create metadata.
  Pfn compoundHead(Pfn pfn) const;
  /// folio_order of the folio containing `pfn` (0 for free or order-0 frames).
  unsigned folioOrder(Pfn pfn) const;
  /// folio_nr_pages of the folio containing `pfn`.
  std::uint64_t folioNrPages(Pfn pfn) const { return 1ull << folioOrder(pfn); }
  /// folio_mapcount as the kernel counts it: the folio's PMD/PUD mappings
  /// (entireMapcount, once each) plus every subpage's PTE mapcount. Does not create metadata.
  std::int64_t folioMapcount(Pfn pfn) const;
  /// Generation of the folio containing `pfn`: changes whenever that folio is freed or a new
  /// folio is allocated over the frame. The checker records it at map time and compares later.
  std::uint64_t generationOf(Pfn pfn) const;
  /// Changes whenever any folio's generation may have: generationOf answers the same for every
  /// frame while it is unchanged.
  std::uint64_t generationStamp() const { return nextGeneration_; }

  /// split_folio: split the order-9 folio headed by `head` into 512 order-0 folios.
  /// Preconditions (kernel: folio locked, unmapped from PMDs, can_split_folio): the folio is an
  /// anon/file THP or a device folio of order 9 with entireMapcount() == 0 (the mm split every
  /// PMD mapping first, leaving per-subpage PTE mapcounts). The folio's refcount must equal the
  /// sum of its subpage mapcounts plus `callerRefs` (the caller's own references, kept on the
  /// head) plus 512 * `perPageRefs` (references every subpage keeps besides its mappings: 1 for
  /// a page-cache or swap-cache folio, whose cache holds one reference per page); anything more
  /// is an extra pin.
  /// Effect: every subpage becomes an order-0 folio with the head's flags (minus compound bits;
  /// tails also lose kFrameLocked: split_huge_page unlocks them), mapping, pgmap, index =
  /// head.index + i, its own data and mapcount, the head's generation (same memory, same
  /// mappings), and refcount = its mapcount + perPageRefs (+ callerRefs for the head). Subpages
  /// left with refcount 0 (unmapped parts of a partially unmapped THP) are freed at once, as
  /// __split_huge_page's final folio_put does. ZONE_DEVICE folios: the range's hook gets
  /// folioSplit(head, tail) for every tail first.
  /// Returns:
  ///   Ok     split done;
  ///   Inval  `head` is not the head of a live order-9 folio (order 0, hugetlb, free, reserved);
  ///   Busy   still PMD-mapped (entireMapcount != 0) or extra references (GUP pins): nothing
  ///          changed, as can_split_folio failing makes split_huge_page return -EAGAIN/-EBUSY.
  Errno splitFolio(Pfn head, std::int32_t callerRefs = 1, std::int32_t perPageRefs = 0);

  /// struct page of `pfn` (RAM or a live device range; HMMSIM_ASSERT otherwise). Creates the
  /// metadata chunk on first use. The reference stays valid until the frame's device range is
  /// removed (RAM frames: for the PhysMem's lifetime).
  Frame& frame(Pfn pfn);
  /// The metadata if it exists, without creating it; nullptr for untouched chunks (whose frames
  /// are free or untouched tails of a large folio) and for invalid pfns.
  const Frame* peekFrame(Pfn pfn) const;

  /// ZERO_PAGE(0): a reserved RAM frame of zeros; never freed, never written (writing it is a
  /// simulator bug), getPage/putPage on it are no-ops.
  Pfn zeroPfn() const { return zeroPfn_; }
  bool isZeroPfn(Pfn pfn) const { return pfn == zeroPfn_; }
  /// The huge zero folio (order 9, reserved, never freed), allocated on first call like
  /// mm_get_huge_zero_folio; std::nullopt if no 2 MiB block is free then (the kernel falls back
  /// to the small zero page).
  std::optional<Pfn> hugeZeroPfn();
  /// is_huge_zero_pfn: true for any frame of the huge zero folio once it exists.
  bool isHugeZeroPfn(Pfn pfn) const;

  // ---------------------------------------------------------------------------------------
  // Address ranges and ZONE_DEVICE
  // ---------------------------------------------------------------------------------------

  /// pfn_valid: RAM or a live device range.
  bool pfnValid(Pfn pfn) const;
  bool isRam(Pfn pfn) const { return pfn >= ramFirst_ && pfn < ramEnd_; }
  bool isDevicePfn(Pfn pfn) const;
  Pfn ramFirstPfn() const { return ramFirst_; }
  Pfn ramEndPfn() const { return ramEnd_; }
  std::uint64_t ramPages() const { return ramEnd_ - ramFirst_; }
  /// Free RAM frames (nr_free_pages).
  std::uint64_t freePages() const { return freePages_; }

  /// Keep `owner` alive as long as this PhysMem. For objects a frame's `mapping` may point at
  /// after their users are gone (an AnonVma whose vmas were all unmapped while a page of it is
  /// still pinned or held by a driver): dereferencing such a mapping stays safe, as the kernel's
  /// type-stable anon_vma cache makes it. Deterministic; costs one pointer per owner.
  void retainOwner(std::shared_ptr<const void> owner) { retainedOwners_.push_back(std::move(owner)); }
  /// Drop the owners retainOwner() kept that nothing else holds. Only for a caller that knows no
  /// frame points at them any more (every frame its objects used is free again: a machine reused
  /// for a new workload once the old one is gone, as the trace replay's reset does).
  void releaseRetainedOwners();

  /// memremap_pages' memmap part: create `npages` ZONE_DEVICE frames for `pgmap` at the lowest
  /// 1 GiB-aligned physical address above RAM and every live device range that has room. Their
  /// metadata has pgmap set, kFrameZoneDevice, refcount 0 (free, owned by the driver); allocFrame
  /// never returns them. `hook` (non-owning, may be nullptr for types whose frames are never
  /// refcounted to zero by the mm) is called when a folio's refcount drops to zero.
  /// Returns the first pfn. npages must be > 0.
  Pfn addDeviceRange(DevPagemap* pgmap, std::uint64_t npages, FrameFreeHook* hook);
  /// memremap_pages of a range the caller places (pgmap->range set from a BAR resource, as
  /// pci_p2pdma_add_resource and device-coherent drivers do): `npages` ZONE_DEVICE frames at
  /// physical address `base`, e.g. the BAR address enumeration assigned. Costs no frame metadata
  /// or data until a frame is used (a 16 GiB range is 8192 chunk descriptors: bench_phys_mem).
  /// Returns Ok; Inval (nothing changes) when checkDeviceRangeAt(base, npages) is not "".
  Errno addDeviceRangeAt(Pa base, std::uint64_t npages, DevPagemap* pgmap, FrameFreeHook* hook);
  /// "" when addDeviceRangeAt(base, npages) would succeed; otherwise why not: npages == 0, base or
  /// size not a multiple of 2 MiB (PhysMem keeps one kind of frame per 2 MiB chunk), below
  /// ram_base or beyond 16 TiB of frames above it, overlapping RAM or a live device range.
  std::string checkDeviceRangeAt(Pa base, std::uint64_t npages) const;
  /// memunmap_pages' memmap part: remove the device range starting at `first`.
  /// Returns Ok; Inval if no range starts at `first`; Busy if a frame of it still has a
  /// reference (memunmap_pages would wait for pgmap->ref) — nothing changes then.
  Errno removeDeviceRange(Pfn first);
  /// Number of frames of the live device range starting at `first` (0 if none).
  std::uint64_t deviceRangePages(Pfn first) const;

  /// zone_device_page_init (+ zone_device_folio_init for order > 0): the driver hands out free
  /// device frame(s) starting at `pfn`: refcount 1, kFrameLocked (the kernel returns it locked),
  /// fresh generation, compound head/tails for order > 0. `pfn` must be a free frame of a device
  /// range, aligned to 2^order, with the whole folio inside the range.
  void zoneDevicePageInit(Pfn pfn, unsigned order = 0);

  // ---------------------------------------------------------------------------------------
  // Contents (sparse)
  // ---------------------------------------------------------------------------------------

  /// Copy `len` bytes at `pa` into `dst`; may cross frames; untouched frames read as zeros.
  /// Every frame in the span must be valid (pfnValid), HMMSIM_ASSERT otherwise.
  void read(Pa pa, void* dst, std::size_t len) const;
  /// Copy `len` bytes from `src` to `pa`; may cross frames; allocates data buffers on first
  /// write. Writing a zero page is a simulator bug.
  void write(Pa pa, const void* src, std::size_t len);
  /// ByteStore: read/write at physical address `addr`.
  void readBytes(std::uint64_t addr, void* dst, std::size_t len) const override { read(Pa(addr), dst, len); }
  void writeBytes(std::uint64_t addr, const void* src, std::size_t len) override {
    write(Pa(addr), src, len);
  }
  /// copy_highpage: dst := src. Lazy: an untouched source leaves the destination untouched;
  /// a touched one is shared copy-on-write (no bytes move until either frame is written through
  /// write() or frameDataForWrite(), which give that frame its own copy). Observable contents
  /// are exactly those of an eager copy.
  void copyFrame(Pfn dst, Pfn src);
  /// clear_highpage: contents become zeros (the buffer is dropped).
  void zeroFrame(Pfn pfn);
  /// The frame has a data buffer.
  bool isTouched(Pfn pfn) const;
  /// Direct access for bulk movers (DMA engines): the 4 KiB buffer of `pfn` if touched, else
  /// nullptr (meaning zeros). Read-only: the buffer may be shared with frames copied from or to
  /// this one. Valid until the frame is written, zeroed or freed.
  const std::uint8_t* frameData(Pfn pfn) const;
  /// The 4 KiB buffer of `pfn` for writing, created (zero-filled) if absent, un-shared if it
  /// was shared by copyFrame. Valid until the next copyFrame into, zeroFrame or free of `pfn`.
  std::uint8_t* frameDataForWrite(Pfn pfn);

  // ---------------------------------------------------------------------------------------
  // Accounting
  // ---------------------------------------------------------------------------------------

  /// Host bytes spent on frame metadata: created chunks (64 B per frame) plus the per-chunk
  /// table; excludes the 4 KiB data buffers (dataPages() * 4096).
  std::uint64_t metadataBytes() const;
  /// Frames that currently have data (a buffer shared by copyFrame counts once per frame).
  std::uint64_t dataPages() const { return dataPages_; }
  /// Host bytes reserved for data buffers (in use or recycled): the pool's high-water mark.
  std::uint64_t dataHostBytes() const {
    std::uint64_t n = 0;
    for (const DataSlab& s : dataSlabs_) n += s.bytes;
    return n;
  }
  StatsGroup& stats() { return stats_; }
  const StatsGroup& stats() const { return stats_; }

 private:
  static constexpr std::uint32_t kNoLink = 0xffffffffu;
  enum class ChunkKind : std::uint8_t { None, Ram, Device };
  // Per 2 MiB chunk (pageblock): its metadata and the chunk-level buddy state (orders >= 9).
  struct Chunk {
    std::unique_ptr<Frame[]> frames;  // nullptr until first use
    std::uint32_t next = kNoLink;     // free list (chunk-level, orders >= 9), chunk indices
    std::uint32_t prev = kNoLink;
    std::uint16_t validFrames = 0;  // frames [0, validFrames) exist
    ChunkKind kind = ChunkKind::None;
    std::int8_t freeOrder = -1;   // >= 9: heads a free block of that order
    std::int8_t allocOrder = -1;  // >= 9: part of an allocated folio of that order
  };
  struct DeviceRange {
    std::uint64_t npages;
    DevPagemap* pgmap;
    FrameFreeHook* hook;
  };

  std::uint64_t rel(Pfn pfn) const { return pfn.value() - basePfn_; }
  Pfn pfnAt(std::uint64_t r) const { return Pfn(basePfn_ + r); }
  const Chunk* chunkOf(Pfn pfn) const;
  // Out-of-line failure reports of the inline fast paths below (HMMSIM_ASSERT, never return).
  [[noreturn]] static void putUnderflow(Pfn pfn, std::int32_t refcount, std::int32_t n);
  [[noreturn]] static void invalidPfn(Pfn pfn);
  Frame& materialize(std::uint64_t chunkIdx);
  // Mark chunks [first, first + npages) as a device range (the placement is already checked).
  void placeDeviceRange(std::uint64_t first, std::uint64_t npages, DevPagemap* pgmap, FrameFreeHook* hook);
  Frame& frameRel(std::uint64_t r);
  Frame& frameSlow(Pfn pfn);

  // Buddy allocator.
  void pushFree(std::uint64_t r, unsigned order);
  void unlinkFree(std::uint64_t r, unsigned order);
  void pushChunkFree(std::uint64_t c, unsigned order);
  void unlinkChunkFree(std::uint64_t c, unsigned order);
  std::optional<std::uint64_t> allocBlock(unsigned order);
  void freeBlock(std::uint64_t r, unsigned order);
  std::optional<std::uint64_t> pcpAlloc();
  void pcpFree(std::uint64_t r);
  // free_pcppages_bulk of rs[0..n): to the buddy lists, in that order.
  void freePcpPages(const std::uint32_t* rs, std::size_t n);
  void drainPcp();
  void initFolioHead(Frame& h, std::uint64_t flags, unsigned order);
  void prepFolio(std::uint64_t r, unsigned order);
  void freeFolio(Pfn head);
  void dropData(Frame& f);
  // Attach a data buffer to `f` (which has none); `zeroed`: the buffer must read as zeros.
  FrameData* attachData(Frame& f, bool zeroed);
  void updateMetadataStat();
  FrameData* poolAlloc(bool zeroed);
  // Give `f` its own copy of a buffer it shares with other frames (copy-on-write).
  void unshareData(Frame& f);

  StatsGroup stats_;
  Counter& framesAllocated_;
  Counter& framesFreed_;
  Counter& allocFailures_;
  Counter& deviceFramesFreed_;
  Counter& folioSplits_;
  Scalar& dataPagesStat_;
  Scalar& metadataBytesStat_;

  std::uint64_t basePfn_ = 0;  // pfn of chunk 0 (ramBase)
  Pfn ramFirst_, ramEnd_;
  std::vector<Chunk> chunks_;
  std::vector<std::shared_ptr<const void>> retainedOwners_;  // retainOwner
  std::uint32_t freeHead_[kMaxOrder + 1]{};  // orders < 9: frame rel; orders >= 9: chunk index
  std::uint64_t freePages_ = 0;              // buddy lists + pcp list
  // Per-cpu page list for order 0 (one "cpu": the simulator is one thread): LIFO, refilled and
  // trimmed in batches like rmqueue_bulk/free_pcppages_bulk, drained when an allocation fails.
  static constexpr unsigned kPcpBatch = 63;
  static constexpr std::size_t kPcpHigh = std::size_t{6} * kPcpBatch;
  std::vector<std::uint32_t> pcp_;
  std::uint64_t chunksMaterialized_ = 0;
  std::uint64_t dataPages_ = 0;
  std::uint64_t nextGeneration_ = 1;
  std::map<std::uint64_t, DeviceRange> deviceRanges_;  // by first pfn
  // Host storage of data buffers: mmap'ed slabs growing to 2 MiB (host-huge-page advised, so a
  // large workload takes one host page fault per 512 touched frames instead of one each) and a
  // LIFO free list. Buffers are recycled; the host memory goes back only in ~PhysMem.
  struct DataSlab {
    void* base;
    std::size_t bytes;
  };
  std::vector<DataSlab> dataSlabs_;
  std::vector<FrameData*> freeData_;
  // Buffers shared by copyFrame (copy-on-write) -> number of frames using them (>= 2). Looked
  // up by pointer only, never iterated.
  std::unordered_map<const FrameData*, std::uint32_t> dataShares_;
  std::size_t dataSlabUsed_ = 0, dataSlabCap_ = 0;  // buffers handed out / held by newest slab
  Pfn zeroPfn_;
  std::optional<Pfn> hugeZeroPfn_;
};

// Inline fast path of frame(): a live chunk's metadata is one index and one load away.
inline Frame& PhysMem::frame(Pfn pfn) {
  const std::uint64_t r = pfn.value() - basePfn_;
  const std::uint64_t ci = r >> kChunkShift;
  if (__builtin_expect(pfn.value() >= basePfn_ && ci < chunks_.size(), 1)) {
    Chunk& c = chunks_[ci];
    if (__builtin_expect(c.frames && (r & (kChunkFrames - 1)) < c.validFrames, 1))
      return c.frames[r & (kChunkFrames - 1)];
  }
  return frameSlow(pfn);
}

// Inline because the per-page paths (zap, fault, GUP) call them for every page.
inline const PhysMem::Chunk* PhysMem::chunkOf(Pfn pfn) const {
  if (pfn.value() < basePfn_) return nullptr;
  const std::uint64_t c = rel(pfn) >> kChunkShift;
  if (c >= chunks_.size()) return nullptr;
  const Chunk& ch = chunks_[c];
  if (ch.kind == ChunkKind::None || (rel(pfn) & (kChunkFrames - 1)) >= ch.validFrames) return nullptr;
  return &ch;
}

inline bool PhysMem::pfnValid(Pfn pfn) const {
  return chunkOf(pfn) != nullptr;
}

inline Pfn PhysMem::compoundHead(Pfn pfn) const {
  const Chunk* c = chunkOf(pfn);
  if (__builtin_expect(!c, 0)) invalidPfn(pfn);
  if (c->frames) {
    const Frame& f = c->frames[rel(pfn) & (kChunkFrames - 1)];
    return f.isTail() ? pfnAt(f.link_) : pfn;
  }
  if (c->allocOrder >= 0) return Pfn(pfn.value() & ~((1ull << c->allocOrder) - 1));
  return pfn;
}

// Always inlined: the per-page hot path of zap and of every put_page.
inline __attribute__((always_inline)) bool PhysMem::folioPutRefs(Pfn pfn, std::int32_t n) {
  if (__builtin_expect(n < 0, 0)) putUnderflow(pfn, 0, n);
  const Pfn head = compoundHead(pfn);
  return folioPutRefs(frame(head), head, n);
}

inline __attribute__((always_inline)) bool PhysMem::folioPutRefs(Frame& h, Pfn head, std::int32_t n) {
  if (h.isReserved()) return false;
  if (__builtin_expect(h.refcount_ < n || h.refcount_ <= 0, 0)) putUnderflow(head, h.refcount_, n);
  h.refcount_ -= n;
  if (h.refcount_ != 0) return false;
  freeFolio(head);
  return true;
}

inline __attribute__((always_inline)) bool PhysMem::putPage(Pfn pfn) {
  return folioPutRefs(pfn, 1);
}

}  // namespace hmmsim
