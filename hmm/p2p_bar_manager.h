#pragma once
// P2pBarManager: an exporting device's BAR aperture, managed as windows onto a device memory that
// is larger than the aperture. The reusable half of the RFC's exporter side: a driver's p2pMap
// (special vma, RFC 3/5) or devmem p2pMap (RFC 4/5) asks it for the bus/physical address of each
// device page; its p2pUnmap gives them back; the exporter revokes, moves, resets or unplugs at
// any time, and every such event first makes the importers of exactly the affected pages stop
// (through the BarRevokeHook the exporter implements with mmu-notifier invalidation).
//
// What it models
//  - The aperture [barPa, barPa + apertureBytes) (CPU physical) = [barBus, ...) (PCI bus),
//    cut into windows of windowBytes. A window maps one aligned, windowBytes-sized chunk of device
//    memory (what a GPU's BAR1 page table or an NVMe CMB's window register does). A device page's
//    BAR address is its window's base plus its offset in the chunk.
//  - The exporter's policy (BarPolicy): unlimited (the aperture covers all device memory),
//    LRU reclaim (the default), a per-importer cap on top of LRU, refuse when every window is held,
//    always refuse. The policy and the final decision are the exporter's alone (RFC cover letter).
//  - Per-importer, per-page mapping counts: what p2pMap handed out and p2pUnmap has not yet
//    given back. A window is *busy* while any importer holds one of its pages, *idle* when it is
//    resident but nobody holds a page (its mapping is cached), *free* when it maps nothing.
//  - Reclaim and move revoke first: before a busy window is re-pointed, the hook is called for each
//    maximal run of held pages in it (exactly the affected ranges, nothing more), the importers
//    obey by calling p2pUnmap, and only a window whose pages are all given back is reused. A
//    window an importer refuses to give back (pins) is not reused; it is skipped.
//  - Exporter-initiated events at any time: revoke a page range; move one window; defragment
//    (compact resident windows to the start of the aperture); device reset (revoke everything,
//    maps fail with EIO until resetEnd, then windows are rebuilt on demand: addresses may change);
//    hot-unplug (revoke everything, every later map fails with ENODEV, unmap still works).
//  - The query checker rule 3 needs (checkAccess): is a bus/physical address range inside a live
//    window (and, if the accessor says which device page it meant, does the window still map it);
//    if not, which event took it away, and when.
//  - A misbehaviour switch for the checker's tests: reuse a window without revoking its importers.
//
// What it leaves out
//  - Timing: none (pure core). Window reprogramming costs nothing here; a SystemC shell charges it.
//  - The PCI side: the caller passes the aperture's CPU and bus base (from PciBar / the
//    p2pdma provider's busOffset); this class does not depend on models/pcie, so the same window
//    manager serves the RFC's p2pMap and the later upstream models (p2pdma pages, dma-buf).
//  - Whether the importer may reach the BAR at all (p2pdma map type, ACS, IOMMU): the caller's
//    DMA-map step decides that and turns the physical address into a bus address or IOVA.
//  - Partial windows: device memory is handled in whole windowBytes chunks (its size is rounded up).
//
// Hot path: a map or unmap of pages whose window is resident does no allocation (windows sit on
// Boost.Intrusive lists; counts are preallocated per aperture page). The first map by a new
// importer allocates that importer's count array once.
//
// Reentrancy: map() may call the revoke hook, whose invalidation makes importers call unmap() on
// this same manager before the hook returns. That is the expected flow and is supported; a window
// being revoked is on no list, so nothing else can pick it meanwhile. A map() reaching a page whose
// window is being revoked by another context (SystemC: the hook slept) returns Racing (EBUSY:
// start over, as hmm_range_fault does for an invalidation in flight).

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <boost/intrusive/list.hpp>

#include "sim/errno.h"
#include "sim/stats.h"
#include "sim/strong_types.h"
#include "sim/trace.h"

