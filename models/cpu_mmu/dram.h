#pragma once
// Dram: host DRAM as a TLM-2.0 loosely-timed target whose bytes live in PhysMem.
//
// What it models
//  - Channels with a fixed address interleave (channel = (pa / interleaveBytes) % channels).
//    Each channel has a data bandwidth and a timeline of booked intervals (sim/interval_book.h):
//    a request's bytes on a channel take the earliest gap at or after the request's arrival
//    (arrival = sc_time_stamp() + annotated delay) that earlier bookings left, so concurrent
//    streams share the channel's bandwidth and a booking made ahead of SystemC time (an
//    initiator running ahead under temporal decoupling) never delays an earlier-timed request
//    that fits before it.
//  - A fixed access latency per request (controller + row access + return path), pipelined: it
//    does not occupy the channel. A request completes latency after its last byte's slot ends:
//        done = max over its channel pieces (earliest fitting start on c + bytes_c / bandwidth)
//               + latency
//    and b_transport adds (done - arrival) to the caller's delay. (Before interval booking a
//    channel had one "busy until" time, and a device burst booked ahead of SystemC time delayed a
//    CPU access timed before it; results then depended on which initiator the scheduler ran first.)
//  - Data: reads and writes go to PhysMem (sparse frames; untouched bytes read as zeros), so CPU
//    and DMA traffic move real bytes. storeData = false drops payloads (pure-timing sweeps).
//  - Debug transport (transport_dbg) for backdoor access without time.
//  - Stats: "ch<c>_busy_ps" is the time channel c spent moving data (utilization = busy / elapsed);
//    "queued_ps" sums, per request and channel, how long its first piece waited behind
//    reservations of earlier requests (not the request's own pieces).
// What it leaves out: banks, ranks, row-buffer hits and misses, refresh, read/write turnaround,
//   the memory controller's scheduler (requests are served in arrival order), ECC, caches.
// Timing assumptions: requests that want the same gap at the same time are served in call order;
//   a request never waits for a booking that starts after its own pieces would end.
// Errors: an address range outside system RAM (PhysMem::isRam) completes with
//   TLM_ADDRESS_ERROR_RESPONSE and changes nothing; byte enables -> TLM_BYTE_ENABLE_ERROR_RESPONSE;
//   a streaming width smaller than the length -> TLM_BURST_ERROR_RESPONSE; commands other than
//   read/write -> TLM_COMMAND_ERROR_RESPONSE. Each is counted.

#include <cstdint>
#include <string>
#include <vector>

#include <tlm_utils/multi_passthrough_target_socket.h>
#include <systemc>
#include <tlm>

#include "sim/interval_book.h"
#include "sim/stats.h"
#include "sim/strong_types.h"

namespace hmmsim {

class PhysMem;

/// Parameters of the DRAM model. Defaults: two DDR4-3200 x64 channels.
struct DramParams {
  /// Number of channels. Default 2. At least 1, at most 64.
  unsigned channels = 2;
  /// Channel interleave granule (bytes). Default 4096. A power of two, at least 64.
  std::uint64_t interleaveBytes = 4096;
  /// Data bandwidth of one channel (bits/s). Default 204.8e9 (25.6 GB/s, DDR4-3200 x64).
  double channelBandwidthBps = 204.8e9;
  /// Access latency added once per request (ps). Default 60000 (60 ns).
  std::uint64_t latencyPs = 60'000;
  /// Keep payloads (false: timing only; reads return zeros, writes are dropped). Default true.
  bool storeData = true;
  /// Accept requests without a data buffer (a timing-only PCIe initiator, PcieDmaEngineParams::
  /// timingOnly): charged as usual, no bytes move. Default false (refused, IEEE 1666 14.13).
  bool acceptNoData = false;

  /// "" when valid; otherwise what is wrong, naming the parameter.
  std::string check() const;
};

class Dram : public sc_core::sc_module {
 public:
  /// Any number of initiators (CPU cores, the root complex) bind here directly; they share the
  /// channels through the busy-until reservations.
  tlm_utils::multi_passthrough_target_socket<Dram> tSocket{"tSocket"};

  /// `params` must satisfy check() == "" (asserted). `physMem` holds the bytes and must outlive
  /// the module. Stats group: the module's hierarchical name.
  Dram(sc_core::sc_module_name name, const DramParams& params, PhysMem& physMem);

  const DramParams& params() const { return params_; }
  StatsGroup& stats() { return stats_; }
  const StatsGroup& stats() const { return stats_; }
  /// Channel serving physical address `pa`.
  unsigned channelOf(Pa pa) const {
    return static_cast<unsigned>((pa.value() / params_.interleaveBytes) % params_.channels);
  }
  /// The end of channel `c`'s latest booking.
  sc_core::sc_time busyUntil(unsigned c) const {
    return sc_core::sc_time(static_cast<double>(channelBooks_.at(c).lastEndPs()), sc_core::SC_PS);
  }
  /// Time one channel needs to move `bytes` at its bandwidth.
  sc_core::sc_time serializationTime(std::uint64_t bytes) const;

 private:
  void bTransport(int port, tlm::tlm_generic_payload& gp, sc_core::sc_time& delay);
  unsigned transportDbg(int port, tlm::tlm_generic_payload& gp);
  bool checkPayload(tlm::tlm_generic_payload& gp);
  void moveData(tlm::tlm_generic_payload& gp);

  DramParams params_;
  PhysMem& physMem_;
  double psPerByte_;
  sc_core::sc_time latency_;
  bool psResolution_;                       // the time resolution is 1 ps: integral ps are sc_time values
  std::vector<IntervalBook> channelBooks_;  // one timeline per channel
  StatsGroup stats_;
  Counter& reads_;
  Counter& writes_;
  Counter& bytesRead_;
  Counter& bytesWritten_;
  Counter& addressErrors_;
  Counter& otherErrors_;
  Counter& queuedPs_;
  Counter& debugAccesses_;
  std::vector<Counter*> channelBusyPs_;  ///< "ch<c>_busy_ps" per channel
};

}  // namespace hmmsim
