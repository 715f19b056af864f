#include "models/pcie/iommu.h"

#include <algorithm>
#include <sstream>

#include "models/pcie/ats_cache.h"
#include "sim/assert.h"
#include "sim/checker.h"
#include "sim/trace.h"

namespace hmmsim {

const char* iommuFaultReasonName(IommuFaultReason r) {
  switch (r) {
    case IommuFaultReason::NoDomain:
      return "no-domain";
    case IommuFaultReason::Blocked:
      return "blocked";
    case IommuFaultReason::NotPresent:
      return "not-present";
    case IommuFaultReason::ReadDenied:
      return "read-denied";
    case IommuFaultReason::WriteDenied:
      return "write-denied";
    case IommuFaultReason::BeyondAddressWidth:
      return "beyond-address-width";
    case IommuFaultReason::TranslatedDenied:
      return "translated-denied";
  }
  return "?";
}

Iommu::Iommu(std::string name, const IommuParams& params)
    : params_(params),
      stats_(std::move(name)),
      iotlb_(params.iotlb),
      walkerBusyUntil_(std::max(1u, params.pageWalkers), 0),
      translations_(
          stats_.counter("translations", "count", "upstream requests looked up (untranslated + ATS)")),
      iotlbHits_(stats_.counter("iotlb_hits", "count", "translations served by the IOTLB")),
      iotlbMisses_(stats_.counter("iotlb_misses", "count", "translations that walked the I/O page table")),
      walkAccesses_(stats_.counter("walk_accesses", "count", "page-table entries read by walks")),
      faultsCount_(stats_.counter("faults", "count", "requests aborted by a translation fault")),
      faultOverflows_(
          stats_.counter("fault_overflows", "count", "faults not logged because the log was full")),
      staleAccesses_(stats_.counter("stale_accesses", "count",
                                    "IOTLB hits on an IOVA whose PTE was already unmapped (lazy window)")),
      staleLazyWindow_(stats_.counter("stale_lazy_window", "count",
                                      "stale IOTLB hits on a range whose lazy flush is still pending")),
      staleUnflushed_(
          stats_.counter("stale_unflushed", "count",
                         "stale IOTLB hits on a range never queued for a flush (missed invalidation)")),
      iotlbInvalidations_(stats_.counter("iotlb_invalidations", "count", "IOTLB invalidation commands")),
      iotlbEntriesInvalidated_(stats_.counter("iotlb_entries_invalidated", "count", "IOTLB entries dropped")),
      invalidationPs_(stats_.counter("invalidation_ps", "ps",
                                     "time invalidations cost their callers (IOTLB + ATS round trips)")),
      invalQueueWaitPs_(stats_.counter("invalidation_queue_wait_ps", "ps",
                                       "time invalidations waited in the queue behind other threads'")),
      invalQueueWaits_(stats_.counter("invalidation_queue_waits", "count",
                                      "queued invalidations that waited behind another thread's")),
      maps_(stats_.counter("maps", "count", "successful iommu_map calls")),
      unmaps_(stats_.counter("unmaps", "count", "iommu_unmap / iommu_unmap_fast calls")),
      atsTranslationRequests_(
          stats_.counter("ats_translation_requests", "count", "ATS Translation Requests")),
      atsInvalRequests_(
          stats_.counter("ats_invalidation_requests", "count", "ATS Invalidation Requests sent")),
      atsInvalCompletions_(
          stats_.counter("ats_invalidation_completions", "count", "ATS Invalidation Completions received")),
      atsInvalTimeouts_(stats_.counter("ats_invalidation_timeouts", "count",
                                       "ATS invalidations never completed (invalidation time-out error)")) {}

Iommu::~Iommu() = default;

// ---- domains ----

IommuDomain& Iommu::domainAlloc(IommuDomainType type) {
  HMMSIM_ASSERT(nextDid_ != 0, "domain ids exhausted");
  const std::uint16_t id = nextDid_++;
  Pa tableBase(params_.pageTableBase + (std::uint64_t(id) << 32));
  auto d = std::unique_ptr<IommuDomain>(new IommuDomain(id, type, tableBase));
  IommuDomain& ref = *d;
  domains_.emplace(id, std::move(d));
  return ref;
}

Errno Iommu::domainFree(IommuDomain& domain) {
  if (!domain.devices_.empty()) return Errno::Busy;
  iotlbEntriesInvalidated_ += iotlb_.invalidateDomain(domain.id());
  domains_.erase(domain.id());
  return Errno::Ok;
}

Errno Iommu::attachDevice(IommuDomain& domain, Bdf rid) {
  auto it = context_.find(rid.key());
  if (it != context_.end()) return it->second == &domain ? Errno::Exist : Errno::Busy;
  context_.emplace(rid.key(), &domain);
  domain.devices_.push_back(rid);
  return Errno::Ok;
}

Errno Iommu::detachDevice(Bdf rid) {
  auto it = context_.find(rid.key());
  if (it == context_.end()) return Errno::NoDev;
  IommuDomain& d = *it->second;
  // Clearing a context entry is followed by a domain IOTLB flush and a device-TLB flush.
  flushIotlbAll(d);
  d.devices_.erase(std::find(d.devices_.begin(), d.devices_.end(), rid));
  context_.erase(it);
  lastContext_ = nullptr;
  return Errno::Ok;
}

IommuDomain* Iommu::domainForDev(Bdf rid) {
  // Every DMA asks: the last answer is remembered (attachDevice adds entries only; detachDevice
  // forgets it).
  if (lastContext_ && lastContextKey_ == rid.key()) return lastContext_;
  auto it = context_.find(rid.key());
  if (it == context_.end()) return nullptr;
  lastContextKey_ = rid.key();
  lastContext_ = it->second;
  return it->second;
}

const IommuDomain* Iommu::domainForDev(Bdf rid) const {
  auto it = context_.find(rid.key());
  return it == context_.end() ? nullptr : it->second;
}

// ---- mappings ----

Errno Iommu::map(IommuDomain& domain, Iova iova, Pa pa, std::uint64_t size, IommuProt prot) {
  if (domain.type() != IommuDomainType::Dma) return Errno::Inval;
  if (size == 0 || !iova.isAligned(kPageSize) || !pa.isAligned(kPageSize) || (size & (kPageSize - 1)))
    return Errno::Inval;
  if ((prot & (kIommuRead | kIommuWrite)) == 0) return Errno::Inval;
  std::uint64_t done = 0;
  while (done < size) {
    Iova iv = iova + done;
    Pa p = pa + done;
    const std::uint64_t left = size - done;
    const bool big =
        params_.largePages && iv.isAligned(kPmdSize) && p.isAligned(kPmdSize) && left >= kPmdSize;
    const std::uint64_t pg = big ? kPmdSize : kPageSize;
    Errno e = domain.pt_.mapPage(iv, p, pg, prot);
    if (e != Errno::Ok) {
      // iommu_map(): undo the part already mapped; nothing of it was ever in the IOTLB.
      if (done) unmapLeaves(domain, iova, done);
      return e;
    }
    done += pg;
  }
  ++maps_;
  return Errno::Ok;
}

std::uint64_t Iommu::unmapLeaves(IommuDomain& domain, Iova iova, std::uint64_t size) {
  std::uint64_t unmapped = 0;
  while (unmapped < size) {
    std::uint64_t n = domain.pt_.unmapPage(iova + unmapped);
    if (n == 0) break;  // iommu_unmap stops at the first hole
    // A 2 MiB leaf asked for from its middle still counts from the requested address onwards.
    Iova leafBase = (iova + unmapped).alignDown(n);
    unmapped = (leafBase + n) - iova;
  }
  return unmapped;
}

std::uint64_t Iommu::unmap(IommuDomain& domain, Iova iova, std::uint64_t size) {
  IommuIotlbGather g;
  std::uint64_t n = unmapFast(domain, iova, size, g);
  if (!g.empty()) iotlbSync(domain, g);
  return n;
}

std::uint64_t Iommu::unmapFast(IommuDomain& domain, Iova iova, std::uint64_t size, IommuIotlbGather& gather) {
  if (domain.type() != IommuDomainType::Dma) return 0;
  if (size == 0 || !iova.isAligned(kPageSize) || (size & (kPageSize - 1))) return 0;
  ++unmaps_;
  // Leaves may extend below iova (a 2 MiB page entered from its middle): gather the whole leaf.
  IoWalk first = domain.pt_.walk(iova);
  std::uint64_t n = unmapLeaves(domain, iova, size);
  if (n) {
    const Iova start = first.present ? first.iovaBase : iova;
    const std::uint64_t len = n + (iova - start);
    gather.add(start, len);
    domain.pendingFlush_.emplace_back(start.value(), start.value() + len);
  }
  return n;
}

Errno Iommu::iotlbSync(IommuDomain& domain, const IommuIotlbGather& gather) {
  if (gather.empty()) return Errno::Ok;
  ++iotlbInvalidations_;
  auto& pending = domain.pendingFlush_;
  pending.erase(std::remove_if(pending.begin(), pending.end(),
                               [&](const auto& r) {
                                 return r.first >= gather.start.value() && r.second <= gather.end.value();
                               }),
                pending.end());
  invalidationPs_ += invalidationLatencyPs(domain);
  if (!params_.skipIotlbInvalidation)
    iotlbEntriesInvalidated_ += iotlb_.invalidateRange(domain.id(), gather.start, gather.end - gather.start);
  return invalidateDeviceTlbs(domain, gather.start, gather.end - gather.start);
}

Errno Iommu::flushIotlbAll(IommuDomain& domain) {
  ++iotlbInvalidations_;
  invalidationPs_ += invalidationLatencyPs(domain);
  domain.pendingFlush_.clear();
  if (!params_.skipIotlbInvalidation) iotlbEntriesInvalidated_ += iotlb_.invalidateDomain(domain.id());
  return invalidateDeviceTlbs(domain, Iova(0), ~0ull);
}

Errno Iommu::invalidateDeviceTlbs(IommuDomain& domain, Iova iova, std::uint64_t size) {
  Errno result = Errno::Ok;
  for (Bdf rid : domain.devices_) {
    auto it = ats_.find(rid.key());
    if (it == ats_.end()) continue;
    AtsInvalidationRequest req{nextItag_++, iova, size};
    ++atsInvalRequests_;
    std::optional<AtsInvalidationCompletion> c = it->second->handleInvalidation(req);
    if (c && c->itag == req.itag && c->rid == rid) {
      ++atsInvalCompletions_;
    } else {
      ++atsInvalTimeouts_;
      result = Errno::TimedOut;
    }
  }
  return result;
}

std::optional<Pa> Iommu::iovaToPhys(const IommuDomain& domain, Iova iova) const {
  if (domain.type() == IommuDomainType::Identity) return Pa(iova.value());
  if (domain.type() == IommuDomainType::Blocked) return std::nullopt;
  IoWalk w = domain.pt_.walk(iova);
  if (!w.present) return std::nullopt;
  return w.pa;
}

std::uint64_t Iommu::queueInvalidation(std::uint64_t nowPs, std::uint64_t ps) {
  const std::uint64_t start = std::max(nowPs, invalQueueBusyUntil_);
  if (start > nowPs) {
    ++invalQueueWaits_;
    invalQueueWaitPs_ += start - nowPs;
  }
  invalQueueBusyUntil_ = start + ps;
  return invalQueueBusyUntil_;
}

std::uint64_t Iommu::invalidationLatencyPs(const IommuDomain& domain) const {
  std::uint64_t t = params_.iotlbInvalidationLatencyPs;
  for (Bdf rid : domain.devices_)
    if (ats_.count(rid.key())) t += params_.atsInvalidationLatencyPs;
  return t;
}

// ---- hardware path ----

std::uint64_t Iommu::walkerStart(std::uint64_t nowPs, std::uint64_t walkPs) {
  auto it = std::min_element(walkerBusyUntil_.begin(), walkerBusyUntil_.end());
  const std::uint64_t start = std::max(nowPs, *it);
  *it = start + walkPs;
  return start;
}

IommuTranslation Iommu::fault(Bdf rid, Iova iova, bool write, IommuFaultReason reason, std::uint64_t nowPs,
                              bool record) {
  IommuTranslation t;
  t.ok = false;
  t.reason = reason;
  if (!record) return t;
  ++faultsCount_;
  if (trace_ && trace_->on(TraceCategory::IommuWalk)) {
    std::ostringstream args;
    args << "rid=" << rid << " iova=" << iova << (write ? " write" : " read")
         << " reason=" << iommuFaultReasonName(reason);
    trace_->instant(TraceCategory::IommuWalk, stats_.name(), "fault", nowPs, args.str());
  }
  if (faults_.size() < params_.faultRecords)
    faults_.push_back(IommuFault{nowPs, rid, iova, write, reason});
  else
    ++faultOverflows_;
  return t;
}

IommuTranslation Iommu::translate(Bdf rid, Iova iova, bool write, std::uint64_t nowPs) {
  return translateCore(rid, iova, write, nowPs, /*recordFaults=*/true);
}

// The hardware's order: the context entry names the device's domain (none, blocked, identity or
// paging), the address width is checked, then the IOTLB is looked up and, on a miss, the page
// table walked and the result cached.
IommuTranslation Iommu::translateCore(Bdf rid, Iova iova, bool write, std::uint64_t nowPs,
                                      bool recordFaults) {
  if (params_.mode != IommuMode::Translate) {
    IommuTranslation t;
    t.ok = true;
    t.pa = Pa(iova.value());
    return t;
  }
  ++translations_;
  IommuDomain* d = domainForDev(rid);
  if (!d) return fault(rid, iova, write, IommuFaultReason::NoDomain, nowPs, recordFaults);
  if (d->type() == IommuDomainType::Blocked)
    return fault(rid, iova, write, IommuFaultReason::Blocked, nowPs, recordFaults);
  if (d->type() == IommuDomainType::Identity) {
    IommuTranslation t;
    t.ok = true;
    t.pa = Pa(iova.value());
    return t;
  }
  if ((iova.value() >> IoPageTable::kInputBits) != 0)
    return fault(rid, iova, write, IommuFaultReason::BeyondAddressWidth, nowPs, recordFaults);
  IotlbHit hit;
  if (iotlb_.lookup(d->id(), iova, hit)) {
    ++iotlbHits_;
    return translateIotlbHit(*d, hit, rid, iova, write, nowPs, recordFaults);
  }
  ++iotlbMisses_;
  return translateByWalk(*d, rid, iova, write, nowPs, recordFaults);
}

IommuTranslation Iommu::translateIotlbHit(IommuDomain& d, const IotlbHit& hit, Bdf rid, Iova iova, bool write,
                                          std::uint64_t nowPs, bool recordFaults) {
  IommuTranslation t;
  t.latencyPs = params_.iotlbHitLatencyPs;
  if ((hit.prot & (write ? kIommuWrite : kIommuRead)) == 0) {
    IommuTranslation f =
        fault(rid, iova, write, write ? IommuFaultReason::WriteDenied : IommuFaultReason::ReadDenied, nowPs,
              recordFaults);
    f.latencyPs = t.latencyPs;
    return f;
  }
  t.ok = true;
  t.translated = true;
  t.iotlbHit = true;
  t.pageSize = hit.pageSize;
  t.prot = hit.prot;
  t.pa = hit.pageBase + (iova.value() & (hit.pageSize - 1));
  checkStaleHit(d, rid, iova, nowPs, t);
  return t;
}

// The checker's view, not the hardware's: does the page table still say what the IOTLB entry
// `t` was built from?
void Iommu::checkStaleHit(IommuDomain& d, Bdf rid, Iova iova, std::uint64_t nowPs, IommuTranslation& t) {
  IoWalk now = d.pt_.walk(iova);
  if (now.present && now.pa == t.pa) return;
  t.stale = true;
  ++staleAccesses_;
  const bool pending = std::any_of(d.pendingFlush_.begin(), d.pendingFlush_.end(), [&](const auto& r) {
    return iova.value() >= r.first && iova.value() < r.second;
  });
  ++(pending ? staleLazyWindow_ : staleUnflushed_);
  if (checker_ && (!pending || params_.reportLazyWindow)) {
    std::ostringstream os;
    os << "IOTLB entry of domain " << d.id() << " still used after its IOVA was unmapped "
       << (pending ? "(lazy invalidation, flush pending)" : "(no IOTLB invalidation was issued)");
    std::ostringstream dev;
    dev << rid;
    checker_->report(Violation{CheckRule::UnmappedIova, nowPs, dev.str(), iova.value(), os.str()});
  }
}

IommuTranslation Iommu::translateByWalk(IommuDomain& d, Bdf rid, Iova iova, bool write, std::uint64_t nowPs,
                                        bool recordFaults) {
  IoWalk w = d.pt_.walk(iova);
  walkAccesses_ += w.accesses;
  const auto [start, walkPs] = chargeWalk(w, nowPs + params_.iotlbHitLatencyPs);
  IommuTranslation t;
  t.latencyPs = (start + walkPs) - nowPs;
  t.walkAccesses = w.accesses;
  if (trace_ && trace_->on(TraceCategory::IommuWalk)) {
    std::ostringstream args;
    args << "rid=" << rid << " iova=" << iova << " accesses=" << w.accesses;
    trace_->slice(TraceCategory::IommuWalk, stats_.name(), "walk", start, walkPs, args.str());
  }
  if (!w.present || (w.prot & (write ? kIommuWrite : kIommuRead)) == 0) {
    const IommuFaultReason reason = !w.present ? IommuFaultReason::NotPresent
                                    : write    ? IommuFaultReason::WriteDenied
                                               : IommuFaultReason::ReadDenied;
    IommuTranslation f = fault(rid, iova, write, reason, nowPs, recordFaults);
    f.latencyPs = t.latencyPs;
    f.walkAccesses = w.accesses;
    return f;
  }
  iotlb_.insert(d.id(), iova, w.pageBase, w.pageSize, w.prot);
  t.ok = true;
  t.translated = true;
  t.pageSize = w.pageSize;
  t.prot = w.prot;
  t.pa = w.pa;
  return t;
}

// When the walk of `w` starts (a walker free at or after `readyPs`) and how long it takes: on the
// walk memory when one is set, each entry read starting when the previous one returned; else a
// flat walkAccessLatencyPs per entry.
std::pair<std::uint64_t, std::uint64_t> Iommu::chargeWalk(const IoWalk& w, std::uint64_t readyPs) {
  std::uint64_t walkPs = std::uint64_t(w.accesses) * params_.walkAccessLatencyPs;
  if (!walkMemory_) return {walkerStart(readyPs, walkPs), walkPs};
  // The walker is taken first; each entry read starts when the previous one returned.
  auto it = std::min_element(walkerBusyUntil_.begin(), walkerBusyUntil_.end());
  const std::uint64_t start = std::max(readyPs, *it);
  walkPs = 0;
  for (unsigned i = 0; i < w.accesses; ++i) walkPs += walkMemory_(w.accessAddrs[i], start + walkPs);
  *it = start + walkPs;
  return {start, walkPs};
}

// ---- ATS ----

Errno Iommu::enableAts(Bdf rid, AtsCache& atc) {
  if (ats_.count(rid.key())) return Errno::Busy;
  ats_.emplace(rid.key(), &atc);
  return Errno::Ok;
}

Errno Iommu::disableAts(Bdf rid) {
  return ats_.erase(rid.key()) ? Errno::Ok : Errno::NoDev;
}

IommuTranslation Iommu::atsTranslationRequest(Bdf rid, Iova iova, bool write, std::uint64_t nowPs) {
  if (!atsEnabled(rid)) {
    IommuTranslation t;
    t.reason = IommuFaultReason::TranslatedDenied;
    return t;
  }
  ++atsTranslationRequests_;
  return translateCore(rid, iova, write, nowPs, /*recordFaults=*/false);
}

IommuTranslation Iommu::translatedRequest(Bdf rid, Pa pa, bool write, std::uint64_t nowPs) {
  if (params_.mode == IommuMode::Translate && !atsEnabled(rid))
    return fault(rid, Iova(pa.value()), write, IommuFaultReason::TranslatedDenied, nowPs, true);
  IommuTranslation t;
  t.ok = true;
  t.pa = pa;
  return t;
}

}  // namespace hmmsim
