#pragma once
// dmirror's p2p half: the RFC end to end on the kernel's test device (lib/test_hmm.c has no p2p;
// this is what the 2019 RFC's test device would have needed). A DmirrorDevice attached to a PCI
// function (DmirrorP2pFabric::attach) becomes both
//  - an exporter (the shared exporter half, models/devices/common/p2p_exporter.h): its
//    device-private memory is reachable through its BAR, managed by a
//    P2pBarManager (windows, the exporter's policy, revoke before reuse). Its DeviceMemory gets
//    devmem p2p ops (RFC 4/5: another device that meets one of its pages in a process vma maps it
//    through the BAR instead of migrating it), and an mmap of its device file at a file offset of
//    HMM_DMIRROR_P2P_MMAP_OFFSET or above exports a special vma (VM_IO | VM_PFNMAP, no CPU
//    mapping, RFC 3/5) whose vm_ops p2pMap/p2pUnmap map device pages into the BAR. Revocation
//    (window reclaim or move, revoke, reset, unplug, chunk removal) raises MMU_NOTIFY_CLEAR over
//    every virtual range that maps the affected pages: the special vmas' (BarVmaRevoker) and, for
//    device-private pages in anonymous vmas, the ranges the rmap walk finds.
//  - an importer: READ, WRITE and SNAPSHOT of its handles go through the importer pattern
//    (hmm/importer_mirror.h: hmmRangeDmaMap, device page table, device TLB, p2pUnmap on every
//    overlapping invalidation) and move the bytes by DMA through the platform (the fabric's
//    resolver: IOMMU, PCIe routing, the exporter's BAR windows). Pages another dmirror's devmem
//    p2pMap declines (policy, map type NOT_SUPPORTED) are migrated back to RAM and mapped as RAM
//    (the RFC's fallback).
// Every importer access is checked by the fabric's P2pChecker: rules 1/2 in the importer mirror,
// rule 3 (peer access inside a live window that still maps the page meant) in the resolver.
//
// Deliberate differences and limits:
//  - One ImporterMirror per handle over a window that covers the command's range (rounded to
//    2 MiB); a command outside it replaces the window (the old one is unmapped first), where the
//    kernel mirrors the whole address space with one xarray. The importer is the device's PCI
//    function, and P2pChecker follows one window per importing device: two handles of one
//    device importing at the same time share it (the later window replaces the earlier).
//  - READ/WRITE count `faults` as the importer's map() calls (each maps from the first page
//    without a device translation to the end of the range), as dmirror_fault calls do.
//  - The special vma exposes raw device memory: file page HMM_DMIRROR_P2P_MMAP_OFFSET/4096 + p is
//    device page p (chunk p / pagesPerChunk, page p % pagesPerChunk), like a GPU's VRAM through
//    its BAR; those frames may also hold migrated pages (aliasing is the user's business, as with
//    a raw VRAM mapping). The range must lie in registered chunks when it is mapped.
// Timing: none (pure core).

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "hmm/importer_mirror.h"
#include "hmm/p2p.h"
#include "hmm/p2p_bar_manager.h"
#include "hmm/p2p_bar_vma_revoker.h"
#include "models/cpu_mmu/vm_operations.h"
#include "models/devices/common/p2p_exporter.h"
#include "models/devices/dmirror/dmirror_uapi.h"
#include "sim/errno.h"
#include "sim/stats.h"

namespace hmmsim {

class Dmirror;
class DmirrorDevice;
class DmirrorP2pFabric;
class DmaMapping;
class Iommu;
class P2pChecker;
class P2pDmaMapper;
class PciDev;
class Router;
struct HmmDmirrorCmd;

/// How one dmirror device takes part in p2p (DmirrorP2pFabric::attach).
struct DmirrorP2pParams {
  /// The BAR of the PCI function that exports device memory. Default 2.
  int bar = 2;
  /// Bytes of that BAR used as the aperture. Unit: bytes. 0 (default) = the whole BAR.
  std::uint64_t apertureBytes = 0;
  /// BAR window granularity. Unit: bytes. Default 2 MiB.
  std::uint64_t windowBytes = 2ull << 20;
  /// The exporter's window policy. Default LruReclaim.
  BarPolicy policy = BarPolicy::LruReclaim;
  /// PerImporterCap: pages one importer may hold. Unit: pages. Default 0.
  std::uint64_t importerCapPages = 0;
  /// Exporter misbehaviour (checker tests): reuse a window without revoking its importers.
  bool reuseBeforeRevoke = false;
  /// The importer half: per-handle ImporterMirror parameters (misbehaviour switches included).
  ImporterMirrorParams importer;
};

/// The exporter and importer halves of one attached dmirror device (see the header comment).
/// The exporter half is the shared one (models/devices/common/p2p_exporter.h); this class tells
/// it how dmirror lays out its device pages (P2pExportedMemory) and adds the importer half.
class DmirrorP2p final : public P2pExportedMemory {
 public:
  DmirrorP2p(DmirrorDevice& dev, PciDev& pci, const DmirrorP2pParams& params, DmaMapping& dma,
             P2pDmaMapper& mapper, P2pChecker* checker, ImporterMirror::Resolver resolver);
  ~DmirrorP2p() override;
  DmirrorP2p(const DmirrorP2p&) = delete;
  DmirrorP2p& operator=(const DmirrorP2p&) = delete;

