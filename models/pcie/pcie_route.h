#pragma once
// Source routes through the PCIe fabric, and the router interface the fabric consults.
//
// A request carries the ordered list of egress ports it takes at each switching element
// (switch or root complex) it crosses; links have one way through and consume no entry. This is
// how the result of topology's routing (the ordered hops a request crosses) reaches the modules:
// the route is computed once per DMA burst, not per TLP.
// Port numbering: a switch's port 0 is its upstream port, ports 1..n its downstream ports in
// the order they were bound; a root complex's ports 0..n-1 are its root ports;
// kEgressHostMemory at a root complex means "to host memory" (through the translation stage).
// Pure: no SystemC.

#include <array>
#include <cstdint>

#include "sim/assert.h"
#include "sim/strong_types.h"

namespace hmmsim {

constexpr std::uint8_t kEgressHostMemory = 0xFE;  ///< root complex: deliver to host memory

struct PcieRoute {
  static constexpr std::size_t kMaxHops = 16;
  std::array<std::uint8_t, kMaxHops> egress{};  ///< egress port at the i-th switching element
  std::uint8_t length = 0;

  void push(std::uint8_t port) {
    HMMSIM_ASSERT(length < kMaxHops, "route longer than " << kMaxHops << " switching elements");
    egress[length++] = port;
  }
};

/// Answers where a request goes. Implementations: PcieFabric (explicit paths) and the adapter
/// over topology's routing.
class PcieRouter {
 public:
  virtual ~PcieRouter() = default;
  /// Route of a request from `requester` to bus address `addr`; nullptr if no target claims the
  /// address (the request then completes with Unsupported Request). The pointer stays valid for
  /// the router's lifetime.
  virtual const PcieRoute* routeRequest(Bdf requester, std::uint64_t addr) const = 0;
  /// Route onward from root complex `rcIndex` for a (translated) address: used after the
  /// translation stage changed the address. nullptr if nothing claims it.
  virtual const PcieRoute* routeFromRootComplex(std::uint32_t rcIndex, std::uint64_t addr) const = 0;
};

}  // namespace hmmsim
