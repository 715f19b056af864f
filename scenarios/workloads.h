#pragma once
// The kinds of `workload:` a platform scenario can run. Each kind is a key under `workload:`
// with its parameter table (`hmmsim describe workload.<key>`), its parsing and checks against
// the platform (devices by name and type), the PlatformWorkload it builds on the Platform
// (models/platform/workload.h), its line in `hmmsim validate` and its rows in the comparison
// table. One file per kind (workload_<key>.cpp); workloadKinds() lists them.
//
// How a workload joins: write the model (models/platform/<key>.h, a PlatformWorkload), then
// scenarios/workload_<key>.cpp defining `WorkloadKind <key>WorkloadKind()`, and add it to
// workloadKinds() in workloads.cpp.

#include <any>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "models/platform/platform.h"
#include "models/platform/workload.h"
#include "scenarios/scenario.h"
#include "scenarios/scenario_run.h"
#include "sim/params.h"

namespace hmmsim::scenario {

/// One row of the comparison table: a label and each run's cell.
struct ComparisonRow {
  std::string label;
  std::function<std::string(const RunResult&)> cell;
  /// Left out of the table when every run's cell is "0" (a row about an optional feature).
  bool onlyIfNonzero = false;
};

struct WorkloadKind {
  std::string key;                        ///< its key under `workload:` ("camera_chain")
  const ParamTableBase* table = nullptr;  ///< its parameters
  /// Reads and validates `n` (the key's node) against s.platform.desc, which it may complete
  /// (the workload's processes, a device's mode for this run); returns the kind's params.
  /// Throws ConfigError at the offending key.
  std::function<std::any(const ConfigNode& n, Scenario& s)> parse;
  /// Builds the workload on the platform (before sc_start).
  std::function<std::unique_ptr<PlatformWorkload>(Platform& p, const std::any& params)> make;
  /// What it runs, in one line (`hmmsim validate`).
  std::function<std::string(const std::any& params)> summary;
  /// The named memory its PlatformWorkload::regions() will have (name, process), for a script's
  /// checks before anything runs. Empty function: none.
  std::function<RegionNames(const std::any& params)> regions;
  /// Its rows of the comparison table, above the platform's own (bytes, IOMMU, checker).
  std::vector<ComparisonRow> rows;
};

/// Every kind, in the order describe lists them.
const std::vector<WorkloadKind>& workloadKinds();
/// The kind of key `key`, or null.
const WorkloadKind* findWorkloadKind(const std::string& key);

// Shared by the kinds' parsers.

/// The device `name` of type `type` in the platform; fails at `at` (with the nearest name of
/// that type) when there is none.
DeviceDesc& requireDevice(const ConfigNode& at, PlatformDesc& d, const std::string& name,
                          const std::string& type);
/// Device `d`'s params struct (P: its type's), or P{} when the file gave none.
template <class P>
P deviceParams(const DeviceDesc& d) {
  return d.params.has_value() ? std::any_cast<P>(d.params) : P{};
}
/// The size of BAR `index` of topology endpoint `endpoint` (function 0), or 0 when it has none.
std::uint64_t endpointBarBytes(const PlatformDesc& d, const std::string& endpoint, int index);
/// Adds process `name` to the platform unless it is there.
void ensureProcess(PlatformDesc& d, const std::string& name);

/// `place:` under a workload (region: mapping) → its WorkloadPlacement: region names among
/// `regions` (the kind's placeable regions for this run's params), each mapping one of the
/// region's process's (processes[].memory), big enough, of a kind and protection its rule takes
/// (placementRefusal). Throws ConfigError at the entry (nearest region or mapping name, the size
/// to give, the kind or prot to take).
WorkloadPlacement parsePlacement(const ConfigNode& n, const PlatformDesc& d,
                                 const std::vector<PlaceableRegion>& regions);
/// The `place` row of a kind's table: `regions` (its region names) go in the description.
template <class P>
void addPlaceParam(ParamTable<P>& t, const std::string& regions) {
  t.custom(
      {"place", ParamType::Table, "", "none",
       "put buffers in named process mappings (processes[].memory): region: mapping; regions: " + regions,
       "a map"},
      [](P&, const ConfigNode&) {});  // read by the kind's parser with parsePlacement
}

// Shared by the kinds' rows.

/// `v` with `digits` decimals.
std::string fixedText(double v, int digits);
/// Bytes as B, KiB, MiB or GiB with two decimals.
std::string bytesText(double b);
/// The value of stat `name` in a run (0 when absent).
double statOf(const RunResult& r, const std::string& name);
/// A row showing stat `name` divided by `div` with `digits` decimals.
ComparisonRow statRow(const std::string& label, const std::string& name, double div, int digits);

}  // namespace hmmsim::scenario
