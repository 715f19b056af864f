#pragma once
// The progress line of a long platform run on a terminal: simulated time, wall time and SystemC
// delta cycles per wall second, rewritten in place on stderr. It appears only after a second of
// wall time (short runs print nothing) and is erased at the end.

#include <chrono>
#include <functional>
#include <string>

#include <systemc>

namespace hmmsim::scenario {

class ProgressLine : public sc_core::sc_module {
 public:
  SC_HAS_PROCESS(ProgressLine);
  /// Wakes every millisecond of simulated time until `done()`; `label` names the run.
  ProgressLine(sc_core::sc_module_name name, std::string label, std::function<bool()> done);
  ~ProgressLine() override;

 private:
  void run();
  std::string label_;
  std::function<bool()> done_;
  std::chrono::steady_clock::time_point start_, last_;
  bool printed_ = false;
};

}  // namespace hmmsim::scenario
