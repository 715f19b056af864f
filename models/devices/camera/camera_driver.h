#pragma once
// The camera's driver half: gives the hardware (camera.h) its ring of frame buffers and its MSI
// address, and starts capture, as a V4L2 capture driver does for V4L2_MEMORY_USERPTR buffers.
//
// Two kinds of buffers:
//  - user buffers: process VA ranges (the destination of the RFC's camera workload), reached
//    through the platform's importer data path (models/devices/common/importer_dma.h: device
//    page table and TLB, device faults, every invalidation obeyed, the checker's rules), one
//    ImporterDma over the window covering the ring. A buffer may be anonymous memory (RAM,
//    through the DMA API / IOMMU) or a peer's special vma (its vm_ops p2pMap hands out a bus
//    address or an IOVA for its BAR).
//  - DMA buffers: scatter-gather lists of DMA addresses the caller mapped (no HMM).
// `prefault` maps every user buffer when it is given (the first frame then takes no device
// fault); a buffer invalidated later is faulted back in by the device.
// Timing: a device fault costs ImporterDmaParams::faultPs; programming registers takes no time.
// Leaves out: V4L2's queue/dequeue protocol (the ring is fixed), interrupt handling on a CPU
// (completions call a function in the device's thread until the platform delivers MSIs).

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "models/devices/camera/camera.h"
#include "models/devices/common/frame_dma.h"
#include "sim/errno.h"

namespace hmmsim {

class DmaMapping;

struct CameraDriverParams {
  /// How the device reaches user buffers (burst size, device fault cost, pages per fault,
  /// timing-only, device TLB, misbehaviour switches). Defaults: ImporterDmaParams, but a fault
  /// maps the 64 KiB block around the faulting page (faultAroundPages 16, the kernel's
  /// fault_around_bytes: a capture engine's driver knows no more of where the device writes next
  /// than that it streams the buffer; the rest of the frame ahead is mapped by the same fault
  /// anyway, ImporterDmaPort's dmaEnd, so the block adds the pages behind the faulting line that
  /// the next frame into this buffer writes again).
  ImporterDmaParams dma = ImporterDmaParams::withFaultAround(ImporterDmaParams::kKernelFaultAroundPages);
  /// Map every user buffer when it is given. Default true.
  bool prefault = true;
};

class CameraDriver {
 public:
  /// The driver of device `name` ("cam0": names its user-buffer importer, "<name>.dma"; the
  /// hardware's SystemC name may differ) on hardware `hw`, PCI function `pci` (the importing
  /// device; attached to `dma`, which may be null when only DMA buffers are used). `checker` and
  /// `directory` (optional): the importer's rule checks (importer_dma.h).
  CameraDriver(std::string name, Camera& hw, Device& pci, DmaMapping* dma,
               const CameraDriverParams& params = {}, P2pChecker* checker = nullptr,
               ImporterDmaDirectory* directory = nullptr);
  ~CameraDriver();
  CameraDriver(const CameraDriver&) = delete;
  CameraDriver& operator=(const CameraDriver&) = delete;

  /// The ring of user buffers: VA ranges of `mm`, page aligned, each at least a frame.
  /// Returns Ok; Inval (unaligned, too small, empty ring); Fault (prefault could not map one:
  /// a hole, a refused special vma).
  Errno setUserBuffers(Mm& mm, const std::vector<Va>& buffers);
  /// The ring of DMA buffers (scatter-gather lists). Ok; Inval (empty, or smaller than a frame).
  Errno setDmaBuffers(const std::vector<std::vector<DmaSegment>>& buffers);
  /// Give the user buffers back (their importer goes); capture must be over.
  void releaseBuffers() { ring_.reset(); }
  /// Program the MSI (address 0 disables it).
  void setMsi(std::uint64_t addr, std::uint32_t data) { hw_.setMsi(addr, data); }
  /// Start capturing `frames` frames at absolute time `startPs` (or now if later).
  void start(std::uint64_t frames, std::uint64_t startPs = 0) { hw_.start(frames, startPs); }

  /// The importer data path of the user buffers (nullptr for DMA buffers).
  ImporterDma* importerDma() { return ring_ ? ring_->dma.get() : nullptr; }
  Camera& hardware() { return hw_; }

 private:
  std::string name_;
  Camera& hw_;
  Device& pci_;
  DmaMapping* dma_;
  CameraDriverParams params_;
  P2pChecker* checker_;
  ImporterDmaDirectory* directory_;
  std::unique_ptr<ImporterDmaRing> ring_;                // user buffers
  std::vector<std::unique_ptr<FrameDmaPort>> dmaPorts_;  // DMA buffers
};

}  // namespace hmmsim
