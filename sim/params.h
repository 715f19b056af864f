#pragma once
// Declarative parameter tables: one table per model, written once, that drives YAML loading and
// validation, `hmmsim describe` and docs/scenario-format.md. A row is a key's name, type, unit,
// default (read from a default-constructed parameter struct, so the struct's initialisers stay
// the one source of the defaults), one-line description and valid range.
//
//   ParamTable<PhysMemParams> t("phys_mem", "physical memory: RAM size and zones");
//   t.bytes("ram", &PhysMemParams::ramSize, "size of RAM", 2ull << 20, 1ull << 50);
//   PhysMemParams p;  t.load(node, p);   // unknown keys get the nearest valid key
//
// Contract: a row's setter range-checks and converts one ConfigNode; load() rejects keys the
// table does not know and leaves fields whose keys are absent at their current value.

#include <cstdint>
#include <functional>
#include <limits>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "sim/config.h"
#include "sim/units.h"

namespace hmmsim {

/// How a row's value is written in YAML.
enum class ParamType {
  Bool,      ///< true/false
  Int,       ///< a plain integer
  Bytes,     ///< a byte size with a unit ("256MiB")
  Duration,  ///< a time with a unit ("2us"), stored in picoseconds
  Bitrate,   ///< a rate with a unit ("100Gb/s"), stored in bits per second
  Double,    ///< a real number
  Choice,    ///< one word from a fixed list
  Table,     ///< a map read by another table (its model is named in the range column)
  String,    ///< text (a name)
};

const char* paramTypeName(ParamType t);

/// One documented key of a table.
struct ParamRow {
  std::string name;
  ParamType type = ParamType::Int;
  std::string unit;  ///< "bytes", "ps", "pages", "" for none
  std::string defaultText;
  std::string desc;       ///< one line
  std::string range;      ///< "1 .. 32", "off | passthrough | on", "" when any value of the type
  bool required = false;  ///< the key must be given (its default column reads "(required)")
};

/// What every table offers to describe/doc generation, independent of its struct.
class ParamTableBase {
 public:
  ParamTableBase(std::string model, std::string summary)
      : model_(std::move(model)), summary_(std::move(summary)) {}
  virtual ~ParamTableBase() = default;
  const std::string& model() const { return model_; }
  const std::string& summary() const { return summary_; }
  const std::vector<ParamRow>& rows() const { return rows_; }
  std::vector<std::string> keys() const;
  /// Aligned text table for `hmmsim describe MODEL`.
  std::string describe() const;
  /// A markdown section for docs/scenario-format.md.
  std::string markdown() const;

 protected:
  std::string model_, summary_;
  std::vector<ParamRow> rows_;
};

template <typename T>
class ParamTable : public ParamTableBase {
  template <typename>
  friend class ParamTable;

 public:
  using Setter = std::function<void(T&, const ConfigNode&)>;
  using ParamTableBase::ParamTableBase;

  /// Fills `out` from the map `node`: every key must be a row (else the nearest row is named).
  void load(const ConfigNode& node, T& out) const {
    node.requireMap();
    const std::vector<std::string> names = keys();
    node.requireKeys(names);
    for (const ParamRow& r : rows_)
      if (r.required) node.at(r.name);  // "missing required key"
    for (const auto& [key, value] : node.entries()) {
      std::size_t i = 0;
      while (names[i] != key) ++i;
      setters_[i](out, value);
    }
    if (check_) {
      const std::string why = check_(out);
      if (!why.empty()) node.fail(why);
    }
  }

  /// A row with its own conversion (strong types, enums); `defaultText` documents the default.
  ParamTable& custom(ParamRow row, Setter set) {
    rows_.push_back(std::move(row));
    setters_.push_back(std::move(set));
    return *this;
  }

  /// Marks the last row added as a key that must be given.
  ParamTable& required() {
    rows_.back().required = true;
    rows_.back().defaultText = "(required)";
    return *this;
  }
  /// A text row (a name, a reference to another element).
  ParamTable& text(const std::string& name, std::string T::*field, const std::string& desc, bool required) {
    return custom({name, ParamType::String, "", required ? "(required)" : "\"" + defaults().*field + "\"",
                   desc, "", required},
                  [=](T& t, const ConfigNode& n) { t.*field = n.asString(); });
  }
  /// A 16-bit PCI identifier (vendor, device), printed in hex.
  ParamTable& id16(const std::string& name, std::uint16_t T::*field, const std::string& desc) {
    std::ostringstream d;
    d << "0x" << std::hex << defaults().*field;
    return custom({name, ParamType::Int, "", d.str(), desc, "0 .. 0xffff"}, [=](T& t, const ConfigNode& n) {
      t.*field = static_cast<std::uint16_t>(n.asInt(0, 0xffff));
    });
  }
  /// A row whose value is one word of `choices` (each mapped to a value of the field's type).
  template <typename M>
  ParamTable& choice(const std::string& name, M T::*field, const std::string& desc,
                     std::vector<std::pair<std::string, M>> choices) {
    std::string def, range;
    std::vector<std::string> words;
    for (const auto& [w, v] : choices) {
      if (v == defaults().*field) def = w;
      range += (range.empty() ? "" : ", ") + w;
      words.push_back(w);
    }
    return custom({name, ParamType::Choice, "", def, desc, range}, [=](T& t, const ConfigNode& n) {
      const std::string s = n.asString();
      for (const auto& [w, v] : choices)
        if (w == s) {
          t.*field = v;
          return;
        }
      const std::string near = nearestWord(s, words);
      n.fail("expected one of: " + range + "; got '" + s + "'" +
             (near.empty() ? "" : " (did you mean '" + near + "'?)"));
    });
  }
  /// The rows of `sub` as rows of this table, read into the member `member` (a section whose
  /// keys fill two parameter structs, e.g. the IOMMU's and the DMA layer's).
  template <typename U>
  ParamTable& merge(const ParamTable<U>& sub, U T::*member) {
    for (std::size_t i = 0; i < sub.rows_.size(); ++i) {
      auto set = sub.setters_[i];
      custom(sub.rows_[i], [=](T& t, const ConfigNode& n) { set(t.*member, n); });
    }
    return *this;
  }
  /// A key whose value is a map read by `sub` into `member` (e.g. `iotlb: {entries_4k: 64}`).
  template <typename U>
  ParamTable& table(const std::string& name, const ParamTable<U>& sub, U T::*member,
                    const std::string& desc) {
    return custom({name, ParamType::Table, "", "", desc, "see " + sub.model()},
                  [&sub, member](T& t, const ConfigNode& n) { sub.load(n, t.*member); });
  }
  /// A whole-struct rule checked after loading (e.g. PhysMemParams::check); "" when it holds.
  ParamTable& check(std::function<std::string(const T&)> rule) {
    check_ = std::move(rule);
    return *this;
  }

