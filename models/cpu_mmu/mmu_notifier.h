#pragma once
// The mm's mmu-notifier mechanism: mm/mmu_notifier.c and include/linux/mmu_notifier.h.
//
// What it models
//  - Plain subscriptions (struct mmu_notifier + mmu_notifier_ops): release,
//    invalidate_range_start/end, arch_invalidate_secondary_tlbs; register/unregister with the
//    kernel's list order (hlist_add_head: newest subscriber is called first) and the kernel's
//    "unregister calls ->release if mmu_notifier_release has not".
//  - Interval subscriptions (struct mmu_interval_notifier + mmu_interval_notifier_ops): an interval
//    tree per mm, the collision-retry sequence protocol (mmu_interval_read_begin / read_retry /
//    check_retry / set_seq), the global invalidate_seq (starts at 2, odd while an overlapping
//    invalidation is in flight), nested and concurrent invalidations counted by
//    active_invalidate_ranges, and the deferred insert/remove list applied at the last
//    invalidate_range_end.
//  - The core entry points the mm calls around every page-table change:
//    mmu_notifier_invalidate_range_start / _start_nonblock / _end, mmu_notifier_release,
//    mmu_notifier_arch_invalidate_secondary_tlbs; and the non-blocking path's -EAGAIN unwind.
//  - The kernel's sleeps (read_begin during an invalidation of its range, remove waiting for the
//    invalidation to end, unregister waiting for running callbacks = synchronize_srcu) through an
//    injectable Blocker (sim/wait_queue.h): asserts in pure C++, sleeps an SC_THREAD in SystemC.
//
// What it leaves out (and why)
//  - clear_flush_young / clear_young / test_young: hmmsim does no page aging or reclaim.
//  - mmu_notifier_get/put with alloc_notifier/free_notifier and mmu_notifier_synchronize: drivers
//    in hmmsim own their MmuNotifier objects and register/unregister them explicitly.
//  - The two-pass invalidate_start/invalidate_finish interval ops (very recent mainline).
//  - SRCU: the simulator is cooperative (one SystemC thread runs at a time); SRCU's "wait for
//    running callbacks" is modelled by a count of callbacks in progress. subscriptions->lock is a
//    SpinLock checked by lockdep (sim/lockdep.h) around the sequence bookkeeping, as the kernel
//    takes it; the lockdep pseudo-lock __mmu_notifier_invalidate_range_start_map is not modelled.
//  - mm_users/mm_count references (mmgrab/mmdrop): the Mm owns this object and outlives it.
//  - The lazy allocation of mm->notifier_subscriptions (mm_has_notifiers()): every Mm owns one;
//    with nothing registered the entry points do no callbacks, as in the kernel.
//
// Timing: none. This is pure bookkeeping (no <systemc>); the SystemC shell and the device models
// charge time for what the callbacks do.
//
// Kernel map: MmuNotifierSubscriptions = struct mmu_notifier_subscriptions (mm->notifier_subscriptions);
// its member functions keep the kernel's names in lowerCamel (invalidateRangeStart =
// mmu_notifier_invalidate_range_start, ...). The per-subscription calls are members of
// MmuIntervalNotifier, named as docs/architecture.md does: sub.readBegin() = mmu_interval_read_begin,
// readRetry, checkRetry, setSeq, remove = mmu_interval_notifier_remove.

#include <array>
#include <cstdint>
#include <string>

#include <boost/intrusive/list.hpp>

#include "models/cpu_mmu/interval_tree.h"
#include "sim/errno.h"
#include "sim/lockdep.h"
#include "sim/stats.h"
#include "sim/strong_types.h"
#include "sim/wait_queue.h"

