#pragma once
// Device memory for drivers: memremap_pages/memunmap_pages (mm/memremap.c) and the allocator a
// driver builds on top (the pattern of lib/test_hmm.c's dmirror_allocate_chunk /
// dmirror_devmem_alloc_page / dmirror_devmem_free).
//
// Models: registering a dev_pagemap's frames with PhysMem (ZONE_DEVICE struct pages, frames that
// carry real bytes so migration copies move data), the kernel's validation of the pgmap
// (type-specific ops and owner), teardown refused while frames are referenced; a device memory
// made of chunks (one pgmap per chunk, like dmirror) added on demand up to a capacity, free lists
// of 4 KiB pages and of PMD-order (2 MiB) folios, folio_free returning frames to those lists, and
// whole-chunk removal (the driver evicts the chunk first with migrate_device_range).
// Leaves out: request_free_mem_region/iomem resources (PhysMem places ranges itself unless the
// caller gives the address: memremapPagesAt), altmap,
// NUMA node ids, devm_* lifetime, the percpu pgmap ref (DevPagemap::liveFrames is maintained by
// DeviceMemory for the frames it hands out), fs-dax.
// Deliberate difference: memunmap_pages waits for the last reference; hmmsim returns Busy instead
// (a pure core cannot wait for another context), so callers evict first.
// Timing: none (pure core).

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "models/cpu_mmu/dev_pagemap.h"
#include "sim/errno.h"
#include "sim/stats.h"
#include "sim/strong_types.h"

namespace hmmsim {

class PhysMem;
class DevmemP2pOps;

/// memremap_pages(): create `npages` ZONE_DEVICE frames for `pgmap` (pgmap.type, .ops, .owner,
/// .vmemmapShift set by the caller) and set pgmap.pfnFirst/nrPages. The frames are free (refcount 0)
/// and owned by the driver, which hands them out with PhysMem::zoneDevicePageInit.
/// Returns Ok, or Inval (the kernel's checks): npages == 0; already registered (nrPages != 0);
/// DevicePrivate without ops or owner; DeviceCoherent without ops or owner; FsDax/Generic are
/// accepted; PciP2pdma needs neither.
Errno memremapPages(PhysMem& pm, DevPagemap& pgmap, std::uint64_t npages);

/// memremap_pages() with pgmap->range chosen by the caller: the frames sit at physical address
/// `start` (a BAR's CPU address for MEMORY_DEVICE_PCI_P2PDMA as pci_p2pdma_add_resource sets it,
/// or a device-coherent aperture). Same checks as memremapPages, plus Inval when PhysMem cannot
/// place the range there (PhysMem::checkDeviceRangeAt says why); nothing changes on failure.
Errno memremapPagesAt(PhysMem& pm, DevPagemap& pgmap, Pa start, std::uint64_t npages);

/// memunmap_pages(): remove the frames of `pgmap` from PhysMem. Returns Ok; Inval when it is not
/// registered; Busy when a frame still has a reference (nothing changes; see the header comment).
Errno memunmapPages(PhysMem& pm, DevPagemap& pgmap);

/// Parameters of one device's memory (DeviceMemory).
struct DeviceMemoryParams {
  /// Memory type of every chunk: DevicePrivate (default) or DeviceCoherent.
  MemoryType type = MemoryType::DevicePrivate;
  /// Bytes per chunk (one dev_pagemap each). Unit: bytes. Default 256 MiB (DEVMEM_CHUNK_SIZE).
  /// A positive multiple of 2 MiB.
  std::uint64_t chunkBytes = 256ull << 20;
  /// Most bytes of device memory (chunks are added on demand up to this). Unit: bytes.
  /// Default 1 GiB (dmirror: DEVMEM_CHUNKS_RESERVE grows without limit; hmmsim bounds it).
  std::uint64_t capacityBytes = 1ull << 30;
  /// Register the first chunk at construction (dmirror_device_init allocates one). Default true.
  bool preallocateFirstChunk = true;
  /// Where the chunks sit in the physical address space. Default 0 = PhysMem places each chunk
  /// (memremapPages). Otherwise chunk k sits at basePa + k * chunkBytes, k the lowest slot no
  /// live chunk holds (memremapPagesAt): a GPU's VRAM, whose bytes are the frames'. 2 MiB aligned.
  Pa basePa = Pa(0);

