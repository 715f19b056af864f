// Link timing against the pcie-model reference (docs/reference/pcie-model.md).
#include <catch2/catch.hpp>

#include <cmath>
#include <fstream>
#include <sstream>
#include <string>

#include "models/pcie/link_timing.h"

using namespace hmmsim;

namespace {

PcieLinkConfig gen3x8() {
  PcieLinkConfig c;
  c.gen = PcieGen::Gen3;
  c.lanes = 8;
  c.mpsBytes = 256;
  c.mrrsBytes = 512;
  c.rcbBytes = 64;
  c.addr64 = true;
  c.ecrc = false;
  return c;
}

// The reference table rounds to 3 decimals.
constexpr double kTableTol = 0.0006;

}  // namespace

TEST_CASE("Gen3 x8 raw bandwidth is 63.015 Gb/s") {
  CHECK(rawBandwidthGbps(PcieGen::Gen3, 8) == Approx(63.015).margin(kTableTol));
}

TEST_CASE("Gen3 x8 MPS 256 TLP-layer bandwidth is 57.885 Gb/s") {
  CHECK(tlpBandwidthGbps(gen3x8()) == Approx(57.885).margin(kTableTol));
}

TEST_CASE("write stream effective bandwidth reproduces the reference table") {
  const auto c = gen3x8();
  CHECK(writeEffectiveGbps(c, 64) == Approx(42.098).margin(kTableTol));
  CHECK(writeEffectiveGbps(c, 128) == Approx(48.745).margin(kTableTol));
  CHECK(writeEffectiveGbps(c, 256) == Approx(52.923).margin(kTableTol));
  CHECK(writeEffectiveGbps(c, 512) == Approx(52.923).margin(kTableTol));
  CHECK(writeEffectiveGbps(c, 1500) == Approx(52.815).margin(kTableTol));
}

TEST_CASE("read stream effective bandwidth reproduces the reference table") {
  const auto c = gen3x8();
  CHECK(readEffectiveGbps(c, 64) == Approx(44.103).margin(kTableTol));
  CHECK(readEffectiveGbps(c, 128) == Approx(50.063).margin(kTableTol));
  CHECK(readEffectiveGbps(c, 256) == Approx(53.690).margin(kTableTol));
  CHECK(readEffectiveGbps(c, 512) == Approx(53.690).margin(kTableTol));
  CHECK(readEffectiveGbps(c, 1500) == Approx(53.597).margin(kTableTol));
}

TEST_CASE("compiled-in DLLP interval table equals the reference CSV row for row") {
  std::ifstream in(HMMSIM_PCIE_DLLP_CSV);
  REQUIRE(in.good());
  std::string line;
  std::getline(in, line);  // header
  int rows = 0;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    std::stringstream ss(line);
    std::string gen, lanes, mps, ack, fc;
    std::getline(ss, gen, ',');
    std::getline(ss, lanes, ',');
    std::getline(ss, mps, ',');
    std::getline(ss, ack, ',');
    std::getline(ss, fc, ',');
    const auto g = static_cast<PcieGen>(std::stoi(gen.substr(3)));
    const auto iv = dllpIntervals(g, std::stoul(lanes.substr(1)), std::stoul(mps));
    INFO(line);
    REQUIRE(iv.has_value());
    CHECK(iv->ackBytes == std::stoul(ack));
    CHECK(iv->fcUpdateBytes == std::stoul(fc));
    ++rows;
  }
  CHECK(rows == 5 * 6 * 6);
}

TEST_CASE("Gen6 uses the Gen5 DLLP intervals and the 242/256 encoding") {
  for (std::uint32_t lanes : {1u, 2u, 4u, 8u, 16u, 32u}) {
    for (std::uint32_t mps : {128u, 256u, 512u, 1024u, 2048u, 4096u}) {
      const auto g6 = dllpIntervals(PcieGen::Gen6, lanes, mps);
      const auto g5 = dllpIntervals(PcieGen::Gen5, lanes, mps);
      REQUIRE(g6.has_value());
      CHECK(g6->ackBytes == g5->ackBytes);
      CHECK(g6->fcUpdateBytes == g5->fcUpdateBytes);
    }
  }
  CHECK(rawBandwidthGbps(PcieGen::Gen6, 16) == Approx(64.0 * 242.0 / 256.0 * 16));
}

