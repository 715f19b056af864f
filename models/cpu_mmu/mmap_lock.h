#pragma once
// The mmap lock API of include/linux/mmap_lock.h over the mm's RwSemaphore (mm->mmap_lock,
// sim/rwsem.h). Every call sleeps through the mm's Blocker (Mm::blocker(): pure C++ asserts on
// contention, SystemC suspends the calling SC_THREAD) and is checked by lockdep in the calling
// execution context (Mm::blocker().current()), which names the caller's site.
//
// The kernel's read/write choice, per caller: syscalls that change vmas take it for writing
// (mmap, munmap, mprotect, mremap, mlock, fork, most madvise advices); faults, GUP,
// hmm_range_fault, migrate_vma and make_device_exclusive callers, and madvise's
// DONTNEED/FREE/POPULATE/COLLAPSE take it for reading. Non-blockable paths use the trylocks.
// Not modelled: the per-VMA lock (faults always take the mmap lock), mmap_lock tracepoints,
// the killable variants (no signals: they are the plain ones).

#include "sim/lockdep.h"

namespace hmmsim {

class Mm;

/// mm->mmap_lock's lock class.
inline constexpr LockClass kMmapLockClass{"mmap_lock", kLockOrderMmapLock, LockKind::Sleeping};
/// SINGLE_DEPTH_NESTING (dup_mmap's child mm under the parent's).
inline constexpr unsigned kSingleDepthNesting = 1;

void mmapReadLock(Mm& mm, LockSite site = LockSite::here());
void mmapReadUnlock(Mm& mm, LockSite site = LockSite::here());
/// mmap_read_trylock(): true if taken.
bool mmapReadTrylock(Mm& mm, LockSite site = LockSite::here());
void mmapWriteLock(Mm& mm, LockSite site = LockSite::here());
/// mmap_write_lock_nested(mm, subclass).
void mmapWriteLockNested(Mm& mm, unsigned subclass, LockSite site = LockSite::here());
void mmapWriteUnlock(Mm& mm, LockSite site = LockSite::here());
/// mmap_write_downgrade(): keep the lock for reading.
void mmapWriteDowngrade(Mm& mm, LockSite site = LockSite::here());
/// mmap_lock_is_contended(): someone waits for it.
bool mmapLockIsContended(Mm& mm);
/// lockdep_is_held(&mm->mmap_lock) in the calling context (either mode).
bool mmapLockHeld(Mm& mm);
/// mmap_assert_locked(): the calling context holds it (either mode); asserts otherwise.
void mmapAssertLocked(Mm& mm, LockSite site = LockSite::here());
/// mmap_assert_write_locked().
void mmapAssertWriteLocked(Mm& mm, LockSite site = LockSite::here());

/// RAII mmap read lock taken only when the calling context holds no mmap lock of this mm: the
/// arch fault handler and get_user_pages_fast take it themselves, while callers inside a syscall
/// (MAP_POPULATE, MADV_POPULATE_*) or a driver that already locked (get_user_pages_remote) hold
/// it. `userEntry` marks a user-space entry (the fault handler): when it took the lock itself,
/// its release is followed by lockdep's return-to-user check.
class MmapMaybeReadLock {
 public:
  explicit MmapMaybeReadLock(Mm& mm, bool userEntry = false, LockSite site = LockSite::here());
  ~MmapMaybeReadLock();
  MmapMaybeReadLock(const MmapMaybeReadLock&) = delete;
  MmapMaybeReadLock& operator=(const MmapMaybeReadLock&) = delete;

 private:
  Mm& mm_;
  bool taken_;
  bool userEntry_;
  LockSite site_;
};

/// RAII mmap read lock (mmap_read_lock/unlock).
class MmapReadLock {
 public:
  explicit MmapReadLock(Mm& mm, LockSite site = LockSite::here()) : mm_(mm), site_(site) {
    mmapReadLock(mm_, site_);
  }
  ~MmapReadLock() { mmapReadUnlock(mm_, site_); }
  MmapReadLock(const MmapReadLock&) = delete;
  MmapReadLock& operator=(const MmapReadLock&) = delete;

 private:
  Mm& mm_;
  LockSite site_;
};

/// RAII mmap write lock.
class MmapWriteLock {
 public:
  explicit MmapWriteLock(Mm& mm, LockSite site = LockSite::here()) : mm_(mm), site_(site) {
    mmapWriteLock(mm_, site_);
  }
  ~MmapWriteLock() { mmapWriteUnlock(mm_, site_); }
  MmapWriteLock(const MmapWriteLock&) = delete;
  MmapWriteLock& operator=(const MmapWriteLock&) = delete;

 private:
  Mm& mm_;
  LockSite site_;
};

}  // namespace hmmsim
