#include "models/pcie/routing.h"

#include "sim/assert.h"

namespace hmmsim {

const char* rcRefusalReasonName(RcRefusalReason r) {
  switch (r) {
    case RcRefusalReason::P2pNotForwarded:
      return "p2p not forwarded";
    case RcRefusalReason::ResolverFault:
      return "address resolver (IOMMU) fault";
    case RcRefusalReason::NoUpstreamForwarding:
      return "no ACS upstream forwarding";
  }
  return "?";
}

const char* routeStatusName(RouteStatus s) {
  switch (s) {
    case RouteStatus::Ok:
      return "Ok";
    case RouteStatus::UnsupportedRequest:
      return "UnsupportedRequest";
    case RouteStatus::AcsViolation:
      return "AcsViolation";
    case RouteStatus::IommuFault:
      return "IommuFault";
  }
  return "?";
}

std::size_t Route::linkHops() const {
  std::size_t n = 0;
  for (const Hop& h : hops) n += h.kind == HopKind::Link;
  return n;
}

namespace {

enum class AcsDecision { Local, Redirect, Violation };

// The ACS decision at an ingress port (or a function of a multi-function device) for a peer TLP
// whose egress is port/function number `egressIdx`. See the header for the order.
AcsDecision acsDecision(const AcsCap& acs, unsigned egressIdx, bool completion, const TlpRouteAttrs& at) {
  if (completion) {
    if (acs.enabled(kPciAcsCr) && !at.relaxedOrdering) return AcsDecision::Redirect;
    return AcsDecision::Local;
  }
  if (acs.enabled(kPciAcsDt) && at.at == PcieAt::Translated) return AcsDecision::Local;
  if (acs.enabled(kPciAcsEc) && egressIdx < 32 && (acs.egressVector >> egressIdx) & 1u)
    return acs.enabled(kPciAcsRr) ? AcsDecision::Redirect : AcsDecision::Violation;
  if (acs.enabled(kPciAcsRr)) return AcsDecision::Redirect;
  return AcsDecision::Local;
}

int barHit(const PciDev& d, BusAddr a) {
  for (int i = 0; i < kPciNumBars; ++i) {
    const PciBar& b = d.bar(i);
    if (b.isMem() && b.assigned && a >= b.bus && a - b.bus < b.size) return i;
  }
  return -1;
}

Hop linkHop(LinkId l, HopDir dir) {
  Hop h;
  h.kind = HopKind::Link;
  h.dir = dir;
  h.link = l;
  return h;
}

Hop componentHop(HopKind k, PciDevId in, PciDevId out, std::uint32_t host = kNoHost) {
  Hop h;
  h.kind = k;
  h.dir = HopDir::Internal;
  h.ingress = in;
  h.egress = out;
  h.host = host;
  return h;
}

}  // namespace

// Hops of a route through two switches and a root complex, with their links.
constexpr std::size_t kTypicalHops = 12;

struct Router::Walk {
  Route r;
  TlpRouteAttrs attrs;
  bool completion = false;
  std::uint64_t addr = 0;      // requests: address in the current hierarchy
  std::uint64_t wireAddr = 0;  // requests: the address as issued (routeRequest)
  Bdf rid;                     // completions: requester id
  const PciDev* ridDev = nullptr;
  const PciDev* source = nullptr;

