#pragma once
// Where a streaming device's frame DMA goes: a byte range ("buffer") that its driver programmed,
// reached by bursts on the device's PcieDmaEngine. The camera and the colour engine move every
// byte through one of these ports; which one decides how a buffer offset becomes a bus address:
//  - DescriptorDmaPort: a scatter-gather list of DMA addresses (bus address + length per
//    segment) that the driver wrote into the device once, as a driver without HMM does after
//    dma_map_sg. No translation, no invalidation: the driver keeps the segments mapped.
//  - ImporterDmaPort: a part of a process virtual-address range through the platform's importer
//    data path (models/devices/common/importer_dma.h: device MMU, device faults, coalesced
//    bursts, in-flight DMA that every invalidation waits for, the checker's rules); each
//    transfer is a piece of the DMA of the whole buffer (a frame), so a device fault maps the
//    rest of the buffer ahead (ImporterDma's dmaEnd, capped by its faultAheadPages). Several
//    ports (a ring of buffers) share one ImporterDma over a window covering them all, because
//    the checker follows one window per importing device.
// Timing: the engine's and the importer path's; a port adds none.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <systemc>
#include <tlm>

#include <tlm_utils/tlm_quantumkeeper.h>

#include "hmm/importer_mirror.h"
#include "models/devices/common/importer_dma.h"
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
  /// Wait for (advance the caller's local time to) the completion of everything issued and
  /// retire it: a device that finished a frame calls this before it reports completion, so no
  /// transfer of a finished frame stays in flight. Default: nothing in flight to retire.
  virtual void drain(tlm_utils::tlm_quantumkeeper& /*qk*/) {}
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

/// [offset, offset + bytes) of a buffer at `start` in a process, through `dma` (shared, not owned).
class ImporterDmaPort final : public FrameDmaPort {
 public:
  ImporterDmaPort(ImporterDma& dma, Va start, std::uint64_t bytes)
      : dma_(dma), start_(start), bytes_(bytes) {}
  DmaIssue write(std::uint64_t offset, std::uint64_t len, const std::uint8_t* data,
                 tlm_utils::tlm_quantumkeeper& qk) override;
  DmaIssue read(std::uint64_t offset, std::uint64_t len, std::uint8_t* data,
                tlm_utils::tlm_quantumkeeper& qk) override;
  std::uint64_t bytes() const override { return bytes_; }
  void drain(tlm_utils::tlm_quantumkeeper& qk) override { dma_.drain(qk); }
  Va start() const { return start_; }
  ImporterDma& dma() { return dma_; }

 private:
  DmaIssue result(const ImporterDmaResult& r, tlm_utils::tlm_quantumkeeper& qk) const;
  ImporterDma& dma_;
  Va start_;
  std::uint64_t bytes_;
};

/// One ImporterDma over the page-aligned window covering [start_i, start_i + bytes) for every
/// start in `starts` (a driver's ring of buffers), and a port per buffer. Returns nullptr when a
/// start is not page aligned or `starts` is empty.
struct ImporterDmaRing {
  std::unique_ptr<ImporterDma> dma;
  std::vector<std::unique_ptr<ImporterDmaPort>> ports;
  /// Map buffer i now (a driver's setup: its first use takes no device fault). `write`: the
  /// device writes it. Returns ImporterMirror::map's status.
  HmmStatus prefault(std::size_t i, bool write);
};
std::unique_ptr<ImporterDmaRing> makeImporterDmaRing(const std::string& name, Mm& mm,
                                                     const HmmDmaImporter& imp, PcieDmaEngine& engine,
                                                     const std::vector<Va>& starts, std::uint64_t bytes,
                                                     const ImporterDmaParams& params, P2pChecker* checker,
                                                     ImporterDmaDirectory* directory);

/// Absolute local time of the calling thread: SystemC time plus its quantum keeper's offset, ps.
inline std::uint64_t localNowPs(const tlm_utils::tlm_quantumkeeper& qk) {
  return sc_core::sc_time_stamp().value() + qk.get_local_time().value();
}
/// Moves the caller's local time to absolute `t` (if later), syncing when the quantum is used up.
void advanceLocalTo(std::uint64_t t, tlm_utils::tlm_quantumkeeper& qk);

}  // namespace hmmsim
