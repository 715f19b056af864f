#pragma once
// The camera's driver half: gives the hardware (camera.h) its ring of frame buffers and its MSI
// address, and starts capture, as a V4L2 capture driver does for V4L2_MEMORY_USERPTR buffers.
//
// Two kinds of buffers:
//  - user buffers: process VA ranges (the destination of the RFC's camera workload). Each is
//    reached through the importer pattern (frame_dma.h, MirrorDmaPort: hmmRangeFault + the
//    DMA-map step, device page table and TLB, device faults serviced here, every invalidation
//    obeyed: the device's translations are zapped and in-flight bursts waited for). The buffer
//    may be anonymous memory (RAM, through the DMA API / IOMMU) or a peer's special vma (its
//    vm_ops p2pMap hands out a bus address or an IOVA for its BAR).
//  - DMA buffers: scatter-gather lists of DMA addresses the caller mapped (no HMM).
// `prefault` maps every user buffer when it is given (the first frame then takes no device
// fault); a buffer invalidated later is faulted back in by the device.
// Timing: a device fault costs MirrorDmaPortParams::faultPs; programming registers takes no time.
// Leaves out: V4L2's queue/dequeue protocol (the ring is fixed), interrupt handling on a CPU
// (completions call a function in the device's thread until the platform delivers MSIs).

#include <cstdint>
#include <memory>
#include <vector>

#include "models/devices/camera/camera.h"
#include "models/devices/camera/frame_dma.h"
#include "sim/errno.h"

namespace hmmsim {

class DmaMapping;

struct CameraDriverParams {
  /// How the device reaches a user buffer (device fault cost, pages per fault, device TLB,
  /// misbehaviour switches). Defaults: MirrorDmaPortParams.
  MirrorDmaPortParams port;
  /// Map every user buffer when it is given. Default true.
  bool prefault = true;
};

class CameraDriver {
 public:
  /// The driver of `hw` on PCI function `pci` (the importing device; attached to `dma`, which
  /// may be null when only DMA buffers are used). `checker` (optional): the importer's rule checks.
  CameraDriver(Camera& hw, Device& pci, DmaMapping* dma, const CameraDriverParams& params = {},
               P2pChecker* checker = nullptr);
  ~CameraDriver();
  CameraDriver(const CameraDriver&) = delete;
  CameraDriver& operator=(const CameraDriver&) = delete;

  /// The ring of user buffers: VA ranges of `mm`, page aligned, each at least a frame.
  /// Returns Ok; Inval (unaligned, too small, empty ring); Fault (prefault could not map one:
  /// a hole, a refused special vma).
  Errno setUserBuffers(Mm& mm, const std::vector<Va>& buffers);
  /// The ring of DMA buffers (scatter-gather lists). Ok; Inval (empty, or smaller than a frame).
  Errno setDmaBuffers(const std::vector<std::vector<DmaSegment>>& buffers);
  /// Program the MSI (address 0 disables it).
  void setMsi(std::uint64_t addr, std::uint32_t data) { hw_.setMsi(addr, data); }
  /// Start capturing `frames` frames at absolute time `startPs` (or now if later).
  void start(std::uint64_t frames, std::uint64_t startPs = 0) { hw_.start(frames, startPs); }

  /// User buffer i's port (nullptr for DMA buffers).
  MirrorDmaPort* userPort(std::size_t i);
  Camera& hardware() { return hw_; }

 private:
  Camera& hw_;
  Device& pci_;
  DmaMapping* dma_;
  CameraDriverParams params_;
  P2pChecker* checker_;
  std::vector<std::unique_ptr<FrameDmaPort>> ports_;
};

}  // namespace hmmsim
