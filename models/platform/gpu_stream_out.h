#pragma once
// RFC workload [3] as a platform workload (issue 13's gpu_stream_out scenario): "Accelerator
// device doing heavy computation and network device is streaming out the result. This avoid the
// need to first bounce the result through system memory (it saves both system memory and
// bandwidth)." The GPU's results sit in VRAM (a seeded pattern, written there before the run);
// the NIC's transmit path sends them from a process VA range through its importer:
//  - P2p: the range is the GPU's special-vma mmap of the results (RFC 3/5): the NIC reads VRAM
//    through the GPU's BAR (the workload's own mmap at the start of the driver's kernel region,
//    or a device-file mapping of the process's that `place` names: the results are then the VRAM
//    at that mapping's offset);
//  - Bounce: the GPU's copy engine copies the results chunk by chunk into the process's system
//    memory (a runtime's device-to-host copy) and the NIC sends each chunk from there while the
//    next one is copied (double buffering).
// A CPU driver thread (the platform's DriverThread) runs the NIC's TX driver: descriptors in a
// ring in DRAM, the TDT doorbell, reclaim.
//
// Contract: PlatformWorkload's (workload.h).

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "models/platform/driver_thread.h"
#include "models/platform/gpu_nic_parts.h"
#include "models/platform/gpu_vram_placement.h"
#include "models/platform/workload.h"
#include "sim/stats.h"

namespace hmmsim {

/// Where the NIC reads the results from.
enum class GpuStreamPath {
  P2p,     ///< VRAM through the GPU's BAR
  Bounce,  ///< VRAM -> system memory (GPU copy engine) -> NIC
};
const char* gpuStreamPathName(GpuStreamPath p);

struct GpuStreamOutParams {
  std::string gpu = "gpu0";                 ///< the "gpu" device's name
  std::string nic = "nic0";                 ///< the "nic" device's name
  std::string process = "app";              ///< the process whose VA range the NIC sends from
  GpuStreamPath path = GpuStreamPath::P2p;  ///< default P2p
  /// The results streamed out. Unit: bytes. Default 4 MiB. A multiple of chunk.
  std::uint64_t bytes = 4ull << 20;
  /// The bounce's copy granule, and the driver's batch per doorbell. Unit: bytes. Default 256 KiB.
  /// A multiple of buffer.
  std::uint64_t chunkBytes = 256ull << 10;
  /// One TX descriptor's buffer. Unit: bytes. Default 32 KiB (at most 32 KiB).
  std::uint64_t bufferBytes = 32ull << 10;
  /// Seed of the results' pattern. Default 1.
  std::uint64_t seed = 1;
  /// Buffers in named process mappings (region -> mapping): `results` on the bounce path (the
  /// GPU's copies land there, the NIC sends from it); on the p2p path a device-file mapping of
  /// the GPU within its driver's kernel region (the results are the VRAM at the mapping's offset).
  /// Default: none (bounce: the workload's own anonymous mmap; p2p: its own mmap of the GPU's
  /// file at the start of the kernel region).
  WorkloadPlacement place;
};

/// The stream's placeable region for `params` on a GPU with VRAM layout `gpu`: `results` (`bytes`
/// long; process memory on the bounce path; on p2p the GPU's VRAM: a device-file mapping of the
/// GPU within its driver's kernel region).
std::vector<PlaceableRegion> gpuStreamOutPlaceable(const GpuStreamOutParams& params,
                                                   const GpuVramLayout& gpu);

/// The results' pattern: `bytes` bytes from `seed`.
std::vector<std::uint8_t> gpuResultsPattern(std::uint64_t bytes, std::uint64_t seed);

class GpuStreamOut final : public PlatformWorkload {
 public:
  /// Writes the results into VRAM, maps the source range, wires the NIC and the driver thread.
  /// Throws ConfigError (file "<workload>") when a device is missing or of the wrong type, or
  /// the sizes do not fit.
  GpuStreamOut(Platform& platform, const GpuStreamOutParams& params);
  ~GpuStreamOut() override;
  GpuStreamOut(const GpuStreamOut&) = delete;
  GpuStreamOut& operator=(const GpuStreamOut&) = delete;

  /// Nothing to do: the driver thread starts at time 0.
  void start() override {}
  /// Every descriptor was reclaimed.
  bool done() const override { return reclaimed_ == descriptors(); }
  /// Records each bounce copy on the GPU's track and each chunk's way out on the NIC's.
  void setTrace(TraceSink* trace) override { trace_ = trace; }
  /// Computes the summary values (after the simulation).
  void finish() override;
  /// Every descriptor was sent and reclaimed, the NIC saw no DMA error, every copy succeeded,
  /// and the wire carries the results byte for byte, in order.
  void check(const std::string& at, std::vector<std::string>& failures) const override;
  /// "workload" (stats()), "device.<gpu>", "device.<gpu>.bar", "device.<nic>",
  /// "device.<nic>.importer".
  void addStats(Platform& p, StatsRegistry& r) override;
  /// "results": the VA range the NIC sends from (p2p: the GPU's special vma over the results in
  /// VRAM; bounce: the system-memory copy), params().bytes long.
  std::vector<WorkloadRegion> regions() const override;

  /// Stats: bytes_sent, bytes_correct, descriptors, ring_bytes, and after finish(): throughput
  /// (B/s), wire_rate (Gb/s), first_byte_latency, chunk_latency_p50/p99 (ps).
  StatsGroup& stats() { return stats_; }
  const GpuStreamOutParams& params() const { return params_; }
  GpuNicParts& parts() { return parts_; }
  const std::vector<std::uint8_t>& results() const { return results_; }
  std::uint64_t descriptors() const { return params_.bytes / params_.bufferBytes; }
  std::uint64_t reclaimed() const { return reclaimed_; }
  /// DRAM bytes of the descriptor ring: the CPU writes each descriptor (16 B), the NIC fetches
  /// it (16 B) and writes DD back (1 B), the CPU loads DD bytes when it reclaims.
  std::uint64_t ringBytes() const { return descriptors() * (16 + 16 + 1) + ddLoads_; }
  /// When the first chunk's copy completed (bounce). Unit: ps.
  std::uint64_t firstCopyDonePs() const { return firstCopyDonePs_; }
  /// Wire rate (payload and per-packet overhead) and payload rate, first packet to last. Unit: Gb/s.
  double wireGbps() const;
  double payloadGbps() const;

 private:
  void run(DriverThread& t);
  void queueChunk(class NicDriver& d, std::uint64_t c);
  void traceChunks();

  GpuStreamOutParams params_;
  GpuNicParts parts_;
  std::uint64_t resultsOffset_ = 0, ringPa_ = 0, firstCopyDonePs_ = 0;
  std::uint64_t reclaimed_ = 0, ddLoads_ = 0, copyErrors_ = 0;
  std::vector<std::uint64_t> chunkStartPs_;
  std::vector<std::uint8_t> results_;
  Va src_;
  std::unique_ptr<DriverThread> driver_;
  TraceSink* trace_ = nullptr;
  StatsGroup stats_;
};

}  // namespace hmmsim
