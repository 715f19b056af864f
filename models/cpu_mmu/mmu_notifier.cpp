#include "models/cpu_mmu/mmu_notifier.h"

#include <limits>

#include "sim/assert.h"

namespace hmmsim {

const char* mmuNotifierEventName(MmuNotifierEvent e) {
  switch (e) {
    case MmuNotifierEvent::Unmap:
      return "unmap";
    case MmuNotifierEvent::Clear:
      return "clear";
    case MmuNotifierEvent::ProtectionVma:
      return "protection_vma";
    case MmuNotifierEvent::ProtectionPage:
      return "protection_page";
    case MmuNotifierEvent::SoftDirty:
      return "soft_dirty";
    case MmuNotifierEvent::Release:
      return "release";
    case MmuNotifierEvent::Migrate:
      return "migrate";
    case MmuNotifierEvent::Exclusive:
      return "exclusive";
  }
  return "?";
}

void mmuNotifierRangeInit(MmuNotifierRange& range, MmuNotifierEvent event, unsigned flags, Mm* mm, Va start,
                          Va end) {
  mmuNotifierRangeInitOwner(range, event, flags, mm, start, end, nullptr);
}

void mmuNotifierRangeInitOwner(MmuNotifierRange& range, MmuNotifierEvent event, unsigned flags, Mm* mm,
                               Va start, Va end, const void* owner) {
  range.mm = mm;
  range.start = start;
  range.end = end;
  range.flags = flags;
  range.event = event;
  range.owner = owner;
}

// --- MmuNotifier ---------------------------------------------------------------------------------

MmuNotifier::~MmuNotifier() {
  HMMSIM_ASSERT(!registered_ && !hook_.is_linked(),
                "MmuNotifier destroyed while registered: call mmuNotifierUnregister() first");
}
void MmuNotifier::release(Mm* /*mm*/) {}
Errno MmuNotifier::invalidateRangeStart(const MmuNotifierRange& /*range*/) {
  return Errno::Ok;
}
void MmuNotifier::invalidateRangeEnd(const MmuNotifierRange& /*range*/) {}
void MmuNotifier::archInvalidateSecondaryTlbs(Mm* /*mm*/, Va /*start*/, Va /*end*/) {}

// --- MmuIntervalNotifier -------------------------------------------------------------------------

MmuIntervalNotifier::~MmuIntervalNotifier() {
  HMMSIM_ASSERT(!inserted(), "MmuIntervalNotifier [" << start() << ", " << last()
                                                     << "] destroyed while inserted: call "
                                                        "mmuIntervalNotifierRemove() first");
}

std::uint64_t MmuIntervalNotifier::readBegin() {
  HMMSIM_ASSERT(subscriptions_, "mmu_interval_read_begin on a notifier that is not inserted");
  return subscriptions_->mmuIntervalReadBegin(*this);
}
bool MmuIntervalNotifier::readRetry(std::uint64_t seq) {
  HMMSIM_ASSERT(subscriptions_, "mmu_interval_read_retry on a notifier that is not inserted");
  return subscriptions_->mmuIntervalReadRetry(*this, seq);
}
bool MmuIntervalNotifier::checkRetry(std::uint64_t seq) {
  HMMSIM_ASSERT(subscriptions_, "mmu_interval_check_retry on a notifier that is not inserted");
  return subscriptions_->mmuIntervalCheckRetry(*this, seq);
}
void MmuIntervalNotifier::remove() {
  HMMSIM_ASSERT(subscriptions_, "mmu_interval_notifier_remove on a notifier that is not inserted");
  subscriptions_->mmuIntervalNotifierRemove(*this);
}

// --- MmuNotifierSubscriptions --------------------------------------------------------------------

MmuNotifierSubscriptions::MmuNotifierSubscriptions(Mm* mm, std::string statsName, Blocker& blocker)
    : mm_(mm),
      blocker_(&blocker),
      stats_(std::move(statsName)),
      invStart_(
          stats_.counter("invalidate_start", "calls",
                         "invalidate_range_start (blocking and non-blocking) and release invalidations")),
      invStartNonblock_(stats_.counter("invalidate_start_nonblock", "calls",
                                       "invalidate_range_start_nonblock calls (OOM-reaper path)")),
      invNonblockAgain_(stats_.counter("invalidate_nonblock_again", "calls",
                                       "non-blocking starts refused with -EAGAIN by a subscriber")),
      invEnd_(stats_.counter("invalidate_end", "calls", "invalidate_range_end calls")),
      intervalCalls_(stats_.counter("interval_invalidate_calls", "calls",
                                    "mmu_interval_notifier_ops->invalidate callbacks called")),
      intervalRefused_(stats_.counter("interval_invalidate_refused", "calls",
                                      "interval invalidate callbacks that returned false")),
      intervalWarn_(stats_.counter("interval_invalidate_warn", "calls",
                                   "interval callbacks returning false on a blockable range (kernel WARN)")),
      plainStartCalls_(stats_.counter("plain_start_calls", "calls",
                                      "mmu_notifier_ops->invalidate_range_start callbacks called")),
      plainStartFailed_(stats_.counter("plain_start_failed", "calls",
                                       "plain invalidate_range_start callbacks that returned an error")),
      plainStartWarn_(stats_.counter("plain_start_warn", "calls",
                                     "plain start failures on a blockable range or with an error other than "
                                     "-EAGAIN (kernel WARN)")),
      plainEndCalls_(stats_.counter("plain_end_calls", "calls",
                                    "mmu_notifier_ops->invalidate_range_end callbacks called")),
      seqBumps_(
          stats_.counter("seq_bumps", "events",
                         "odd->even transitions of invalidate_seq (last end of an overlapping period)")),
      deferredInserts_(stats_.counter("deferred_inserts", "events",
                                      "interval inserts deferred to the last invalidate_range_end")),
      deferredRemoves_(stats_.counter("deferred_removes", "events",
                                      "interval removes deferred to the last invalidate_range_end")),
      readBegin_(stats_.counter("read_begin", "calls", "mmu_interval_read_begin calls")),
      readBeginSleeps_(
          stats_.counter("read_begin_sleeps", "calls",
                         "mmu_interval_read_begin calls that slept until an invalidation ended")),
      readRetry_(stats_.counter("read_retry", "events", "mmu_interval_read_retry calls that returned true")),
      checkRetry_(
          stats_.counter("check_retry", "events", "mmu_interval_check_retry calls that returned true")),
      removeSleeps_(stats_.counter("remove_sleeps", "calls",
                                   "mmu_interval_notifier_remove calls that waited for an invalidation")),
      releaseCalls_(stats_.counter("release_calls", "calls", "mmu_notifier_release calls (mm teardown)")),
      releaseWarn_(stats_.counter("release_warn", "events",
                                  "interval callbacks returning false for the RELEASE event (kernel WARN)")),
      archInvalidate_(stats_.counter("arch_invalidate_secondary_tlbs", "calls",
                                     "mmu_notifier_arch_invalidate_secondary_tlbs calls")),
      nonblockItreeLeftActive_(stats_.counter(
          "nonblock_itree_left_active", "events",
          "non-blocking starts failed by a plain subscriber after the interval part started; the kernel "
          "leaves active_invalidate_ranges raised")),
      unregisterSleeps_(
          stats_.counter("unregister_sleeps", "calls",
                         "mmu_notifier_unregister/release calls that waited for running callbacks")),
      insertAfterRelease_(
          stats_.counter("insert_after_release", "calls",
                         "interval inserts refused with -EINVAL because the mm has no users")) {
  for (unsigned e = 0; e < kMmuNotifierEventCount; ++e) {
    const char* name = mmuNotifierEventName(static_cast<MmuNotifierEvent>(e));
    invStartEvent_[e] = &stats_.counter(std::string("invalidate_start_") + name, "calls",
                                        std::string("invalidations started with event MMU_NOTIFY_") + name);
  }
}

MmuNotifierSubscriptions::~MmuNotifierSubscriptions() {
  HMMSIM_ASSERT(hlistCallbacksRunning_ == 0, "mmu_notifier_subscriptions destroyed during a callback");
  HMMSIM_ASSERT(notifierCount() == 0, "mmu_notifier_subscriptions destroyed with "
                                          << notifierCount() << " plain subscriber(s) registered");
  HMMSIM_ASSERT(itree_.empty() && deferred_.empty(),
                "mmu_notifier_subscriptions destroyed with "
                    << itree_.size() + deferred_.size()
                    << " interval notifier(s) still inserted: drivers must mmu_interval_notifier_remove()");
  // Zombies (unhashed, still linked) cannot exist without a walk in progress.
  list_.clear();
}

// --- plain subscriptions -----------------------------------------------------------------------

Errno MmuNotifierSubscriptions::mmuNotifierRegister(MmuNotifier& sub) {
  HMMSIM_ASSERT(!sub.registered_ && !sub.hook_.is_linked(),
                "mmu_notifier_register of a notifier that is already registered");
  HMMSIM_ASSERT(!released_, "mmu_notifier_register on an mm whose users are gone (after exit_mmap)");
  sub.mm_ = mm_;
  sub.subscriptions_ = this;
  sub.registered_ = true;
  sub.startFailed_ = false;
  list_.push_front(sub);  // hlist_add_head_rcu
  return Errno::Ok;
}

void MmuNotifierSubscriptions::unhash(MmuNotifier& sub) {
  if (!sub.registered_) return;
  sub.registered_ = false;
  if (hlistCallbacksRunning_ == 0)
    list_.erase(list_.iterator_to(sub));
  else
    ++zombies_;
}

void MmuNotifierSubscriptions::hlistExit() {
  HMMSIM_ASSERT(hlistCallbacksRunning_ > 0, "unbalanced plain-subscriber walk");
  if (--hlistCallbacksRunning_ != 0) return;
  if (zombies_) {
    for (auto it = list_.begin(); it != list_.end();) {
      if (!it->registered_)
        it = list_.erase(it);
      else
        ++it;
    }
    zombies_ = 0;
  }
  srcuWq_.wakeUpAll();
}

void MmuNotifierSubscriptions::mmuNotifierUnregister(MmuNotifier& sub) {
  HMMSIM_ASSERT(sub.subscriptions_ == this,
                "mmu_notifier_unregister of a notifier not registered on this mm");
  if (sub.registered_) {
    hlistEnter();  // srcu_read_lock: ->release runs as an SRCU reader
    sub.release(mm_);
    hlistExit();
    unhash(sub);
  }
  // synchronize_srcu(): wait for every running plain-subscriber callback of this mm.
  if (waitEvent(
          *blocker_, srcuWq_, [this] { return hlistCallbacksRunning_ == 0; },
          "mmu_notifier_unregister (synchronize_srcu: a subscriber callback is running)"))
    ++unregisterSleeps_;
  HMMSIM_ASSERT(!sub.hook_.is_linked(), "unhashed notifier still linked after synchronize_srcu");
  sub.subscriptions_ = nullptr;
  sub.mm_ = nullptr;
}

// --- interval subscriptions --------------------------------------------------------------------

Errno MmuNotifierSubscriptions::mmuIntervalNotifierInsert(MmuIntervalNotifier& sub, Va start,
                                                          std::uint64_t length, MmuIntervalNotifierOps& ops) {
  HMMSIM_ASSERT(!sub.inserted(), "mmu_interval_notifier_insert of a notifier that is already inserted");
  // The tree stores closed intervals: last = start + length - 1 must not wrap.
  if (length == 0 || start.value() > std::numeric_limits<std::uint64_t>::max() - (length - 1))
    return Errno::Overflow;
  // Must be called with an mmget() reference: after exit_mmap there is none (WARN, -EINVAL).
  if (released_) {
    ++insertAfterRelease_;
    return Errno::Inval;
  }

  sub.mm_ = mm_;
  sub.ops_ = &ops;
  sub.subscriptions_ = this;
  sub.node().start = start.value();
  sub.node().last = start.value() + (length - 1);

  if (activeInvalidateRanges_) {
    // Some invalidation is running and we cannot know its range: assume it covers the new one.
    if (isInvalidating()) {
      // Callbacks may be walking the tree: defer the insert to the last end.
      deferred_.push_front(sub);
      ++deferredInserts_;
    } else {
      invalidateSeq_ |= 1;
      itree_.insert(sub.node());
    }
    // Equal to the (odd) global seq: readBegin sleeps until the running invalidation ends.
    sub.invalidateSeq_ = invalidateSeq_;
  } else {
    HMMSIM_ASSERT(!isInvalidating(), "invalidate_seq odd with no active invalidation");
    // Odd, different from the current seq, and far from being reached again.
    sub.invalidateSeq_ = invalidateSeq_ - 1;
    itree_.insert(sub.node());
  }
  return Errno::Ok;
}

void MmuNotifierSubscriptions::mmuIntervalNotifierRemove(MmuIntervalNotifier& sub) {
  HMMSIM_ASSERT(sub.subscriptions_ == this,
                "mmu_interval_notifier_remove of a notifier not inserted on this mm");
  std::uint64_t seq = 0;
  if (isInvalidating()) {
    if (!sub.inTree()) {
      // Still a deferred insert: cancel it; no callback can have seen it.
      HMMSIM_ASSERT(sub.deferredHook_.is_linked(), "interval notifier neither in the tree nor deferred");
      deferred_.erase(deferred_.iterator_to(sub));
    } else {
      HMMSIM_ASSERT(!sub.deferredHook_.is_linked(), "mmu_interval_notifier_remove called twice");
      deferred_.push_front(sub);
      ++deferredRemoves_;
      seq = invalidateSeq_;
    }
  } else {
    HMMSIM_ASSERT(sub.inTree(), "interval notifier not in the tree while no invalidation is running");
    itree_.remove(sub.node());
  }

  // Wait until the invalidation that may be calling sub has ended (the deferred removal is then done).
  if (seq) {
    if (waitEvent(
            *blocker_, wq_, [this, seq] { return invalidateSeq_ != seq; },
            "mmu_interval_notifier_remove (waiting for the running invalidation to end)"))
      ++removeSleeps_;
    HMMSIM_ASSERT(!sub.inTree() && !sub.deferredHook_.is_linked(), "deferred removal not applied");
  }
  sub.subscriptions_ = nullptr;
}

std::uint64_t MmuNotifierSubscriptions::mmuIntervalReadBegin(MmuIntervalNotifier& sub) {
  HMMSIM_ASSERT(sub.subscriptions_ == this, "mmu_interval_read_begin of a notifier not inserted on this mm");
  ++readBegin_;
  ExecContext& ctx = blocker_->current();
  lock_.lock(ctx);  // spin_lock(&subscriptions->lock)
  const std::uint64_t seq = sub.invalidateSeq_;
  const bool invalidating = seq == invalidateSeq_;
  lock_.unlock(ctx);  // dropped before sleeping, as the kernel does
  // Equal to the odd global seq: an invalidation of sub's range is between start and end.
  if (invalidating) {
    if (waitEvent(
            *blocker_, wq_, [this, seq] { return invalidateSeq_ != seq; },
            "mmu_interval_read_begin (the range is being invalidated)"))
      ++readBeginSleeps_;
  }
  // readRetry may already be true here; not looping lets the caller bound its own retries.
  return seq;
}

bool MmuNotifierSubscriptions::mmuIntervalReadRetry(MmuIntervalNotifier& sub, std::uint64_t seq) {
  const bool retry = sub.invalidateSeq_ != seq;
  if (retry) ++readRetry_;
  return retry;
}

bool MmuNotifierSubscriptions::mmuIntervalCheckRetry(MmuIntervalNotifier& sub, std::uint64_t seq) {
  const bool retry = sub.invalidateSeq_ != seq;
  if (retry) ++checkRetry_;
  return retry;
}

// --- the invalidation core -----------------------------------------------------------------------

MmuIntervalNotifier* MmuNotifierSubscriptions::itreeInvStartRange(const MmuNotifierRange& range,
                                                                  std::uint64_t& seq) {
  ExecContext& ctx = blocker_->current();
  lock_.lock(ctx);  // spin_lock(&subscriptions->lock)
  ++activeInvalidateRanges_;
  IntervalTreeNode* node = itree_.iterFirst(range.start.value(), range.end.value() - 1);
  if (node) invalidateSeq_ |= 1;
  seq = invalidateSeq_;
  lock_.unlock(ctx);
  return node ? &MmuIntervalNotifier::fromNode(*node) : nullptr;
}

MmuIntervalNotifier* MmuNotifierSubscriptions::itreeInvNext(MmuIntervalNotifier& sub,
                                                            const MmuNotifierRange& range) {
  IntervalTreeNode* node = itree_.iterNext(&sub.node(), range.start.value(), range.end.value() - 1);
  return node ? &MmuIntervalNotifier::fromNode(*node) : nullptr;
}

void MmuNotifierSubscriptions::itreeInvEnd() {
  HMMSIM_ASSERT(activeInvalidateRanges_ > 0,
                "invalidate_range_end without a matching invalidate_range_start");
  ExecContext& ctx = blocker_->current();
  lock_.lock(ctx);  // spin_lock(&subscriptions->lock)
  if (--activeInvalidateRanges_ != 0 || !isInvalidating()) {
    lock_.unlock(ctx);
    return;
  }

  ++invalidateSeq_;  // even: idle
  ++seqBumps_;
  // Apply deferred work newest first (the kernel's hlist_add_head + forward walk).
  while (!deferred_.empty()) {
    MmuIntervalNotifier& sub = deferred_.front();
    deferred_.pop_front();
    if (!sub.inTree())
      itree_.insert(sub.node());
    else
      itree_.remove(sub.node());
  }
  lock_.unlock(ctx);
  wq_.wakeUpAll();
}

Errno MmuNotifierSubscriptions::itreeInvalidate(const MmuNotifierRange& range) {
  std::uint64_t curSeq = 0;
  for (MmuIntervalNotifier* sub = itreeInvStartRange(range, curSeq); sub; sub = itreeInvNext(*sub, range)) {
    ++intervalCalls_;
    if (!sub->ops_->invalidate(*sub, range, curSeq)) {
      ++intervalRefused_;
      if (range.blockable()) {  // a callback may only refuse a non-blockable range: WARN, carry on
        ++intervalWarn_;
        continue;
      }
      // The non-blocking caller will not call invalidate_range_end: end the interval part now.
      itreeInvEnd();
      return Errno::Again;
    }
  }
  return Errno::Ok;
}

Errno MmuNotifierSubscriptions::hlistInvalidateRangeStart(const MmuNotifierRange& range) {
  Errno ret = Errno::Ok;
  hlistEnter();
  for (MmuNotifier& sub : list_) {
    if (!sub.registered_) continue;
    ++plainStartCalls_;
    const Errno r = sub.invalidateRangeStart(range);
    sub.startFailed_ = r != Errno::Ok;
    if (r != Errno::Ok) {
      ++plainStartFailed_;
      if (range.blockable() || r != Errno::Again) ++plainStartWarn_;
      ret = r;  // every subscriber is still called: none can learn that another failed
    }
  }
  if (ret != Errno::Ok) {
    // Subscribers whose start succeeded expect their end: call it now (the kernel calls every end
    // op; a subscriber that can fail must not have one, so this is the same set).
    for (MmuNotifier& sub : list_) {
      if (!sub.registered_ || sub.startFailed_) continue;
      ++plainEndCalls_;
      sub.invalidateRangeEnd(range);
    }
  }
  hlistExit();
  return ret;
}

void MmuNotifierSubscriptions::hlistInvalidateEnd(const MmuNotifierRange& range) {
  hlistEnter();
  for (MmuNotifier& sub : list_) {
    if (!sub.registered_) continue;
    ++plainEndCalls_;
    sub.invalidateRangeEnd(range);
  }
  hlistExit();
}

Errno MmuNotifierSubscriptions::invalidateRangeStartCommon(MmuNotifierRange& range) {
  HMMSIM_ASSERT(range.start < range.end,
                "mmu notifier range [" << range.start << ", " << range.end << ") is empty or inverted");
  ++invStart_;
  ++*invStartEvent_[static_cast<unsigned>(range.event)];
  const Errno r = itreeInvalidate(range);
  if (r != Errno::Ok) return r;
  if (list_.empty()) return Errno::Ok;
  const Errno h = hlistInvalidateRangeStart(range);
  if (h != Errno::Ok && !range.blockable()) {
    // mm/mmu_notifier.c returns here without ending the interval part it started.
    ++nonblockItreeLeftActive_;
  }
  return h;
}

void MmuNotifierSubscriptions::invalidateRangeStart(MmuNotifierRange& range, LockSite site) {
  // mmu_notifier_invalidate_range_start: might_sleep() (the callbacks may sleep).
  blocker_->current().mightSleep("mmu_notifier_invalidate_range_start (blockable)", site);
  range.flags |= kMmuNotifierRangeBlockable;
  // The blocking entry point returns void: failures were counted as WARNs.
  (void)invalidateRangeStartCommon(range);
}

Errno MmuNotifierSubscriptions::invalidateRangeStartNonblock(MmuNotifierRange& range) {
  range.flags &= ~kMmuNotifierRangeBlockable;
  ++invStartNonblock_;
  // non_block_start()/non_block_end() around the callbacks: none of them may sleep.
  ExecContext& ctx = blocker_->current();
  ctx.nonBlockStart();
  const Errno r = invalidateRangeStartCommon(range);
  ctx.nonBlockEnd();
  if (r != Errno::Ok) ++invNonblockAgain_;
  return r;
}

void MmuNotifierSubscriptions::invalidateRangeEnd(MmuNotifierRange& range) {
  ++invEnd_;
  itreeInvEnd();
  if (!list_.empty()) hlistInvalidateEnd(range);
}

void MmuNotifierSubscriptions::archInvalidateSecondaryTlbs(Va start, Va end) {
  ++archInvalidate_;
  if (list_.empty()) return;
  hlistEnter();
  for (MmuNotifier& sub : list_) {
    if (sub.registered_) sub.archInvalidateSecondaryTlbs(mm_, start, end);
  }
  hlistExit();
}

void MmuNotifierSubscriptions::release() {
  HMMSIM_ASSERT(!released_, "mmu_notifier_release called twice (exit_mmap runs once per mm)");
  released_ = true;
  ++releaseCalls_;
  // mn_itree_release: a blockable RELEASE invalidation of everything, ended at once.
  MmuNotifierRange range;
  mmuNotifierRangeInit(range, MmuNotifierEvent::Release, kMmuNotifierRangeBlockable, mm_, Va(0),
                       Va(std::numeric_limits<std::uint64_t>::max()));
  ++invStart_;
  ++*invStartEvent_[static_cast<unsigned>(MmuNotifierEvent::Release)];
  std::uint64_t curSeq = 0;
  for (MmuIntervalNotifier* sub = itreeInvStartRange(range, curSeq); sub; sub = itreeInvNext(*sub, range)) {
    ++intervalCalls_;
    if (!sub->ops_->invalidate(*sub, range, curSeq)) {
      ++intervalRefused_;
      ++releaseWarn_;
    }
  }
  itreeInvEnd();

  // mn_hlist_release: every ->release, then unhash everyone; later unregisters only wait.
  if (list_.empty()) return;
  hlistEnter();
  for (MmuNotifier& sub : list_) {
    if (sub.registered_) sub.release(mm_);
  }
  hlistExit();
  for (auto it = list_.begin(); it != list_.end();) {
    MmuNotifier& sub = *it;
    ++it;  // unhash may unlink sub
    unhash(sub);
  }
  if (waitEvent(
          *blocker_, srcuWq_, [this] { return hlistCallbacksRunning_ == 0; },
          "mmu_notifier_release (synchronize_srcu: a subscriber callback is running)"))
    ++unregisterSleeps_;
}

}  // namespace hmmsim
