#pragma once
// DmaMapping: the kernel's streaming DMA API for devices behind an Iommu (kernel/dma/mapping.c
// with dma-direct, and drivers/iommu/dma-iommu.c for the IOMMU path).
//
// Models:
//  - dmaMapPage / dmaUnmapPage (dma_map_page_attrs / dma_unmap_page_attrs, with page+offset
//    given as one Pa) and dmaMapResource / dmaUnmapResource (dma_map_resource: MMIO such as a
//    peer's BAR reached through the host bridge), dmaMappingError (dma_mapping_error);
//  - the direct path (IOMMU off, passthrough, or an identity domain): the DMA address is the
//    physical address plus the device's bus offset (dma_range_map), checked against the DMA
//    mask; dma_map_resource applies no offset (dma_direct_map_resource);
//  - the IOMMU path: one default DMA domain per device, an IOVA allocator (IovaDomain)
//    top-down from min(DMA mask, bus limit, 48-bit aperture), first below 4 GiB for PCI devices
//    (the SAC workaround, dropped for a device after its first 32-bit failure), sizes below 32
//    pages rounded up to a power of two, every allocation size-aligned; host-bridge memory
//    windows and the x86 MSI range reserved up front (iommu_dma_reserve_iova /
//    IOMMU_RESV_MSI) so an IOVA never aliases a peer BAR or the interrupt range;
//  - strict unmap (IOTLB invalidated before return, IOVA freed at once) or lazy unmap (the
//    kernel's flush queue: PTEs cleared, IOVA and IOTLB flush deferred until the queue fills or
//    its timer expires; the IOVA stays allocated meanwhile so it cannot be reused while stale);
//  - p2p: dmaMapP2p() dispatches on the p2pdma map type — BusAddr mappings bypass the IOMMU
//    and return the PCI bus address (pci_p2pdma_bus_addr_map), ThruHostBridge mappings go
//    through the IOMMU like MMIO, NotSupported fails.
//  - a dma-debug style record of live mappings: unmapping what was never mapped, with another
//    size or another direction returns Inval and changes nothing (the kernel WARNs).
//
//  - the two-step API of Linux 6.15+ (dma_iova_try_alloc, dma_iova_link, dma_iova_unlink,
//    dma_iova_free; models/pcie/dma_iova.cpp): one IOVA range, pages linked at offsets the
//    caller picks, so a mirror's pages are IOVA-contiguous whatever their frames.
//
// Leaves out: swiotlb bouncing (a direct mapping the device cannot reach fails instead of
// bouncing; counted in "direct_unreachable"), scatterlists, coherent allocations, the per-CPU
// IOVA rcaches, multi-device IOMMU groups sharing a default domain.
//
// Timing: none; what an unmap's IOTLB invalidation costs is recorded by the Iommu
// (Iommu::invalidationPs) for the caller's SystemC shell to charge. The flush-queue timer runs
// on the simulated time given to tick(); the SystemC shell calls tick() at its synchronisation
// points, tests call it directly.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "models/pcie/iommu.h"
#include "models/pcie/iova.h"
#include "sim/device.h"
#include "sim/errno.h"
#include "sim/stats.h"
#include "sim/strong_types.h"

