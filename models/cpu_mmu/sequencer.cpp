// Sequencer. See sequencer.h.
#define SC_INCLUDE_DYNAMIC_PROCESSES
#include "models/cpu_mmu/sequencer.h"

#include <algorithm>
#include <iterator>

#include "sim/assert.h"

namespace hmmsim {

namespace {
std::uint64_t nowPs() {
  return sc_core::sc_time_stamp().value();
}
}  // namespace

Sequencer& Sequencer::instance() {
  // Never destroyed: the SystemC kernel (which owns the releasing processes and the events' queue
  // entries) may be torn down before static destructors run.
  static Sequencer* s = new Sequencer();
  return *s;
}

std::uint64_t Sequencer::add(std::uint64_t at, sc_core::sc_event& ev, bool timedNotify) {
  Entry e{at, nextSeq_++, &ev, timedNotify, false};
  // Descending by (at, seq): the new entry has the largest seq so far, so it goes after every
  // later time and before every entry of its own time (released after them).
  // The common case, a time earlier than every pending one, goes at the back without a search.
  auto pos = entries_.empty() || at < entries_.back().at
                 ? entries_.end()
                 : std::lower_bound(entries_.begin(), entries_.end(), e, [](const Entry& a, const Entry& b) {
                     return a.at != b.at ? a.at > b.at : a.seq > b.seq;
                   });
  if (!timedNotify && (pos == entries_.end() || pos->at != at)) {
    // The first wake-up requested for its time: its own event is notified directly (one SystemC
    // timed notification instead of a tick's, a method and an immediate one). It still runs first
    // among that time's wake-ups: threads triggered by timed notifications are runnable before the
    // evaluation phase, where a tick's method then makes the later-requested ones runnable.
    e.direct = true;
    ev.notify(sc_core::sc_time::from_value(at - nowPs()));
  } else {
    tickAt(at);
  }
  entries_.insert(pos, e);
  return e.seq;
}

void Sequencer::tickAt(std::uint64_t at) {
  Tick* idle = nullptr;
  for (const std::unique_ptr<Tick>& t : ticks_) {
    if (t->pending && t->at == at) return;
    if (!t->pending && idle == nullptr) idle = t.get();
  }
  if (idle == nullptr) {
    ticks_.push_back(std::make_unique<Tick>());
    idle = ticks_.back().get();
    sc_core::sc_spawn_options o;
    o.spawn_method();
    o.dont_initialize();
    o.set_sensitivity(&idle->ev);
    sc_core::sc_spawn([this, idle] { release(*idle); }, sc_core::sc_gen_unique_name("hmmsim_sequencer"), &o);
  }
  idle->pending = true;
  idle->at = at;
  idle->ev.notify(sc_core::sc_time::from_value(at - nowPs()));
}

bool Sequencer::cancel(std::uint64_t seq) {
  auto it = std::find_if(entries_.begin(), entries_.end(), [seq](const Entry& e) { return e.seq == seq; });
  if (it == entries_.end()) return false;
  erase(it);
  return true;
}

void Sequencer::erase(std::vector<Entry>::iterator it) {
  const std::uint64_t at = it->at;
  it = entries_.erase(it);
  const bool more =
      (it != entries_.end() && it->at == at) || (it != entries_.begin() && std::prev(it)->at == at);
  if (more) return;
  // Nothing is due then any more: its tick goes too, as SystemC drops a cancelled timeout (a
  // pending notification would otherwise keep the simulation running to a time nobody waits for).
  for (const std::unique_ptr<Tick>& t : ticks_) {
    if (t->pending && t->at == at) {
      t->ev.cancel();
      t->pending = false;
    }
  }
}

void Sequencer::release(Tick& t) {
  const std::uint64_t now = nowPs();
  HMMSIM_ASSERT(t.pending && t.at == now, "Sequencer: a tick for " << t.at << " ps fired at " << now);
  t.pending = false;
  while (!entries_.empty() && entries_.back().at == now) {
    const Entry e = entries_.back();
    entries_.pop_back();
    ++released_;
    // Immediate: the waiter runs in this evaluation phase, after the earlier ones. A direct
    // wake-up's event has triggered already (its thread is runnable, ahead of these).
    if (!e.direct) e.ev->notify();
  }
  HMMSIM_ASSERT(entries_.empty() || entries_.back().at > now,
                "Sequencer: a wake-up due at " << entries_.back().at << " ps was not released until " << now);
}

sc_core::sc_event* Sequencer::takeEvent() {
  if (freeEvents_.empty()) {
    events_.push_back(std::make_unique<sc_core::sc_event>());
    return events_.back().get();
  }
  sc_core::sc_event* ev = freeEvents_.back();
  freeEvents_.pop_back();
  return ev;
}

void Sequencer::wait(const sc_core::sc_time& d) {
  if (d == sc_core::SC_ZERO_TIME) {
    sc_core::wait(sc_core::SC_ZERO_TIME);
    return;
  }
  sc_core::sc_event* mine = takeEvent();
  const std::uint64_t seq = add(nowPs() + d.value(), *mine, false);
  sc_core::wait(*mine);
  woke(seq);
  freeEvents_.push_back(mine);
}

bool Sequencer::wait(const sc_core::sc_time& d, const sc_core::sc_event& e) {
  if (d == sc_core::SC_ZERO_TIME) {
    sc_core::wait(sc_core::SC_ZERO_TIME, e);
    return sc_core::timed_out();
  }
  sc_core::sc_event* mine = takeEvent();
  const std::uint64_t seq = add(nowPs() + d.value(), *mine, false);
  sc_core::wait(*mine | e);
  bool timedOut = true;
  if (mine->triggered()) {
    woke(seq);
  } else {
    // `e` woke it first: its timeout is still pending, and goes (nothing else refers to `mine`).
    mine->cancel();
    timedOut = !cancel(seq);
  }
  freeEvents_.push_back(mine);
  return timedOut;
}

void Sequencer::woke(std::uint64_t seq) {
  // A direct wake-up is still queued unless a tick due now released it (methods run before
  // threads); queued, it is the first of its time, so the next to release.
  if (!entries_.empty() && entries_.back().seq == seq) {
    HMMSIM_ASSERT(entries_.back().direct && entries_.back().at == nowPs(),
                  "Sequencer: a thread woke before its wake-up was due");
    entries_.pop_back();
    ++released_;
  }
}

void Sequencer::notify(sc_core::sc_event& e, const sc_core::sc_time& d) {
  auto it = std::find_if(entries_.begin(), entries_.end(),
                         [&e](const Entry& x) { return x.timedNotify && x.ev == &e; });
  if (d == sc_core::SC_ZERO_TIME) {
    if (it != entries_.end()) erase(it);
    e.notify(sc_core::SC_ZERO_TIME);
    return;
  }
  const std::uint64_t at = nowPs() + d.value();
  if (it != entries_.end()) {
    if (it->at <= at) return;  // the earlier pending notification wins
    erase(it);
  }
  add(at, e, true);
}

}  // namespace hmmsim
