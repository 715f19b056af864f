// HmmMirror: the update-lock pattern. See mirror.h.

#include "hmm/mirror.h"

#include <algorithm>

#include "models/cpu_mmu/mm.h"
#include "sim/assert.h"

namespace hmmsim {

HmmMirror::HmmMirror(Mm& mm, HmmMirrorDriver& driver, const void* owner, const HmmMirrorParams& params,
                     const std::string& statsName)
    : mm_(mm),
      driver_(driver),
      owner_(owner),
      params_(params),
      lock_([&mm]() -> Blocker& { return mm.blocker(); }),
      hmm_(statsName + ".hmm"),
      stats_(statsName),
      commits_(stats_.counter("commits", "ranges", "ranges committed to the device page table")),
      readRetries_(
          stats_.counter("read_retries", "ranges", "mmu_interval_read_retry true under the update lock")),
      busyRetries_(stats_.counter("busy_retries", "ranges", "hmm_range_fault returned -EBUSY")),
      timeouts_(stats_.counter("timeouts", "ranges", "retry budget spent: -EBUSY returned")),
      invalidations_(stats_.counter("invalidations", "calls", "invalidate callbacks that zapped")),
      skippedOwn_(stats_.counter("skipped_own", "calls", "self-owned MIGRATE/EXCLUSIVE events skipped")),
      refused_(stats_.counter("refused_nonblock", "calls",
                              "non-blockable invalidations refused because the lock was held")) {
  HMMSIM_ASSERT(params_.faultChunkPages > 0, "HmmMirrorParams.faultChunkPages must be > 0");
}

HmmMirror::~HmmMirror() {
  remove();
}

Errno HmmMirror::insert(Va start, std::uint64_t length) {
  return mmuIntervalNotifierInsert(notifier_, mm_, start, length, *this);
}

void HmmMirror::remove() {
  if (notifier_.inserted()) notifier_.remove();
}

HmmStatus HmmMirror::rangeFault(HmmRange& range) {
  range.notifier = &notifier_;
  for (unsigned attempt = 0;; ++attempt) {
    if (attempt > params_.maxRetries) {
      ++timeouts_;
      return HmmStatus::Busy;
    }
    range.notifierSeq = notifier_.readBegin();
    HmmStatus st;
    {
      MmapReadLock l(mm_);
      st = hmmRangeFault(range, &hmm_);
    }
    if (st == HmmStatus::Busy) {
      ++busyRetries_;
      continue;
    }
    if (st != HmmStatus::Ok) return st;
    lock_.lock();
    if (notifier_.readRetry(range.notifierSeq)) {
      lock_.unlock();
      ++readRetries_;
      continue;
    }
    driver_.commitPfns(range);
    ++commits_;
    lock_.unlock();
    return HmmStatus::Ok;
  }
}

HmmStatus HmmMirror::fault(Va start, Va end, bool write) {
  if (start >= end || !start.isAligned(kPageSize) || !end.isAligned(kPageSize)) return HmmStatus::Inval;
  const std::uint64_t chunk = std::uint64_t(params_.faultChunkPages) << kPageShift;
  pfns_.resize(params_.faultChunkPages);
  for (Va addr = start; addr < end;) {
    const Va next = std::min(end, addr + chunk);
    HmmRange range;
    range.start = addr;
    range.end = next;
    range.hmmPfns = pfns_.data();
    range.defaultFlags = HMM_PFN_REQ_FAULT | (write ? HMM_PFN_REQ_WRITE : 0);
    range.pfnFlagsMask = 0;
    range.devPrivateOwner = owner_;
    std::fill(pfns_.begin(), pfns_.end(), 0UL);
    const HmmStatus st = rangeFault(range);
    if (st != HmmStatus::Ok) return st;
    addr = next;
  }
  return HmmStatus::Ok;
}

bool HmmMirror::invalidate(MmuIntervalNotifier& sub, const MmuNotifierRange& range, std::uint64_t curSeq) {
  // dmirror_interval_invalidate: the migration updates the device page table itself.
  if (range.owner == owner_ && ((params_.skipOwnMigrate && range.event == MmuNotifierEvent::Migrate) ||
                                (params_.skipOwnExclusive && range.event == MmuNotifierEvent::Exclusive))) {
    ++skippedOwn_;
    return true;
  }
  if (range.blockable()) {
    lock_.lock();
  } else if (!lock_.tryLock()) {
    ++refused_;
    return false;
  }
  sub.setSeq(curSeq);
  const Va start = std::max(range.start, sub.start());
  const Va end = sub.last().value() == ~0ull ? range.end : std::min(range.end, sub.last() + 1);
  if (start < end) driver_.zapDeviceRange(start, end, range);
  ++invalidations_;
  lock_.unlock();
  return true;
}

}  // namespace hmmsim
