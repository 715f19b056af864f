#pragma once
// The GPU's hardware half (SystemC): VRAM, its bandwidth, the BAR that exposes it, a compute
// engine that streams VRAM, and a copy engine for migrations. The driver half is gpu_driver.h.
//
// What it models
//  - VRAM: `vramBytes` of device memory whose bytes live in PhysMem at `vramPa` (the driver
//    registers the frames; untouched VRAM costs nothing). It is not in the CPU's address map: the
//    CPU and peers reach it only through the BAR.
//  - VRAM bandwidth: `vramChannels` interleaved channels of `vramChannelGbps` each with
//    `vramLatencyPs`, held by the BAR's PcieMemoryTarget (the Gpu re-times the target the fabric made
//    with barTargetParams). Every VRAM user books on these same channels: peer reads and writes through the
//    BAR (the fabric), the compute engine (PcieMemoryTarget::localStream: its chunks are many
//    small accesses that take the channels' free time around others') and the copy engine
//    (localAccess). So a peer streaming VRAM takes bandwidth from the compute engine, and the
//    other way round.
//  - The BAR: an aperture of `barApertureBytes` (default 256 MiB) over VRAM, smaller than VRAM;
//    with `resizableBar` the BAR covers all of VRAM. Window programming is the exporter's
//    (P2pExporter::bindBarTarget drives PcieMemoryTarget::mapWindow); the BAR target's bytes are
//    PhysMem's (setBacking), so what a peer writes through the BAR is what HMM and the CPU see.
//  - The compute engine: a kernel launch streams a VRAM region (read then write every chunk of
//    `computeChunkBytes`), demanding `computeShare` of VRAM bandwidth: chunk k is issued no earlier
//    than the pace that share allows, and completes when the channels moved its bytes. After each
//    chunk a 64-bit progress counter (bytes streamed so far) is stored in VRAM. Its data is left
//    as it was (the kernel writes back what it read): a bandwidth load with an observable counter.
//  - VA kernels (gpu_va_kernel.h: the GPU as importer): a kernel whose input is a process VA
//    range read through the GPU's device MMU (ImporterDma over the driver's address-space window:
//    device faults, invalidations obeyed, the checker's rules) and whose output is driver-owned
//    VRAM or a process VA range. The input streams in chunks of `computeChunkBytes` through two
//    buffers: chunk k's read is issued once chunk k-2's arithmetic ended (its buffer is free) and
//    the engine's DMA issue allows; its arithmetic starts when its last byte arrived and chunk
//    k-1's ended, and takes n * 8 / `computeRateGbps`; its output is written when it ended (VRAM:
//    on the channels; a VA range: through the device MMU), behind the next chunk's read. The
//    GPU's own device-private pages of the range reach the engine on its VRAM channels (the
//    device MMU's local-memory hook, vramAccess): no PCIe. So a kernel runs at the slowest of its
//    input path, its arithmetic and its output path. A transfer that fails (a hole after munmap,
//    a refused p2p map, an error completion) ends the kernel with that status.
//  - The copy engine: a migration copy of n bytes between host memory and VRAM is a DMA of n bytes
//    over PCIe (its PcieDmaEngine, with the bytes) plus n bytes of VRAM channel time. The driver's
//    migration copy (MigrateCopier) already moved the same bytes in the pure core, at
//    migrate_vma time; the engine's copy repeats them with the fabric's timing. Its DMA and VRAM
//    accesses are issued at synchronised time (others share the links, host memory and VRAM).
// Leaves out: SMs, caches, the GPU's own page tables and TLBs (the driver's ImporterMirror keeps
// them), GDDR banks and refresh, MMIO registers and doorbells (the driver calls the engines
// directly). Completion: at a kernel's end computeDone() is notified and, once a driver programmed
// one (setKernelMsi), an MSI is sent (msi.h sendMsi, a posted write behind the GPU's DMA).
// Timing: loosely timed; the compute engine runs at SystemC time (it waits for each chunk).

#include <cstdint>
#include <string>
#include <vector>

#include <systemc>

