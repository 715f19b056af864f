#pragma once
// The stats registry of one run: every module's StatsGroup is registered under a hierarchical
// name ("process.main.mm", "device.dmirror0") and its values, units and descriptions are taken
// at that moment (a snapshot, so the registry holds no reference into a model that may be gone
// before the run ends: a forked child's mm registers when the child exits). stats.json, the
// terminal summary, expectations (`expect: stats:`) and sweeps read from here.
//
// Contract: names are unique ("proc.mm.faults" registered twice is a simulator bug); the JSON is
// ordered by name, so the same run gives byte-identical output.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace hmmsim {

class StatsGroup;

class StatsRegistry {
 public:
  /// Takes the current values of `group` under `path` (its own name is not used).
  void add(const std::string& path, const StatsGroup& group);
  /// A single value computed by the run (wall-clock-free: simulated quantities only).
  void addValue(const std::string& path, double value, const std::string& unit, const std::string& desc);

  /// The value of "path.stat" (a counter or scalar's value, a distribution's mean); a
  /// distribution's fields are "path.stat.count", ".sum", ".min", ".max", ".mean".
  std::optional<double> value(const std::string& fullName) const;
  /// Every number by full name, sorted (the sweep CSV's columns).
  std::vector<std::pair<std::string, double>> flat() const;
  std::vector<std::string> names() const;
  /// The nearest registered name to a misspelt one ("" when none is close).
  std::string nearestName(const std::string& fullName) const;

  /// {"process": {"main": {"mm": {"faults": {"value": 3, "unit": "faults", "desc": ...}}}}}
  nlohmann::json toJson() const;
  /// Every entry by full name, flat ({"process.main.mm.faults": {...}}): what a forked run sends
  /// back; addEntries() registers such entries under `prefix` (e.g. a variant's "p2p_switch.").
  nlohmann::json entries() const;
  void addEntries(const std::string& prefix, const nlohmann::json& entries);

 private:
  /// Full name -> {"value"|count/sum/..., "unit", "desc"}.
  std::map<std::string, nlohmann::json> stats_;
};

}  // namespace hmmsim
