#pragma once
// Values with units, as scenario files and parameters write them.
//
//   sizes:      "4096", "4KiB", "256MiB", "2GiB", "1.5KiB", "64B", "1kB" (SI: 1000), "16TiB"
//   bandwidth:  "100Gb/s", "12.5GB/s", "800Mb/s", "1Tb/s"  (bits or bytes per second, SI)
//   durations:  "150ns", "1.5us", "2ms", "1s", "250ps"
//
// Parsing never throws; it returns std::nullopt and, through `why`, what was expected, so the
// config layer can add the file, line and key.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace hmmsim {

/// Bytes. Returns nullopt on a malformed value, a non-integral byte count or overflow.
std::optional<std::uint64_t> parseBytes(std::string_view text, std::string* why = nullptr);
/// Bits per second.
std::optional<double> parseBitsPerSecond(std::string_view text, std::string* why = nullptr);
/// Picoseconds (the simulator's time resolution).
std::optional<std::uint64_t> parseDurationPs(std::string_view text, std::string* why = nullptr);

/// "256MiB", "4KiB", "1000B": the shortest exact binary form.
std::string formatBytes(std::uint64_t bytes);
/// "57.885Gb/s".
std::string formatBitsPerSecond(double bps);
/// "150ns", "1.5us".
std::string formatDurationPs(std::uint64_t ps);

constexpr std::uint64_t KiB = 1024;
constexpr std::uint64_t MiB = 1024 * KiB;
constexpr std::uint64_t GiB = 1024 * MiB;
constexpr std::uint64_t TiB = 1024 * GiB;

}  // namespace hmmsim
