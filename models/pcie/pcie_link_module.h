#pragma once
// A PCIe link: two LinkDirections (link.h) between a lower port (an endpoint's or a switch's
// upstream port) and an upper port (a switch downstream port or a root port).
//
// A link is a timing object of the ports at its ends, not a socket hop: the element that sends
// (DMA engine, switch, root complex) holds the link's Sender for its end and charges the link
// inline before it calls the element at the far end through its own initiator socket
// (PcieEgressPorts below). A TLP crossing three links and two switches to host memory thus
// makes four socket calls (switch, switch, root complex, memory) instead of seven; the charges,
// and their order, are those of a link module between two sockets. The link stays an
// sc_module so that its stats keep their place in the hierarchy ("<fabric>_<node>_link").
// Timing: a request is charged on the sender's direction (serialization with interval booking,
// then the link latency) on its way out; a read's completions are charged on the opposite
// direction when the far end returns. Loosely timed: nothing waits, only the annotated delay
// moves (pcie_transaction.h time convention).
// Tracing (setTrace): each direction's bookings as occupancy slices (link_occupancy_trace.h).
// Leaves out: what link.h leaves out; link training, power states, errors.

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include <systemc>
#include <tlm>

#include "models/pcie/link.h"
#include "models/pcie/link_occupancy_trace.h"
#include "models/pcie/pcie_sockets.h"
#include "models/pcie/pcie_transaction.h"
#include "sim/stats.h"

namespace hmmsim {

/// The end of a link a sender is at.
enum class PcieLinkEnd : std::uint8_t {
  Lower,  ///< an endpoint's or switch's upstream port: sends toward the root (up)
  Upper,  ///< a switch downstream port or a root port: sends toward the device (down)
};

/// The element a port sends to: directly (a PcieTlpTargetSocket's owner, with the extension at
/// hand) or, for any other TLM target, through its b_transport.
struct PcieNextHop {
  PcieDirectTarget direct;                    // fn == nullptr: not a PcieTlpTargetSocket
  tlm::tlm_fw_transport_if<>* tlm = nullptr;  // the bound interface
  __attribute__((always_inline)) void call(tlm::tlm_generic_payload& gp, PcieTlpExtension& ext,
                                           sc_core::sc_time& delay) const {
    if (direct.fn != nullptr)
      direct.fn(direct.owner, gp, ext, delay);
    else
      tlm->b_transport(gp, delay);
  }
};

class PcieLinkModule : public sc_core::sc_module {
 public:
  /// What the port at one end uses to send over the link.
  class Sender {
   public:
    /// Charges the transaction on this end's direction, calls `next` (the element at the far
    /// end), and charges a read's completions on the opposite direction when it returns.
    /// Inline: it runs for every TLP on every link.
    __attribute__((always_inline)) void transport(tlm::tlm_generic_payload& gp, PcieTlpExtension& ext,
                                                  sc_core::sc_time& delay, const PcieNextHop& next) {
      const std::uint64_t head = absPs(ext, delay);
      std::uint64_t waited = 0;
      const HeadTail in{head, head + ext.tailAfterHeadPs};
      const HeadTail sent =
          ext.kind == TlpKind::MRd
              ? fwd_->transmitNonPosted(in, ext.reqWireBytes, ext.reqTlps, &waited, ext.nowPs, ext.repeat)
              : fwd_->transmit(in, ext.reqWireBytes, ext.reqTlps, &waited, ext.nowPs, ext.repeat);
      ext.queueWaitPs += waited;
      if (__builtin_expect(fwdTrace_ != nullptr, 0))
        fwdTrace_->note(fwd_->lastBooking().startPs, fwd_->lastBooking().endPs, ext.reqWireBytes,
                        ext.reqTlps);
      ext.sharedSeenPs = std::max(ext.sharedSeenPs, fwd_->noteRequester(ext.requesterKey, ext.nowPs));
      if (!ext.injectRecorded) {
        ext.injectRecorded = true;
        ext.injectDonePs = sent.tailPs - fwd_->latencyPs();
      }
      *fwdBytes_ += ext.reqWireBytes;
      *fwdTlps_ += ext.reqTlps;
      ext.lastLinkGbps = fwd_->tlpGbps();
      ext.tailAfterHeadPs = sent.tailPs - sent.headPs;
      // New head = old head + queueing wait + latency; sc_time arithmetic avoids a conversion.
      delay += latency_;
      if (waited != 0) delay += psTime(waited);
      next.call(gp, ext, delay);
      if (ext.kind == TlpKind::MRd) completions(gp, ext, delay);
    }

