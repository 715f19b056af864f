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
#include <unordered_map>
#include <utility>
#include <vector>

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
///
/// Routes to system memory through a root complex are kept (a simulator memo; same routes, same
/// stats): every DMA burst through the IOMMU looks its route up (its translation can change), and
/// the walk up the hierarchy decides on bridge windows and BARs only, which enumeration fixed.
/// - A request's route is kept per (requester, direction, address type, 1 MiB block of the wire
///   address) when its walk decided nothing but the route (no turnaround, redirect or refusal
///   counted) and the block holds no BAR and no bridge-window edge (bridge windows have 1 MiB
///   granularity), so every address of the block walks up the same way. A later request in the
///   block still has the root complex resolve its address (the IOMMU's current mapping); only if
///   that lands in system memory again does it take the kept route.
/// - A root complex's route to system memory (routeFromRootComplex of an address outside every
///   host-bridge window) is the same for every such address: kept per root complex.
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
  /// May the route to system memory of a request to `addr` be kept for its whole 1 MiB block?
  bool blockKeepable(std::uint64_t addr) const;

  static constexpr unsigned kBlockShift = 20;  // bridge-window granularity (1 MiB)
  struct RequestKey {
    std::uint64_t block = ~0ull;  // wire address >> kBlockShift
    std::uint32_t requester = 0;  // Bdf::key()
    std::uint32_t flags = 0;      // bit 0: write, bit 1: address translated
    bool operator==(const RequestKey& o) const {
      return block == o.block && requester == o.requester && flags == o.flags;
    }
  };
  struct RequestKeyHash {
    std::size_t operator()(const RequestKey& k) const {
      return std::hash<std::uint64_t>()(k.block * 0x9e3779b97f4a7c15ull ^
                                        (std::uint64_t(k.requester) << 2 | k.flags));
    }
  };

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
  // Kept routes to system memory (see the class comment), the last one used in front.
  mutable std::unordered_map<RequestKey, const PcieRoute*, RequestKeyHash> systemRoutes_;
  mutable RequestKey lastKey_;
  mutable const PcieRoute* lastRoute_ = nullptr;
  mutable std::vector<const PcieRoute*> rcSystemRoutes_;  // per root complex index * 2 + write
  // blockKeepable's view of the enumerated topology, built on first use: the assigned BARs'
  // [base, end) in bus addresses, and whether every bridge window edge is 1 MiB-aligned.
  mutable bool scanned_ = false;
  mutable bool windowsAligned_ = false;
  mutable std::vector<std::pair<std::uint64_t, std::uint64_t>> barRanges_;
  mutable StatsGroup stats_;
  Counter& unknownRequester_;
  Counter& failed_;
  Counter& crossRootComplex_;
};

}  // namespace hmmsim