namespace hmmsim {

class Device;

/// Index of a page of an exporter's device memory: device byte offset >> PAGE_SHIFT.
using DevPage = Index<struct DevPageTag>;
/// Index of a BAR window: aperture byte offset / windowBytes.
using BarWindowIdx = Index<struct BarWindowTag>;

/// The exporter's mapping policy (its choice; the RFC leaves policy to the exporter).
enum class BarPolicy {
  /// Default. The aperture is a cache of windows: a miss takes a free window, else the least
  /// recently used idle one, else the least recently used busy one after revoking its importers.
  /// A request succeeds whenever the windows it needs fit in the aperture, so the RFC's
  /// predictability rule holds: a range that mapped once maps again (maybe at another address).
  LruReclaim,
  /// The aperture covers all device memory (a large or resized BAR): every chunk has a fixed
  /// window from construction on, nothing is ever reclaimed, every map succeeds. Requires
  /// apertureBytes >= deviceMemBytes. Predictable.
  Unlimited,
  /// LruReclaim, plus: an importer may hold at most importerCapPages pages; a request beyond the
  /// cap is refused (OverCap) and the caller falls back to system memory (Glisse's "cap N p2p
  /// pages, then fall back to RAM"). Breaks predictability: a range that mapped once is refused
  /// after the importer filled its cap with other pages.
  PerImporterCap,
  /// Never revokes: a miss takes a free or idle window; when every window is held by importers
  /// the request is refused (NoWindow). Breaks predictability: a range that mapped once and was
  /// invalidated is refused while others hold every window.
  RefuseWhenBusy,
  /// Declines every map (Refused): an exporter that does not do p2p. The devmem caller falls back
  /// to system memory; a special-vma caller gets an error. Predictable vacuously.
  AlwaysRefuse,
};
/// "lru_reclaim", "unlimited", "per_importer_cap", "refuse_when_busy", "always_refuse".
const char* barPolicyName(BarPolicy p);

/// What took a window (or a device page's place in it) away; also why the hook is called.
enum class BarEvent {
  None,       ///< nothing: the window never mapped anything (or the address is outside the aperture)
  Reclaimed,  ///< the window was re-pointed at another chunk by a policy reclaim
  Moved,      ///< the window's chunk moved to another window (moveWindow / defragment)
  Revoked,    ///< the exporter revoked a page range (revokeRange); the window stayed resident
  Reset,      ///< device reset: every window was torn down
  Unplugged,  ///< hot-unplug: every window was torn down for good
  Forced,     ///< misbehaviour: reused while importers still held pages (no revoke)
};
/// "none", "reclaimed", "moved", "revoked", "reset", "unplugged", "forced".
const char* barEventName(BarEvent e);

/// Outcome of P2pBarManager::map.
enum class BarMapStatus {
  Mapped,      ///< every requested page is mapped (Errno::Ok)
  Refused,     ///< AlwaysRefuse: the exporter declines p2p (EOPNOTSUPP)
  OverCap,     ///< PerImporterCap: the importer would exceed importerCapPages (ENOSPC)
  NoWindow,    ///< no window could be had: RefuseWhenBusy with every window held, the request
               ///< alone needs more windows than the aperture has, or every candidate window is
               ///< pinned by an importer that did not give it back when revoked (ENOSPC)
  Racing,      ///< the page's window is being revoked by another context right now (EBUSY: start over)
  Resetting,   ///< a device reset is in progress (EIO)
  Gone,        ///< the device was hot-unplugged (ENODEV)
  OutOfRange,  ///< a page is beyond device memory, or npages == 0 (EINVAL)
};
/// "mapped", "refused", "over_cap", "no_window", "racing", "resetting", "gone", "out_of_range".
const char* barMapStatusName(BarMapStatus s);
/// The kernel error code a p2pMap returns for `s` (Errno::Ok for Mapped).
Errno barMapErrno(BarMapStatus s);

/// How map() treats a request it can only partly satisfy.
enum class BarMapMode {
  AllOrNothing,  ///< special-vma p2pMap: on failure nothing stays mapped (pages == 0)
  Prefix,        ///< devmem p2pMap: keep the pages mapped before the first failure; pages = their count
};

/// Result of P2pBarManager::map.
struct BarMapResult {
  BarMapStatus status = BarMapStatus::Mapped;
  std::uint64_t pages = 0;  ///< pages mapped from `first` (all of them when Mapped)
  Errno err() const { return barMapErrno(status); }
  bool ok() const { return status == BarMapStatus::Mapped; }
};

/// Outcome of P2pBarManager::unmap.
enum class BarUnmapStatus {
  Unmapped,    ///< every page was held by the importer and is given back
  NotMapped,   ///< some page was not held by this importer (nothing changed for those pages;
               ///< the others were given back): an unbalanced p2pUnmap, counted in stats
  OutOfRange,  ///< a page is beyond device memory, or npages == 0 (nothing changed)
};
const char* barUnmapStatusName(BarUnmapStatus s);

/// Answer of P2pBarManager::checkAccess (checker rule 3: no peer access outside a live window).
struct BarAccessCheck {
  bool legal = false;          ///< the whole range is inside one live window (mapping `expected`, if given)
  bool inAperture = false;     ///< the start address is inside the aperture at all
  bool crossesWindow = false;  ///< the range runs past the end of its window (never legal)
  bool wrongPage = false;      ///< the window is live but maps another device page than `expected`
  DevPage expectedPage;        ///< the page the accessor meant (when given)
  BarWindowIdx window;         ///< the window the start address falls in (when inAperture)
  DevPage page;                ///< the device page the start address reaches (when the window is live)
  BarEvent cause = BarEvent::None;  ///< when !legal: the last event that took the window away
  std::uint64_t causeTimePs = 0;    ///< when that event happened (the time source's value)
  std::uint64_t causeSeq = 0;       ///< the manager's event number of that event (1, 2, ...)
  /// For a violation's cause text: "window 3 reclaimed at 1200000ps (bar event #7)",
  /// "outside the BAR aperture", "window 3 never mapped", "window 3 maps page 0x2400, not 0x400".
  std::string describe() const;
};

/// Result of an exporter-initiated revoke/move/reset/unplug.
struct BarRevokeResult {
  std::uint64_t pagesRevoked = 0;  ///< held pages the hook was called for
  std::uint64_t hookCalls = 0;     ///< revoke() calls made (one per maximal run of held pages)
  std::uint64_t pagesPinned = 0;   ///< pages still held after the hook returned (importers that
                                   ///< did not call p2pUnmap: misbehaving, or non-blockable refusal)
  Errno err = Errno::Ok;           ///< Ok, or why the operation did nothing (Inval, Busy, NoDev)
};

/// Implemented by the exporter driver. The manager calls it before it takes device pages away
/// from the importers that hold them.
class BarRevokeHook {
 public:
  virtual ~BarRevokeHook() = default;
  /// Make every importer stop using device pages [first, first + npages) before returning.
  /// Contract: raise mmu-notifier invalidation over every virtual range that maps those pages —
  /// for a special vma, zap_vma_ptes / unmap_mapping_range of the vma range whose pgoff maps them
  /// (MMU_NOTIFY_CLEAR, raised even where no CPU pte exists; see BarVmaRevoker); for device
  /// memory in a regular vma, the range where those pages are mapped. Importers obey by calling
  /// p2pUnmap, which reaches P2pBarManager::unmap before the invalidation returns. Pages still
  /// held when revoke() returns are counted as pinned and their window is not reused.
  /// `why` is Reclaimed, Moved, Revoked, Reset or Unplugged.
  virtual void revoke(DevPage first, std::uint64_t npages, BarEvent why) = 0;
};

/// Parameters of one exporter BAR (P2pBarManager). Every field has a default.
struct P2pBarParams {
  /// CPU physical address of the aperture's first byte (pci_resource_start(bar) + offset).
  /// Default 0x4000000000. Must be windowBytes-aligned.
  Pa barPa = Pa(0x40'0000'0000ull);
  /// PCI bus address of the aperture's first byte (pci_bus_address(bar) + offset): what a peer
  /// puts on the bus for a BUS_ADDR map type. Default 0x4000000000 (bus offset 0).
  BusAddr barBus = BusAddr(0x40'0000'0000ull);
  /// Aperture size. Unit: bytes. Default 256 MiB. A positive multiple of windowBytes.
  std::uint64_t apertureBytes = 256ull << 20;
  /// Window granularity. Unit: bytes. Default 2 MiB. A power of two, at least 4 KiB.
  std::uint64_t windowBytes = 2ull << 20;
  /// Device memory exported through the aperture. Unit: bytes. Default 1 GiB. Positive; rounded
  /// up to whole windows.
  std::uint64_t deviceMemBytes = 1ull << 30;
  /// The exporter's policy. Default LruReclaim.
  BarPolicy policy = BarPolicy::LruReclaim;
  /// PerImporterCap: most pages one importer may hold. Unit: pages. Default 0 (must be > 0 with
  /// that policy; ignored by the others).
  std::uint64_t importerCapPages = 0;
  /// Misbehaviour (checker tests only): reclaim and move re-point busy windows without calling
  /// the revoke hook, dropping the importers' counts (event Forced). Default false.
  bool reuseBeforeRevoke = false;

