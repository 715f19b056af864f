// sim/wait_queue.h: the kernel's wait queues and wait_event, independent of the context.

#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "sim/wait_queue.h"

using namespace hmmsim;

namespace {
class LogWaiter : public Waiter {
 public:
  LogWaiter(std::vector<std::string>& log, std::string name) : log_(log), name_(std::move(name)) {}
  void wake() override { log_.push_back(name_); }

 private:
  std::vector<std::string>& log_;
  std::string name_;
};

// Re-queues itself on the same queue when woken (a sleeper that goes back to sleep at once).
class RequeueWaiter : public Waiter {
 public:
  explicit RequeueWaiter(WaitQueue& wq) : wq_(wq) {}
  void wake() override {
    ++wakes;
    wq_.add(*this);
  }
  int wakes = 0;

 private:
  WaitQueue& wq_;
};

// A Blocker that, when asked to sleep, runs the other party's step (here: set the flag and wake).
class StepBlocker : public Blocker {
 public:
  void sleepOn(WaitQueue& wq, const char*) override {
    ++sleeps;
    if (sleeps == steps) *flag = true;
    wq.wakeUpAll();
  }
  bool* flag = nullptr;
  int steps = 1;
  int sleeps = 0;
};
}  // namespace

TEST_CASE("wakeUpAll wakes every queued waiter once, in FIFO order, and unlinks them") {
  std::vector<std::string> log;
  WaitQueue wq;
  LogWaiter a(log, "a"), b(log, "b"), c(log, "c");
  wq.add(a);
  wq.add(b);
  wq.add(c);
  wq.remove(b);
  CHECK(wq.size() == 2);
  CHECK(wq.wakeUpAll() == 2);
  CHECK(log == std::vector<std::string>{"a", "c"});
  CHECK(wq.empty());
  CHECK_FALSE(a.queued());
  CHECK(wq.wakeUpAll() == 0);
}

TEST_CASE("a waiter that queues itself again during wakeUpAll is not woken twice by the same call") {
  WaitQueue wq;
  RequeueWaiter w(wq);
  wq.add(w);
  CHECK(wq.wakeUpAll() == 1);
  CHECK(w.wakes == 1);
  CHECK(w.queued());
  wq.remove(w);
}

TEST_CASE("a waiter destroyed while queued unlinks itself") {
  WaitQueue wq;
  std::vector<std::string> log;
  {
    LogWaiter a(log, "a");
    wq.add(a);
    CHECK(wq.size() == 1);
  }
  CHECK(wq.empty());
}

TEST_CASE("waitEvent returns at once when the condition holds and re-checks after every wake-up") {
  WaitQueue wq;
  bool ready = true;
  StepBlocker blocker;
  CHECK(waitEvent(
            blocker, wq, [&] { return ready; }, "test") == 0);
  ready = false;
  blocker.flag = &ready;
  blocker.steps = 3;  // two spurious wake-ups, then the condition becomes true
  CHECK(waitEvent(
            blocker, wq, [&] { return ready; }, "test") == 3);
  CHECK(blocker.sleeps == 3);
}
