#pragma once
// Routing of memory requests and completions through a PCIe hierarchy, with ACS.
//
// Models:
//  - Memory requests are routed by address: a bridge forwards a request downstream when the
//    address falls in its memory or prefetchable window, upstream otherwise (PCIe base spec,
//    type-1 header address decoding). A switch turns a request around locally between two of
//    its downstream ports unless ACS sends it upstream.
//  - Completions are routed by requester id against the bridges' secondary..subordinate bus
//    ranges.
//  - ACS at the ingress downstream port (Root Port or switch downstream port) and on functions
//    of a multi-function device (peer traffic between functions), in this order:
//      SV  Source Validation: a request from below whose requester bus is outside the port's
//          secondary..subordinate range is an ACS Violation.
//      TB  Translation Blocking: a request with AT = Translated (or a translation request) is an
//          ACS Violation.
//      DT  Direct Translated P2P: a peer request with AT = Translated skips RR and EC and is
//          turned around locally.
//      EC  Egress Control: if bit N (egress port number, or function number inside a
//          multi-function device) is set in the vector, the peer request is redirected upstream
//          when RR is enabled too, otherwise it is an ACS Violation (blocked).
//      RR  Request Redirect: peer requests go upstream to the root complex, which routes them
//          back down by address.
//      CR  Completion Redirect: peer completions with the Relaxed Ordering attribute clear go
//          upstream; with RO set they are turned around locally (as the spec says).
//      UF  Upstream Forwarding: a TLP arriving at a downstream port from below whose target is
//          below that same port (it was redirected by ACS further down) is forwarded upstream
//          when UF is set; without UF it is an Unsupported Request.
//    Egress control is applied to requests only; completions follow CR. At a Root Port, RR and
//    CR do not change the path: every peer TLP between root ports already goes through the root
//    complex and its address resolution in this model; SV, TB and EC apply there as at a switch.
//  - The root complex: a request arriving from below is resolved by the RcAddressResolver (the
//    IOMMU when one translates; the default decodes bus addresses through the host bridge
//    windows). A CPU physical address inside a host-bridge window is a peer access: it is routed
//    down into that host bridge's hierarchy if the root complex supports p2p, otherwise it is
//    answered with Unsupported Request (counted in stats "rc_p2p_unsupported"). Any other address
//    is system memory.
//  - An ACS Violation completes a non-posted request with Completer Abort; a posted one is dropped.
// Leaves out: I/O and configuration requests, message routing, ATS translation requests (only
// the AT field of a memory request is looked at), ordering rules between TLPs.
// Timing: none here. The route is the ordered list of hops; the "link" helper's fabric modules
// charge serialization per Link hop and a crossing latency per Switch / RootComplex / Function hop.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "models/pcie/topology.h"
#include "sim/stats.h"

namespace hmmsim {

/// Address Type field of a memory request (PCIe AT[1:0]).
enum class PcieAt : std::uint8_t {
  Untranslated = 0,  ///< default: the address is translated by the IOMMU if one is on
  TranslationRequest = 1,
  Translated = 2,  ///< ATS-translated: a host physical / bus address
};

/// Attributes of a TLP that affect routing.
struct TlpRouteAttrs {
  bool write = false;  ///< memory write (posted) vs read (non-posted)
  PcieAt at = PcieAt::Untranslated;
  bool relaxedOrdering = false;  ///< RO attribute (completions: CR does not redirect RO ones)
  /// Requester id carried by a request when it differs from the issuing function's own (a
  /// misbehaving or virtualized function spoofing an id; what ACS SV catches). Default: own id.
  std::optional<Bdf> requesterId;
};

/// What a hop crosses.
enum class HopKind {
  Link,         ///< a PCIe link, in `dir`; the "link" helper charges serialization here
  Switch,       ///< through a switch, from port `ingress` to port `egress` (cut-through latency)
  RootComplex,  ///< through a root complex; `ingress`/`egress` are root ports or kNoDev for
                ///< host memory / the CPU side / the other root complex; `host` is the index of
                ///< the host bridge crossed
  Function,     ///< inside a multi-function device from function `ingress` to `egress`
};

enum class HopDir {
  Upstream,    ///< towards the root complex
  Downstream,  ///< away from the root complex
  Internal,    ///< inside a component (Switch / RootComplex / Function hops)
};

/// Marker for "no port" in a hop.
inline constexpr PciDevId kNoDev{~0ull};
/// Marker for "no host bridge" in a hop.
inline constexpr std::uint32_t kNoHost = ~0u;

struct Hop {
  HopKind kind = HopKind::Link;
  HopDir dir = HopDir::Internal;
  LinkId link = kNoLink;      ///< Link hops
  PciDevId ingress = kNoDev;  ///< component hops: port/function the TLP entered by (kNoDev = CPU/memory side)
  PciDevId egress = kNoDev;   ///< component hops: port/function the TLP leaves by (kNoDev = CPU/memory side)
  /// RootComplex hops: index of the host bridge crossed in Topology::hostBridges() (kNoHost
  /// for other hops). An index, not a name, so building a route does not allocate per hop.
  std::uint32_t host = kNoHost;

