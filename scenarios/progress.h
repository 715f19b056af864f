#pragma once
// The progress line of a long platform run on a terminal: simulated time, wall time and SystemC
// delta cycles per wall second, rewritten in place on stderr. It appears only after a second of
// wall time (short runs print nothing) and is erased at the end.
//
// It is no SystemC process: run() advances the simulation in slices of simulated time and prints
// between them. A process of its own (as before) woke every millisecond, which changed SystemC's
// timed-event queue (and with it the order of same-time events) and kept the simulation running
// to the next whole millisecond after the workload ended (run.sim_time); a run on a terminal
// must write the same stats.json as one that is not.

#include <chrono>
#include <string>

namespace hmmsim::scenario {

class ProgressLine {
 public:
  /// `label` names the run.
  explicit ProgressLine(std::string label);
  ~ProgressLine();
  ProgressLine(const ProgressLine&) = delete;
  ProgressLine& operator=(const ProgressLine&) = delete;

  /// sc_start() to the end of the simulation (no pending activity, or sc_stop), one millisecond
  /// of simulated time at a time, updating the line between slices. Ends at the time of the last
  /// event, as sc_start() does.
  void run();

 private:
  void update();
  std::string label_;
  std::chrono::steady_clock::time_point start_, last_;
  bool printed_ = false;
};

}  // namespace hmmsim::scenario
