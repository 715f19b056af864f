// The Sequencer (models/cpu_mmu/sequencer.h): timed wake-ups due at one simulated time are released
// in the order they were requested, whatever else SystemC's timed-event queue holds; timing and
// notification rules are SystemC's. Threads only record; the test cases check after sc_start().
// The test cases also pass in one process (SystemC time and the Sequencer carry on between them).

#include <catch2/catch.hpp>

#include <cstdint>
#include <string>
#include <vector>
#define SC_INCLUDE_DYNAMIC_PROCESSES
#include <systemc>

#include "models/cpu_mmu/sequencer.h"

using namespace hmmsim;
using sc_core::SC_NS;
using sc_core::sc_time;

namespace {

/// Simulated time in whole ns since the test case began (SystemC's time carries on from one test
/// case to the next when several run in one process, as does the Sequencer's released count).
std::uint64_t gStartNs = 0;
std::uint64_t gStartReleased = 0;
std::uint64_t nowNs() {
  return sc_core::sc_time_stamp().value() / 1000 - gStartNs;
}
std::uint64_t released() {
  return Sequencer::instance().released() - gStartReleased;
}
/// Called first in every test case.
void begin() {
  gStartNs = sc_core::sc_time_stamp().value() / 1000;
  gStartReleased = Sequencer::instance().released();
}

}  // namespace

TEST_CASE("Wake-ups due at one time run in request order and not in SystemC's heap order") {
  begin();
  // Thread i asks at time i ns to wake at 20 ns: requests are made in the order 0..7, so they
  // wake in that order. Noise threads, created before and after them, wait by plain SystemC for
  // the same 20 ns and for times around it (what reshuffles SystemC's heap).
  std::vector<int> order;
  std::vector<std::uint64_t> at;
  for (int n = 0; n < 5; ++n)
    sc_core::sc_spawn([n] {
      for (int k = 0; k < 4; ++k) sc_core::wait(sc_time(5 + n + k, SC_NS));
    });
  for (int i = 7; i >= 0; --i)  // created in reverse: SystemC starts them in creation order
    sc_core::sc_spawn([i, &order, &at] {
      seqWait(sc_time(i + 1, SC_NS));
      seqWait(sc_time(20 - (i + 1), SC_NS));
      order.push_back(i);
      at.push_back(nowNs());
    });
  for (int n = 0; n < 5; ++n) sc_core::sc_spawn([] { sc_core::wait(sc_time(20, SC_NS)); });
  sc_core::sc_start();
  CHECK(order == std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7});
  CHECK(at == std::vector<std::uint64_t>(8, 20));
  CHECK(released() == 16);
  CHECK(Sequencer::instance().pending() == 0);
}

TEST_CASE("A timed notification through the Sequencer keeps SystemC's earliest-wins rule") {
  begin();
  sc_core::sc_event e;
  std::vector<std::uint64_t> wakes;
  sc_core::sc_spawn([&] {
    for (;;) {
      sc_core::wait(e);
      wakes.push_back(nowNs());
    }
  });
  sc_core::sc_spawn([&] {
    seqNotify(e, sc_time(5, SC_NS));
    seqNotify(e, sc_time(3, SC_NS));  // earlier: replaces the 5 ns one
    seqNotify(e, sc_time(4, SC_NS));  // later than the pending 3 ns: ignored
    sc_core::wait(sc_time(10, SC_NS));
    seqNotify(e, sc_time(2, SC_NS));
    seqNotify(e, sc_core::SC_ZERO_TIME);  // a delta notification cancels the pending timed one
  });
  sc_core::sc_start();
  CHECK(wakes == std::vector<std::uint64_t>{3, 10});
  CHECK(Sequencer::instance().pending() == 0);
}

TEST_CASE("A Sequencer wait with an event ends on whichever comes first") {
  begin();
  sc_core::sc_event e;
  std::vector<std::string> log;
  sc_core::sc_spawn([&] {
    const bool t1 = seqWait(sc_time(10, SC_NS), e);  // e at 4 ns
    log.push_back(std::to_string(nowNs()) + (t1 ? " timeout" : " event"));
    const bool t2 = seqWait(sc_time(10, SC_NS), e);  // nothing: the timeout at 14 ns
    log.push_back(std::to_string(nowNs()) + (t2 ? " timeout" : " event"));
    seqWait(sc_time(30, SC_NS));  // the cancelled 14 ns timeout of the first wait woke nothing
    log.push_back(std::to_string(nowNs()));
  });
  sc_core::sc_spawn([&] {
    sc_core::wait(sc_time(4, SC_NS));
    e.notify();
  });
  sc_core::sc_start();
  CHECK(log == std::vector<std::string>{"4 event", "14 timeout", "44"});
}

TEST_CASE("A quantum keeper syncs through the Sequencer with SystemC's timing") {
  begin();
  std::vector<std::uint64_t> at;
  sc_core::sc_spawn([&] {
    SeqQuantumKeeper qk;
    qk.reset();
    qk.inc(sc_time(7, SC_NS));
    qk.sync();
    at.push_back(nowNs());
    qk.sync();  // no local time: a delta cycle, still at 7 ns
    at.push_back(nowNs());
    CHECK_NOTHROW(qk.get_local_time());
  });
  sc_core::sc_start();
  CHECK(at == std::vector<std::uint64_t>{7, 7});
  CHECK(released() == 1);
}

TEST_CASE("Cancelled Sequencer wake-ups keep the simulation running no longer than SystemC's") {
  begin();
  // Under plain SystemC a timeout that an event beat and a timed notification replaced by a delta
  // one leave nothing pending: the simulation ends at the last real activity (5 ns), not at the
  // abandoned times (100 ns, 50 ns). Two waits share a time, so both the direct wake-up and a
  // tick's are cancelled.
  sc_core::sc_event e, f;
  std::vector<std::string> log;
  for (int i = 0; i < 2; ++i)
    sc_core::sc_spawn([&, i] {
      const bool timedOut = seqWait(sc_time(100, SC_NS), e);
      log.push_back(std::to_string(i) + (timedOut ? " timeout" : " event") + " at " +
                    std::to_string(nowNs()));
    });
  sc_core::sc_spawn([&] {
    seqNotify(f, sc_time(50, SC_NS));
    sc_core::wait(sc_time(5, SC_NS));
    e.notify();
    seqNotify(f, sc_core::SC_ZERO_TIME);
  });
  sc_core::sc_start();
  CHECK(log == std::vector<std::string>{"0 event at 5", "1 event at 5"});
  CHECK(nowNs() == 5);
  CHECK(Sequencer::instance().pending() == 0);
}
