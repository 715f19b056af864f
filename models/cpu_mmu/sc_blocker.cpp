#include "models/cpu_mmu/sc_blocker.h"

#include <systemc>

#include "sim/assert.h"

namespace hmmsim {

namespace {
// One sleep of one SC_THREAD: lives on the sleeper's stack.
class ScWaiter final : public Waiter {
 public:
  void wake() override { ev_.notify(sc_core::SC_ZERO_TIME); }
  const sc_core::sc_event& event() const { return ev_; }

 private:
  sc_core::sc_event ev_;
};
}  // namespace

void ScBlocker::sleepOn(WaitQueue& wq, const char* what) {
  sc_core::sc_process_handle h = sc_core::sc_get_current_process_handle();
  const bool isThread =
      h.valid() && (h.proc_kind() == sc_core::SC_THREAD_PROC_ || h.proc_kind() == sc_core::SC_CTHREAD_PROC_);
  HMMSIM_ASSERT(isThread, "'" << what << "' must sleep, which needs an SC_THREAD, but it was called from "
                              << (h.valid() ? std::string("SC_METHOD ") + h.name()
                                            : std::string("outside any process (elaboration or sc_main)")));
  ScWaiter w;
  wq.add(w);
  sc_core::wait(w.event());  // raw-systemc: w.event() is ev_, woken by wake()'s delta notification
  wq.remove(w);              // no-op: wakeUpAll unlinked it
}

ScBlocker::ScBlocker() : lockdep_(&defaultLockdep()), outside_(std::make_unique<ExecContext>("sc_main")) {}

ScBlocker::~ScBlocker() = default;

ExecContext& ScBlocker::current() {
  // Before sc_start, sc_get_current_process_handle() returns the last process created: that is
  // elaboration code, not the process.
  if (!sc_core::sc_is_running()) return *outside_;
  sc_core::sc_process_handle h = sc_core::sc_get_current_process_handle();
  if (!h.valid()) return *outside_;
  const void* key = h.get_process_object();
  auto it = contexts_.find(key);
  if (it == contexts_.end())
    it = contexts_.emplace(key, std::make_unique<ExecContext>(h.name(), *lockdep_)).first;
  return *it->second;
}

void ScBlocker::setLockdep(Lockdep& l) {
  lockdep_ = &l;
  outside_->setLockdep(l);
  for (auto& [key, ctx] : contexts_) ctx->setLockdep(l);
}

Blocker& scBlocker() {
  static ScBlocker b;
  return b;
}

}  // namespace hmmsim
