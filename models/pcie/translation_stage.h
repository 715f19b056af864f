#pragma once
// Hook for an address-translation stage at the root complex (the IOMMU).
//
// Contract: PcieRootComplexModule calls translateUpstream() once for every request transaction
// that arrives from one of its root ports (host-memory bound and peer-to-peer through the root
// complex alike) — once per TLP at per-TLP fidelity, once per burst at per-burst fidelity (then
// `len` may span several pages; the stage charges what it needs). The stage returns the output
// address, the latency to add, and a status; anything but SuccessfulCompletion aborts the request
// (TLM_ADDRESS_ERROR_RESPONSE; a read returns a Cpl without data). The stage must not call
// wait(): it runs inside b_transport. Pure: no SystemC.

#include <cstdint>
#include <vector>

#include "models/pcie/tlp.h"
#include "sim/strong_types.h"

namespace hmmsim {

/// One physically contiguous piece of a translated request.
struct UpstreamPiece {
  std::uint64_t offset = 0;  ///< bytes from the request's first byte
  std::uint64_t addr = 0;    ///< translated (physical) address of that byte
  std::uint64_t len = 0;     ///< bytes
};

struct UpstreamTranslation {
  CplStatus status = CplStatus::SuccessfulCompletion;  ///< UR/CA abort the request
  std::uint64_t addr = 0;                              ///< translated (physical) address
  std::uint64_t latencyPs = 0;                         ///< time charged for the translation
  /// Non-null when the request's pages are not physically contiguous (a burst over pages linked
  /// into one IOVA range): its pieces in order, owned by the stage and valid until its next call.
  /// The root complex forwards each piece on its own (as the per-TLP fabric would: a TLP never
  /// crosses a 4 KiB boundary). Null: one piece at `addr`.
  const std::vector<UpstreamPiece>* pieces = nullptr;
};

class PcieTranslationStage {
 public:
  virtual ~PcieTranslationStage() = default;
  /// `busAddr`: address as the requester sent it (an IOVA when the IOMMU translates);
  /// `addressTranslated`: the TLP's AT field (ATS-translated requests); `nowPs`: absolute time
  /// the request reaches the stage.
  virtual UpstreamTranslation translateUpstream(Bdf requester, std::uint64_t busAddr, std::uint64_t len,
                                                bool isWrite, bool addressTranslated,
                                                std::uint64_t nowPs) = 0;
};

}  // namespace hmmsim
