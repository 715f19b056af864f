#pragma once
// Issue 13's small_bar scenario as a platform workload: many importers against a GPU whose BAR
// aperture (e.g. 256 MiB) is much smaller than its VRAM, so the exporter's BAR manager
// (hmm/p2p_bar_manager.h) must share its windows, and its policy (lru_reclaim, unlimited with a
// resizable BAR, per_importer_cap, refuse_when_busy, always_refuse) decides who gets one.
//
// What it models
//  - One special-vma mmap of VRAM [0, importers x slice) in the process (RFC 3/5); importer i
//    is one memory region of the NIC over its own slice (an ImporterDma: ODP-like, its pages
//    fault in on demand and stay mapped until the exporter revokes them or the importer
//    deregisters at its end). A device fault maps the read and the NIC's fault-around block
//    around it (the nic's fault_around, default 16 pages = 64 KiB, as the NIC's other importers):
//    a read smaller than the block holds the block's pages of the BAR window.
//  - Each importer reads `read` bytes at every `stride` of its slice, `passes` times. The NIC
//    serves its importers round-robin, one read each in turn (its queue pairs' work
//    interleaved), so the importers' footprint cycles through VRAM: with LRU reclaim and a
//    footprint larger than the aperture every read faults and reclaims another importer's window.
//  - A refused map (the special vma's p2pMap fails: ENOSPC for no window / over the cap,
//    EOPNOTSUPP for a declining exporter; the RFC: a special vma gets an error, it has no system
//    memory to fall back to) fails that read; the importer backs off `backoff` and retries it, at
//    most `retries` times, then gives that read up (counted in reads_failed) and goes on. Other
//    importers are served meanwhile.
//  - VRAM at every read location holds a seeded pattern (written before the run); every byte
//    read is compared with it.
// What it leaves out: the importers of one NIC share its PCI function, so the BAR manager sees
// one importer per NIC (per_importer_cap caps the NIC, not a region); the NIC serves one read at
// a time (a device fault stalls its other regions: an ODP NIC would keep serving them); no wire.
// Timing: the importer's (device faults charge ImporterDmaParams::faultPs, reads the fabric's);
// window reprogramming and revocation take no simulated time (P2pExporter).
//
// Contract: PlatformWorkload's (workload.h).

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "models/platform/gpu_nic_parts.h"
#include "models/platform/workload.h"
#include "sim/stats.h"

namespace hmmsim {

struct SmallBarParams {
  std::string gpu = "gpu0";     ///< the "gpu" device's name (its BAR policy decides)
  std::string nic = "nic0";     ///< the "nic" device's name (whose importers read)
  std::string process = "app";  ///< the process holding the special-vma mmap of VRAM
  /// Importers (memory regions of the NIC), each over its own slice. Unit: importers. Default 32.
  std::uint32_t importers = 32;
  /// Each importer's share of VRAM. Unit: bytes. Default 16 MiB. A multiple of stride.
  std::uint64_t sliceBytes = 16ull << 20;
  /// One read. Unit: bytes. Default 64 KiB. At most stride.
  std::uint64_t readBytes = 64ull << 10;
  /// Distance between an importer's consecutive reads. Unit: bytes. Default 2 MiB (one read per
  /// BAR window). A multiple of 4 KiB.
  std::uint64_t strideBytes = 2ull << 20;
  /// Passes over every slice. Unit: passes. Default 4.
  std::uint32_t passes = 4;
  /// Wait before a refused read is tried again. Unit: ps. Default 20 us.
  std::uint64_t backoffPs = 20'000'000;
  /// Refused tries of one read after its first before it is given up. Unit: retries. Default 4.
  std::uint32_t retries = 4;
  /// Seed of the VRAM pattern. Default 1.
  std::uint64_t seed = 1;
};

/// The byte of the seeded VRAM pattern at VRAM offset `off`.
std::uint8_t smallBarPatternByte(std::uint64_t seed, std::uint64_t off);

class SmallBar final : public PlatformWorkload {
 public:
  /// Writes the pattern into VRAM, maps the special vma and makes the importers. Throws
  /// ConfigError (file "<workload>") when a device is missing or of the wrong type, or the
  /// slices do not fit VRAM.
  SmallBar(Platform& platform, const SmallBarParams& params);
  ~SmallBar() override;
  SmallBar(const SmallBar&) = delete;
  SmallBar& operator=(const SmallBar&) = delete;

  /// Starts the NIC's thread serving the importers.
  void start() override;
  /// Every importer made or gave up every read and deregistered.
  bool done() const override { return finished_ == importers_.size(); }
  /// Records each read (and each refused try) on the NIC's track.
  void setTrace(TraceSink* trace) override { trace_ = trace; }
  /// Computes the summary values (after the simulation).
  void finish() override;
  /// Every importer finished; every byte read equals VRAM's; no read failed other than by a
  /// refused map (refusals are the policy's answer, counted; expectations judge them).
  void check(const std::string& at, std::vector<std::string>& failures) const override;
  /// "workload" (stats()), "device.<gpu>", "device.<gpu>.bar", "device.<gpu>.bar_manager",
  /// "device.<nic>".
  void addStats(Platform& p, StatsRegistry& r) override;
  /// "vram": the special-vma mmap of VRAM [0, importers x slice) the importers' slices are in.
  std::vector<WorkloadRegion> regions() const override;

  /// Stats: reads, reads_failed, refusals, read_errors, bytes_read, bytes_wrong, device_faults,
  /// revokes, revoked_pages, window_reclaims, and after finish(): elapsed (ps), throughput (B/s),
  /// revokes_per_s (1/s), share_min/share_max (B), fairness (share_min / share_max).
  StatsGroup& stats() { return stats_; }
  const SmallBarParams& params() const { return params_; }
  GpuNicParts& parts() { return parts_; }
  /// Reads per importer per pass.
  std::uint64_t readsPerPass() const { return params_.sliceBytes / params_.strideBytes; }
  /// Bytes importer i read correctly.
  std::uint64_t importerBytes(std::size_t i) const { return importers_.at(i).bytes; }
  /// When the last importer finished. Unit: ps.
  std::uint64_t endPs() const { return endPs_; }

 private:
  struct Importer {
    std::unique_ptr<ImporterDma> dma;
    Va base;                    // its slice's first byte in the process
    std::uint64_t next = 0;     // its next read (pass-major: pass * readsPerPass + index)
    std::uint32_t tries = 0;    // refused tries of that read
    std::uint64_t readyPs = 0;  // backing off until then
    std::uint64_t bytes = 0;    // bytes read correctly
    bool done = false;
  };
  void run();
  /// Importer i's next read (a refused one backs the importer off, or is given up).
  void readNext(std::size_t i, tlm_utils::tlm_quantumkeeper& qk);
  void finishImporter(Importer& imp, tlm_utils::tlm_quantumkeeper& qk);
  std::uint64_t vramOffset(std::size_t i, std::uint64_t read) const;

  SmallBarParams params_;
  GpuNicParts parts_;
  std::vector<Importer> importers_;
  std::vector<std::uint8_t> buf_;
  std::size_t finished_ = 0;
  std::uint64_t endPs_ = 0, barRevokes0_ = 0, barRevokedPages0_ = 0, barReclaims0_ = 0;
  std::vector<std::string> errors_;  // reads that failed other than by refusal
  TraceSink* trace_ = nullptr;
  StatsGroup stats_;
  Counter &reads_, &readsFailed_, &refusals_, &readErrors_, &bytesRead_, &bytesWrong_;
};

}  // namespace hmmsim