  /// The exporter parameters dmirror's params amount to (special vmas at HMM_DMIRROR_P2P_MMAP_OFFSET).
  static P2pExporterParams exporterParams(const DmirrorP2pParams& p);

  // ---- exporter ----------------------------------------------------------------------------
  /// f_op->mmap at a file offset >= HMM_DMIRROR_P2P_MMAP_OFFSET (P2pExporter::mmapSpecial): Ok;
  /// Inval (the device pages are not all in registered chunks); NoDev (the device was unplugged).
  Errno mmapSpecial(Vma& vma) { return exporter_.mmapSpecial(vma); }
  /// Revoke every importer's hold on the device pages of chunk `i` (before it is removed).
  void revokeChunk(std::size_t i);
  /// P2pExportedMemory: device page p is page p % pagesPerChunk of chunk p / pagesPerChunk.
  /// devPageOf: nullopt for a frame outside the registered chunks, or of a chunk re-added after
  /// a RELEASE beyond the exported device memory (declined: the importer falls back to RAM).
  std::optional<DevPage> devPageOf(Pfn pfn) override;
  /// The frame behind device page `p`, or nullopt (its chunk is not registered).
  std::optional<Pfn> pfnOf(DevPage p) override;

  // ---- importer: the handle commands --------------------------------------------------------
  Errno read(Dmirror& d, HmmDmirrorCmd& cmd, std::vector<std::uint8_t>& bounce);
  Errno write(Dmirror& d, HmmDmirrorCmd& cmd, const std::vector<std::uint8_t>& bounce);
  /// SNAPSHOT as the importer sees the range: the kernel's bytes, except that a page another
  /// device's devmem p2pMap accepts is HMM_DMIRROR_PROT_DEV_PRIVATE_P2P and a special-vma page is
  /// HMM_DMIRROR_PROT_SPECIAL_P2P (| READ/WRITE). Nothing is faulted, migrated or kept mapped.
  Errno snapshot(Dmirror& d, HmmDmirrorCmd& cmd);
  /// The handle is closing: unmap everything it imported.
  void handleClosed(Dmirror& d);
  /// The handle's importer mirror (nullptr before its first p2p command).
  ImporterMirror* importerOf(const Dmirror& d);

  P2pExporter& exporter() { return exporter_; }
  P2pBarManager& bar() { return exporter_.bar(); }
  BarVmaRevoker& vmaRevoker() { return exporter_.vmaRevoker(); }
  PciDev& pci() { return pci_; }
  int barIndex() const { return params_.bar; }
  HmmDmaImporter importerDesc();
  /// The exporter's stats (P2pExporter::stats).
  StatsGroup& stats() { return exporter_.stats(); }
  /// The fabric it is attached to (set by DmirrorP2pFabric::attach).
  DmirrorP2pFabric* fabric = nullptr;

 private:
  ImporterMirror& importerFor(Dmirror& d, Va start, Va end);
  Errno copy(Dmirror& d, HmmDmirrorCmd& cmd, std::uint8_t* bounce, bool write);

  DmirrorDevice& dev_;
  PciDev& pci_;
  DmirrorP2pParams params_;
  DmaMapping& dma_;
  P2pChecker* checker_;
  ImporterMirror::Resolver resolver_;
  P2pExporter exporter_;
  std::map<const Dmirror*, std::unique_ptr<ImporterMirror>> importers_;
};

/// The platform the attached dmirrors share: the DMA layer, the p2pdma mapper, the PCIe router
/// and IOMMU below the importers, and the checker. Its resolver is what a device's DMA reaches.
class DmirrorP2pFabric {
 public:
  DmirrorP2pFabric(Router& router, Iommu& iommu, DmaMapping& dma, P2pDmaMapper& mapper,
                   P2pChecker* checker = nullptr);
  ~DmirrorP2pFabric();
  DmirrorP2pFabric(const DmirrorP2pFabric&) = delete;
  DmirrorP2pFabric& operator=(const DmirrorP2pFabric&) = delete;

  /// Attach `dev` on PCI function `pci` (already attached to the DMA layer): install its devmem
  /// p2p ops and its BAR manager (registered with the checker). Returns "" or what is wrong with
  /// `params` (the BAR, its size or alignment, the BAR manager's parameters).
  std::string attach(DmirrorDevice& dev, PciDev& pci, const DmirrorP2pParams& params = {});
  /// Detach before the device goes (the device's destructor does it).
  void detach(DmirrorDevice& dev);

  /// Where a DMA of `importer` at `addr` lands: its own memory (Local), system memory (through the
  /// IOMMU when it translates), or an attached exporter's BAR window (PCIe route; rule 3 checked
  /// with the page the translation meant). nullopt: IOMMU fault, unroutable, outside any live window.
  std::optional<Pa> resolve(Device& importer, DmaAddr addr, const DeviceTranslation& t, bool write);

  P2pChecker* checker() { return checker_; }
  std::uint64_t peerAccesses() const { return peerAccesses_; }

 private:
  Router& router_;
  Iommu& iommu_;
  DmaMapping& dma_;
  P2pDmaMapper& mapper_;
  P2pChecker* checker_;
  std::vector<DmirrorDevice*> devices_;
  std::uint64_t peerAccesses_ = 0;
};

}  // namespace hmmsim
