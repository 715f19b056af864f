#pragma once
// Adapter from topology's routing (routing.h: the ordered hops a request crosses) to the source
// routes the fabric modules consume (pcie_route.h: one egress port per switching element).
//
// Mapping: Link hops consume nothing (a link has one way through); a Switch hop gives the egress
// port as switchPortIndex() numbers it (0 = upstream port, 1..n = downstream ports); a RootComplex
// hop gives the root port (rootPortIndex()) or kEgressHostMemory when the route ends in system
// memory; Function hops (between functions of a multi-function device) consume nothing.
// A route from one root complex into another (p2p between host bridges whose root complexes
// forward it, HostBridgeParams::p2pSupported) leaves the first by kEgressPeerRootComplex, source
// and destination indices, then the destination's root port; it is counted (cross_root_complex).
// Pure: no SystemC.

#include <cstdint>
#include <set>
#include <string>

#include "models/pcie/pcie_route.h"
#include "models/pcie/routing.h"
#include "models/pcie/tlp.h"
#include "sim/errno.h"
#include "sim/stats.h"

namespace hmmsim {

/// Completion status of a request whose route failed: CompleterAbort for an ACS violation,
/// UnsupportedRequest otherwise (no claimant, no p2p in the root complex, IOMMU refusal);
/// SuccessfulCompletion for RouteStatus::Ok.
CplStatus cplStatusOf(RouteStatus s);

/// Converts a delivered `route` of a request to `addr` into egress ports. Returns Errno::Ok and
/// fills `out`; Errno::Inval if route.status != Ok (out untouched); Errno::OpNotSupp if the
/// route crosses more than two root complexes; Errno::Range if it has more entries than
/// PcieRoute holds.
Errno toPcieRoute(const Topology& topo, const Route& route, std::uint64_t addr, PcieRoute& out);

/// PcieRouter over topology's Router. Routes are computed by `router` per lookup (once per DMA
/// burst) and interned: equal egress lists share one stored PcieRoute, so pointers stay valid
/// and memory does not grow with the number of addresses touched.
class TopologyPcieRouter : public PcieRouter {
 public:
  /// `topo` and `router` must outlive this object. `statsName` e.g. "top.pcie.fabric_route".
  TopologyPcieRouter(const Topology& topo, const Router& router, const std::string& statsName);

  PcieRouteResult routeRequest(Bdf requester, std::uint64_t addr, bool isWrite,
                               bool addressTranslated) const override;
  PcieRouteResult routeFromRootComplex(std::uint32_t rcIndex, std::uint64_t addr,
                                       bool isWrite) const override;

  const StatsGroup& stats() const { return stats_; }
  /// Distinct routes stored so far (the interning bound: one per distinct egress list).
  std::size_t internedRoutes() const { return interned_.size(); }

 private:
  PcieRouteResult convert(const Route& r, std::uint64_t addr) const;

  struct RouteLess {
    bool operator()(const PcieRoute& a, const PcieRoute& b) const {
      if (a.length != b.length) return a.length < b.length;
      if (a.peerAddrOffset != b.peerAddrOffset) return a.peerAddrOffset < b.peerAddrOffset;
      return a.egress < b.egress;
    }
  };
  const Topology& topo_;
  const Router& router_;
  mutable std::set<PcieRoute, RouteLess> interned_;
  mutable StatsGroup stats_;
  Counter& unknownRequester_;
  Counter& failed_;
  Counter& crossRootComplex_;
};

}  // namespace hmmsim
