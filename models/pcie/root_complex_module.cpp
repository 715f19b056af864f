#include "models/pcie/root_complex_module.h"

#include <algorithm>
#include <cmath>

namespace hmmsim {

PcieRootComplexModule::PcieRootComplexModule(sc_core::sc_module_name name,
                                             const PcieRootComplexParams& params)
    : sc_module(name),
      params_(params),
      latency_(sc_core::sc_time::from_value(params.latencyPs)),
      stats_(std::string(this->name())),
      toMemory_(stats_.counter("to_memory_transactions", "transaction", "requests delivered to host memory")),
      p2p_(stats_.counter("p2p_transactions", "transaction",
                          "requests forwarded from a root port to a root port or another root complex")),
      fromPeer_(stats_.counter("from_peer_transactions", "transaction",
                               "requests from another root complex forwarded to a root port")),
      aborted_(stats_.counter("aborted_transactions", "transaction",
                              "requests aborted by the translation stage or unroutable")),
      hostRequests_(
          stats_.counter("host_requests", "transaction", "CPU-initiated requests (MMIO) sent below")),
      hostUnrouted_(
          stats_.counter("host_unrouted", "transaction",
                         "CPU-initiated requests no device below claims (completed with an error)")) {
  HMMSIM_ASSERT(params.p2pWriteEfficiency > 0 && params.p2pWriteEfficiency <= 1 &&
                    params.p2pReadEfficiency > 0 && params.p2pReadEfficiency <= 1,
                name << ": p2p efficiencies must be in (0, 1]");
  requirePicosecondResolution();
}

void PcieRootComplexModule::hostTransport(tlm::tlm_generic_payload& gp, sc_core::sc_time& delay) {
  const bool isWrite = gp.is_write();
  const std::uint64_t addr = gp.get_address();
  const std::uint64_t len = gp.get_data_length();
  const PcieRouteResult r = router_ != nullptr ? router_->routeFromRootComplex(params_.index, addr, isWrite)
                                               : PcieRouteResult{nullptr, CplStatus::UnsupportedRequest};
  delay += latency_;
  if (r.route == nullptr || len == 0) {
    ++hostUnrouted_;
    gp.set_response_status(tlm::TLM_ADDRESS_ERROR_RESPONSE);
    if (!isWrite) delay += latency_;
    return;
  }
  // The host bridge as requester: one burst of TLPs, sized with the host bridge's MPS/MRRS.
  PcieTlpExtension ext;
  ext.setRequester(params_.hostRequester);
  ext.kind = isWrite ? TlpKind::MWr : TlpKind::MRd;
  ext.lengthBytes = len;
  const BurstWire w =
      isWrite ? writeBurstWire(params_.hostTlp, addr, len) : readBurstWire(params_.hostTlp, addr, len);
  ext.reqTlps = w.reqTlps;
  ext.reqWireBytes = w.reqWireBytes;
  ext.cplTlps = w.cplTlps;
  ext.cplWireBytes = w.cplWireBytes;
  ext.cplNoDataWireBytes = cplWireBytes(params_.hostTlp);
  ext.nowPs = sc_core::sc_time_stamp().value();
  ext.route = r.route;
  ext.hop = 0;
  tlm::tlm_extension_base* previous = gp.set_extension(PcieTlpExtension::ID, &ext);
  ++hostRequests_;
  const std::uint8_t egress = ext.nextEgress();
  HMMSIM_ASSERT(egress < ports_.size(), name() << ": a CPU request for 0x" << std::hex << addr
                                               << " routed to port " << std::dec << int(egress)
                                               << " (host memory and peer root complexes are not reached "
                                                  "through the host bridge)");
  const sc_core::sc_time accepted = delay;
  ports_.transport(egress, gp, ext, delay);
  if (isWrite) {
    delay = accepted;  // posted: the CPU goes on once the host bridge took the write
  } else if (gp.get_response_status() == tlm::TLM_OK_RESPONSE) {
    delay += psTime(ext.tailAfterHeadPs) + latency_;  // the CPU consumes the data once all of it arrived
  } else {
    delay += latency_;
  }
  gp.set_extension(PcieTlpExtension::ID, previous);
}

std::uint64_t PcieRootComplexModule::forwardP2p(IntervalBook& engine, double efficiency, double linkGbps,
                                                std::uint64_t bytes, std::uint64_t repeat,
                                                std::uint64_t floorPs, std::uint64_t head,
                                                std::uint64_t& tail) {
  if (efficiency >= 1.0 || linkGbps <= 0) return head;  // the links are the limit
  // Rounded per train of a stream chunk, as one-by-one issue rounds it (pcie_transaction.h).
  const std::uint64_t trainBytes = bytes / repeat;  // a stream chunk is `repeat` equal trains
  const auto occ = repeat * static_cast<std::uint64_t>(
                                std::llround(double(trainBytes) * 8000.0 / (linkGbps * efficiency)));
  const IntervalBook::Booking b = engine.book(head, occ, tail, floorPs);
  tail = b.endPs;
  return b.startPs;
}

void PcieRootComplexModule::bTransport(tlm::tlm_generic_payload& gp, PcieTlpExtension& ext,
                                       sc_core::sc_time& delay) {
  const bool isRead = ext.kind == TlpKind::MRd;
  delay += latency_;
  if (stage_ != nullptr) {
    ext.translated = true;
    const std::uint64_t before = gp.get_address();
    const UpstreamTranslation tr = stage_->translateUpstream(ext.requester, before, ext.lengthBytes, !isRead,
                                                             ext.addressTranslated, absPs(ext, delay));
    delay += psTime(tr.latencyPs);
    if (tr.status != CplStatus::SuccessfulCompletion) return abort(gp, ext, delay, tr.status);
    if (tr.pieces != nullptr) return forwardPieces(gp, ext, delay, *tr.pieces);
    if (tr.addr != before) {
      gp.set_address(tr.addr);
      if (router_ != nullptr) {
        const PcieRouteResult r = router_->routeFromRootComplex(params_.index, tr.addr, !isRead);
        if (r.route == nullptr) return abort(gp, ext, delay, r.status);
        ext.route = r.route;
        ext.hop = 0;
      }
    }
  }
  const std::uint8_t egress = ext.nextEgress();
  if (egress == kEgressHostMemory) {
    ++toMemory_;
    memory_.transport(0, gp, ext, delay);
    if (isRead) delay += latency_;
    return;
  }
  const bool peer = egress == kEgressPeerRootComplex;
  HMMSIM_ASSERT(peer || egress < ports_.size(),
                name() << ": route names root port " << int(egress) << " of " << ports_.size());
  HMMSIM_ASSERT(!peer || peerOut.size() == 1, name() << ": route leaves for another root complex, but no "
                                                        "host interconnect is bound");
  ++p2p_;
  const double ingressGbps = ext.lastLinkGbps;
  if (!isRead) {
    std::uint64_t head = absPs(ext, delay);
    std::uint64_t tail = head + ext.tailAfterHeadPs;
    head = forwardP2p(p2pWriteEngine_, params_.p2pWriteEfficiency, ingressGbps, ext.reqWireBytes, ext.repeat,
                      ext.nowPs, head, tail);
    delay = delayOf(ext, head);
    ext.tailAfterHeadPs = tail - head;
    if (peer)
      peerOut->b_transport(gp, delay);
    else
      ports_.transport(egress, gp, ext, delay);
    return;
  }
  if (peer)
    peerOut->b_transport(gp, delay);
  else
    ports_.transport(egress, gp, ext, delay);
  if (gp.get_response_status() == tlm::TLM_OK_RESPONSE) {
    std::uint64_t head = absPs(ext, delay);
    std::uint64_t tail = head + ext.tailAfterHeadPs;
    head = forwardP2p(p2pReadEngine_, params_.p2pReadEfficiency, ext.lastLinkGbps, ext.cplWireBytes,
                      ext.repeat, ext.nowPs, head, tail);
    delay = delayOf(ext, head);
    ext.tailAfterHeadPs = tail - head;
  }
  delay += latency_;
}

void PcieRootComplexModule::abort(tlm::tlm_generic_payload& gp, PcieTlpExtension& ext,
                                  sc_core::sc_time& delay, CplStatus status) {
  ++aborted_;
  ext.status = status;
  gp.set_response_status(tlm::TLM_ADDRESS_ERROR_RESPONSE);
  if (ext.kind == TlpKind::MRd) delay += latency_;
}

void PcieRootComplexModule::forwardPieces(tlm::tlm_generic_payload& gp, PcieTlpExtension& ext,
                                          sc_core::sc_time& delay, const std::vector<UpstreamPiece>& pieces) {
  const std::uint64_t addr = gp.get_address();
  unsigned char* const data = gp.get_data_ptr();
  const unsigned int len = gp.get_data_length();
  const std::uint64_t lengthBytes = ext.lengthBytes;
  const PcieRoute* const route = ext.route;
  const std::uint8_t hop = ext.hop;
  const bool isRead = ext.kind == TlpKind::MRd;
  auto restore = [&] {
    gp.set_address(addr);
    gp.set_data_ptr(data);
    gp.set_data_length(len);
    ext.lengthBytes = lengthBytes;
  };
  sc_core::sc_time done = delay;
  for (const UpstreamPiece& p : pieces) {
    if (router_ != nullptr) {
      const PcieRouteResult r = router_->routeFromRootComplex(params_.index, p.addr, !isRead);
      if (r.route == nullptr) {
        restore();
        return abort(gp, ext, delay, r.status);
      }
      ext.route = r.route;
      ext.hop = 0;
    } else {
      ext.route = route;
      ext.hop = hop;
    }
    if (ext.nextEgress() != kEgressHostMemory) {  // a burst scattered over a peer's BAR: not modelled
      restore();
      return abort(gp, ext, delay, CplStatus::CompleterAbort);
    }
    gp.set_address(p.addr);
    gp.set_data_ptr(data != nullptr ? data + p.offset : nullptr);
    gp.set_data_length(static_cast<unsigned int>(p.len));
    ext.lengthBytes = p.len;
    sc_core::sc_time d = delay;
    memory_.transport(0, gp, ext, d);
    if (gp.get_response_status() != tlm::TLM_OK_RESPONSE) {
      restore();  // the memory's error response stands, as on the unscattered path
      delay = d;
      if (isRead) delay += latency_;
      return;
    }
    done = std::max(done, d);
  }
  restore();
  ++toMemory_;
  delay = done;
  if (isRead) delay += latency_;
}

void PcieRootComplexModule::peerTransport(tlm::tlm_generic_payload& gp, sc_core::sc_time& delay) {
  PcieTlpExtension& ext = pcieExt(gp);
  delay += latency_;
  if (ext.route->peerAddrOffset != 0) gp.set_address(gp.get_address() + ext.route->peerAddrOffset);
  const std::uint8_t egress = ext.nextEgress();
  HMMSIM_ASSERT(egress < ports_.size(), name() << ": route from another root complex names root port "
                                               << int(egress) << " of " << ports_.size());
  ++fromPeer_;
  ports_.transport(egress, gp, ext, delay);
  if (ext.kind == TlpKind::MRd) delay += latency_;
}

}  // namespace hmmsim