#include <tlm_utils/tlm_quantumkeeper.h>

#include "models/devices/common/msi.h"
#include "models/devices/gpu/gpu_va_kernel.h"
#include "models/pcie/memory_target.h"
#include "sim/stats.h"
#include "sim/strong_types.h"

namespace hmmsim {

class ImporterDma;
class PcieDmaEngine;
class PhysMem;

/// The GPU's hardware parameters. Every field has a default.
struct GpuParams {
  /// VRAM size. Unit: bytes. Default 16 GiB. A positive multiple of 2 MiB.
  std::uint64_t vramBytes = 16ull << 30;
  /// Physical address of VRAM's first byte in PhysMem (outside the CPU's address map). Default
  /// 0x8'0000'0000 (32 GiB). 2 MiB aligned, clear of RAM and of other device ranges (a second GPU
  /// needs its own). PhysMem keeps a descriptor per 2 MiB up to the highest device range, so a
  /// low address keeps start-up cheap.
  Pa vramPa = Pa(0x8'0000'0000ull);
  /// VRAM channels (interleaved). Default 16.
  std::uint32_t vramChannels = 16;
  /// Bandwidth of one VRAM channel. Unit: Gb/s. Default 256 (16 x 256 Gb/s = 512 GB/s: GDDR6, a
  /// 256-bit bus at 16 Gb/s per pin).
  double vramChannelGbps = 256.0;
  /// VRAM access latency. Unit: ps. Default 100000 (100 ns).
  std::uint64_t vramLatencyPs = 100'000;
  /// VRAM channel interleave. Unit: bytes. Default 256. A power of two.
  std::uint64_t vramInterleaveBytes = 256;
  /// BAR aperture (the exported BAR's size). Unit: bytes. Default 256 MiB. A multiple of 2 MiB,
  /// at most vramBytes. Ignored with resizableBar.
  std::uint64_t barApertureBytes = 256ull << 20;
  /// Resizable BAR: the BAR covers all of VRAM. Default false.
  bool resizableBar = false;
  /// Share of VRAM bandwidth the compute engine demands, (0, 1]. Default 0.5.
  double computeShare = 0.5;
  /// Bytes the compute engine reads (and then writes) per step. Unit: bytes. Default 64 KiB.
  std::uint64_t computeChunkBytes = 64ull << 10;
  /// Rate at which the compute engine's arithmetic consumes a VA kernel's input (GpuVaKernel).
  /// Unit: Gb/s. Default 4096 (512 GB/s, VRAM's rate: a kernel reading over PCIe is link bound).
  double computeRateGbps = 4096.0;
  /// Copy engine: time to fetch and decode one page's copy (or clear) descriptor. The driver
  /// submits one copy per 4 KiB page, as nouveau's migration does (copy_func with npages 1 per
  /// page); the engine decodes the next while a page's data moves, so a copy takes at least
  /// pages x this, and its first byte waits for one. Unit: ps. Default 100 ns: a launch is ~10
  /// methods (addresses, pitches, line length and count, LAUNCH_DMA) decoded from a push buffer
  /// the engine prefetches, no memory round trip per page (an estimate, not a measurement).
  std::uint64_t copyDescriptorPs = 100'000;
  /// Keep every value the progress counter takes, with its time (progressHistory(): the GPU's own
  /// record a monitor's samples are checked against). Default false.
  bool recordProgress = false;

