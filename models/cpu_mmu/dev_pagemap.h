#pragma once
// struct dev_pagemap and struct dev_pagemap_ops (include/linux/memremap.h): ZONE_DEVICE memory
// as the core mm sees it.
//
// Models: the memory types (device private, device coherent, fs-dax, generic, PCI p2pdma), the
// pgmap descriptor that every ZONE_DEVICE frame points to (Frame::pgmap), and the callbacks the
// core mm makes into the owning driver: folio_free when a device frame's refcount drops to zero,
// migrate_to_ram when the CPU faults on a device-private entry, memory_failure, folio_split.
// The interface is declared here, in the lower layer, exactly where the kernel declares it;
// memremap_pages()/memunmap_pages() and the implementations live in hmm/ and models/devices/.
// Leaves out: altmap, the per-cpu ref of the pgmap (a plain count of live pages here), vmemmap
// optimisation. Timing: none (pure core).

#include <cstdint>
#include <vector>

#include "models/cpu_mmu/frame.h"
#include "models/cpu_mmu/vm_fault.h"
#include "sim/errno.h"
#include "sim/strong_types.h"

namespace hmmsim {

/// enum memory_type (same values as the kernel).
enum class MemoryType {
  /// MEMORY_DEVICE_PRIVATE: device memory the CPU cannot address. Mapped in the CPU page table
  /// only as device-private swap entries; a CPU access faults and calls ops->migrateToRam.
  /// Never pinned (GUP faults it back to RAM first).
  DevicePrivate = 1,
  /// MEMORY_DEVICE_COHERENT: device memory the CPU addresses coherently (CXL, xGMI). Mapped by
  /// normal present PTEs; migratable; never long-term pinned (FOLL_LONGTERM migrates it out).
  DeviceCoherent,
  /// MEMORY_DEVICE_FS_DAX: persistent memory under a DAX filesystem.
  FsDax,
  /// MEMORY_DEVICE_GENERIC: device memory with struct pages and no special handling.
  Generic,
  /// MEMORY_DEVICE_PCI_P2PDMA: a PCI BAR published for peer-to-peer DMA (drivers/pci/p2pdma.c).
  PciP2pdma,
};

const char* memoryTypeName(MemoryType t);

struct VmFault;

/// struct dev_pagemap_ops: the driver's callbacks. Contract: called by the core mm with no
/// page-table state held open across the call; implementations may call back into the mm
/// (migrate_vma_* from migrateToRam is the normal case).
/// It is a FrameFreeHook (frame.h), so memremap_pages can register the ops with
/// PhysMem::addDeviceRange and PhysMem::putPage calls folioFree directly at refcount zero.
class DevPagemapOps : public FrameFreeHook {
 public:
  ~DevPagemapOps() override = default;

  /// folio_free (page_free in kernels before 6.x): the refcount of device frame `pfn` (the head
  /// of its folio) reached zero; the driver returns it to its allocator. Called for every
  /// ZONE_DEVICE type except FsDax/Generic, whose pages are freed by their own owners.
  void folioFree(Pfn pfn) override = 0;

  /// migrate_to_ram: the CPU faulted on a device-private entry for vmf.page (the device page;
  /// vmf.origPte holds the entry). The driver migrates the page (or its whole folio) back to
  /// system memory, normally with migrate_vma_setup(SELECT_DEVICE_PRIVATE, fault_page=vmf.page)
  /// + migrate_vma_pages + migrate_vma_finalize, and returns:
  ///   None (0)   the entry was replaced (or someone else already migrated it); the access retries,
  ///   Sigbus     the migration could not be set up (dmirror: migrate_vma_setup failed),
  ///   Oom        no system page for the copy.
  /// Only called for MemoryType::DevicePrivate. The default returns Sigbus (a private pgmap
  /// without migrate_to_ram is refused by memremap_pages in the kernel).
  virtual VmFaultResult migrateToRam(VmFault& vmf);

  /// memory_failure: `nrPages` frames from `pfn` were reported poisoned. Returns Ok when the
  /// driver handled it, OpNotSupp when it does not implement the hook (the default; the kernel
  /// then falls back to the generic handler).
  virtual Errno memoryFailure(Pfn pfn, std::uint64_t nrPages, int mfFlags);

  /// folio_split: a device folio with head `head` is being split; `tail` becomes its own folio.
  /// Default: nothing to do.
  void folioSplit(Pfn head, Pfn tail) override;
};

/// struct dev_pagemap: one registered range of ZONE_DEVICE frames.
/// Ownership: the driver owns the DevPagemap and its ops; frames point to it (Frame::pgmap) from
/// memremap_pages until memunmap_pages, and the pgmap must outlive every frame reference.
struct DevPagemap {
  MemoryType type = MemoryType::DevicePrivate;
  DevPagemapOps* ops = nullptr;  ///< driver callbacks (non-owning); required for DevicePrivate
  /// Opaque owner id (pgmap->owner): hmm_range_fault reports device-private pages only when it
  /// equals range->dev_private_owner; migrate_vma selects device pages only of this owner; the
  /// MIGRATE notifier carries it so a driver can skip its own migrations.
  const void* owner = nullptr;
  /// The frames of this pgmap: [pfnFirst, pfnFirst + nrPages) (struct range, one range; the
  /// kernel allows several through nr_range, which no hmmsim device needs).
  Pfn pfnFirst;
  std::uint64_t nrPages = 0;
  /// vmemmap_shift: folios of this pgmap have order vmemmapShift (0 = 4 KiB pages, 9 = PMD).
  unsigned vmemmapShift = 0;
  /// Frames of this pgmap with a non-zero refcount (the kernel's pgmap->ref percpu count of
  /// pages in use); memunmap_pages waits for it to drop to zero.
  std::uint64_t liveFrames = 0;

  bool contains(Pfn pfn) const { return pfn >= pfnFirst && pfn - pfnFirst < nrPages; }
};

inline bool isDevicePrivate(const DevPagemap* p) {
  return p && p->type == MemoryType::DevicePrivate;
}
inline bool isDeviceCoherent(const DevPagemap* p) {
  return p && p->type == MemoryType::DeviceCoherent;
}
inline bool isPciP2pdma(const DevPagemap* p) {
  return p && p->type == MemoryType::PciP2pdma;
}
inline bool isFsDax(const DevPagemap* p) {
  return p && p->type == MemoryType::FsDax;
}
/// folio_is_zone_device with a pgmap that calls folio_free on refcount zero (free_zone_device_folio).
inline bool pgmapFreesOnZeroRef(const DevPagemap* p) {
  return p && (p->type == MemoryType::DevicePrivate || p->type == MemoryType::DeviceCoherent ||
               p->type == MemoryType::PciP2pdma);
}

}  // namespace hmmsim