namespace hmmsim {

class Mm;  // models/cpu_mmu/mm.h; only pointers to it are held here
class MmuNotifierSubscriptions;
class MmuIntervalNotifier;

/// Why the mm invalidates a range (enum mmu_notifier_event; values are the kernel's).
enum class MmuNotifierEvent : unsigned {
  Unmap = 0,  ///< MMU_NOTIFY_UNMAP: munmap(), or mremap() moving the range away
  Clear = 1,  ///< MMU_NOTIFY_CLEAR: page-table entries cleared (madvise(DONTNEED), page replacement, COW
              ///< break, THP split...)
  ProtectionVma =
      2,  ///< MMU_NOTIFY_PROTECTION_VMA: mprotect(); the vma's permissions describe the whole range
  ProtectionPage =
      3,  ///< MMU_NOTIFY_PROTECTION_PAGE: per-page R/W change; the user must inspect the CPU page table
  SoftDirty = 4,  ///< MMU_NOTIFY_SOFT_DIRTY: soft-dirty accounting; same pages, same access flags
  Release = 5,    ///< MMU_NOTIFY_RELEASE: the mm is being torn down ([0, ULONG_MAX), blockable)
  Migrate = 6,  ///< MMU_NOTIFY_MIGRATE: migrate_vma_collect(); owner = pgmap owner, so a driver may skip its
                ///< own migration
  Exclusive = 7,  ///< MMU_NOTIFY_EXCLUSIVE: conversion to a device-exclusive entry; owner =
                  ///< make_device_exclusive() caller
};
inline constexpr unsigned kMmuNotifierEventCount = 8;

/// "unmap", "clear", "protection_vma", "protection_page", "soft_dirty", "release", "migrate",
/// "exclusive" (the kernel's MMU_NOTIFY_* suffix, lower case; also used in stat names).
const char* mmuNotifierEventName(MmuNotifierEvent e);

/// mmu_notifier_subscriptions->lock's lock class (innermost: taken under the mmap lock and the
/// drivers' update locks, never held across a callback or a sleep).
inline constexpr LockClass kMmuNotifierLockClass{"mmu_notifier_subscriptions.lock", kLockOrderNotifierLock,
                                                 LockKind::Spinning};

/// MMU_NOTIFIER_RANGE_BLOCKABLE: the callbacks may sleep.
inline constexpr unsigned kMmuNotifierRangeBlockable = 1u << 0;

/// struct mmu_notifier_range: what is being invalidated and why.
struct MmuNotifierRange {
  Mm* mm = nullptr;    ///< the address space (nullptr only in unit tests without an Mm)
  Va start;            ///< first byte invalidated
  Va end;              ///< one past the last byte invalidated (exclusive), as in the kernel
  unsigned flags = 0;  ///< kMmuNotifierRangeBlockable or 0; set by invalidateRangeStart*()
  MmuNotifierEvent event = MmuNotifierEvent::Unmap;
  const void* owner = nullptr;  ///< MIGRATE/EXCLUSIVE: the initiator's owner cookie, else nullptr

  /// mmu_notifier_range_blockable(): callbacks may sleep.
  bool blockable() const { return (flags & kMmuNotifierRangeBlockable) != 0; }
};

/// mmu_notifier_range_init(): fills every field; owner = nullptr.
void mmuNotifierRangeInit(MmuNotifierRange& range, MmuNotifierEvent event, unsigned flags, Mm* mm, Va start,
                          Va end);
/// mmu_notifier_range_init_owner(): as mmuNotifierRangeInit, with the owner cookie.
void mmuNotifierRangeInitOwner(MmuNotifierRange& range, MmuNotifierEvent event, unsigned flags, Mm* mm,
                               Va start, Va end, const void* owner);
/// mmu_notifier_range_blockable().
inline bool mmuNotifierRangeBlockable(const MmuNotifierRange& range) {
  return range.blockable();
}

// ---------------------------------------------------------------------------------------------
// Plain subscriptions

/// struct mmu_notifier with its mmu_notifier_ops as virtual functions. Derive, override what the
/// kernel driver would put in its ops table, and register with
/// MmuNotifierSubscriptions::mmuNotifierRegister(). The defaults do nothing (a NULL op).
///
/// Difference from the kernel: an ops table can leave invalidate_range_end NULL; a C++ subscriber
/// always has one (the default no-op). The kernel requires that a subscriber whose start can fail
/// has no end op, and on a failed non-blocking start calls end on every subscriber that has one;
/// hmmsim calls end on every subscriber whose start succeeded, which is the same for every correct
/// kernel notifier (see MmuNotifierSubscriptions::invalidateRangeStartNonblock).
class MmuNotifier {
 public:
  MmuNotifier() = default;
  MmuNotifier(const MmuNotifier&) = delete;
  MmuNotifier& operator=(const MmuNotifier&) = delete;
  /// Must be unregistered (or released by mmu_notifier_release) before destruction.
  virtual ~MmuNotifier();

