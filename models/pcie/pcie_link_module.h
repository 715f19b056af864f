#pragma once
// A PCIe link as a SystemC module: two LinkDirections (link.h) between a lower port (an
// endpoint's or a switch's upstream port) and an upper port (a switch downstream port or a root
// port).
//
// Sockets: requests travelling toward the root enter `upIn` and leave by `upOut`; requests
// travelling toward the device enter `downIn` and leave by `downOut`. A read's completions are
// charged on the opposite direction when b_transport returns. Loosely timed: b_transport never
// waits, it only moves the annotated delay (pcie_transaction.h time convention).
// Leaves out: what link.h leaves out; link training, power states, errors.

#include <string>

#include <systemc>
#include <tlm>

#include "models/pcie/link.h"
#include "models/pcie/pcie_sockets.h"
#include "models/pcie/pcie_transaction.h"
#include "sim/stats.h"

namespace hmmsim {

class PcieLinkModule : public sc_core::sc_module {
  void upTransport(tlm::tlm_generic_payload& gp, sc_core::sc_time& delay);
  void downTransport(tlm::tlm_generic_payload& gp, sc_core::sc_time& delay);

 public:
  PcieTargetSocket<PcieLinkModule, &PcieLinkModule::upTransport> upIn{"upIn", this};
  PcieInitiatorSocket<> upOut{"upOut"};
  PcieTargetSocket<PcieLinkModule, &PcieLinkModule::downTransport> downIn{"downIn", this};
  PcieInitiatorSocket<> downOut{"downOut"};

  /// `params.config` must be valid (validateLinkConfig).
  PcieLinkModule(sc_core::sc_module_name name, const PcieLinkParams& params);

  const PcieLinkParams& params() const { return params_; }
  LinkDirection& up() { return up_; }      ///< toward the root
  LinkDirection& down() { return down_; }  ///< toward the device
  StatsGroup& stats() { return stats_; }

 private:
  void transport(LinkDirection& fwd, LinkDirection& back, Counter& fwdBytes, Counter& backBytes,
                 PcieInitiatorSocket<>& out, tlm::tlm_generic_payload& gp, sc_core::sc_time& delay);

  PcieLinkParams params_;
  sc_core::sc_time latency_;
  LinkDirection up_;
  LinkDirection down_;
  StatsGroup stats_;
  Counter& upBytes_;
  Counter& downBytes_;
  Counter& upTlps_;
  Counter& downTlps_;
};

}  // namespace hmmsim