  void stop(RouteStatus s, const PciDev* at) {
    r.status = s;
    r.end = RouteEnd::None;
    r.stoppedAt = at;
  }
  void deliver(const PciDev& f, int bar) {
    r.status = RouteStatus::Ok;
    r.end = RouteEnd::Function;
    r.target = &f;
    r.targetBar = bar;
    r.targetAddr = completion ? 0 : addr;
  }
  // Is the TLP's destination below downstream-facing port `p` (window / bus-range decode)?
  bool below(const PciDev& p) const {
    if (completion) {
      return rid.domain == p.bdf().domain && rid.bus >= p.secondaryBus() && rid.bus <= p.subordinateBus() &&
             p.subordinate() != nullptr;
    }
    return p.memWindow().contains(BusAddr(addr)) || p.prefWindow().contains(BusAddr(addr));
  }
  // Is function `f` the destination itself?
  int claims(const PciDev& f) const {
    if (completion) return f.bdf() == rid ? 0 : -1;
    return barHit(f, BusAddr(addr));
  }
};

Router::Router(const Topology& topo, const std::string& statsName) : topo_(topo), stats_(statsName) {
  requests_ = &stats_.counter("requests", "TLPs", "memory requests routed");
  completions_ = &stats_.counter("completions", "TLPs", "completions routed");
  turnarounds_ = &stats_.counter("local_turnarounds", "TLPs",
                                 "peer TLPs turned around inside a switch or multi-function device");
  redirects_ = &stats_.counter("acs_redirects", "TLPs", "TLPs sent upstream by ACS RR, CR or EC");
  rcP2p_ = &stats_.counter("rc_p2p", "TLPs", "peer TLPs forwarded by a root complex");
  rcP2pUnsupported_ = &stats_.counter("rc_p2p_unsupported", "TLPs",
                                      "peer requests answered with UR by a root complex without p2p support");
  acsViolations_ = &stats_.counter("acs_violations", "TLPs", "TLPs blocked by ACS SV, TB or EC");
  unsupported_ = &stats_.counter("unsupported_requests", "TLPs", "TLPs that ended in Unsupported Request");
  iommuFaults_ =
      &stats_.counter("iommu_faults", "TLPs", "requests refused by the root complex address resolver");
}

void Router::setRcAddressResolver(RcAddressResolver r) {
  resolver_ = std::move(r);
}

RcResolveResult Router::resolveAtRootComplex(const PciDev& requester, std::uint64_t addr,
                                             const TlpRouteAttrs& attrs) const {
  return resolveAt(topo_.hostBridgeOf(requester), requester, addr, attrs);
}

RcResolveResult Router::resolveAt(const PciHostBridge& hb, const PciDev& requester, std::uint64_t addr,
                                  const TlpRouteAttrs& attrs) const {
  if (resolver_) return resolver_(requester, addr, attrs);
  RcResolveResult res;
  const HostWindow* win = hb.windowForBus(BusAddr(addr));
  res.pa = win ? win->toCpu(BusAddr(addr)) : Pa(addr);
  return res;
}

std::uint64_t Router::decisionsCounted() const {
  return turnarounds_->value() + redirects_->value() + rcP2p_->value() + rcP2pUnsupported_->value() +
         acsViolations_->value() + unsupported_->value() + iommuFaults_->value();
}

void Router::count(const Route& r, bool completion) const {
  (completion ? *completions_ : *requests_) += 1;
  switch (r.status) {
    case RouteStatus::Ok:
      break;
    case RouteStatus::UnsupportedRequest:
      *unsupported_ += 1;
      break;
    case RouteStatus::AcsViolation:
      *acsViolations_ += 1;
      break;
    case RouteStatus::IommuFault:
      *iommuFaults_ += 1;
      break;
  }
}

void Router::refused(const Walk& w, const PciHostBridge& hb, RcRefusalReason why, const PciHostBridge* peer,
                     const PciDev* port) const {
  if (!refusalObserver_ || w.completion || !w.source) return;
  RcRefusal r;
  r.requester = w.source;
  r.addr = w.wireAddr;
  r.hostBridge = &hb;
  r.reason = why;
  r.peerHostBridge = peer;
  r.port = port;
  r.write = w.attrs.write;
  refusalObserver_(r);
}

// Down through port `q` (which decodes the destination as below it) to the function that claims it.
void Router::routeDownFrom(Walk& w, const PciDev& q) const {
  const PciDev* port = &q;
  for (;;) {
    if (port->downstreamLink() == kNoLink || !port->subordinate())
      return w.stop(RouteStatus::UnsupportedRequest, port);
    w.r.hops.push_back(linkHop(port->downstreamLink(), HopDir::Downstream));
    const PciBus& bus = *port->subordinate();
    const PciDev* usp = nullptr;
    for (const PciDev* f : bus.devices()) {
      int bar = w.claims(*f);
      if (bar >= 0) return w.deliver(*f, bar);
      if (f->type() == PciDevType::SwitchUpstream) usp = f;
    }
    if (!usp) return w.stop(RouteStatus::UnsupportedRequest, topo_.link(port->downstreamLink()).down);
    const PciDev* next = nullptr;
    for (const PciDev* dp : usp->subordinate()->devices()) {
      int bar = w.claims(*dp);
      if (bar >= 0) {
        w.r.hops.push_back(componentHop(HopKind::Switch, usp->id(), dp->id()));
        return w.deliver(*dp, bar);
      }
      if (dp->isDownstreamPort() && w.below(*dp)) next = dp;
    }
    if (!next) return w.stop(RouteStatus::UnsupportedRequest, usp);
    w.r.hops.push_back(componentHop(HopKind::Switch, usp->id(), next->id()));
    port = next;
  }
}

void Router::atRootComplex(Walk& w, const PciHostBridge& hb, PciDevId ingress,
                           std::optional<Pa> resolved) const {
  const bool fromBelow = ingress != kNoDev || resolved.has_value();
  const PciHostBridge* dst = &hb;
  if (!w.completion) {
    RcResolveResult res;
    if (resolved)
      res.pa = *resolved;
    else
      res = resolveAt(hb, *w.source, w.addr, w.attrs);
    if (!res.ok) {
      w.r.hops.push_back(componentHop(HopKind::RootComplex, ingress, kNoDev, hostBridgeIndex(topo_, hb)));
      refused(w, hb, RcRefusalReason::ResolverFault, nullptr);
      return w.stop(RouteStatus::IommuFault, nullptr);
    }
    dst = topo_.hostBridgeForCpu(res.pa);
    if (!dst) {
      w.r.hops.push_back(componentHop(HopKind::RootComplex, ingress, kNoDev, hostBridgeIndex(topo_, hb)));
      w.r.status = RouteStatus::Ok;
      w.r.end = RouteEnd::SystemMemory;
      w.r.targetAddr = res.pa.value();
      w.r.viaRootComplex = true;
      return;
    }
    w.addr = dst->windowForCpu(res.pa)->toBus(res.pa).value();
  } else {
    if (!w.ridDev) return w.stop(RouteStatus::UnsupportedRequest, nullptr);
    dst = &topo_.hostBridgeOf(*w.ridDev);
  }
  w.r.viaRootComplex = true;
  // Find the root-bus function that takes the TLP.
  const PciDev* egress = nullptr;
  int bar = -1;
  for (const PciDev* f : dst->rootBus().devices()) {
    int b = w.claims(*f);
    if (b >= 0) {
      egress = f;
      bar = b;
      break;
    }
    if (f->isDownstreamPort() && w.below(*f)) {
      egress = f;
      break;
    }
  }
  const PciDev* ingressDev = ingress != kNoDev ? &topo_.dev(ingress) : nullptr;
  if (fromBelow) {
    if (!hb.p2pSupported() || !dst->p2pSupported()) {
      w.r.hops.push_back(componentHop(HopKind::RootComplex, ingress, kNoDev, hostBridgeIndex(topo_, hb)));
      *rcP2pUnsupported_ += 1;
      refused(w, hb, RcRefusalReason::P2pNotForwarded, dst);
      return w.stop(RouteStatus::UnsupportedRequest, nullptr);
    }
  }
  if (!egress) {
    w.r.hops.push_back(componentHop(HopKind::RootComplex, ingress, kNoDev, hostBridgeIndex(topo_, hb)));
    return w.stop(RouteStatus::UnsupportedRequest, nullptr);
  }
  // Egress control between root ports of one root complex; RR and CR at a root port do not
  // change the path, because every peer TLP between root ports already crosses the root
  // complex (and its address resolution) in this model.
  if (!w.completion && ingressDev && ingressDev->type() == PciDevType::RootPort && dst == &hb &&
      egress->type() == PciDevType::RootPort) {
    if (acsDecision(ingressDev->acs(), egress->portNumber(), false, w.attrs) == AcsDecision::Violation) {
      w.r.hops.push_back(componentHop(HopKind::RootComplex, ingress, kNoDev, hostBridgeIndex(topo_, hb)));
      return w.stop(RouteStatus::AcsViolation, ingressDev);
    }
  }
  if (fromBelow) *rcP2p_ += 1;
  if (dst == &hb) {
    w.r.hops.push_back(componentHop(HopKind::RootComplex, ingress, egress->id(), hostBridgeIndex(topo_, hb)));
  } else {
    w.r.hops.push_back(componentHop(HopKind::RootComplex, ingress, kNoDev, hostBridgeIndex(topo_, hb)));
    w.r.hops.push_back(
        componentHop(HopKind::RootComplex, kNoDev, egress->id(), hostBridgeIndex(topo_, *dst)));
  }
  if (bar >= 0) return w.deliver(*egress, bar);
  routeDownFrom(w, *egress);
}

// Up from function `from` (the source, or a switch upstream port) until the TLP turns around
// or reaches the root complex.
void Router::routeUp(Walk& w, const PciDev& from) const {
  const PciDev* cur = &from;
  for (;;) {
    const PciBus* bus = cur->bus();
    HMMSIM_ASSERT(bus && bus->hasHost(), cur->name() << " is not connected to a host bridge");
    if (bus->isRoot()) return atRootComplex(w, bus->hostBridge(), cur->id());
    HMMSIM_ASSERT(cur->upstreamLink() != kNoLink, cur->name() << " has no upstream link");
    w.r.hops.push_back(linkHop(cur->upstreamLink(), HopDir::Upstream));
    const PciDev& p = *topo_.link(cur->upstreamLink()).up;
    // Ingress checks at the downstream-facing port.
    if (p.acs().enabled(kPciAcsSv)) {
      // The requester id of a request (possibly spoofed), the completer id of a completion.
      const Bdf src = (!w.completion && w.attrs.requesterId) ? *w.attrs.requesterId : w.source->bdf();
      if (src.bus < p.secondaryBus() || src.bus > p.subordinateBus())
        return w.stop(RouteStatus::AcsViolation, &p);
    }
    if (!w.completion && p.acs().enabled(kPciAcsTb) && w.attrs.at != PcieAt::Untranslated)
      return w.stop(RouteStatus::AcsViolation, &p);
    const bool bounced = w.below(p);
    if (bounced && !p.acs().enabled(kPciAcsUf)) {
      if (p.type() == PciDevType::RootPort)
        refused(w, p.bus()->hostBridge(), RcRefusalReason::NoUpstreamForwarding, nullptr, &p);
      return w.stop(RouteStatus::UnsupportedRequest, &p);
    }
    if (p.type() == PciDevType::RootPort) return atRootComplex(w, p.bus()->hostBridge(), p.id());
    const PcieSwitch* sw = topo_.switchOf(p);
    HMMSIM_ASSERT(sw, p.name() << " is a downstream port outside any switch");
    if (!bounced) {
      const PciDev* peer = nullptr;
      for (const PciDev* q : sw->downstream)
        if (q != &p && w.below(*q)) peer = q;
      if (peer) {
        switch (acsDecision(p.acs(), peer->portNumber(), w.completion, w.attrs)) {
          case AcsDecision::Local:
            *turnarounds_ += 1;
            w.r.hops.push_back(componentHop(HopKind::Switch, p.id(), peer->id()));
            return routeDownFrom(w, *peer);
          case AcsDecision::Violation:
            return w.stop(RouteStatus::AcsViolation, &p);
          case AcsDecision::Redirect:
            *redirects_ += 1;
            w.r.redirected = true;
            break;
        }
      }
    }
    w.r.hops.push_back(componentHop(HopKind::Switch, p.id(), sw->upstream->id()));
    cur = sw->upstream;
  }
}

// A TLP leaving `src`: first the functions of its own device, then upstream.
static bool siblingOf(const PciDev& a, const PciDev& b) {
  return &a != &b && a.bus() == b.bus() && a.devNo() == b.devNo() && !a.bus()->isRoot();
}

// A TLP from `from` to another function `to` of the same multi-function device (claimed by BAR
// `bar`, or -1 for a completion): the device's ACS decides whether it turns inside the device,
// is blocked, or is redirected upstream. Returns whether the walk continues upstream.
bool Router::toSiblingFunction(Walk& w, const PciDev& from, const PciDev& to, int bar) const {
  switch (acsDecision(from.acs(), to.fn(), w.completion, w.attrs)) {
    case AcsDecision::Local:
      *turnarounds_ += 1;
      w.r.hops.push_back(componentHop(HopKind::Function, from.id(), to.id()));
      w.deliver(to, bar);
      return false;
    case AcsDecision::Violation:  // not produced for completions
      w.stop(RouteStatus::AcsViolation, &from);
      return false;
    case AcsDecision::Redirect:
      *redirects_ += 1;
      w.r.redirected = true;
      return true;
  }
  return true;
}

Route Router::routeRequest(const PciDev& requester, std::uint64_t addr, const TlpRouteAttrs& attrs) const {
  HMMSIM_ASSERT(!requester.isDownstreamPort() && requester.type() != PciDevType::HostBridge,
                requester.name() << ": only endpoints and switch upstream ports issue memory requests here");
  Walk w;
  w.r.hops.reserve(kTypicalHops);  // one allocation per walk, not one per doubling
  w.attrs = attrs;
  w.addr = addr;
  w.wireAddr = addr;
  w.source = &requester;
  bool up = true;
  if (int own = w.claims(requester); own >= 0) {
    w.deliver(requester, own);
    up = false;
  } else if (requester.bus() && !requester.bus()->isRoot()) {
    for (const PciDev* g : requester.bus()->devices()) {
      if (!siblingOf(requester, *g)) continue;
      int bar = w.claims(*g);
      if (bar < 0) continue;
      up = toSiblingFunction(w, requester, *g, bar);
      break;
    }
  }
  if (up) routeUp(w, requester);
  count(w.r, false);
  return w.r;
}

Route Router::routeHostRequest(const PciHostBridge& hb, Pa pa, const TlpRouteAttrs& attrs) const {
  Walk w;
  w.attrs = attrs;
  const HostWindow* win = hb.windowForCpu(pa);
  if (!win) {
    w.r.hops.push_back(componentHop(HopKind::RootComplex, kNoDev, kNoDev, hostBridgeIndex(topo_, hb)));
    w.stop(RouteStatus::UnsupportedRequest, nullptr);
  } else {
    w.addr = win->toBus(pa).value();
    w.r.viaRootComplex = true;
    const PciDev* egress = nullptr;
    int bar = -1;
    for (const PciDev* f : hb.rootBus().devices()) {
      if ((bar = w.claims(*f)) >= 0 || (f->isDownstreamPort() && w.below(*f))) {
        egress = f;
        break;
      }
    }
    if (!egress) {
      w.r.hops.push_back(componentHop(HopKind::RootComplex, kNoDev, kNoDev, hostBridgeIndex(topo_, hb)));
      w.stop(RouteStatus::UnsupportedRequest, nullptr);
    } else {
      w.r.hops.push_back(
          componentHop(HopKind::RootComplex, kNoDev, egress->id(), hostBridgeIndex(topo_, hb)));
      if (bar >= 0)
        w.deliver(*egress, bar);
      else
        routeDownFrom(w, *egress);
    }
  }
  count(w.r, false);
  return w.r;
}

Route Router::routeFromRootComplex(const PciHostBridge& hb, Pa pa, const TlpRouteAttrs& attrs) const {
  Walk w;
  w.attrs = attrs;
  w.addr = pa.value();
  atRootComplex(w, hb, kNoDev, pa);
  count(w.r, false);
  return w.r;
}

unsigned switchPortIndex(const PcieSwitch& sw, const PciDev& port) {
  if (&port == sw.upstream) return 0;
  for (std::size_t i = 0; i < sw.downstream.size(); ++i)
    if (sw.downstream[i] == &port) return static_cast<unsigned>(i + 1);
  HMMSIM_ASSERT(false, port.name() << " is not a port of switch " << sw.name);
  return 0;
}

unsigned rootPortIndex(const PciHostBridge& hb, const PciDev& rootPort) {
  unsigned i = 0;
  for (const PciDev* f : hb.rootBus().devices()) {
    if (f == &rootPort) return i;
    if (f->type() == PciDevType::RootPort) ++i;
  }
  HMMSIM_ASSERT(false, rootPort.name() << " is not a root port of " << hb.name());
  return 0;
}

unsigned hostBridgeIndex(const Topology& topo, const PciHostBridge& hb) {
  for (std::size_t i = 0; i < topo.hostBridges().size(); ++i)
    if (&topo.hostBridges()[i] == &hb) return static_cast<unsigned>(i);
  HMMSIM_ASSERT(false, hb.name() << " is not in this topology");
  return 0;
}

Route Router::routeCompletion(const PciDev& completer, const Bdf& requester,
                              const TlpRouteAttrs& attrs) const {
  Walk w;
  w.attrs = attrs;
  w.completion = true;
  w.rid = requester;
  w.ridDev = topo_.findByBdf(requester);
  w.source = &completer;
  bool up = true;
  if (!w.ridDev) {
    w.stop(RouteStatus::UnsupportedRequest, &completer);
    up = false;
  } else if (w.ridDev == &completer) {
    w.deliver(completer, -1);
    up = false;
  } else if (siblingOf(completer, *w.ridDev)) {
    up = toSiblingFunction(w, completer, *w.ridDev, -1);
  }
  if (up) routeUp(w, completer);
  count(w.r, true);
  return w.r;
}

Route Router::routeHostCompletion(const PciHostBridge& hb, const Bdf& requester,
                                  const TlpRouteAttrs& attrs) const {
  Walk w;
  w.attrs = attrs;
  w.completion = true;
  w.rid = requester;
  w.ridDev = topo_.findByBdf(requester);
  if (!w.ridDev || &topo_.hostBridgeOf(*w.ridDev) != &hb) {
    w.r.hops.push_back(componentHop(HopKind::RootComplex, kNoDev, kNoDev, hostBridgeIndex(topo_, hb)));
    w.stop(RouteStatus::UnsupportedRequest, nullptr);
  } else {
    atRootComplex(w, hb, kNoDev);
  }
  count(w.r, true);
  return w.r;
}

}  // namespace hmmsim
