#pragma once
// A PCIe switch as a SystemC module: forwards each request by its source route (pcie_route.h)
// with a fixed cut-through latency, on the way in and again for a read's completions on the way
// back.
//
// Sockets: `in` is bound by every port's link (the ingress port is not needed); binding i of
// `out` is port i (port 0 = upstream port, then the downstream ports). A request leaves by the
// port its route names.
// Timing: cut-through — the switch adds `cutThroughLatencyPs` to the head and tail of the TLP
// train; serialization is charged by the links on each side (link.h cut-through rule).
// Leaves out: internal crossbar contention, buffer limits, ACS (routes decide where a request
// goes; an ACS-redirected request simply carries a route through the upstream port).

#include <systemc>
#include <tlm>

#include "models/pcie/pcie_link_module.h"
#include "models/pcie/pcie_sockets.h"
#include "models/pcie/pcie_transaction.h"
#include "sim/stats.h"

namespace hmmsim {

struct PcieSwitchParams {
  /// Ingress-to-egress latency, charged once per traversal and direction (a request on its way
  /// in, a read's completions on their way back), ps; default 150 ns. Source: pcie-model.md
  /// measured anchors, "PCIe switch cut-through latency: at most about 150 ns per hop (PLX
  /// PEX8796 class)" — the upper bound, so switch paths are not flattered.
  std::uint64_t cutThroughLatencyPs = 150'000;
};

class PcieSwitchModule : public sc_core::sc_module {
  void bTransport(tlm::tlm_generic_payload& gp, PcieTlpExtension& ext, sc_core::sc_time& delay);

 public:
  PcieTlpTargetSocket<PcieSwitchModule, &PcieSwitchModule::bTransport> in{"in", this};
  PcieInitiatorSocket<0> out{"out"};

  PcieSwitchModule(sc_core::sc_module_name name, const PcieSwitchParams& params);

  /// Binds the next port (0 first: the upstream port) to `next`, sending over `link` (nullptr:
  /// none). Before sc_start.
  template <class Target>
  void bindPort(Target& next, PcieLinkModule::Sender* link) {
    ports_.bind(out, next, link);
  }

  const PcieSwitchParams& params() const { return params_; }
  StatsGroup& stats() { return stats_; }

 private:
  void end_of_elaboration() override { ports_.resolve(out); }

  PcieSwitchParams params_;
  sc_core::sc_time latency_;
  PcieEgressPorts ports_;
  StatsGroup stats_;
  Counter& forwarded_;
};

}  // namespace hmmsim
