#pragma once
// ImporterDma: the one importer data path of a device on the SystemC platform. A device moves
// bytes to or from a process VA range by DMA through the PCIe fabric with it; it does not
// reimplement any part of it.
//
// What it models, per transfer [va, va + len):
//  - the device MMU: an ImporterMirror (hmm/importer_mirror.h) over a window of the process
//    address space: device TLB, device page table, hmmRangeDmaMap on a miss. A miss is a device
//    page fault: the device charges `faultPs` (the driver's fault service), syncs (the fault
//    decides at synchronised time), and maps from the faulting page to the end of the transfer
//    (at most `faultAheadPages`), then retries. One fault also maps, where they are not mapped
//    yet, the pages up to the end of the device's whole DMA when the transfer is a piece of one
//    (issueRead/issueWrite's `dmaEnd`: an ODP NIC faults a work request's whole data segment)
//    and the aligned block of `faultAroundPages` around the faulting page (fault-around, as
//    GPU SVM drivers fault a chunk), so a device streaming page-sized transfers after an
//    invalidation takes one fault per block, not per page;
//  - bursts: consecutive pages whose DMA addresses (and frames) are contiguous and of one kind
//    are coalesced into one burst of at most `maxBurstBytes` (with the mirror's iovaLink, system
//    pages need contiguous IOVAs only: the root complex scatters the burst), issued on the device's
//    PcieDmaEngine to the DMA address: system memory through the root complex's IOMMU
//    translation stage, a peer's BAR (p2p: under a switch, or through the root complex), with
//    the fabric's timing and real bytes (the payload moves at issue, loosely timed). Pages of the
//    device's own memory (HmmDmaKind::Local) go to the local-memory hook instead;
//  - in-flight DMA: every page of a burst is one ImporterMirror DMA from issue until the burst
//    completes (its DmaIssue::donePs). An invalidation covering one of them waits, in the
//    invalidating SC_THREAD, until the burst's completion time (the waitForDma hook), so
//    mmu-notifier invalidation returns only after the device stopped using the pages;
//  - the checker: rules 1 and 2 at issue and again at completion of every page (a driver that
//    acks an invalidation without waiting is caught by the completion check); rule 3 at the
//    exporter's BAR target (ImporterDmaDirectory::watchBar: every access reaching the BAR is
//    checked against its P2pBarManager with the device page the importer's translation meant).
// Timing-only mode (`timingOnly`): no payload at all (nothing is read or written; the engine
// must be PcieDmaEngineParams::timingOnly and host memory must accept it, DramParams::acceptNoData).
// Timing: bursts as the engine charges them; a device fault costs `faultPs`, then the mirror's
// walk (ImporterMirrorParams: walkPagePs per page, faultPagePs per handle_mm_fault, mapPagePs per
// page DMA-mapped, the IOMMU invalidations of DMA unmaps) with the mmap read lock held, before
// the commit. An invalidation of the window costs the invalidating thread the device TLB
// invalidation (tlbInvalidationPs, update lock held), the wait for in-flight DMA (which overlaps
// it) and the IOMMU invalidations of its DMA unmaps (IommuParams: iotlbInvalidationLatencyPs per
// strict dma_unmap_page, plus an ATS round trip per ATS device; queued behind other threads'
// invalidations in the IOMMU's invalidation queue, Iommu::queueInvalidation) before it returns. Each charge
// is a wait of the SystemC thread doing the work (the device's after it synced; a CPU's system call, an
// exporter's revoke, which run at synchronised time), so what it decides depends on simulated time only,
// never on the quantum. Outside an SC_THREAD (elaboration, teardown) nothing is charged. Translation uses the
// device's state at its local time (temporal decoupling: an invalidation at an earlier SystemC time than the
// device's local time is seen at its next sync or fault). Leaves out: ATS/PRI (faults are handled by the
// driver, as HMM devices do), device TLB miss latency, reads of data before their completion time (the caller
// must not use read data before the result's donePs; read() and write() wait for it).

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <systemc>

