#pragma once
// The link between root complexes (host bridges): Intel UPI, AMD Infinity Fabric between sockets.
// It carries peer-to-peer requests from a root port of one root complex to a root port of
// another (routes with kEgressPeerRootComplex, pcie_route.h) and their completions back.
//
// What it models: one direction per ordered pair of root complexes, each a bandwidth/latency
// resource with interval booking (link.h: serialization of the TLP wire bytes at `bandwidthGbps`,
// a fixed one-way latency). Non-posted requests wait only behind other non-posted requests, as
// on a PCIe link.
// Default and its source: Intel Xeon Scalable (Skylake-SP) UPI at 10.4 GT/s carries 2 bytes per
// transfer per direction: 20.8 GB/s = 166.4 Gb/s per direction (one UPI link; Intel's Xeon
// Scalable platform brief). Latency 100 ns one way: an assumption, the order of the extra latency
// of a remote-socket memory access over a local one; not calibrated against a p2p measurement.
// With these, a Gen4 x16 p2p stream between sockets is limited by the interconnect (and the
// source root complex's p2p forwarding efficiency), and every request pays two root-complex
// crossings plus the interconnect latency.
// Leaves out: UPI/Infinity Fabric packet formats (the TLP wire bytes are charged as they are),
// several links between a pair of sockets, coherence traffic, CPU memory traffic sharing it.
//
// Sockets: `in` is bound by every root complex's peerOut; binding i of `out` is the peerIn of the
// root complex added i-th (setPorts() maps root complex indices to bindings).

#include <array>
#include <cstdint>
#include <memory>
#include <vector>

#include <systemc>
#include <tlm>

#include "models/pcie/link.h"
#include "models/pcie/pcie_sockets.h"
#include "models/pcie/pcie_transaction.h"
#include "sim/stats.h"

namespace hmmsim {

struct PcieHostInterconnectParams {
  double bandwidthGbps = 166.4;       ///< per direction, Gb/s; default one UPI link at 10.4 GT/s
  std::uint64_t latencyPs = 100'000;  ///< one way, ps; default 100 ns (assumption, see above)
};

class PcieHostInterconnectModule : public sc_core::sc_module {
  void bTransport(tlm::tlm_generic_payload& gp, sc_core::sc_time& delay);

 public:
  PcieTargetSocket<PcieHostInterconnectModule, &PcieHostInterconnectModule::bTransport> in{"in", this};
  PcieInitiatorSocket<0> out{"out"};

  PcieHostInterconnectModule(sc_core::sc_module_name name, const PcieHostInterconnectParams& params);

  /// rcIndexOfPort[i]: the root complex index whose peerIn is bound to out[i].
  void setPorts(const std::vector<std::uint32_t>& rcIndexOfPort);
  const PcieHostInterconnectParams& params() const { return params_; }
  /// The direction carrying traffic from root complex `from` to root complex `to` (indices).
  LinkDirection& direction(std::uint32_t from, std::uint32_t to);
  StatsGroup& stats() { return stats_; }

 private:
  std::uint32_t port(std::uint32_t rcIndex) const;

  PcieHostInterconnectParams params_;
  sc_core::sc_time latency_;
  std::array<std::uint8_t, 256> portOf_{};  // root complex index -> out binding (0xFF: none)
  std::size_t ports_ = 0;
  std::vector<std::unique_ptr<LinkDirection>> dirs_;  // [from port * ports + to port]
  StatsGroup stats_;
  Counter& bytes_;
  Counter& transactions_;
};

}  // namespace hmmsim
