#pragma once
// A small lockdep (kernel/locking/lockdep.c): per execution context, the locks it holds, checked
// against the rules the kernel's lock validator and might_sleep() enforce.
//
// What it models
//  - Execution contexts (the kernel's `current`): one per SystemC thread (ScBlocker creates them,
//    named after the process), or one per CPU task / device in pure tests (ExecContext objects a
//    test switches between, see SingleThreadBlocker::setCurrent). Each holds its held-lock stack
//    (struct held_lock), its spinning-lock depth (preempt_count) and its non-blockable depth
//    (non_block_start/non_block_end).
//  - Lock classes (struct lock_class_key) with a static order: a class may be acquired only while
//    every held lock has a lower (order, subclass). The kernel learns the order graph at run time
//    and reports cycles; hmmsim states the order up front (kLockOrder* below), which reports the
//    same inversions on the first out-of-order acquisition instead of on the second path.
//    Subclasses are the kernel's nesting annotations (mmap_write_lock_nested(SINGLE_DEPTH_NESTING)
//    in dup_mmap).
//  - Reports (LockdepError): acquisition out of order ("possible circular locking dependency"),
//    re-acquiring a held lock instance ("possible recursive locking", also a second down_read:
//    rwsem read is not recursive because a queued writer blocks it), releasing a lock not held
//    ("bad unlock balance"), a might-sleep point (taking a sleeping lock, a Blocker wait, a
//    blockable mmu-notifier invalidation) while holding a spinning lock ("sleeping function called
//    from invalid context") or inside a non-blockable section (non_block_start), and returning to
//    user space with a lock held (lockdep_sys_exit: "lock held when returning to user space").
//    Trylocks are recorded but not order-checked (they cannot deadlock), as in the kernel.
//  - Each report names the context, the offending lock and site, and every held lock with the
//    site that acquired it; it goes to the run's InvariantChecker (CheckRule::Locking), or, with
//    no checker attached (pure unit tests), asserts: a locking bug is a simulator bug.
// What it leaves out: the dependency graph and cycle search (orders are static), irq-safety
//   states (no interrupts in the pure core yet), lock_pin, lock statistics, the chain cache.
// Timing: none.
//
// Sites are captured with __builtin_FILE/__builtin_LINE/__builtin_FUNCTION as default arguments
// (GCC and clang evaluate them at the call site), so lock wrappers name their callers.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace hmmsim {

class InvariantChecker;

/// Where a lock was taken or a sleep requested (the kernel's _RET_IP_, spelled out).
struct LockSite {
  const char* file = "?";
  int line = 0;
  const char* function = "?";
  /// The caller's site: use as a default argument, `LockSite site = LockSite::here()`.
  static LockSite here(const char* file = __builtin_FILE(), int line = __builtin_LINE(),
                       const char* function = __builtin_FUNCTION()) {
    return LockSite{file, line, function};
  }
};

/// What holding a lock of a class allows: a sleeping lock (rwsem, mutex) may be held across a
/// sleep; a spinning lock (spinlock_t) may not, and nothing may sleep while one is held.
enum class LockKind {
  Sleeping,  ///< rw_semaphore, mutex: taking it is a might-sleep point
  Spinning,  ///< spinlock_t: holding it makes the context atomic
};

/// A lock class (struct lock_class_key + its place in the lock order).
struct LockClass {
  const char* name;  ///< "mmap_lock" (as /proc/lockdep names the class)
  unsigned order;    ///< acquisition rank: a lower order is taken first (outer)
  LockKind kind;
};

/// The lock order of hmmsim's lock classes, outermost first (include/linux/mm.h's "Lock ordering
/// in mm" comment and mm/rmap.c's header). A new class gets its rank here.
inline constexpr unsigned kLockOrderMmapLock = 10;          ///< mm->mmap_lock
inline constexpr unsigned kLockOrderDriverUpdateLock = 20;  ///< a mirroring driver's update mutex
inline constexpr unsigned kLockOrderNotifierLock = 30;      ///< mmu_notifier_subscriptions->lock

enum class LockMode {
  Read,   ///< down_read (shared)
  Write,  ///< down_write, mutex_lock, spin_lock (exclusive)
};

/// One entry of a context's held-lock stack (struct held_lock).
struct HeldLock {
  const void* lock = nullptr;  ///< the instance
  const LockClass* cls = nullptr;
  LockMode mode = LockMode::Write;
  unsigned subclass = 0;  ///< nesting annotation (SINGLE_DEPTH_NESTING = 1)
  bool trylock = false;
  LockSite site;
};

/// What lockdep reports.
enum class LockdepError {
  OutOfOrder,           ///< a class taken while a lock of equal or higher order is held
  Recursive,            ///< the same lock instance taken again by its holder
  ReleaseNotHeld,       ///< an unlock of a lock the context does not hold
  SleepInAtomic,        ///< a might-sleep point while holding a spinning lock
  SleepInNonblockable,  ///< a might-sleep point inside a non-blockable section
  HeldAtUserReturn,     ///< a lock still held when the context returns to user space
};
inline constexpr unsigned kLockdepErrorCount = 6;
/// "out-of-order", "recursive", "release-not-held", "sleep-in-atomic", "sleep-in-nonblockable",
/// "held-at-user-return".
const char* lockdepErrorName(LockdepError e);