#include <tlm_utils/tlm_quantumkeeper.h>

#include "hmm/importer_mirror.h"
#include "hmm/p2p_bar_manager.h"
#include "models/pcie/memory_target.h"
#include "models/pcie/pcie_transaction.h"
#include "sim/stats.h"
#include "sim/strong_types.h"

namespace hmmsim {

class PcieDmaEngine;
class PcieMemoryTarget;
class P2pChecker;
class ImporterDmaDirectory;
class TraceSink;

struct ImporterDmaParams {
  /// Largest burst issued to the DMA engine. Unit: bytes. Default 64 KiB. A positive multiple
  /// of 4 KiB.
  std::uint64_t maxBurstBytes = 64ull << 10;
  /// Time a device page fault costs before the driver maps the range (interrupt, fault
  /// decode, driver entry). Unit: ps. Default 10 us (order of a GPU replayable fault's service).
  std::uint64_t faultPs = 10'000'000;
  /// Pages one device fault maps, from the faulting page towards the end of the transfer.
  /// Unit: pages. Default 512 (2 MiB).
  std::uint64_t faultAheadPages = 512;
  /// A fault maps faultAheadPages from the faulting page even past the transfer's end (up to the
  /// window's end): a streamer issuing small transfers takes one fault per faultAheadPages, not
  /// per transfer. If that range cannot be mapped whole (a hole), the fault maps up to the
  /// transfer's end only. Default false.
  /// Not the same look-ahead as faultAroundPages, and kept beside it: this one is a driver's
  /// prefetch of a structure whose extent it knows (the NVMe queue's SQ, CQ and PRP-list pages
  /// the NIC's driver registered, NvmeViaNic: queueCmbPages pages from the faulting page, any
  /// count, forward only, one hmm_range_fault that walks pages already mapped again and may
  /// cross vmas), where fault-around is a layout-blind heuristic (an aligned power-of-2 block
  /// on both sides of the faulting page, only pages the access would fault on, inside the
  /// faulting page's vma: the kernel's do_fault_around, a GPU's SVM granularity). Mapping the
  /// queue's prefetch as a fault-around block would map the block's other pages too (walk and
  /// DMA-map time the queue never needs) and miss a queue that straddles a block boundary.
  bool faultAheadPastEnd = false;
  /// A device fault also maps the pages the access would fault on (unmapped, or read-only for a
  /// write) in the aligned block of this many pages around the faulting page (fault-around; clipped
  /// to the window and by faultAheadPages; a hole or a refusal there maps the transfer's pages only). Unit:
  /// pages. Default 1 (none): the mechanism's neutral value; each driver sets its own (withFaultAround):
  /// kKernelFaultAroundPages for the camera, the colour engine and the NIC,
  /// GpuDriverParams::kSvmGranularityPages for the GPU. A power of 2.
  std::uint64_t faultAroundPages = 1;
  /// The kernel's fault_around_bytes (64 KiB, mm/memory.c) in pages: the block a driver with no
  /// better knowledge of its device's access pattern faults around.
  static constexpr std::uint64_t kKernelFaultAroundPages = 16;
  /// These parameters with faultAroundPages = `pages` (a driver's default).
  static ImporterDmaParams withFaultAround(std::uint64_t pages) {
    ImporterDmaParams p;
    p.faultAroundPages = pages;
    return p;
  }
  /// Device faults tried for one page before the transfer fails (each retry follows an
  /// invalidation that raced with the fault). Unit: faults. Default 16.
  unsigned maxFaultRetries = 16;
  /// No payload (speed runs): nothing is read or written, only time is charged. Default false.
  bool timingOnly = false;
  /// The device MMU (ImporterMirror) parameters, misbehaviour switches included.
  ImporterMirrorParams mirror;
  /// "" when valid, else what is wrong naming the parameter.
  std::string check() const;
};

/// Outcome of one transfer.
enum class ImporterDmaStatus {
  Ok,     ///< every byte was issued (and, for read()/write(), completed)
  Fault,  ///< a page could not be mapped (hole, no permission, refused p2p, retries spent)
  Io,     ///< the fabric completed a burst with an error (UR: IOMMU fault, no route; CA)
  Inval,  ///< the range is empty or leaves the importer's window
};
const char* importerDmaStatusName(ImporterDmaStatus s);

struct ImporterDmaResult {
  ImporterDmaStatus status = ImporterDmaStatus::Ok;
  std::uint64_t donePs = 0;             ///< absolute completion of the last burst issued (0: none issued)
  std::uint64_t bytes = 0;              ///< bytes issued
  std::uint64_t bursts = 0;             ///< bursts issued
  HmmStatus mapStatus = HmmStatus::Ok;  ///< Fault: what ImporterMirror::map returned
  CplStatus cpl = CplStatus::SuccessfulCompletion;  ///< Io: the first error completion
  bool ok() const { return status == ImporterDmaStatus::Ok; }
};

/// A device's own memory, for pages of HmmDmaKind::Local: moves `len` bytes at device address
/// `addr` (data null in timing-only mode) starting at absolute time `startPs`; returns the
/// absolute completion time.
using LocalMemoryAccess = std::function<std::uint64_t(DmaAddr addr, std::uint64_t len, std::uint8_t* data,
                                                      bool write, std::uint64_t startPs)>;

class ImporterDma {
 public:
  /// Mirrors [start, start + pages * 4 KiB) of `mm` for `imp`, issuing on `engine` (its
  /// requester id names the device on the bus). `checker` and `directory` are optional; all
  /// must outlive this object, which must go before the Mm. `name` names the stats groups.
  ImporterDma(const std::string& name, Mm& mm, const HmmDmaImporter& imp, PcieDmaEngine& engine, Va start,
              std::uint64_t pages, const ImporterDmaParams& params = {}, P2pChecker* checker = nullptr,
              ImporterDmaDirectory* directory = nullptr);
  ~ImporterDma();
  ImporterDma(const ImporterDma&) = delete;
  ImporterDma& operator=(const ImporterDma&) = delete;

