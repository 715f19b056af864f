#pragma once
// RFC workload [2] as a platform workload (issue 13's gpu_monitor scenario): "Accelerator device
// doing heavy computation and network device is monitoring progress. Direct accelerator's memory
// access by the network device avoid the need to use much slower system memory." The GPU's
// compute engine streams a region of VRAM and keeps a 64-bit progress counter in VRAM; the NIC's
// monitoring mode samples it periodically. Modes:
//  - None: the GPU computes alone (the baseline);
//  - P2p: the NIC reads the counter through a process VA range over the GPU's special-vma mmap of
//    the counter's VRAM page (RFC 3/5), through its importer, straight from the GPU's BAR;
//  - Copy: the GPU's copy engine copies the counter into the process's system memory `lead`
//    before every sample (a runtime's periodic device-to-host copy) and the NIC reads that.
// A host thread launches the kernel and waits for its completion interrupt; in Copy mode a second
// one runs the copies. The GPU keeps its progress history (GpuParams::recordProgress is forced
// on), against which every sample is checked.
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

/// How the NIC watches the GPU's progress.
enum class GpuMonitorMode {
  None,  ///< no monitoring: the GPU alone
  P2p,   ///< the NIC reads the counter from VRAM through the GPU's BAR
  Copy,  ///< the GPU copies the counter to system memory, the NIC reads it there
};
const char* gpuMonitorModeName(GpuMonitorMode m);

struct GpuMonitorParams {
  std::string gpu = "gpu0";                   ///< the "gpu" device's name
  std::string nic = "nic0";                   ///< the "nic" device's name
  std::string process = "app";                ///< the process whose memory the NIC reads through
  GpuMonitorMode mode = GpuMonitorMode::P2p;  ///< default P2p
  /// Samples the NIC takes. Unit: samples. Default 40.
  std::uint32_t samples = 40;
  /// Time between samples. Unit: ps. Default 20 us.
  std::uint64_t periodPs = 20'000'000;
  /// Time of the first sample. Unit: ps. Default 10 us.
  std::uint64_t startPs = 10'000'000;
  /// Copy mode: how long before each sample the copy is issued. Unit: ps. Default 5 us.
  std::uint64_t leadPs = 5'000'000;
  /// VRAM region the kernel streams (in the driver's kernel region). Unit: bytes. Default 4 MiB.
  std::uint64_t regionBytes = 4ull << 20;
  /// Bytes the kernel streams (each read and written once). Unit: bytes. Default 32 MiB.
  std::uint64_t totalBytes = 32ull << 20;
  /// Buffers in named process mappings (region -> mapping): `counter` in mode copy (the page the
  /// copy engine writes and the NIC reads); in mode p2p a device-file mapping of the GPU from the
  /// counter's page (VRAM offset: the kernel region's start + regionBytes). Default: none (the
  /// workload's own anonymous page, or its own mmap of the counter's page of the GPU's file).
  WorkloadPlacement place;
};

/// The counter is 8 bytes (a 64-bit value).
constexpr std::uint64_t kGpuCounterBytes = 8;

/// The monitor's placeable region for `params` on a GPU with VRAM layout `gpu`: `counter` (one
/// page; process memory in mode copy; in mode p2p the counter's page of VRAM, a device-file
/// mapping of the GPU from that page; not placeable in mode none).
std::vector<PlaceableRegion> gpuMonitorPlaceable(const GpuMonitorParams& params, const GpuVramLayout& gpu);

class GpuMonitor final : public PlatformWorkload {
 public:
  /// Maps the counter, wires the NIC and the host threads. Throws ConfigError (file
  /// "<workload>") when a device is missing or of the wrong type, or the region does not fit.
  GpuMonitor(Platform& platform, const GpuMonitorParams& params);
  ~GpuMonitor() override;
  GpuMonitor(const GpuMonitor&) = delete;
  GpuMonitor& operator=(const GpuMonitor&) = delete;

  /// Starts the monitor (the kernel starts with the host thread at time 0).
  void start() override;
  /// The kernel's completion interrupt was taken and every sample is in.
  bool done() const override;
  /// Records the kernel as a slice on the GPU's track and each sample on the NIC's.
  void setTrace(TraceSink* trace) override { trace_ = trace; }
  /// Computes the summary values (after the simulation).
  void finish() override;
  /// The kernel completed; every sample came in, read without a DMA error, a value the counter
  /// held while it was read (p2p) or copied (copy), each copy landed before its read; every
  /// sample fell while the GPU computed.
  void check(const std::string& at, std::vector<std::string>& failures) const override;
  /// "workload" (stats()), "device.<gpu>", "device.<gpu>.bar", "device.<nic>",
  /// "device.<nic>.importer".
  void addStats(Platform& p, StatsRegistry& r) override;
  /// "counter": the page the NIC reads the progress counter from (p2p: the GPU's special vma
  /// over the counter's VRAM page; copy: the system-memory copy); none when the mode is none.
  std::vector<WorkloadRegion> regions() const override;

  /// Stats: samples, samples_ok, samples_held, staleness (B), sample_latency (ps), and after
  /// finish(): kernel_time, kernel_pace (ps), slowdown, staleness_mean/max (B),
  /// sample_latency_p50/p99 (ps).
  StatsGroup& stats() { return stats_; }
  const GpuMonitorParams& params() const { return params_; }
  GpuNicParts& parts() { return parts_; }
  const GpuKernel& kernel() const { return kernel_; }
  /// The kernel's time (end - start). Unit: ps.
  std::uint64_t kernelPs() const;
  /// The kernel's time at its pace, alone: every byte read and written at its share of VRAM
  /// bandwidth. Unit: ps.
  double pacePs() const;
  /// Sample i's value (the counter's 8 bytes, little endian).
  std::uint64_t sample(std::size_t i) const;
  /// Copy mode: when each copy was issued and when it completed. Unit: ps.
  const std::vector<std::uint64_t>& copyIssuePs() const { return copyIssuePs_; }
  const std::vector<std::uint64_t>& copyDonePs() const { return copyDonePs_; }

 private:
  void copyLoop();
  bool sampleHeld(std::size_t i) const;

  GpuMonitorParams params_;
  GpuNicParts parts_;
  GpuKernel kernel_;
  NicMonitorParams monitor_;
  Va ram_;
  Va counter_;  // the page the NIC reads (p2p: VRAM's special vma; copy: ram_); 0: none
  std::vector<std::uint64_t> copyIssuePs_, copyDonePs_;
  std::unique_ptr<DriverThread> host_, copier_;
  bool kernelDone_ = false;
  TraceSink* trace_ = nullptr;
  StatsGroup stats_;
};

/// True when the counter held `v` at some time in [from, to] by the GPU's record `h`.
bool gpuCounterHeld(const std::vector<GpuProgressPoint>& h, std::uint64_t v, std::uint64_t from,
                    std::uint64_t to);
/// The counter's value at time `t` by the GPU's record `h`.
std::uint64_t gpuCounterAt(const std::vector<GpuProgressPoint>& h, std::uint64_t t);

}  // namespace hmmsim
