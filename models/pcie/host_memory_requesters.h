#pragma once
// HostMemoryRequesters: whether host memory has been reached by more than one PCIe requester.
//
// Why: DMA engines run ahead of SystemC time under temporal decoupling, and a booking of host
// memory (or of a link on the way to it) made ahead takes what another requester's
// earlier-timed access, booked later, would have had: the outcome then depends on how far the
// quantum let each engine run ahead. An engine that issues every burst at synchronised time
// once host memory is shared (PcieDmaEngine::syncOnSharedHostMemory) books in an order the
// quantum does not decide. Sharing is recorded for good (not for a hold time as a link's
// noteRequester does): two devices that take turns with host memory, as a camera and the
// engine reading its frames back do, overlap only now and then, and the first overlapping
// bookings after a quiet spell must already be made at synchronised time.
// Contract: the front end of host memory (one object for all host bridges that reach the same
// memory) calls note() for every request it forwards to memory, and copies the result into the
// request's PcieTlpExtension::hostMemoryShared. Interrupt messages are not memory requests and
// are not noted. Pure: no SystemC.

#include <cstdint>

namespace hmmsim {

class HostMemoryRequesters {
 public:
  /// Records a request of `requesterKey` (Bdf::key()); true once two different requesters have
  /// been recorded (and from then on).
  bool note(std::uint32_t requesterKey) {
    if (!shared_ && requesterKey != first_) {
      if (first_ == kNone)
        first_ = requesterKey;
      else
        shared_ = true;
    }
    return shared_;
  }
  bool shared() const { return shared_; }

 private:
  static constexpr std::uint32_t kNone = ~0u;
  std::uint32_t first_ = kNone;
  bool shared_ = false;
};

}  // namespace hmmsim
