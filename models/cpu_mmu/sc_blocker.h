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
// Stateless: one instance (scBlocker()) serves every thread.

#include "sim/wait_queue.h"

namespace hmmsim {

class ScBlocker final : public Blocker {
 public:
  void sleepOn(WaitQueue& wq, const char* what) override;
};

/// The shared ScBlocker (stateless).
Blocker& scBlocker();

}  // namespace hmmsim
