#pragma once
// Sequencer: timed wake-ups released in the order they were requested, so that what one machine
// does at one simulated time does not depend on the rest of the simulation.
//
// Why: SystemC runs the processes woken at one simulated time in the order its timed-event queue
// pops them, and equal times pop in heap order, which depends on every event in the queue (another
// machine, an extra device, the terminal progress line). Two threads of one machine waking at the
// same picosecond then reach shared state (the mmap lock, an interval notifier, a link's booking)
// in an order that the machine itself does not decide. Everything else SystemC does keeps a
// process order that depends only on the order in which processes were made runnable (runnable
// queues are FIFO, delta notifications are triggered in a fixed order), so if every timed wake-up
// is released in a fixed order, the order of a machine's processes is a function of the machine.
//
// What it does: seqWait / seqNotify / SeqQuantumKeeper::sync queue a timed wake-up here instead of
// in SystemC's queue. One SystemC timed notification per distinct pending time wakes an SC_METHOD
// (a small reused pool of them), which releases every wake-up due then in request order (first requested,
// first woken: time, then a counter) by immediate notification, so the woken threads run in the same
// evaluation phase as under plain SystemC timing, in request order. Requests of one machine are made in an
// order that depends only on that machine, and other machines' requests interleave without reordering them.
// Zero delays are delta waits, as in SystemC (deterministic already).
//
// The common case costs less: the first thread wake-up requested for a time (none pending then)
// has its own event notified directly, as plain sc_core::wait(t) would; wake-ups requested later
// for that time go through its tick. The direct one still runs first: it is runnable before the
// evaluation phase in which the tick's method makes the others runnable behind it.
//
// Timing: identical to sc_core::wait(t) / sc_event::notify(t); only the order of equal times
// changes. A cancelled wake-up (a timeout beaten by its event, a replaced notification) leaves
// nothing pending, as in SystemC, so it does not keep the simulation running. Timed notifications keep
// SystemC's rule that the earliest pending notification of an event wins; seqNotify(e, SC_ZERO_TIME) cancels
// a pending timed one, as e.notify(SC_ZERO_TIME) does.
//
// What it does not cover: a process that waits with plain sc_core::wait(t) (or a timed
// sc_event::notify) is ordered by SystemC's heap against the others; library code does not (the
// ctest of cmake/CheckSequencedWaits.cmake fails on it unless marked "raw-systemc: <why>").
// Relative order is also preserved only as far as SystemC's scheduler keeps it: cancelling a delta
// notification (an immediate notify of an event with a pending delta notification) swaps the last
// pending delta event into its slot, which can reorder another machine's delta events.
//
// One Sequencer serves the whole simulation (one sc_simcontext per process): the request counter
// is global, which keeps each machine's relative order (a machine's requests get increasing
// numbers in the machine's own order whatever is interleaved). Use only from SC_THREADs (waits) or
// any process / elaboration (notifications).

#include <cstdint>
#include <memory>
#include <vector>

#include <systemc>

#include <tlm_utils/tlm_quantumkeeper.h>  // needs <systemc> first

namespace hmmsim {

class Sequencer {
 public:
  /// The simulation's sequencer (created on first use; lives as long as the program).
  static Sequencer& instance();

  /// sc_core::wait(d) from an SC_THREAD, released in request order among equal times.
  void wait(const sc_core::sc_time& d);
  /// sc_core::wait(d, e): returns when `e` fires or `d` elapsed, whichever is first; true when
  /// the time elapsed (the timeout was released) and `e` did not wake the thread first.
  bool wait(const sc_core::sc_time& d, const sc_core::sc_event& e);
  /// e.notify(d): d > 0 is released in request order (an earlier pending one wins, a later pending
  /// one is replaced); d == 0 is a delta notification that cancels a pending timed one.
  void notify(sc_core::sc_event& e, const sc_core::sc_time& d);

  /// Wake-ups released so far (tests).
  std::uint64_t released() const { return released_; }
  /// Wake-ups pending (tests).
  std::size_t pending() const { return entries_.size(); }

 private:
  struct Entry {
    std::uint64_t at = 0;             ///< ps
    std::uint64_t seq = 0;            ///< request order
    sc_core::sc_event* ev = nullptr;  ///< notified (immediately) when released
    bool timedNotify = false;         ///< a seqNotify (else a waiting thread's event)
    /// The first thread wake-up requested for its time: its own event was notified directly.
    bool direct = false;
  };
  /// One SystemC timed notification per distinct pending time: its own event and SC_METHOD
  /// (spawned once, reused), so a new earlier time never cancels and reschedules another's.
  struct Tick {
    sc_core::sc_event ev;
    std::uint64_t at = 0;  ///< ps, while pending
    bool pending = false;
  };
  Sequencer() = default;
  std::uint64_t add(std::uint64_t at, sc_core::sc_event& ev, bool timedNotify);
  /// Removes entry `seq`; false if it was released already.
  bool cancel(std::uint64_t seq);
  /// Removes a pending entry; a tick with nothing left due at its time is cancelled.
  void erase(std::vector<Entry>::iterator it);
  /// Makes sure a tick is pending at `at` (ps, > now).
  void tickAt(std::uint64_t at);
  /// The thread waiting on entry `seq` woke: removes the entry if it is still queued (direct).
  void woke(std::uint64_t seq);
  /// A tick fired: releases every entry due now.
  void release(Tick& t);
  /// A waiting thread's event from the pool (the pool's events keep their allocations).
  sc_core::sc_event* takeEvent();

  /// Pending, sorted by (at, seq) descending: the next to release is at the back.
  std::vector<Entry> entries_;
  std::vector<std::unique_ptr<Tick>> ticks_;
  std::vector<std::unique_ptr<sc_core::sc_event>> events_;  ///< every pooled event
  std::vector<sc_core::sc_event*> freeEvents_;
  std::uint64_t nextSeq_ = 0;
  std::uint64_t released_ = 0;
};

/// Sequencer::instance().wait(d).
inline void seqWait(const sc_core::sc_time& d) {
  Sequencer::instance().wait(d);
}
/// Sequencer::instance().wait(d, e).
inline bool seqWait(const sc_core::sc_time& d, const sc_core::sc_event& e) {
  return Sequencer::instance().wait(d, e);
}
/// Sequencer::instance().notify(e, d).
inline void seqNotify(sc_core::sc_event& e, const sc_core::sc_time& d) {
  Sequencer::instance().notify(e, d);
}

/// A tlm_quantumkeeper whose sync() waits through the Sequencer. Every loosely-timed thread of a
/// platform uses it; code that takes a tlm_quantumkeeper& needs no change.
class SeqQuantumKeeper : public tlm_utils::tlm_quantumkeeper {
 public:
  void sync() override {
    seqWait(get_local_time());
    reset();
  }
};

}  // namespace hmmsim
