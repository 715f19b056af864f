#include "sim/stats.h"

#include "sim/assert.h"

#include <nlohmann/json.hpp>

#include <sstream>

namespace hmmsim {

void Distribution::sample(std::uint64_t v) {
  ++count_;
  sum_ += v;
  if (v < min_) min_ = v;
  if (v > max_) max_ = v;
  std::size_t b = v == 0 ? 0 : 64 - static_cast<std::size_t>(__builtin_clzll(v));
  if (buckets_.size() <= b) buckets_.resize(b + 1, 0);
  ++buckets_[b];
}

void Distribution::reset() {
  *this = Distribution();
}

StatsGroup::StatsGroup(std::string name) : name_(std::move(name)) {}

void StatsGroup::checkUnique(const std::string& name) const {
  for (const auto& e : entries_) {
    HMMSIM_ASSERT(e.name != name, "stat '" << name << "' registered twice in group '" << name_ << "'");
  }
}

Counter& StatsGroup::counter(const std::string& name, const std::string& unit, const std::string& desc) {
  checkUnique(name);
  entries_.push_back({name, unit, desc, Kind::Counter, counters_.size()});
  return counters_.emplace_back();
}

Scalar& StatsGroup::scalar(const std::string& name, const std::string& unit, const std::string& desc) {
  checkUnique(name);
  entries_.push_back({name, unit, desc, Kind::Scalar, scalars_.size()});
  return scalars_.emplace_back();
}

Distribution& StatsGroup::distribution(const std::string& name, const std::string& unit,
                                       const std::string& desc) {
  checkUnique(name);
  entries_.push_back({name, unit, desc, Kind::Distribution, distributions_.size()});
  return distributions_.emplace_back();
}

std::uint64_t StatsGroup::counterValue(const std::string& name) const {
  for (const auto& e : entries_) {
    if (e.name == name && e.kind == Kind::Counter) return counters_[e.index].value();
  }
  HMMSIM_ASSERT(false, "no counter '" << name << "' in group '" << name_ << "'");
}

nlohmann::json StatsGroup::toJson() const {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& e : entries_) {
    nlohmann::json s;
    switch (e.kind) {
      case Kind::Counter:
        s["value"] = counters_[e.index].value();
        break;
      case Kind::Scalar:
        s["value"] = scalars_[e.index].value();
        break;
      case Kind::Distribution: {
        const auto& d = distributions_[e.index];
        s["count"] = d.count();
        s["sum"] = d.sum();
        s["min"] = d.min();
        s["max"] = d.max();
        s["mean"] = d.mean();
        s["log2_buckets"] = d.buckets();
        break;
      }
    }
    s["unit"] = e.unit;
    s["desc"] = e.desc;
    j[e.name] = std::move(s);
  }
  return j;
}

void StatsGroup::mergeInto(nlohmann::json& root) const {
  nlohmann::json* node = &root;
  std::string part;
  std::istringstream path(name_);
  while (std::getline(path, part, '.')) {
    if (part.empty()) continue;
    node = &(*node)[part];
  }
  nlohmann::json mine = toJson();
  for (auto& [k, v] : mine.items()) (*node)[k] = v;
}

std::string StatsGroup::describe() const {
  std::ostringstream os;
  for (const auto& e : entries_) {
    os << name_ << '.' << e.name << "  ";
    switch (e.kind) {
      case Kind::Counter:
        os << counters_[e.index].value();
        break;
      case Kind::Scalar:
        os << scalars_[e.index].value();
        break;
      case Kind::Distribution:
        os << "n=" << distributions_[e.index].count() << " mean=" << distributions_[e.index].mean();
        break;
    }
    os << ' ' << e.unit << "  " << e.desc << '\n';
  }
  return os.str();
}

void StatsGroup::resetAll() {
  for (auto& c : counters_) c.reset();
  for (auto& s : scalars_) s.reset();
  for (auto& d : distributions_) d.reset();
}

}  // namespace hmmsim
