#pragma once
// The GPU's driver half: VRAM as HMM device-private memory, the device file's special-vma mmap of
// VRAM, and p2p export of VRAM through the BAR (the shared exporter, p2p_exporter.h).
//
// What it models
//  - VRAM layout: [0, vramBytes - kernelRegionBytes) is HMM device-private memory (a DeviceMemory
//    whose chunks sit at the VRAM's physical address, DeviceMemoryParams::basePa, so migrated
//    bytes are VRAM bytes); the top kernelRegionBytes are driver-owned (kernels' buffers, the
//    compute engine's stream region and progress counter), registered as a plain device range.
//    Every VRAM frame is registered at construction (registration costs no frame data).
//  - Migration, the way nouveau's and amdgpu's SVM code drive it: migrateToVram selects system
//    pages of a range (migrate_vma with SELECT_SYSTEM), copies each into a VRAM page and installs
//    device-private entries; migrateToRam and the CPU fault handler (dev_pagemap_ops
//    migrate_to_ram) bring pages back. Copies move the bytes in the pure core (MigrateCopier) and,
//    when the caller passes its quantum keeper, are charged on the GPU's copy engine (PCIe DMA +
//    VRAM bandwidth, shared with the compute engine and peers); a CPU fault's migrate_to_ram run
//    by an SC_THREAD (a CpuCore) makes that thread wait for the copy engine the same way.
//  - The device file: mmap at a file offset of vramMmapOffset + o exports VRAM offset o as a
//    special vma (VM_IO | VM_PFNMAP, no CPU mapping, vm_ops p2pMap/p2pUnmap through the BAR
//    windows: RFC 3/5). Those frames may also hold migrated pages (aliasing is the user's, as
//    with any raw VRAM mapping).
//  - p2p: device page p of the exporter is VRAM offset p * 4 KiB. The devmem p2p ops (RFC 4/5)
//    let another device map the GPU's device-private pages through the BAR; a decline (policy,
//    map type) makes the importer migrate them to RAM.
//  - The GPU as importer: a process binds a window of its address space (bindAddressSpace, like
//    an SVM range); the GPU's device MMU over it is one ImporterDma (device page table and TLB,
//    device faults, every invalidation obeyed and waited for, the checker's rules, the
//    misbehaviour switches of ImporterMirror). Its pgmap owner is the driver, so the GPU's own
//    device-private pages are reported by hmm_range_fault without a fault and map to their VRAM
//    offset (HmmDmaKind::Local): the compute engine reads them on its VRAM channels
//    (Gpu::vramAccess). launch() runs a VA kernel (gpu_va_kernel.h) over the window, mapping
//    its buffers first when `prefault` (as a runtime's prefetch of an SVM range does).
// Leaves out: VRAM eviction under pressure (allocation fails with NoMem), 2 MiB device folios (migration
// works in 4 KiB pages, THPs are split), GPU-side atomics (device-exclusive).
// Timing: the migrations' copies as above; everything else is pure core.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <systemc>

#include <tlm_utils/tlm_quantumkeeper.h>

#include "hmm/memremap.h"
#include "hmm/migrate_device.h"
#include "models/cpu_mmu/file.h"
#include "models/devices/common/importer_dma.h"
#include "models/devices/common/p2p_exporter.h"
#include "models/devices/gpu/gpu.h"
#include "models/pcie/dma_mapping.h"
#include "sim/errno.h"
#include "sim/stats.h"

