#pragma once
// The TLM-2.0 view of a PCIe transaction: the extension every DMA transaction carries, and time
// helpers shared by the fabric's SystemC modules.
//
// A transaction is one request TLP (per-TLP fidelity) or one DMA burst (per-burst fidelity:
// its TLPs are charged as a back-to-back train using the wire totals below). The generic
// payload holds the command, the bus address and the data (data pointer may be null in
// pure-timing runs). On the forward path a link charges reqWireBytes; on the way back a read's
// completions charge cplWireBytes on the opposite direction of every link.
//
// Time convention inside b_transport: `delay` is the time the first byte (head) of the TLP(s)
// is available at the current point, relative to sc_time_stamp(); `tailAfterHeadPs` says when
// the last byte is. On return, `delay` is the head of the completion train (reads) or the time the
// write finished at its target (writes), and `tailAfterHeadPs` the completion's tail offset.

#include <cstdint>
#include <cstring>
#include <type_traits>

#include <systemc>
#include <tlm>

#include "models/pcie/pcie_route.h"
#include "models/pcie/tlp.h"
#include "sim/assert.h"
#include "sim/strong_types.h"

namespace hmmsim {

struct PcieTlpExtension : tlm::tlm_extension<PcieTlpExtension> {
  Bdf requester;                         ///< requester id (the IOMMU's lookup key); set with setRequester
  std::uint32_t requesterKey = 0;        ///< requester.key(), kept beside it for the per-hop sharing check
  TlpKind kind = TlpKind::MWr;           ///< MWr or MRd
  std::uint64_t lengthBytes = 0;         ///< payload bytes (64-bit: the TLM length is 32-bit)
  bool addressTranslated = false;        ///< AT field: address already translated (ATS)
  std::uint64_t reqTlps = 1;             ///< request TLPs in this transaction
  std::uint64_t reqWireBytes = 0;        ///< their wire bytes
  std::uint64_t cplTlps = 0;             ///< completion TLPs (reads)
  std::uint64_t cplWireBytes = 0;        ///< their wire bytes
  std::uint64_t cplNoDataWireBytes = 0;  ///< wire bytes of one Cpl (error completion)
  std::uint64_t tailAfterHeadPs = 0;     ///< see the time convention above
  std::uint64_t nowPs = 0;               ///< sc_time_stamp() (ps) when the initiator called b_transport;
                                         ///< constant for the whole call chain (LT: nobody waits)
  std::uint64_t injectDonePs = 0;        ///< set by the first link: last byte left the requester
  bool injectRecorded = false;
  std::uint64_t queueWaitPs = 0;   ///< accumulated waiting for busy links/resources
  std::uint64_t sharedSeenPs = 0;  ///< max over crossed directions of noteRequester() (link.h)
  double lastLinkGbps = 0;         ///< TLP bandwidth of the last link crossed (RC p2p efficiency)
  bool translated = false;         ///< a translation stage (IOMMU) saw it: timing per address
  /// Host memory has served requests of two different requesters (host_memory_requesters.h);
  /// set by host memory's front end, read by the initiator (PcieDmaEngine::syncOnSharedHostMemory).
  bool hostMemoryShared = false;
  /// The transaction is `repeat` identical trains back to back (a chunk of a periodic stream,
  /// PcieDmaEngine::issueStream; the wire totals above are for all of them): every resource
  /// charges repeat x one train's serialization, rounded per train as one-by-one issue is.
  std::uint64_t repeat = 1;
  const PcieRoute* route = nullptr;  ///< source route (switching elements' egress ports)
  std::uint8_t hop = 0;              ///< next route entry
  CplStatus status = CplStatus::SuccessfulCompletion;

  tlm::tlm_extension_base* clone() const override { return new PcieTlpExtension(*this); }
  void copy_from(const tlm::tlm_extension_base& other) override {
    *this = static_cast<const PcieTlpExtension&>(other);
  }

  void setRequester(Bdf b) {
    requester = b;
    requesterKey = b.key();
  }

  /// Next egress port; a simulator bug if the route is exhausted.
  std::uint8_t nextEgress() {
    if (__builtin_expect(route == nullptr || hop >= route->length, 0)) routeExhausted(hop);
    return route->egress[hop++];
  }

 private:
  [[noreturn]] static void routeExhausted(int hop);
};

namespace detail {
// Out-of-line failure paths keep the hot inline helpers below small enough to inline.
[[noreturn]] void missingPcieExtension(const tlm::tlm_generic_payload& gp);
[[noreturn]] void timeBeforeNow(std::uint64_t ps, std::uint64_t now);
}  // namespace detail

/// The extension of `gp`; a simulator bug if a PCIe transaction lacks it.
inline PcieTlpExtension& pcieExt(tlm::tlm_generic_payload& gp) {
  auto* e = gp.get_extension<PcieTlpExtension>();
  if (__builtin_expect(e == nullptr, 0)) detail::missingPcieExtension(gp);
  return *e;
}

static_assert(sizeof(sc_core::sc_time) == sizeof(std::uint64_t) &&
                  std::is_standard_layout<sc_core::sc_time>::value,
              "psTime() relies on sc_time holding exactly its value in resolution units");
/// `ps` picoseconds as an sc_time (1 ps resolution; see requirePicosecondResolution()).
/// Same result as sc_time::from_value(ps), which SystemC 2.3.4 does not inline (it also checks
/// that the time resolution is fixed — always true here: every PCIe module's constructor calls
/// requirePicosecondResolution(), which also checks this function against from_value). It runs
/// several times per TLP per hop, so the value is stored directly.
inline sc_core::sc_time psTime(std::uint64_t ps) {
  sc_core::sc_time t;
  std::memcpy(static_cast<void*>(&t), &ps, sizeof ps);
  return t;
}
/// Absolute simulated time in ps of `delay` after the transaction's `nowPs`.
inline std::uint64_t absPs(const PcieTlpExtension& ext, const sc_core::sc_time& delay) {
  return ext.nowPs + delay.value();
}
/// The delay (relative to the transaction's `nowPs`) of absolute time `ps` (ps >= nowPs).
inline sc_core::sc_time delayOf(const PcieTlpExtension& ext, std::uint64_t ps) {
  if (__builtin_expect(ps < ext.nowPs, 0)) detail::timeBeforeNow(ps, ext.nowPs);
  return psTime(ps - ext.nowPs);
}
/// Asserts that sc_time's resolution is 1 ps, which the ps arithmetic above relies on.
void requirePicosecondResolution();

}  // namespace hmmsim