  /// The BAR's size: barApertureBytes, or vramBytes with resizableBar. Unit: bytes.
  std::uint64_t barBytes() const { return resizableBar ? vramBytes : barApertureBytes; }
  /// Total VRAM bandwidth. Unit: Gb/s.
  double vramGbps() const { return vramChannelGbps * vramChannels; }
  /// "" when valid; otherwise what is wrong, naming the parameter.
  std::string check() const;
};

/// One compute kernel launch: stream [regionOffset, regionOffset + regionBytes) of VRAM (wrapping
/// around) until `totalBytes` were read and written; the progress counter is the 8 bytes at VRAM
/// offset progressOffset.
struct GpuKernel {
  std::uint64_t regionOffset = 0;    ///< VRAM offset of the streamed region. Unit: bytes.
  std::uint64_t regionBytes = 0;     ///< size of the region (> 0). Unit: bytes.
  std::uint64_t totalBytes = 0;      ///< bytes to stream (each read and written once). Unit: bytes.
  std::uint64_t progressOffset = 0;  ///< VRAM offset of the 64-bit progress counter. Unit: bytes.
};

/// One value of the progress counter: stored in VRAM at `ps` (SystemC time), held until the next.
struct GpuProgressPoint {
  std::uint64_t ps = 0;     ///< when the counter took the value. Unit: ps.
  std::uint64_t value = 0;  ///< bytes streamed. Unit: bytes.
};

class Gpu : public sc_core::sc_module {
 public:
  SC_HAS_PROCESS(Gpu);
  /// The memory-target parameters of the GPU's BAR (for the fabric that creates it): VRAM's
  /// channels, latency and interleave, `barBase` and barBytes().
  static PcieMemoryTargetParams barTargetParams(const GpuParams& params, std::uint64_t barBase);

  /// `bar`: the BAR's memory target, barBytes() large (asserted), re-timed as VRAM here
  /// (PcieMemoryTarget::setTiming with barTargetParams: a fabric may create it with any memory
  /// timing, before anything accessed it); `dma`: the GPU's DMA
  /// engine; `pm` holds VRAM's bytes (the driver registers its frames). All outlive the Gpu.
  /// `params` must pass check() (asserted). Backs the BAR with VRAM (setBacking).
  Gpu(sc_core::sc_module_name name, const GpuParams& params, PhysMem& pm, PcieMemoryTarget& bar,
      PcieDmaEngine& dma);

  // ---- compute engine --------------------------------------------------------------------------
  /// Start a kernel (the engine must be idle: !computeBusy()). Runs from the next delta cycle.
  void launch(const GpuKernel& k);
  bool computeBusy() const { return busy_; }
  /// Notified when a kernel finished (the hardware's view; drivers take the MSI).
  const sc_core::sc_event& computeDone() const { return doneEv_; }
  /// The MSI the GPU sends when a kernel finished (not programmed: none).
  void setKernelMsi(const MsiMessage& m) { kernelMsi_ = m; }
  /// The progress counter as stored in VRAM (bytes streamed by the current or last kernel).
  std::uint64_t progress() const;
  /// SystemC times of the current or last kernel's start and end. Unit: ps.
  std::uint64_t kernelStartPs() const { return startPs_; }
  std::uint64_t kernelEndPs() const { return endPs_; }
  /// Start a kernel over process memory (gpu_va_kernel.h; the engine must be idle), reading and
  /// writing VA ranges through `mmu`: the driver's device MMU over the process window, whose
  /// local-memory hook is vramAccess. `k` must lie in the window (the driver checks). Runs from the
  /// next delta cycle; vaResult() holds the outcome once computeDone() was notified.
  void launchVa(const GpuVaKernel& k, ImporterDma& mmu);
  /// The current or last VA kernel's outcome.
  const GpuVaKernelResult& vaResult() const { return vaResult_; }
  /// The compute engine on its own VRAM (the device MMU's local-memory hook): moves `len` bytes
  /// at VRAM offset `offset` to or from `data` (null: no payload), booking the VRAM channels from
  /// absolute time `startPs`. Returns the absolute completion time.
  std::uint64_t vramAccess(std::uint64_t offset, std::uint64_t len, std::uint8_t* data, bool write,
                           std::uint64_t startPs);
  /// Time the arithmetic of a VA kernel takes on `bytes` of input at computeRateGbps. Unit: ps.
  double computePs(std::uint64_t bytes) const;
  /// Every value the counter took, in time order, since the first kernel (with recordProgress;
  /// empty otherwise). The value at time t is the last point with ps <= t.
  const std::vector<GpuProgressPoint>& progressHistory() const { return history_; }
  /// The pace the compute engine demands: ps per chunk of computeChunkBytes (read + write) at
  /// computeShare of VRAM bandwidth.
  double chunkIntervalPs(std::uint64_t bytes) const;

