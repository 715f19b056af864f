#pragma once
// ImporterMirror: the importer pattern of the RFC on top of the hmm.rst update-lock pattern
// (hmm/mirror.h): one importing device's view of a window of a process address space, with a
// device page table, a device TLB, in-flight DMA accounting and the DMA-map step
// (hmm/hmm_dma_map.h), so that one device can reach system memory, its own memory, a peer's
// private memory or a special vma through the process address space, and obeys every
// mmu-notifier invalidation. Device models embed one; they do not reimplement the protocol.
//
// invalidate(), whatever the event (UNMAP, CLEAR, PROTECTION_*, MIGRATE of another owner,
// EXCLUSIVE, RELEASE), in this order:
//   1. takes the update lock (a non-blockable invalidation only trylocks, and returns false on
//      contention having changed nothing: the OOM-reaper path);
//   2. mmu_interval_set_seq, so a map() that read the range before cannot commit it;
//   3. zaps the device PTEs of the range and shoots the device TLB down;
//   4. waits for in-flight DMA that used those translations (the waitForDma hook: a SystemC shell
//      blocks there and charges the time; the pure core requires the hook to finish them);
//   5. drops the lock and undoes each mapping exactly once (dmaUnmapPage, devmem p2pUnmap,
//      vm_ops p2pUnmap), with no importer lock held, as the RFC demands;
//   6. only then returns.
// map() is the retry loop: readBegin, hmmRangeDmaMap under the mmap read lock, take the update
// lock, readRetry (true: undo the fresh mappings and start over), commit to the device page table.
// Teardown (unmapAll, the destructor) undoes everything left.
//
// Misbehaviour switches (one per mode the checker must catch; ImporterMisbehaviour) make the
// driver half break the contract on purpose. The checker hooks sit in the parts a driver cannot
// skip (invalidation return, device access), so a broken driver is reported, not trusted.
// Leaves out: device page-table formats and huge device pages (one entry per 4 KiB page), ATS.
// Timing: none in the pure core. What its work would take is computed from the parameters
// (walk, handle_mm_fault, DMA map per page; the device TLB invalidation; the IOMMU invalidations
// of the unmaps, from Iommu::invalidationPs) and handed to the chargeTime hook at the point where
// the kernel spends it, with the locks the kernel holds then: a SystemC shell sleeps its thread
// there (models/devices/common/importer_dma.h). The waitForDma hook waits for in-flight DMA.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "hmm/hmm_dma_map.h"
#include "hmm/mirror.h"
#include "models/cpu_mmu/mmu_notifier.h"
#include "sim/stats.h"
#include "sim/strong_types.h"

