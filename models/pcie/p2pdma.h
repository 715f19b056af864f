#pragma once
// PCI peer-to-peer DMA support: the kernel's drivers/pci/p2pdma.c, both the 2019-era distance
// function that the RFC called and the modern map-type logic that the DMA API uses, plus the
// RFC's pci_test_p2p()/device_test_p2p().
//
// Models: upstream_bridge_distance (v5.0), calc_map_type_and_dist with its ACS redirect check,
// host_bridge_whitelist with the kernel's table and host-bridge function rule,
// cpu_supports_p2pdma (the CPU identity is a platform parameter), the per-provider map-type
// cache keyed (domain << 16) | pci_dev_id, pci_p2pdma_distance_many, pci_p2pmem_find_many with
// its random pick among the closest providers (seeded Rng), pci_p2pdma_add_resource with its
// -EINVAL checks, the per-BAR p2pdma_provider with bus_offset, the p2pmem gen_pool (first fit,
// PAGE_SIZE granularity), publishing, and pci_p2pdma_map_type(provider, dev).
// Leaves out: sysfs files, the MEMORY_DEVICE_PCI_P2PDMA dev_pagemap (the hmm layer builds it over
// the range recorded here), scatterlist helpers, reference counting (hmmsim devices outlive
// these calls), percpu_ref teardown.
// Differs from the kernel: the gen_pool hands out kernel virtual addresses; hmmsim has no kernel
// virtual address space, so the pool's "virtual" handle is the CPU physical address of the
// chunk (where memremap_pages would have mapped it), and pciP2pmemVirtToBus translates that.
// Timing: none (kernel bookkeeping).

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "models/pcie/topology.h"
#include "sim/errno.h"
#include "sim/rng.h"
#include "sim/stats.h"

