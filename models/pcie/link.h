#pragma once
// One direction of a PCIe link as a bandwidth/latency resource.
//
// What it models: serialization of TLPs at the link's TLP-layer bandwidth (link_timing.h: raw
// bandwidth minus ACK/UpdateFC DLLPs and SKP ordered sets, spread evenly over the traffic), a
// fixed one-way latency (PHY + data-link pipeline + propagation), and a timeline of booked
// intervals (interval_book.h): a TLP (or, at per-burst fidelity, a train of back-to-back TLPs)
// occupies the earliest free interval at or after its first byte is ready, so flows sharing the
// direction share its bandwidth, and a booking made early for a later time (a read's completions
// under temporal decoupling) never delays an earlier transmission.
//
// Cut-through: a transmission may start as soon as its first byte is ready (`head`), but cannot
// finish before its last byte has arrived (`tail`) — a switch forwards a TLP while still
// receiving it. With equal link rates a TLP's serialization is paid once along a path.
//
// What it leaves out: credit-based flow control (receivers are assumed to have enough credits),
// replays, DLLPs as discrete packets (their bandwidth is removed on average), arbitration
// between virtual channels; a train fed by a slower link occupies the direction from its head to
// its tail (the gaps between its TLPs are not offered to other flows).
// Pure: no SystemC; times are absolute picoseconds.

#include <algorithm>
#include <cstdint>

#include "models/pcie/link_timing.h"
#include "sim/interval_book.h"

namespace hmmsim {

/// When the first and the last byte of a TLP (or TLP train) are available at some point.
struct HeadTail {
  std::uint64_t headPs = 0;
  std::uint64_t tailPs = 0;
};

/// Parameters of one link (both directions are identical).
struct PcieLinkParams {
  PcieLinkConfig config;             ///< negotiated gen/width/MPS/MRRS/RCB/ECRC
  std::uint64_t latencyPs = 20'000;  ///< one-way latency in ps; default 20 ns
};

class LinkDirection {
 public:
  /// `tlpGbps` > 0: TLP-layer bandwidth; `latencyPs`: one-way latency.
  LinkDirection(double tlpGbps, std::uint64_t latencyPs);

  /// Reserves the direction for `wireBytes` whose first byte is ready at in.headPs and last at
  /// in.tailPs (tail >= head). Returns when the first and the last byte reach the far end:
  ///   start = earliest s >= in.head with [s, end) free, end = max(s + ser(wireBytes), in.tail);
  ///   result = {start + latency, end + latency}.
  /// `tlps` only feeds the counters; `waitPs`, if given, receives start − in.head (queueing).
  /// `floorPs`: no later call will present a head before it (SystemC time of the caller);
  /// bookings that ended by then are forgotten. Inline: it runs for every TLP on every hop.
  /// `repeat` > 1: wireBytes is `repeat` equal trains back to back (serialization rounded per train).
  __attribute__((always_inline)) HeadTail transmit(HeadTail in, std::uint64_t wireBytes,
                                                   std::uint64_t tlps = 1, std::uint64_t* waitPs = nullptr,
                                                   std::uint64_t floorPs = 0, std::uint64_t repeat = 1) {
    const std::uint64_t ser = serializationOf(wireBytes, repeat);
    lastBooking_ = book_.book(in.headPs, ser, in.tailPs, floorPs);
    return account(in, lastBooking_, ser, wireBytes, tlps, waitPs);
  }

  /// transmit() of a divisible stream: `wireBytes` of many small independent accesses, all ready
  /// at `headPs`, that the direction serves in its free time from then on, around earlier
  /// bookings (IntervalBook::bookSpread), instead of one interval that must fit whole. Returns
  /// when the first piece starts and the last piece ends, each plus the latency.
  HeadTail transmitSpread(std::uint64_t headPs, std::uint64_t wireBytes, std::uint64_t floorPs = 0) {
    const std::uint64_t ser = serializationOf(wireBytes, 1);
    lastBooking_ = book_.bookSpread(headPs, ser, floorPs);
    return account(HeadTail{headPs, headPs}, lastBooking_, ser, wireBytes, 1, nullptr);
  }

  /// transmit() for non-posted requests (MRd): they wait only behind other non-posted requests,
  /// as an egress port's arbiter serves the non-posted queue beside the posted and completion
  /// queues instead of behind them (PCIe keeps separate flow-control credits per type). Their
  /// serialization still takes capacity from everything else: it is booked on the shared
  /// timeline at the first gap at or after their arrival, delaying later posted writes and
  /// completions. Requests are small (24 B per MRRS of data), so serving them first is within one
  /// TLP of what a round-robin arbiter does.
  __attribute__((always_inline)) HeadTail transmitNonPosted(HeadTail in, std::uint64_t wireBytes,
                                                            std::uint64_t tlps = 1,
                                                            std::uint64_t* waitPs = nullptr,
                                                            std::uint64_t floorPs = 0,
                                                            std::uint64_t repeat = 1) {
    const std::uint64_t ser = serializationOf(wireBytes, repeat);
    lastBooking_ = book_.book(in.headPs, ser, 0, floorPs);
    return account(in, nonPosted_.book(in.headPs, ser, in.tailPs, floorPs), ser, wireBytes, tlps, waitPs);
  }

