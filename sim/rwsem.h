#pragma once
// RwSemaphore: the kernel's struct rw_semaphore (kernel/locking/rwsem.c) as a sleeping
// reader/writer lock built on the Blocker (sim/wait_queue.h), checked by lockdep (sim/lockdep.h).
//
// What it models
//  - down_read / down_write / up_read / up_write / down_read_trylock / down_write_trylock /
//    downgrade_write, and down_write_nested's lockdep subclass.
//  - Contention sleeps through the caller's Blocker: in pure C++ (SingleThreadBlocker) a contended
//    acquisition is a deadlock and asserts, as the old checked flag did; under ScBlocker the
//    SC_THREAD suspends until the lock is handed to it.
//  - Writer fairness: once anyone waits, new readers queue behind it (the fast path fails on
//    RWSEM_FLAG_WAITERS), and so do trylocks (they fail). Waiters are served FIFO with direct
//    hand-off when the lock becomes free (rwsem_mark_wake): a writer at the head gets the lock
//    alone; a reader at the head gets it together with every queued reader behind it, writers
//    skipped (the kernel wakes up to MAX_READERS_WAKEUP = 256 readers so); downgrade_write wakes
//    the queued readers only when a reader is at the head (RWSEM_WAKE_READ_OWNED).
// What it leaves out (docs/fidelity.md): optimistic spinning on the owner, reader lock stealing
//   in the slow path and the time-based handoff bit (RWSEM_WAIT_TIMEOUT): hmmsim always hands the
//   lock over in FIFO order, which the kernel converges to under contention and which keeps runs
//   deterministic. Killable/interruptible variants (no signals).
// Timing: none; the woken thread resumes one delta cycle later (ScBlocker).

#include <cstddef>
#include <cstdint>
#include <deque>

#include "sim/lockdep.h"
#include "sim/wait_queue.h"

namespace hmmsim {

class RwSemaphore {
 public:
  /// rwsem_waiter batch size of rwsem_mark_wake.
  static constexpr unsigned kMaxReadersWakeup = 256;

  explicit RwSemaphore(const LockClass& cls) : cls_(&cls) {}
  RwSemaphore(const RwSemaphore&) = delete;
  RwSemaphore& operator=(const RwSemaphore&) = delete;

  /// down_read(): shared; sleeps while a writer holds it or anyone waits.
  void downRead(Blocker& b, LockSite site = LockSite::here());
  /// down_write() / down_write_nested(sem, subclass): exclusive; sleeps while held or waited on.
  void downWrite(Blocker& b, unsigned subclass = 0, LockSite site = LockSite::here());
  /// down_read_trylock(): true if taken (no writer holds it and nobody waits).
  bool downReadTrylock(Blocker& b, LockSite site = LockSite::here());
  /// down_write_trylock(): true if taken (free and nobody waits).
  bool downWriteTrylock(Blocker& b, LockSite site = LockSite::here());
  void upRead(Blocker& b, LockSite site = LockSite::here());
  void upWrite(Blocker& b, LockSite site = LockSite::here());
  /// downgrade_write(): the writer keeps the lock for reading; queued readers at the head join.
  void downgradeWrite(Blocker& b, LockSite site = LockSite::here());

  /// rwsem_is_locked().
  bool isLocked() const { return writer_ != nullptr || readers_ > 0; }
  bool writeLocked() const { return writer_ != nullptr; }
  unsigned readers() const { return readers_; }
  /// The write holder, or null.
  const ExecContext* writer() const { return writer_; }
  /// Contexts queued (rwsem_is_contended() is waiters() > 0).
  std::size_t waiters() const { return queue_.size(); }
  const LockClass& lockClass() const { return *cls_; }
  /// Acquisitions that had to sleep, per mode (tests and stats read them).
  std::uint64_t contendedReads() const { return contendedReads_; }
  std::uint64_t contendedWrites() const { return contendedWrites_; }

 private:
  struct Waiter {
    Waiter(ExecContext* c, LockMode m) : ctx(c), mode(m) {}
    ExecContext* ctx;
    LockMode mode;
    bool granted = false;
    WaitQueue wq;  ///< the sleeper's own queue: a grant wakes exactly this waiter
  };
  void sleepUntilGranted(Blocker& b, Waiter& w, const char* what);
  /// rwsem_mark_wake on a free (or, `readOwned`, just downgraded) lock.
  void markWake(bool readOwned);

  const LockClass* cls_;
  ExecContext* writer_ = nullptr;
  unsigned readers_ = 0;
  std::deque<Waiter*> queue_;  ///< FIFO of sleepers (their Waiter lives on their stack)
  std::uint64_t contendedReads_ = 0;
  std::uint64_t contendedWrites_ = 0;
};

}  // namespace hmmsim
