#pragma once
// P2pExporter: the exporter half of the RFC (p2p between HMM devices, posted 2019-01-29), the one
// every exporting device uses (dmirror, the GPU's VRAM, an NVMe controller memory buffer, ...).
// The device gives it its PCI function, the BAR that exposes device memory, and the mapping
// between its frames and device pages (P2pExportedMemory); the exporter does the rest:
//  - the BAR aperture, managed by a P2pBarManager (hmm/p2p_bar_manager.h): windows onto device
//    memory larger than the aperture, the exporter's policy (P2pExporterParams::policy), the
//    per-importer cap, revoke before a window is reused, and the reuseBeforeRevoke misbehaviour
//    switch for the checker's tests (ignoreMapType is the other exporter misbehaviour). With bindBarTarget
//    the windows the manager points also move in the SystemC BAR target (PcieMemoryTarget::mapWindow over a
//    PhysMem backing), so bytes a peer reads through the fabric are the bytes of the device page the manager
//    handed out;
//  - RFC 3/5, special vma: mmapSpecial() turns an mmap of the device file into a VM_IO |
//    VM_PFNMAP vma with no CPU mapping whose vm_ops p2pMap/p2pUnmap map device pages into the BAR
//    (file page specialPgoff + p = device page p);
//  - RFC 4/5, devmem p2p ops for device-private pages in ordinary vmas (installDevmem): another
//    device's hmmRangeDmaMap meets one of these pages and maps it through the BAR instead of
//    migrating it; a decline (policy, map type NOT_SUPPORTED, page not exported) makes the
//    importer migrate it to RAM (the RFC's fallback);
//  - the DMA-map step of each grant (P2pDmaMapper: bus address, or IOVA/physical through the
//    host bridge), one dma-debug record per map, undone exactly once by p2pUnmap;
//  - revocation (BarRevokeHook): before the manager takes pages away (reclaim, move, revoke,
//    reset, unplug) MMU_NOTIFY_CLEAR is raised over every virtual range that maps them: the
//    special vmas' (BarVmaRevoker: unmap_mapping_range) and, for device-private pages in
//    anonymous vmas, the ranges the rmap walk finds (one round per run of adjacent pages);
//  - checker rule 3: the BAR manager is registered with the P2pChecker; resolvePeer() is the
//    peer-access check a pure-core fabric calls (checkPeerAccess for a SystemC data path).
//
// Deliberate differences and limits:
//  - Revocation of device-private pages walks the rmap and raises CLEAR over each mapping; no
//    kernel API does exactly that (the RFC left it to the exporter), see docs/fidelity.md.
//  - Time (setTimeCharger; bindBarTarget installs a SystemC wait): pointing a window at a chunk
//    costs windowProgramPs, taken by the thread whose map or move needed it once the BAR manager
//    returned (the manager calls the programmer with the window off its lists, where no thread may
//    sleep), so the target's window moves at once and the thread waits after; a revoke's rmap walk
//    costs rmapWalkPagePs per device page it looks up, before its CLEAR rounds.
//  - A freed window keeps showing its old chunk in the SystemC target (hardware keeps its last
//    programming); reaching it is a rule-3 violation the checker reports.
// Timing: none in the pure core; with a time charger, window programming and rmap walks (above).
// The data path's timing is the fabric's and the BAR target's.

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "hmm/p2p.h"
#include "hmm/p2p_bar_manager.h"
#include "hmm/p2p_bar_vma_revoker.h"
#include "models/cpu_mmu/vm_operations.h"
#include "sim/errno.h"
#include "sim/stats.h"
#include "sim/strong_types.h"

