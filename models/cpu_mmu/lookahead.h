#pragma once
// Lookahead: a loosely-timed thread skips a synchronisation that nothing could observe.
//
// Why: a device thread that syncs before every DMA (so that its translations are made at
// synchronised time, DESIGN.md) pays a SystemC context switch per DMA, although most of the time
// no other process runs before its next DMA: a camera alone between two frames of its colour
// engine wakes once per line for nothing. When no process is runnable now and the earliest
// pending timed activity of the whole simulation (every other thread's wake-up, every timed
// notification: sc_time_to_pending_activity) is later than the time the thread would wait for,
// no other process can act in between: waiting or carrying on with the local time leads to the
// same state, and the thread carries on.
//
// The contract for code run by a thread that looks ahead (the camera's and the colour engine's
// data paths): after syncAhead(), the local time (localNowPs, get_current_time) is the thread's
// time and sc_time_stamp() may be behind it; nothing that another process can observe (an
// event it waits for, sc_time_stamp() used as the thread's time) happens before a real sync
// (qk.sync()). The syncs that may be skipped: the camera's wait for a line, the colour engine's
// per strip, advanceLocalTo's and the PCIe DMA engine's quantum and shared-path syncs; a device
// fault, a drain, an MSI and a completion still sync for real. The quantum keeper's next sync point is moved
// as if it had synced, so need_sync() decides exactly as without lookahead. Equal times are never skipped
// (strictly later only), so the Sequencer's order of equal-time wake-ups is untouched. A run gives the same
// results with lookahead on and off (the ctest "scenario: ... lookahead on and off").
//
// It is off unless the devices are made under a LookaheadScope (Platform does, from
// platform.lookahead, because `hmmsim run` simulates to the end): a test that stops the
// simulation at a time with sc_start(t) would otherwise see a thread that looked ahead beyond t.

#include <cstdint>

#include <systemc>

#include "models/cpu_mmu/sequencer.h"
#include "sim/sync_ahead.h"

namespace hmmsim {

class LookaheadQuantumKeeper final : public SeqQuantumKeeper, public SyncAheadKeeper {
 public:
  /// Whether devices made now look ahead (LookaheadScope; off by default). A device reads it when
  /// it is made and gives it to its thread's keeper.
  static bool& enabledByDefault() {
    static bool on = false;
    return on;
  }
  explicit LookaheadQuantumKeeper(bool enabled) : enabled_(enabled) {
    if (enabled_) registry().emplace_back(this, this);
  }
  ~LookaheadQuantumKeeper() override {
    auto& r = registry();
    for (auto it = r.begin(); it != r.end(); ++it)
      if (it->second == this) {
        r.erase(it);
        break;
      }
  }
  LookaheadQuantumKeeper(const LookaheadQuantumKeeper&) = delete;
  LookaheadQuantumKeeper& operator=(const LookaheadQuantumKeeper&) = delete;

  /// Skips the sync (syncAhead, sim/sync_ahead.h) if this keeper looks ahead.
  bool skipSync(const sc_core::sc_time& target) override {
    const sc_core::sc_time& q = get_global_quantum();
    // tlm_global_quantum::compute_local_quantum() as it would be at `target`.
    m_next_sync_point = q == sc_core::SC_ZERO_TIME
                            ? target
                            : target + q - sc_core::sc_time::from_value(target.value() % q.value());
    return true;
  }

 private:
  bool enabled_;
};

/// Devices made during its lifetime look ahead if `on` (Platform, from platform.lookahead).
class LookaheadScope {
 public:
  explicit LookaheadScope(bool on) : prev_(LookaheadQuantumKeeper::enabledByDefault()) {
    LookaheadQuantumKeeper::enabledByDefault() = on;
  }
  ~LookaheadScope() { LookaheadQuantumKeeper::enabledByDefault() = prev_; }
  LookaheadScope(const LookaheadScope&) = delete;
  LookaheadScope& operator=(const LookaheadScope&) = delete;

 private:
  bool prev_;
};

}  // namespace hmmsim