TEST_CASE("TLP bandwidth over gen x width x MPS follows Raw x (1 - 8/ack - 8/fc - 4/1538)") {
  const double gts[] = {0, 2.5, 5, 8, 16, 32, 64};
  const double enc[] = {0, 0.8, 0.8, 128.0 / 130, 128.0 / 130, 128.0 / 130, 242.0 / 256};
  for (int g = 1; g <= 6; ++g) {
    for (std::uint32_t lanes : {1u, 2u, 4u, 8u, 16u, 32u}) {
      for (std::uint32_t mps : {128u, 256u, 512u, 1024u, 2048u, 4096u}) {
        PcieLinkConfig c;
        c.gen = static_cast<PcieGen>(g);
        c.lanes = lanes;
        c.mpsBytes = mps;
        const auto iv = dllpIntervals(c.gen, lanes, mps);
        REQUIRE(iv.has_value());
        const double raw = gts[g] * enc[g] * lanes;
        const double expected = raw * (1 - 8.0 / iv->ackBytes - 8.0 / iv->fcUpdateBytes - 4.0 / 1538);
        INFO("gen" << g << " x" << lanes << " mps " << mps);
        CHECK(tlpBandwidthGbps(c) == Approx(expected).epsilon(1e-12));
      }
    }
  }
}

TEST_CASE("TLP wire bytes: 24 B MWr/MRd header with 64-bit addresses, 20 B with 32-bit, CplD 20 B") {
  auto c = gen3x8();
  CHECK(mwrWireBytes(c, 256) == 24 + 256);
  CHECK(mrdWireBytes(c) == 24);
  CHECK(cplDWireBytes(c, 64) == 20 + 64);
  CHECK(cplWireBytes(c) == 20);
  c.addr64 = false;
  CHECK(mwrWireBytes(c, 256) == 20 + 256);
  CHECK(mrdWireBytes(c) == 20);
  CHECK(cplDWireBytes(c, 64) == 20 + 64);
}

TEST_CASE("ECRC adds 4 B to every TLP") {
  auto c = gen3x8();
  c.ecrc = true;
  CHECK(mwrWireBytes(c, 256) == 28 + 256);
  CHECK(mrdWireBytes(c) == 28);
  CHECK(cplDWireBytes(c, 64) == 24 + 64);
  CHECK(cplWireBytes(c) == 24);
  CHECK(writeEffectiveGbps(c, 256) == Approx(tlpBandwidthGbps(c) * 256 / 284));
}

TEST_CASE("RCB-chunked completions cost one completion header per RCB block") {
  auto c = gen3x8();
  c.rcbChunks = true;  // RCB 64
  CHECK(modelCompletionCount(c, 512) == 8);
  CHECK(readEffectiveGbps(c, 512) == Approx(tlpBandwidthGbps(c) * 512 / (512 + 8 * 20)));
}

TEST_CASE("a read stream whose requests outweigh its completions is limited by the request direction") {
  auto c = gen3x8();
  // 1 B reads: MRd 24 B out, CplD 21 B back: the request direction sets the rate.
  CHECK(readEffectiveGbps(c, 1) == Approx(tlpBandwidthGbps(c) * 1 / 24));
}

TEST_CASE("reads and writes at once share the request direction") {
  const auto c = gen3x8();
  // 512 B: out = MWr (2 x 24 + 512) + MRd 24 = 584 B, back = 2 x 20 + 512 = 552 B.
  CHECK(readWriteEffectiveGbps(c, 512) == Approx(tlpBandwidthGbps(c) * 512 / 584));
}

TEST_CASE("validateLinkConfig rejects widths, MPS, MRRS and RCB the spec does not allow") {
  auto c = gen3x8();
  CHECK(validateLinkConfig(c) == Errno::Ok);
  auto bad = c;
  bad.lanes = 12;
  CHECK(validateLinkConfig(bad) == Errno::Inval);
  bad = c;
  bad.mpsBytes = 192;
  CHECK(validateLinkConfig(bad) == Errno::Inval);
  bad = c;
  bad.mrrsBytes = 8192;
  CHECK(validateLinkConfig(bad) == Errno::Inval);
  bad = c;
  bad.rcbBytes = 32;
  CHECK(validateLinkConfig(bad) == Errno::Inval);
}