  /// ops->release: the mm is going away (mmu_notifier_release from exit_mmap), or this
  /// subscription is being unregistered before that. Tear down every secondary mapping and create
  /// no more. Called at most once per registration.
  virtual void release(Mm* mm);

  /// ops->invalidate_range_start: every page in [range.start, range.end) is still mapped; stop
  /// using secondary mappings of the range and create none until the paired end.
  /// Returns Errno::Ok, or Errno::Again when it would have to sleep and !range.blockable() (only
  /// legal on the non-blocking path; a failure on a blockable range is counted as a kernel WARN
  /// and ignored, as the kernel does).
  virtual Errno invalidateRangeStart(const MmuNotifierRange& range);

  /// ops->invalidate_range_end: the page-table change is complete (pages may have been freed).
  virtual void invalidateRangeEnd(const MmuNotifierRange& range);

  /// ops->arch_invalidate_secondary_tlbs: a TLB that shares the CPU page tables (IOMMU SVA/ATS)
  /// must drop [start, end) now; called whenever the CPU TLB is flushed for this mm. Must not sleep.
  /// The kernel refuses a subscriber that implements both this and start/end (-EINVAL); hmmsim
  /// cannot see which virtuals are overridden, so that rule is the subscriber's to keep.
  virtual void archInvalidateSecondaryTlbs(Mm* mm, Va start, Va end);

  /// The mm this is registered on (kept after release until unregister, as the kernel does).
  Mm* mm() const { return mm_; }
  /// The subscriptions it was registered with; non-null from register until unregister returns
  /// (also after mmu_notifier_release unhashed it: unregister is still owed).
  MmuNotifierSubscriptions* subscriptions() const { return subscriptions_; }
  /// True between register and unregister/release (the kernel's !hlist_unhashed()).
  bool registered() const { return registered_; }

 private:
  friend class MmuNotifierSubscriptions;
  boost::intrusive::list_member_hook<boost::intrusive::link_mode<boost::intrusive::safe_link>> hook_;
  Mm* mm_ = nullptr;
  MmuNotifierSubscriptions* subscriptions_ = nullptr;
  /// Logically on the list. Unregister/release clear it at once; the hook is unlinked only when no
  /// walk of the list is in progress (the RCU-list idiom: a walker never loses its position).
  bool registered_ = false;
  bool startFailed_ = false;  ///< scratch for the non-blocking unwind (a non-blocking walk cannot interleave)
};

// ---------------------------------------------------------------------------------------------
// Interval subscriptions

/// struct mmu_interval_notifier_ops. Declared here (the lower layer), implemented by drivers
/// (hmm mirror, dmirror, GPU...).
class MmuIntervalNotifierOps {
 public:
  virtual ~MmuIntervalNotifierOps() = default;
  /// Called for every invalidation that overlaps sub's interval, with the odd sequence number of
  /// that invalidation. Contract (the kernel's): under the driver's update lock, call
  /// sub.setSeq(curSeq) (mmu_interval_set_seq) and tear down device mappings in the range; on
  /// return the device must no longer use them. May sleep when range.blockable().
  /// Returns true on success; false only when it would have to sleep and !range.blockable()
  /// (the core then fails the non-blocking start with Errno::Again). On a blockable range or on
  /// RELEASE a false return is a driver bug: counted (kernel WARN_ON) and otherwise ignored.
  virtual bool invalidate(MmuIntervalNotifier& sub, const MmuNotifierRange& range, std::uint64_t curSeq) = 0;
};

/// struct mmu_interval_notifier: one subscription to the VA interval [start, start + length).
/// The interval-tree node is a private base (the kernel's embedded interval_tree member).
class MmuIntervalNotifier : private IntervalTreeNode {
 public:
  MmuIntervalNotifier() = default;
  MmuIntervalNotifier(const MmuIntervalNotifier&) = delete;
  MmuIntervalNotifier& operator=(const MmuIntervalNotifier&) = delete;
  /// Must have been removed (mmuIntervalNotifierRemove) before destruction.
  ~MmuIntervalNotifier();