namespace hmmsim {

enum class P2pMapType;
class P2pdma;

/// enum dma_data_direction, with the kernel's values.
enum class DmaDir {
  Bidirectional = 0,  ///< DMA_BIDIRECTIONAL: the device reads and writes
  ToDevice = 1,       ///< DMA_TO_DEVICE: the device reads memory
  FromDevice = 2,     ///< DMA_FROM_DEVICE: the device writes memory
  None = 3,           ///< DMA_NONE: invalid for mapping (the kernel BUG()s)
};

/// DMA_MAPPING_ERROR: what a failed map returns.
inline constexpr DmaAddr kDmaMappingError{~0ull};

/// DMA_BIT_MASK(n).
constexpr std::uint64_t dmaBitMask(unsigned n) {
  return n >= 64 ? ~0ull : (1ull << n) - 1;
}

/// dma_info_to_prot(): the IOMMU permissions a direction needs.
IommuProt dmaDirToProt(DmaDir dir);

/// A bus-address range no IOVA may alias (a host-bridge window, the MSI range).
struct IovaWindow {
  BusAddr start{};         ///< first byte
  std::uint64_t size = 0;  ///< bytes
};

/// struct dma_iova_state: one IOVA range allocated by dmaIovaTryAlloc, into which pages are
/// linked at chosen offsets (the two-step DMA API of Linux 6.15+, used by hmm_dma_map_pfn).
struct DmaIovaState {
  DmaAddr addr{};               ///< first byte of the range (0 when not allocated)
  std::uint64_t size = 0;       ///< bytes asked for
  std::uint64_t linked = 0;     ///< pages linked now
  const Device* dev = nullptr;  ///< whose IOVA space it is in
  /// Per page of the range: how many holders linked it. hmm_dma_map_pfn finds a page already
  /// DMA-mapped (HMM_PFN_DMA_MAPPED) and reuses its link; a mirror that maps a range again
  /// before it gives the old entries back holds one page twice, and only the last unlink unmaps.
  std::vector<std::uint16_t> refs;
  bool allocated() const { return size != 0; }
};

/// What the DMA layer needs to know about one device.
struct DmaDeviceParams {
  Bdf bdf{};                                ///< requester id the IOMMU sees
  std::uint64_t dmaMask = dmaBitMask(64);   ///< dma_set_mask(): highest DMA address the device can emit
  std::uint64_t busDmaLimit = 0;            ///< dev->bus_dma_limit; 0 = none
  std::uint64_t dmaOffset = 0;              ///< bytes, modulo 2^64; direct path: dma = phys + dmaOffset
  std::vector<IovaWindow> reservedWindows;  ///< the host bridge's PCI memory windows (bus addresses)
  bool isPci = true;                        ///< dev_is_pci(): try 32-bit IOVAs first (SAC workaround)
  /// IOMMU group: an attached device whose group this one joins (sharing its default domain,
  /// IOVA space and flush queue, as functions without ACS isolation do); nullptr = own group.
  /// Which devices share a group is the topology's call (pci_device_group).
  const Device* groupWith = nullptr;
};

struct DmaMappingParams {
  std::size_t flushQueueSize = 256;  ///< count; 256; IOVA_DEFAULT_FQ_SIZE entries before a forced flush
  std::uint64_t flushQueueTimeoutPs =
      10'000'000'000;  ///< ps; 10 ms; IOVA_FQ_TIMEOUT after the first queued entry
  std::vector<IovaWindow> platformReserved{
      {BusAddr(0xfee0'0000), 0x10'0000}};  ///< x86 interrupt range (IOMMU_RESV_MSI)
  bool forceDac = false;                   ///< -; false; iommu.forcedac=1: no 32-bit-first attempt
  /// pfn_valid() for dma_map_resource's "not RAM" check; empty = accept everything.
  std::function<bool(Pa)> isRam;
};

class DmaMapping {
 public:
  /// `name` names the stats group ("top.dma"). `iommu` must outlive this object; its mode
  /// and invalidation policy decide the path.
  DmaMapping(std::string name, Iommu& iommu, const DmaMappingParams& params);
  ~DmaMapping();
  DmaMapping(const DmaMapping&) = delete;
  DmaMapping& operator=(const DmaMapping&) = delete;

  /// Probes `dev` for DMA (iommu_probe_device + default domain + iommu_dma_init_domain):
  /// Translate mode gives its IOMMU group a DMA domain with the reserved windows carved out of
  /// its IOVA space, Passthrough an identity domain, Off nothing; with params.groupWith it joins
  /// that device's domain (its own reserved windows are added to the shared IOVA space).
  /// Returns Ok; Exist if already attached; Busy if its Bdf is already attached to the IOMMU by
  /// someone else; Inval if dmaMask is 0; NoDev if groupWith is not attached here.
  Errno attachDevice(const Device& dev, const DmaDeviceParams& params);
  /// Releases `dev`; the group's domain goes when its last device leaves. Returns Ok; NoDev if
  /// not attached; Busy while mappings are live or while another device joined the group
  /// through it (groupWith).
  Errno detachDevice(const Device& dev);

