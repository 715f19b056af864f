#pragma once
// Running a scenario whose machine is the SystemC platform (`platform:` + `workload:`): the
// Platform built from the validated PlatformDesc with builtinDevices(), the workload built on it by
// its kind (workloads.h), the simulation run to its end, then the stats registry, the workload's
// own checks and the `expect:` section.
//
// SystemC elaborates one machine per process, so every platform run (each variant of a file
// with `variants:`) runs in its own forked process; the results come back as JSON and are
// compared side by side (formatComparison). Same file and seed -> the same stats, byte for byte.

#include <string>
#include <vector>

#include "scenarios/scenario.h"
#include "scenarios/scenario_run.h"

namespace hmmsim::scenario {

/// One variant's outcome (the scenario itself when the file has no variants: name "").
struct VariantRun {
  std::string name;
  std::string description;
  RunResult result;
};

struct PlatformRunOptions {
  unsigned parallel = 1;      ///< variants running at once
  bool trace = false;         ///< RunResult::traceJson per variant (mergedTrace)
  bool progress = false;      ///< the progress line on stderr (the first variant's)
  std::string progressLabel;  ///< its label
};

/// Runs every variant of `s` (or `s` alone) in forked processes, `o.parallel` at a time.
std::vector<VariantRun> runPlatformVariants(const Scenario& s, const PlatformRunOptions& o);
/// One Chrome/Perfetto trace: each variant a process (named after it), its tracks as threads.
std::string mergedTrace(const std::vector<VariantRun>& runs);
/// The variants' stats in one registry, each under "<variant>." (no prefix for a lone run).
StatsRegistry mergedStats(const std::vector<VariantRun>& runs);
/// Every variant's checker reports, one per line, each prefixed by its variant's name.
std::string allViolations(const std::vector<VariantRun>& runs);
/// Checker reports formatComparison prints per variant (a misbehaving importer makes thousands);
/// `hmmsim run --out DIR` writes every one to DIR/violations.txt.
constexpr std::size_t kViolationsShown = 20;
/// The comparison table (a column per variant), each variant's failures and its first
/// kViolationsShown checker reports.
std::string formatComparison(const Scenario& s, const std::vector<VariantRun>& runs);

}  // namespace hmmsim::scenario