namespace hmmsim {

class Mm;
class P2pChecker;
class TraceSink;

/// Ways an importer driver can break the RFC's contract on purpose (tests of the checker).
enum class ImporterMisbehaviour {
  None,                 ///< correct driver
  IgnoreInvalidations,  ///< invalidate returns true having done nothing
  AckWithoutWaiting,    ///< zaps and unmaps but returns while DMA that used the range is in flight
  PinForever,           ///< zaps its PTEs but never gives mappings back (no p2pUnmap/dmaUnmap)
  KeepOldAddress,       ///< gives the mappings back but keeps using the old addresses (no zap)
};
const char* importerMisbehaviourName(ImporterMisbehaviour m);

struct ImporterMirrorParams {
  /// Restarts allowed per map() chunk before it gives up with Busy. Unit: restarts. Default 1000.
  unsigned maxRetries = 1000;
  /// Pages per hmm_range in map(). Unit: pages. Default 512.
  unsigned chunkPages = 512;
  /// Device TLB entries (fully associative, FIFO replacement). Unit: entries. Default 64.
  unsigned tlbEntries = 64;
  /// Map system memory the way hmm_dma_map_alloc/hmm_dma_map_pfn do since Linux 6.16: one IOVA
  /// range for the whole window (dma_iova_try_alloc), each page linked at its offset
  /// (dma_iova_link), so the window is IOVA-contiguous and a device bursts across pages whatever
  /// their frames. Only where the device translates through the IOMMU (elsewhere, and when the
  /// range cannot be allocated, pages map one by one with dma_map_page, as hmm_dma_map_alloc falls
  /// back). false: every page its own dma_map_page, as in 6.12 and the RFC. Default true (the
  /// platform models a 6.16+ kernel).
  bool iovaLink = true;
  /// Deliberate contract breach (tests of the checker). Default None.
  ImporterMisbehaviour misbehave = ImporterMisbehaviour::None;
  /// Device TLB invalidation: the driver's command to the device MMU and the wait for its
  /// completion, charged once per invalidation that zapped entries (and per commit replacing
  /// entries), with the update lock held, before the wait for in-flight DMA (which overlaps it).
  /// Unit: ps. Default 1 us (an ATS invalidation completes in ~1-2 us; a GPU MMU TLB flush is
  /// of the same order).
  std::uint64_t tlbInvalidationPs = 1'000'000;
  /// hmm_range_fault's walk of the CPU page table, per page of the range walked. Unit: ps.
  /// Default 20 ns (present pages: tens of ns each).
  std::uint64_t walkPagePs = 20'000;
  /// Each handle_mm_fault that hmm_range_fault makes for a page not yet usable (allocation and
  /// zeroing of an anonymous page, a COW copy), on top of the walk. Unit: ps. Default 500 ns.
  std::uint64_t faultPagePs = 500'000;
  /// The DMA-map step per page given an address (dma_map_page: an IOVA allocation and an IOMMU
  /// PTE write; an exporter's p2pMap; dma_iova_link). Unit: ps. Default 100 ns.
  std::uint64_t mapPagePs = 100'000;
};

/// The mirror's work a SystemC shell charges (ImporterMirror::setChargeTime).
enum class MirrorWork {
  Walk,             ///< map(): hmm_range_fault + the DMA-map step of a chunk, mmap read lock held
  TlbInvalidation,  ///< the device TLB invalidation, update lock held (a busy wait in the kernel)
  DmaUnmap,         ///< giving mappings back: the IOMMU invalidations of the unmaps, no lock held
};
const char* mirrorWorkName(MirrorWork w);

/// One translation as the device uses it.
struct DeviceTranslation {
  DmaAddr addr;  ///< what the device puts on the bus
  HmmDmaKind kind = HmmDmaKind::None;
  bool write = false;       ///< the mapping allows device writes
  std::uint64_t epoch = 0;  ///< checker epoch of the commit
  Pfn pfn;                  ///< backing frame (not for VmaP2p)
  std::uint64_t gen = 0;    ///< the frame's generation when mapped
};

class ImporterMirror final : public MmuIntervalNotifierOps {
 public:
  /// Mirrors [start, start + pages * 4 KiB) of `mm` for `imp` (whose device and DMA layer must
  /// outlive this object). `checker` (optional) receives the rule checks.
  ImporterMirror(Mm& mm, const HmmDmaImporter& imp, Va start, std::uint64_t pages,
                 const ImporterMirrorParams& params = {}, P2pChecker* checker = nullptr,
                 const std::string& statsName = "importer");
  /// unmapAll() and removes the notifier. Destroy before the Mm.
  ~ImporterMirror() override;
  ImporterMirror(const ImporterMirror&) = delete;
  ImporterMirror& operator=(const ImporterMirror&) = delete;

  /// Fault and DMA-map [start, end) (inside the window, page aligned) and commit it to the device
  /// page table; `write`: the device will write. Returns Ok; Busy (retry budget spent); Fault
  /// (a page cannot be mapped: hole, refused special vma (lastP2pError()), DMA map failure);
  /// Perm; Inval (outside the window).
  HmmStatus map(Va start, Va end, bool write);
  /// Undo every mapping (teardown). Takes the update lock.
  void unmapAll();

  /// The device MMU: TLB, then page table (filling the TLB). nullopt = device page fault (no
  /// entry, or a write through a read-only one).
  std::optional<DeviceTranslation> translate(Va va, bool write);

  /// A DMA of `len` bytes at `va` (inside one page): translate, then move bytes through the
  /// platform's resolver. The transfer is split in begin/transfer/end so that invalidations can
  /// run while it is in flight (a SystemC shell interleaves them). beginDma returns an id, or
  /// nullopt on a device page fault.
  std::optional<std::uint64_t> beginDma(Va va, bool write) {
    const std::uint64_t id = beginDmaId(va, write);
    return id ? std::optional<std::uint64_t>(id) : std::nullopt;
  }
  /// beginDma for the per-page DMA path: the id, 0 on a device page fault (ids start at 1). An
  /// optional returned from an out-of-line call is built on the stack and reloaded whole, which
  /// stalls the CPU on every page.
  std::uint64_t beginDmaId(Va va, bool write);
  /// Moves the bytes of DMA `id` (reads into `buf` or writes from it). The checker sees the
  /// access here. Returns false when the resolver cannot reach the address (IOMMU fault etc.).
  bool transferDma(std::uint64_t id, void* buf, std::size_t len);
  void endDma(std::uint64_t id);
  /// For shells that move the bytes themselves (models/devices/common/importer_dma.h): the
  /// translation DMA `id` uses (nullptr for an unknown id; valid until endDma).
  const DeviceTranslation* dmaTranslation(std::uint64_t id) const;
  /// The device accessed memory through DMA `id`: the checker's rules 1 and 2 (what transferDma
  /// checks before it moves bytes), and `bytes` counted in dma_bytes. A shell calls it when a burst
  /// is issued and again (bytes 0) when it completes, so a DMA still running after the
  /// invalidation covering it returned (AckWithoutWaiting) is reported.
  void noteDmaAccess(std::uint64_t id, std::size_t bytes);
  /// noteDmaAccess of every DMA in `ids` (one burst's pages), `bytes` counted once.
  void noteDmaAccesses(const std::vector<std::uint64_t>& ids, std::size_t bytes);
  /// A burst completed: noteDmaAccess(id, 0) and endDma(id) for every DMA in `ids`.
  void endDmas(const std::vector<std::uint64_t>& ids);
  /// Convenience: begin + transfer + end. False on a device fault or an unreachable address.
  bool dmaRead(Va va, void* buf, std::size_t len);
  bool dmaWrite(Va va, const void* buf, std::size_t len);

