#pragma once
// syncAhead(qk): a sync that a quantum keeper may skip when nothing could observe it. The keeper
// that does (LookaheadQuantumKeeper, models/cpu_mmu/lookahead.h, where the rule and its contract
// are) lives with the Sequencer; this seam lets layers below it (the PCIe DMA engine) offer the
// skip without depending on it.

#include <utility>
#include <vector>

#include <systemc>

#include <tlm_utils/tlm_quantumkeeper.h>  // needs <systemc> first

namespace hmmsim {

/// A quantum keeper that may skip a sync (implemented by LookaheadQuantumKeeper).
class SyncAheadKeeper {
 public:
  /// No other process can run before `target` (the local time): true if the keeper skips the
  /// sync (it keeps its local time and moves its next sync point as if it had synced).
  virtual bool skipSync(const sc_core::sc_time& target) = 0;

  /// The keepers that skip syncs, by their quantum keeper (a handful: one per thread that looks
  /// ahead). A keeper registers itself while it exists; a lookup costs less than a dynamic_cast.
  static std::vector<std::pair<const tlm_utils::tlm_quantumkeeper*, SyncAheadKeeper*>>& registry() {
    static std::vector<std::pair<const tlm_utils::tlm_quantumkeeper*, SyncAheadKeeper*>> r;
    return r;
  }
  static SyncAheadKeeper* find(const tlm_utils::tlm_quantumkeeper& qk) {
    for (const auto& [q, k] : registry())
      if (q == &qk) return k;
    return nullptr;
  }

 protected:
  ~SyncAheadKeeper() = default;
};

/// qk.sync(), unless no process is runnable now, the earliest pending timed activity of the
/// simulation is strictly later than the local time, and qk skips it (SyncAheadKeeper). After
/// it, the thread's time is the local time (sc_time_stamp() may be behind it). The cheap test
/// comes first: only a sync that nothing could observe asks the keeper what it is.
inline void syncAhead(tlm_utils::tlm_quantumkeeper& qk) {
  const sc_core::sc_time& now = sc_core::sc_time_stamp();
  const sc_core::sc_time target = now + qk.get_local_time();
  if (target > now && !sc_core::sc_pending_activity_at_current_time() &&
      now + sc_core::sc_time_to_pending_activity() > target)
    if (SyncAheadKeeper* k = SyncAheadKeeper::find(qk); k != nullptr && k->skipSync(target)) return;
  qk.sync();
}

}  // namespace hmmsim