namespace hmmsim {

class Mm;
class P2pChecker;
class P2pDmaMapper;
class PciDev;
struct VmFault;

/// The GPU driver's parameters. Every field has a default.
struct GpuDriverParams {
  /// The BAR that exposes VRAM. Unit: BAR index 0-5. Default 2.
  int bar = 2;
  /// BAR window granularity. Unit: bytes. Default 2 MiB.
  std::uint64_t barWindowBytes = 2ull << 20;
  /// Where the VRAM aperture starts in the BAR (P2pExporterParams::apertureOffset): the BAR's
  /// bytes below it are not VRAM windows (a driver keeping the start of the BAR for itself). The
  /// aperture is the rest of the BAR. Unit: bytes. Default 0. A multiple of barWindowBytes.
  std::uint64_t barApertureOffset = 0;
  /// The exporter's window policy. Default LruReclaim (with a resizable BAR, Unlimited exports
  /// all of VRAM with fixed windows).
  BarPolicy barPolicy = BarPolicy::LruReclaim;
  /// PerImporterCap: most pages one importer may hold. Unit: pages. Default 0.
  std::uint64_t importerCapPages = 0;
  /// Exporter misbehaviour (checker tests): reuse a window before revoking. Default false.
  bool reuseBeforeRevoke = false;
  /// Pointing one BAR window at a VRAM chunk (BAR1 page-table writes and their flush), charged to
  /// the thread that needed it; not with a resizable BAR. Unit: ps. Default 1 us.
  std::uint64_t windowProgramPs = P2pExporterParams{}.windowProgramPs;
  /// A revoke's rmap walk per device-private page it looks up. Unit: ps. Default 100 ns.
  std::uint64_t rmapWalkPagePs = P2pExporterParams{}.rmapWalkPagePs;
  /// HMM device-private chunk (one dev_pagemap each). Unit: bytes. Default 256 MiB.
  std::uint64_t chunkBytes = 256ull << 20;
  /// Driver-owned VRAM at the top (kernels, the compute region, the progress counter); not HMM
  /// memory. Unit: bytes. Default 256 MiB. A multiple of 2 MiB, less than VRAM.
  std::uint64_t kernelRegionBytes = 256ull << 20;
  /// File offset at which an mmap of the device file maps VRAM offset 0. Unit: bytes. Default 0.
  std::uint64_t vramMmapOffset = 0;
  /// Pure-core copy cost (accumulated in copier() when the copy runs outside an SC_THREAD).
  MigrateCopyParams copy;
  /// amdgpu's SVM fault granularity (the svm_default_granularity module parameter, default 9:
  /// 2^9 pages = 2 MiB; Intel Xe's largest SVM chunk is 2 MiB too): a GPU fault maps the 2 MiB
  /// block around the faulting address, because a compute kernel that touched one address will
  /// touch its neighbours. Unit: pages.
  static constexpr std::uint64_t kSvmGranularityPages = 512;
  /// How the compute engine reaches process memory (burst size, device fault cost, pages per
  /// fault, device TLB, misbehaviour switches). Defaults: ImporterDmaParams, but a fault maps the
  /// 2 MiB block around the faulting page (faultAroundPages = kSvmGranularityPages).
  ImporterDmaParams dma = ImporterDmaParams::withFaultAround(kSvmGranularityPages);
  /// Map a VA kernel's buffers when it is launched (its first access then takes no device
  /// fault). Default true.
  bool prefault = true;
};

class GpuDriver final : public FileOperations, public P2pExportedMemory {
 public:
  /// "" when `params` fit `hw` and PCI function `pci`; otherwise what is wrong.
  static std::string check(const Gpu& hw, PciDev& pci, const GpuDriverParams& params);
  /// Registers every VRAM frame with the GPU's PhysMem, installs the exporter on the BAR (bound to
  /// the BAR target) and its devmem p2p ops. `pci` must be attached to the DMA layer of `mapper`.
  /// `checker` and `directory` (rule 3 of the GPU's importer at peers' BARs) may be nullptr.
  /// `params` must pass check() (asserted).
  GpuDriver(const std::string& name, Gpu& hw, PciDev& pci, P2pDmaMapper& mapper, P2pChecker* checker,
            const GpuDriverParams& params = {}, ImporterDmaDirectory* directory = nullptr);
  ~GpuDriver() override;
  GpuDriver(const GpuDriver&) = delete;
  GpuDriver& operator=(const GpuDriver&) = delete;

  // ---- device file ---------------------------------------------------------------------------
  /// Open the device file (read/write).
  std::shared_ptr<File> open();
  /// f_op->mmap: offsets from vramMmapOffset map VRAM as a special vma. Ok; Inval (offset below
  /// vramMmapOffset or beyond VRAM); NoDev (unplugged).
  Errno mmap(File& file, Vma& vma) override;
  const char* name() const override { return "gpu"; }

  // ---- HMM device-private memory --------------------------------------------------------------
  /// Migrate the system pages of [start, end) (page aligned, inside vmas) to VRAM. `qk`: the
  /// caller's quantum keeper (its SC_THREAD then waits for the copy engine); nullptr: the copy
  /// cost accumulates in copier(). `migrated` (optional) gets the pages moved. Ok; Inval (bad
  /// range, no vma); NoMem (VRAM full: the pages that fit were moved).
  Errno migrateToVram(Mm& mm, Va start, Va end, tlm_utils::tlm_quantumkeeper* qk = nullptr,
                      std::uint64_t* migrated = nullptr);
  /// Migrate the GPU's pages of [start, end) back to system memory. As migrateToVram; NoMem when
  /// RAM ran out.
  Errno migrateToRam(Mm& mm, Va start, Va end, tlm_utils::tlm_quantumkeeper* qk = nullptr,
                     std::uint64_t* migrated = nullptr);