namespace hmmsim {

class DeviceMemory;
class Mm;
class P2pChecker;
class P2pDmaMapper;
class PciDev;
class PcieMemoryTarget;
class PhysMem;

/// The device memory an exporter exports, as the device lays it out: device page p is byte
/// p * 4 KiB of the memory behind the BAR. Implemented by the device (dmirror: its chunks in
/// creation order; the GPU: VRAM, contiguous). Both may be called from any context.
class P2pExportedMemory {
 public:
  virtual ~P2pExportedMemory() = default;
  /// The device page frame `pfn` holds, or nullopt (not memory this exporter exports).
  virtual std::optional<DevPage> devPageOf(Pfn pfn) = 0;
  /// The frame behind device page `p`, or nullopt (not backed right now, e.g. a removed chunk).
  virtual std::optional<Pfn> pfnOf(DevPage p) = 0;
};

/// How a device exports its memory (P2pExporter). Every field has a default.
struct P2pExporterParams {
  /// The BAR of the PCI function that exposes device memory. Unit: BAR index 0-5. Default 2.
  int bar = 2;
  /// Bytes of that BAR used as the aperture (from apertureOffset). Unit: bytes. Default 0 = the
  /// rest of the BAR. A resizable BAR as large as device memory plus policy Unlimited exports
  /// everything.
  std::uint64_t apertureBytes = 0;
  /// Where the aperture starts in the BAR (the `offset` of pci_p2pdma_add_resource(pdev, bar,
  /// size, offset); below it the BAR holds something else, e.g. registers or a firmware area).
  /// The BAR manager's windows, the bus addresses importers get and the SystemC BAR target's
  /// window mappings all start there. Unit: bytes. Default 0. A multiple of windowBytes, below
  /// the BAR's size.
  std::uint64_t apertureOffset = 0;
  /// BAR window granularity (what one window register maps). Unit: bytes. Default 2 MiB.
  std::uint64_t windowBytes = 2ull << 20;
  /// The exporter's window policy (hmm/p2p_bar_manager.h BarPolicy). Default LruReclaim.
  BarPolicy policy = BarPolicy::LruReclaim;
  /// PerImporterCap: most pages one importer may hold. Unit: pages. Default 0 (required > 0 with
  /// that policy).
  std::uint64_t importerCapPages = 0;
  /// Misbehaviour (checker tests): reuse a window without revoking its importers. Default false.
  bool reuseBeforeRevoke = false;
  /// Misbehaviour (checker rule 7): p2p_map hands every importer the BAR's bus address
  /// (pci_bus_address() + offset) without asking pci_p2pdma_map_type(), as drivers written for
  /// "both devices under one switch" do; across an ACS redirect to a host bridge without p2p
  /// support (NOT_SUPPORTED) the importer's requests then meet Unsupported Request. It sits on the
  /// exporter because in the RFC only the exporter computes the peer address (the importer gets
  /// it from p2p_map and cannot ignore a map type it never sees). Default false.
  bool ignoreMapType = false;
  /// File page offset of device page 0 in a special-vma mmap of the device file (mmap offset /
  /// 4 KiB). Unit: pages. Default 0.
  std::uint64_t specialPgoff = 0;
  /// Pointing one BAR window at a chunk of device memory: the driver's window register (or BAR
  /// page-table) writes and the read-back that flushes them. Only an aperture smaller than device
  /// memory re-points windows (one covering it maps device memory 1:1 at probe: free). Charged
  /// through the time charger. Unit: ps. Default 1 us.
  std::uint64_t windowProgramPs = 1'000'000;
  /// A revoke's rmap walk (rmap_walk_anon: the anon_vma lock, its interval tree, each mapping's
  /// page table) per device page it looks up, before the CLEAR rounds it raises. Charged through
  /// the time charger. Unit: ps. Default 100 ns.
  std::uint64_t rmapWalkPagePs = 100'000;
};

/// One device's exporter half. Not copyable (the BAR manager, vmas and DeviceMemory point at it).
class P2pExporter final : public DevmemP2pOps, public VmOperations, public BarRevokeHook {
 public:
  /// "" when `params` fit PCI function `pci` and `deviceMemBytes` of device memory; otherwise
  /// what is wrong, naming the parameter (the BAR, its size or alignment, the BAR manager's).
  static std::string check(PciDev& pci, const P2pExporterParams& params, std::uint64_t deviceMemBytes);

  /// `name`: the exporting device (stats group `name` + ".p2p", BAR manager `name` + ".bar",
  /// checker reports). `params` must pass check() (asserted). `mem`, `pm`, `mapper` and `checker`
  /// (may be nullptr) must outlive the exporter. Registers the BAR with the checker.
  P2pExporter(const std::string& name, PciDev& pci, const P2pExporterParams& params,
              std::uint64_t deviceMemBytes, P2pExportedMemory& mem, PhysMem& pm, P2pDmaMapper& mapper,
              P2pChecker* checker);
  /// Unregisters from the checker and from the DeviceMemory installDevmem named.
  ~P2pExporter() override;
  P2pExporter(const P2pExporter&) = delete;
  P2pExporter& operator=(const P2pExporter&) = delete;

