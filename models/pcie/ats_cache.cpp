#include "models/pcie/ats_cache.h"

#include <sstream>

#include "sim/assert.h"
#include "sim/checker.h"

namespace hmmsim {

AtsCache::AtsCache(std::string name, Bdf rid, Iommu& iommu, const AtsCacheParams& params)
    : rid_(rid),
      iommu_(iommu),
      params_(params),
      entries_(params.entries),
      stats_(std::move(name)),
      lookups_(stats_.counter("lookups", "count", "address translations the device needed")),
      hits_(stats_.counter("atc_hits", "count", "translations served from the ATC")),
      requests_(
          stats_.counter("translation_requests", "count", "ATS Translation Requests sent to the IOMMU")),
      failures_(
          stats_.counter("translation_failures", "count", "Translation Requests answered with no access")),
      invalRequests_(stats_.counter("invalidation_requests", "count", "ATS Invalidation Requests received")),
      invalCompletions_(
          stats_.counter("invalidation_completions", "count", "ATS Invalidation Completions sent")),
      entriesInvalidated_(
          stats_.counter("entries_invalidated", "count", "ATC entries dropped by invalidations")),
      staleAccesses_(stats_.counter("stale_accesses", "count",
                                    "ATC hits whose IOVA was no longer mapped to the cached address")) {
  HMMSIM_ASSERT(params.entries > 0, "ATC needs at least one entry");
}

AtsLookup AtsCache::translate(Iova iova, bool write, std::uint64_t nowPs) {
  ++lookups_;
  const IommuProt need = write ? kIommuWrite : kIommuRead;
  for (Entry& e : entries_) {
    if (!e.valid || iova < e.iovaBase || iova - e.iovaBase >= e.size || (e.prot & need) == 0) continue;
    e.lastUse = ++useClock_;
    ++hits_;
    AtsLookup r;
    r.ok = true;
    r.atcHit = true;
    r.pa = e.pageBase + (iova - e.iovaBase);
    // Checker view only (no timing): is the IOVA still mapped to what the ATC believes?
    IommuDomain* d = iommu_.domainForDev(rid_);
    std::optional<Pa> now = d ? iommu_.iovaToPhys(*d, iova) : std::nullopt;
    if (!now || *now != r.pa) {
      r.stale = true;
      ++staleAccesses_;
      if (checker_) {
        std::ostringstream dev;
        dev << stats_.name() << " (" << rid_ << ")";
        checker_->report(Violation{CheckRule::StaleTranslation, nowPs, dev.str(), iova.value(),
                                   "ATC entry kept after an ATS invalidation request for it"});
      }
    }
    return r;
  }
  ++requests_;
  IommuTranslation t = iommu_.atsTranslationRequest(rid_, iova, write, nowPs);
  AtsLookup r;
  r.latencyPs = t.latencyPs;
  if (!t.ok) {
    ++failures_;
    return r;
  }
  r.ok = true;
  r.pa = t.pa;
  if (t.translated) {
    Entry* victim = nullptr;
    for (Entry& e : entries_) {
      if (!e.valid) {
        victim = &e;
        break;
      }
      if (!victim || e.lastUse < victim->lastUse) victim = &e;
    }
    *victim =
        Entry{true, iova.alignDown(t.pageSize), t.pageSize, t.pa.alignDown(t.pageSize), t.prot, ++useClock_};
  }
  return r;
}

std::optional<AtsInvalidationCompletion> AtsCache::handleInvalidation(const AtsInvalidationRequest& req) {
  ++invalRequests_;
  if (!params_.respondsToInvalidations) return std::nullopt;
  const std::uint64_t lo = req.iova.value();
  const std::uint64_t hi = req.size == ~0ull ? ~0ull : lo + req.size;
  for (Entry& e : entries_) {
    if (!e.valid) continue;
    const std::uint64_t elo = e.iovaBase.value(), ehi = elo + e.size;
    if (elo < hi && lo < ehi) {
      e.valid = false;
      ++entriesInvalidated_;
    }
  }
  ++invalCompletions_;
  return AtsInvalidationCompletion{req.itag, rid_};
}

unsigned AtsCache::validEntries() const {
  unsigned n = 0;
  for (const Entry& e : entries_) n += e.valid ? 1 : 0;
  return n;
}

}  // namespace hmmsim