namespace hmmsim {

/// enum pci_p2pdma_map_type.
enum class P2pMapType {
  Unknown,         ///< PCI_P2PDMA_MAP_UNKNOWN: not computed yet (never returned by lookups)
  None,            ///< PCI_P2PDMA_MAP_NONE: not a p2pdma page
  NotSupported,    ///< PCI_P2PDMA_MAP_NOT_SUPPORTED: the path crosses a host bridge that is not
                   ///< allow-listed: the DMA mapping must fail
  BusAddr,         ///< PCI_P2PDMA_MAP_BUS_ADDR: switch-local path: program the PCI bus address
                   ///< (CPU physical + bus_offset), no IOMMU mapping
  ThruHostBridge,  ///< PCI_P2PDMA_MAP_THRU_HOST_BRIDGE: through an allow-listed host bridge:
                   ///< map normally (CPU physical address or IOMMU IOVA)
};
const char* p2pMapTypeName(P2pMapType t);

enum class CpuVendor { Intel, Amd, Other };

/// The boot CPU's identity (cpu_data(0)): what cpu_supports_p2pdma() looks at.
struct CpuIdentity {
  bool x86 = true;                      ///< CONFIG_X86: the AMD rule exists only on x86
  CpuVendor vendor = CpuVendor::Intel;  ///< x86_vendor
  unsigned family = 6;                  ///< x86 family (0x17 = Zen, 0x19 = Zen 3/4, ...)
};

/// cpu_supports_p2pdma(): true for x86 AMD CPUs of family 0x17 (Zen) or newer.
bool cpuSupportsP2pdma(const CpuIdentity& cpu);

/// 2019-era upstream_bridge_distance(a, b, acs_list) as called by the RFC's pci_test_p2p():
/// walks a's chain of upstream bridges (a itself first), looking for each in b's chain.
/// Returns the sum of both hop counts to the common upstream bridge (same function 0, two
/// functions of one device 2, two devices below one switch 4); -1 if there is no common
/// upstream bridge (e.g. different root ports); -2 if a bridge on either path has ACS redirect
/// (RR, CR or EC) enabled. `acsList` (optional) receives the "bb:dd.f;" of each such bridge.
int upstreamBridgeDistance(const PciDev& a, const PciDev& b, std::string* acsList = nullptr);

/// pci_host_bridge_dev(): the first function on the host bridge's root bus if it is devfn 00.0
/// or a Root Port; nullptr otherwise.
const PciDev* pciHostBridgeDev(const PciHostBridge& host);

/// One entry of pci_p2pdma_whitelist.
struct P2pdmaWhitelistEntry {
  std::uint16_t vendor;
  std::uint16_t device;
  bool reqSameHostBridge;  ///< REQ_SAME_HOST_BRIDGE: only for p2p within one host bridge
};
inline constexpr std::uint16_t kPciVendorIdIntel = 0x8086;
inline constexpr std::uint16_t kPciVendorIdGoogle = 0x1ae0;
/// The kernel's table: Intel 0x3c00/0x3c01/0x2f00/0x2f01 (REQ_SAME_HOST_BRIDGE), Intel
/// 0x2030-0x2033/0x2020/0x09a2; Google host bridges (any device id) are accepted as well.
const std::vector<P2pdmaWhitelistEntry>& p2pdmaWhitelist();

/// host_bridge_whitelist(a, b, warn): same host bridge → its function must be listed; different
/// host bridges → both must be listed without REQ_SAME_HOST_BRIDGE. `log` receives the kernel's
/// "Host bridge not in P2PDMA whitelist" warnings when `warn`.
bool hostBridgeWhitelist(const PciDev& a, const PciDev& b, bool warn,
                         std::vector<std::string>* log = nullptr);

/// map_types_idx(client): (domain << 16) | pci_dev_id.
std::uint32_t mapTypesIdx(const PciDev& client);

/// struct p2pdma_provider: one per BAR that was added with pciP2pdmaAddResource.
struct P2pdmaProvider {
  PciDev* owner = nullptr;
  int bar = -1;
  /// pci_bus_address(owner, bar) - pci_resource_start(owner, bar), modulo 2^64.
  std::uint64_t busOffset = 0;
};

/// A range handed to the gen_pool by one pciP2pdmaAddResource call.
struct P2pmemChunk {
  Pa cpu;       ///< "virtual" handle: CPU physical address of bar start + offset
  BusAddr bus;  ///< pci_bus_address(bar) + offset: what the kernel stores as "phys"
  std::uint64_t size = 0;
  int bar = -1;
  std::vector<bool> used;  ///< one flag per PAGE_SIZE granule
};

/// struct pci_p2pdma: the per-function state behind pdev->p2pdma.
struct PciP2pdma {
  bool p2pmemPublished = false;
  /// The map-type cache (xarray map_types), keyed mapTypesIdx(client).
  std::map<std::uint32_t, P2pMapType> mapTypes;
  /// Providers by BAR (pcim_p2pdma_provider()).
  std::optional<P2pdmaProvider> mem[kPciNumBars];
  std::vector<P2pmemChunk> pool;  ///< the gen_pool, in the order chunks were added
};

struct P2pdmaParams {
  CpuIdentity cpu;  ///< boot CPU identity (default: Intel family 6, which does not qualify)
};

/// The p2pdma subsystem of one platform.
class P2pdma {
 public:
  /// `rng` drives pciP2pmemFindMany's random pick (derive it from the run seed).
  P2pdma(Topology& topo, const P2pdmaParams& params, Rng rng, const std::string& statsName);

  /// calc_map_type_and_dist(provider, client, &dist, verbose): BusAddr when both share an
  /// upstream bridge and no bridge on the two paths has ACS redirect; otherwise the host-bridge
  /// path: ThruHostBridge if cpuSupportsP2pdma() or hostBridgeWhitelist(), else NotSupported.
  /// *dist = hops of provider to the common bridge + hops of client to it (for no common bridge,
  /// the full lengths of both chains, as the kernel computes it). Stores the result in the
  /// provider's map-type cache if the provider has p2pdma state. `verbose` adds the kernel's
  /// warnings to log(); the "Host bridge not in P2PDMA whitelist" warning is logged whenever an
  /// ACS redirect forced the host-bridge path (the kernel passes acs_redirects as `warn`).
  P2pMapType calcMapTypeAndDist(PciDev& provider, PciDev& client, int* dist, bool verbose);

  /// pci_p2pdma_distance_many(): -1 if `clients` is empty, a client has no PCI parent
  /// (find_parent_pci_dev), or any client's map type is NotSupported; otherwise the sum of the
  /// distances.
  int pciP2pdmaDistanceMany(PciDev& provider, const std::vector<Device*>& clients, bool verbose);
  /// pci_p2pdma_distance(): distance_many with one client.
  int pciP2pdmaDistance(PciDev& provider, Device& client, bool verbose);