  /// Install the devmem p2p ops on `devmem` (RFC 4/5): its device-private pages become
  /// reachable by importers. Undone by the destructor.
  void installDevmem(DeviceMemory& devmem);
  /// Drive the SystemC BAR target from the BAR manager: each window the manager points at a
  /// chunk is mapped with target.mapWindow(window offset, chunk offset) (the resident ones now).
  /// `target` must be backed (setBacking) by the PhysMem range that holds device page 0 at its
  /// device offset 0, claim the aperture from its first byte, and outlive the exporter. The BAR
  /// manager's events are then time-stamped with the SystemC time (P2pBarManager::setTimeSource).
  /// (Defined in p2p_exporter_bar_target.cpp: only its users link SystemC.)
  void bindBarTarget(PcieMemoryTarget& target);
  /// What a window register write does to the hardware: point aperture bytes
  /// [apertureOffset, apertureOffset + bytes) at device-memory bytes [deviceOffset, ...).
  /// Returns Ok or why the BAR refused (asserted: a refusal is a simulator bug).
  using WindowProgrammer =
      std::function<Errno(std::uint64_t apertureOffset, std::uint64_t deviceOffset, std::uint64_t bytes)>;
  /// The general form of bindBarTarget: `program` is called for every resident window now and
  /// each time the manager points a window at a chunk. Empty: stop.
  void setWindowProgrammer(WindowProgrammer program);
  /// How the exporter's own work takes simulated time: `wait(ps)` delays the calling thread
  /// (bindBarTarget installs a SystemC wait that ignores calls outside an SC_THREAD). Empty: the
  /// work is free (pure core). Installed after the resident windows were programmed.
  void setTimeCharger(std::function<void(std::uint64_t ps)> wait) { wait_ = std::move(wait); }
  /// The calling thread takes the window programming owed since the last call (the BAR manager's
  /// map or move has returned). p2pMap and revokePages do it; callers of bar() that map or move
  /// windows themselves (exporter events) must too.
  void settleWindowTime();

  // ---- devmem p2p ops (RFC 4/5) ---------------------------------------------------------------
  /// Maps the leading run of exported pages through the BAR (one BAR request per run of
  /// consecutive device pages of one access kind); 0 = declined (the importer falls back to RAM).
  std::uint64_t p2pMap(DeviceMemory& devmem, Device& importer, Va addr, const unsigned long* hmmPfns,
                       std::uint64_t npages, DmaAddr* pas, bool write) override;
  std::uint64_t p2pUnmap(DeviceMemory& devmem, Device& importer, Va addr, const unsigned long* hmmPfns,
                         std::uint64_t npages, const DmaAddr* pas) override;

  // ---- the special vma (RFC 3/5) -------------------------------------------------------------
  /// f_op->mmap of device memory: file page specialPgoff + p is device page p. Ok; NoDev (the
  /// device was unplugged); Inval (the pgoff is below specialPgoff, or a page is beyond device
  /// memory or not backed).
  Errno mmapSpecial(Vma& vma);
  void open(Vma& vma) override;
  void close(Vma& vma) override;
  bool hasFault() const override { return false; }
  bool hasP2p() const override { return true; }
  /// Ok; Perm (write into a vma without VM_WRITE); NoDev (a page's backing went since the mmap);
  /// the BAR manager's refusal (OpNotSupp, NoSpc, Busy, Io, NoDev, Inval); OpNotSupp (map type
  /// NOT_SUPPORTED between the two functions). Nothing stays mapped on failure.
  Errno p2pMap(Vma& vma, Device& importer, Va start, Va end, DmaAddr* pa, bool write) override;
  /// Ok; Inval when a page was not mapped for `importer` at that address.
  Errno p2pUnmap(Vma& vma, Device& importer, Va start, Va end, const DmaAddr* pa) override;
  const char* name() const override { return "p2p_exporter"; }

  // ---- revocation ------------------------------------------------------------------------------
  /// BarRevokeHook: MMU_NOTIFY_CLEAR over every virtual range mapping device pages
  /// [first, first + npages): special vmas, and anonymous vmas holding them (rmap walk).
  void revoke(DevPage first, std::uint64_t npages, BarEvent why) override;
  /// Revoke every importer's hold on [first, first + npages) (clamped to device memory); before
  /// the device frees, moves or removes those pages.
  BarRevokeResult revokePages(DevPage first, std::uint64_t npages);

  // ---- peer accesses -------------------------------------------------------------------------
  /// Checker rule 3 for one peer access of `importer` at bus address `bus` (len bytes), which
  /// meant device page `*expected` (nullptr: unknown, a special-vma access). Reports a violation
  /// to the checker; returns the manager's answer about the address alone (legal: inside a live
  /// window, whatever page it maps now: the data path reaches that page).
  BarAccessCheck checkPeerAccess(const Device& importer, BusAddr bus, std::uint64_t len,
                                 const DevPage* expected);
  /// A pure-core fabric's peer access: checkPeerAccess, then the physical address of the byte
  /// the live window maps at `bus`. nullopt: outside the aperture or any live window, or the page
  /// is not backed. Counted in "peer_accesses".
  std::optional<Pa> resolvePeer(const Device& importer, BusAddr bus, const DevPage* expected);

