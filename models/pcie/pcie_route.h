#pragma once
// Source routes through the PCIe fabric, and the router interface the fabric consults.
//
// A request carries the ordered list of egress ports it takes at each switching element
// (switch or root complex) it crosses; links have one way through and consume no entry. This is
// how the result of topology's routing (the ordered hops a request crosses) reaches the modules:
// the route is computed once per DMA burst, not per TLP.
// Port numbering: a switch's port 0 is its upstream port, ports 1..n its downstream ports in
// the order they were bound; a root complex's ports 0..n-1 are its root ports;
// kEgressHostMemory at a root complex means "to host memory" (through the translation stage);
// kEgressPeerRootComplex "to another root complex by the host interconnect".
// Pure: no SystemC.

#include <array>
#include <cstdint>

#include "models/pcie/tlp.h"
#include "sim/assert.h"
#include "sim/strong_types.h"

namespace hmmsim {

constexpr std::uint8_t kEgressHostMemory = 0xFE;  ///< root complex: deliver to host memory
/// Root complex: leave by the host interconnect toward another root complex (p2p between host
/// bridges). The next two entries are the source and destination root complex indices (the
/// interconnect's own egress), then the destination's root port.
constexpr std::uint8_t kEgressPeerRootComplex = 0xFD;

struct PcieRoute {
  static constexpr std::size_t kMaxHops = 16;
  std::array<std::uint8_t, kMaxHops> egress{};  ///< egress port at the i-th switching element
  std::uint8_t length = 0;
  /// Added to the address when the request enters the destination root complex of a p2p
  /// route between host bridges (the target's bus address minus the one the source root
  /// complex forwarded; 0 where both host bridges map bus = CPU physical). Modulo 2^64.
  std::uint64_t peerAddrOffset = 0;

  void push(std::uint8_t port) {
    HMMSIM_ASSERT(length < kMaxHops, "route longer than " << kMaxHops << " switching elements");
    egress[length++] = port;
  }
};

/// Result of a route lookup: the route, or why there is none.
struct PcieRouteResult {
  const PcieRoute* route = nullptr;  ///< nullptr: the request is not delivered
  /// When route is nullptr: UnsupportedRequest (nothing claims the address, no p2p between root
  /// complexes, an IOMMU refusal) or CompleterAbort (ACS violation). Posted writes are dropped.
  CplStatus status = CplStatus::SuccessfulCompletion;
  /// The router promises the same result for every address in [validBase, validBase +
  /// validBytes) from this requester, for its lifetime (a static address window); 0: no promise.
  /// Lets a DMA engine skip the lookup for the next burst in the window.
  std::uint64_t validBase = 0, validBytes = 0;
};

/// Answers where a request goes. Implementations: PcieFabric (explicit paths) and
/// TopologyPcieRouter (route_adapter.h, over topology's Router).
class PcieRouter {
 public:
  virtual ~PcieRouter() = default;
  /// Route of a request from `requester` to bus address `addr` (`isWrite`: MWr vs MRd;
  /// `addressTranslated`: the TLP's AT field). The route pointer stays valid for the router's
  /// lifetime.
  virtual PcieRouteResult routeRequest(Bdf requester, std::uint64_t addr, bool isWrite,
                                       bool addressTranslated) const = 0;
  /// Route onward from root complex `rcIndex` (host bridge index) for a (translated) address:
  /// used after the translation stage changed the address.
  virtual PcieRouteResult routeFromRootComplex(std::uint32_t rcIndex, std::uint64_t addr,
                                               bool isWrite) const = 0;
};

}  // namespace hmmsim
