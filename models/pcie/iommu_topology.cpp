#include "models/pcie/iommu_topology.h"

namespace hmmsim {

DmaDeviceParams pciDmaDeviceParams(const PciDev& dev, const Topology& topo, std::uint64_t dmaMask) {
  DmaDeviceParams p;
  p.bdf = dev.bdf();
  p.dmaMask = dmaMask;
  p.isPci = true;
  const PciHostBridge& hb = topo.hostBridgeOf(dev);
  for (const HostWindow* w : {&hb.mem(), &hb.pref()})
    if (w->size) p.reservedWindows.push_back(IovaWindow{w->busBase, w->size});
  return p;
}

RcAddressResolver iommuRcAddressResolver(const Iommu& iommu, const Topology& topo) {
  return [&iommu, &topo](const PciDev& requester, std::uint64_t addr, const TlpRouteAttrs& attrs) {
    RcResolveResult r;
    const Bdf rid = attrs.requesterId.value_or(requester.bdf());
    const IommuDomain* d = iommu.mode() == IommuMode::Translate ? iommu.domainForDev(rid) : nullptr;
    const bool translating = d && d->type() == IommuDomainType::Dma;
    if (iommu.mode() == IommuMode::Translate && !d) {
      r.ok = false;  // no context entry
      return r;
    }
    if (d && d->type() == IommuDomainType::Blocked) {
      r.ok = false;
      return r;
    }
    if (translating && attrs.at == PcieAt::Translated) {
      r.ok = iommu.atsEnabled(rid);
      r.pa = Pa(addr);
      return r;
    }
    if (translating) {
      const IoWalk w = d->pageTable().walk(Iova(addr));
      const IommuProt need = attrs.write ? kIommuWrite : kIommuRead;
      r.ok = w.present && (w.prot & need) != 0;
      r.pa = w.pa;
      return r;
    }
    const HostWindow* win = topo.hostBridgeOf(requester).windowForBus(BusAddr(addr));
    r.pa = win ? win->toCpu(BusAddr(addr)) : Pa(addr);
    return r;
  };
}

}  // namespace hmmsim
