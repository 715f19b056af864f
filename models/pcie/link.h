#pragma once
// One direction of a PCIe link as a bandwidth/latency resource.
//
// What it models: serialization of TLPs at the link's TLP-layer bandwidth (link_timing.h: raw
// bandwidth minus ACK/UpdateFC DLLPs and SKP ordered sets, spread evenly over the traffic), a
// fixed one-way latency (PHY + data-link pipeline + propagation), and a "busy until" reservation:
// a TLP (or, at per-burst fidelity, a train of back-to-back TLPs) starts when both its first byte
// is ready and the direction is free, so flows sharing the direction share its bandwidth in
// arrival order.
//
// Cut-through: a transmission may start as soon as its first byte is ready (`head`), but cannot
// finish before its last byte has arrived (`tail`) — a switch forwards a TLP while still
// receiving it. With equal link rates a TLP's serialization is paid once along a path.
//
// What it leaves out: credit-based flow control (receivers are assumed to have enough credits),
// replays, DLLPs as discrete packets (their bandwidth is removed on average), arbitration
// between virtual channels, out-of-order arrival on a direction (a transaction presented with an
// earlier time than the direction's busy-until waits behind earlier reservations — the accepted
// approximation of loosely-timed simulation).
// Pure: no SystemC; times are absolute picoseconds.

#include <algorithm>
#include <cstdint>

#include "models/pcie/link_timing.h"

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
  ///   start = max(in.head, busyUntil); end = max(start + ser(wireBytes), in.tail);
  ///   busyUntil = end; result = {start + latency, end + latency}.
  /// `tlps` only feeds the counters; `waitPs`, if given, receives start − in.head (queueing).
  /// Inline: it runs for every TLP on every hop.
  HeadTail transmit(HeadTail in, std::uint64_t wireBytes, std::uint64_t tlps = 1,
                    std::uint64_t* waitPs = nullptr) {
    const std::uint64_t start = std::max(in.headPs, busyUntil_);
    const std::uint64_t ser = serializationPs(wireBytes);
    const std::uint64_t end = std::max(start + ser, in.tailPs);
    waitPs_ += start - in.headPs;
    if (waitPs) *waitPs = start - in.headPs;
    busyPs_ += ser;
    wireBytes_ += wireBytes;
    tlps_ += tlps;
    busyUntil_ = end;
    return HeadTail{start + latencyPs_, end + latencyPs_};
  }

  /// Serialization time of `wireBytes` on this direction, in ps (rounded to nearest).
  std::uint64_t serializationPs(std::uint64_t wireBytes) const {
    return static_cast<std::uint64_t>(double(wireBytes) * psPerByte_ + 0.5);
  }

  double tlpGbps() const { return gbps_; }
  std::uint64_t latencyPs() const { return latencyPs_; }
  std::uint64_t busyUntilPs() const { return busyUntil_; }
  std::uint64_t wireBytes() const { return wireBytes_; }  ///< total bytes sent
  std::uint64_t tlps() const { return tlps_; }            ///< total TLPs sent
  std::uint64_t busyPs() const { return busyPs_; }        ///< total time spent serializing
  std::uint64_t waitPs() const { return waitPs_; }        ///< total time TLPs waited for the direction

 private:
  double gbps_;
  double psPerByte_;
  std::uint64_t latencyPs_;
  std::uint64_t busyUntil_ = 0;
  std::uint64_t wireBytes_ = 0, tlps_ = 0, busyPs_ = 0, waitPs_ = 0;
};

/// A simple bandwidth/latency resource used for memories and root-complex forwarding engines:
/// same reservation rule as a link direction (it is one).
using BandwidthResource = LinkDirection;

}  // namespace hmmsim