  /// From the device's SC_THREAD with its quantum keeper: issue the transfer and return once
  /// the last burst is issued (local time = when the engine can issue again); the bursts stay
  /// in flight until their completion. `data`: the bytes to write / the buffer to read into
  /// (ignored in timing-only mode; read data is valid from the result's donePs on). `dmaEnd`:
  /// the end of the device's DMA this transfer is a piece of (a TX descriptor's buffer read
  /// packet by packet); a device fault maps the pages up to it that are not mapped yet (default:
  /// the transfer's end).
  ImporterDmaResult issueWrite(Va va, std::uint64_t len, const std::uint8_t* data,
                               tlm_utils::tlm_quantumkeeper& qk, Va dmaEnd = Va());
  ImporterDmaResult issueRead(Va va, std::uint64_t len, std::uint8_t* data, tlm_utils::tlm_quantumkeeper& qk,
                              Va dmaEnd = Va());
  /// issueWrite/issueRead, then the caller's local time moves to the completion and the
  /// transfer's bursts are retired.
  ImporterDmaResult write(Va va, std::uint64_t len, const std::uint8_t* data,
                          tlm_utils::tlm_quantumkeeper& qk);
  ImporterDmaResult read(Va va, std::uint64_t len, std::uint8_t* data, tlm_utils::tlm_quantumkeeper& qk);
  /// Moves the caller's local time to the completion of everything in flight and retires it.
  void drain(tlm_utils::tlm_quantumkeeper& qk);
  /// Retires the bursts complete by the caller's local time (their DMAs end: the checker checks
  /// them, invalidations stop waiting for them), nothing else. Call at synchronised time.
  void retireDone(const tlm_utils::tlm_quantumkeeper& qk);

