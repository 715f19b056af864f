#pragma once
// Where a streaming device's frame DMA goes: a byte range ("buffer") that its driver programmed,
// reached by bursts on the device's PcieDmaEngine. The camera and the colour engine move every
// byte through one of these ports; which one decides how a buffer offset becomes a bus address:
//  - DescriptorDmaPort: a scatter-gather list of DMA addresses (bus address + length per
//    segment) that the driver wrote into the device once, as a driver without HMM does after
//    dma_map_sg. No translation, no invalidation: the driver keeps the segments mapped.
//  - MirrorDmaPort: a process virtual-address range through the importer pattern
//    (hmm/importer_mirror.h): the device MMU translates every 4 KiB page (device TLB, device
//    page table), a miss is a device fault that the driver services with ImporterMirror::map
//    (hmmRangeFault + the DMA-map step: RAM through the DMA API / IOMMU, a peer's special vma
//    through its vm_ops p2pMap), and every burst is in-flight DMA that an invalidation waits for.
//
// INTERIM (session 5): MirrorDmaPort is a local stand-in for models/devices/common/importer_dma.*
// (the one shared importer data path, owner "platform"), written while that piece was not on
// main. It uses ImporterMirror only through its public API and is to be replaced by it.
//
// Timing and ordering: a burst never crosses a 4 KiB page of the buffer (the IOMMU stage aborts
// bursts over physically discontiguous pages, and consecutive IOVAs need not be contiguous), so
// a 5760-byte RGB888 line is two or three bursts. Translations are made at the caller's local
// time; callers sync once per line (the camera waits for its sensor, the colour engine syncs per
// line), so a translation is at most one line's bursts ahead of SystemC time, and those bursts
// are in flight: an invalidation of their pages waits (in the invalidating SC_THREAD) until the
// last of them completes. A device fault syncs, charges `faultPs` and maps `faultPages` pages.
// Leaves out: the P2pChecker hooks on the burst path (ImporterMirror::transferDma is the checked
// path; this port moves bytes on the fabric instead), ATS, PRI (faults are serviced by the
// driver, not by a page request interface).

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <systemc>
#include <tlm>

#include <tlm_utils/tlm_quantumkeeper.h>

#include "hmm/importer_mirror.h"
#include "models/pcie/dma_engine.h"
#include "sim/stats.h"
#include "sim/strong_types.h"

namespace hmmsim {

class Mm;

/// A device's view of one DMA buffer (see the header comment).
class FrameDmaPort {
 public:
  virtual ~FrameDmaPort() = default;
  /// Writes [offset, offset + len) of the buffer from `data` (null: timing only, no payload).
  /// Returns the first failing status and the absolute time the last byte is stored.
  virtual DmaIssue write(std::uint64_t offset, std::uint64_t len, const std::uint8_t* data,
                         tlm_utils::tlm_quantumkeeper& qk) = 0;
  /// Reads [offset, offset + len) into `data` (null: timing only). The bytes must not be used
  /// before the returned donePs (loosely timed: they move at issue).
  virtual DmaIssue read(std::uint64_t offset, std::uint64_t len, std::uint8_t* data,
                        tlm_utils::tlm_quantumkeeper& qk) = 0;
  /// Buffer size, bytes.
  virtual std::uint64_t bytes() const = 0;
};

/// One segment of a scatter-gather list: `bytes` at bus address `busAddr`.
struct DmaSegment {
  std::uint64_t busAddr = 0;  ///< what the device puts on the bus (IOVA, bus or physical address)
  std::uint64_t bytes = 0;    ///< segment length, bytes (> 0)
};

/// A buffer as a scatter-gather list of DMA addresses (no translation, no invalidation).
class DescriptorDmaPort final : public FrameDmaPort {
 public:
  DescriptorDmaPort(PcieDmaEngine& engine, std::vector<DmaSegment> segments);
  DmaIssue write(std::uint64_t offset, std::uint64_t len, const std::uint8_t* data,
                 tlm_utils::tlm_quantumkeeper& qk) override;
  DmaIssue read(std::uint64_t offset, std::uint64_t len, std::uint8_t* data,
                tlm_utils::tlm_quantumkeeper& qk) override;
  std::uint64_t bytes() const override { return bytes_; }

