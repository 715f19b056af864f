#pragma once
// P2pDmaMapper: the address an exporter hands to an importer for a page of its BAR, following
// the p2pdma map type between the two PCI functions (drivers/pci/p2pdma.c's
// pci_p2pdma_map_type + the DMA API), as the RFC's p2p_map callbacks must produce it
// ("the exporter driver provides the physical/bus address").
//
//   BUS_ADDR          -> the PCI bus address (CPU physical + the BAR's bus offset): the TLP turns
//                        around in the common switch, no IOMMU on the path;
//   THRU_HOST_BRIDGE  -> dma_map_resource() for the importer: an IOVA with the IOMMU translating,
//                        the CPU physical address with it off or in passthrough;
//   NOT_SUPPORTED     -> refused (kDmaMappingError): the exporter declines (devmem: fallback to
//                        system memory; special vma: an error for the importer).
// Every successful map is a live DMA-API mapping of the importer (dma-debug record), undone with
// unmap() exactly once. Map types are computed once per (exporter, importer) pair and cached, as
// the kernel caches them per provider; clearMapTypeCache() after an ACS or topology change.
// Leaves out: the kernel's requirement that the exporter published the BAR with
// pci_p2pdma_add_resource (RFC exporters have no struct pages; the map type is computed from the
// two functions directly with calc_map_type_and_dist).
// Timing: none (pure core).

#include <cstdint>
#include <map>
#include <utility>

#include "models/pcie/dma_mapping.h"
#include "models/pcie/p2pdma.h"
#include "sim/device.h"
#include "sim/stats.h"
#include "sim/strong_types.h"

namespace hmmsim {

class PciDev;

class P2pDmaMapper {
 public:
  P2pDmaMapper(P2pdma& p2pdma, DmaMapping& dma, const std::string& statsName = "p2p_dma");

  /// The map type between exporter function `exporter` and `importer` (its PCI function: the
  /// device itself or its nearest PCI parent). NotSupported when the importer has no PCI function.
  P2pMapType mapType(PciDev& exporter, Device& importer);
  /// Map [pa, pa + size) of the exporter's BAR `bar` (CPU physical addresses) for `importer`.
  /// Returns the address the importer must use, or kDmaMappingError (map type NotSupported, the
  /// importer not attached to the DMA layer, IOVA space full). `typeOut` (optional) gets the type.
  /// `ignoreType` (misbehaviour, P2pExporterParams::ignoreMapType): hand out the BAR's bus
  /// address whatever the map type says, as a driver that never asks pci_p2pdma_map_type() does
  /// (counted in "map_type_ignored" when the type was not BusAddr).
  DmaAddr map(PciDev& exporter, int bar, Device& importer, Pa pa, std::uint64_t size, DmaDir dir,
              P2pMapType* typeOut = nullptr, bool ignoreType = false);
  /// Undo map(). Returns dmaUnmapP2p's result (Ok; Inval for an unknown mapping; NoDev).
  Errno unmap(Device& importer, DmaAddr addr, std::uint64_t size, DmaDir dir);

  void clearMapTypeCache() { types_.clear(); }
  DmaMapping& dma() { return dma_; }
  P2pdma& p2pdma() { return p2pdma_; }
  StatsGroup& stats() { return stats_; }

 private:
  P2pdma& p2pdma_;
  DmaMapping& dma_;
  std::map<std::pair<const PciDev*, const Device*>, P2pMapType> types_;
  StatsGroup stats_;
  Counter& maps_;     ///< "maps": successful maps
  Counter& refused_;  ///< "refused": maps refused (NotSupported or a DMA-layer failure)
  Counter& unmaps_;   ///< "unmaps": successful unmaps
  Counter& ignored_;  ///< "map_type_ignored": maps that handed out the bus address against the type
};

}  // namespace hmmsim
