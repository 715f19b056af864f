// DmaMapping's p2pdma entry points, apart from the rest so that the DMA layer's core does not
// depend on the p2pdma model (only these two functions need P2pMapType).
#include "models/pcie/dma_mapping.h"

#include "models/pcie/p2pdma.h"
#include "sim/assert.h"

namespace hmmsim {

DmaAddr DmaMapping::dmaMapP2p(const Device& dev, Pa pa, std::uint64_t size, DmaDir dir, P2pMapType type,
                              std::uint64_t busOffset) {
  Cookie* c = cookieOf(dev);
  if (!c) return fail();
  HMMSIM_ASSERT(dir != DmaDir::None, "DMA_NONE passed to a map call (the kernel BUG()s)");
  switch (type) {
    case P2pMapType::BusAddr: {
      // pci_p2pdma_bus_addr_map(): the switch routes the bus address to the peer; the IOMMU is
      // not on the path, so nothing is mapped there.
      if (size == 0) return fail();
      const std::uint64_t dma = pa.value() + busOffset;
      c->live.emplace(dma, Live{size, dir, Kind::P2pBusAddr});
      liveMappings_.set(liveMappings_.value() + 1);
      ++maps_;
      return DmaAddr(dma);
    }
    case P2pMapType::ThruHostBridge:
      // The host bridge forwards the TLP to the peer; with an IOMMU it is translated like any
      // MMIO mapping (the kernel maps p2pdma pages through the normal DMA path here).
      return mapCommon(*c, pa, size, dir, Kind::Resource, true);
    case P2pMapType::None:
      return mapCommon(*c, pa, size, dir, Kind::Page, false);
    case P2pMapType::NotSupported:
    case P2pMapType::Unknown:
      return fail();
  }
  return fail();
}

DmaAddr DmaMapping::dmaMapPageP2pdma(Device& dev, Pa pa, std::uint64_t size, DmaDir dir, P2pdma& p2pdma,
                                     P2pMapType* typeOut) {
  const P2pdmaProvider* provider = p2pdma.providerOfPhys(pa);
  const P2pMapType type = provider ? p2pdma.pciP2pdmaMapType(*provider, dev) : P2pMapType::None;
  if (typeOut) *typeOut = type;
  return dmaMapP2p(dev, pa, size, dir, type, provider ? provider->busOffset : 0);
}

Errno DmaMapping::dmaUnmapP2p(const Device& dev, DmaAddr addr, std::uint64_t size, DmaDir dir) {
  Cookie* c = cookieOf(dev);
  if (!c) return Errno::NoDev;
  auto it = c->live.find(addr.value());
  Kind kind = it != c->live.end() ? it->second.kind : Kind::Page;
  return unmapCommon(*c, addr, size, dir, kind);
}

}  // namespace hmmsim
