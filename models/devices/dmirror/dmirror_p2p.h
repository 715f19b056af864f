#pragma once
// dmirror's p2p half: the RFC end to end on the kernel's test device (lib/test_hmm.c has no p2p;
// this is what the 2019 RFC's test device would have needed). A DmirrorDevice attached to a PCI
// function (DmirrorP2pFabric::attach) becomes both
//  - an exporter: its device-private memory is reachable through its BAR, managed by a
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
class DmirrorP2p final : public DevmemP2pOps, public VmOperations, public BarRevokeHook {
 public:
  DmirrorP2p(DmirrorDevice& dev, PciDev& pci, const DmirrorP2pParams& params, DmaMapping& dma,
             P2pDmaMapper& mapper, P2pChecker* checker, ImporterMirror::Resolver resolver);
  ~DmirrorP2p() override;
  DmirrorP2p(const DmirrorP2p&) = delete;
  DmirrorP2p& operator=(const DmirrorP2p&) = delete;

  // ---- exporter: devmem p2p ops (RFC 4/5) ---------------------------------------------------
  std::uint64_t p2pMap(DeviceMemory& devmem, Device& importer, Va addr, const unsigned long* hmmPfns,
                       std::uint64_t npages, DmaAddr* pas, bool write) override;
  std::uint64_t p2pUnmap(DeviceMemory& devmem, Device& importer, Va addr, const unsigned long* hmmPfns,
                         std::uint64_t npages, const DmaAddr* pas) override;

  // ---- exporter: the special vma's vm_ops (RFC 3/5) -------------------------------------------
  /// f_op->mmap at a file offset >= HMM_DMIRROR_P2P_MMAP_OFFSET. Ok; Inval (the device pages are
  /// not all in registered chunks, or the device was unplugged).
  Errno mmapSpecial(Vma& vma);
  void open(Vma& vma) override;
  void close(Vma& vma) override;
  bool hasFault() const override { return false; }
  bool hasP2p() const override { return true; }
  /// Ok; Perm (write into a vma without VM_WRITE); the BAR manager's refusal (OpNotSupp, NoSpc,
  /// Busy, Io, NoDev, Inval); OpNotSupp (map type NOT_SUPPORTED between the two functions).
  Errno p2pMap(Vma& vma, Device& importer, Va start, Va end, DmaAddr* pa, bool write) override;
  Errno p2pUnmap(Vma& vma, Device& importer, Va start, Va end, const DmaAddr* pa) override;

  // ---- exporter: revocation ----------------------------------------------------------------
  /// BarRevokeHook: MMU_NOTIFY_CLEAR over every virtual range mapping device pages
  /// [first, first + npages): special vmas, and anonymous vmas holding them (rmap walk).
  void revoke(DevPage first, std::uint64_t npages, BarEvent why) override;
  /// Revoke every importer's hold on the device pages of chunk `i` (before it is removed).
  void revokeChunk(std::size_t i);
  /// The device page of one of this device's frames, or nullopt (not in a registered chunk).
  std::optional<DevPage> devPageOf(Pfn pfn);
  /// The frame behind device page `p`, or nullopt (its chunk is not registered).
  std::optional<Pfn> pfnOf(DevPage p);

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

  P2pBarManager& bar() { return bar_; }
  BarVmaRevoker& vmaRevoker() { return vmaRevoker_; }
  PciDev& pci() { return pci_; }
  int barIndex() const { return params_.bar; }
  HmmDmaImporter importerDesc();
  StatsGroup& stats() { return stats_; }
  /// The fabric it is attached to (set by DmirrorP2pFabric::attach).
  DmirrorP2pFabric* fabric = nullptr;

 private:
  /// The live p2p DMA mappings of one (importer, address): one per map, by direction (the same
  /// bus address is handed out again when the page is mapped twice; each map is its own
  /// dma-debug record and is unmapped with its own direction).
  struct Grant {
    DevPage page;
    std::uint32_t toDevice = 0;  ///< maps with DmaDir::ToDevice
    std::uint32_t bidir = 0;     ///< maps with DmaDir::Bidirectional
  };
  /// Map device pages [first, first + n) (already in the BAR manager for `importer`) into the
  /// importer's DMA space; on failure unwinds what it mapped here and returns the count that made it.
  std::uint64_t dmaMapPages(Device& importer, DevPage first, std::uint64_t n, const Pa* pa, DmaAddr* out,
                            bool write);
  /// Give back one grant (DMA unmap + BAR unmap). False when (importer, addr) holds none.
  bool ungrant(Device& importer, DmaAddr addr);
  ImporterMirror& importerFor(Dmirror& d, Va start, Va end);
  Errno copy(Dmirror& d, HmmDmirrorCmd& cmd, std::uint8_t* bounce, bool write);

  DmirrorDevice& dev_;
  PciDev& pci_;
  DmirrorP2pParams params_;
  DmaMapping& dma_;
  P2pDmaMapper& mapper_;
  P2pChecker* checker_;
  ImporterMirror::Resolver resolver_;
  BarVmaRevoker vmaRevoker_;
  P2pBarManager bar_;
  std::map<std::pair<const Device*, std::uint64_t>, Grant> grants_;
  std::vector<Pa> scratch_;
  std::map<const Dmirror*, std::unique_ptr<ImporterMirror>> importers_;
  StatsGroup stats_;
  Counter& devmemMaps_;      ///< "devmem_p2p_pages": pages mapped by the devmem p2pMap
  Counter& devmemDeclined_;  ///< "devmem_p2p_declined": devmem p2pMap calls that declined the first page
  Counter& vmaMaps_;         ///< "vma_p2p_pages": pages mapped by the special vma's p2pMap
  Counter& vmaRefused_;      ///< "vma_p2p_refused": special-vma p2pMap calls refused
  Counter& unmapPages_;      ///< "p2p_unmap_pages": pages given back (both kinds)
  Counter& revokeRounds_;    ///< "revoke_clear_rounds": CLEAR rounds raised over anonymous vmas
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