  /// First byte of the interval.
  Va start() const { return Va(IntervalTreeNode::start); }
  /// Last byte of the interval (inclusive: the kernel stores start + length - 1).
  Va last() const { return Va(IntervalTreeNode::last); }
  Mm* mm() const { return mm_; }
  MmuIntervalNotifierOps* ops() const { return ops_; }
  MmuNotifierSubscriptions* subscriptions() const { return subscriptions_; }
  /// interval_sub->invalidate_seq: the odd seq of the last invalidation that called us (after
  /// setSeq), or the initial odd value given at insert.
  std::uint64_t invalidateSeq() const { return invalidateSeq_; }
  /// True between insert and remove, whether in the tree or still on the deferred-insert list.
  bool inserted() const { return subscriptions_ != nullptr; }
  /// True when linked in the interval tree (callbacks can reach it).
  bool inTree() const { return IntervalTreeNode::inTree(); }

  // The per-subscription kernel API, spelled once (here): mmu_interval_read_begin(sub) is
  // sub.readBegin(), and so on. Inserting takes an mm: mmuIntervalNotifierInsert(sub, mm, ...) in
  // models/cpu_mmu/mm.h (MmuNotifierSubscriptions::mmuIntervalNotifierInsert without an Mm).

  /// mmu_interval_read_begin(): returns this notifier's current invalidateSeq as the collision
  /// seq. If that equals the (odd) global seq, the range is being invalidated right now: sleeps
  /// (via the Blocker) until the global seq changes, then returns the same seq (readRetry may then
  /// already be true, as in the kernel). Counts "read_begin" and "read_begin_sleeps".
  std::uint64_t readBegin();
  /// mmu_interval_read_retry(): true if an invalidation hit the range since readBegin returned
  /// `seq`; the caller must hold the same driver lock that invalidate() holds around setSeq.
  /// Counts a true result ("read_retry").
  bool readRetry(std::uint64_t seq);
  /// mmu_interval_check_retry(): the same test without the lock requirement, as an early-exit hint
  /// (hmm_range_fault uses it). Counts a true result ("check_retry").
  bool checkRetry(std::uint64_t seq);
  /// mmu_interval_set_seq(): called by ops->invalidate with its curSeq, under the driver lock.
  void setSeq(std::uint64_t curSeq) { invalidateSeq_ = curSeq; }
  /// mmu_interval_notifier_remove(): unsubscribes. When no overlapping invalidation is in flight it
  /// is unlinked at once. Otherwise the removal is deferred to the last invalidateRangeEnd and this
  /// call sleeps (via the Blocker) until that end, so that on return no callback is running or
  /// will run for this notifier; if it was still a deferred insert, the insert is cancelled and
  /// nothing waits. Must not be called from an ops callback (deadlock).
  void remove();

 private:
  friend class MmuNotifierSubscriptions;
  static MmuIntervalNotifier& fromNode(IntervalTreeNode& n) { return static_cast<MmuIntervalNotifier&>(n); }
  IntervalTreeNode& node() { return *this; }

  boost::intrusive::list_member_hook<boost::intrusive::link_mode<boost::intrusive::safe_link>> deferredHook_;
  MmuIntervalNotifierOps* ops_ = nullptr;
  Mm* mm_ = nullptr;
  MmuNotifierSubscriptions* subscriptions_ = nullptr;
  std::uint64_t invalidateSeq_ = 0;
};

// ---------------------------------------------------------------------------------------------
// The per-mm state

/// struct mmu_notifier_subscriptions: owned by each Mm. Not copyable or movable (subscribers
/// point at it).
///
/// Sequence protocol (mm/mmu_notifier.c): invalidateSeq() starts at 2 (even = no invalidation of a
/// subscribed range in flight). invalidateRangeStart: ++activeInvalidateRanges; if any interval
/// overlaps, seq |= 1 (odd) and each overlapping interval gets invalidate(curSeq = the odd seq).
/// invalidateRangeEnd: --activeInvalidateRanges; the last end of an odd period does seq++ (even,
/// so exactly one bump however many invalidations nested or overlapped), applies the deferred
/// inserts/removes, and wakes sleepers. Inserts and removes while the seq is odd are deferred
/// because callbacks may be iterating the tree.
class MmuNotifierSubscriptions {
 public:
  /// The kernel's initial invalidate_seq.
  static constexpr std::uint64_t kInitialSeq = 2;

