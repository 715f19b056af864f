#pragma once
// HmmMirror: the driver side of mirroring a process address space into a device page table with
// hmm_range_fault and an mmu interval notifier — the "update lock" pattern of
// Documentation/mm/hmm.rst, as lib/test_hmm.c (dmirror), nouveau and amdgpu implement it. Devices
// (dmirror, GPU, NIC) embed one and supply two hooks: zap device PTEs for a range, and commit
// pfns to the device page table.
//
// The guarantee it provides (hmm.rst): the device never uses a translation after the
// invalidation covering it returned. It holds because (1) invalidate() takes the update lock,
// calls mmu_interval_set_seq and zaps the device PTEs before returning, and (2) commit happens
// under the same lock and only if mmu_interval_read_retry(seq) is false, so pfns read before an
// invalidation are never committed after it.
//
//   again: seq = readBegin(); [mmap read lock] ret = hmmRangeFault(range); [unlock]
//          if (ret == Busy) goto again (until the budget is spent); if (ret) return ret;
//          lock(update); if (readRetry(seq)) { unlock; goto again; }
//          driver.commitPfns(range); unlock(update);
//
// Models: the mutex as a sleeping lock (sim/wait_queue.h: blocks a SystemC thread, asserts on a
// self-deadlock in pure C++), non-blockable invalidations (trylock, false on contention: OOM
// reaper path), skipping self-owned MMU_NOTIFY_MIGRATE events (dmirror: the migration updates the
// device page table itself) and optionally self-owned MMU_NOTIFY_EXCLUSIVE events, fault in
// chunks (dmirror: 32 pages per hmm_range).
// HMM_RANGE_DEFAULT_TIMEOUT (1 s, dmirror's -EBUSY deadline) is expressed as a budget of restarts
// (maxRetries): the pure core has no clock, and each restart follows an invalidation, so a budget
// bounds the same livelock the timeout bounds. Exceeding it returns Busy.
// Timing: none (pure core); HmmStats counts walks and faults for a SystemC shell to charge.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "hmm/hmm.h"
#include "models/cpu_mmu/mmu_notifier.h"
#include "sim/errno.h"
#include "sim/stats.h"
#include "sim/strong_types.h"
#include "sim/wait_queue.h"

namespace hmmsim {

class Mm;

/// A mirroring driver's update lock class (inside the mmap lock: invalidations take it under
/// the mmap write lock of munmap & co).
inline constexpr LockClass kDriverUpdateLockClass{"driver_update_lock", kLockOrderDriverUpdateLock,
                                                  LockKind::Sleeping};

/// A sleeping mutex (struct mutex) for driver locks: lock() sleeps through a Blocker while held,
/// checked by lockdep in the caller's context (Blocker::current()). The Blocker is looked up when
/// needed (a platform may install its SystemC Blocker on the mm after the driver was constructed).
class SleepingMutex {
 public:
  explicit SleepingMutex(std::function<Blocker&()> blocker, const LockClass& cls = kDriverUpdateLockClass)
      : blocker_(std::move(blocker)), cls_(&cls) {}
  SleepingMutex(const SleepingMutex&) = delete;
  SleepingMutex& operator=(const SleepingMutex&) = delete;
  /// mutex_lock: sleeps until free (pure C++: asserts, since nothing else could release it).
  void lock(LockSite site = LockSite::here()) {
    Blocker& b = blocker_();
    ExecContext& ctx = b.current();
    ctx.acquire(this, *cls_, LockMode::Write, 0, false, site);
    while (owner_) b.sleepOn(wq_, "mutex_lock(driver update lock)");
    owner_ = &ctx;
  }
  /// mutex_trylock: true if taken.
  bool tryLock(LockSite site = LockSite::here()) {
    if (owner_) return false;
    ExecContext& ctx = blocker_().current();
    ctx.acquire(this, *cls_, LockMode::Write, 0, true, site);
    owner_ = &ctx;
    return true;
  }
  void unlock(LockSite site = LockSite::here()) {
    ExecContext& ctx = blocker_().current();
    ctx.release(this, site);
    HMMSIM_ASSERT(owner_ == &ctx, "mutex_unlock(" << cls_->name << ") by " << ctx.name() << " at "
                                                  << formatLockSite(site) << ": "
                                                  << (owner_ ? "another context holds it" : "not locked"));
    owner_ = nullptr;
    wq_.wakeUpAll();
  }
  bool held() const { return owner_ != nullptr; }

