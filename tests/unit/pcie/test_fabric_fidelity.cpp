// Per-burst fidelity against per-TLP on uncontended streams of every size (writes and reads,
// including bursts that use every read tag), 64-bit burst lengths and the timing-only mode.
#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <vector>

#include "tests/unit/pcie/fabric_test_util.h"

using namespace hmmsim;
using namespace hmmsim::test;

namespace {

PcieLinkConfig gen4x16() {
  PcieLinkConfig c;
  c.gen = PcieGen::Gen4;
  c.lanes = 16;
  return c;  // MPS 256, MRRS 512, RCB 64: 256 tags cover 128 KiB
}

/// One stream on its own fabric: endpoint -> (switches - 1) switches -> root complex -> memory.
struct Stream {
  Stream(const std::string& name, int links, PcieFidelity f, StreamOp op, std::uint64_t size,
         std::uint32_t count, std::uint32_t tags = 256)
      : fab(name) {
    PcieLinkParams l;
    l.config = gen4x16();
    PcieMemoryTargetParams mem = hostMemory();
    mem.sizeBytes = 1ull << 36;
    auto parent = fab.addRootComplex("rc", PcieRootComplexParams{}, mem);
    for (int i = 1; i < links; ++i)
      parent = fab.addSwitch("sw" + std::to_string(i), parent, l, PcieSwitchParams{});
    PcieDmaEngineParams d;
    d.requester = bdf(1);
    d.link = l.config;
    d.fidelity = f;
    d.timingOnly = true;
    d.readTags = tags;
    ep = fab.addEndpoint("ep", parent, l, d);
    fab.finalize();
    drv = std::make_unique<StreamDriver>((name + "_drv").c_str(), fab.engine(ep), op, 0x100000, size, size,
                                         count);
  }
  PcieFabric fab;
  PcieFabric::NodeId ep;
  std::unique_ptr<StreamDriver> drv;
};

void perBurstMatchesPerTlp(int links, std::uint32_t tags = 256) {
  tlm_utils::tlm_quantumkeeper::set_global_quantum(sc_core::sc_time(1, sc_core::SC_US));
  const std::vector<std::uint64_t> sizes = {64,         512,        4096,    64 * 1024,
                                            128 * 1024, 256 * 1024, 1 << 20, 4 << 20};
  struct Pair {
    std::unique_ptr<Stream> tlp, burst;
    std::uint64_t size;
    StreamOp op;
  };
  std::vector<Pair> pairs;
  for (std::uint64_t size : sizes) {
    const auto count = static_cast<std::uint32_t>(std::max<std::uint64_t>(8, (4ull << 20) / size));
    for (StreamOp op : {StreamOp::Write, StreamOp::Read}) {
      const std::string n = std::to_string(size) + (op == StreamOp::Write ? "w" : "r");
      pairs.push_back(
          {std::make_unique<Stream>("t" + n, links, PcieFidelity::PerTlp, op, size, count, tags),
           std::make_unique<Stream>("b" + n, links, PcieFidelity::PerBurst, op, size, count, tags), size,
           op});
    }
  }
  sc_core::sc_start();
  for (const Pair& p : pairs) {
    const bool w = p.op == StreamOp::Write;
    const double tlp = w ? p.tlp->drv->writeGbps() : p.tlp->drv->readGbps();
    const double burst = w ? p.burst->drv->writeGbps() : p.burst->drv->readGbps();
    INFO((w ? "write " : "read ") << p.size << " B over " << links << " links: per-TLP " << tlp
                                  << " Gb/s, per-burst " << burst << " Gb/s");
    CHECK(relErr(burst, tlp) < 0.01);
  }
}

}  // namespace

TEST_CASE("per-burst streams of every size agree with per-TLP within 1 % over one link") {
  perBurstMatchesPerTlp(1);
}

TEST_CASE("per-burst streams of every size agree with per-TLP within 1 % over three links") {
  perBurstMatchesPerTlp(3);
}

TEST_CASE("per-burst reads limited by 8 read tags agree with per-TLP within 1 % over three links") {
  perBurstMatchesPerTlp(3, 8);
}

TEST_CASE("a per-burst write of 5 GiB is one transaction of its full 64-bit length") {
  tlm_utils::tlm_quantumkeeper::set_global_quantum(sc_core::sc_time(1, sc_core::SC_US));
  constexpr std::uint64_t kLen = 5ull << 30;
  Stream s("s", 1, PcieFidelity::PerBurst, StreamOp::Write, kLen, 1);
  sc_core::sc_start();
  REQUIRE(s.drv->worst == CplStatus::SuccessfulCompletion);
  CHECK(s.fab.memory(0).stats().counterValue("bytes_written") == kLen);
  const double expectedPs = double(kLen) * 8000.0 / writeEffectiveGbps(gen4x16(), kLen);
  CHECK(relErr(double(s.drv->writeDone[0]), expectedPs) < 0.001);
}

TEST_CASE("a timing-only engine moves no payload and allocates no scratch buffer") {
  tlm_utils::tlm_quantumkeeper::set_global_quantum(sc_core::sc_time(1, sc_core::SC_US));
  Stream s("s", 1, PcieFidelity::PerBurst, StreamOp::WriteThenRead, 1 << 20, 4);
  sc_core::sc_start();
  REQUIRE(s.drv->worst == CplStatus::SuccessfulCompletion);
  CHECK(s.fab.engine(s.ep).scratchBytes() == 0);
  CHECK(s.fab.memory(0).stats().counterValue("bytes_written") == 4u << 20);
}
