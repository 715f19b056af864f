#pragma once
// Running a validated Scenario: builds the machine (physical memory, dmirror devices, the
// processes and their memory), executes the script in order, checks every operation's expected
// result, then the `expect:` section, and collects the stats registry. A pure function of the
// Scenario: the same scenario gives the same stats, byte for byte.
//
// Time: this runner drives the functional models (no SystemC platform yet), so operations take
// no simulated time; the trace (--trace) places operation i at i microseconds on its track.

#include <string>
#include <vector>

#include "scenarios/scenario.h"
#include "sim/checker.h"
#include "sim/stats_registry.h"

namespace hmmsim::scenario {

struct RunOptions {
  bool trace = false;  ///< build a Chrome/Perfetto trace (RunResult::traceJson)
};

struct RunResult {
  std::vector<std::string> failures;    ///< failed expectations, each "file:line:col: what"
  std::vector<std::string> violations;  ///< the checker's reports (InvariantChecker::format)
  std::uint64_t opsRun = 0;             ///< script operations executed (repeats counted)
  StatsRegistry stats;
  std::string traceJson;
  bool ok() const { return failures.empty(); }
};

RunResult runScenario(const Scenario& s, const RunOptions& opts = {});
/// Adds to r.failures every `expect:` entry of `s` that r.stats or `checker` do not meet.
void checkExpectations(const Scenario& s, const InvariantChecker& checker, RunResult& r);

/// The terminal summary of a run.
std::string formatSummary(const Scenario& s, const RunResult& r);

}  // namespace hmmsim::scenario
