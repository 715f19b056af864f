#include "sim/units.h"

#include <cmath>
#include <cstdio>
#include <utility>

namespace hmmsim {
namespace {

struct Split {
  double number = 0;
  std::string_view unit;
};

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// "1.5 KiB" -> {1.5, "KiB"}; nullopt when there is no leading non-negative number.
std::optional<Split> splitNumber(std::string_view text) {
  text = trim(text);
  std::size_t i = 0;
  bool digits = false, dot = false;
  while (i < text.size()) {
    char c = text[i];
    if (c >= '0' && c <= '9') {
      digits = true;
    } else if (c == '.' && !dot) {
      dot = true;
    } else {
      break;
    }
    ++i;
  }
  if (!digits) return std::nullopt;
  std::string num(text.substr(0, i));
  Split s;
  s.number = std::strtod(num.c_str(), nullptr);
  s.unit = trim(text.substr(i));
  return s;
}

void setWhy(std::string* why, std::string msg) {
  if (why) *why = std::move(msg);
}

}  // namespace

std::optional<std::uint64_t> parseBytes(std::string_view text, std::string* why) {
  static const std::pair<std::string_view, double> kUnits[] = {
      {"", 1},         {"B", 1},      {"KiB", 0x1p10}, {"MiB", 0x1p20}, {"GiB", 0x1p30},
      {"TiB", 0x1p40}, {"kB", 1e3},   {"KB", 1e3},     {"MB", 1e6},     {"GB", 1e9},
      {"TB", 1e12},    {"K", 0x1p10}, {"M", 0x1p20},   {"G", 0x1p30},   {"T", 0x1p40}};
  const std::string expected = "expected a byte size such as 4096, 64B, 4KiB, 256MiB or 2GiB";
  auto s = splitNumber(text);
  if (!s) {
    setWhy(why, expected);
    return std::nullopt;
  }
  for (const auto& [name, mult] : kUnits) {
    if (s->unit != name) continue;
    long double v = static_cast<long double>(s->number) * mult;
    if (v >= 0x1p64) {
      setWhy(why, "byte size too large (at most 16EiB)");
      return std::nullopt;
    }
    if (v != std::floor(v)) {
      setWhy(why, "byte size is not a whole number of bytes");
      return std::nullopt;
    }
    return static_cast<std::uint64_t>(v);
  }
  setWhy(why, expected + " (unknown unit '" + std::string(s->unit) + "')");
  return std::nullopt;
}

std::optional<double> parseBitsPerSecond(std::string_view text, std::string* why) {
  static const std::pair<std::string_view, double> kUnits[] = {{"b/s", 1},
                                                               {"kb/s", 1e3},
                                                               {"Kb/s", 1e3},
                                                               {"Mb/s", 1e6},
                                                               {"Gb/s", 1e9},
                                                               {"Tb/s", 1e12},
                                                               {"B/s", 8},
                                                               {"kB/s", 8e3},
                                                               {"KB/s", 8e3},
                                                               {"MB/s", 8e6},
                                                               {"GB/s", 8e9},
                                                               {"TB/s", 8e12},
                                                               {"bps", 1},
                                                               {"Gbps", 1e9},
                                                               {"Mbps", 1e6},
                                                               {"GiB/s", 8.0 * 0x1p30},
                                                               {"MiB/s", 8.0 * 0x1p20}};
  const std::string expected = "expected a bandwidth such as 100Gb/s, 12.5GB/s or 800Mb/s";
  auto s = splitNumber(text);
  if (!s || s->unit.empty()) {
    setWhy(why, expected);
    return std::nullopt;
  }
  for (const auto& [name, mult] : kUnits) {
    if (s->unit == name) return s->number * mult;
  }
  setWhy(why, expected + " (unknown unit '" + std::string(s->unit) + "')");
  return std::nullopt;
}

std::optional<std::uint64_t> parseDurationPs(std::string_view text, std::string* why) {
  static const std::pair<std::string_view, double> kUnits[] = {{"ps", 1},   {"ns", 1e3}, {"us", 1e6},
                                                               {"µs", 1e6}, {"ms", 1e9}, {"s", 1e12}};
  const std::string expected = "expected a duration such as 150ns, 1.5us or 2ms";
  auto s = splitNumber(text);
  if (!s || s->unit.empty()) {
    setWhy(why, expected);
    return std::nullopt;
  }
  for (const auto& [name, mult] : kUnits) {
    if (s->unit != name) continue;
    double v = s->number * mult;
    if (v >= 0x1p63) {
      setWhy(why, "duration too long");
      return std::nullopt;
    }
    if (std::fabs(v - std::round(v)) > 1e-6) {
      setWhy(why, "duration finer than the 1ps resolution");
      return std::nullopt;
    }
    return static_cast<std::uint64_t>(std::llround(v));
  }
  setWhy(why, expected + " (unknown unit '" + std::string(s->unit) + "')");
  return std::nullopt;
}

std::string formatBytes(std::uint64_t bytes) {
  static const char* kNames[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  int u = 0;
  while (bytes != 0 && bytes % 1024 == 0 && u < 6) {
    bytes /= 1024;
    ++u;
  }
  return std::to_string(bytes) + kNames[u];
}

std::string formatBitsPerSecond(double bps) {
  static const std::pair<double, const char*> kUnits[] = {
      {1e12, "Tb/s"}, {1e9, "Gb/s"}, {1e6, "Mb/s"}, {1e3, "kb/s"}, {1, "b/s"}};
  for (const auto& [mult, name] : kUnits) {
    if (bps >= mult || mult == 1) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%.6g%s", bps / mult, name);
      return buf;
    }
  }
  return "0b/s";
}

std::string formatDurationPs(std::uint64_t ps) {
  static const std::pair<std::uint64_t, const char*> kUnits[] = {
      {1000000000000ull, "s"}, {1000000000ull, "ms"}, {1000000ull, "us"}, {1000ull, "ns"}, {1, "ps"}};
  for (const auto& [mult, name] : kUnits) {
    if (ps >= mult || mult == 1) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%.6g%s", double(ps) / double(mult), name);
      return buf;
    }
  }
  return "0ps";
}

}  // namespace hmmsim