  /// pci_p2pdma_add_resource(pdev, bar, size, offset): publishes [bar start + offset, + size)
  /// for p2p use (size 0 = the rest of the BAR). Returns Errno::Ok; Errno::Inval if `bar` is out
  /// of range, the BAR is not memory (IORESOURCE_MEM) or not assigned, offset >= BAR length, or
  /// size + offset > BAR length. On success the function has p2pdma state, a provider for the
  /// BAR, and a pool chunk whose bus address is pci_bus_address + offset.
  Errno pciP2pdmaAddResource(PciDev& pdev, int bar, std::uint64_t size, std::uint64_t offset);

  /// pci_p2pmem_publish(): only published memory is found by pciP2pmemFindMany. No effect on a
  /// function without p2pdma state.
  void pciP2pmemPublish(PciDev& pdev, bool publish);
  /// pci_has_p2pmem(): p2pdma state and published.
  bool pciHasP2pmem(const PciDev& pdev) const;

  /// pci_p2pmem_find_many(): among functions with published p2pmem (in for_each_pci_dev order),
  /// those with the minimum non-negative pciP2pdmaDistanceMany; one of them at random (seeded);
  /// nullptr if none. At most PAGE_SIZE / sizeof(pointer) = 512 candidates are kept, as in the kernel.
  PciDev* pciP2pmemFindMany(const std::vector<Device*>& clients);
  /// pci_p2pmem_find(client).
  PciDev* pciP2pmemFind(Device& client);

  /// pci_alloc_p2pmem(): `size` bytes (rounded up to PAGE_SIZE) from the function's pool, first
  /// fit over chunks in order. Returns the CPU physical address (the pool's handle, see header),
  /// or nullopt if the function has no p2pdma state or no room (the kernel's NULL).
  std::optional<Pa> pciAllocP2pmem(PciDev& pdev, std::uint64_t size);
  /// pci_free_p2pmem(): returns a range obtained from pciAllocP2pmem. Freeing a range that is
  /// not allocated is a simulator bug (asserts), as gen_pool_free BUG()s.
  void pciFreeP2pmem(PciDev& pdev, Pa addr, std::uint64_t size);
  /// pci_p2pmem_virt_to_bus(): the bus address of a pool handle; BusAddr(0) if the function has
  /// no p2pdma state or `addr` is not in its pool.
  BusAddr pciP2pmemVirtToBus(const PciDev& pdev, Pa addr) const;
  /// Bytes still free in the function's pool (p2pmem/available).
  std::uint64_t pciP2pmemAvailable(const PciDev& pdev) const;

  /// pcim_p2pdma_provider(pdev, bar): the provider for an added BAR, or nullptr.
  const P2pdmaProvider* pciP2pdmaProvider(const PciDev& pdev, int bar) const;

  /// The provider whose published range (a pool chunk) holds CPU physical address `pa`, or
  /// nullptr: what the kernel reaches through page->pgmap (to_p2p_pgmap(pgmap)->mem) for a
  /// MEMORY_DEVICE_PCI_P2PDMA page. For layers that have a physical address but no pgmap.
  const P2pdmaProvider* providerOfPhys(Pa pa) const;

  /// pci_p2pdma_map_type(provider, dev): NotSupported if the provider's owner has no p2pdma
  /// state or `dev` is not itself a PCI function (no parent walk, as in the kernel); otherwise
  /// the cached map type, computed (verbosely) on a cache miss.
  P2pMapType pciP2pdmaMapType(const P2pdmaProvider& provider, Device& dev);

  const CpuIdentity& cpu() const { return params_.cpu; }
  /// Kernel warnings (pci_warn / dev_warn text) in the order they were issued.
  const std::vector<std::string>& log() const { return log_; }
  const StatsGroup& stats() const { return stats_; }

 private:
  Topology& topo_;
  P2pdmaParams params_;
  Rng rng_;
  std::vector<std::string> log_;
  StatsGroup stats_;
  Counter& calcCount_;
  Counter& cacheHits_;
  Counter& notSupported_;
  Counter& allocFail_;
};

/// The RFC's pci_test_p2p(devA, devB) (patch 1/5): true if both devices have a PCI parent
/// (find_parent_pci_dev) and upstreamBridgeDistance() of the two is >= 0.
/// The posted patch computed this and then returned false unconditionally ("This function only
/// ever returns false", Logan Gunthorpe); hmmsim returns the computed result.
bool pciTestP2p(Device& a, Device& b);
/// The RFC's device_test_p2p(devA, devB) (patch 2/5, drivers/base/core.c): pciTestP2p().
bool deviceTestP2p(Device& a, Device& b);

}  // namespace hmmsim