  /// `mm`: the owning Mm, passed to callbacks and stored in ranges (may be nullptr in unit tests).
  /// `statsName`: the stats group name, e.g. "top.proc0.mm.notifier".
  /// `blocker`: how a kernel sleep blocks the calling context (pure default: asserts).
  explicit MmuNotifierSubscriptions(Mm* mm, std::string statsName = "mm.notifier",
                                    Blocker& blocker = singleThreadBlocker());
  MmuNotifierSubscriptions(const MmuNotifierSubscriptions&) = delete;
  MmuNotifierSubscriptions& operator=(const MmuNotifierSubscriptions&) = delete;
  /// Asserts that no invalidation is in flight and nothing is registered any more (the kernel
  /// BUG_ONs a non-empty list in __mmu_notifier_subscriptions_destroy).
  ~MmuNotifierSubscriptions();

  Mm* mm() const { return mm_; }
  /// Replaces the Blocker (a SystemC platform installs ScBlocker before sc_start).
  void setBlocker(Blocker& blocker) { blocker_ = &blocker; }
  Blocker& blocker() const { return *blocker_; }

  // --- plain subscriptions ------------------------------------------------------------------

  /// mmu_notifier_register(): links `sub` at the head of the list (called first from now on).
  /// Returns Errno::Ok. Registering an already-registered notifier, or registering after
  /// release() (the kernel BUG_ONs mm_users <= 0), is a simulator bug (asserts); the kernel's
  /// -ENOMEM/-EINTR cannot happen here.
  Errno mmuNotifierRegister(MmuNotifier& sub);

  /// mmu_notifier_unregister(): if still linked, calls sub.release() and unlinks it; then, like
  /// synchronize_srcu(), waits until no plain-subscriber callback of this mm is running (sleeps via
  /// the Blocker; calling it from inside a callback is a deadlock and asserts in pure C++). If
  /// mmu_notifier_release already ran, release is not called again.
  void mmuNotifierUnregister(MmuNotifier& sub);

  // --- interval subscriptions ---------------------------------------------------------------

  /// mmu_interval_notifier_insert(): subscribes `sub` to [start, start + length).
  /// While an invalidation with an overlapping interval is in flight (seq odd) the tree insert is
  /// deferred to the last invalidateRangeEnd; while a non-overlapping one is in flight the insert
  /// is immediate but the seq becomes odd (the new range may be affected). sub.invalidateSeq() is
  /// set so that a readBegin/readRetry pair started now retries if needed (kernel rules).
  /// Returns Errno::Ok; Errno::Overflow if length == 0 or start + length - 1 overflows (the
  /// kernel's -EOVERFLOW; nothing changes); Errno::Inval after release() (exit_mmap ran: the kernel's
  /// WARN_ON(mm_users <= 0) -> -EINVAL; counted in "insert_after_release"). Inserting an already-inserted sub
  /// is a simulator bug (asserts). Drivers call the kernel-shaped mmuIntervalNotifierInsert(sub, mm, ...) of
  /// models/cpu_mmu/mm.h, which forwards here; unit tests without an Mm call this directly.
  Errno mmuIntervalNotifierInsert(MmuIntervalNotifier& sub, Va start, std::uint64_t length,
                                  MmuIntervalNotifierOps& ops);

  // --- what the mm calls ----------------------------------------------------------------------

  /// mmu_notifier_invalidate_range_start(): sets kMmuNotifierRangeBlockable in range.flags, then
  /// calls every overlapping interval notifier (start order) and every plain subscriber's
  /// invalidateRangeStart (newest first). Cannot fail (void, as in the kernel); callback failures
  /// on a blockable range are counted as WARNs ("interval_invalidate_warn", "plain_start_warn").
  /// As in the kernel, a plain subscriber failing on a blockable range still makes the core end
  /// the subscribers whose start succeeded at once, and the caller's invalidateRangeEnd ends them
  /// again (a driver bug path, reproduced, not fixed). Must be paired with invalidateRangeEnd(range).
  /// It is a might-sleep point (lockdep, sim/lockdep.h): calling it with a spinning lock held or
  /// inside a non-blockable section is reported.
  void invalidateRangeStart(MmuNotifierRange& range, LockSite site = LockSite::here());

