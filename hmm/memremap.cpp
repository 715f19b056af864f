// memremap_pages / memunmap_pages and the device-memory allocator. See memremap.h.

#include "hmm/memremap.h"

#include <algorithm>
#include <sstream>

#include "models/cpu_mmu/phys_mem.h"
#include "sim/assert.h"

namespace hmmsim {

namespace {
// memremap_pages' checks of the pgmap (type-specific ops and owner).
Errno checkPgmap(const DevPagemap& pgmap, std::uint64_t npages) {
  if (npages == 0 || pgmap.nrPages != 0) return Errno::Inval;
  switch (pgmap.type) {
    case MemoryType::DevicePrivate:
      // memremap_pages: "Missing migrate_to_ram method" / "Missing page_free method" / "Missing owner".
      if (!pgmap.ops || !pgmap.owner) return Errno::Inval;
      break;
    case MemoryType::DeviceCoherent:
      if (!pgmap.ops || !pgmap.owner) return Errno::Inval;
      break;
    case MemoryType::PciP2pdma:
    case MemoryType::FsDax:
    case MemoryType::Generic:
      break;
  }
  return Errno::Ok;
}
}  // namespace

Errno memremapPages(PhysMem& pm, DevPagemap& pgmap, std::uint64_t npages) {
  if (Errno e = checkPgmap(pgmap, npages); e != Errno::Ok) return e;
  pgmap.pfnFirst = pm.addDeviceRange(&pgmap, npages, pgmap.ops);
  pgmap.nrPages = npages;
  pgmap.liveFrames = 0;
  return Errno::Ok;
}

Errno memremapPagesAt(PhysMem& pm, DevPagemap& pgmap, Pa start, std::uint64_t npages) {
  if (Errno e = checkPgmap(pgmap, npages); e != Errno::Ok) return e;
  if (Errno e = pm.addDeviceRangeAt(start, npages, &pgmap, pgmap.ops); e != Errno::Ok) return e;
  pgmap.pfnFirst = pfnOf(start);
  pgmap.nrPages = npages;
  pgmap.liveFrames = 0;
  return Errno::Ok;
}

Errno memunmapPages(PhysMem& pm, DevPagemap& pgmap) {
  if (pgmap.nrPages == 0) return Errno::Inval;
  const Errno err = pm.removeDeviceRange(pgmap.pfnFirst);
  if (err != Errno::Ok) return err;
  pgmap.nrPages = 0;
  return Errno::Ok;
}

std::string DeviceMemoryParams::check() const {
  std::ostringstream os;
  if (type != MemoryType::DevicePrivate && type != MemoryType::DeviceCoherent)
    os << "type: must be device_private or device_coherent, not " << memoryTypeName(type);
  else if (chunkBytes == 0 || chunkBytes % kPmdSize != 0)
    os << "chunkBytes: must be a positive multiple of 2 MiB, got " << chunkBytes;
  else if (capacityBytes < chunkBytes)
    os << "capacityBytes: must be at least chunkBytes (" << chunkBytes << "), got " << capacityBytes;
  else if (basePa.value() % kPmdSize != 0)
    os << "basePa: must be 2 MiB aligned, got 0x" << std::hex << basePa.value();
  return os.str();
}

DeviceMemory::DeviceMemory(PhysMem& pm, const DeviceMemoryParams& params, const void* owner,
                           const std::string& statsName)
    : pm_(pm),
      params_(params),
      owner_(owner),
      stats_(statsName),
      chunksAdded_(stats_.counter("chunks_added", "chunks", "dev_pagemaps registered (memremap_pages)")),
      chunksRemoved_(stats_.counter("chunks_removed", "chunks", "dev_pagemaps removed (memunmap_pages)")),
      pageAllocs_(stats_.counter("page_allocs", "pages", "4 KiB device pages handed out")),
      folioAllocs_(stats_.counter("folio_allocs", "folios", "2 MiB device folios handed out")),
      allocFailures_(stats_.counter("alloc_failures", "calls", "allocations refused: device full")),
      frees_(stats_.counter("frees", "folios", "folio_free callbacks")) {
  HMMSIM_ASSERT(params.check().empty(), "DeviceMemoryParams: " << params.check());
  HMMSIM_ASSERT(owner != nullptr, "DeviceMemory needs an owner cookie");
  if (params_.preallocateFirstChunk) {
    const Errno err = addChunk();
    HMMSIM_ASSERT(err == Errno::Ok, "DeviceMemory: first chunk: " << err);
  }
}

DeviceMemory::~DeviceMemory() {
  // Frames still referenced at teardown belong to a simulation that ended; the ranges stay in
  // PhysMem (which may be destroyed right after) rather than asserting here.
  for (std::size_t i = 0; i < chunks_.size(); ++i) {
    if (!chunks_[i]->live) continue;
    chunks_[i]->removing = true;
    if (memunmapPages(pm_, chunks_[i]->pgmap) == Errno::Ok) chunks_[i]->live = false;
  }
}

Errno DeviceMemory::addChunk() {
  std::uint64_t liveBytes = 0;
  for (const auto& c : chunks_)
    if (c->live) liveBytes += c->pgmap.nrPages << kPageShift;
  if (liveBytes + params_.chunkBytes > params_.capacityBytes) return Errno::NoMem;
  auto c = std::make_unique<Chunk>();
  c->pgmap.type = params_.type;
  c->pgmap.ops = this;
  c->pgmap.owner = owner_;
  Errno err;
  if (params_.basePa == Pa(0)) {
    err = memremapPages(pm_, c->pgmap, params_.chunkBytes >> kPageShift);
  } else {  // the lowest chunk-sized slot from basePa that no live chunk holds
    std::uint64_t slot = 0;
    auto taken = [&](std::uint64_t k) {
      const Pfn at = pfnOf(params_.basePa) + k * (params_.chunkBytes >> kPageShift);
      return std::any_of(chunks_.begin(), chunks_.end(),
                         [&](const auto& x) { return x->live && x->pgmap.pfnFirst == at; });
    };
    while (taken(slot)) ++slot;
    err = memremapPagesAt(pm_, c->pgmap, params_.basePa + slot * params_.chunkBytes,
                          params_.chunkBytes >> kPageShift);
  }
  if (err != Errno::Ok) return err;
  // The whole chunk becomes PMD folios; 4 KiB pages are carved from them on demand. Pushed in
  // reverse so the lowest address is handed out first (deterministic and readable in traces).
  const Pfn first = c->pgmap.pfnFirst;
  for (std::uint64_t off = c->pgmap.nrPages; off >= kPagesPerPmd; off -= kPagesPerPmd)
    freeFolios_.push_back(first + (off - kPagesPerPmd));
  chunks_.push_back(std::move(c));
  ++chunksAdded_;
  return Errno::Ok;
}

std::optional<Pfn> DeviceMemory::allocPage() {
  if (freePages_.empty()) {
    if (freeFolios_.empty() && addChunk() != Errno::Ok) {
      ++allocFailures_;
      return std::nullopt;
    }
    const Pfn head = freeFolios_.back();
    freeFolios_.pop_back();
    for (std::uint64_t i = kPagesPerPmd; i > 0; --i) freePages_.push_back(head + (i - 1));
  }
  const Pfn pfn = freePages_.back();
  freePages_.pop_back();
  pm_.zoneDevicePageInit(pfn, 0);
  pm_.frame(pfn).zoneDeviceData = nullptr;
  ++chunkOf(pfn)->pgmap.liveFrames;
  ++allocated_;
  ++pageAllocs_;
  return pfn;
}

std::optional<Pfn> DeviceMemory::allocFolio() {
  if (freeFolios_.empty() && addChunk() != Errno::Ok) {
    ++allocFailures_;
    return std::nullopt;
  }
  const Pfn head = freeFolios_.back();
  freeFolios_.pop_back();
  pm_.zoneDevicePageInit(head, PhysMem::kPmdOrder);
  pm_.frame(head).zoneDeviceData = nullptr;
  chunkOf(head)->pgmap.liveFrames += kPagesPerPmd;
  allocated_ += kPagesPerPmd;
  ++folioAllocs_;
  return head;
}

DeviceMemory::Chunk* DeviceMemory::chunkOf(Pfn pfn) {
  for (auto& c : chunks_)
    if (c->live && c->pgmap.contains(pfn)) return c.get();
  return nullptr;
}

void DeviceMemory::folioFree(Pfn head) {
  ++frees_;
  const unsigned order = pm_.folioOrder(head);
  const std::uint64_t n = 1ull << order;
  Chunk* c = chunkOf(head);
  HMMSIM_ASSERT(c != nullptr, "folio_free of " << head << " which is not this device's memory");
  c->pgmap.liveFrames -= n;
  allocated_ -= n;
  pm_.frame(head).zoneDeviceData = nullptr;
  if (c->removing) return;  // dmirror_devmem_free: a chunk being removed does not re-list
  relist(head, order);
}

void DeviceMemory::relist(Pfn head, unsigned order) {
  if (order == PhysMem::kPmdOrder) {
    freeFolios_.push_back(head);
    return;
  }
  // Order 0 (or a split folio's pages arriving one by one): the page list.
  for (std::uint64_t i = 1ull << order; i > 0; --i) freePages_.push_back(head + (i - 1));
}

VmFaultResult DeviceMemory::migrateToRam(VmFault& vmf) {
  if (!migrateToRam_) return VmFaultResult::Sigbus;
  return migrateToRam_(vmf);
}

void DeviceMemory::beginRemove(std::size_t i) {
  Chunk& c = *chunks_[i];
  c.removing = true;
  auto inChunk = [&](Pfn p) { return c.pgmap.contains(p); };
  freePages_.erase(std::remove_if(freePages_.begin(), freePages_.end(), inChunk), freePages_.end());
  freeFolios_.erase(std::remove_if(freeFolios_.begin(), freeFolios_.end(), inChunk), freeFolios_.end());
}

Errno DeviceMemory::removeChunk(std::size_t i) {
  Chunk& c = *chunks_[i];
  if (!c.live) return Errno::Inval;
  if (!c.removing) beginRemove(i);
  const Errno err = memunmapPages(pm_, c.pgmap);
  if (err != Errno::Ok) return err;
  c.live = false;
  ++chunksRemoved_;
  return Errno::Ok;
}

}  // namespace hmmsim
