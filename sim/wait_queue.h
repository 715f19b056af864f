#pragma once
// Sleeping and waking, independent of the execution context: the kernel's wait_queue_head_t,
// wait_event() and wake_up_all().
//
// hmmsim runs the same kernel logic in two kinds of context:
//  - pure C++ (unit tests, tools): one thread, nothing else can run while a caller "sleeps", so a
//    sleep whose condition is false can never end. That is a deadlock and a simulator (or test)
//    bug: SingleThreadBlocker asserts with the name of the wait.
//  - SystemC: a kernel path runs inside an SC_THREAD and really sleeps; another SC_THREAD changes
//    the state and calls wakeUpAll(). The SystemC implementation (models/cpu_mmu/sc_blocker.h)
//    waits on an sc_event; sim/ never includes SystemC, so it lives above.
//
// Who uses it: MmuNotifierSubscriptions (mmu_interval_read_begin sleeps while its range is being
// invalidated; mmu_interval_notifier_remove waits for the invalidation to end) and the mm
// (a fault on a migration entry waits until the migration ends). Any kernel sleep that waits for
// another context to change shared state is written as
//
//   waitEvent(blocker, wq, [&] { return condition; }, "what");     // sleeper
//   ...change state...; wq.wakeUpAll();                            // waker
//
// Contract: the condition is re-checked after every wake-up (wake-ups may be spurious, as in the
// kernel); wakeUpAll() unlinks every waiter before waking it (autoremove_wake_function), so a
// waiter is woken at most once per sleep. A Blocker is stateless with respect to a single sleep:
// one Blocker object serves every context of its kind. Nothing here allocates.

#include <cstddef>

#include "sim/assert.h"
#include "sim/lockdep.h"

namespace hmmsim {

class WaitQueue;

/// One sleeping execution context queued on a WaitQueue (the kernel's wait_queue_entry). A Blocker
/// creates one on the sleeper's stack for the duration of one sleep.
class Waiter {
 public:
  Waiter() = default;
  Waiter(const Waiter&) = delete;
  Waiter& operator=(const Waiter&) = delete;
  /// Unlinks itself if still queued (a sleeper whose stack is torn down at the end of a simulation).
  virtual ~Waiter();

  /// Makes the sleeper runnable. Called by WaitQueue::wakeUpAll() after this waiter was unlinked;
  /// must not block and must not touch the queue.
  virtual void wake() = 0;

  /// True while linked on a queue (between WaitQueue::add and the wake-up or remove).
  bool queued() const { return queue_ != nullptr; }

 private:
  friend class WaitQueue;
  Waiter* prev_ = nullptr;
  Waiter* next_ = nullptr;
  WaitQueue* queue_ = nullptr;
};

/// The kernel's wait_queue_head_t: an intrusive FIFO of sleepers.
class WaitQueue {
 public:
  WaitQueue() = default;
  WaitQueue(const WaitQueue&) = delete;
  WaitQueue& operator=(const WaitQueue&) = delete;
  /// Forgets any sleepers still queued (they can never be woken; at the end of a simulation a
  /// blocked SC_THREAD is simply never resumed).
  ~WaitQueue() {
    while (head_) remove(*head_);
  }

  /// Queues `w` at the tail. `w` must not be queued anywhere.
  void add(Waiter& w) {
    HMMSIM_ASSERT(w.queue_ == nullptr, "Waiter is already queued");
    w.queue_ = this;
    w.prev_ = tail_;
    w.next_ = nullptr;
    if (tail_)
      tail_->next_ = &w;
    else
      head_ = &w;
    tail_ = &w;
    ++size_;
  }

  /// Unlinks `w` if it is queued here; a no-op if it was already woken.
  void remove(Waiter& w) {
    if (w.queue_ != this) return;
    if (w.prev_)
      w.prev_->next_ = w.next_;
    else
      head_ = w.next_;
    if (w.next_)
      w.next_->prev_ = w.prev_;
    else
      tail_ = w.prev_;
    w.prev_ = w.next_ = nullptr;
    w.queue_ = nullptr;
    --size_;
  }