  /// mmu_notifier_invalidate_range_start_nonblock(): clears kMmuNotifierRangeBlockable, then as
  /// invalidateRangeStart. Returns:
  ///  - Errno::Ok: pair it with invalidateRangeEnd(range);
  ///  - Errno::Again: a subscriber would have had to sleep. The caller must NOT call
  ///    invalidateRangeEnd. The kernel's unwind, reproduced exactly:
  ///    * an interval notifier returned false: the remaining interval notifiers and all plain
  ///      subscribers are not called; the interval part is ended at once (mn_itree_inv_end:
  ///      active count dropped, seq made even and deferred work applied if this was the last);
  ///    * a plain subscriber returned Again: all plain subscribers' starts still run; then every
  ///      plain subscriber whose start succeeded gets invalidateRangeEnd. The interval part is NOT
  ///      ended: the kernel leaves it started (active_invalidate_ranges stays raised and the seq odd
  ///      if an interval overlapped) — a known asymmetry of mm/mmu_notifier.c that hmmsim keeps
  ///      and counts ("nonblock_itree_left_active") so that it is visible.
  /// The callbacks run inside a non-blockable section (non_block_start): a callback that reaches
  /// a might-sleep point (a sleeping lock, a wait) is reported by lockdep.
  Errno invalidateRangeStartNonblock(MmuNotifierRange& range);

  /// mmu_notifier_invalidate_range_end(): ends the interval part (mn_itree_inv_end) and then calls
  /// every plain subscriber's invalidateRangeEnd. The last end of an odd period bumps the seq to
  /// even, applies deferred inserts/removes and wakes sleepers (readBegin, remove).
  void invalidateRangeEnd(MmuNotifierRange& range);

  /// mmu_notifier_arch_invalidate_secondary_tlbs(): the mm flushed the CPU TLB for [start, end);
  /// calls every plain subscriber's archInvalidateSecondaryTlbs.
  void archInvalidateSecondaryTlbs(Va start, Va end);

  /// mmu_notifier_release() (from exit_mmap): a RELEASE invalidation over [0, ULONG_MAX),
  /// blockable, of every interval notifier (false returns only WARN, counted), ended at once; then
  /// every plain subscriber's release(), after which all plain subscribers are unlinked (their
  /// later mmuNotifierUnregister only waits). Interval notifiers stay inserted: drivers remove them.
  /// Called once per mm (exit_mmap); afterwards the mm has no users (see released()).
  void release();

  // --- observers ----------------------------------------------------------------------------

  /// The global invalidate_seq (even = idle, odd = an overlapping invalidation in flight).
  std::uint64_t invalidateSeq() const { return invalidateSeq_; }
  /// mn_itree_is_invalidating(): seq is odd.
  bool isInvalidating() const { return (invalidateSeq_ & 1) != 0; }
  /// active_invalidate_ranges: invalidations started and not yet ended.
  std::uint64_t activeInvalidateRanges() const { return activeInvalidateRanges_; }
  /// Interval notifiers linked in the tree.
  std::size_t intervalCount() const { return itree_.size(); }
  /// Inserts/removes waiting for the last invalidateRangeEnd.
  std::size_t deferredCount() const { return deferred_.size(); }
  /// Plain subscribers registered.
  std::size_t notifierCount() const { return list_.size() - zombies_; }
  /// release() ran: the mm's mm_users reached zero (exit_mmap), no new subscriptions.
  bool released() const { return released_; }
  /// Calls fn(MmuIntervalNotifier&) for every interval notifier in the tree overlapping
  /// [start, end) in start order (what an invalidation of that range would call).
  template <class Fn>
  void forEachOverlappingInterval(Va start, Va end, Fn&& fn) {
    if (end <= start) return;
    itree_.forEachOverlap(start.value(), end.value() - 1,
                          [&](IntervalTreeNode& n) { fn(MmuIntervalNotifier::fromNode(n)); });
  }

  /// Stats: "invalidate_start" (all), "invalidate_start_<event>" per event, "invalidate_start_nonblock",
  /// "invalidate_nonblock_again", "invalidate_end", "interval_invalidate_calls",
  /// "interval_invalidate_refused", "interval_invalidate_warn", "plain_start_calls", "plain_start_failed",
  /// "plain_start_warn", "plain_end_calls", "seq_bumps", "deferred_inserts", "deferred_removes",
  /// "read_begin", "read_begin_sleeps", "read_retry", "check_retry", "remove_sleeps",
  /// "release_calls", "release_warn", "arch_invalidate_secondary_tlbs", "nonblock_itree_left_active",
  /// "unregister_sleeps", "insert_after_release".
  StatsGroup& stats() { return stats_; }
  const StatsGroup& stats() const { return stats_; }

