// ImporterMirror: the RFC's importer pattern. See importer_mirror.h.
#include "hmm/importer_mirror.h"

#include <algorithm>
#include <sstream>

#include "hmm/p2p_checker.h"
#include "models/cpu_mmu/mm.h"
#include "models/cpu_mmu/phys_mem.h"
#include "sim/assert.h"
#include "sim/trace.h"

namespace hmmsim {

const char* importerMisbehaviourName(ImporterMisbehaviour m) {
  switch (m) {
    case ImporterMisbehaviour::None:
      return "none";
    case ImporterMisbehaviour::IgnoreInvalidations:
      return "ignore-invalidations";
    case ImporterMisbehaviour::AckWithoutWaiting:
      return "ack-without-waiting";
    case ImporterMisbehaviour::PinForever:
      return "pin-forever";
    case ImporterMisbehaviour::KeepOldAddress:
      return "keep-old-address";
  }
  return "?";
}

const char* mirrorWorkName(MirrorWork w) {
  switch (w) {
    case MirrorWork::Walk:
      return "walk";
    case MirrorWork::TlbInvalidation:
      return "tlb_invalidation";
    case MirrorWork::DmaUnmap:
      return "dma_unmap";
  }
  return "?";
}

namespace {
bool hasFrame(HmmDmaKind k) {
  return k == HmmDmaKind::System || k == HmmDmaKind::Local || k == HmmDmaKind::DevmemP2p;
}
/// A mapping the importer must give back (Local memory is its own).
bool isHeld(HmmDmaKind k) {
  return k != HmmDmaKind::None && k != HmmDmaKind::Local;
}
}  // namespace

ImporterMirror::ImporterMirror(Mm& mm, const HmmDmaImporter& imp, Va start, std::uint64_t pages,
                               const ImporterMirrorParams& params, P2pChecker* checker,
                               const std::string& statsName)
    : mm_(mm),
      imp_(imp),
      start_(start),
      pages_(pages),
      params_(params),
      checker_(checker),
      lock_([&mm]() -> Blocker& { return mm.blocker(); }),
      dmaStats_(statsName + ".dma"),
      stats_(statsName),
      commits_(stats_.counter("commits", "ranges", "ranges committed to the device page table")),
      readRetries_(stats_.counter("read_retries", "ranges",
                                  "mmu_interval_read_retry true under the update lock (fresh maps undone)")),
      timeouts_(stats_.counter("timeouts", "ranges", "retry budget spent: -EBUSY returned")),
      invalidations_(stats_.counter("invalidations", "calls", "invalidate callbacks that zapped")),
      refused_(
          stats_.counter("refused_nonblock", "calls", "non-blockable invalidations refused (lock held)")),
      zapped_(stats_.counter("zapped_pages", "pages", "device page-table entries zapped")),
      tlbShootdowns_(stats_.counter("tlb_shootdowns", "entries", "device TLB entries shot down")),
      dmaWaits_(stats_.counter("dma_waits", "calls", "invalidations that waited for in-flight DMA")),
      tlbHits_(stats_.counter("tlb_hits", "lookups", "device TLB hits")),
      tlbMisses_(stats_.counter("tlb_misses", "lookups", "device TLB misses (page-table walks)")),
      deviceFaults_(stats_.counter("device_faults", "lookups", "translations without a usable entry")),
      dmaBytes_(stats_.counter("dma_bytes", "bytes", "bytes moved by device DMA")) {
  HMMSIM_ASSERT(imp_.device, "ImporterMirror without an importer device");
  HMMSIM_ASSERT(pages_ > 0 && start_.isAligned(kPageSize),
                "ImporterMirror window must be page aligned and non-empty");
  HMMSIM_ASSERT(params_.chunkPages > 0 && params_.tlbEntries > 0,
                "ImporterMirrorParams: chunkPages and tlbEntries > 0");
  pt_.resize(pages_);
  epochs_.assign(pages_, 0);
  gens_.assign(pages_, 0);
  tlb_.resize(params_.tlbEntries);
  tlbSlot_.assign(pages_, 0);
  if (params_.iovaLink && imp_.dma && imp_.dma->dmaIovaTryAlloc(*imp_.device, iova_, pages_ << kPageShift)) {
    imp_.iova = &iova_;
    imp_.iovaVa = start_;
  }
  const Errno err = mmuIntervalNotifierInsert(notifier_, mm_, start_, pages_ << kPageShift, *this);
  HMMSIM_ASSERT(err == Errno::Ok, "ImporterMirror: notifier insert failed: " << errnoName(err));
  if (checker_) checker_->registerImporter(*imp_.device, start_, pages_);
}

ImporterMirror::~ImporterMirror() {
  unmapAll();
  if (notifier_.inserted()) notifier_.remove();
  if (imp_.iova) imp_.dma->dmaIovaFree(*imp_.device, iova_);  // hmm_dma_map_free
}

HmmRange ImporterMirror::view(Table& t, Va runStart, std::uint64_t n) {
  HmmRange r;
  r.notifier = &notifier_;
  r.start = runStart;
  r.end = runStart + (n << kPageShift);
  r.hmmPfns = t.pfns.data();
  r.p2pAddrs = t.addrs.data();
  r.importer = imp_.device;
  r.devPrivateOwner = imp_.owner;
  return r;
}

void ImporterMirror::undo(Table& t, Va runStart, std::uint64_t n, bool released) {
  if (checker_ && released)
    for (std::uint64_t i = 0; i < n; ++i)
      if (isHeld(t.kinds[i])) checker_->mappingLive(*imp_.device, runStart + (i << kPageShift), false);
  HmmRange r = view(t, runStart, n);
  const std::uint64_t before = iommuInvalidationPs();
  hmmRangeDmaUnmap(r, imp_, t.addrs.data(), t.kinds.data(), runStart, r.end, &dmaStats_);
  charge(MirrorWork::DmaUnmap, iommuInvalidationPs() - before);
}

void ImporterMirror::charge(MirrorWork what, std::uint64_t ps) {
  if (ps != 0 && chargeTime_) chargeTime_(what, ps);
}

std::uint64_t ImporterMirror::iommuInvalidationPs() const {
  return imp_.dma ? imp_.dma->iommu().invalidationPs() : 0;
}

std::uint64_t ImporterMirror::walkPs(std::uint64_t n, std::uint64_t faults, const Table& t,
                                     std::uint64_t iommuBefore) const {
  std::uint64_t mapped = 0;
  for (std::uint64_t i = 0; i < n; ++i) mapped += isHeld(t.kinds[i]);
  return n * params_.walkPagePs + faults * params_.faultPagePs + mapped * params_.mapPagePs +
         (iommuInvalidationPs() - iommuBefore);
}

HmmStatus ImporterMirror::map(Va start, Va end, bool write) {
  if (start >= end || !start.isAligned(kPageSize) || !end.isAligned(kPageSize) || !inWindow(start) ||
      !inWindow(end - kPageSize))
    return HmmStatus::Inval;
  const std::uint64_t chunk = std::uint64_t(params_.chunkPages) << kPageShift;
  for (Va a = start; a < end;) {
    const Va next = std::min(end, a + chunk);
    const HmmStatus st = mapChunk(a, next, write);
    if (st != HmmStatus::Ok) return st;
    a = next;
  }
  return HmmStatus::Ok;
}

HmmStatus ImporterMirror::mapChunk(Va start, Va end, bool write) {
  const std::uint64_t n = (end - start) >> kPageShift;
  Table fresh;
  fresh.resize(n);
  for (unsigned attempt = 0;; ++attempt) {
    if (attempt > params_.maxRetries) {
      ++timeouts_;
      return HmmStatus::Busy;
    }
    HmmRange r = view(fresh, start, n);
    std::fill(fresh.pfns.begin(), fresh.pfns.end(), 0UL);
    r.notifierSeq = notifier_.readBegin();
    r.defaultFlags = HMM_PFN_REQ_FAULT | (write ? HMM_PFN_REQ_WRITE : 0);
    HmmStatus st;
    {
      MmapReadLock l(mm_);
      const std::uint64_t faultsBefore = mm_.vmEvents().pgfault.value();
      const std::uint64_t iommuBefore = iommuInvalidationPs();
      st = hmmRangeDmaMap(r, imp_, fresh.addrs.data(), fresh.kinds.data(), &dmaStats_);
      // The walk's time passes under the mmap read lock, before the update lock: an
      // invalidation meanwhile makes readRetry start over, as in the kernel.
      charge(MirrorWork::Walk, walkPs(n, mm_.vmEvents().pgfault.value() - faultsBefore, fresh, iommuBefore));
    }
    lastP2pError_ = r.p2pError;
    if (st == HmmStatus::Busy) continue;
    if (st != HmmStatus::Ok) return st;
    lock_.lock();
    if (notifier_.readRetry(r.notifierSeq)) {
      lock_.unlock();
      ++readRetries_;
      undo(fresh, start, n, false);
      continue;
    }
    // Commit. Entries this replaces are given back after the lock is dropped.
    Table old;
    bool anyOld = false;
    const std::uint64_t epoch = checker_ ? checker_->epoch() : 0;
    PhysMem& pm = mm_.physMem();
    for (std::uint64_t i = 0; i < n; ++i) {
      const std::uint64_t p = index(start) + i;
      if (pt_.kinds[p] != HmmDmaKind::None) {
        if (!anyOld) old.resize(n);
        anyOld = true;
        old.pfns[i] = pt_.pfns[p];
        old.addrs[i] = pt_.addrs[p];
        old.kinds[i] = pt_.kinds[p];
      }
      pt_.pfns[p] = fresh.pfns[i];
      pt_.addrs[p] = fresh.addrs[i];
      pt_.kinds[p] = fresh.kinds[i];
      epochs_[p] = epoch;
      gens_[p] = hasFrame(fresh.kinds[i]) ? pm.generationOf(hmmPfnToPfn(fresh.pfns[i])) : 0;
      if (checker_) checker_->mappingLive(*imp_.device, start + (i << kPageShift), isHeld(fresh.kinds[i]));
    }
    if (anyOld) {
      tlbShootdown(start, end);
      charge(MirrorWork::TlbInvalidation, params_.tlbInvalidationPs);
      waitDma(start, end);
    }
    ++commits_;
    lock_.unlock();
    if (anyOld) undo(old, start, n, false);
    return HmmStatus::Ok;
  }
}

void ImporterMirror::unmapAll() {
  lock_.lock();
  Table old = pt_;
  bool any = false;
  for (std::uint64_t p = 0; p < pages_; ++p) {
    any = any || pt_.kinds[p] != HmmDmaKind::None;
    pt_.kinds[p] = HmmDmaKind::None;
  }
  tlbShootdown(start_, start_ + (pages_ << kPageShift));
  if (any) charge(MirrorWork::TlbInvalidation, params_.tlbInvalidationPs);
  waitDma(start_, start_ + (pages_ << kPageShift));
  lock_.unlock();
  undo(old, start_, pages_, true);
}

void ImporterMirror::tlbShootdown(Va start, Va end) {
  for (TlbEntry& e : tlb_)
    if (e.valid && e.page >= start && e.page < end) {
      e.valid = false;
      tlbSlot_[index(e.page)] = 0;
      ++tlbShootdowns_;
    }
}

std::size_t ImporterMirror::inFlight(Va start, Va end) const {
  std::size_t n = 0;
  for (const Dma& d : dmas_) n += d.va >= start && d.va < end;
  return n;
}

void ImporterMirror::waitDma(Va start, Va end) {
  if (inFlight(start, end) == 0) return;
  ++dmaWaits_;
  if (waitForDma_) waitForDma_(*this, start, end);
  waitEvent(
      mm_.blocker(), dmaDone_, [&] { return inFlight(start, end) == 0; }, "importer: wait for in-flight DMA");
}

bool ImporterMirror::invalidate(MmuIntervalNotifier& sub, const MmuNotifierRange& range,
                                std::uint64_t curSeq) {
  const Va s = std::max(range.start, start_);
  const Va e = std::min(range.end, start_ + (pages_ << kPageShift));
  if (params_.misbehave == ImporterMisbehaviour::IgnoreInvalidations) {
    if (checker_ && s < e) checker_->invalidationReturned(*imp_.device, s, e, range.event);
    return true;
  }
  const std::uint64_t t0 = trace_ != nullptr ? traceNowPs_() : 0;
  if (range.blockable()) {
    lock_.lock();
  } else if (!lock_.tryLock()) {
    ++refused_;
    return false;  // nothing touched: the core aborts the non-blocking start with -EAGAIN
  }
  sub.setSeq(curSeq);
  const std::uint64_t zappedBefore = zapped_.value();
  Table old;
  std::uint64_t n = 0;
  if (s < e) {
    n = (e - s) >> kPageShift;
    old.resize(n);
    const std::uint64_t first = index(s);
    for (std::uint64_t i = 0; i < n; ++i) {
      const std::uint64_t p = first + i;
      if (pt_.kinds[p] == HmmDmaKind::None) continue;
      old.pfns[i] = pt_.pfns[p];
      old.addrs[i] = pt_.addrs[p];
      old.kinds[i] = pt_.kinds[p];
      pt_.kinds[p] = HmmDmaKind::None;
      pt_.pfns[p] = 0;
      ++zapped_;
    }
    // KeepOldAddress: the device keeps its TLB entries and goes on using the old addresses.
    if (params_.misbehave != ImporterMisbehaviour::KeepOldAddress) {
      tlbShootdown(s, e);
      // The device TLB invalidation completes before the callback returns (nothing to
      // invalidate when no entry of the range was mapped).
      if (zapped_.value() != zappedBefore) charge(MirrorWork::TlbInvalidation, params_.tlbInvalidationPs);
    }
    if (params_.misbehave != ImporterMisbehaviour::AckWithoutWaiting) waitDma(s, e);
    ++invalidations_;
  }
  lock_.unlock();
  if (n && params_.misbehave != ImporterMisbehaviour::PinForever) undo(old, s, n, true);
  if (checker_ && s < e) checker_->invalidationReturned(*imp_.device, s, e, range.event);
  if (trace_ != nullptr && s < e) traceInvalidation(range, s, e, zapped_.value() - zappedBefore, t0);
  return true;
}

void ImporterMirror::traceInvalidation(const MmuNotifierRange& range, Va s, Va e, std::uint64_t zapped,
                                       std::uint64_t startPs) {
  if (!trace_->on(TraceCategory::HmmNotifier)) return;
  const std::uint64_t end = traceNowPs_();
  std::ostringstream args;
  args << "[" << s << ", " << e << "), " << zapped << " device PTEs zapped";
  trace_->slice(TraceCategory::HmmNotifier, traceTrack_,
                std::string("invalidate ") + mmuNotifierEventName(range.event), startPs,
                end > startPs ? end - startPs : 0, args.str());
}

std::optional<DeviceTranslation> ImporterMirror::translate(Va va, bool write) {
  DeviceTranslation t;
  if (!lookup(va, write, t)) return std::nullopt;
  return t;
}

bool ImporterMirror::lookup(Va va, bool write, DeviceTranslation& out) {
  const Va page = va.alignDown(kPageSize);
  const TlbEntry* hit = nullptr;
  if (inWindow(page))
    if (const std::uint32_t slot = tlbSlot_[index(page)]) hit = &tlb_[slot - 1];
  if (hit) {
    ++tlbHits_;
    out = hit->t;
  } else {
    ++tlbMisses_;
    if (!inWindow(page) || pt_.kinds[index(page)] == HmmDmaKind::None) {
      ++deviceFaults_;
      return false;
    }
    const std::uint64_t p = index(page);
    TlbEntry& slot = tlb_[tlbNext_];
    if (slot.valid) tlbSlot_[index(slot.page)] = 0;  // evicted (FIFO)
    tlbSlot_[p] = std::uint32_t(tlbNext_ + 1);
    tlbNext_ = (tlbNext_ + 1) % tlb_.size();
    slot.valid = true;
    slot.page = page;
    // Both copies are filled from the page table, not one from the other: the DMA path translates
    // every page, and reading back a struct just stored field by field stalls the CPU (a wide load
    // cannot forward from narrow stores) for longer than the whole lookup takes.
    fillTranslation(p, slot.t);
    fillTranslation(p, out);
  }
  if (write && !out.write) {
    ++deviceFaults_;
    return false;
  }
  return true;
}

void ImporterMirror::fillTranslation(std::uint64_t p, DeviceTranslation& x) const {
  x.addr = pt_.addrs[p];
  x.kind = pt_.kinds[p];
  x.write = (pt_.pfns[p] & HMM_PFN_WRITE) != 0;
  x.epoch = epochs_[p];
  x.pfn = hasFrame(x.kind) ? hmmPfnToPfn(pt_.pfns[p]) : Pfn(0);
  x.gen = gens_[p];
}

std::uint64_t ImporterMirror::beginDmaId(Va va, bool write) {
  Dma& d = dmas_.emplace_back();
  if (!lookup(va, write, d.t)) {
    dmas_.pop_back();
    return 0;
  }
  d.id = nextDmaId_++;
  d.va = va.alignDown(kPageSize);
  d.offset = va - d.va;
  d.write = write;
  return d.id;
}

bool ImporterMirror::transferDma(std::uint64_t id, void* buf, std::size_t len) {
  auto it = findDma(id);
  HMMSIM_ASSERT(it != dmas_.end(), "transferDma of unknown DMA " << id);
  HMMSIM_ASSERT(resolver_, "ImporterMirror " << imp_.device->name() << ": no resolver set");
  const Dma& d = *it;
  checkAccess(d);
  const std::optional<Pa> pa = resolver_(*imp_.device, d.t.addr + d.offset, d.t, d.write);
  if (!pa) return false;
  if (d.write)
    mm_.physMem().write(*pa, buf, len);
  else
    mm_.physMem().read(*pa, buf, len);
  dmaBytes_ += len;
  return true;
}

std::vector<ImporterMirror::Dma>::iterator ImporterMirror::findDma(std::uint64_t id) {
  // Ids grow with every beginDma and dmas_ keeps them in that order (push_back, erase), so a
  // binary search finds one; the newest (the shell asks for it right after beginDma) is checked
  // first.
  if (!dmas_.empty() && dmas_.back().id == id) return dmas_.end() - 1;
  auto it = std::lower_bound(dmas_.begin(), dmas_.end(), id,
                             [](const Dma& d, std::uint64_t x) { return d.id < x; });
  return it != dmas_.end() && it->id == id ? it : dmas_.end();
}

void ImporterMirror::checkAccess(const Dma& d) {
  if (!checker_) return;
  checker_->deviceAccess(*imp_.device, d.va, d.t.epoch);
  if (hasFrame(d.t.kind))
    checker_->frameAccess(*imp_.device, d.va, d.t.pfn, d.t.gen, mm_.physMem().generationOf(d.t.pfn));
}

const DeviceTranslation* ImporterMirror::dmaTranslation(std::uint64_t id) const {
  auto it = const_cast<ImporterMirror*>(this)->findDma(id);
  return it == dmas_.end() ? nullptr : &it->t;
}

std::uint64_t ImporterMirror::checkStamp() const {
  return checker_->changeStamp() + mm_.physMem().generationStamp();
}

void ImporterMirror::noteDmaAccess(std::uint64_t id, std::size_t bytes) {
  auto it = findDma(id);
  HMMSIM_ASSERT(it != dmas_.end(), "noteDmaAccess of unknown DMA " << id);
  if (checker_) it->noteStamp = checkStamp();
  checkAccess(*it);
  dmaBytes_ += bytes;
}

void ImporterMirror::noteDmaAccesses(const std::vector<std::uint64_t>& ids, std::size_t bytes) {
  // A burst's pages began one after the other, so after the first the next is usually the
  // neighbour in dmas_.
  auto it = dmas_.end();
  const std::uint64_t stamp = checker_ ? checkStamp() : kNoStamp;
  for (std::uint64_t id : ids) {
    it = it != dmas_.end() && it + 1 != dmas_.end() && (it + 1)->id == id ? it + 1 : findDma(id);
    HMMSIM_ASSERT(it != dmas_.end(), "noteDmaAccess of unknown DMA " << id);
    it->noteStamp = stamp;
    checkAccess(*it);
  }
  dmaBytes_ += bytes;
}

void ImporterMirror::endDmas(const std::vector<std::uint64_t>& ids) {
  if (ids.empty()) return;
  const auto first = findDma(ids.front());
  bool block = first != dmas_.end() && static_cast<std::size_t>(dmas_.end() - first) >= ids.size();
  for (std::size_t i = 0; block && i < ids.size(); ++i)
    block = first[static_cast<std::ptrdiff_t>(i)].id == ids[i];
  if (!block) {
    for (std::uint64_t id : ids) {
      noteDmaAccess(id, 0);
      endDma(id);
    }
    return;
  }
  // The usual case: the burst's DMAs sit side by side; check each, erase them in one go.
  const auto last = first + static_cast<std::ptrdiff_t>(ids.size());
  const std::uint64_t stamp = checker_ ? checkStamp() : kNoStamp;
  for (auto it = first; it != last; ++it)
    if (it->noteStamp != stamp) checkAccess(*it);
  dmas_.erase(first, last);
  dmaDone_.wakeUpAll();
}

void ImporterMirror::endDma(std::uint64_t id) {
  auto it = findDma(id);
  HMMSIM_ASSERT(it != dmas_.end(), "endDma of unknown DMA " << id);
  dmas_.erase(it);
  dmaDone_.wakeUpAll();
}

bool ImporterMirror::dmaRead(Va va, void* buf, std::size_t len) {
  HMMSIM_ASSERT((va.value() & (kPageSize - 1)) + len <= kPageSize, "dmaRead crosses a page");
  const auto id = beginDma(va, false);
  if (!id) return false;
  const bool ok = transferDma(*id, buf, len);
  endDma(*id);
  return ok;
}

bool ImporterMirror::dmaWrite(Va va, const void* buf, std::size_t len) {
  HMMSIM_ASSERT((va.value() & (kPageSize - 1)) + len <= kPageSize, "dmaWrite crosses a page");
  const auto id = beginDma(va, true);
  if (!id) return false;
  const bool ok = transferDma(*id, const_cast<void*>(buf), len);
  endDma(*id);
  return ok;
}

HmmDmaKind ImporterMirror::kindAt(Va va) const {
  return inWindow(va) ? pt_.kinds[index(va.alignDown(kPageSize))] : HmmDmaKind::None;
}

bool ImporterMirror::mappedFor(Va va, bool write) const {
  if (!inWindow(va)) return false;
  const std::uint64_t p = index(va.alignDown(kPageSize));
  return pt_.kinds[p] != HmmDmaKind::None && (!write || (pt_.pfns[p] & HMM_PFN_WRITE) != 0);
}

DmaAddr ImporterMirror::addrAt(Va va) const {
  return inWindow(va) ? pt_.addrs[index(va.alignDown(kPageSize))] : DmaAddr(0);
}

}  // namespace hmmsim