  /// Records the BAR manager's events (P2pBarManager::setTrace) on track "device.<name>.bar" of
  /// `sink` (nullptr: none); bindBarTarget times them with the simulated clock.
  void setTrace(TraceSink* sink) { bar_.setTrace(sink, "device." + name_ + ".bar"); }

  /// The device page that address `va` of `mm` maps when it lies in one of this exporter's
  /// special vmas (checker rule 3: the page an importer's VmaP2p translation meant); nullopt
  /// otherwise.
  std::optional<DevPage> specialDevPage(Mm& mm, Va va);

  P2pBarManager& bar() { return bar_; }
  BarVmaRevoker& vmaRevoker() { return vmaRevoker_; }
  PciDev& pci() { return pci_; }
  int barIndex() const { return params_.bar; }
  const P2pExporterParams& params() const { return params_; }
  std::uint64_t devicePages() const { return bar_.params().deviceMemBytes >> kPageShift; }
  std::optional<DevPage> devPageOf(Pfn pfn) { return mem_.devPageOf(pfn); }
  std::optional<Pfn> pfnOf(DevPage p) { return mem_.pfnOf(p); }
  /// Live p2p DMA grants (one per (importer, address) with any maps outstanding).
  std::size_t grantCount() const { return grants_.size(); }
  /// Counters: "devmem_p2p_pages", "devmem_p2p_declined", "vma_p2p_pages", "vma_p2p_refused",
  /// "p2p_unmap_pages", "revoke_clear_rounds", "peer_accesses", "window_programs",
  /// "window_program_ps", "rmap_walk_ps".
  StatsGroup& stats() { return stats_; }

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
  /// importer's DMA space; on failure gives the rest back to the manager and returns the count
  /// that made it.
  std::uint64_t dmaMapPages(Device& importer, DevPage first, std::uint64_t n, const Pa* pa, DmaAddr* out,
                            bool write);
  /// Give back one grant (DMA unmap + BAR unmap). False when (importer, addr) holds none.
  bool ungrant(Device& importer, DmaAddr addr);
  /// Window `w` now maps chunk `chunk`: program the hardware.
  void programWindow(BarWindowIdx w, std::uint64_t chunk);
  /// The device page `p` if it is exported (backed and inside device memory).
  bool exported(DevPage p) { return p.value() < devicePages() && mem_.pfnOf(p).has_value(); }

  std::string name_;
  PciDev& pci_;
  P2pExporterParams params_;
  P2pExportedMemory& mem_;
  PhysMem& pm_;
  P2pDmaMapper& mapper_;
  P2pChecker* checker_;
  DeviceMemory* devmem_ = nullptr;
  WindowProgrammer program_;
  std::function<void(std::uint64_t)> wait_;  ///< the time charger (setTimeCharger)
  std::uint64_t owedPs_ = 0;                 ///< window programming not yet taken by a thread
  BarVmaRevoker vmaRevoker_;
  P2pBarManager bar_;
  std::map<std::pair<const Device*, std::uint64_t>, Grant> grants_;
  std::vector<Pa> scratch_;
  StatsGroup stats_;
  Counter& devmemMaps_;       ///< "devmem_p2p_pages": pages mapped by the devmem p2pMap
  Counter& devmemDeclined_;   ///< "devmem_p2p_declined": devmem p2pMap calls that declined the first page
  Counter& vmaMaps_;          ///< "vma_p2p_pages": pages mapped by the special vma's p2pMap
  Counter& vmaRefused_;       ///< "vma_p2p_refused": special-vma p2pMap calls refused
  Counter& unmapPages_;       ///< "p2p_unmap_pages": pages given back (both kinds)
  Counter& revokeRounds_;     ///< "revoke_clear_rounds": CLEAR rounds raised over anonymous vmas
  Counter& peerAccesses_;     ///< "peer_accesses": peer accesses resolved through resolvePeer
  Counter& windowPrograms_;   ///< "window_programs": BAR target windows reprogrammed
  Counter& windowProgramPs_;  ///< "window_program_ps": time charged for window programming
  Counter& rmapWalkPs_;       ///< "rmap_walk_ps": time charged for revokes' rmap walks
};

}  // namespace hmmsim
