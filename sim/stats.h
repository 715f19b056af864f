#pragma once
// Statistics: one StatsGroup per model instance, named after its place in the hierarchy
// ("top.rc0.sw0.dp1"). Every stat is registered once with a unit and a one-line description,
// so `hmmsim describe` and stats.json can say what each number means.
//
// Contract: a group owns its stats; the handles it returns (Counter&, Scalar&, Distribution&)
// stay valid for the group's lifetime. Registering the same name twice is a simulator bug.
// Updating a counter is a plain add: free enough for hot paths.

#include <cstdint>
#include <deque>
#include <limits>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace hmmsim {

/// A monotonically counted event or quantity (faults, bytes, TLPs).
class Counter {
 public:
  void inc(std::uint64_t n = 1) { value_ += n; }
  Counter& operator++() {
    ++value_;
    return *this;
  }
  Counter& operator+=(std::uint64_t n) {
    value_ += n;
    return *this;
  }
  std::uint64_t value() const { return value_; }
  void reset() { value_ = 0; }

 private:
  std::uint64_t value_ = 0;
};

/// A value that is set, not counted (a ratio, a level, a high-water mark).
class Scalar {
 public:
  void set(double v) { value_ = v; }
  void max(double v) {
    if (v > value_) value_ = v;
  }
  double value() const { return value_; }
  void reset() { value_ = 0; }

 private:
  double value_ = 0;
};

/// Count, sum, min, max and power-of-two buckets of a sampled quantity (latencies, sizes).
class Distribution {
 public:
  void sample(std::uint64_t v);
  std::uint64_t count() const { return count_; }
  std::uint64_t sum() const { return sum_; }
  std::uint64_t min() const { return count_ ? min_ : 0; }
  std::uint64_t max() const { return max_; }
  double mean() const { return count_ ? double(sum_) / double(count_) : 0.0; }
  /// buckets()[i] counts samples v with floor(log2(v)) == i - 1 (bucket 0 counts v == 0).
  const std::vector<std::uint64_t>& buckets() const { return buckets_; }
  void reset();

 private:
  std::uint64_t count_ = 0, sum_ = 0;
  std::uint64_t min_ = std::numeric_limits<std::uint64_t>::max(), max_ = 0;
  std::vector<std::uint64_t> buckets_;
};

class StatsGroup {
 public:
  explicit StatsGroup(std::string name);
  StatsGroup(const StatsGroup&) = delete;
  StatsGroup& operator=(const StatsGroup&) = delete;

  const std::string& name() const { return name_; }

  Counter& counter(const std::string& name, const std::string& unit, const std::string& desc);
  Scalar& scalar(const std::string& name, const std::string& unit, const std::string& desc);
  Distribution& distribution(const std::string& name, const std::string& unit, const std::string& desc);

  /// Value of a counter by its short name; a simulator bug if absent (tests use it).
  std::uint64_t counterValue(const std::string& name) const;

  /// {"name": {"value": v, "unit": u, "desc": d}, ...} for this group's stats.
  nlohmann::json toJson() const;
  /// Writes this group's stats into `root` under the dotted path of the group's name.
  void mergeInto(nlohmann::json& root) const;
  /// One line per stat: "top.rc0.tx_bytes  1234 B  bytes sent".
  std::string describe() const;

  void resetAll();

 private:
  enum class Kind { Counter, Scalar, Distribution };
  struct Entry {
    std::string name, unit, desc;
    Kind kind;
    std::size_t index;
  };
  void checkUnique(const std::string& name) const;

  std::string name_;
  std::vector<Entry> entries_;
  std::deque<Counter> counters_;
  std::deque<Scalar> scalars_;
  std::deque<Distribution> distributions_;
};

}  // namespace hmmsim