 private:
  DmaIssue transfer(bool write, std::uint64_t offset, std::uint64_t len, std::uint8_t* data,
                    tlm_utils::tlm_quantumkeeper& qk);
  PcieDmaEngine& engine_;
  std::vector<DmaSegment> segments_;
  std::vector<std::uint64_t> starts_;  // buffer offset of each segment
  std::uint64_t bytes_ = 0;
};

/// Parameters of a MirrorDmaPort.
struct MirrorDmaPortParams {
  /// Time the driver takes to service one device fault (interrupt, hmmRangeFault, DMA map,
  /// device page-table update), ps. Default 5 us.
  std::uint64_t faultPs = 5'000'000;
  /// Pages a device fault maps, from the faulting page (clipped to the buffer). Unit: pages.
  /// Default 512 (2 MiB).
  std::uint64_t faultPages = 512;
  /// The importer mirror's parameters (device TLB, retries, misbehaviour switches).
  ImporterMirrorParams mirror;
};

/// A process VA range through the importer pattern (see the header comment). INTERIM: replaced by
/// models/devices/common/importer_dma once it is on main.
class MirrorDmaPort final : public FrameDmaPort {
 public:
  /// Mirrors [start, start + bytes) of `mm` (start page aligned) for importer `imp`, bursts on
  /// `engine`. `deviceWrites`: the device writes the buffer (maps ask for write permission).
  /// `checker` (optional) receives the importer mirror's rule checks.
  MirrorDmaPort(Mm& mm, const HmmDmaImporter& imp, PcieDmaEngine& engine, Va start, std::uint64_t bytes,
                bool deviceWrites, const MirrorDmaPortParams& params, const std::string& name,
                P2pChecker* checker = nullptr);
  ~MirrorDmaPort() override;

  /// Map the whole buffer now (the driver's setup: a first frame without device faults).
  /// Returns ImporterMirror::map's status.
  HmmStatus prefault();
  DmaIssue write(std::uint64_t offset, std::uint64_t len, const std::uint8_t* data,
                 tlm_utils::tlm_quantumkeeper& qk) override;
  DmaIssue read(std::uint64_t offset, std::uint64_t len, std::uint8_t* data,
                tlm_utils::tlm_quantumkeeper& qk) override;
  std::uint64_t bytes() const override { return bytes_; }
  /// Bursts issued and not yet retired (their completion not yet reached by a caller).
  std::size_t inFlight() const { return inFlight_.size(); }

  ImporterMirror& mirror() { return *mirror_; }
  Va start() const { return start_; }
  /// Stats: device_faults, bursts, failed_bursts, invalidation_waits.
  StatsGroup& stats() { return stats_; }

 private:
  struct InFlight {
    std::uint64_t id;
    Va page;
    std::uint64_t donePs;
  };
  DmaIssue transfer(bool write, std::uint64_t offset, std::uint64_t len, std::uint8_t* data,
                    tlm_utils::tlm_quantumkeeper& qk);
  /// Device fault at `va`: sync, charge faultPs, map faultPages pages. False if the map failed.
  bool fault(Va va, tlm_utils::tlm_quantumkeeper& qk);
  /// End the bursts that completed by absolute time `nowPs`.
  void retire(std::uint64_t nowPs);
  /// ImporterMirror's waitForDma hook: block the invalidating thread until the bursts on
  /// [start, end) completed, then end them.
  void waitForDma(Va start, Va end);

  Mm& mm_;
  PcieDmaEngine& engine_;
  Va start_;
  std::uint64_t bytes_;
  bool deviceWrites_;
  MirrorDmaPortParams params_;
  std::unique_ptr<ImporterMirror> mirror_;
  std::vector<InFlight> inFlight_;
  StatsGroup stats_;
  Counter& faults_;
  Counter& bursts_;
  Counter& failed_;
  Counter& waits_;
};

/// Absolute local time of the calling thread: SystemC time plus its quantum keeper's offset, ps.
inline std::uint64_t localNowPs(const tlm_utils::tlm_quantumkeeper& qk) {
  return sc_core::sc_time_stamp().value() + qk.get_local_time().value();
}
/// Moves the caller's local time to absolute `t` (if later), syncing when the quantum is used up.
void advanceLocalTo(std::uint64_t t, tlm_utils::tlm_quantumkeeper& qk);

}  // namespace hmmsim
