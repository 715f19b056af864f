#pragma once
// A GPU reduces a buffer of process memory (the GPU as importer, gpu_va_kernel.h): a runtime on a
// CPU driver thread launches a sum64 kernel whose input is a process VA range, read through the
// GPU's device MMU from wherever the buffer lives:
//  - System: anonymous memory (through the IOMMU);
//  - PeerVram: a peer GPU's VRAM mmapped through its device file (a special vma, RFC 3/5): p2p
//    through the peer's BAR;
//  - PeerPrivate: anonymous memory migrated to the peer GPU's VRAM (its device-private pages,
//    reached p2p through the devmem p2p ops, RFC 4/5);
//  - Own: anonymous memory migrated to the reducing GPU's own VRAM (owner-matched device-private
//    pages: read on its VRAM channels, no PCIe).
// The buffer holds seeded 64-bit words written before the run (by the CPU, or into the peer's
// VRAM); the kernel's sum, stored in the GPU's kernel region, is checked against them. The
// runtime waits for the kernel's completion interrupt.
//
// Contract: PlatformWorkload's (workload.h). Failures are ConfigErrors of file "<workload>".

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "models/devices/gpu/gpu_device.h"
#include "models/platform/driver_thread.h"
#include "models/platform/gpu_vram_placement.h"
#include "models/platform/workload.h"
#include "sim/stats.h"

namespace hmmsim {

class File;
class Mm;

/// Where the reduced buffer lives.
enum class GpuReduceSource { System, PeerVram, PeerPrivate, Own };
const char* gpuReduceSourceName(GpuReduceSource s);

struct GpuReduceParams {
  std::string gpu = "gpu1";                          ///< the reducing "gpu" device
  std::string peer = "gpu0";                         ///< the peer "gpu" (sources peer_vram, peer_private)
  std::string process = "app";                       ///< the process whose buffer is reduced
  GpuReduceSource source = GpuReduceSource::System;  ///< default System
  /// The buffer. Unit: bytes. Default 8 MiB. A positive multiple of 4 KiB.
  std::uint64_t bytes = 8ull << 20;
  /// Seed of the buffer's words. Default 1.
  std::uint64_t seed = 1;
  /// Buffers in named process mappings (region -> mapping): `buffer` with sources system (any
  /// process memory), peer_private and own (memory that migrates: anon or file-private), and
  /// peer_vram (a device-file mapping of the peer: the buffer is the peer's VRAM at the mapping's
  /// offset). Default: none (the workload's own anonymous mmap, or its own mmap of the peer's
  /// file from VRAM offset 0).
  WorkloadPlacement place;
};

/// The reduction's placeable region for `params`: `buffer` (`bytes` long; with source peer_vram
/// the peer's VRAM, whose layout is `peer`: a device-file mapping of the peer within VRAM;
/// `peer` is not used with the other sources).
std::vector<PlaceableRegion> gpuReducePlaceable(const GpuReduceParams& params,
                                                const GpuVramLayout& peer = {});

class GpuReduce final : public PlatformWorkload {
 public:
  /// Maps and fills the buffer, binds the GPU's address-space window over it, wires the runtime's
  /// driver thread. Throws ConfigError when a device is missing or not a gpu, or sizes do not fit.
  GpuReduce(Platform& platform, const GpuReduceParams& params);
  ~GpuReduce() override;
  GpuReduce(const GpuReduce&) = delete;
  GpuReduce& operator=(const GpuReduce&) = delete;

  /// Nothing to do: the driver thread starts at time 0.
  void start() override {}
  /// The runtime took the kernel's completion (or the launch failed).
  bool done() const override { return finished_; }
  void setTrace(TraceSink* trace) override { trace_ = trace; }
  void finish() override;
  /// The launch and the migration succeeded, the kernel ended without a fault, and its sum (as
  /// stored in VRAM) is the buffer's.
  void check(const std::string& at, std::vector<std::string>& failures) const override;
  /// "workload" (stats()), "device.<gpu>", "device.<gpu>.importer" (its device MMU),
  /// "device.<gpu>.bar", "device.<peer>.bar".
  void addStats(Platform& p, StatsRegistry& r) override;
  /// "buffer": the reduced range.
  std::vector<WorkloadRegion> regions() const override;

  /// Stats: bytes, sum_correct (1/0), migrated_pages, device_faults, and after finish(): kernel_time (s),
  /// throughput (B/s: bytes / kernel_time), completion_latency (s: kernel end to the runtime).
  StatsGroup& stats() { return stats_; }
  /// The buffer's words' sum (the reference).
  std::uint64_t expectedSum() const { return expected_; }
  /// The sum the kernel stored in VRAM (after the run).
  std::uint64_t storedSum() const;

 private:
  void run(DriverThread& t);

  Platform& platform_;
  GpuReduceParams params_;
  GpuPlatformDevice* gpu_ = nullptr;
  GpuPlatformDevice* peer_ = nullptr;
  Mm* mm_ = nullptr;
  std::shared_ptr<File> peerFile_;
  Va buffer_;
  std::uint64_t expected_ = 0;
  Errno migrateRc_ = Errno::Ok, launchRc_ = Errno::Ok;
  bool finished_ = false;
  std::uint64_t completionPs_ = 0;
  TraceSink* trace_ = nullptr;
  std::unique_ptr<DriverThread> driver_;
  StatsGroup stats_;
};

}  // namespace hmmsim