  /// "" when valid; otherwise what is wrong, naming the parameter and the fix.
  std::string check() const;
};

/// One exporter BAR's windows. Not copyable (importers and hooks point at it).
class P2pBarManager {
 public:
  /// `params` must pass check() (asserts otherwise: validation belongs to the config layer).
  /// `hook` (not owned, may be set later with setRevokeHook) must outlive the manager.
  /// `statsName`: the stats group, e.g. "top.gpu0.bar1".
  P2pBarManager(const P2pBarParams& params, BarRevokeHook* hook, const std::string& statsName);
  ~P2pBarManager();
  P2pBarManager(const P2pBarManager&) = delete;
  P2pBarManager& operator=(const P2pBarManager&) = delete;

  void setRevokeHook(BarRevokeHook* hook) { hook_ = hook; }
  /// The clock used to time-stamp events for checkAccess (SystemC: sc_time_stamp in ps). Default
  /// none: times are 0.
  void setTimeSource(std::function<std::uint64_t()> nowPs) { nowPs_ = std::move(nowPs); }
  /// Records the manager's events on `sink` (category hmm.p2p, track `track`; nullptr: none),
  /// timed by the time source: a slice per revoke hook call ("revoke (<why>)", the importers'
  /// invalidations inside it), per revokeRange, moveWindow, busy-window reclaim, reset and
  /// unplug around the hook calls they make; an instant per window (re)programming.
  void setTrace(TraceSink* sink, std::string track) {
    trace_ = sink;
    traceTrack_ = std::move(track);
  }
  /// Called each time a window is pointed at a chunk (a fill, a reclaim, a move, the Unlimited
  /// identity windows, a rebuild after reset): the driver's write of the window register, which a
  /// SystemC BAR target follows (PcieMemoryTarget::mapWindow). `chunk` is the device memory
  /// chunk (device byte offset / windowBytes). Default none. Must not call back into the manager.
  void setWindowObserver(std::function<void(BarWindowIdx, std::uint64_t chunk)> f) {
    windowObserver_ = std::move(f);
  }