  /// dma_map_page_attrs(): maps [pa, pa+size) for `dev`. Returns the DMA address or
  /// kDmaMappingError (not attached, size 0, mask unreachable, IOVA space full, map failure).
  DmaAddr dmaMapPage(const Device& dev, Pa pa, std::uint64_t size, DmaDir dir);
  /// dma_unmap_page_attrs(). Returns Ok; Inval if (addr, size, dir) does not match a live
  /// mapping of `dev` made by dmaMapPage (nothing changes then); NoDev if not attached.
  Errno dmaUnmapPage(const Device& dev, DmaAddr addr, std::uint64_t size, DmaDir dir);
  /// dma_map_resource(): maps MMIO (a peer's BAR at CPU physical address `pa`). Fails like
  /// dmaMapPage, and also when params.isRam says `pa` is RAM.
  DmaAddr dmaMapResource(const Device& dev, Pa pa, std::uint64_t size, DmaDir dir);
  /// dma_unmap_resource(). Returns as dmaUnmapPage (for mappings made by dmaMapResource).
  Errno dmaUnmapResource(const Device& dev, DmaAddr addr, std::uint64_t size, DmaDir dir);
  /// dma_mapping_error(): true for kDmaMappingError.
  bool dmaMappingError(const Device& dev, DmaAddr addr) const;

  /// Maps a peer's p2pdma memory at CPU physical `pa` for `dev` according to `type` (the
  /// provider/client map type from P2pdma): BusAddr returns pa + busOffset (the provider's
  /// pci_bus_address - resource_start) and involves no IOMMU; ThruHostBridge maps it through
  /// the IOMMU like dmaMapResource; None maps it as a page; NotSupported and Unknown fail.
  /// Unmap with dmaUnmapP2p().
  DmaAddr dmaMapP2p(const Device& dev, Pa pa, std::uint64_t size, DmaDir dir, P2pMapType type,
                    std::uint64_t busOffset);
  /// The p2pdma-aware map of one range (the kernel's pci_p2pdma_state + DMA map for a
  /// MEMORY_DEVICE_PCI_P2PDMA page): the provider is found from `pa` (P2pdma::providerOfPhys),
  /// the map type from pciP2pdmaMapType(provider, dev), then it maps as dmaMapP2p(). A `pa` that
  /// is not published p2pdma memory maps as a normal page. `typeOut`, if given, receives the map
  /// type used (None for a normal page). Unmap with dmaUnmapP2p().
  DmaAddr dmaMapPageP2pdma(Device& dev, Pa pa, std::uint64_t size, DmaDir dir, P2pdma& p2pdma,
                           P2pMapType* typeOut = nullptr);
  /// Undoes dmaMapP2p() and dmaMapPageP2pdma(). Returns as dmaUnmapPage.
  Errno dmaUnmapP2p(const Device& dev, DmaAddr addr, std::uint64_t size, DmaDir dir);

  /// dma_iova_try_alloc(): allocates `size` bytes of IOVA space for `dev` into `state` (which
  /// must be unallocated). False, and `state` untouched, when `dev` does not translate through
  /// the IOMMU (dma-direct: off, passthrough, identity; the caller maps page by page instead),
  /// is not attached, `size` is 0, or the IOVA space is full.
  bool dmaIovaTryAlloc(const Device& dev, DmaIovaState& state, std::uint64_t size);
  /// dma_iova_link() + dma_iova_sync(): maps [pa, pa + size) at state.addr + offset (pa, offset
  /// and size 4 KiB aligned, inside the range). A page linked already to the same frame is held
  /// once more (see DmaIovaState::refs). Returns Ok; Inval for a misaligned or out-of-range
  /// request; Exist if a page is linked to another frame (nothing changes then).
  Errno dmaIovaLink(const Device& dev, DmaIovaState& state, Pa pa, std::uint64_t offset, std::uint64_t size,
                    DmaDir dir);
  /// dma_iova_unlink(): drops one hold on each page of [offset, offset + size); a page whose last
  /// hold goes is unmapped and the IOTLB flushed before returning, whatever the invalidation
  /// policy (the IOVA stays allocated, so nothing is queued). Returns Ok; Inval if a page is not
  /// linked (nothing changes then).
  Errno dmaIovaUnlink(const Device& dev, DmaIovaState& state, std::uint64_t offset, std::uint64_t size,
                      DmaDir dir);
  /// dma_iova_free(): gives the range back (every page must be unlinked first: a simulator bug
  /// otherwise). `state` becomes unallocated.
  void dmaIovaFree(const Device& dev, DmaIovaState& state);