 private:
  std::function<Blocker&()> blocker_;
  const LockClass* cls_;
  WaitQueue wq_;
  const ExecContext* owner_ = nullptr;
};

/// The device driver's half: what HmmMirror calls. Both are called with the update lock held.
class HmmMirrorDriver {
 public:
  virtual ~HmmMirrorDriver() = default;
  /// Tear down device page-table entries (and device TLB) for [start, end) (clipped to the
  /// mirror's interval). On return the device must not use them (mmu_interval_notifier_ops
  /// contract). `range` tells why (event, owner, blockable).
  virtual void zapDeviceRange(Va start, Va end, const MmuNotifierRange& range) = 0;
  /// Program the device page table from range.hmmPfns (validated: readRetry was false).
  virtual void commitPfns(const HmmRange& range) = 0;
};

/// Parameters of one mirror.
struct HmmMirrorParams {
  /// Restarts (Busy from hmmRangeFault or a true readRetry) allowed per chunk before giving up
  /// with Busy: hmmsim's HMM_RANGE_DEFAULT_TIMEOUT. Unit: restarts. Default 1000.
  unsigned maxRetries = 1000;
  /// Pages per hmm_range in fault(). Unit: pages. Default 32 (dmirror's chunk).
  unsigned faultChunkPages = 32;
  /// Skip MMU_NOTIFY_MIGRATE events whose owner is `owner` (dmirror does). Default true.
  bool skipOwnMigrate = true;
  /// Skip MMU_NOTIFY_EXCLUSIVE events whose owner is `owner` (nouveau does; dmirror passes a NULL
  /// owner and does not). Default false.
  bool skipOwnExclusive = false;
};

class HmmMirror final : public MmuIntervalNotifierOps {
 public:
  /// `owner`: the device cookie (dev_private_owner for hmmRangeFault, pgmap owner for migrations).
  HmmMirror(Mm& mm, HmmMirrorDriver& driver, const void* owner, const HmmMirrorParams& params = {},
            const std::string& statsName = "hmm_mirror");
  /// Removes the notifier if still inserted. Lifetime: destroy (or remove()) the mirror before
  /// its Mm, whose notifier subscriptions must be empty when it goes away.
  ~HmmMirror() override;
  HmmMirror(const HmmMirror&) = delete;
  HmmMirror& operator=(const HmmMirror&) = delete;

  /// mmu_interval_notifier_insert over [start, start + length). Returns its result (Ok, Inval).
  Errno insert(Va start, std::uint64_t length);
  /// mmu_interval_notifier_remove (no-op if not inserted).
  void remove();

  /// The pattern above for one caller-built range (range.notifier is set to this mirror's).
  /// Returns Ok (committed), Busy (budget spent), or hmmRangeFault's Fault/Perm/Inval.
  /// Takes the mmap read lock around each hmmRangeFault (the caller must not hold it for write).
  HmmStatus rangeFault(HmmRange& range);
  /// dmirror_fault(): fault [start, end) in chunks of faultChunkPages with
  /// default_flags = REQ_FAULT [| REQ_WRITE], pfn_flags_mask = 0, committing each chunk.
  HmmStatus fault(Va start, Va end, bool write);

  /// mmu_interval_notifier_ops.invalidate (see the header comment).
  bool invalidate(MmuIntervalNotifier& sub, const MmuNotifierRange& range, std::uint64_t curSeq) override;

  MmuIntervalNotifier& notifier() { return notifier_; }
  SleepingMutex& updateLock() { return lock_; }
  Mm& mm() { return mm_; }
  const void* owner() const { return owner_; }
  HmmStats& hmmStats() { return hmm_; }
  StatsGroup& stats() { return stats_; }
  /// Counters (names in quotes, group stats()).
  std::uint64_t commits() const { return commits_.value(); }
  std::uint64_t readRetries() const { return readRetries_.value(); }
  std::uint64_t invalidations() const { return invalidations_.value(); }

 private:
  Mm& mm_;
  HmmMirrorDriver& driver_;
  const void* owner_;
  HmmMirrorParams params_;
  MmuIntervalNotifier notifier_;
  SleepingMutex lock_;
  HmmStats hmm_;
  StatsGroup stats_;
  Counter& commits_;        ///< "commits": chunks committed to the device page table
  Counter& readRetries_;    ///< "read_retries": readRetry true under the lock (stale pfns dropped)
  Counter& busyRetries_;    ///< "busy_retries": hmmRangeFault returned Busy
  Counter& timeouts_;       ///< "timeouts": budget spent (Busy returned)
  Counter& invalidations_;  ///< "invalidations": invalidate callbacks that zapped
  Counter& skippedOwn_;     ///< "skipped_own": self-owned MIGRATE/EXCLUSIVE events skipped
  Counter& refused_;        ///< "refused_nonblock": non-blockable invalidations refused (lock held)
  std::vector<unsigned long> pfns_;
};

}  // namespace hmmsim
