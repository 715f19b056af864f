#pragma once
// A PCIe root complex as a SystemC module: root ports, the path to host memory through an
// optional translation stage (the IOMMU, translation_stage.h), and peer-to-peer forwarding
// between root ports.
//
// Sockets: `in` is bound by the element behind every root port; binding i of `out` is root port
// i, made with bindPort(), which also names the link the root port sends on (pcie_link_module.h:
// the root complex charges it inline); `memOut` leads to host memory (a PcieMemoryTarget or a
// DRAM model).
// Timing: `latencyPs` for a request entering from a root port, and again for a read's
// completions going back; the translation stage adds its own latency. Peer-to-peer through the
// root complex is often slower than the links: requests forwarded root port to root port pass a
// forwarding engine that moves data at `p2pWriteEfficiency` (posted writes) or
// `p2pReadEfficiency` (read completions) times the bandwidth of the link the data arrived on,
// with interval booking (interval_book.h).
// Default efficiency, source: docs/reference/pcie-model.md "Measured anchors": root-
// complex p2p on older Intel parts reached 7.1 GB/s where the same transfer through host memory
// reached 9.5 GB/s, so both default to 7.1 / 9.5 = 0.747 (one measurement, applied to reads and
// writes alike; set 1.0 for root complexes that forward p2p at link rate).
// p2p between host bridges (a route with kEgressPeerRootComplex): the source root complex charges
// its latency, translation and p2p forwarding efficiency as for p2p between its own root ports
// and sends the request through `peerOut` to the host interconnect; the destination root
// complex (`peerIn`) adds its latency on the way in and, for reads, out, and forwards to its root
// port (no second translation: the source resolved the address; no second efficiency charge).
// CPU-initiated requests (MMIO loads and stores, doorbells) enter at `hostIn` as plain TLM
// payloads (a system bus forwards them): the host bridge becomes the requester (`hostRequester`),
// the request is routed from this root complex (PcieRouter::routeFromRootComplex) and sized as
// one burst of TLPs with `hostTlp` (MPS/MRRS of the host bridge); it pays `latencyPs` in and, for
// a read, again for the completions, plus the links, switches and target on its way. A store is
// posted: the CPU is released once the root complex accepted it (latencyPs), while the write
// itself reaches the device later in simulated time.
// Leaves out: ordering between root ports, write combining and uncached-access serialisation in
// the CPU, the host bridge's own queue limits,
// multiple host-memory channels (the memory target models its own bandwidth).

#include <cstdint>

#include <systemc>
#include <tlm>

#include "models/pcie/link_timing.h"
#include "models/pcie/pcie_link_module.h"
#include "models/pcie/pcie_route.h"
#include "models/pcie/pcie_sockets.h"
#include "models/pcie/pcie_transaction.h"
#include "models/pcie/translation_stage.h"
#include "sim/interval_book.h"
#include "sim/stats.h"

namespace hmmsim {

struct PcieRootComplexParams {
  std::uint32_t index = 0;            ///< root complex number (PcieRouter::routeFromRootComplex)
  std::uint64_t latencyPs = 200'000;  ///< per crossing (request in, completion out), ps; default 200 ns
  static constexpr double DEFAULT_P2P_EFFICIENCY = 7.1 / 9.5;  ///< pcie-model.md measured anchor
  double p2pWriteEfficiency =
      DEFAULT_P2P_EFFICIENCY;  ///< p2p posted-write rate / ingress link rate, (0, 1]; default 0.747
  double p2pReadEfficiency =
      DEFAULT_P2P_EFFICIENCY;  ///< p2p read-completion rate / ingress link rate, (0, 1]; default 0.747
  Bdf hostRequester{};         ///< requester id of CPU-initiated requests (the host bridge); default 00:00.0
  PcieLinkConfig
      hostTlp{};  ///< TLP sizing (MPS, MRRS, RCB) of CPU-initiated requests; default PcieLinkConfig
};

class PcieRootComplexModule : public sc_core::sc_module {
  void bTransport(tlm::tlm_generic_payload& gp, PcieTlpExtension& ext, sc_core::sc_time& delay);
  void peerTransport(tlm::tlm_generic_payload& gp, sc_core::sc_time& delay);
  void hostTransport(tlm::tlm_generic_payload& gp, sc_core::sc_time& delay);