  /// Serialization time of `wireBytes` on this direction, in ps (rounded to nearest).
  std::uint64_t serializationPs(std::uint64_t wireBytes) const {
    // NOLINTNEXTLINE(bugprone-incorrect-roundings): never negative; an add, not a libm call, per TLP
    return static_cast<std::uint64_t>(double(wireBytes) * psPerByte_ + 0.5);
  }

  /// repeat x serializationPs(wireBytes / repeat): `repeat` equal trains, each rounded.
  std::uint64_t repeatedSerializationPs(std::uint64_t wireBytes, std::uint64_t repeat) const {
    if (__builtin_expect(repeat == 1, 1)) return serializationPs(wireBytes);
    return repeat * serializationPs(wireBytes / repeat);
  }

  /// Records that `requesterKey`'s traffic crossed this direction at SystemC time nowPs (the
  /// caller's sc_time_stamp). Returns 1 + the SystemC time at which the direction last carried
  /// traffic of two different requesters in a row, or 0 if it never did: initiators sharing a
  /// direction use it to interleave finely (dma_engine.h, sharedSyncPs).
  std::uint64_t noteRequester(std::uint32_t requesterKey, std::uint64_t nowPs) {
    if (requesterKey != lastRequester_) {
      if (lastRequester_ != kNoRequester) sharedAtPs_ = nowPs + 1;
      lastRequester_ = requesterKey;
    }
    return sharedAtPs_;
  }

  double tlpGbps() const { return gbps_; }
  std::uint64_t latencyPs() const { return latencyPs_; }
  /// The interval the last transmit()/transmitNonPosted() occupied on the direction's shared
  /// timeline (what a trace shows as occupancy).
  IntervalBook::Booking lastBooking() const { return lastBooking_; }
  std::uint64_t busyUntilPs() const { return book_.lastEndPs(); }  ///< end of the latest booking
  std::size_t bookedIntervals() const { return book_.intervals(); }
  std::uint64_t wireBytes() const { return wireBytes_; }  ///< total bytes sent
  std::uint64_t tlps() const { return tlps_; }            ///< total TLPs sent
  std::uint64_t busyPs() const { return busyPs_; }        ///< total time spent serializing
  std::uint64_t waitPs() const { return waitPs_; }        ///< total time TLPs waited for the direction

 private:
  /// repeatedSerializationPs(), remembering the last single train's result: per-TLP traffic
  /// repeats a few TLP sizes, and the cached value spares the floating-point chain on the path
  /// every hop's timing depends on.
  __attribute__((always_inline)) std::uint64_t serializationOf(std::uint64_t wireBytes,
                                                               std::uint64_t repeat) {
    if (__builtin_expect(repeat != 1, 0)) return repeatedSerializationPs(wireBytes, repeat);
    if (wireBytes != lastSerBytes_) {
      lastSerBytes_ = wireBytes;
      lastSerPs_ = serializationPs(wireBytes);
    }
    return lastSerPs_;
  }
  __attribute__((always_inline)) HeadTail account(HeadTail in, IntervalBook::Booking b, std::uint64_t ser,
                                                  std::uint64_t wireBytes, std::uint64_t tlps,
                                                  std::uint64_t* waitPs) {
    waitPs_ += b.startPs - in.headPs;
    if (waitPs) *waitPs = b.startPs - in.headPs;
    busyPs_ += ser;
    wireBytes_ += wireBytes;
    tlps_ += tlps;
    return HeadTail{b.startPs + latencyPs_, b.endPs + latencyPs_};
  }

  double gbps_;
  double psPerByte_;
  std::uint64_t latencyPs_;
  std::uint64_t lastSerBytes_ = 0, lastSerPs_ = 0;  // serializationOf's cache (0 B take 0 ps)
  static constexpr std::uint32_t kNoRequester = ~0u;
  std::uint32_t lastRequester_ = kNoRequester;
  std::uint64_t sharedAtPs_ = 0;
  IntervalBook book_;       // every transmission (posted, completions, and non-posted capacity)
  IntervalBook nonPosted_;  // non-posted requests only: what they wait behind
  IntervalBook::Booking lastBooking_{0, 0};
  std::uint64_t wireBytes_ = 0, tlps_ = 0, busyPs_ = 0, waitPs_ = 0;
};

/// A simple bandwidth/latency resource used for memories and root-complex forwarding engines:
/// same reservation rule as a link direction (it is one).
using BandwidthResource = LinkDirection;

}  // namespace hmmsim
