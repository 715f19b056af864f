#pragma once
// NvmeMedia: the namespace's storage, with real bytes and a timing model. Pure C++.
//
// Bytes: the namespace's blocks are a sparse byte store keyed by block; a block gets storage when
// first written, a read of a block never written returns zeros, so a 1 TiB namespace costs only
// what the workload writes.
// Timing (one command at a time, called in time order): a read's data is ready `readLatencyPs`
// after the command reached the media, then streams at the media's bandwidth; a write is
// programmed `writeLatencyPs` after its data arrived, at the same bandwidth. Latencies overlap
// between commands (many dies work in parallel) while the transfers share one bandwidth (the
// flash channels and the controller's media interface, taken together):
//   done = max(arrive + latency, busyUntil) + bytes * 8 / bandwidth;  busyUntil = done.
// At queue depth 1 a command takes latency + bytes / bandwidth; with enough commands in flight
// the media streams at its bandwidth.
// Leaves out: dies, planes, channels and their individual contention; garbage collection, write
// amplification, SLC caching and its exhaustion; read disturb, ECC retries; a volatile write
// cache (writes are durable when complete; flush completes at once).

#include <cstdint>
#include <memory>
#include <unordered_map>

#include "sim/stats.h"

namespace hmmsim {

struct NvmeMediaParams {
  /// Logical block size (LBA data size). Unit: bytes, a power of two from 512 to 4096. Default 4096.
  std::uint32_t blockBytes = 4096;
  /// Namespace size. Unit: blocks. Default 2^28 (1 TiB with 4 KiB blocks).
  std::uint64_t capacityBlocks = 1ull << 28;
  /// Time from a read command reaching the media until its first byte is ready (NAND tR plus
  /// controller and ECC pipeline). Unit: ps. Default 80 us (TLC NAND class).
  std::uint64_t readLatencyPs = 80'000'000;
  /// Time from a write's data reaching the controller until it is programmed and may complete
  /// (write buffer / SLC program). Unit: ps. Default 20 us.
  std::uint64_t writeLatencyPs = 20'000'000;
  /// Media read bandwidth, all channels together. Unit: Gb/s. Default 56 (7 GB/s, a Gen4 x4 SSD).
  double readBandwidthGbps = 56.0;
  /// Media write bandwidth, all channels together. Unit: Gb/s. Default 40 (5 GB/s).
  double writeBandwidthGbps = 40.0;
};

class NvmeMedia {
 public:
  /// `statsName`: the stats group's name. Parameters must be valid (NvmeMedia::validate).
  NvmeMedia(const NvmeMediaParams& params, const std::string& statsName);

  /// "" if `p` is usable, else what is wrong (names the field).
  static std::string validate(const NvmeMediaParams& p);

  /// Copies blocks [lba, lba + n) into `dst` (n * blockBytes bytes); untouched blocks are zeros.
  void read(std::uint64_t lba, std::uint64_t n, std::uint8_t* dst) const;
  /// Stores `n` blocks from `src` at `lba`.
  void write(std::uint64_t lba, std::uint64_t n, const std::uint8_t* src);
  bool inRange(std::uint64_t lba, std::uint64_t n) const {
    return n <= params_.capacityBlocks && lba <= params_.capacityBlocks - n;
  }

  /// Books a read of `bytes` reaching the media at `arrivePs`; returns when its data is ready (ps).
  std::uint64_t bookRead(std::uint64_t arrivePs, std::uint64_t bytes);
  /// Books a write of `bytes` whose data arrived at `arrivePs`; returns when it is programmed (ps).
  std::uint64_t bookWrite(std::uint64_t arrivePs, std::uint64_t bytes);

  /// Blocks holding bytes (written at least once).
  std::uint64_t storedBlocks() const { return blocks_.size(); }
  const NvmeMediaParams& params() const { return params_; }
  StatsGroup& stats() { return stats_; }

 private:
  std::uint64_t book(std::uint64_t arrivePs, std::uint64_t latencyPs, std::uint64_t bytes, double gbps);

  NvmeMediaParams params_;
  // Block -> its bytes. Looked up only, never iterated (deterministic).
  std::unordered_map<std::uint64_t, std::unique_ptr<std::uint8_t[]>> blocks_;
  std::uint64_t busyUntilPs_ = 0;
  StatsGroup stats_;
  Counter& blocksRead_;
  Counter& blocksWritten_;
  Counter& busyPs_;
};

}  // namespace hmmsim
