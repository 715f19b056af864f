// Contention, fidelity agreement, ECRC, RCB and tag limits in the simulated fabric.
#include <catch2/catch.hpp>

#include <memory>
#include <string>

#include "tests/unit/pcie/fabric_test_util.h"

using namespace hmmsim;
using namespace hmmsim::test;

namespace {

PcieLinkConfig gen3x8() {
  PcieLinkConfig c;
  c.gen = PcieGen::Gen3;
  c.lanes = 8;
  return c;  // MPS 256, MRRS 512, RCB 64, 64-bit, no ECRC
}

PcieDmaEngineParams dmaParams(std::uint8_t bus, const PcieLinkConfig& c,
                              PcieFidelity f = PcieFidelity::PerTlp) {
  PcieDmaEngineParams d;
  d.requester = bdf(bus);
  d.link = c;
  d.fidelity = f;
  return d;
}

PcieLinkParams linkParams(const PcieLinkConfig& c) {
  PcieLinkParams l;
  l.config = c;
  return l;
}

void setQuantum(unsigned ns) {
  tlm_utils::tlm_quantumkeeper::set_global_quantum(sc_core::sc_time(ns, sc_core::SC_NS));
}

}  // namespace

TEST_CASE("per-TLP and per-burst fidelity agree within 1 % on an uncontended stream through a switch") {
  setQuantum(10'000);
  PcieFabric fab("fab");
  const auto c = gen3x8();
  PcieFabric::NodeId ep[4];
  const StreamOp ops[2] = {StreamOp::Write, StreamOp::Read};
  for (int i = 0; i < 4; ++i) {
    PcieRootComplexParams rc;
    rc.index = static_cast<std::uint32_t>(i);
    const auto r = fab.addRootComplex("rc" + std::to_string(i), rc, hostMemory());
    const auto sw = fab.addSwitch("sw" + std::to_string(i), r, linkParams(c), PcieSwitchParams{});
    ep[i] = fab.addEndpoint("ep" + std::to_string(i), sw, linkParams(c),
                            dmaParams(static_cast<std::uint8_t>(i + 1), c,
                                      i < 2 ? PcieFidelity::PerTlp : PcieFidelity::PerBurst));
  }
  fab.finalize();
  std::unique_ptr<StreamDriver> d[4];
  for (int i = 0; i < 4; ++i) {
    d[i] = std::make_unique<StreamDriver>(("d" + std::to_string(i)).c_str(), fab.engine(ep[i]), ops[i % 2],
                                          0x100000, 64 * 1024, 64 * 1024, 40);
  }
  sc_core::sc_start();
  const double tlpW = d[0]->writeGbps(), tlpR = d[1]->readGbps();
  const double burstW = d[2]->writeGbps(), burstR = d[3]->readGbps();
  INFO("write per-TLP " << tlpW << " per-burst " << burstW << "; read per-TLP " << tlpR << " per-burst "
                        << burstR);
  CHECK(relErr(burstW, tlpW) < 0.01);
  CHECK(relErr(burstR, tlpR) < 0.01);
  // And both are the link's model rate for 64 KiB transfers.
  CHECK(relErr(tlpW, writeEffectiveGbps(c, 64 * 1024)) < 0.005);
  CHECK(relErr(tlpR, readEffectiveGbps(c, 64 * 1024)) < 0.005);
}

TEST_CASE("per-TLP and per-burst give the same completion time for a single burst") {
  setQuantum(1'000);
  PcieFabric fab("fab");
  const auto c = gen3x8();
  PcieFabric::NodeId ep[2];
  for (int i = 0; i < 2; ++i) {
    PcieRootComplexParams rc;
    rc.index = static_cast<std::uint32_t>(i);
    const auto r = fab.addRootComplex("rc" + std::to_string(i), rc, hostMemory());
    const auto sw = fab.addSwitch("sw" + std::to_string(i), r, linkParams(c), PcieSwitchParams{});
    ep[i] = fab.addEndpoint("ep" + std::to_string(i), sw, linkParams(c),
                            dmaParams(static_cast<std::uint8_t>(i + 1), c,
                                      i == 0 ? PcieFidelity::PerTlp : PcieFidelity::PerBurst));
  }
  fab.finalize();
  StreamDriver a("a", fab.engine(ep[0]), StreamOp::WriteThenRead, 0x100000, 16 * 1024, 0, 1);
  StreamDriver b("b", fab.engine(ep[1]), StreamOp::WriteThenRead, 0x100000, 16 * 1024, 0, 1);
  sc_core::sc_start();
  INFO("write done " << a.writeDone[0] << " vs " << b.writeDone[0] << "; read done " << a.readDone[0]
                     << " vs " << b.readDone[0]);
  CHECK(relErr(double(b.writeDone[0]), double(a.writeDone[0])) < 0.01);
  CHECK(relErr(double(b.readDone[0]), double(a.readDone[0])) < 0.01);
}

TEST_CASE("two write flows sharing a link direction each get about half of it") {
  setQuantum(1'000);
  PcieFabric fab("fab");
  const auto c = gen3x8();
  auto fast = c;
  fast.lanes = 16;  // endpoint links faster than the shared switch uplink
  const auto r = fab.addRootComplex("rc", PcieRootComplexParams{}, hostMemory());
  const auto sw = fab.addSwitch("sw", r, linkParams(c), PcieSwitchParams{});
  const auto e1 = fab.addEndpoint("ep1", sw, linkParams(fast), dmaParams(1, fast));
  const auto e2 = fab.addEndpoint("ep2", sw, linkParams(fast), dmaParams(2, fast));
  fab.finalize();
  StreamDriver d1("d1", fab.engine(e1), StreamOp::Write, 0x100000, 1024, 1024, 2000);
  StreamDriver d2("d2", fab.engine(e2), StreamOp::Write, 0x900000, 1024, 1024, 2000);
  sc_core::sc_start();
  const double full = writeEffectiveGbps(c, 1024);
  INFO("flow 1 " << d1.writeGbps() << ", flow 2 " << d2.writeGbps() << ", link alone " << full);
  CHECK(relErr(d1.writeGbps(), full / 2) < 0.05);
  CHECK(relErr(d2.writeGbps(), full / 2) < 0.05);
  // The shared direction stays saturated.
  const double both = 2.0 * 2000 * 1024 * 8 * 1000.0 /
                      double(std::max(d1.writeDone.back(), d2.writeDone.back()) -
                             std::min(d1.writeDone.front(), d2.writeDone.front()));
  CHECK(relErr(both, full) < 0.02);
}

TEST_CASE("reads and writes at once share both link directions as the model's read_write says") {
  setQuantum(1'000);
  PcieFabric fab("fab");
  const auto c = gen3x8();
  const auto r = fab.addRootComplex("rc", PcieRootComplexParams{}, hostMemory());
  const auto e = fab.addEndpoint("ep", r, linkParams(c), dmaParams(1, c));
  fab.finalize();
  StreamDriver d("d", fab.engine(e), StreamOp::WriteThenRead, 0x100000, 512, 4096, 1000);
  sc_core::sc_start();
  const double expected = readWriteEffectiveGbps(c, 512);  // request direction bound: 584 B/pair
  INFO("writes " << d.writeGbps() << ", reads " << d.readGbps() << ", model " << expected);
  CHECK(relErr(d.writeGbps(), expected) < 0.01);
  CHECK(relErr(d.readGbps(), expected) < 0.01);
  auto& link = fab.uplink(e);
  CHECK(link.stats().counterValue("up_wire_bytes") == 1000u * (2 * 24 + 512 + 24));
  CHECK(link.stats().counterValue("down_wire_bytes") == 1000u * (2 * 20 + 512));
}

TEST_CASE("ECRC adds 4 B to every TLP on the wire and lowers the write rate accordingly") {
  setQuantum(10'000);
  PcieFabric fab("fab");
  auto c = gen3x8();
  c.ecrc = true;
  const auto r = fab.addRootComplex("rc", PcieRootComplexParams{}, hostMemory());
  const auto e = fab.addEndpoint("ep", r, linkParams(c), dmaParams(1, c));
  fab.finalize();
  StreamDriver d("d", fab.engine(e), StreamOp::Write, 0x100000, 256, 4096, 200);
  sc_core::sc_start();
  CHECK(fab.uplink(e).stats().counterValue("up_wire_bytes") == 200u * (28 + 256));
  CHECK(relErr(d.writeGbps(), tlpBandwidthGbps(c) * 256 / 284) < 0.005);
}

TEST_CASE("an RCB-chunking completer returns one CplD per RCB block") {
  setQuantum(10'000);
  PcieFabric fab("fab");
  auto c = gen3x8();
  c.rcbChunks = true;  // RCB 64
  const auto r = fab.addRootComplex("rc", PcieRootComplexParams{}, hostMemory());
  const auto e = fab.addEndpoint("ep", r, linkParams(c), dmaParams(1, c));
  fab.finalize();
  StreamDriver d("d", fab.engine(e), StreamOp::Read, 0x100000, 512, 4096, 200);
  sc_core::sc_start();
  CHECK(fab.uplink(e).stats().counterValue("down_tlps") == 200u * 8);
  CHECK(fab.uplink(e).stats().counterValue("down_wire_bytes") == 200u * (8 * 20 + 512));
  CHECK(relErr(d.readGbps(), readEffectiveGbps(c, 512)) < 0.005);
}

TEST_CASE("the tag limit caps read throughput at tags x request size / round trip") {
  setQuantum(1'000);
  PcieFabric fab("fab");
  const auto c = gen3x8();
  const auto r = fab.addRootComplex("rc", PcieRootComplexParams{}, hostMemory(2'000'000));  // 2 us DRAM
  auto p = dmaParams(1, c);
  p.readTags = 4;
  const auto e = fab.addEndpoint("ep", r, linkParams(c), p);
  fab.finalize();
  // First one lone read to measure the round trip, then (from 100 us on) a stream.
  StreamDriver probe("probe", fab.engine(e), StreamOp::Read, 0x100000, 512, 0, 1);
  StreamDriver d("d", fab.engine(e), StreamOp::Read, 0x200000, 512, 512, 400, 100'000'000);
  sc_core::sc_start();
  const std::uint64_t rtt = probe.readDone[0] - probe.firstIssuePs;
  const double capped = 4.0 * 512 * 8 * 1000.0 / double(rtt);
  INFO("rtt " << rtt << " ps, simulated " << d.readGbps() << " Gb/s, tags x size / rtt " << capped);
  CHECK(capped < 0.5 * readEffectiveGbps(c, 512));  // the limit is the tags, not the link
  CHECK(relErr(d.readGbps(), capped) < 0.01);
}

TEST_CASE("per-burst: the tag limit also caps a long read burst") {
  setQuantum(1'000);
  PcieFabric fab("fab");
  const auto c = gen3x8();
  PcieFabric::NodeId ep[2];
  for (int i = 0; i < 2; ++i) {
    PcieRootComplexParams rc;
    rc.index = static_cast<std::uint32_t>(i);
    const auto r = fab.addRootComplex("rc" + std::to_string(i), rc, hostMemory(2'000'000));
    auto p = dmaParams(static_cast<std::uint8_t>(i + 1), c,
                       i == 0 ? PcieFidelity::PerTlp : PcieFidelity::PerBurst);
    p.readTags = 4;
    ep[i] = fab.addEndpoint("ep" + std::to_string(i), r, linkParams(c), p);
  }
  fab.finalize();
  StreamDriver a("a", fab.engine(ep[0]), StreamOp::Read, 0x100000, 64 * 1024, 64 * 1024, 1);
  StreamDriver b("b", fab.engine(ep[1]), StreamOp::Read, 0x100000, 64 * 1024, 64 * 1024, 1);
  sc_core::sc_start();
  const double tlp = double(a.readDone[0] - a.firstIssuePs);
  const double burst = double(b.readDone[0] - b.firstIssuePs);
  INFO("per-TLP " << tlp << " ps, per-burst " << burst << " ps");
  CHECK(relErr(burst, tlp) < 0.05);
}
