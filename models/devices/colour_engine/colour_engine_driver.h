#pragma once
// The colour engine's driver half: probes the device memory behind the BAR, exports it through a
// special-vma mmap (the RFC's 3/5: a producer maps the engine's input buffers into its process
// and DMAs into them peer to peer), programs the transform and submits frames.
//
// Export: the platform's exporter half (models/devices/common/p2p_exporter.h): the device file's
// mmap at file offsets [0, deviceMemoryBytes) is a special vma (VM_IO | VM_PFNMAP, no CPU
// mapping: a CPU access gets SIGBUS) whose vm_ops p2pMap/p2pUnmap map device pages into BAR
// windows (P2pBarManager: policy, revoke before reuse) and hand each importer the address per the
// p2pdma map type (a bus address under a common switch, an IOVA or a physical address through the
// root complex). The device memory is contiguous: device page p is the frame at BAR + p * 4 KiB.
// Input of a frame: the engine's own memory (a byte offset into it: where a producer wrote
// through the special vma) or a process VA range (the bounce through system memory). Output: a
// process VA range. VA buffers lie in the address-space window the process bound
// (bindAddressSpace, like a GPU's SVM range), reached through one ImporterDma (the platform's
// importer data path: device faults, invalidations obeyed, the checker's rules).
// Timing: none here (the hardware half charges the data path; a device fault costs
// ImporterDmaParams::faultPs).

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "models/cpu_mmu/file.h"
#include "models/devices/colour_engine/colour_engine.h"
#include "models/devices/common/frame_dma.h"
#include "models/devices/common/importer_dma.h"
#include "models/devices/common/p2p_exporter.h"
#include "sim/errno.h"

namespace hmmsim {

class DmaMapping;
class P2pDmaMapper;
class PciDev;
class PhysMem;

struct ColourEngineDriverParams {
  /// How the engine reaches process buffers (burst size, device fault cost, pages per fault,
  /// timing-only, device TLB, misbehaviour switches). Defaults: ImporterDmaParams, but a fault
  /// maps the 64 KiB block around the faulting page (faultAroundPages 16, the kernel's
  /// fault_around_bytes: the engine streams strips of a frame buffer; the rest of the frame ahead
  /// is mapped by the same fault anyway, ImporterDmaPort's dmaEnd).
  ImporterDmaParams dma = ImporterDmaParams::withFaultAround(ImporterDmaParams::kKernelFaultAroundPages);
  /// How the device memory is exported (BAR, aperture, window size, policy). `bar` must be the
  /// BAR the engine's device memory sits behind. Defaults: P2pExporterParams (BAR 2, LRU).
  P2pExporterParams exporter;
  /// Map a VA buffer when a job first uses it (that job then takes no device fault). Default true.
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

class ColourEngineDriver final : public FileOperations, public P2pExportedMemory {
 public:
  /// Probe of device `name` ("colour0": names its exporter, its device file "/dev/<name>" and its
  /// importer "<name>.dma"; the hardware's SystemC name may differ): the engine `hw` (built with
  /// its BAR target) is PCI function `pci`, whose BAR
  /// `params.exporter.bar` (at CPU physical address `barPa`) shows its device memory; the memory
  /// is added to `pm` there and exported. `dma` (the function is attached to it) and `mapper`
  /// serve the importer and exporter halves; `checker` and `directory` (optional) check them.
  ColourEngineDriver(std::string name, ColourEngine& hw, PhysMem& pm, PciDev& pci, Pa barPa, DmaMapping& dma,
                     P2pDmaMapper& mapper, const ColourEngineDriverParams& params = {},
                     P2pChecker* checker = nullptr, ImporterDmaDirectory* directory = nullptr);
  ~ColourEngineDriver() override;

  /// open("/dev/colourN"): the device file whose mmap exports the device memory.
  std::shared_ptr<File> openFile();
  /// The part of `mm` the engine may DMA to and from: [start, start + bytes), page aligned. Call
  /// once before VA buffers are used. Ok; Inval (unaligned, empty, or bound already).
  Errno bindAddressSpace(Mm& mm, Va start, std::uint64_t bytes);
  /// Give the bound window back (its importer and ports go); no job may be running.
  void releaseAddressSpace() {
    ports_.clear();
    dma_.reset();
  }
  /// Convert one frame (queued behind earlier ones). Ok; Inval (bad geometry, unaligned buffer,
  /// a buffer outside the bound window or no window bound, input outside device memory); Fault
  /// (prefault of a buffer failed).
  Errno process(const ColourRequest& r);
  void setTransform(const ColourTransform& t) { hw_.setTransform(t); }

  // ---- FileOperations ---------------------------------------------------------------------
  Errno mmap(File& file, Vma& vma) override;
  const char* name() const override { return "colour_engine"; }
  // ---- P2pExportedMemory: contiguous device memory at the BAR ---------------------------------
  std::optional<DevPage> devPageOf(Pfn pfn) override;
  std::optional<Pfn> pfnOf(DevPage p) override;

  P2pExporter& exporter() { return *exporter_; }
  /// The importer data path of VA buffers (nullptr before bindAddressSpace).
  ImporterDma* importerDma() { return dma_ ? dma_.get() : nullptr; }
  ColourEngine& hardware() { return hw_; }

 private:
  FrameDmaPort* userPort(Va va, std::uint64_t bytes, bool deviceWrites, Errno& err);

  std::string name_;
  ColourEngine& hw_;
  PhysMem& pm_;
  PciDev& pci_;
  Pa barPa_;
  DmaMapping& dmaApi_;
  ColourEngineDriverParams params_;
  P2pChecker* checker_;
  ImporterDmaDirectory* directory_;
  std::unique_ptr<P2pExporter> exporter_;
  std::unique_ptr<ImporterDma> dma_;
  std::map<std::pair<std::uint64_t, std::uint64_t>, std::unique_ptr<ImporterDmaPort>> ports_;  // (va, bytes)
  std::map<std::pair<std::uint64_t, std::uint64_t>, std::unique_ptr<FrameDmaPort>>
      localPorts_;  // (offset, bytes)
};

}  // namespace hmmsim
