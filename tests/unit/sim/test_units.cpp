#include <catch2/catch.hpp>

#include "sim/units.h"

using namespace hmmsim;

TEST_CASE("byte sizes parse binary and SI units") {
  CHECK(parseBytes("4096") == 4096u);
  CHECK(parseBytes("64B") == 64u);
  CHECK(parseBytes("4KiB") == 4096u);
  CHECK(parseBytes("256MiB") == 256u * MiB);
  CHECK(parseBytes("64GiB") == 64u * GiB);
  CHECK(parseBytes("1.5KiB") == 1536u);
  CHECK(parseBytes("1kB") == 1000u);
  CHECK(parseBytes(" 2 MiB ") == 2 * MiB);
}

TEST_CASE("malformed byte sizes are rejected with what was expected") {
  std::string why;
  CHECK_FALSE(parseBytes("lots", &why));
  CHECK(why.find("expected a byte size") != std::string::npos);
  CHECK_FALSE(parseBytes("4Kb", &why));
  CHECK(why.find("unknown unit 'Kb'") != std::string::npos);
  CHECK_FALSE(parseBytes("0.3B", &why));
  CHECK(why.find("whole number") != std::string::npos);
  CHECK_FALSE(parseBytes("20EiB", &why));
}

TEST_CASE("bandwidths parse bits and bytes per second") {
  CHECK(*parseBitsPerSecond("100Gb/s") == Approx(100e9));
  CHECK(*parseBitsPerSecond("12.5GB/s") == Approx(100e9));
  CHECK(*parseBitsPerSecond("800Mb/s") == Approx(800e6));
  CHECK_FALSE(parseBitsPerSecond("100"));
  CHECK_FALSE(parseBitsPerSecond("100Gb"));
}

TEST_CASE("durations parse to picoseconds") {
  CHECK(parseDurationPs("150ns") == 150000u);
  CHECK(parseDurationPs("1.5us") == 1500000u);
  CHECK(parseDurationPs("2ms") == 2000000000u);
  CHECK(parseDurationPs("250ps") == 250u);
  std::string why;
  CHECK_FALSE(parseDurationPs("0.5ps", &why));
  CHECK(why.find("resolution") != std::string::npos);
  CHECK_FALSE(parseDurationPs("5", &why));
}

TEST_CASE("formatting gives the shortest exact binary size and readable times") {
  CHECK(formatBytes(256 * MiB) == "256MiB");
  CHECK(formatBytes(4096) == "4KiB");
  CHECK(formatBytes(1000) == "1000B");
  CHECK(formatDurationPs(150000) == "150ns");
  CHECK(formatDurationPs(1500000) == "1.5us");
  CHECK(formatBitsPerSecond(57.885e9) == "57.885Gb/s");
}