  // ---- what the exporter's p2pMap / p2pUnmap call ---------------------------------------------

  /// Map device pages [first, first + npages) for `importer`: each page gets a window (policy),
  /// the importer's count on it goes up, and out[i] (if `out` is non-null; npages entries)
  /// receives the CPU physical address of page first + i in the aperture (busOf() gives the bus
  /// address). A page mapped twice (two vmas, or a re-map) is counted twice and needs two unmaps.
  /// May revoke other importers' pages first (LruReclaim/PerImporterCap), never pages this same
  /// request mapped. Returns the status and how many pages are mapped (see BarMapMode).
  BarMapResult map(const Device& importer, DevPage first, std::uint64_t npages, Pa* out,
                   BarMapMode mode = BarMapMode::AllOrNothing);

  /// Give back pages [first, first + npages) that `importer` mapped: each count goes down; a
  /// window whose pages are all given back becomes idle (stays resident, its addresses stay valid
  /// for the next map). Works after reset/unplug too (pages taken away by those are already
  /// dropped: giving them back again is NotMapped).
  BarUnmapStatus unmap(const Device& importer, DevPage first, std::uint64_t npages);

  // ---- exporter-initiated events (any time) -----------------------------------------------

  /// Revoke every importer's hold on [first, first + npages) (hook with BarEvent::Revoked per
  /// maximal held run). Windows stay resident: importers that map again get the same addresses.
  /// err: Ok, Inval (range beyond device memory or empty).
  BarRevokeResult revokeRange(DevPage first, std::uint64_t npages);
  /// Move the chunk mapped by window `from` to free window `to` (revoking `from`'s importers
  /// first, BarEvent::Moved). err: Ok; Inval (index out of range, `from` maps nothing, `to` is not
  /// free, from == to, or Unlimited policy whose windows are fixed); Busy (importers pinned pages
  /// of `from`: nothing moved); NoDev (unplugged); Io (reset in progress).
  BarRevokeResult moveWindow(BarWindowIdx from, BarWindowIdx to);
  /// Compact the resident windows to the lowest window indices, in index order, with moveWindow
  /// (a window with pinned pages stays where it is). pagesRevoked/hookCalls/pagesPinned sum the moves.
  BarRevokeResult defragment();
  /// Device reset, first half: revoke everything (BarEvent::Reset) and tear every window down;
  /// maps fail with Resetting until resetEnd(). Pins left by misbehaving importers are dropped.
  BarRevokeResult resetBegin();
  /// Device reset, second half: windows are free and are filled again on demand (Unlimited:
  /// the identity windows are rebuilt). No effect after unplug.
  void resetEnd();
  /// resetBegin() + resetEnd().
  BarRevokeResult reset();
  /// Hot-unplug: revoke everything (BarEvent::Unplugged), tear every window down; every later
  /// map returns Gone (ENODEV); unmap keeps working so importers can finish their teardown.
  BarRevokeResult unplug();