  /// The kernel's wake_up_all(): unlinks every waiter queued now, in FIFO order, and wakes it.
  /// Waiters that queue themselves during the wake-up are not woken by this call.
  /// Returns the number of waiters woken.
  std::size_t wakeUpAll() {
    std::size_t n = 0;
    for (std::size_t count = size_; count > 0 && head_; --count) {
      Waiter* w = head_;
      remove(*w);
      w->wake();
      ++n;
    }
    return n;
  }

  bool empty() const { return head_ == nullptr; }
  std::size_t size() const { return size_; }

 private:
  Waiter* head_ = nullptr;
  Waiter* tail_ = nullptr;
  std::size_t size_ = 0;
};

inline Waiter::~Waiter() {
  if (queue_) queue_->remove(*this);
}

/// How the calling execution context sleeps. Injected into every object whose kernel code
/// sleeps (MmuNotifierSubscriptions, Mm, ...). Implementations: SingleThreadBlocker (pure C++),
/// ScBlocker (models/cpu_mmu/sc_blocker.h, SystemC threads), or a test double that runs "the
/// other thread's" work when asked to sleep.
class Blocker {
 public:
  virtual ~Blocker() = default;
  /// Queues the current context on `wq` and sleeps until a wakeUpAll() on `wq` wakes it, then
  /// returns (the caller re-checks its condition). `what` names the wait ("mmu_interval_read_begin")
  /// for diagnostics. A context that can never be woken asserts instead of hanging.
  virtual void sleepOn(WaitQueue& wq, const char* what) = 0;
  /// The calling execution context (the kernel's `current`): whose locks lockdep checks. The
  /// default is the one shared context of a single-threaded program (defaultExecContext()).
  virtual ExecContext& current();
};

/// The execution context of pure C++ code that names none ("task", reports assert).
inline ExecContext& defaultExecContext() {
  static ExecContext ctx("task");
  return ctx;
}
inline ExecContext& Blocker::current() {
  return defaultExecContext();
}

/// Pure C++, one thread: there is no other context that could make the condition true, so any
/// sleep is a deadlock. Asserts with the name of the wait. A pure test that plays several tasks
/// (a CPU thread, a device thread) in turn names the one running with setCurrent(), so lockdep
/// keeps their held locks apart.
class SingleThreadBlocker final : public Blocker {
 public:
  /// The context that runs from now on (null: defaultExecContext()).
  void setCurrent(ExecContext* ctx) { current_ = ctx; }
  ExecContext& current() override { return current_ ? *current_ : defaultExecContext(); }
  void sleepOn(WaitQueue& /*wq*/, const char* what) override {
    HMMSIM_ASSERT(false, "deadlock: '" << what
                                       << "' must sleep until another context wakes it, but this is a "
                                          "single-threaded (pure C++) context where nothing else can run; "
                                          "use a SystemC blocker (ScBlocker) inside an SC_THREAD, or do not "
                                          "wait on state that only the caller itself can change");
  }

 private:
  ExecContext* current_ = nullptr;
};

/// The shared SingleThreadBlocker. It holds no state, so sharing it is not a global configuration.
inline Blocker& singleThreadBlocker() {
  static SingleThreadBlocker b;
  return b;
}

/// The kernel's wait_event(wq, cond): returns at once if `cond()` holds, otherwise sleeps on `wq`
/// through `blocker` and re-checks after every wake-up. Returns the number of sleeps (0 = no wait).
/// Like the kernel's, it is a might-sleep point whether or not it sleeps (lockdep checks the
/// caller's context, sim/lockdep.h).
template <class Cond>
unsigned waitEvent(Blocker& blocker, WaitQueue& wq, Cond cond, const char* what,
                   LockSite site = LockSite::here()) {
  blocker.current().mightSleep(what, site);
  unsigned sleeps = 0;
  while (!cond()) {
    blocker.sleepOn(wq, what);
    ++sleeps;
  }
  return sleeps;
}

}  // namespace hmmsim
