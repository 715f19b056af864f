#pragma once
// P2pChecker: the invariant rules of docs/architecture.md ("The checker") wired where the
// importer-side state lives (the importer mirror, hmm/importer_mirror.h, reports to it; it reports breaches
// to the run's InvariantChecker). It observes; it never changes what the models do.
//
//   rule 1 (stale translation): a device access through a translation made before an
//          invalidation covering its page returned. Every invalidation's return bumps an epoch;
//          translations carry the epoch of their commit; a page remembers the epoch of the last
//          invalidation that covered it. Also the RFC's own rule: when an invalidation returns,
//          the importer holds no DMA/p2p mapping of the range any more ("pin forever").
//   rule 2 (freed frame): an access to a frame whose generation changed since it was mapped
//          (freed, or migrated away and reused).
//   rule 3 (outside a BAR window): a peer access whose bus address is outside every live window
//          of the exporter. Exporters that manage their BAR with P2pBarManager register it
//          (registerBar) and the platform reports each peer access with barAccess: the manager's
//          checkAccess decides (live window, and the device page the importer meant still behind
//          it, which is what an exporter reusing a window before revoking breaks), and the report
//          names the BAR event that took the window away. Exporters with their own bookkeeping
//          give a plain query instead (setBarQuery, peerAccess).
//   rule 5 (data integrity): bytes that differ from what the scenario/test expects.
//   rule 7 (unsupported request): a peer access (the importer's translation pointed at another
//          device) that a root complex answered with Unsupported Request; the platform's router
//          observer reports it with the host bridge, why, and the p2pdma map type.
// Rule 4 (unmapped IOVA) lives in the IOMMU model.
// A violation names the simulated time (from the clock hook; 0 in pure-core tests), the device,
// the address and the event that made the access illegal.
// Timing: none.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "hmm/p2p_bar_manager.h"
#include "models/cpu_mmu/mmu_notifier.h"
#include "sim/checker.h"
#include "sim/device.h"
#include "sim/strong_types.h"

namespace hmmsim {

class P2pChecker {
 public:
  /// `sink` receives violations; `nowPs` (optional) gives the simulated time of a report.
  explicit P2pChecker(InvariantChecker& sink, std::function<std::uint64_t()> nowPs = {});

  /// An importer mirroring [start, start + pages * 4 KiB). Registering twice replaces the window.
  void registerImporter(const Device& importer, Va start, std::uint64_t pages);

  /// The current epoch (what a translation committed now records).
  std::uint64_t epoch() const { return epoch_; }
  /// Changes whenever an invalidation is recorded or a violation reported: a rule 1 check that
  /// passed passes again, with the same report count, while the stamp is unchanged.
  std::uint64_t changeStamp() const { return records_.size() + reports_; }

  /// The importer's invalidate callback for [start, end) (clipped to its window) returned.
  /// Checks the RFC rule (no DMA/p2p mapping of the range still live), then records it.
  void invalidationReturned(const Device& importer, Va start, Va end, MmuNotifierEvent event);
  /// The importer holds (live = true) or released (false) a DMA/p2p mapping for `page`.
  void mappingLive(const Device& importer, Va page, bool live);

  /// Rule 1: the device used a translation of `va` committed at `translationEpoch`.
  void deviceAccess(const Device& importer, Va va, std::uint64_t translationEpoch);
  /// Rule 2: the device reached frame `pfn` that had generation `mappedGen` when it was mapped
  /// and has `nowGen` now.
  void frameAccess(const Device& importer, Va va, Pfn pfn, std::uint64_t mappedGen, std::uint64_t nowGen);
  /// Rule 3: the bus address a peer access used. The query says whether it is inside a live
  /// window of the exporter (the BAR library's); without a query nothing is checked.
  using BarQuery = std::function<bool(BusAddr)>;
  void setBarQuery(BarQuery q) { barQuery_ = std::move(q); }
  void peerAccess(const Device& importer, BusAddr addr, const std::string& exporter);
  /// Rule 3 through an exporter's BAR manager: `bar` (not owned; unregisterBar before it goes)
  /// answers for bus addresses inside its aperture; `exporter` names it in reports.
  void registerBar(const P2pBarManager& bar, const std::string& exporter);
  void unregisterBar(const P2pBarManager& bar);
  /// Rule 3: the importer's DMA of `len` bytes reached bus address `addr`;
  /// `expected` (optional) is the exporter device page the importer's translation meant. Returns
  /// true when a registered BAR's aperture holds `addr` (checked, reported if illegal), false when
  /// no registered BAR does (nothing checked). Counts every check (barChecks()).
  bool barAccess(const Device& importer, BusAddr addr, std::uint64_t len, const DevPage* expected);
  std::uint64_t barChecks() const { return barChecks_; }
  /// Rule 5: `what` differs from expectation at `va`.
  void dataMismatch(const Device& importer, Va va, const std::string& what);
  /// Rule 7: the importer's peer request to bus address `addr` completed with Unsupported Request
  /// at a root complex; `why` names the host bridge, the reason and the map type.
  void unsupportedRequest(const Device& importer, std::uint64_t addr, const std::string& why);

  InvariantChecker& sink() { return sink_; }

 private:
  struct Record {
    std::uint64_t epoch = 0;
    std::uint64_t timePs = 0;
    MmuNotifierEvent event = MmuNotifierEvent::Unmap;
    Va start, end;
  };
  struct Window {
    Va start;
    std::uint64_t pages = 0;
    std::vector<std::uint32_t> lastInval;  // per page: index into records_ + 1 (0 = never)
    std::vector<std::uint8_t> live;        // per page: a DMA/p2p mapping is held
  };
  Window* windowOf(const Device& d, Va va, std::uint64_t* page);
  std::uint64_t now() const { return nowPs_ ? nowPs_() : 0; }
  std::string describe(const Record& r) const;
  void report(CheckRule rule, const Device& d, std::uint64_t addr, std::string cause);

  InvariantChecker& sink_;
  std::function<std::uint64_t()> nowPs_;
  std::uint64_t epoch_ = 1;
  std::vector<Record> records_;
  std::uint64_t reports_ = 0;
  std::map<const Device*, Window> windows_;  // never erased: windowOf keeps a pointer
  const Device* lastDevice_ = nullptr;       // windowOf's last hit
  Window* lastWindow_ = nullptr;
  BarQuery barQuery_;
  std::vector<std::pair<const P2pBarManager*, std::string>> bars_;
  std::uint64_t barChecks_ = 0;
};

}  // namespace hmmsim