  // ---- queries ----------------------------------------------------------------------------

  /// Checker rule 3: is [addr, addr + len) inside one live window, and (if `expected` is given)
  /// does that window still map device page `expected` at that address? See BarAccessCheck.
  BarAccessCheck checkAccess(BusAddr addr, std::uint64_t len, const DevPage* expected = nullptr) const;
  /// The same for an access by CPU physical address (THRU_HOST_BRIDGE with the IOMMU off).
  BarAccessCheck checkAccess(Pa addr, std::uint64_t len, const DevPage* expected = nullptr) const;

  /// The bus address of an aperture physical address (Pa + the BAR's bus offset).
  BusAddr busOf(Pa pa) const { return BusAddr(pa.value() - params_.barPa.value() + params_.barBus.value()); }
  /// The aperture physical address of a bus address.
  Pa paOfBus(BusAddr bus) const { return Pa(bus.value() - params_.barBus.value() + params_.barPa.value()); }

  /// The window that maps the chunk of `page`, if resident (or being revoked).
  bool windowOf(DevPage page, BarWindowIdx* out) const;
  /// The chunk window `w` maps (resident, or being revoked): true and *chunk set; false when the
  /// window is free or out of range.
  bool chunkOfWindow(BarWindowIdx w, std::uint64_t* chunk) const;
  /// Pages `importer` holds (mapped and not yet given back), counted with multiplicity.
  std::uint64_t heldPages(const Device& importer) const;
  /// Total held pages over all importers.
  std::uint64_t heldPages() const { return heldTotal_; }
  std::uint64_t windowCount() const { return nWindows_; }
  std::uint64_t windowPages() const { return windowPages_; }
  std::uint64_t freeWindows() const { return freeList_.size(); }
  std::uint64_t idleWindows() const { return idleLru_.size(); }
  std::uint64_t busyWindows() const { return busyLru_.size(); }
  bool unplugged() const { return state_ == State::Unplugged; }
  bool resetting() const { return state_ == State::Resetting; }
  const P2pBarParams& params() const { return params_; }

  /// Stats (units in the registration): "map_calls", "map_pages", "map_hits", "window_fills",
  /// "refused" (all refusals), "refused_policy", "refused_over_cap", "refused_no_window",
  /// "refused_racing", "refused_resetting", "refused_gone", "unmap_calls", "unmap_pages",
  /// "unmap_unbalanced", "reclaims", "reclaims_idle", "reclaim_skipped_pinned", "revoke_hook_calls",
  /// "revoked_pages", "pinned_pages", "revoke_range_calls", "window_moves", "resets", "unplugs",
  /// "forced_reuse_pages", "bar_events"; scalars "windows_resident", "windows_busy", "held_pages".
  StatsGroup& stats() { return stats_; }
  const StatsGroup& stats() const { return stats_; }

