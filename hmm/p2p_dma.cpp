// P2pDmaMapper. See p2p_dma.h.
#include "hmm/p2p_dma.h"

#include "models/pcie/pci_dev.h"
#include "models/pcie/topology.h"

namespace hmmsim {

P2pDmaMapper::P2pDmaMapper(P2pdma& p2pdma, DmaMapping& dma, const std::string& statsName)
    : p2pdma_(p2pdma),
      dma_(dma),
      stats_(statsName),
      maps_(stats_.counter("maps", "mappings", "p2p addresses handed to importers")),
      refused_(
          stats_.counter("refused", "mappings", "p2p maps refused (NOT_SUPPORTED or DMA-layer failure)")),
      unmaps_(stats_.counter("unmaps", "mappings", "p2p addresses taken back")),
      ignored_(stats_.counter("map_type_ignored", "mappings",
                              "bus addresses handed out against the map type (a misbehaving exporter)")) {}

P2pMapType P2pDmaMapper::mapType(PciDev& exporter, Device& importer) {
  const auto key =
      std::make_pair(static_cast<const PciDev*>(&exporter), static_cast<const Device*>(&importer));
  auto it = types_.find(key);
  if (it != types_.end()) return it->second;
  PciDev* client = pciFindParentDev(&importer);
  P2pMapType t = P2pMapType::NotSupported;
  if (client) {
    int dist = 0;
    t = p2pdma_.calcMapTypeAndDist(exporter, *client, &dist, false);
  }
  types_.emplace(key, t);
  return t;
}

DmaAddr P2pDmaMapper::map(PciDev& exporter, int bar, Device& importer, Pa pa, std::uint64_t size, DmaDir dir,
                          P2pMapType* typeOut, bool ignoreType) {
  const P2pMapType t = mapType(exporter, importer);
  if (typeOut) *typeOut = t;
  const std::uint64_t busOffset =
      pciBusAddress(exporter, bar).value() - pciResourceStart(exporter, bar).value();
  // The misbehaving driver computes pci_bus_address() + offset itself: the DMA layer records it
  // as a bus-address mapping (what BUS_ADDR would have been), so its unmap stays balanced.
  const bool ignored = ignoreType && t != P2pMapType::BusAddr && pciFindParentDev(&importer) != nullptr;
  const DmaAddr a = dma_.dmaMapP2p(importer, pa, size, dir, ignored ? P2pMapType::BusAddr : t, busOffset);
  if (ignored && !dma_.dmaMappingError(importer, a)) ++ignored_;
  if (dma_.dmaMappingError(importer, a)) {
    ++refused_;
    return kDmaMappingError;
  }
  ++maps_;
  return a;
}

Errno P2pDmaMapper::unmap(Device& importer, DmaAddr addr, std::uint64_t size, DmaDir dir) {
  const Errno e = dma_.dmaUnmapP2p(importer, addr, size, dir);
  if (e == Errno::Ok) ++unmaps_;
  return e;
}

}  // namespace hmmsim
