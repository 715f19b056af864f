// RwSemaphore. See rwsem.h.
#include "sim/rwsem.h"

#include <string>

#include "sim/assert.h"

namespace hmmsim {

void RwSemaphore::sleepUntilGranted(Blocker& b, Waiter& w, const char* what) {
  queue_.push_back(&w);
  // Not waitEvent: the acquisition already was the might-sleep point (no second lockdep check).
  while (!w.granted) b.sleepOn(w.wq, what);
}

void RwSemaphore::downRead(Blocker& b, LockSite site) {
  ExecContext& ctx = b.current();
  ctx.acquire(this, *cls_, LockMode::Read, 0, false, site);
  if (writer_ == nullptr && queue_.empty()) {
    ++readers_;
    return;
  }
  ++contendedReads_;
  Waiter w(&ctx, LockMode::Read);
  const std::string what = std::string("down_read(") + cls_->name + ")";
  sleepUntilGranted(b, w, what.c_str());
}

void RwSemaphore::downWrite(Blocker& b, unsigned subclass, LockSite site) {
  ExecContext& ctx = b.current();
  ctx.acquire(this, *cls_, LockMode::Write, subclass, false, site);
  if (writer_ == nullptr && readers_ == 0 && queue_.empty()) {
    writer_ = &ctx;
    return;
  }
  ++contendedWrites_;
  Waiter w(&ctx, LockMode::Write);
  const std::string what = std::string("down_write(") + cls_->name + ")";
  sleepUntilGranted(b, w, what.c_str());
}

bool RwSemaphore::downReadTrylock(Blocker& b, LockSite site) {
  if (writer_ != nullptr || !queue_.empty()) return false;
  ++readers_;
  b.current().acquire(this, *cls_, LockMode::Read, 0, true, site);
  return true;
}

bool RwSemaphore::downWriteTrylock(Blocker& b, LockSite site) {
  if (writer_ != nullptr || readers_ > 0 || !queue_.empty()) return false;
  ExecContext& ctx = b.current();
  writer_ = &ctx;
  ctx.acquire(this, *cls_, LockMode::Write, 0, true, site);
  return true;
}

void RwSemaphore::upRead(Blocker& b, LockSite site) {
  b.current().release(this, site);
  HMMSIM_ASSERT(readers_ > 0 && writer_ == nullptr, "up_read(" << cls_->name << ") at "
                                                               << formatLockSite(site)
                                                               << " of an rwsem not read-locked");
  if (--readers_ == 0) markWake(false);
}

void RwSemaphore::upWrite(Blocker& b, LockSite site) {
  ExecContext& ctx = b.current();
  ctx.release(this, site);
  HMMSIM_ASSERT(writer_ == &ctx, "up_write(" << cls_->name << ") by " << ctx.name() << " at "
                                             << formatLockSite(site) << ": "
                                             << (writer_ ? "another context holds it" : "not write-locked"));
  writer_ = nullptr;
  markWake(false);
}

void RwSemaphore::downgradeWrite(Blocker& b, LockSite site) {
  ExecContext& ctx = b.current();
  ctx.downgrade(this, site);
  HMMSIM_ASSERT(writer_ == &ctx, "downgrade_write(" << cls_->name << ") by " << ctx.name() << " at "
                                                    << formatLockSite(site) << " without the write lock");
  writer_ = nullptr;
  readers_ = 1;
  markWake(true);
}

void RwSemaphore::markWake(bool readOwned) {
  if (queue_.empty() || writer_ != nullptr) return;
  Waiter* head = queue_.front();
  if (head->mode == LockMode::Write) {
    if (readOwned || readers_ > 0) return;  // the writer waits for the readers to leave
    queue_.pop_front();
    writer_ = head->ctx;
    head->granted = true;
    head->wq.wakeUpAll();
    return;
  }
  // A reader at the head: every queued reader (up to the batch) joins, writers keep their place.
  unsigned woken = 0;
  for (auto it = queue_.begin(); it != queue_.end() && woken < kMaxReadersWakeup;) {
    Waiter* w = *it;
    if (w->mode != LockMode::Read) {
      ++it;
      continue;
    }
    it = queue_.erase(it);
    ++readers_;
    ++woken;
    w->granted = true;
    w->wq.wakeUpAll();
  }
}

}  // namespace hmmsim