  // ---- copies to system memory (the bounce the RFC's p2p avoids) ------------------------------
  /// Copy `bytes` of VRAM from offset `vramOffset` into user memory at [dst, dst + bytes) with the
  /// copy engine, as a runtime's device-to-host memcpy into pinned memory does: pins the user
  /// pages (pin_user_pages, FOLL_WRITE), DMA-maps each physically contiguous run (dma_map_page),
  /// copies it (a descriptor per page, VRAM channels, then a PCIe write of the real bytes to
  /// system memory), unmaps it (waiting for the IOMMU invalidation) and unpins. From the caller's
  /// SC_THREAD: returns at the copy's completion (`qk` synced). Ok; Inval (no bytes, or the VRAM
  /// range leaves VRAM); Fault (a page could not be pinned: nothing copied); Io (the PCIe write
  /// failed).
  Errno copyVramToUser(Mm& mm, Va dst, std::uint64_t vramOffset, std::uint64_t bytes,
                       tlm_utils::tlm_quantumkeeper& qk);

  // ---- the GPU as importer (VA kernels) --------------------------------------------------------
  /// The part of `mm` the compute engine may read and write: [start, start + bytes), page
  /// aligned. Ok; Inval (unaligned, empty, or a window is bound already).
  Errno bindAddressSpace(Mm& mm, Va start, std::uint64_t bytes);
  /// Give the window back (its device MMU goes): when no VA kernel runs, or after the simulation
  /// ended (teardown).
  void releaseAddressSpace();
  /// The device MMU over the bound window (nullptr before bindAddressSpace).
  ImporterDma* importerDma() { return dma_.get(); }
  /// Launch VA kernel `k` on the compute engine (Gpu::launchVa; completion as any kernel's). Ok;
  /// Inval (no window; input empty, not whole 64-bit words, unaligned or outside the window; a VA
  /// output unaligned or outside the window; a VRAM output outside the driver-owned kernel
  /// region); Busy (a kernel runs); Fault (prefault of a buffer failed: nothing launched).
  Errno launch(const GpuVaKernel& k);

  // ---- P2pExportedMemory: device page p = VRAM offset p * 4 KiB -------------------------------
  std::optional<DevPage> devPageOf(Pfn pfn) override;
  std::optional<Pfn> pfnOf(DevPage p) override;

  /// VRAM offset of the driver-owned region (kernels: GpuKernel offsets go here).
  std::uint64_t kernelRegionOffset() const { return hw_.params().vramBytes - params_.kernelRegionBytes; }
  /// VRAM offset of a frame of VRAM.
  std::uint64_t vramOffsetOf(Pfn pfn) const { return (pfn - vramFirst_) << kPageShift; }
  bool isVram(Pfn pfn) const { return pfn >= vramFirst_ && pfn - vramFirst_ < vramPages_; }
  /// The pgmap owner of its device-private memory.
  const void* owner() const { return this; }

  Gpu& hw() { return hw_; }
  DeviceMemory& devmem() { return *devmem_; }
  P2pExporter& exporter() { return *exporter_; }
  MigrateCopier& copier() { return copier_; }
  const GpuDriverParams& params() const { return params_; }
  /// Counters "migrated_to_vram", "migrated_to_ram" (pages), "migrate_to_ram_faults" (CPU faults
  /// on device-private pages).
  StatsGroup& stats() { return stats_; }

 private:
  /// One page copy to charge on the copy engine: host bus address and VRAM offset.
  struct Copy {
    std::uint64_t host;
    std::uint64_t vram;
  };
  VmFaultResult devmemFault(VmFault& vmf);
  /// Copies for the selected pages of `args` into newly allocated destinations (VRAM pages when
  /// toVram, system pages otherwise). False when an allocation failed.
  bool allocAndCopy(struct MigrateVma& args, bool toVram, std::vector<Copy>* copies);
  Errno migrate(Mm& mm, Va start, Va end, bool toVram, tlm_utils::tlm_quantumkeeper* qk,
                std::uint64_t* migrated);
  /// The simulated time of the caller (SystemC time plus `qk`'s local offset, if given), ps.
  static std::uint64_t nowPs(const tlm_utils::tlm_quantumkeeper* qk);
  /// Charge `copies` on the copy engine, merging runs contiguous on both sides.
  void charge(const std::vector<Copy>& copies, bool toVram, tlm_utils::tlm_quantumkeeper& qk);
  /// dma_unmap_page of the copy engine's run, charging the caller the IOMMU invalidation it did.
  void dmaUnmap(DmaAddr at, std::uint64_t bytes, DmaDir dir, tlm_utils::tlm_quantumkeeper& qk);

  std::string name_;
  Gpu& hw_;
  PciDev& pci_;
  P2pDmaMapper& mapper_;
  GpuDriverParams params_;
  Pfn vramFirst_;
  std::uint64_t vramPages_;
  std::unique_ptr<DeviceMemory> devmem_;
  MigrateCopier copier_;
  std::unique_ptr<P2pExporter> exporter_;
  P2pChecker* checker_;
  ImporterDmaDirectory* directory_;
  std::unique_ptr<ImporterDma> dma_;  ///< the device MMU over the bound window
  StatsGroup stats_;
  Counter& toVram_;
  Counter& toRam_;
  Counter& faults_;
};

}  // namespace hmmsim
