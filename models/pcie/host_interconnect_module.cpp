#include "models/pcie/host_interconnect_module.h"

#include <algorithm>
#include <string>

#include "sim/assert.h"

namespace hmmsim {

PcieHostInterconnectModule::PcieHostInterconnectModule(sc_core::sc_module_name name,
                                                       const PcieHostInterconnectParams& params)
    : sc_module(name),
      params_(params),
      latency_(psTime(params.latencyPs)),
      stats_(std::string(this->name())),
      bytes_(stats_.counter("wire_bytes", "B", "TLP wire bytes carried between root complexes")),
      transactions_(stats_.counter("transactions", "transaction",
                                   "requests carried (TLPs, or bursts at per-burst fidelity)")) {
  HMMSIM_ASSERT(params.bandwidthGbps > 0, this->name() << ": interconnect bandwidth must be positive");
  requirePicosecondResolution();
  portOf_.fill(0xFF);
}

void PcieHostInterconnectModule::setPorts(const std::vector<std::uint32_t>& rcIndexOfPort) {
  HMMSIM_ASSERT(rcIndexOfPort.size() < 0xFF, name() << ": too many root complexes");
  ports_ = rcIndexOfPort.size();
  portOf_.fill(0xFF);
  for (std::size_t i = 0; i < ports_; ++i) {
    HMMSIM_ASSERT(rcIndexOfPort[i] < portOf_.size(), name() << ": root complex index " << rcIndexOfPort[i]);
    portOf_[rcIndexOfPort[i]] = static_cast<std::uint8_t>(i);
  }
  dirs_.clear();
  for (std::size_t i = 0; i < ports_ * ports_; ++i)
    dirs_.push_back(std::make_unique<LinkDirection>(params_.bandwidthGbps, params_.latencyPs));
}

std::uint32_t PcieHostInterconnectModule::port(std::uint32_t rcIndex) const {
  HMMSIM_ASSERT(rcIndex < portOf_.size() && portOf_[rcIndex] != 0xFF,
                name() << ": no root complex with index " << rcIndex);
  return portOf_[rcIndex];
}

LinkDirection& PcieHostInterconnectModule::direction(std::uint32_t from, std::uint32_t to) {
  return *dirs_[port(from) * ports_ + port(to)];
}

void PcieHostInterconnectModule::bTransport(tlm::tlm_generic_payload& gp, sc_core::sc_time& delay) {
  PcieTlpExtension& ext = pcieExt(gp);
  const std::uint32_t from = ext.nextEgress(), to = ext.nextEgress();
  LinkDirection& fwd = direction(from, to);
  LinkDirection& back = direction(to, from);
  ++transactions_;
  // As a PCIe link (pcie_link_module.cpp): the request's train, then the completions back.
  const std::uint64_t head = absPs(ext, delay);
  std::uint64_t waited = 0;
  const HeadTail in{head, head + ext.tailAfterHeadPs};
  const HeadTail sent =
      ext.kind == TlpKind::MRd
          ? fwd.transmitNonPosted(in, ext.reqWireBytes, ext.reqTlps, &waited, ext.nowPs, ext.repeat)
          : fwd.transmit(in, ext.reqWireBytes, ext.reqTlps, &waited, ext.nowPs, ext.repeat);
  ext.queueWaitPs += waited;
  ext.sharedSeenPs = std::max(ext.sharedSeenPs, fwd.noteRequester(ext.requesterKey, ext.nowPs));
  bytes_ += ext.reqWireBytes;
  ext.tailAfterHeadPs = sent.tailPs - sent.headPs;
  delay += latency_;
  if (waited != 0) delay += psTime(waited);

  out[port(to)]->b_transport(gp, delay);

  if (ext.kind != TlpKind::MRd) return;
  const bool ok = gp.get_response_status() == tlm::TLM_OK_RESPONSE;
  const std::uint64_t bytes = ok ? ext.cplWireBytes : ext.cplNoDataWireBytes;
  const std::uint64_t cplHead = absPs(ext, delay);
  std::uint64_t cplWaited = 0;
  const HeadTail c = back.transmit({cplHead, cplHead + ext.tailAfterHeadPs}, bytes, ok ? ext.cplTlps : 1,
                                   &cplWaited, ext.nowPs, ok ? ext.repeat : 1);
  ext.sharedSeenPs = std::max(ext.sharedSeenPs, back.noteRequester(ext.requesterKey, ext.nowPs));
  bytes_ += bytes;
  ext.tailAfterHeadPs = c.tailPs - c.headPs;
  delay += latency_;
  if (cplWaited != 0) delay += psTime(cplWaited);
}

}  // namespace hmmsim
