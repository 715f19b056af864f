#pragma once
// LinkOccupancyTrace: one link direction's occupancy as timeline slices (sim/trace.h, category
// "pcie.link"), on the track named after the link ("link.<lower end>.up" / ".down").
//
// What a slice is: a maximal run of back-to-back bookings of the direction (LinkDirection's
// interval book): a booking that starts where the run ends (or ends where it starts, or overlaps
// it: completions are booked out of time order) extends the run; any other booking closes it and
// starts the next. So at per-TLP fidelity a stream of TLPs the direction carries without a gap is
// one slice, not one per TLP, and at per-burst fidelity a slice is a burst or a train of bursts.
// The count of events is bounded by the number of idle gaps, not of TLPs. A slice's args give
// the TLPs and wire bytes it carried. Runs only merge when they touch, so slices on a track never
// overlap (a gap is never covered by a slice, so a later booking filling it cannot overlap one).
// The run still open is written by flush() (Platform::flushTrace) or the destructor.
// Pure: no SystemC; times are absolute picoseconds.

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>

#include "sim/trace.h"

namespace hmmsim {

class LinkOccupancyTrace {
 public:
  /// Slices go to `sink` (must outlive this object) on track `track`.
  LinkOccupancyTrace(TraceSink& sink, std::string track) : sink_(sink), track_(std::move(track)) {}
  ~LinkOccupancyTrace() { flush(); }
  LinkOccupancyTrace(const LinkOccupancyTrace&) = delete;
  LinkOccupancyTrace& operator=(const LinkOccupancyTrace&) = delete;

  /// The direction was booked over [startPs, endPs) for `wireBytes` in `tlps` TLPs.
  void note(std::uint64_t startPs, std::uint64_t endPs, std::uint64_t wireBytes, std::uint64_t tlps) {
    if (open_ && startPs <= endPs_ && endPs >= startPs_) {
      startPs_ = std::min(startPs_, startPs);
      endPs_ = std::max(endPs_, endPs);
      bytes_ += wireBytes;
      tlps_ += tlps;
      return;
    }
    flush();
    open_ = true;
    startPs_ = startPs;
    endPs_ = endPs;
    bytes_ = wireBytes;
    tlps_ = tlps;
  }
  /// Writes the open run, if any.
  void flush();
  const std::string& track() const { return track_; }

 private:
  TraceSink& sink_;
  std::string track_;
  bool open_ = false;
  std::uint64_t startPs_ = 0, endPs_ = 0, bytes_ = 0, tlps_ = 0;
};

}  // namespace hmmsim