  /// The platform below the device: where the bytes of a DMA address the importer emitted live
  /// (IOMMU translation, BAR decode to the exporter's page...), or nullopt (fault). `t` is the
  /// translation the access used (its kind; for DevmemP2p its pfn is the exporter's page the
  /// importer means, which a platform checking rule 3 passes to P2pChecker::barAccess). Required
  /// for transferDma.
  using Resolver = std::function<std::optional<Pa>(Device& importer, DmaAddr addr, const DeviceTranslation& t,
                                                   bool write)>;
  void setResolver(Resolver r) { resolver_ = std::move(r); }
  /// Called by invalidate with the update lock held while DMAs that used [start, end) are in
  /// flight; must return once they ended (endDma). A SystemC shell waits there.
  using WaitForDma = std::function<void(ImporterMirror&, Va start, Va end)>;
  void setWaitForDma(WaitForDma w) { waitForDma_ = std::move(w); }
  /// Called where the mirror's work takes `ps` of simulated time (see MirrorWork for the locks
  /// held); a SystemC shell makes the calling thread wait that long. Unset: no time.
  using ChargeTime = std::function<void(MirrorWork what, std::uint64_t ps)>;
  void setChargeTime(ChargeTime c) { chargeTime_ = std::move(c); }
  /// Records every invalidation that reaches the window as a slice on `track` of `sink`
  /// (category hmm.notifier, nullptr: none): "invalidate <event>" from the callback's entry to its
  /// return, timed by `nowPs` (a SystemC shell: the simulated time; the wait for in-flight DMA
  /// inside it is the shell's own slice). The pure core itself takes no time.
  void setTrace(TraceSink* sink, std::string track, std::function<std::uint64_t()> nowPs) {
    trace_ = sink;
    traceTrack_ = std::move(track);
    traceNowPs_ = std::move(nowPs);
  }

  /// mmu_interval_notifier_ops.invalidate: see the header comment.
  bool invalidate(MmuIntervalNotifier& sub, const MmuNotifierRange& range, std::uint64_t curSeq) override;

  /// In-flight DMAs overlapping [start, end).
  std::size_t inFlight(Va start, Va end) const;
  /// The committed entry for `va` (None if unmapped).
  HmmDmaKind kindAt(Va va) const;
  /// The committed entry for `va` serves a device access (mapped, and writable for a write): an
  /// access there takes no device fault.
  bool mappedFor(Va va, bool write) const;
  DmaAddr addrAt(Va va) const;
  Errno lastP2pError() const { return lastP2pError_; }
  /// The driver's misbehaviour from now on (a scenario script switches it mid-run). Pages a
  /// PinForever driver kept stay pinned after switching back to None (nothing gives them back).
  void setMisbehaviour(ImporterMisbehaviour m) { params_.misbehave = m; }
  ImporterMisbehaviour misbehaviour() const { return params_.misbehave; }
  MmuIntervalNotifier& notifier() { return notifier_; }
  SleepingMutex& updateLock() { return lock_; }
  HmmDmaStats& dmaStats() { return dmaStats_; }
  StatsGroup& stats() { return stats_; }
  Device& device() { return *imp_.device; }
  /// The window's system pages are linked into one IOVA range (ImporterMirrorParams::iovaLink):
  /// DMA address = the range's start + (va - start()).
  bool iovaLinked() const { return imp_.iova != nullptr; }
  Va start() const { return start_; }
  std::uint64_t pages() const { return pages_; }