 private:
  using NotifierList = boost::intrusive::list<
      MmuNotifier,
      boost::intrusive::member_hook<MmuNotifier, decltype(MmuNotifier::hook_), &MmuNotifier::hook_>,
      boost::intrusive::constant_time_size<true>>;
  using DeferredList = boost::intrusive::list<
      MmuIntervalNotifier,
      boost::intrusive::member_hook<MmuIntervalNotifier, decltype(MmuIntervalNotifier::deferredHook_),
                                    &MmuIntervalNotifier::deferredHook_>,
      boost::intrusive::constant_time_size<true>>;

  // The per-subscription kernel calls. Callers use the members of MmuIntervalNotifier
  // (sub.readBegin(), sub.readRetry(seq), sub.checkRetry(seq), sub.setSeq(cur), sub.remove()),
  // which forward here: one spelling of the API, the kernel's shape.
  friend class MmuIntervalNotifier;

  // Implementations of MmuIntervalNotifier::remove/readBegin/readRetry/checkRetry (contracts there).
  void mmuIntervalNotifierRemove(MmuIntervalNotifier& sub);
  std::uint64_t mmuIntervalReadBegin(MmuIntervalNotifier& sub);
  bool mmuIntervalReadRetry(MmuIntervalNotifier& sub, std::uint64_t seq);
  bool mmuIntervalCheckRetry(MmuIntervalNotifier& sub, std::uint64_t seq);

  MmuIntervalNotifier* itreeInvStartRange(const MmuNotifierRange& range, std::uint64_t& seq);
  MmuIntervalNotifier* itreeInvNext(MmuIntervalNotifier& sub, const MmuNotifierRange& range);
  void itreeInvEnd();
  Errno itreeInvalidate(const MmuNotifierRange& range);
  Errno hlistInvalidateRangeStart(const MmuNotifierRange& range);
  void hlistInvalidateEnd(const MmuNotifierRange& range);
  Errno invalidateRangeStartCommon(MmuNotifierRange& range);
  void hlistEnter() { ++hlistCallbacksRunning_; }
  void hlistExit();
  void unhash(MmuNotifier& sub);

  Mm* mm_;
  Blocker* blocker_;
  StatsGroup stats_;

  NotifierList list_;
  IntervalTree itree_;
  DeferredList deferred_;
  std::uint64_t invalidateSeq_ = kInitialSeq;
  std::uint64_t activeInvalidateRanges_ = 0;
  WaitQueue wq_;                          ///< subscriptions->wq: seq changes
  SpinLock lock_{kMmuNotifierLockClass};  ///< subscriptions->lock (seq, active count, deferred list)
  WaitQueue srcuWq_;                      ///< synchronize_srcu(): plain callbacks finished
  unsigned hlistCallbacksRunning_ = 0;    ///< plain-subscriber walks in progress (SRCU readers)
  std::size_t zombies_ = 0;               ///< unhashed but still linked (a walk was in progress)
  bool released_ = false;                 ///< release() ran (mm_users == 0)

  // Stats handles (registered once in the constructor).
  Counter& invStart_;
  std::array<Counter*, kMmuNotifierEventCount> invStartEvent_{};
  Counter& invStartNonblock_;
  Counter& invNonblockAgain_;
  Counter& invEnd_;
  Counter& intervalCalls_;
  Counter& intervalRefused_;
  Counter& intervalWarn_;
  Counter& plainStartCalls_;
  Counter& plainStartFailed_;
  Counter& plainStartWarn_;
  Counter& plainEndCalls_;
  Counter& seqBumps_;
  Counter& deferredInserts_;
  Counter& deferredRemoves_;
  Counter& readBegin_;
  Counter& readBeginSleeps_;
  Counter& readRetry_;
  Counter& checkRetry_;
  Counter& removeSleeps_;
  Counter& releaseCalls_;
  Counter& releaseWarn_;
  Counter& archInvalidate_;
  Counter& nonblockItreeLeftActive_;
  Counter& unregisterSleeps_;
  Counter& insertAfterRelease_;
};

}  // namespace hmmsim
