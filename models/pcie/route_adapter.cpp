#include "models/pcie/route_adapter.h"

namespace hmmsim {

CplStatus cplStatusOf(RouteStatus s) {
  switch (s) {
    case RouteStatus::Ok:
      return CplStatus::SuccessfulCompletion;
    case RouteStatus::AcsViolation:
      return CplStatus::CompleterAbort;
    case RouteStatus::UnsupportedRequest:
    case RouteStatus::IommuFault:
      return CplStatus::UnsupportedRequest;
  }
  return CplStatus::UnsupportedRequest;
}

Errno toPcieRoute(const Topology& topo, const Route& route, std::uint64_t addr, PcieRoute& out) {
  if (!route.ok()) return Errno::Inval;
  PcieRoute r;
  int rcs = 0;
  for (std::size_t i = 0; i < route.hops.size(); ++i) {
    const Hop& h = route.hops[i];
    const std::size_t need = h.kind == HopKind::RootComplex ? 3 : h.kind == HopKind::Switch ? 1 : 0;
    if (r.length + need > PcieRoute::kMaxHops) return Errno::Range;
    switch (h.kind) {
      case HopKind::Link:
      case HopKind::Function:
        break;
      case HopKind::Switch: {
        const PciDev& port = topo.dev(h.egress);
        const PcieSwitch* sw = topo.switchOf(port);
        HMMSIM_ASSERT(sw != nullptr, "switch hop egress is not a switch port");
        r.push(static_cast<std::uint8_t>(switchPortIndex(*sw, port)));
        break;
      }
      case HopKind::RootComplex: {
        if (++rcs > 2) return Errno::OpNotSupp;
        const PciHostBridge& hb = topo.hostBridges().at(h.host);
        if (h.egress != kNoDev) {
          r.push(static_cast<std::uint8_t>(rootPortIndex(hb, topo.dev(h.egress))));
        } else if (route.end == RouteEnd::SystemMemory && i + 1 == route.hops.size()) {
          r.push(kEgressHostMemory);
        } else {
          // Leaves toward another root complex: the next component hop must be it.
          std::size_t j = i + 1;
          while (j < route.hops.size() && route.hops[j].kind == HopKind::Link) ++j;
          if (j == route.hops.size() || route.hops[j].kind != HopKind::RootComplex) return Errno::OpNotSupp;
          if (h.host > 0xFF || route.hops[j].host > 0xFF) return Errno::Range;
          r.push(kEgressPeerRootComplex);
          r.push(static_cast<std::uint8_t>(h.host));
          r.push(static_cast<std::uint8_t>(route.hops[j].host));
          r.peerAddrOffset = route.targetAddr - addr;
        }
        break;
      }
    }
  }
  out = r;
  return Errno::Ok;
}

TopologyPcieRouter::TopologyPcieRouter(const Topology& topo, const Router& router,
                                       const std::string& statsName)
    : topo_(topo),
      router_(router),
      stats_(statsName),
      unknownRequester_(
          stats_.counter("unknown_requester", "lookup", "lookups for a requester id no function has")),
      failed_(stats_.counter("failed_routes", "lookup", "lookups whose route was not delivered")),
      crossRootComplex_(stats_.counter("cross_root_complex", "lookup",
                                       "routes from one root complex into another (host interconnect)")) {}

PcieRouteResult TopologyPcieRouter::convert(const Route& r, std::uint64_t addr) const {
  if (!r.ok()) {
    ++failed_;
    return PcieRouteResult{nullptr, cplStatusOf(r.status)};
  }
  PcieRoute pr;
  const Errno e = toPcieRoute(topo_, r, addr, pr);
  if (e != Errno::Ok) {
    ++failed_;
    return PcieRouteResult{nullptr, CplStatus::UnsupportedRequest};
  }
  for (std::uint8_t i = 0; i < pr.length; ++i) {
    if (pr.egress[i] == kEgressPeerRootComplex) ++crossRootComplex_;
  }
  const PcieRoute& stored = *interned_.insert(pr).first;
  return PcieRouteResult{&stored, CplStatus::SuccessfulCompletion};
}

PcieRouteResult TopologyPcieRouter::routeRequest(Bdf requester, std::uint64_t addr, bool isWrite,
                                                 bool addressTranslated) const {
  const PciDev* dev = topo_.findByBdf(requester);
  if (dev == nullptr) {
    ++unknownRequester_;
    return PcieRouteResult{nullptr, CplStatus::UnsupportedRequest};
  }
  TlpRouteAttrs attrs;
  attrs.write = isWrite;
  attrs.at = addressTranslated ? PcieAt::Translated : PcieAt::Untranslated;
  const RequestKey key{addr >> kBlockShift, requester.key(),
                       (isWrite ? 1u : 0u) | (addressTranslated ? 2u : 0u)};
  const PcieRoute* kept = nullptr;
  if (key == lastKey_) {
    kept = lastRoute_;
  } else if (auto it = systemRoutes_.find(key); it != systemRoutes_.end()) {
    kept = it->second;
    lastKey_ = key;
    lastRoute_ = kept;
  }
  if (kept != nullptr) {
    const RcResolveResult res = router_.resolveAtRootComplex(*dev, addr, attrs);
    if (res.ok && topo_.hostBridgeForCpu(res.pa) == nullptr) {
      router_.countRepeatedRequest();
      return PcieRouteResult{kept, CplStatus::SuccessfulCompletion};
    }
  }
  const std::uint64_t decided = router_.decisionsCounted();
  const Route r = router_.routeRequest(*dev, addr, attrs);
  PcieRouteResult res = convert(r, addr);
  if (res.route != nullptr && r.end == RouteEnd::SystemMemory && r.viaRootComplex &&
      router_.decisionsCounted() == decided && blockKeepable(addr)) {
    systemRoutes_[key] = res.route;
    lastKey_ = key;
    lastRoute_ = res.route;
  }
  // A request that ends at a BAR without the root complex resolving its address takes the same
  // route for every address of that BAR: the walk decodes BARs and bridge windows only, which
  // enumeration fixed and which hold whole BARs. Promise it, so an engine streaming into a peer's
  // BAR looks the route up once. Through a root complex with an address resolver (the IOMMU) the
  // route depends on mappings that change: no promise.
  if (res.route != nullptr && r.end == RouteEnd::Function &&
      (!r.viaRootComplex || !router_.hasRcAddressResolver())) {
    const PciBar& bar = r.target->bar(r.targetBar);
    res.validBase = bar.bus.value();
    res.validBytes = bar.size;
  }
  return res;
}

bool TopologyPcieRouter::blockKeepable(std::uint64_t addr) const {
  if (!scanned_) {
    scanned_ = true;
    windowsAligned_ = true;
    constexpr std::uint64_t kBlock = 1ull << kBlockShift;
    for (const auto& f : topo_.functions()) {
      for (const BridgeWindow* w : {&f->memWindow(), &f->prefWindow()})
        if (w->enabled && (w->base.value() % kBlock != 0 || w->size % kBlock != 0)) windowsAligned_ = false;
      for (const PciBar& b : f->bars())
        if (b.assigned && b.size != 0) barRanges_.emplace_back(b.bus.value(), b.bus.value() + b.size);
    }
  }
  if (!windowsAligned_) return false;
  const std::uint64_t lo = addr >> kBlockShift << kBlockShift, hi = lo + (1ull << kBlockShift);
  for (const auto& [base, end] : barRanges_)
    if (base < hi && lo < end) return false;
  return true;
}

PcieRouteResult TopologyPcieRouter::routeFromRootComplex(std::uint32_t rcIndex, std::uint64_t addr,
                                                         bool isWrite) const {
  // Outside every host-bridge window the route is the root complex's way to system memory,
  // whatever the address (Router::atRootComplex): kept per root complex.
  const std::size_t slot = std::size_t(rcIndex) * 2 + (isWrite ? 1 : 0);
  const bool systemMemory = topo_.hostBridgeForCpu(Pa(addr)) == nullptr;
  if (systemMemory && slot < rcSystemRoutes_.size() && rcSystemRoutes_[slot] != nullptr) {
    router_.countRepeatedRequest();
    return PcieRouteResult{rcSystemRoutes_[slot], CplStatus::SuccessfulCompletion};
  }
  TlpRouteAttrs attrs;
  attrs.write = isWrite;
  const Route r = router_.routeFromRootComplex(topo_.hostBridges().at(rcIndex), Pa(addr), attrs);
  PcieRouteResult res = convert(r, addr);
  if (systemMemory && res.route != nullptr && r.end == RouteEnd::SystemMemory) {
    if (rcSystemRoutes_.size() <= slot) rcSystemRoutes_.resize(slot + 1, nullptr);
    rcSystemRoutes_[slot] = res.route;
  }
  return res;
}

}  // namespace hmmsim
