#include "models/cpu_mmu/phys_mem.h"

#include <algorithm>
#include <cstring>
#include <sstream>

#include <sys/mman.h>

#include "sim/assert.h"

namespace hmmsim {

namespace {
constexpr std::uint64_t kChunkBytes = PhysMem::kChunkFrames * kPageSize;  // 2 MiB
constexpr std::uint64_t kDeviceAlignFrames = 1ull << PhysMem::kPudOrder;  // 1 GiB
constexpr std::uint64_t kMaxRamBytes = 8ull << 40;                        // 8 TiB
}  // namespace

std::string PhysMemParams::check() const {
  std::ostringstream os;
  if (!ramBase.isAligned(kChunkBytes)) {
    os << "ram_base " << ramBase << " must be 2 MiB aligned";
  } else if (ramSize < kChunkBytes || ramSize % kChunkBytes != 0) {
    os << "ram_size " << ramSize << " B must be a non-zero multiple of 2 MiB";
  } else if (ramSize > kMaxRamBytes) {
    os << "ram_size " << ramSize << " B exceeds the 8 TiB hmmsim supports";
  } else if (ramBase.value() + ramSize < ramBase.value() ||
             ((ramBase.value() + ramSize) >> kPageShift) >= (1ull << 40)) {
    os << "ram_base + ram_size exceeds the 52-bit physical address space";
  }
  return os.str();
}

PhysMem::PhysMem(const PhysMemParams& p, const std::string& statsName)
    : stats_(statsName),
      framesAllocated_(
          stats_.counter("frames_allocated", "frames", "4 KiB RAM frames handed out by the page allocator")),
      framesFreed_(
          stats_.counter("frames_freed", "frames", "4 KiB RAM frames returned to the page allocator")),
      allocFailures_(stats_.counter("alloc_failures", "allocations",
                                    "allocations that found no free block of the order")),
      deviceFramesFreed_(stats_.counter("device_folios_freed", "folios",
                                        "ZONE_DEVICE folios whose refcount dropped to zero")),
      folioSplits_(stats_.counter("folio_splits", "folios", "order-9 folios split")),
      dataPagesStat_(stats_.scalar("data_pages", "frames", "frames holding a 4 KiB data buffer (touched)")),
      metadataBytesStat_(stats_.scalar("metadata_bytes", "B", "host bytes of frame metadata (struct page)")) {
  const std::string err = p.check();
  HMMSIM_ASSERT(err.empty(), "PhysMem: invalid parameters: " << err);
  basePfn_ = p.ramBase.value() >> kPageShift;
  ramFirst_ = Pfn(basePfn_);
  ramEnd_ = Pfn(basePfn_ + (p.ramSize >> kPageShift));
  const std::uint64_t nchunks = (ramEnd_ - ramFirst_) >> kChunkShift;
  chunks_.resize(nchunks);
  for (Chunk& c : chunks_) {
    c.kind = ChunkKind::Ram;
    c.validFrames = kChunkFrames;
  }
  std::fill(std::begin(freeHead_), std::end(freeHead_), kNoLink);

  // memblock_free_all: hand RAM to the buddy allocator as the largest naturally aligned blocks.
  // Pushed from the top so that the lowest block is at the head of each list.
  std::vector<std::pair<std::uint64_t, unsigned>> blocks;  // (chunk, order)
  std::uint64_t c = 0;
  while (c < nchunks) {
    unsigned order = kMaxOrder;
    for (;; --order) {
      const std::uint64_t nf = 1ull << order;
      const std::uint64_t abs = basePfn_ + (c << kChunkShift);
      if (order == kPmdOrder || ((abs & (nf - 1)) == 0 && (c << kChunkShift) + nf <= ramPages())) break;
    }
    blocks.emplace_back(c, order);
    c += 1ull << (order - kChunkShift);
  }
  for (auto it = blocks.rbegin(); it != blocks.rend(); ++it) pushChunkFree(it->first, it->second);
  freePages_ = ramPages();

  // ZERO_PAGE(0): the first allocation, so the lowest RAM frame; reserved forever.
  const std::optional<Pfn> z = allocFrame(0);
  HMMSIM_ASSERT(z.has_value(), "PhysMem: no frame for the zero page");
  zeroPfn_ = *z;
  Frame& zf = frame(zeroPfn_);
  zf.set(kFrameReserved);
  zf.set(kFrameZeroPage);
  updateMetadataStat();
}

PhysMem::~PhysMem() {
  for (const DataSlab& s : dataSlabs_) munmap(s.base, s.bytes);
}

FrameData* PhysMem::attachData(Frame& f, bool zeroed) {
  f.data_ = poolAlloc(zeroed);
  ++dataPages_;
  dataPagesStat_.set(double(dataPages_));
  return f.data_;
}

void PhysMem::unshareData(Frame& f) {
  if (dataShares_.empty()) return;
  auto it = dataShares_.find(f.data_);
  if (it == dataShares_.end()) return;
  FrameData* own = poolAlloc(false);
  std::memcpy(own->bytes, f.data_->bytes, sizeof own->bytes);
  if (--it->second == 1) dataShares_.erase(it);
  f.data_ = own;
}

FrameData* PhysMem::poolAlloc(bool zeroed) {
  FrameData* d;
  if (!freeData_.empty()) {
    d = freeData_.back();
    freeData_.pop_back();
    if (zeroed) std::memset(d->bytes, 0, sizeof d->bytes);
  } else {
    if (dataSlabUsed_ == dataSlabCap_) {
      // 64 KiB, 256 KiB, 1 MiB, then 2 MiB slabs: small runs stay small.
      const std::size_t n = dataSlabs_.size() < 3 ? (16u << (2 * dataSlabs_.size())) : 512u;
      const std::size_t bytes = n * sizeof(FrameData);
      void* base = nullptr;
      if (n == 512) {
        void* raw = mmap(nullptr, 2 * bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        HMMSIM_ASSERT(raw != MAP_FAILED, "PhysMem: host out of memory for frame data");
        const auto a = reinterpret_cast<std::uintptr_t>(raw);
        const std::uintptr_t al = (a + bytes - 1) & ~std::uintptr_t(bytes - 1);
        if (al > a) munmap(raw, al - a);
        if (al + bytes < a + 2 * bytes)
          munmap(reinterpret_cast<void*>(al + bytes), a + 2 * bytes - (al + bytes));
        base = reinterpret_cast<void*>(al);
#ifdef MADV_HUGEPAGE
        madvise(base, bytes, MADV_HUGEPAGE);
#endif
      } else {
        base = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        HMMSIM_ASSERT(base != MAP_FAILED, "PhysMem: host out of memory for frame data");
      }
      dataSlabs_.push_back(DataSlab{base, bytes});
      dataSlabUsed_ = 0;
      dataSlabCap_ = n;
    }
    // Fresh anonymous memory reads as zeros already.
    d = static_cast<FrameData*>(dataSlabs_.back().base) + dataSlabUsed_++;
  }
  return d;
}

// ---------------------------------------------------------------------------------------------
// Metadata
// ---------------------------------------------------------------------------------------------

void PhysMem::updateMetadataStat() {
  metadataBytesStat_.set(double(metadataBytes()));
}

std::uint64_t PhysMem::metadataBytes() const {
  return chunksMaterialized_ * kChunkFrames * sizeof(Frame) + chunks_.capacity() * sizeof(Chunk) +
         deviceRanges_.size() * 64;
}

bool PhysMem::isDevicePfn(Pfn pfn) const {
  const Chunk* c = chunkOf(pfn);
  return c && c->kind == ChunkKind::Device;
}

Frame& PhysMem::materialize(std::uint64_t ci) {
  Chunk& c = chunks_[ci];
  HMMSIM_ASSERT(c.kind != ChunkKind::None, "PhysMem: metadata for a hole, chunk " << ci);
  c.frames.reset(new Frame[kChunkFrames]);
  ++chunksMaterialized_;
  const std::uint64_t r0 = ci << kChunkShift;
  if (c.kind == ChunkKind::Device) {
    auto it = deviceRanges_.upper_bound(basePfn_ + r0);
    HMMSIM_ASSERT(it != deviceRanges_.begin(), "PhysMem: device chunk without a range");
    --it;
    for (unsigned i = 0; i < c.validFrames; ++i) {
      c.frames[i].pgmap = it->second.pgmap;
      c.frames[i].flags_ = kFrameZoneDevice;
    }
  }
  if (c.allocOrder >= 0) {
    // A tail chunk of an allocated folio larger than a chunk (order > 9).
    const std::uint64_t headAbs = (basePfn_ + r0) & ~((1ull << c.allocOrder) - 1);
    const std::uint64_t headRel = headAbs - basePfn_;
    for (unsigned i = 0; i < kChunkFrames; ++i) {
      if (r0 + i == headRel) continue;
      c.frames[i].flags_ |= kFrameTail;
      c.frames[i].link_ = static_cast<std::uint32_t>(headRel);
    }
  }
  updateMetadataStat();
  return c.frames[0];
}

Frame& PhysMem::frameRel(std::uint64_t r) {
  Chunk& c = chunks_[r >> kChunkShift];
  if (__builtin_expect(!c.frames, 0)) materialize(r >> kChunkShift);
  return c.frames[r & (kChunkFrames - 1)];
}

Frame& PhysMem::frameSlow(Pfn pfn) {
  HMMSIM_ASSERT(pfnValid(pfn), "PhysMem::frame: invalid pfn " << pfn);
  return frameRel(rel(pfn));
}

const Frame* PhysMem::peekFrame(Pfn pfn) const {
  const Chunk* c = chunkOf(pfn);
  if (!c || !c->frames) return nullptr;
  return &c->frames[rel(pfn) & (kChunkFrames - 1)];
}

unsigned PhysMem::folioOrder(Pfn pfn) const {
  const Frame* h = peekFrame(compoundHead(pfn));
  return h && h->isHead() ? h->order() : 0;
}

std::int64_t PhysMem::folioMapcount(Pfn pfn) const {
  const Pfn head = compoundHead(pfn);
  const Frame* h = peekFrame(head);
  if (!h) return 0;
  if (!h->isHead()) return h->mapcount;
  std::int64_t n = h->entireMapcount();
  const std::uint64_t r0 = rel(head), r1 = r0 + (1ull << h->order());
  for (std::uint64_t ci = r0 >> kChunkShift; ci < ((r1 + kChunkFrames - 1) >> kChunkShift); ++ci) {
    const Chunk& c = chunks_[ci];
    if (!c.frames) continue;  // untouched tails are unmapped
    const std::uint64_t b = std::max(r0, ci << kChunkShift), e = std::min(r1, (ci + 1) << kChunkShift);
    for (std::uint64_t r = b; r < e; ++r) n += c.frames[r & (kChunkFrames - 1)].mapcount;
  }
  return n;
}

std::uint64_t PhysMem::generationOf(Pfn pfn) const {
  const Frame* h = peekFrame(compoundHead(pfn));
  return h ? h->generation() : 0;
}

// ---------------------------------------------------------------------------------------------
// Buddy allocator
// ---------------------------------------------------------------------------------------------

void PhysMem::pushFree(std::uint64_t r, unsigned order) {
  Frame& f = frameRel(r);
  f.flags_ = (f.flags_ & kFrameZoneDevice) | kFrameBuddy;
  f.order_ = order;
  f.link_ = freeHead_[order];
  f.aux_ = kNoLink;
  if (freeHead_[order] != kNoLink) frameRel(freeHead_[order]).aux_ = static_cast<std::uint32_t>(r);
  freeHead_[order] = static_cast<std::uint32_t>(r);
}

void PhysMem::unlinkFree(std::uint64_t r, unsigned order) {
  Frame& f = frameRel(r);
  const std::uint32_t prev = f.aux_, next = f.link_;
  if (prev != kNoLink)
    frameRel(prev).link_ = next;
  else
    freeHead_[order] = next;
  if (next != kNoLink) frameRel(next).aux_ = prev;
  f.clear(kFrameBuddy);
  f.order_ = 0;
  f.link_ = 0;
  f.aux_ = 0;
}

void PhysMem::pushChunkFree(std::uint64_t ci, unsigned order) {
  Chunk& c = chunks_[ci];
  c.freeOrder = static_cast<std::int8_t>(order);
  c.next = freeHead_[order];
  c.prev = kNoLink;
  if (freeHead_[order] != kNoLink) chunks_[freeHead_[order]].prev = static_cast<std::uint32_t>(ci);
  freeHead_[order] = static_cast<std::uint32_t>(ci);
}

void PhysMem::unlinkChunkFree(std::uint64_t ci, unsigned order) {
  Chunk& c = chunks_[ci];
  if (c.prev != kNoLink)
    chunks_[c.prev].next = c.next;
  else
    freeHead_[order] = c.next;
  if (c.next != kNoLink) chunks_[c.next].prev = c.prev;
  c.next = c.prev = kNoLink;
  c.freeOrder = -1;
}

std::optional<std::uint64_t> PhysMem::allocBlock(unsigned order) {
  unsigned k = order;
  while (k <= kMaxOrder && freeHead_[k] == kNoLink) ++k;
  if (k > kMaxOrder) return std::nullopt;
  std::uint64_t r;
  if (k >= kPmdOrder) {
    const std::uint64_t ci = freeHead_[k];
    unlinkChunkFree(ci, k);
    r = ci << kChunkShift;
  } else {
    r = freeHead_[k];
    unlinkFree(r, k);
  }
  // expand(): keep the low half, free the high halves.
  while (k > order) {
    --k;
    const std::uint64_t upper = r + (1ull << k);
    if (k >= kPmdOrder)
      pushChunkFree(upper >> kChunkShift, k);
    else
      pushFree(upper, k);
  }
  freePages_ -= 1ull << order;
  return r;
}

void PhysMem::freeBlock(std::uint64_t r, unsigned order) {
  std::uint64_t abs = basePfn_ + r;
  while (order < kMaxOrder) {
    const std::uint64_t buddyAbs = abs ^ (1ull << order);
    if (buddyAbs < ramFirst_.value() || buddyAbs + (1ull << order) > ramEnd_.value()) break;
    const std::uint64_t br = buddyAbs - basePfn_;
    if (order < kPmdOrder) {
      const Frame& bf = frameRel(br);
      if (!bf.isBuddy() || bf.order() != order) break;
      unlinkFree(br, order);
    } else {
      const std::uint64_t bc = br >> kChunkShift;
      if (chunks_[bc].freeOrder != static_cast<std::int8_t>(order)) break;
      unlinkChunkFree(bc, order);
    }
    abs &= ~(1ull << order);
    ++order;
  }
  const std::uint64_t rr = abs - basePfn_;
  if (order >= kPmdOrder)
    pushChunkFree(rr >> kChunkShift, order);
  else
    pushFree(rr, order);
}

void PhysMem::dropData(Frame& f) {
  if (f.data_) {
    auto it = dataShares_.empty() ? dataShares_.end() : dataShares_.find(f.data_);
    if (it != dataShares_.end()) {
      if (--it->second == 1) dataShares_.erase(it);  // another frame keeps the buffer
    } else {
      freeData_.push_back(f.data_);
    }
    f.data_ = nullptr;
    --dataPages_;
    dataPagesStat_.set(double(dataPages_));
  }
}

// A new folio's head frame: one reference, unmapped, no owner, `flags` plus PG_head when it is
// compound (the common part of prep_new_page and zone_device_page_init).
void PhysMem::initFolioHead(Frame& h, std::uint64_t flags, unsigned order) {
  h.refcount_ = 1;
  h.mapcount = 0;
  h.flags_ = flags | (order > 0 ? std::uint64_t(kFrameHead) : 0u);
  h.order_ = order;
  h.generation_ = nextGeneration_++;
  h.mapping = nullptr;
  h.index = 0;
  h.link_ = 0;
  h.aux_ = 0;
}

void PhysMem::prepFolio(std::uint64_t r, unsigned order) {
  Frame& h = frameRel(r);
  initFolioHead(h, h.flags_ & kFrameZoneDevice, order);
  dropData(h);
  if (order == 0) return;
  const std::uint64_t tailsEnd = r + (1ull << order);
  if (order <= kPmdOrder) {
    for (std::uint64_t t = r + 1; t < tailsEnd; ++t) {
      Frame& f = frameRel(t);
      f.flags_ = (f.flags_ & kFrameZoneDevice) | kFrameTail;
      f.order_ = 0;
      f.link_ = static_cast<std::uint32_t>(r);
      f.refcount_ = 0;
      f.mapcount = 0;
    }
    return;
  }
  for (std::uint64_t ci = r >> kChunkShift; ci < (tailsEnd >> kChunkShift); ++ci) {
    Chunk& c = chunks_[ci];
    c.allocOrder = static_cast<std::int8_t>(order);
    if (!c.frames) continue;  // materialize() will create tails
    for (unsigned i = 0; i < kChunkFrames; ++i) {
      const std::uint64_t t = (ci << kChunkShift) + i;
      if (t == r) continue;
      Frame& f = c.frames[i];
      f.flags_ = (f.flags_ & kFrameZoneDevice) | kFrameTail;
      f.order_ = 0;
      f.link_ = static_cast<std::uint32_t>(r);
      f.mapcount = 0;
    }
  }
}

std::optional<std::uint64_t> PhysMem::pcpAlloc() {
  if (pcp_.empty()) {
    // rmqueue_bulk: refill with a batch from the buddy lists; handed out lowest first.
    std::uint32_t got[kPcpBatch];
    unsigned n = 0;
    while (n < kPcpBatch) {
      const std::optional<std::uint64_t> b = allocBlock(0);
      if (!b) break;
      got[n++] = static_cast<std::uint32_t>(*b);
    }
    freePages_ += n;  // still free, now on the pcp list
    while (n > 0) pcp_.push_back(got[--n]);
    if (pcp_.empty()) return std::nullopt;
  }
  const std::uint64_t r = pcp_.back();
  pcp_.pop_back();
  --freePages_;
  return r;
}

void PhysMem::freePcpPages(const std::uint32_t* rs, std::size_t n) {
  // free_pcppages_bulk frees page by page. Freeing an aligned run of 2^k pages in ascending
  // order page by page leaves the buddy lists exactly as freeing the 2^k block at once: inside
  // the run every buddy is inside the run, and each intermediate block is pushed and later
  // unlinked from the head of its list (nothing of its order is pushed in between). So such runs
  // (the common case: zap frees pages in address order, and faults got them in pfn order) are
  // freed whole: the same free lists, hence the same later allocations, for a fraction of the
  // list work.
  for (std::size_t i = 0; i < n;) {
    const std::uint64_t r = rs[i];
    const std::uint64_t abs = basePfn_ + r;
    unsigned k = 0;
    while (k < kMaxOrder) {
      const std::uint64_t len = 2ull << k;
      if ((abs & (len - 1)) != 0 || i + len > n) break;
      bool run = true;
      for (std::uint64_t j = 1ull << k; j < len && run; ++j) run = rs[i + j] == r + j;
      if (!run) break;
      ++k;
    }
    freeBlock(r, k);
    i += std::size_t(1) << k;
  }
}

void PhysMem::pcpFree(std::uint64_t r) {
  pcp_.push_back(static_cast<std::uint32_t>(r));
  if (pcp_.size() <= kPcpHigh) return;
  // free_pcppages_bulk: the coldest batch goes back to the buddy lists.
  freePcpPages(pcp_.data(), kPcpBatch);
  pcp_.erase(pcp_.begin(), pcp_.begin() + kPcpBatch);
}

void PhysMem::drainPcp() {
  freePcpPages(pcp_.data(), pcp_.size());
  pcp_.clear();
}

std::optional<Pfn> PhysMem::allocFrame(unsigned order) {
  HMMSIM_ASSERT(order <= kMaxOrder, "allocFrame: order " << order << " > " << kMaxOrder);
  std::optional<std::uint64_t> r = order == 0 ? pcpAlloc() : allocBlock(order);
  if (!r && !pcp_.empty()) {
    // The slow path's drain_all_pages: merge the per-cpu pages back and try once more.
    drainPcp();
    r = order == 0 ? pcpAlloc() : allocBlock(order);
  }
  if (!r) {
    ++allocFailures_;
    return std::nullopt;
  }
  prepFolio(*r, order);
  framesAllocated_ += 1ull << order;
  return pfnAt(*r);
}

void PhysMem::freeFolio(Pfn head) {
  const std::uint64_t r = rel(head);
  Frame& h = frameRel(r);
  const unsigned order = h.isHead() ? h.order() : 0;
  HMMSIM_ASSERT(h.mapcount == 0 && (order == 0 || h.entireMapcount() == 0),
                "PhysMem: freeing mapped folio " << head << " (mapcount " << h.mapcount << ", entire "
                                                 << h.entireMapcount() << ")");
  const std::uint64_t n = 1ull << order;
  h.generation_ = nextGeneration_++;
  h.mapping = nullptr;
  h.index = 0;
  h.aux_ = 0;

  if (order == 0 && !h.isZoneDevice()) {
    // Fast path of the loop below for the common order-0 RAM page (zap frees them by the
    // million): same effect, no chunk re-lookup.
    h.flags_ = 0;
    h.order_ = 0;
    h.link_ = 0;
    h.refcount_ = 0;
    if (h.data_) dropData(h);
    ++freePages_;
    ++framesFreed_;
    pcpFree(r);
    return;
  }

  if (h.isZoneDevice()) {
    // free_zone_device_folio: clear the owner, hand the folio to the driver.
    h.clear(kFrameAnon);
    h.clear(kFrameAnonExclusive);
    h.clear(kFramePageCache);
    h.clear(kFrameSwapBacked);
    h.clear(kFrameDirty);
    h.clear(kFrameLocked);
    ++deviceFramesFreed_;
    auto it = deviceRanges_.upper_bound(head.value());
    HMMSIM_ASSERT(it != deviceRanges_.begin(), "PhysMem: device frame without range " << head);
    --it;
    const std::uint64_t gen = h.generation_;
    if (it->second.hook) it->second.hook->folioFree(head);
    // Dissolve the compound folio unless the hook handed it out again.
    Frame& h2 = frameRel(r);
    if (h2.refcount_ == 0 && h2.generation_ == gen && order > 0) {
      for (std::uint64_t t = r; t < r + n; ++t) {
        Frame& f = frameRel(t);
        f.flags_ &= kFrameZoneDevice;
        f.order_ = 0;
        f.link_ = 0;
      }
    }
    return;
  }

  for (std::uint64_t t = r; t < r + n;) {
    Chunk& c = chunks_[t >> kChunkShift];
    if (order > kPmdOrder) c.allocOrder = -1;
    if (!c.frames) {  // untouched tail chunk of a 1 GiB folio
      t += kChunkFrames;
      continue;
    }
    Frame& f = c.frames[t & (kChunkFrames - 1)];
    HMMSIM_ASSERT(f.mapcount == 0, "PhysMem: freeing folio " << head << " with mapped subpage " << pfnAt(t));
    f.flags_ = 0;
    f.order_ = 0;
    f.link_ = 0;
    f.aux_ = 0;
    f.refcount_ = 0;
    dropData(f);
    ++t;
  }
  freePages_ += n;
  framesFreed_ += n;
  if (order == 0)
    pcpFree(r);
  else
    freeBlock(r, order);
}

void PhysMem::getPage(Pfn pfn) {
  folioRefAdd(pfn, 1);
}

void PhysMem::folioRefAdd(Pfn pfn, std::int32_t n) {
  HMMSIM_ASSERT(n >= 0, "folioRefAdd: negative count " << n);
  const Pfn head = compoundHead(pfn);
  Frame& h = frame(head);
  if (h.isReserved()) return;
  HMMSIM_ASSERT(h.refcount_ > 0, "get_page on free frame " << pfn);
  h.refcount_ += n;
}

void PhysMem::putUnderflow(Pfn pfn, std::int32_t refcount, std::int32_t n) {
  HMMSIM_ASSERT(false, "put_page underflow on " << pfn << " (refcount " << refcount << ", put " << n << ")");
}

void PhysMem::invalidPfn(Pfn pfn) {
  HMMSIM_ASSERT(false, "PhysMem::compoundHead: invalid pfn " << pfn);
}

// ---------------------------------------------------------------------------------------------
// THP split
// ---------------------------------------------------------------------------------------------

Errno PhysMem::splitFolio(Pfn head, std::int32_t callerRefs, std::int32_t perPageRefs) {
  if (!pfnValid(head)) return Errno::Inval;
  Frame& h = frame(head);
  if (!h.isHead() || h.order() != kPmdOrder || h.isReserved() || h.refcount_ == 0 || h.test(kFrameHugeTlb))
    return Errno::Inval;
  if (h.entireMapcount() != 0) return Errno::Busy;
  const std::uint64_t r = rel(head);
  std::int64_t mapped = 0;
  for (std::uint64_t i = 0; i < kChunkFrames; ++i) mapped += frameRel(r + i).mapcount;
  if (std::int64_t(h.refcount_) != mapped + callerRefs + std::int64_t(kChunkFrames) * perPageRefs)
    return Errno::Busy;

  const std::uint64_t headFlags = h.flags_ & ~std::uint64_t(kFrameHead);
  const std::uint64_t tailFlags = headFlags & ~std::uint64_t(kFrameLocked);
  for (std::uint64_t i = 0; i < kChunkFrames; ++i) {
    Frame& f = frameRel(r + i);
    f.flags_ = i == 0 ? headFlags : tailFlags;
    f.order_ = 0;
    f.link_ = 0;
    f.aux_ = 0;
    f.refcount_ = f.mapcount + perPageRefs + (i == 0 ? callerRefs : 0);
    if (i == 0) continue;
    f.generation_ = h.generation_;  // same memory, same mappings: not a new lifetime
    f.mapping = h.mapping;
    f.index = h.index + i;
    f.pgmap = h.pgmap;
    f.zoneDeviceData = h.zoneDeviceData;
  }
  ++folioSplits_;
  if (h.isZoneDevice()) {
    auto it = deviceRanges_.upper_bound(head.value());
    --it;
    if (it->second.hook)
      for (std::uint64_t i = 1; i < kChunkFrames; ++i) it->second.hook->folioSplit(head, head + i);
  }
  // __split_huge_page: subpages nobody maps or holds are freed right away.
  for (std::uint64_t i = 0; i < kChunkFrames; ++i) {
    Frame& f = frameRel(r + i);
    if (f.refcount_ == 0) freeFolio(head + i);
  }
  return Errno::Ok;
}

// ---------------------------------------------------------------------------------------------
// Zero pages
// ---------------------------------------------------------------------------------------------

void PhysMem::releaseRetainedOwners() {
  retainedOwners_.erase(
      std::remove_if(retainedOwners_.begin(), retainedOwners_.end(),
                     [](const std::shared_ptr<const void>& o) { return o.use_count() == 1; }),
      retainedOwners_.end());
}

std::optional<Pfn> PhysMem::hugeZeroPfn() {
  if (hugeZeroPfn_) return hugeZeroPfn_;
  const std::optional<Pfn> p = allocFrame(kPmdOrder);
  if (!p) return std::nullopt;
  Frame& f = frame(*p);
  f.set(kFrameReserved);
  f.set(kFrameZeroPage);
  hugeZeroPfn_ = p;
  return p;
}

bool PhysMem::isHugeZeroPfn(Pfn pfn) const {
  return hugeZeroPfn_ && pfn >= *hugeZeroPfn_ && pfn - *hugeZeroPfn_ < kChunkFrames;
}

// ---------------------------------------------------------------------------------------------
// ZONE_DEVICE ranges
// ---------------------------------------------------------------------------------------------

Pfn PhysMem::addDeviceRange(DevPagemap* pgmap, std::uint64_t npages, FrameFreeHook* hook) {
  HMMSIM_ASSERT(npages > 0, "addDeviceRange: empty range");
  auto alignUp = [](std::uint64_t v) { return (v + kDeviceAlignFrames - 1) & ~(kDeviceAlignFrames - 1); };
  std::uint64_t first = alignUp(ramEnd_.value());
  for (const auto& [f, dr] : deviceRanges_) {
    if (first + npages <= f) break;
    first = std::max(first, alignUp(f + dr.npages));
  }
  HMMSIM_ASSERT(first + npages - basePfn_ < (1ull << 32),
                "addDeviceRange: device memory beyond 16 TiB of frames");
  placeDeviceRange(first, npages, pgmap, hook);
  return Pfn(first);
}

std::string PhysMem::checkDeviceRangeAt(Pa base, std::uint64_t npages) const {
  std::ostringstream os;
  const std::uint64_t first = base.value() >> kPageShift;
  if (npages == 0) {
    os << "device range at " << base << ": empty (0 pages)";
  } else if (!base.isAligned(kChunkBytes) || npages % kChunkFrames != 0) {
    // PhysMem keeps one kind of frame per 2 MiB chunk (pageblock).
    os << "device range at " << base << " (" << npages << " pages): base and size must be multiples of 2 MiB";
  } else if (first < basePfn_ || first + npages - basePfn_ >= (1ull << 32)) {
    os << "device range at " << base << " (" << npages
       << " pages): outside [ram_base, ram_base + 16 TiB), the physical span PhysMem indexes";
  } else if (first < ramEnd_.value() && first + npages > ramFirst_.value()) {
    os << "device range at " << base << " (" << npages << " pages) overlaps system RAM";
  } else {
    auto it = deviceRanges_.lower_bound(first + npages);
    if (it != deviceRanges_.begin() && std::prev(it)->first + std::prev(it)->second.npages > first)
      os << "device range at " << base << " (" << npages << " pages) overlaps the device range at "
         << paOf(Pfn(std::prev(it)->first));
  }
  return os.str();
}

Errno PhysMem::addDeviceRangeAt(Pa base, std::uint64_t npages, DevPagemap* pgmap, FrameFreeHook* hook) {
  if (!checkDeviceRangeAt(base, npages).empty()) return Errno::Inval;
  placeDeviceRange(base.value() >> kPageShift, npages, pgmap, hook);
  return Errno::Ok;
}

void PhysMem::placeDeviceRange(std::uint64_t first, std::uint64_t npages, DevPagemap* pgmap,
                               FrameFreeHook* hook) {
  // Only chunk descriptors (24 B per 2 MiB) are created; frame metadata and data come on first use.
  const std::uint64_t endRel = first + npages - basePfn_;
  const std::uint64_t c0 = (first - basePfn_) >> kChunkShift;
  const std::uint64_t c1 = (endRel + kChunkFrames - 1) >> kChunkShift;
  if (chunks_.size() < c1) chunks_.resize(c1);
  for (std::uint64_t ci = c0; ci < c1; ++ci) {
    Chunk& c = chunks_[ci];
    c.kind = ChunkKind::Device;
    const std::uint64_t cEnd = std::min<std::uint64_t>((ci + 1) << kChunkShift, endRel);
    c.validFrames = static_cast<std::uint16_t>(cEnd - (ci << kChunkShift));
  }
  deviceRanges_.emplace(first, DeviceRange{npages, pgmap, hook});
  updateMetadataStat();
}

Errno PhysMem::removeDeviceRange(Pfn first) {
  auto it = deviceRanges_.find(first.value());
  if (it == deviceRanges_.end()) return Errno::Inval;
  const std::uint64_t r0 = rel(first), r1 = r0 + it->second.npages;
  for (std::uint64_t ci = r0 >> kChunkShift; ci < ((r1 + kChunkFrames - 1) >> kChunkShift); ++ci) {
    const Chunk& c = chunks_[ci];
    if (!c.frames) continue;
    for (unsigned i = 0; i < c.validFrames; ++i)
      if (c.frames[i].refcount_ != 0) return Errno::Busy;
  }
  for (std::uint64_t ci = r0 >> kChunkShift; ci < ((r1 + kChunkFrames - 1) >> kChunkShift); ++ci) {
    Chunk& c = chunks_[ci];
    if (c.frames) {
      for (unsigned i = 0; i < c.validFrames; ++i) dropData(c.frames[i]);
      c.frames.reset();
      --chunksMaterialized_;
    }
    c = Chunk{};
  }
  deviceRanges_.erase(it);
  updateMetadataStat();
  return Errno::Ok;
}

std::uint64_t PhysMem::deviceRangePages(Pfn first) const {
  auto it = deviceRanges_.find(first.value());
  return it == deviceRanges_.end() ? 0 : it->second.npages;
}

void PhysMem::zoneDevicePageInit(Pfn pfn, unsigned order) {
  HMMSIM_ASSERT(order <= kMaxOrder && (pfn.value() & ((1ull << order) - 1)) == 0,
                "zoneDevicePageInit: misaligned folio " << pfn << " order " << order);
  const std::uint64_t n = 1ull << order;
  for (std::uint64_t i = 0; i < n; ++i) {
    HMMSIM_ASSERT(isDevicePfn(pfn + i), "zoneDevicePageInit: " << (pfn + i) << " is not device memory");
    const Frame& f = frame(pfn + i);
    HMMSIM_ASSERT(f.refcount_ == 0 && !f.isTail(), "zoneDevicePageInit: frame " << (pfn + i) << " is in use");
  }
  const std::uint64_t r = rel(pfn);
  Frame& h = frameRel(r);
  initFolioHead(h, kFrameZoneDevice | kFrameLocked, order);
  for (std::uint64_t t = r + 1; t < r + n; ++t) {
    Frame& f = frameRel(t);
    f.flags_ = kFrameZoneDevice | kFrameTail;
    f.order_ = 0;
    f.link_ = static_cast<std::uint32_t>(r);
    f.mapcount = 0;
  }
}

// ---------------------------------------------------------------------------------------------
// Contents
// ---------------------------------------------------------------------------------------------

void PhysMem::read(Pa pa, void* dst, std::size_t len) const {
  auto* out = static_cast<std::uint8_t*>(dst);
  std::uint64_t a = pa.value();
  while (len > 0) {
    const Pfn pfn(a >> kPageShift);
    const std::size_t off = a & (kPageSize - 1);
    const std::size_t n = std::min<std::size_t>(len, kPageSize - off);
    const Chunk* c = chunkOf(pfn);
    HMMSIM_ASSERT(c, "PhysMem::read: no memory at " << Pa(a));
    const Frame* f = c->frames ? &c->frames[rel(pfn) & (kChunkFrames - 1)] : nullptr;
    if (f && f->data_)
      std::memcpy(out, f->data_->bytes + off, n);
    else
      std::memset(out, 0, n);
    out += n;
    a += n;
    len -= n;
  }
}

void PhysMem::write(Pa pa, const void* src, std::size_t len) {
  const auto* in = static_cast<const std::uint8_t*>(src);
  std::uint64_t a = pa.value();
  while (len > 0) {
    const Pfn pfn(a >> kPageShift);
    const std::size_t off = a & (kPageSize - 1);
    const std::size_t n = std::min<std::size_t>(len, kPageSize - off);
    HMMSIM_ASSERT(pfnValid(pfn), "PhysMem::write: no memory at " << Pa(a));
    Frame& f = frameRel(rel(pfn));
    HMMSIM_ASSERT(!f.isZeroPage() && !isHugeZeroPfn(pfn),
                  "PhysMem::write: writing the zero page at " << Pa(a));
    if (!f.data_)
      attachData(f, n != kPageSize);
    else
      unshareData(f);
    std::memcpy(f.data_->bytes + off, in, n);
    in += n;
    a += n;
    len -= n;
  }
}

void PhysMem::copyFrame(Pfn dst, Pfn src) {
  HMMSIM_ASSERT(pfnValid(src), "copyFrame: invalid source " << src);
  const Frame* s = peekFrame(src);
  if (!s || !s->data_) {
    zeroFrame(dst);
    return;
  }
  HMMSIM_ASSERT(pfnValid(dst), "copyFrame: invalid destination " << dst);
  if (dst == src) return;
  Frame& d = frameRel(rel(dst));
  HMMSIM_ASSERT(!d.isZeroPage() && !isHugeZeroPfn(dst), "copyFrame: writing the zero page " << dst);
  FrameData* buf = peekFrame(src)->data_;  // re-read: frameRel may have created dst's chunk
  if (d.data_ == buf) return;
  dropData(d);
  // Copy-on-write: share the source's buffer; the first write to either frame un-shares it.
  auto [it, inserted] = dataShares_.emplace(buf, 2);
  if (!inserted) ++it->second;
  d.data_ = buf;
  ++dataPages_;
  dataPagesStat_.set(double(dataPages_));
}

void PhysMem::zeroFrame(Pfn pfn) {
  HMMSIM_ASSERT(pfnValid(pfn), "zeroFrame: invalid pfn " << pfn);
  const Chunk* c = chunkOf(pfn);
  if (!c->frames) return;
  dropData(frameRel(rel(pfn)));
}

bool PhysMem::isTouched(Pfn pfn) const {
  const Frame* f = peekFrame(pfn);
  return f && f->data_;
}

const std::uint8_t* PhysMem::frameData(Pfn pfn) const {
  HMMSIM_ASSERT(pfnValid(pfn), "frameData: invalid pfn " << pfn);
  const Frame* f = peekFrame(pfn);
  return f && f->data_ ? f->data_->bytes : nullptr;
}

std::uint8_t* PhysMem::frameDataForWrite(Pfn pfn) {
  HMMSIM_ASSERT(pfnValid(pfn), "frameDataForWrite: invalid pfn " << pfn);
  Frame& f = frameRel(rel(pfn));
  HMMSIM_ASSERT(!f.isZeroPage() && !isHugeZeroPfn(pfn), "PhysMem: writing the zero page " << pfn);
  if (!f.data_)
    attachData(f, true);
  else
    unshareData(f);
  return f.data_->bytes;
}

}  // namespace hmmsim