 public:
  PcieTlpTargetSocket<PcieRootComplexModule, &PcieRootComplexModule::bTransport> in{"in", this};
  PcieInitiatorSocket<0> out{"out"};
  PcieInitiatorSocket<> memOut{"memOut"};
  /// To and from other root complexes through the host interconnect (host_interconnect_module.h);
  /// bound only when the fabric has more than one root complex.
  PcieInitiatorSocket<1, sc_core::SC_ZERO_OR_MORE_BOUND> peerOut{"peerOut"};
  PcieTargetSocket<PcieRootComplexModule, &PcieRootComplexModule::peerTransport> peerIn{"peerIn", this};
  /// CPU-initiated requests (plain TLM payloads, no PCIe extension): MMIO to BARs below. May
  /// stay unbound (a fabric without CPUs).
  PcieTargetSocket<PcieRootComplexModule, &PcieRootComplexModule::hostTransport> hostIn{"hostIn", this};

  PcieRootComplexModule(sc_core::sc_module_name name, const PcieRootComplexParams& params);

  /// Binds the next root port (0 first) to `next`, sending over `link` (nullptr: none). Before
  /// sc_start.
  template <class Target>
  void bindPort(Target& next, PcieLinkModule::Sender* link) {
    ports_.bind(out, next, link);
  }

  /// Installs (or, with nullptr, removes) the translation stage; not owned.
  void setTranslationStage(PcieTranslationStage* stage) { stage_ = stage; }
  /// Router used to re-route a request whose address the translation stage changed; not owned.
  void setRouter(const PcieRouter* router) { router_ = router; }

  const PcieRootComplexParams& params() const { return params_; }
  StatsGroup& stats() { return stats_; }

 private:
  /// Forwarding-engine reservation for p2p data: returns the new head time, updates `tail`.
  std::uint64_t forwardP2p(IntervalBook& engine, double efficiency, double linkGbps, std::uint64_t bytes,
                           std::uint64_t repeat, std::uint64_t floorPs, std::uint64_t head,
                           std::uint64_t& tail);

  /// A request the translation stage scattered (UpstreamTranslation::pieces): each piece goes
  /// to host memory on its own, all from the same arrival; the request completes with the last.
  /// A piece routed anywhere but host memory aborts the rest (Completer Abort).
  void forwardPieces(tlm::tlm_generic_payload& gp, PcieTlpExtension& ext, sc_core::sc_time& delay,
                     const std::vector<UpstreamPiece>& pieces);
  /// Ends a request with an error completion `status` (TLM_ADDRESS_ERROR_RESPONSE).
  void abort(tlm::tlm_generic_payload& gp, PcieTlpExtension& ext, sc_core::sc_time& delay, CplStatus status);

  void end_of_elaboration() override {
    ports_.resolve(out);
    memory_.resolve(memOut);
  }

  PcieRootComplexParams params_;
  sc_core::sc_time latency_;
  PcieEgressPorts ports_;   // root ports
  PcieEgressPorts memory_;  // memOut (no link)
  PcieTranslationStage* stage_ = nullptr;
  const PcieRouter* router_ = nullptr;
  IntervalBook p2pWriteEngine_;  // forwarding-engine bookings of posted p2p writes
  IntervalBook p2pReadEngine_;   // and of p2p read completions
  StatsGroup stats_;
  Counter& toMemory_;
  Counter& p2p_;
  Counter& fromPeer_;
  Counter& aborted_;
  Counter& hostRequests_;
  Counter& hostUnrouted_;
};

}  // namespace hmmsim