  /// The device's own memory (HmmDmaKind::Local pages). Default: bytes in PhysMem at the device
  /// address taken as a physical address, no time.
  void setLocalMemory(LocalMemoryAccess access) { local_ = std::move(access); }

  /// Bursts issued and not yet retired.
  std::size_t inFlightBursts() const { return inFlight_.size(); }
  ImporterMirror& mirror() { return mirror_; }
  PcieDmaEngine& engine() { return engine_; }
  Device& device() { return mirror_.device(); }
  const ImporterDmaParams& params() const { return params_; }
  StatsGroup& stats() { return stats_; }

 private:
  friend class ImporterDmaDirectory;
  /// Pages being coalesced into one burst.
  struct Run {
    std::vector<std::uint64_t> ids;  // ImporterMirror DMA per page
    std::vector<Pfn> pfns;           // per page: the frame the translation meant
    HmmDmaKind kind = HmmDmaKind::None;
    DmaAddr addr;           // DMA address of the first byte
    std::uint64_t len = 0;  // bytes
    std::uint8_t* data = nullptr;
    Va firstPage;
    Pfn lastPfn;
  };
  struct Burst {
    std::uint64_t seq = 0;
    std::vector<std::uint64_t> ids;
    Va first, end;             // pages [first, end)
    std::uint64_t donePs = 0;  // kIssuing while the engine issues it
  };
  static constexpr std::uint64_t kIssuing = ~0ull;
  ImporterDmaResult transfer(bool write, Va va, std::uint64_t len, std::uint8_t* data,
                             tlm_utils::tlm_quantumkeeper& qk, Va dmaEnd);
  /// Device fault at `page`: charge, sync, map [page, end) (capped), with the unmapped pages up
  /// to `dmaEnd` and around `page` (faultAroundPages) when they map. False (res filled) on failure.
  bool deviceFault(Va page, Va end, Va dmaEnd, bool write, tlm_utils::tlm_quantumkeeper& qk,
                   ImporterDmaResult& res);
  /// The fault at `page` that began at `startPs` mapped [mapStart, mapEnd) with `st`: its trace slice.
  void traceFault(std::uint64_t startPs, Va page, Va mapStart, Va mapEnd, bool write, HmmStatus st,
                  tlm_utils::tlm_quantumkeeper& qk);
  bool extends(const Run& run, const DeviceTranslation& t, DmaAddr a, std::uint64_t n) const;
  void issueRun(Run& run, bool write, tlm_utils::tlm_quantumkeeper& qk, ImporterDmaResult& res);
  /// Empties `run` for the next burst, keeping (or taking spare) vector capacity.
  void resetRun(Run& run);
  std::uint64_t issueLocal(const Run& run, bool write, tlm_utils::tlm_quantumkeeper& qk);
  /// Retire bursts completed by `ps` (all: ~0).
  void retire(std::uint64_t ps);
  void retireBurst(Burst& b);
  /// waitForDma hook: runs in the invalidating thread with the update lock held.
  void waitForBursts(Va start, Va end);
  /// chargeTime hook: the calling SC_THREAD waits `ps` (see MirrorWork for the locks held).
  void chargeMirrorWork(MirrorWork what, std::uint64_t ps);
  /// Rule 3 (ImporterDmaDirectory): the page of the peer burst being issued that the access at
  /// `busAddr` (reaching a BAR) belongs to; nullopt when no peer burst is being issued.
  std::optional<std::size_t> currentPage(std::uint64_t busAddr);