  // ---- copy engine (migration copies) -----------------------------------------------------------
  /// Charge a copy of `bytes` between host memory at bus address `hostAddr` and VRAM offset
  /// `vramOffset` (toVram: host -> VRAM). Called from the caller's SC_THREAD; moves its local
  /// time to the copy's completion. Returns the PCIe status (no bytes move: see the header).
  CplStatus copy(bool toVram, std::uint64_t hostAddr, std::uint64_t vramOffset, std::uint64_t bytes,
                 tlm_utils::tlm_quantumkeeper& qk);
  /// Charge clearing `bytes` of VRAM at `vramOffset` (a migration's destination pages with no
  /// source): the pages' descriptors, then VRAM channel time. Moves the caller's local time to
  /// the clear's completion.
  void clear(std::uint64_t vramOffset, std::uint64_t bytes, tlm_utils::tlm_quantumkeeper& qk);

  const GpuParams& params() const { return params_; }
  /// Keep the progress history from now on (GpuParams::recordProgress; a monitor workload turns
  /// it on before the simulation).
  void setRecordProgress(bool on) { params_.recordProgress = on; }
  PcieMemoryTarget& bar() { return bar_; }
  PcieDmaEngine& dmaEngine() { return dma_; }
  PhysMem& physMem() { return pm_; }
  /// Counters "kernels", "compute_bytes", "compute_chunks", "compute_stall_ps" (time chunks took
  /// beyond their pace), "va_kernels", "va_bytes_in", "va_bytes_out" (VA kernels' input read and
  /// output written), "copy_bytes_to_vram", "copy_bytes_from_vram", "copy_descriptors" (pages
  /// the copy engine copied or cleared, each one descriptor).
  StatsGroup& stats() { return stats_; }

 private:
  void computeThread();
  /// The VRAM-streaming kernel (launch), in the compute thread.
  void runStreamKernel();
  /// The VA kernel (launchVa), in the compute thread (gpu_va_kernel.cpp).
  void runVaKernel();
  /// A VA kernel's output of `n` bytes at output offset `off`, ready at `readyPs`: to VRAM or
  /// through the device MMU. Returns its completion (0 on failure, with vaResult_ set).
  std::uint64_t writeVaOutput(std::uint64_t off, const std::uint8_t* data, std::uint64_t n,
                              std::uint64_t readyPs, tlm_utils::tlm_quantumkeeper& qk);
  /// The copy engine takes the descriptors of `pages` pages, copyDescriptorPs each, decoding each
  /// while the previous page's data moves: the first page's data waits for its descriptor (the
  /// caller's local time moves on by one), and the copy ends no earlier than the last descriptor
  /// (the absolute time returned).
  std::uint64_t takeDescriptors(std::uint64_t pages, tlm_utils::tlm_quantumkeeper& qk);
  /// Stores the progress counter in VRAM (and records it with recordProgress).
  void storeProgress(std::uint64_t value);

  GpuParams params_;
  PhysMem& pm_;
  PcieMemoryTarget& bar_;
  PcieDmaEngine& dma_;
  GpuKernel kernel_;
  GpuVaKernel vaKernel_;
  ImporterDma* vaMmu_ = nullptr;  ///< set while a VA kernel is launched
  GpuVaKernelResult vaResult_;
  bool busy_ = false;
  bool launched_ = false;  ///< a launch the compute thread has not taken yet
  sc_core::sc_event launchEv_, doneEv_;
  std::uint64_t startPs_ = 0, endPs_ = 0;
  std::vector<GpuProgressPoint> history_;
  MsiMessage kernelMsi_;
  StatsGroup stats_;
  Counter& kernels_;
  Counter& computeBytes_;
  Counter& computeChunks_;
  Counter& computeStallPs_;
  Counter& vaKernels_;
  Counter& vaBytesIn_;
  Counter& vaBytesOut_;
  Counter& copyToVram_;
  Counter& copyFromVram_;
  Counter& copyDescriptors_;
};

}  // namespace hmmsim