 private:
  enum class State { Live, Resetting, Unplugged };
  enum class WinState { Free, Idle, Busy, Revoking };
  struct Window {
    boost::intrusive::list_member_hook<> hook;
    WinState state = WinState::Free;
    std::uint64_t chunk = 0;  ///< the device chunk it maps (Idle/Busy/Revoking)
    std::uint64_t held = 0;   ///< sum of counts over its pages and importers
    std::uint64_t stamp = 0;  ///< map() request that last used it (reclaim skips the current one)
    BarEvent lastEvent = BarEvent::None;
    std::uint64_t lastEventTimePs = 0;
    std::uint64_t lastEventSeq = 0;
  };
  using WindowList = boost::intrusive::list<
      Window, boost::intrusive::member_hook<Window, boost::intrusive::list_member_hook<>, &Window::hook>,
      boost::intrusive::constant_time_size<true>>;
  struct ImporterSlot {
    const Device* dev = nullptr;
    std::uint64_t held = 0;
    std::vector<std::uint32_t> counts;  ///< per aperture page (window * windowPages + offset)
  };
  static constexpr std::uint32_t kNoWindow = ~0u;

  ImporterSlot& slotFor(const Device& importer);
  const ImporterSlot* findSlot(const Device& importer) const;
  std::uint64_t idxOf(const Window& w) const { return static_cast<std::uint64_t>(&w - windows_.data()); }
  BarMapStatus mapOne(ImporterSlot& slot, DevPage page, Pa* out);
  Window* obtainWindow(std::uint64_t chunk, BarMapStatus* why);
  bool revokeWindow(Window& w, BarEvent why, BarRevokeResult& acc);
  void revokeRuns(Window& w, std::uint64_t fromOff, std::uint64_t toOff, BarEvent why, BarRevokeResult& acc);
  void dropCounts(Window& w);
  void detach(Window& w);
  void listFor(Window& w);
  void pointAt(Window& w, std::uint64_t chunk);
  void makeFree(Window& w, BarEvent why);
  void noteEvent(Window& w, BarEvent why);
  BarRevokeResult revokeAll(BarEvent why);
  void unmapPage(ImporterSlot& slot, Window& w, std::uint64_t off);
  void refreshScalars();
  void countRefusal(BarMapStatus s);

  P2pBarParams params_;
  BarRevokeHook* hook_;
  std::function<std::uint64_t()> nowPs_;
  TraceSink* trace_ = nullptr;
  std::string traceTrack_;
  bool tracing() const { return trace_ != nullptr && trace_->on(TraceCategory::HmmP2p); }
  std::uint64_t nowPs() const { return nowPs_ ? nowPs_() : 0; }
  /// A slice on the trace from `startPs` to now (when tracing()).
  void traceSince(const std::string& what, std::uint64_t startPs, const std::string& args);
  std::function<void(BarWindowIdx, std::uint64_t)> windowObserver_;
  std::uint64_t nWindows_ = 0;
  std::uint64_t windowPages_ = 0;
  std::uint64_t nChunks_ = 0;
  std::vector<Window> windows_;
  std::vector<std::uint32_t> chunkWindow_;  ///< chunk -> window index, or kNoWindow
  std::vector<std::uint32_t> pageHeld_;     ///< per aperture page: sum of counts over importers
  std::vector<std::unique_ptr<ImporterSlot>> importers_;
  WindowList freeList_, idleLru_, busyLru_;  ///< LRU lists: front = least recently used
  State state_ = State::Live;
  std::uint64_t heldTotal_ = 0;
  std::uint64_t stamp_ = 0;
  std::uint64_t eventSeq_ = 0;

  StatsGroup stats_;
  Counter &mapCalls_, &mapPages_, &mapHits_, &windowFills_;
  Counter &refused_, &refusedPolicy_, &refusedOverCap_, &refusedNoWindow_, &refusedRacing_,
      &refusedResetting_, &refusedGone_;
  Counter &unmapCalls_, &unmapPages_, &unmapUnbalanced_;
  Counter &reclaims_, &reclaimsIdle_, &reclaimSkippedPinned_;
  Counter &revokeHookCalls_, &revokedPages_, &pinnedPages_, &revokeRangeCalls_;
  Counter &windowMoves_, &resets_, &unplugs_, &forcedReusePages_, &barEvents_;
  Scalar &windowsResident_, &windowsBusy_, &heldPagesScalar_;
};

}  // namespace hmmsim