  ImporterDmaParams params_;
  PcieDmaEngine& engine_;
  Mm& mm_;
  ImporterDmaDirectory* directory_;
  ImporterMirror mirror_;
  LocalMemoryAccess local_;
  std::vector<Burst> inFlight_;
  // Spare id and frame vectors (cleared, with capacity) so bursts do not allocate once warm.
  static constexpr std::size_t kSpareVectors = 64;
  std::vector<std::vector<std::uint64_t>> spareIds_;
  std::vector<std::vector<Pfn>> sparePfns_;
  std::uint64_t nextBurst_ = 1;
  // Pages [pendFirst_, pendEnd_) have a mirror DMA (beginDma) but no burst entry yet.
  Va pendFirst_, pendEnd_;
  sc_core::sc_event progress_;    // a burst was issued (its completion time is known)
  unsigned progressWaiters_ = 0;  // threads in waitForBursts waiting on progress_
  // The burst being issued (rule 3 at a BAR target): its run and the bus address its first
  // access reached (translation keeps a burst contiguous).
  const Run* current_ = nullptr;
  std::optional<std::uint64_t> currentBus_;
  TraceSink* trace_ = nullptr;  // the engine's (PcieDmaEngine::timelineTrace)
  std::string faultTrack_, invalTrack_;
  StatsGroup stats_;
  Counter& transfers_;   ///< "transfers"
  Counter& bursts_;      ///< "bursts"
  Counter& bytes_;       ///< "bytes"
  Counter& faults_;      ///< "device_faults"
  Counter& ioErrors_;    ///< "io_errors"
  Counter& dmaWaits_;    ///< "invalidation_waits"
  Counter& waitedPs_;    ///< "invalidation_wait_ps"
  Counter& walkPs_;      ///< "walk_ps"
  Counter& tlbInvalPs_;  ///< "tlb_invalidation_ps"
  Counter& unmapPs_;     ///< "unmap_ps"
};

/// The platform's view of who is issuing what, for checker rule 3 on the SystemC path: BAR
/// targets of exporters report every access (PcieMemoryTarget::setAccessObserver), and the
/// directory names the importer (by requester id) and the device page its translation meant.
class ImporterDmaDirectory {
 public:
  explicit ImporterDmaDirectory(P2pChecker& checker);
  ImporterDmaDirectory(const ImporterDmaDirectory&) = delete;
  ImporterDmaDirectory& operator=(const ImporterDmaDirectory&) = delete;

  /// Check every access reaching `target` (an exporter's BAR whose P2pBarManager is registered
  /// with the checker: P2pChecker::registerBar). `devPageOf` gives the exporter's device page of
  /// one of its frames (nullopt: not its memory). Accesses by requesters that are not issuing
  /// through an ImporterDma are only counted (unattributed()): no importer to name.
  /// `devPageOfVa` (optional) gives the device page a special-vma address of a process maps
  /// (P2pExporter::specialDevPage): accesses through VmaP2p translations are then checked against
  /// the page the importer meant too, not only against a live window (a window moved and refilled
  /// with another chunk serves the wrong page).
  using DevPageOfPfn = std::function<std::optional<DevPage>(Pfn)>;
  using DevPageOfVa = std::function<std::optional<DevPage>(Mm&, Va)>;
  void watchBar(PcieMemoryTarget& target, DevPageOfPfn devPageOf, DevPageOfVa devPageOfVa = {});
  /// The importer issuing a burst as `requester` right now, if that burst goes to a peer (its
  /// translation is DevmemP2p or VmaP2p); nullptr otherwise (checker rule 7 names it).
  ImporterDma* issuingPeer(Bdf requester) const;
  /// BAR accesses checked (pages) and accesses by requesters the directory does not know.
  std::uint64_t checkedPages() const { return checked_; }
  std::uint64_t unattributed() const { return unattributed_; }

 private:
  friend class ImporterDma;
  void onAccess(const PcieTargetAccess& a, const DevPageOfPfn& devPageOf, const DevPageOfVa& devPageOfVa);
  P2pChecker& checker_;
  std::map<std::uint32_t, ImporterDma*> issuing_;  // requester key -> importer issuing a burst now
  std::uint64_t checked_ = 0, unattributed_ = 0;
};

}  // namespace hmmsim