  /// Advances the flush-queue clock to `nowPs` (an earlier time than the last one is ignored,
  /// as initiators under temporal decoupling may lag); queues whose timer expired are flushed
  /// (IOTLB flush of the domain, then their IOVAs freed).
  void tick(std::uint64_t nowPs);
  std::uint64_t nowPs() const { return nowPs_; }
  /// Flushes every flush queue now (what iommu_dma's fq_flush_timeout does).
  void flushAllQueues();
  /// Entries waiting in `dev`'s flush queue (0 in strict mode or when not attached).
  std::size_t flushQueueDepth(const Device& dev) const;

  /// The IOMMU behind this DMA layer (its invalidationPs() is what unmaps cost their callers).
  const Iommu& iommu() const { return iommu_; }
  Iommu& iommu() { return iommu_; }
  /// The device's DMA domain (nullptr when not attached or in Off mode).
  IommuDomain* domainOf(const Device& dev);
  /// The device's IOVA allocator (nullptr unless it has a DMA domain).
  const IovaDomain* iovaDomainOf(const Device& dev) const;

  /// Stats: maps, unmaps, map_errors, bad_unmaps, direct_unreachable, iova_alloc_failures,
  /// fq_queued, fq_flushes_full, fq_flushes_timeout, live_mappings (scalar).
  const StatsGroup& stats() const { return stats_; }

 private:
  enum class Kind { Page, Resource, P2pBusAddr };
  struct Live {
    std::uint64_t size = 0;  // bytes as the driver passed them
    DmaDir dir = DmaDir::None;
    Kind kind = Kind::Page;
  };
  struct FqEntry {
    std::uint64_t pfn = 0;
  };
  struct DomainCookie {             // per domain: the kernel's iommu_dma_cookie (shared by an IOMMU group)
    IommuDomain* domain = nullptr;  // nullptr in Off mode
    std::unique_ptr<IovaDomain> iovad;  // only for DMA domains
    std::vector<FqEntry> fq;            // flush queue (lazy mode)
    bool fqTimerArmed = false;
    std::uint64_t fqDeadlinePs = 0;
    unsigned users = 0;  // devices attached
  };
  struct Cookie {  // per device: its DMA parameters and dma-debug's view
    const Device* dev = nullptr;
    DmaDeviceParams params;
    std::shared_ptr<DomainCookie> dc;         // never null
    bool sac = true;                          // pci_32bit_workaround
    std::multimap<std::uint64_t, Live> live;  // DMA address -> mappings (dma-debug)
  };

  Cookie* cookieOf(const Device& dev);
  const Cookie* cookieOf(const Device& dev) const;
  bool translating(const Cookie& c) const {
    return c.dc->domain && c.dc->domain->type() == IommuDomainType::Dma;
  }
  /// The IOVA allocation of every map (iommu_dma_alloc_iova): page number, or nullopt (counted).
  std::optional<std::uint64_t> allocIovaFor(Cookie& c, std::uint64_t bytes);
  DmaAddr mapCommon(Cookie& c, Pa pa, std::uint64_t size, DmaDir dir, Kind kind, bool mmio);
  Errno unmapCommon(Cookie& c, DmaAddr addr, std::uint64_t size, DmaDir dir, Kind kind);
  std::uint64_t iovaPages(std::uint64_t bytes) const;
  void fqFlush(DomainCookie& dc);
  DmaAddr fail();

  Iommu& iommu_;
  DmaMappingParams params_;
  StatsGroup stats_;
  std::vector<std::unique_ptr<Cookie>> cookies_;        // attach order
  std::vector<std::shared_ptr<DomainCookie>> domains_;  // creation order (deterministic flush order)
  std::uint64_t nowPs_ = 0;

  Counter& maps_;
  Counter& unmaps_;
  Counter& mapErrors_;
  Counter& badUnmaps_;
  Counter& directUnreachable_;
  Counter& iovaAllocFailures_;
  Counter& fqQueued_;
  Counter& fqFlushesFull_;
  Counter& fqFlushesTimeout_;
  Scalar& liveMappings_;
  Counter& iovaRanges_;
  Counter& iovaLinks_;
  Counter& iovaUnlinks_;
};

}  // namespace hmmsim