   private:
    friend class PcieLinkModule;
    /// A read's completions on the way back (out of line: reads are the rarer case).
    void completions(tlm::tlm_generic_payload& gp, PcieTlpExtension& ext, sc_core::sc_time& delay);

    LinkDirection* fwd_ = nullptr;             // the direction this end sends on
    LinkDirection* back_ = nullptr;            // the direction completions come back on
    LinkOccupancyTrace* fwdTrace_ = nullptr;   // fwd_'s occupancy slices (nullptr: not traced)
    LinkOccupancyTrace* backTrace_ = nullptr;  // back_'s
    Counter* fwdBytes_ = nullptr;
    Counter* fwdTlps_ = nullptr;
    Counter* backBytes_ = nullptr;
    Counter* backTlps_ = nullptr;
    sc_core::sc_time latency_;
  };

  /// `params.config` must be valid (validateLinkConfig).
  PcieLinkModule(sc_core::sc_module_name name, const PcieLinkParams& params);
  PcieLinkModule(const PcieLinkModule&) = delete;
  PcieLinkModule& operator=(const PcieLinkModule&) = delete;

  /// The sender of the port at `end` (Lower sends up, Upper sends down).
  Sender& sender(PcieLinkEnd end) { return end == PcieLinkEnd::Lower ? lower_ : upper_; }

  /// Records each direction's occupancy on `up` and `down` (nullptr: not traced; both must
  /// outlive the link's use). A direction not traced costs one pointer test per transmission.
  void setTrace(LinkOccupancyTrace* up, LinkOccupancyTrace* down);

  const PcieLinkParams& params() const { return params_; }
  LinkDirection& up() { return up_; }      ///< toward the root
  LinkDirection& down() { return down_; }  ///< toward the device
  StatsGroup& stats() { return stats_; }

 private:
  PcieLinkParams params_;
  LinkDirection up_;
  LinkDirection down_;
  StatsGroup stats_;
  Counter& upBytes_;
  Counter& downBytes_;
  Counter& upTlps_;
  Counter& downTlps_;
  Sender lower_;  // sends up
  Sender upper_;  // sends down
};

/// The egress ports of a sending element (DMA engine, switch, root complex): binding i of its
/// initiator socket, and the link port i sends on (none: the socket leads straight to the next
/// element, as any TLM target may be bound). Bind through bind() only, so that ports and links
/// stay in step; resolve() once binding is complete (end_of_elaboration). A port bound to a
/// PcieTlpTargetSocket calls its owner directly (pcie_sockets.h).
class PcieEgressPorts {
 public:
  /// Binds the next port of `out` to `target`, over `link` (nullptr: no link).
  template <class Socket, class Target>
  void bind(Socket& out, Target& target, PcieLinkModule::Sender* link) {
    out.bind(target);
    links_.push_back(link);
  }
  /// Resolves every binding of `out` (call from end_of_elaboration).
  template <class Socket>
  void resolve(Socket& out) {
    ports_.clear();
    for (int i = 0; i < out.size(); ++i) {
      Port p{std::size_t(i) < links_.size() ? links_[std::size_t(i)] : nullptr, PcieNextHop{}};
      p.next.tlm = out[i];
      if (auto* d = dynamic_cast<PcieDirectIf*>(p.next.tlm)) p.next.direct = d->direct();
      ports_.push_back(p);
    }
  }
  std::size_t size() const { return ports_.size(); }
  /// Sends over port `port` (< size()): the link's charges, then the next element.
  __attribute__((always_inline)) void transport(std::size_t port, tlm::tlm_generic_payload& gp,
                                                PcieTlpExtension& ext, sc_core::sc_time& delay) const {
    const Port& p = ports_[port];
    if (p.link != nullptr)
      p.link->transport(gp, ext, delay, p.next);
    else
      p.next.call(gp, ext, delay);
  }

 private:
  struct Port {
    PcieLinkModule::Sender* link = nullptr;
    PcieNextHop next;
  };
  std::vector<PcieLinkModule::Sender*> links_;  // by binding order
  std::vector<Port> ports_;
};

}  // namespace hmmsim
