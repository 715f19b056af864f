#include "models/pcie/pcie_switch_module.h"

namespace hmmsim {

PcieSwitchModule::PcieSwitchModule(sc_core::sc_module_name name, const PcieSwitchParams& params)
    : sc_module(name),
      params_(params),
      latency_(psTime(params.cutThroughLatencyPs)),
      stats_(std::string(this->name())),
      forwarded_(stats_.counter("forwarded_transactions", "transaction",
                                "requests forwarded (TLPs, or bursts at per-burst fidelity)")) {
  requirePicosecondResolution();
}

void PcieSwitchModule::bTransport(tlm::tlm_generic_payload& gp, PcieTlpExtension& ext,
                                  sc_core::sc_time& delay) {
  const std::uint8_t egress = ext.nextEgress();
  HMMSIM_ASSERT(egress < ports_.size(),
                name() << ": route names port " << int(egress) << " of " << ports_.size());
  ++forwarded_;
  delay += latency_;
  ports_.transport(egress, gp, ext, delay);
  if (ext.kind == TlpKind::MRd) delay += latency_;  // the completions cross the switch too
}

}  // namespace hmmsim
