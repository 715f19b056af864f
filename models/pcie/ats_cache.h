#pragma once
// AtsCache: the device side of PCIe Address Translation Services, the Address Translation
// Cache (ATC, "device TLB") of an endpoint with ATS enabled.
//
// Models: a fully associative LRU cache of translations the device obtained with Translation
// Requests to the Iommu; a hit lets the device issue a pre-translated request (no IOMMU walk);
// Invalidation Requests from the IOMMU drop overlapping entries and are answered with an
// Invalidation Completion carrying the request's ITag. A misbehaving device
// (respondsToInvalidations = false) neither drops entries nor completes, so the IOMMU's
// invalidation times out and the device keeps using stale translations — hits through entries
// whose IOVA is no longer mapped are flagged stale and counted ("stale_accesses").
//
// Leaves out: the 32-entry invalidation queue depth, Page Request Interface, PASID, the
// "untranslated only" hint. Timing: none here; the device model charges the translation
// request round trip (IommuTranslation::latencyPs plus its link time).

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "models/pcie/iommu.h"
#include "sim/stats.h"
#include "sim/strong_types.h"

namespace hmmsim {

struct AtsCacheParams {
  unsigned entries = 32;                ///< count; 32; ATC entries (fully associative, LRU)
  bool respondsToInvalidations = true;  ///< -; true; false models a broken device that ignores invalidations
};

/// An ATS Invalidation Request message (IOMMU -> device).
struct AtsInvalidationRequest {
  std::uint32_t itag = 0;  ///< tag the completion must echo
  Iova iova{};             ///< start of the range to invalidate
  std::uint64_t size = 0;  ///< bytes; ~0 for "everything"
};

/// An ATS Invalidation Completion message (device -> IOMMU).
struct AtsInvalidationCompletion {
  std::uint32_t itag = 0;  ///< echoes the request
  Bdf rid{};               ///< the completing device
};

/// Result of a device-side lookup.
struct AtsLookup {
  bool ok = false;              ///< a translation with the needed permission exists
  Pa pa{};                      ///< translated address (valid when ok)
  bool atcHit = false;          ///< served from the ATC (no translation request sent)
  bool stale = false;           ///< the ATC entry's IOVA is no longer mapped to this Pa
  std::uint64_t latencyPs = 0;  ///< IOMMU-side latency of the translation request (0 on a hit)
};

class AtsCache {
 public:
  /// `name` names the stats group ("top.nic0.atc"). `iommu` must outlive this cache.
  AtsCache(std::string name, Bdf rid, Iommu& iommu, const AtsCacheParams& params);

  Bdf rid() const { return rid_; }

  /// The device translates `iova` before a DMA: an ATC hit with the needed permission returns
  /// at once; otherwise a Translation Request goes to the IOMMU and a granted translation is
  /// cached. !ok means the IOMMU granted nothing: the device must not issue the DMA.
  AtsLookup translate(Iova iova, bool write, std::uint64_t nowPs);

  /// Handles an Invalidation Request: drops every overlapping entry and returns the
  /// completion; nullopt (no completion ever) when the device ignores invalidations.
  std::optional<AtsInvalidationCompletion> handleInvalidation(const AtsInvalidationRequest& req);

  unsigned validEntries() const;
  /// Stale ATC hits are reported to `checker` (rule StaleTranslation: the device used a
  /// translation the IOMMU had asked it to drop) when set; nullptr detaches.
  void setChecker(InvariantChecker* checker) { checker_ = checker; }
  /// Stats: lookups, atc_hits, translation_requests, translation_failures,
  /// invalidation_requests, invalidation_completions, entries_invalidated, stale_accesses.
  const StatsGroup& stats() const { return stats_; }

 private:
  struct Entry {
    bool valid = false;
    Iova iovaBase{};
    std::uint64_t size = 0;
    Pa pageBase{};
    IommuProt prot = 0;
    std::uint64_t lastUse = 0;
  };

  Bdf rid_;
  Iommu& iommu_;
  AtsCacheParams params_;
  std::vector<Entry> entries_;
  std::uint64_t useClock_ = 0;
  InvariantChecker* checker_ = nullptr;
  StatsGroup stats_;
  Counter& lookups_;
  Counter& hits_;
  Counter& requests_;
  Counter& failures_;
  Counter& invalRequests_;
  Counter& invalCompletions_;
  Counter& entriesInvalidated_;
  Counter& staleAccesses_;
};

}  // namespace hmmsim
