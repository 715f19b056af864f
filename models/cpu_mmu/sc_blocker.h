#pragma once
// ScBlocker: the SystemC implementation of Blocker (sim/wait_queue.h). A kernel sleep issued from
// an SC_THREAD (mmu_interval_read_begin during an invalidation, mmu_interval_notifier_remove, a
// fault waiting for a migration entry...) suspends that thread on an sc_event until another process
// calls WaitQueue::wakeUpAll(); the woken thread resumes one delta cycle later at the same simulated
// time (the kernel's wake_up_all makes the sleeper runnable; it runs when scheduled).
//
// A sleep requested outside an SC_THREAD (during elaboration, from sc_main, or from an SC_METHOD,
// which cannot wait) is a simulator bug and asserts with the name of the wait.
//
// Timing: the sleep itself costs no simulated time beyond the waker's; one delta cycle.
//
// Execution contexts (sim/lockdep.h): current() is one ExecContext per SystemC process, created
// on first use and named after the process ("top.cpu0"); code running outside any process
// (elaboration, sc_main) is the context "sc_main". Contexts report to the ScBlocker's Lockdep
// (setLockdep; default: defaultLockdep(), which asserts). One instance (scBlocker()) may serve
// every thread; a platform that wants lockdep reports in its checker owns its own ScBlocker.

#include <map>
#include <memory>

#include "sim/wait_queue.h"

namespace hmmsim {

class ScBlocker final : public Blocker {
 public:
  ScBlocker();
  ~ScBlocker() override;
  void sleepOn(WaitQueue& wq, const char* what) override;
  ExecContext& current() override;
  /// Where the contexts of this blocker report (existing contexts are moved over too).
  void setLockdep(Lockdep& l);
  Lockdep& lockdep() const { return *lockdep_; }

 private:
  Lockdep* lockdep_;
  std::map<const void*, std::unique_ptr<ExecContext>> contexts_;  ///< by sc_process_b*
  std::unique_ptr<ExecContext> outside_;                          ///< elaboration / sc_main
};

/// The shared ScBlocker.
Blocker& scBlocker();

}  // namespace hmmsim