  template <typename M>
  ParamTable& integer(const std::string& name, M T::*field, const std::string& unit, const std::string& desc,
                      std::int64_t min, std::int64_t max) {
    static_assert(std::is_integral_v<M>);
    return add(name, ParamType::Int, unit, desc, rangeText(min, max), defaults().*field,
               [=](T& t, const ConfigNode& n) { t.*field = static_cast<M>(n.asInt(min, max)); });
  }
  ParamTable& boolean(const std::string& name, bool T::*field, const std::string& desc) {
    return custom({name, ParamType::Bool, "", defaults().*field ? "true" : "false", desc, ""},
                  [=](T& t, const ConfigNode& n) { t.*field = n.asBool(); });
  }
  template <typename M>
  ParamTable& bytes(const std::string& name, M T::*field, const std::string& desc, std::uint64_t min,
                    std::uint64_t max) {
    return add(name, ParamType::Bytes, "bytes", desc, formatBytes(min) + " .. " + formatBytes(max),
               formatBytes(static_cast<std::uint64_t>(defaults().*field)), [=](T& t, const ConfigNode& n) {
                 t.*field = static_cast<M>(checked(n, n.asBytes(), min, max));
               });
  }
  template <typename M>
  ParamTable& duration(const std::string& name, M T::*field, const std::string& desc, std::uint64_t min,
                       std::uint64_t max) {
    return add(name, ParamType::Duration, "ps", desc, formatDurationPs(min) + " .. " + formatDurationPs(max),
               formatDurationPs(static_cast<std::uint64_t>(defaults().*field)),
               [=](T& t, const ConfigNode& n) {
                 t.*field = static_cast<M>(checked(n, n.asDurationPs(), min, max));
               });
  }
  ParamTable& bitrate(const std::string& name, double T::*field, const std::string& desc) {
    return add(name, ParamType::Bitrate, "bit/s", desc, "> 0", formatBitsPerSecond(defaults().*field),
               [=](T& t, const ConfigNode& n) {
                 const double v = n.asBitsPerSecond();
                 if (!(v > 0)) n.fail("expected a rate above 0");
                 t.*field = v;
               });
  }
  ParamTable& real(const std::string& name, double T::*field, const std::string& unit,
                   const std::string& desc, double min, double max) {
    std::ostringstream r;
    r << min << " .. " << max;
    return add(name, ParamType::Double, unit, desc, r.str(), defaults().*field,
               [=](T& t, const ConfigNode& n) {
                 const double v = n.asDouble();
                 if (v < min || v > max) {
                   std::ostringstream os;
                   os << "expected a number from " << min << " to " << max << ", got " << v;
                   n.fail(os.str());
                 }
                 t.*field = v;
               });
  }

 private:
  /// A default-constructed T: where every row's default is read from.
  static const T& defaults() {
    static const T d{};
    return d;
  }
  template <typename V>
  ParamTable& add(const std::string& name, ParamType type, const std::string& unit, const std::string& desc,
                  std::string range, const V& def, Setter set) {
    std::ostringstream d;
    d << def;
    return custom({name, type, unit, d.str(), desc, std::move(range)}, std::move(set));
  }
  static std::string rangeText(std::uint64_t min, std::uint64_t max) {
    return rangeText(double(min), double(max));
  }
  static std::string rangeText(std::int64_t min, std::int64_t max) {
    return std::to_string(min) + " .. " + std::to_string(max);
  }
  static std::string rangeText(double min, double max) {
    std::ostringstream os;
    os << static_cast<std::uint64_t>(min) << " .. " << static_cast<std::uint64_t>(max);
    return os.str();
  }
  static std::uint64_t checked(const ConfigNode& n, std::uint64_t v, std::uint64_t min, std::uint64_t max) {
    if (v < min || v > max) {
      std::ostringstream os;
      os << "expected a value from " << min << " to " << max << ", got " << v;
      n.fail(os.str());
    }
    return v;
  }
  std::vector<Setter> setters_;
  std::function<std::string(const T&)> check_;
};

}  // namespace hmmsim