  bool operator==(const Hop& o) const {
    return kind == o.kind && dir == o.dir && link == o.link && ingress == o.ingress && egress == o.egress &&
           host == o.host;
  }
};

enum class RouteStatus {
  Ok,                  ///< delivered to `target` (a function) or to system memory
  UnsupportedRequest,  ///< UR: no p2p in the root complex, no decoder claimed the address,
                       ///< or a TLP bounced at a downstream port without ACS UF
  AcsViolation,        ///< blocked by ACS SV, TB or EC (Completer Abort for non-posted requests)
  IommuFault,          ///< the RcAddressResolver refused the address (IOMMU fault)
};
const char* routeStatusName(RouteStatus s);

/// Where a request ends.
enum class RouteEnd {
  None,          ///< not delivered (status != Ok)
  Function,      ///< a PCI function's BAR (peer-to-peer or CPU MMIO)
  SystemMemory,  ///< DRAM behind the root complex
};

struct Route {
  RouteStatus status = RouteStatus::Ok;
  RouteEnd end = RouteEnd::None;
  std::vector<Hop> hops;           ///< in travel order; for failed routes, up to where it stopped
  const PciDev* target = nullptr;  ///< RouteEnd::Function: the function whose BAR matched
  int targetBar = -1;              ///< RouteEnd::Function: which BAR
  /// The address the target sees: the bus address in the target's hierarchy (Function) or the
  /// CPU physical address (SystemMemory), as a raw 64-bit value.
  std::uint64_t targetAddr = 0;
  bool redirected = false;      ///< ACS (RR/CR/EC) sent it up to the root complex
  bool viaRootComplex = false;  ///< the route crossed a root complex
  /// The device that stopped the TLP (status != Ok), or nullptr (root complex).
  const PciDev* stoppedAt = nullptr;

  bool ok() const { return status == RouteStatus::Ok; }
  /// Number of Link hops (what a distance in links would be).
  std::size_t linkHops() const;
};

/// How the root complex resolves the address of a memory request arriving from below.
/// The default (no IOMMU) decodes the address as a bus address of the requester's host bridge:
/// inside one of its windows → the CPU physical address of that window, else identity (DRAM
/// DMA with dma-direct on x86). The "iommu" helper supplies one that translates IOVAs.
struct RcResolveResult {
  bool ok = true;  ///< false: IOMMU fault
  Pa pa;           ///< CPU physical address the root complex forwards to
};
using RcAddressResolver =
    std::function<RcResolveResult(const PciDev& requester, std::uint64_t addr, const TlpRouteAttrs&)>;

/// Why a root complex answered a request from below with Unsupported Request.
enum class RcRefusalReason {
  P2pNotForwarded,       ///< a peer's address, and this root complex (or the peer's) forwards no p2p
  ResolverFault,         ///< the address resolver (the IOMMU) refused the address
  NoUpstreamForwarding,  ///< a root port got a request for its own secondary side back from below
                         ///< (redirected by ACS further down) and has no ACS Upstream Forwarding
};
const char* rcRefusalReasonName(RcRefusalReason r);

/// A memory request from below that a root complex refused (UR), as the checker's rule 7 sees it.
struct RcRefusal {
  const PciDev* requester = nullptr;          ///< the issuing function
  std::uint64_t addr = 0;                     ///< the address as it appeared on the wire
  const PciHostBridge* hostBridge = nullptr;  ///< the root complex that refused it
  const PciDev* port = nullptr;               ///< NoUpstreamForwarding: the root port
  RcRefusalReason reason = RcRefusalReason::P2pNotForwarded;
  /// P2pNotForwarded: the host bridge whose window holds the peer address (== hostBridge, or
  /// another one for p2p between host bridges).
  const PciHostBridge* peerHostBridge = nullptr;
  bool write = false;
};
/// Called for every request a root complex (or one of its root ports) refuses (routeRequest
/// only: a request whose requester is known). Must not route.
using RcRefusalObserver = std::function<void(const RcRefusal&)>;

/// Port index of a switch port as the fabric modules number them: 0 = upstream port,
/// 1..n = downstream ports in declaration order.
unsigned switchPortIndex(const PcieSwitch& sw, const PciDev& port);
/// Index of a root port among the root ports on its host bridge's root bus, in devfn order.
unsigned rootPortIndex(const PciHostBridge& hb, const PciDev& rootPort);
/// Index of a host bridge in Topology::hostBridges().
unsigned hostBridgeIndex(const Topology& topo, const PciHostBridge& hb);

/// Pure routing over one Topology (after enumeration). Not thread-safe; holds no per-TLP state.
class Router {
 public:
  /// `statsName`: stats group name, e.g. "top.pcie.route".
  Router(const Topology& topo, const std::string& statsName);