  /// "" when valid; otherwise what is wrong, naming the parameter.
  std::string check() const;
};

/// One device's ZONE_DEVICE memory and its allocator. It is the DevPagemapOps of every chunk:
/// folio_free returns frames to the free lists; migrate_to_ram is forwarded to the driver's handler
/// (setMigrateToRam), the only driver-specific callback.
class DeviceMemory : public DevPagemapOps {
 public:
  struct Chunk {
    DevPagemap pgmap;       ///< pfnFirst/nrPages: the chunk's frames
    bool removing = false;  ///< set by removeChunk's caller via beginRemove: frees do not re-list
    bool live = true;       ///< false after removeChunk
  };

  /// `owner` is the pgmap owner of every chunk (the driver's device cookie).
  /// Lifetime: PhysMem calls folioFree on this object whenever a device page's last reference
  /// goes, so it must outlive every Mm that maps its pages (or evict them first: beginRemove +
  /// migrateDeviceRange + removeChunk). The destructor unregisters chunks without references and
  /// leaves referenced ones registered (a simulation that ended).
  DeviceMemory(PhysMem& pm, const DeviceMemoryParams& params, const void* owner,
               const std::string& statsName = "devmem");
  ~DeviceMemory() override;
  DeviceMemory(const DeviceMemory&) = delete;
  DeviceMemory& operator=(const DeviceMemory&) = delete;

  /// dmirror_devmem_alloc_page(): one 4 KiB frame, refcount 1, locked (zone_device_page_init),
  /// zoneDeviceData = nullptr. Adds a chunk when the lists are empty and capacity allows.
  /// std::nullopt when the device is full.
  std::optional<Pfn> allocPage();
  /// A PMD-order (2 MiB) folio, head refcount 1, locked. std::nullopt when no free folio exists
  /// and no chunk can be added (free 4 KiB pages are not merged back into folios, like dmirror).
  std::optional<Pfn> allocFolio();

  /// dev_pagemap_ops.folio_free: back to the page list (order 0) or folio list (order 9), unless
  /// the chunk is being removed.
  void folioFree(Pfn head) override;
  /// dev_pagemap_ops.migrate_to_ram: the handler set by the driver, or Sigbus without one.
  VmFaultResult migrateToRam(VmFault& vmf) override;
  void setMigrateToRam(std::function<VmFaultResult(VmFault&)> handler) { migrateToRam_ = std::move(handler); }

  /// Chunk bookkeeping (index = order of creation).
  std::size_t chunkCount() const { return chunks_.size(); }
  Chunk& chunk(std::size_t i) { return *chunks_[i]; }
  /// The live chunk containing `pfn`, or nullptr.
  Chunk* chunkOf(Pfn pfn);
  bool owns(Pfn pfn) { return chunkOf(pfn) != nullptr; }
  /// Mark chunk `i` as being removed: its frees stop re-listing frames and its free frames leave
  /// the free lists (dmirror_device_remove_chunks' first step). Call before evicting it.
  void beginRemove(std::size_t i);
  /// memunmap_pages() of chunk `i` after eviction. Returns memunmapPages' result (Busy while a
  /// frame is referenced; then the chunk stays).
  Errno removeChunk(std::size_t i);
  /// Add a chunk now. Returns NoMem when capacity is reached, Ok otherwise.
  Errno addChunk();

  /// RFC 4/5: the exporter's devmem p2p ops (hmm/p2p.h), or nullptr (the default: no p2p, an
  /// importer's DMA map falls back to faulting these pages to system memory). Non-owning.
  void setP2pOps(DevmemP2pOps* ops) { p2pOps_ = ops; }
  DevmemP2pOps* p2pOps() const { return p2pOps_; }

  const void* owner() const { return owner_; }
  MemoryType type() const { return params_.type; }
  const DeviceMemoryParams& params() const { return params_; }
  PhysMem& physMem() { return pm_; }
  std::uint64_t freePages() const { return freePages_.size() + freeFolios_.size() * kPagesPerPmd; }
  std::uint64_t allocatedPages() const { return allocated_; }
  StatsGroup& stats() { return stats_; }

 private:
  void relist(Pfn head, unsigned order);

  PhysMem& pm_;
  DeviceMemoryParams params_;
  const void* owner_;
  std::vector<std::unique_ptr<Chunk>> chunks_;
  std::vector<Pfn> freePages_;   // LIFO
  std::vector<Pfn> freeFolios_;  // LIFO, PMD-order heads
  std::uint64_t allocated_ = 0;  // pages handed out and not yet freed
  std::function<VmFaultResult(VmFault&)> migrateToRam_;
  DevmemP2pOps* p2pOps_ = nullptr;
  StatsGroup stats_;
  Counter& chunksAdded_;
  Counter& chunksRemoved_;
  Counter& pageAllocs_;
  Counter& folioAllocs_;
  Counter& allocFailures_;
  Counter& frees_;
};

}  // namespace hmmsim
