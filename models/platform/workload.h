#pragma once
// What runs on a Platform: a workload wires devices, drivers and process memory together (the
// camera chain, the GPU and NIC workloads, ...), runs under sc_start(), then reports its verdict
// and its stats. A scenario file's `workload:` section builds exactly one (scenarios/workloads.h
// lists the kinds); the C++ integration tests construct them directly.
//
// Contract: construct after the Platform and before sc_start(); start() once; after the
// simulation has run, finish() once, then check() and addStats(). A workload holds device files
// and process memory: destroy it before its Platform.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "models/platform/placement.h"
#include "sim/stats_registry.h"
#include "sim/strong_types.h"
#include "sim/trace.h"

namespace hmmsim {

class Platform;

/// The value at rank ceil(q * n) of the samples (nearest-rank percentile; 0 for none).
std::uint64_t percentile(std::vector<std::uint64_t> samples, double q);

/// A named range of a process's address space that a workload uses: what a scenario script's
/// operations name (`region: frames_out`).
struct WorkloadRegion {
  std::string name;     ///< unique among the workload's regions
  std::string process;  ///< the process (PlatformDesc::processes) it is in
  Va start;             ///< page aligned
  std::uint64_t bytes = 0;
};

class PlatformWorkload {
 public:
  virtual ~PlatformWorkload() = default;

  /// Starts the devices' programs (before or during the simulation).
  virtual void start() = 0;
  /// The workload has finished its programs (drives the progress line; the simulation ends by
  /// itself when no event is left).
  virtual bool done() const = 0;
  /// Records the workload's own slices on `trace` (may be null; outlives the workload).
  virtual void setTrace(TraceSink* trace) = 0;
  /// Computes the summary values (after the simulation).
  virtual void finish() = 0;
  /// The workload's own verdict (incomplete programs, wrong bytes): one message per failure,
  /// each starting with `at` (the scenario file and the workload's key).
  virtual void check(const std::string& at, std::vector<std::string>& failures) const = 0;
  /// Its stats, and those of the devices it drives, into `r` ("workload.*", "device.<name>.*").
  virtual void addStats(Platform& p, StatsRegistry& r) = 0;
  /// Its named memory (after construction), for scenario scripts. Default: none.
  virtual std::vector<WorkloadRegion> regions() const { return {}; }
};

}  // namespace hmmsim