  /// Replaces the root complex's address resolution (the IOMMU). An empty function restores
  /// the default.
  void setRcAddressResolver(RcAddressResolver r);
  /// Whether an address resolver (an IOMMU) replaced the default resolution.
  bool hasRcAddressResolver() const { return static_cast<bool>(resolver_); }
  /// Observer of requests a root complex refuses (the checker's rule 7); empty: none.
  void setRcRefusalObserver(RcRefusalObserver o) { refusalObserver_ = std::move(o); }

  /// A memory request issued by `requester` (an endpoint or any function) with address `addr`
  /// as it appears on the wire (a bus address, or an IOVA when an IOMMU translates at the RC).
  /// Returns the route; status says whether it was delivered. Counted in stats.
  Route routeRequest(const PciDev& requester, std::uint64_t addr, const TlpRouteAttrs& attrs) const;

  /// A memory request issued by the CPU to physical address `pa` through host bridge `hb`
  /// (CPU MMIO). Starts with a RootComplex hop from the CPU side. UnsupportedRequest if no
  /// function of that host bridge claims the address.
  Route routeHostRequest(const PciHostBridge& hb, Pa pa, const TlpRouteAttrs& attrs) const;

  /// Continues a request from below after the root complex of `hb` resolved (translated) its
  /// address to CPU physical `pa`: the part of routeRequest() from the RootComplex hop on, with
  /// ingress kNoDev. A host-bridge window of `hb` → down its hierarchy; another host bridge's
  /// window → through both (UnsupportedRequest, counted, unless both support p2p); else system
  /// memory. For fabric modules whose translation stage changes the address.
  Route routeFromRootComplex(const PciHostBridge& hb, Pa pa, const TlpRouteAttrs& attrs) const;

  /// A completion sent by `completer` to requester id `requester` (ID routing). ACS CR applies.
  /// UnsupportedRequest if no function has that requester id or the completion must cross a
  /// root complex that does not support p2p.
  Route routeCompletion(const PciDev& completer, const Bdf& requester, const TlpRouteAttrs& attrs) const;

  /// A completion from system memory (the root complex of `hb`) to requester id `requester`.
  Route routeHostCompletion(const PciHostBridge& hb, const Bdf& requester, const TlpRouteAttrs& attrs) const;

  /// The root complex's address resolution of a request from `requester` (the resolver, or the
  /// host-bridge window of the requester's hierarchy), as routeRequest does it on arrival there.
  RcResolveResult resolveAtRootComplex(const PciDev& requester, std::uint64_t addr,
                                       const TlpRouteAttrs& attrs) const;
  /// Counts a request that a caller sent along a route it kept from an earlier routeRequest or
  /// routeFromRootComplex with the same outcome (TopologyPcieRouter's caches): as those count it.
  void countRepeatedRequest() const { *requests_ += 1; }
  /// Sum of the counted routing decisions other than requests and completions (turnarounds,
  /// redirects, root-complex p2p, refusals): unchanged across a walk that decided nothing but
  /// its route. A refusal is also told to the refusal observer; it changes this sum too.
  std::uint64_t decisionsCounted() const;

  const StatsGroup& stats() const { return stats_; }

 private:
  struct Walk;
  void routeDownFrom(Walk& w, const PciDev& port) const;
  void routeUp(Walk& w, const PciDev& from) const;
  bool toSiblingFunction(Walk& w, const PciDev& from, const PciDev& to, int bar) const;
  void atRootComplex(Walk& w, const PciHostBridge& hb, PciDevId ingress,
                     std::optional<Pa> resolved = std::nullopt) const;
  void count(const Route& r, bool completion) const;
  /// The address resolution at `hb`'s root complex of a request from `requester`.
  RcResolveResult resolveAt(const PciHostBridge& hb, const PciDev& requester, std::uint64_t addr,
                            const TlpRouteAttrs& attrs) const;
  /// Tells the refusal observer (if any) about a request of `w` refused at `hb`.
  void refused(const Walk& w, const PciHostBridge& hb, RcRefusalReason why, const PciHostBridge* peer,
               const PciDev* port = nullptr) const;

  const Topology& topo_;
  RcAddressResolver resolver_;
  RcRefusalObserver refusalObserver_;
  mutable StatsGroup stats_;
  Counter* requests_;
  Counter* completions_;
  Counter* turnarounds_;
  Counter* redirects_;
  Counter* rcP2p_;
  Counter* rcP2pUnsupported_;
  Counter* acsViolations_;
  Counter* unsupported_;
  Counter* iommuFaults_;
};

}  // namespace hmmsim
