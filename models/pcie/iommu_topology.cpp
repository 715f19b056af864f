#include "models/pcie/iommu_topology.h"

#include <optional>

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

namespace {
bool sameSlot(const PciDev& a, const PciDev& b) {
  return a.bdf().domain == b.bdf().domain && a.bdf().bus == b.bdf().bus && a.devNo() == b.devNo();
}
// pdev->multifunction: the kernel sets it on every function of a slot with more than one.
bool isMultifunction(const PciDev& d, const Topology& topo) {
  if (d.multifunction()) return true;
  for (const PciDev* o : topo.functionsInBdfOrder())
    if (o != &d && sameSlot(*o, d)) return true;
  return false;
}
bool acsFlagsEnabled(const PciDev& d, std::uint16_t flags) {
  const AcsCap& a = d.acs();
  if (!a.present) return false;
  // Controls the capability does not implement count as hard-wired on, except egress control.
  flags &= static_cast<std::uint16_t>(a.cap | kPciAcsEc);
  return (a.ctrl & flags) == flags;
}
bool acsPathEnabled(const PciDev& start, const Topology& topo) {
  for (const PciDev* p = &start; p; p = p->upstreamBridge())
    if (!pciAcsEnabled(*p, topo, kReqAcsFlags)) return false;
  return true;
}
}  // namespace

bool pciAcsEnabled(const PciDev& dev, const Topology& topo, std::uint16_t flags) {
  switch (dev.type()) {
    case PciDevType::RootPort:
    case PciDevType::SwitchDownstream:
      return acsFlagsEnabled(dev, flags);
    case PciDevType::Endpoint:
      return isMultifunction(dev, topo) ? acsFlagsEnabled(dev, flags) : true;
    case PciDevType::SwitchUpstream:
      return true;
    case PciDevType::HostBridge:
      return false;  // conventional PCI function (pci_is_pcie() false)
  }
  return false;
}

std::map<std::uint64_t, unsigned> pciDeviceGroups(const Topology& topo) {
  std::map<std::uint64_t, unsigned> groups;
  unsigned next = 0;
  for (const PciDev* d : topo.functionsInBdfOrder()) {
    std::optional<unsigned> g;
    const PciDev* p = d;
    for (const PciDev* br = d->upstreamBridge(); br && !g; br = br->upstreamBridge()) {
      if (acsPathEnabled(*br, topo)) break;
      p = br;
      auto it = groups.find(br->id().value());
      if (it != groups.end()) g = it->second;
    }
    if (!g && isMultifunction(*p, topo) && !pciAcsEnabled(*p, topo, kReqAcsFlags)) {
      for (const PciDev* o : topo.functionsInBdfOrder()) {
        if (o == p || !sameSlot(*o, *p) || pciAcsEnabled(*o, topo, kReqAcsFlags)) continue;
        auto it = groups.find(o->id().value());
        if (it != groups.end()) {
          g = it->second;
          break;
        }
      }
    }
    groups[d->id().value()] = g ? *g : next++;
  }
  return groups;
}

Errno attachPciEndpoints(DmaMapping& dma, const Topology& topo, std::uint64_t dmaMask) {
  const std::map<std::uint64_t, unsigned> groups = pciDeviceGroups(topo);
  std::map<unsigned, const PciDev*> first;
  for (const PciDev* d : topo.functionsInBdfOrder()) {
    if (d->type() != PciDevType::Endpoint) continue;
    DmaDeviceParams p = pciDmaDeviceParams(*d, topo, dmaMask);
    const unsigned g = groups.at(d->id().value());
    auto it = first.find(g);
    if (it != first.end()) p.groupWith = it->second;
    Errno e = dma.attachDevice(*d, p);
    if (e != Errno::Ok) return e;
    first.emplace(g, d);
  }
  return Errno::Ok;
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