 private:
  struct Table {  // per page of the window, or of a scratch run
    std::vector<unsigned long> pfns;
    std::vector<DmaAddr> addrs;
    std::vector<HmmDmaKind> kinds;
    void resize(std::uint64_t n) {
      pfns.assign(n, 0);
      addrs.assign(n, DmaAddr(0));
      kinds.assign(n, HmmDmaKind::None);
    }
  };
  struct Dma {
    std::uint64_t id = 0;
    Va va;                     // page
    std::uint64_t offset = 0;  // byte offset of the access in the page
    bool write = false;
    DeviceTranslation t;
    std::uint64_t noteStamp = kNoStamp;  // checkStamp() when the access was noted and checked
  };
  static constexpr std::uint64_t kNoStamp = ~0ull;
  /// What a page's rule 1 and 2 checks depend on besides the page: the checker's records and
  /// reports, the frames' generations. A DMA checked when noted is not checked again at its end
  /// while the stamp is unchanged: the answer, and the report count, would be the same.
  std::uint64_t checkStamp() const;
  /// translate() into `out`; false for a device page fault (`out` then unspecified).
  bool lookup(Va va, bool write, DeviceTranslation& out);
  /// `x` = the translation page table entry `p` holds.
  void fillTranslation(std::uint64_t p, DeviceTranslation& x) const;
  struct TlbEntry {
    bool valid = false;
    Va page;
    DeviceTranslation t;
  };

  HmmStatus mapChunk(Va start, Va end, bool write);
  /// Undo the entries of `t` (a run starting at `runStart`), no lock held.
  void undo(Table& t, Va runStart, std::uint64_t n, bool released);
  void waitDma(Va start, Va end);
  /// The in-flight DMA `id`, or dmas_.end().
  std::vector<Dma>::iterator findDma(std::uint64_t id);
  /// Checker rules 1 and 2 for one device access through `d`.
  void checkAccess(const Dma& d);
  void tlbShootdown(Va start, Va end);
  void charge(MirrorWork what, std::uint64_t ps);
  /// Iommu::invalidationPs() of the importer's DMA layer (0 without one).
  std::uint64_t iommuInvalidationPs() const;
  /// What map()'s walk of `n` pages took: `faults` handle_mm_fault calls, the entries of `t`
  /// that got an address, and the IOMMU invalidations since `iommuBefore`.
  std::uint64_t walkPs(std::uint64_t n, std::uint64_t faults, const Table& t,
                       std::uint64_t iommuBefore) const;
  /// The invalidation of [s, e) by `range` that began at `startPs` returned: its trace slice.
  void traceInvalidation(const MmuNotifierRange& range, Va s, Va e, std::uint64_t zapped,
                         std::uint64_t startPs);
  std::uint64_t index(Va va) const { return (va - start_) >> kPageShift; }
  bool inWindow(Va va) const { return va >= start_ && index(va) < pages_; }
  HmmRange view(Table& t, Va runStart, std::uint64_t n);

  Mm& mm_;
  HmmDmaImporter imp_;
  DmaIovaState iova_;  // the window's IOVA range when params_.iovaLink took (imp_.iova points here)
  Va start_;
  std::uint64_t pages_;
  ImporterMirrorParams params_;
  P2pChecker* checker_;
  MmuIntervalNotifier notifier_;
  SleepingMutex lock_;
  Table pt_;  // the device page table
  std::vector<std::uint64_t> epochs_;
  std::vector<std::uint64_t> gens_;
  std::vector<TlbEntry> tlb_;  // FIFO
  /// Per window page: 1 + its slot in tlb_, 0 when not cached (the lookup is one index, not a
  /// scan of the TLB: the DMA path translates every page).
  std::vector<std::uint32_t> tlbSlot_;
  std::size_t tlbNext_ = 0;
  std::vector<Dma> dmas_;  // in flight, in id order
  std::uint64_t nextDmaId_ = 1;
  WaitQueue dmaDone_;
  Table scratch_, retired_;
  Resolver resolver_;
  WaitForDma waitForDma_;
  ChargeTime chargeTime_;
  TraceSink* trace_ = nullptr;
  std::string traceTrack_;
  std::function<std::uint64_t()> traceNowPs_;
  Errno lastP2pError_ = Errno::Ok;
  HmmDmaStats dmaStats_;
  StatsGroup stats_;
  Counter& commits_;        ///< "commits": chunks committed
  Counter& readRetries_;    ///< "read_retries": readRetry true under the lock (fresh maps undone)
  Counter& timeouts_;       ///< "timeouts": retry budget spent
  Counter& invalidations_;  ///< "invalidations": invalidate callbacks that zapped
  Counter& refused_;        ///< "refused_nonblock": non-blockable invalidations refused
  Counter& zapped_;         ///< "zapped_pages": device PTEs zapped
  Counter& tlbShootdowns_;  ///< "tlb_shootdowns": device TLB entries shot down
  Counter& dmaWaits_;       ///< "dma_waits": invalidations that waited for in-flight DMA
  Counter& tlbHits_;        ///< "tlb_hits"
  Counter& tlbMisses_;      ///< "tlb_misses"
  Counter& deviceFaults_;   ///< "device_faults": translations that found no usable entry
  Counter& dmaBytes_;       ///< "dma_bytes": bytes moved by transferDma
};

}  // namespace hmmsim