/// Where reports go: the run's InvariantChecker (CheckRule::Locking), or an assert without one.
/// One per simulated machine (a platform owns it); the shared defaultLockdep() asserts.
class Lockdep {
 public:
  Lockdep() = default;
  Lockdep(const Lockdep&) = delete;
  Lockdep& operator=(const Lockdep&) = delete;
  /// `checker` receives every report (null: a report asserts). `nowPs` (optional) stamps it.
  void setChecker(InvariantChecker* checker, std::function<std::uint64_t()> nowPs = {});
  /// Reports of kind `e` so far (also counted when they went to a checker).
  std::uint64_t count(LockdepError e) const { return counts_[static_cast<unsigned>(e)]; }
  std::uint64_t total() const;
  /// Records a report; `context` names the execution context, `text` says what and where.
  void report(LockdepError e, const std::string& context, const std::string& text);

 private:
  InvariantChecker* checker_ = nullptr;
  std::function<std::uint64_t()> nowPs_;
  std::uint64_t counts_[kLockdepErrorCount] = {};
};

/// The shared validator of contexts created without one (no checker: reports assert).
Lockdep& defaultLockdep();

/// An execution context (task_struct's lockdep part): who holds what.
class ExecContext {
 public:
  explicit ExecContext(std::string name, Lockdep& lockdep = defaultLockdep());
  ExecContext(const ExecContext&) = delete;
  ExecContext& operator=(const ExecContext&) = delete;

  const std::string& name() const { return name_; }
  Lockdep& lockdep() const { return *lockdep_; }
  void setLockdep(Lockdep& l) { lockdep_ = &l; }

  /// lock_acquire(): checks (unless `trylock`), then pushes on the held-lock stack. A sleeping
  /// lock's acquisition is a might-sleep point, checked before the order (might_sleep() comes
  /// first in down_read/down_write/mutex_lock); a trylock of one is not.
  void acquire(const void* lock, const LockClass& cls, LockMode mode, unsigned subclass, bool trylock,
               LockSite site);
  /// lock_release(): pops the entry of `lock` (from anywhere in the stack, as lockdep allows);
  /// reports ReleaseNotHeld when the context does not hold it.
  void release(const void* lock, LockSite site);
  /// downgrade_write's lockdep part (lock_downgrade): the held entry becomes a read hold.
  void downgrade(const void* lock, LockSite site);
  /// might_sleep(): `what` is about to (possibly) sleep. Reports SleepInAtomic or
  /// SleepInNonblockable.
  void mightSleep(const char* what, LockSite site);
  /// lockdep_sys_exit(): the context returns to user space; reports every lock still held.
  void sysExit(LockSite site);
  /// non_block_start() / non_block_end(): a section that must not sleep (a non-blockable
  /// mmu-notifier invalidation's callbacks).
  void nonBlockStart() { ++nonBlock_; }
  void nonBlockEnd();

  /// lockdep_is_held(): the context holds `lock` (in any mode).
  bool holds(const void* lock) const { return find(lock) != nullptr; }
  /// The held entry of `lock`, or null.
  const HeldLock* find(const void* lock) const;
  const std::vector<HeldLock>& held() const { return held_; }
  /// Spinning locks held (the preempt count lockdep's might_sleep looks at).
  unsigned spinDepth() const { return spin_; }
  unsigned nonBlockDepth() const { return nonBlock_; }
  /// "mmap_lock (read) at models/cpu_mmu/gup.cpp:281 gupCommon; ..." or "none".
  std::string describeHeld() const;

 private:
  void report(LockdepError e, const std::string& what) const;

  std::string name_;
  Lockdep* lockdep_;
  std::vector<HeldLock> held_;
  unsigned spin_ = 0;
  unsigned nonBlock_ = 0;
};

/// "file:line function" of a site.
std::string formatLockSite(const LockSite& s);

/// spinlock_t: never sleeps; holding it makes the context atomic (no might-sleep point allowed).
/// In a cooperative simulation it can never be contended unless its holder slept, which lockdep
/// reports; contention therefore asserts.
class SpinLock {
 public:
  explicit SpinLock(const LockClass& cls) : cls_(&cls) {}
  SpinLock(const SpinLock&) = delete;
  SpinLock& operator=(const SpinLock&) = delete;
  void lock(ExecContext& ctx, LockSite site = LockSite::here());
  void unlock(ExecContext& ctx, LockSite site = LockSite::here());
  bool locked() const { return owner_ != nullptr; }

 private:
  const LockClass* cls_;
  ExecContext* owner_ = nullptr;
};

}  // namespace hmmsim
