#include "sim/stats_registry.h"

#include "sim/assert.h"
#include "sim/config.h"
#include "sim/stats.h"

#include <sstream>

namespace hmmsim {

void StatsRegistry::add(const std::string& path, const StatsGroup& group) {
  const nlohmann::json j = group.toJson();
  for (const auto& [name, entry] : j.items()) {
    std::string full = path;
    if (!full.empty()) full += '.';
    full += name;
    HMMSIM_ASSERT(!stats_.count(full), "stat '" << full << "' registered twice");
    stats_[full] = entry;
  }
}

void StatsRegistry::addValue(const std::string& path, double value, const std::string& unit,
                             const std::string& desc) {
  HMMSIM_ASSERT(!stats_.count(path), "stat '" << path << "' registered twice");
  nlohmann::json e;
  e["value"] = value;
  e["unit"] = unit;
  e["desc"] = desc;
  stats_[path] = e;
}

std::optional<double> StatsRegistry::value(const std::string& fullName) const {
  auto it = stats_.find(fullName);
  if (it != stats_.end()) {
    const nlohmann::json& e = it->second;
    if (e.contains("value")) return e["value"].get<double>();
    return e["mean"].get<double>();
  }
  const std::size_t dot = fullName.rfind('.');
  if (dot == std::string::npos) return std::nullopt;
  it = stats_.find(fullName.substr(0, dot));
  if (it == stats_.end()) return std::nullopt;
  const std::string field = fullName.substr(dot + 1);
  const nlohmann::json& e = it->second;
  if (field == "unit" || field == "desc" || field == "log2_buckets" || !e.contains(field))
    return std::nullopt;
  return e[field].get<double>();
}

std::vector<std::pair<std::string, double>> StatsRegistry::flat() const {
  std::vector<std::pair<std::string, double>> out;
  for (const auto& [name, s] : stats_) {
    if (s.contains("value")) {
      out.emplace_back(name, s["value"].get<double>());
      continue;
    }
    for (const char* f : {"count", "sum", "min", "max", "mean"})
      out.emplace_back(name + "." + f, s[f].get<double>());
  }
  return out;
}

nlohmann::json StatsRegistry::entries() const {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [name, s] : stats_) j[name] = s;
  return j;
}

void StatsRegistry::addEntries(const std::string& prefix, const nlohmann::json& entries) {
  for (const auto& item : entries.items()) {
    // Not a structured binding: clang 14 (the fuzz preset) cannot capture one in the assertion.
    const std::string& name = item.key();
    HMMSIM_ASSERT(!stats_.count(prefix + name), "stat '" << prefix << name << "' registered twice");
    stats_[prefix + name] = item.value();
  }
}

std::vector<std::string> StatsRegistry::names() const {
  std::vector<std::string> n;
  for (const auto& [name, s] : stats_) n.push_back(name);
  return n;
}

std::string StatsRegistry::nearestName(const std::string& fullName) const {
  return nearestWord(fullName, names());
}

nlohmann::json StatsRegistry::toJson() const {
  nlohmann::json root = nlohmann::json::object();
  for (const auto& [name, s] : stats_) {
    nlohmann::json* node = &root;
    std::istringstream path(name);
    for (std::string part; std::getline(path, part, '.');) node = &(*node)[part];
    *node = s;
  }
  return root;
}

}  // namespace hmmsim
