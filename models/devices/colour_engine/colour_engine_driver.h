#pragma once
// The colour engine's driver half: probes the device memory behind the BAR, exports it through a
// special-vma mmap (the RFC's 3/5: a producer maps the engine's input buffers into its process
// and DMAs into them peer to peer), programs the transform and submits frames.
//
// Input of a frame: the engine's own memory (a byte offset into its device memory, which the
// producer reached through the special vma) or a process VA range (any memory: the bounce
// through system memory). Output: a process VA range. VA ranges are reached through the
// importer pattern (frame_dma.h MirrorDmaPort), one port per (range, direction), kept until the
// driver goes; every invalidation is obeyed.
// The special vma (file offsets [0, deviceMemoryBytes) of the device file): VM_IO | VM_PFNMAP,
// no CPU mapping (a CPU access faults with SIGBUS), vm_ops p2pMap/p2pUnmap hand each importer
// the address of the BAR page per the p2pdma map type (P2pDmaMapper: a bus address under a
// common switch, an IOVA or a physical address through the root complex).
// INTERIM (session 5): the exporter here maps the whole device memory 1:1 through the BAR, with
// no window manager and no revocation, until models/devices/common/p2p_exporter (owner "gpu")
// is on main; then it is replaced by that.
// Timing: none here (the hardware half charges the data path; a device fault of a port costs
// MirrorDmaPortParams::faultPs).

#include <cstdint>
#include <map>
#include <memory>
#include <tuple>
#include <utility>
#include <vector>

#include "models/cpu_mmu/file.h"
#include "models/cpu_mmu/vm_operations.h"
#include "models/devices/camera/frame_dma.h"
#include "models/devices/colour_engine/colour_engine.h"
#include "models/pcie/dma_mapping.h"
#include "sim/errno.h"

namespace hmmsim {

class P2pDmaMapper;
class PciDev;
class PhysMem;

struct ColourEngineDriverParams {
  /// How the engine reaches a process buffer (device fault cost, pages per fault, device TLB,
  /// misbehaviour switches). Defaults: MirrorDmaPortParams.
  MirrorDmaPortParams port;
  /// Map a VA buffer when it is first used by a job (the first frame then takes no device
  /// fault). Default true.
  bool prefault = true;
};

/// One frame to convert, as the process asks for it (the driver's ioctl).
struct ColourRequest {
  bool srcLocal = false;        ///< true: input in the engine's memory at srcOffset; false: at srcVa
  std::uint64_t srcOffset = 0;  ///< byte offset into the engine's device memory
  Va srcVa;                     ///< input buffer in the process (page aligned)
  Va dstVa;                     ///< output buffer in the process (page aligned)
  std::uint32_t width = 0, height = 0;
  PixelFormat inFormat = PixelFormat::Rgb888, outFormat = PixelFormat::Rgb888;
  std::uint64_t tag = 0;  ///< returned in the completion
};

class ColourEngineDriver final : public FileOperations, public VmOperations {
 public:
  /// Probe: the engine `hw` is PCI function `pci` whose BAR `bar` (at CPU physical address
  /// `barPa`) shows its device memory; the memory is added to `pm` there. `dma` (the function is
  /// attached to it) and `mapper` serve the importer and exporter halves.
  ColourEngineDriver(ColourEngine& hw, PhysMem& pm, PciDev& pci, int bar, Pa barPa, DmaMapping& dma,
                     P2pDmaMapper& mapper, const ColourEngineDriverParams& params = {},
                     P2pChecker* checker = nullptr);
  ~ColourEngineDriver() override;

  /// openFile ("/dev/colourN"): the device file whose mmap exports the device memory.
  std::shared_ptr<File> openFile();
  /// Convert one frame of `mm` (queued behind earlier ones). Ok; Inval (bad geometry, unaligned
  /// buffer, input outside device memory); Fault (prefault of a buffer failed).
  Errno process(Mm& mm, const ColourRequest& r);
  void setTransform(const ColourTransform& t) { hw_.setTransform(t); }
  /// The port of a VA buffer used earlier (nullptr if none).
  MirrorDmaPort* portOf(Va va, bool deviceWrites);

  // ---- FileOperations ---------------------------------------------------------------------
  Errno mmap(File& file, Vma& vma) override;
  const char* name() const override { return "colour_engine"; }
  // ---- VmOperations: the special vma ------------------------------------------------------
  bool hasFault() const override { return false; }
  bool hasP2p() const override { return true; }
  Errno p2pMap(Vma& vma, Device& importer, Va start, Va end, DmaAddr* pa, bool write) override;
  Errno p2pUnmap(Vma& vma, Device& importer, Va start, Va end, const DmaAddr* pa) override;

  /// p2p DMA mappings handed out and not yet given back.
  std::size_t grants() const;
  ColourEngine& hardware() { return hw_; }

 private:
  FrameDmaPort* userPort(Mm& mm, Va va, std::uint64_t bytes, bool deviceWrites, Errno& err);

  ColourEngine& hw_;
  PhysMem& pm_;
  PciDev& pci_;
  int bar_;
  Pa barPa_;
  DmaMapping& dma_;
  P2pDmaMapper& mapper_;
  ColourEngineDriverParams params_;
  P2pChecker* checker_;
  std::map<std::pair<const Device*, std::uint64_t>, std::vector<DmaDir>> grants_;
  std::map<std::tuple<const Mm*, std::uint64_t, bool>, std::unique_ptr<MirrorDmaPort>> ports_;
  std::map<std::pair<std::uint64_t, std::uint64_t>, std::unique_ptr<FrameDmaPort>>
      localPorts_;  // (offset, bytes)
};

}  // namespace hmmsim
