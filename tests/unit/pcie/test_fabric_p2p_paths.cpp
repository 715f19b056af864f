// p2p paths through the SystemC fabric built from a topology: switch-local, through the root
// complex, and ACS-redirected (up to the root complex and back down the same link), at per-TLP
// and per-burst fidelity and at global quanta from 0 to 10 us.
#include <catch2/catch.hpp>

#include <algorithm>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "models/pcie/fabric_from_topology.h"
#include "tests/unit/pcie/fabric_test_util.h"
#include "tests/unit/pcie/topology_fixtures.h"

using namespace hmmsim;
using namespace hmmsim::test;

namespace {

constexpr std::uint64_t kBurst = 64 * 1024;

// hb0: rp0 -> sw0 (dp0 -> gpu0, dp1 -> gpu1, dp2 -> gpu3), rp1 -> gpu2; every link gen4 x16.
TopologyDesc smallPlatform(bool acsRedirect) {
  TopologyDesc d = test::smallPlatform({"gpu0", "gpu1", "gpu3"});
  if (acsRedirect) {
    for (const char* p : {"sw0.dp0", "sw0.dp1", "sw0.dp2"})
      setPortAcs(d, p, kPciAcsRr | kPciAcsCr | kPciAcsUf | kPciAcsSv);
    setPortAcs(d, "rp0", kPciAcsRr | kPciAcsCr | kPciAcsUf | kPciAcsSv);  // UF: back down rp0
  }
  return d;
}

struct Platform {
  Platform(const std::string& name, bool acs, PcieFidelity f, double rcEfficiency = 1.0)
      : Platform(name, smallPlatform(acs), f, rcEfficiency) {}
  Platform(const std::string& name, const TopologyDesc& d, PcieFidelity f, double rcEfficiency)
      : topo(buildTopology(d)) {
    FabricFromTopologyParams p;
    p.hostMemory = hostMemory();
    p.dma.fidelity = f;
    p.rootComplex.p2pReadEfficiency = rcEfficiency;
    p.rootComplex.p2pWriteEfficiency = rcEfficiency;
    p.barMemory.bandwidthGbps = 4000;  // not the limit here
    p.barMemory.storeData = false;
    fab = std::make_unique<FabricFromTopology>(name, *topo, p);
  }
  std::uint64_t bar2(const std::string& n) const { return pciBusAddress(*topo->findDev(n), 2).value(); }
  PcieLinkConfig linkConfig() { return fab->uplink("gpu0").params().config; }
  std::unique_ptr<Topology> topo;
  std::unique_ptr<FabricFromTopology> fab;
};

void setQuantumPs(std::uint64_t ps) {
  tlm_utils::tlm_quantumkeeper::set_global_quantum(sc_core::sc_time::from_value(ps));
}

/// Read rate of a path on which requests and completions share both directions of one link
/// (an ACS-redirected read: both go up to the root complex and back down the switch's uplink).
double sharedLinkReadGbps(const PcieLinkConfig& c, std::uint64_t size) {
  const std::uint64_t req = (size + c.mrrsBytes - 1) / c.mrrsBytes * mrdWireBytes(c);
  const std::uint64_t cpl = modelCompletionCount(c, size) * cplDWireBytes(c, 0) + size;
  return tlpBandwidthGbps(c) * double(size) / double(req + cpl);
}

// A read stream gpu0 <- gpu1 BAR redirected through the root complex runs at its path's analytic
// rate. Before interval booking, each request queued behind completions booked in its future on
// the shared uplink: 0.765 GB/s per-TLP instead of link rate.
void acsReadStreamAtModelRate(std::uint64_t quantumPs) {
  setQuantumPs(quantumPs);
  Platform tlp("t", true, PcieFidelity::PerTlp), burst("b", true, PcieFidelity::PerBurst);
  StreamDriver dt("dt", tlp.fab->engine("gpu0"), StreamOp::Read, tlp.bar2("gpu1") + kMiB, kBurst, kBurst, 40);
  StreamDriver db("db", burst.fab->engine("gpu0"), StreamOp::Read, burst.bar2("gpu1") + kMiB, kBurst, kBurst,
                  40);
  sc_core::sc_start();
  REQUIRE(dt.worst == CplStatus::SuccessfulCompletion);
  REQUIRE(db.worst == CplStatus::SuccessfulCompletion);
  REQUIRE(tlp.fab->rootComplex("hb0").stats().counterValue("p2p_transactions") > 0);
  const double model = sharedLinkReadGbps(tlp.linkConfig(), kBurst);
  INFO("per-TLP " << dt.readGbps() << " Gb/s, per-burst " << db.readGbps() << " Gb/s, model " << model);
  CHECK(relErr(dt.readGbps(), model) < 0.01);
  CHECK(relErr(db.readGbps(), model) < 0.01);
}

/// Rate (Gb/s) of each of two flows over the middle 80 % of the time both were running.
std::pair<double, double> sharedRates(const StreamDriver& a, const std::vector<std::uint64_t>& doneA,
                                      std::uint64_t sizeA, const StreamDriver& b,
                                      const std::vector<std::uint64_t>& doneB, std::uint64_t sizeB) {
  (void)a;
  (void)b;
  const std::uint64_t t0 = std::max(doneA.front(), doneB.front()), t1 = std::min(doneA.back(), doneB.back());
  const std::uint64_t lo = t0 + (t1 - t0) / 10, hi = t1 - (t1 - t0) / 10;
  auto rate = [&](const std::vector<std::uint64_t>& done, std::uint64_t size) {
    const auto n =
        std::count_if(done.begin(), done.end(), [&](std::uint64_t t) { return t > lo && t <= hi; });
    return double(n) * double(size) * 8000.0 / double(hi - lo);
  };
  return {rate(doneA, sizeA), rate(doneB, sizeB)};
}

enum class SharedPath {
  SwitchLocal,   ///< gpu0 and gpu3 write into gpu1's BAR: they share gpu1's link
  RootComplex,   ///< gpu0 writes host memory while gpu1 reads it: they share the switch uplink
  AcsRedirected  ///< gpu0 writes gpu1's BAR, gpu3 writes gpu0's: both up and down the uplink
};

/// Two flows sharing one link direction get the analytic split at this quantum.
void sharedSplitAtQuantum(SharedPath path, std::uint64_t quantumPs, PcieFidelity f = PcieFidelity::PerTlp) {
  setQuantumPs(quantumPs);
  constexpr std::uint64_t kSize = 4096;
  constexpr std::uint32_t kCount = 1500;
  Platform p("p", path == SharedPath::AcsRedirected, f);
  const PcieLinkConfig c = p.linkConfig();
  std::unique_ptr<StreamDriver> a, b;
  double expectA = 0, expectB = 0;
  switch (path) {
    case SharedPath::SwitchLocal:
      a = std::make_unique<StreamDriver>("a", p.fab->engine("gpu0"), StreamOp::Write, p.bar2("gpu1"), kSize,
                                         kSize, kCount);
      b = std::make_unique<StreamDriver>("b", p.fab->engine("gpu3"), StreamOp::Write,
                                         p.bar2("gpu1") + 64 * kMiB, kSize, kSize, kCount);
      expectA = expectB = writeEffectiveGbps(c, kSize) / 2;
      break;
    case SharedPath::RootComplex: {
      a = std::make_unique<StreamDriver>("a", p.fab->engine("gpu0"), StreamOp::Write, 0x100000, kSize, kSize,
                                         kCount);
      b = std::make_unique<StreamDriver>("b", p.fab->engine("gpu1"), StreamOp::Read, 0x8000000, kSize, kSize,
                                         2 * kCount);
      // Reads keep the completion direction to themselves; their requests take their share of
      // the other direction, the writes get the rest.
      expectB = readEffectiveGbps(c, kSize);
      const double mrdShare = expectB * double(kSize / c.mrrsBytes * mrdWireBytes(c)) / double(kSize);
      const double wire = double(kSize / c.mpsBytes * mwrWireBytes(c, 0) + kSize);
      expectA = (tlpBandwidthGbps(c) - mrdShare) * double(kSize) / wire;
      break;
    }
    case SharedPath::AcsRedirected:
      a = std::make_unique<StreamDriver>("a", p.fab->engine("gpu0"), StreamOp::Write, p.bar2("gpu1"), kSize,
                                         kSize, kCount);
      b = std::make_unique<StreamDriver>("b", p.fab->engine("gpu3"), StreamOp::Write, p.bar2("gpu0"), kSize,
                                         kSize, kCount);
      expectA = expectB = writeEffectiveGbps(c, kSize) / 2;
      break;
  }
  sc_core::sc_start();
  REQUIRE(a->worst == CplStatus::SuccessfulCompletion);
  REQUIRE(b->worst == CplStatus::SuccessfulCompletion);
  const std::uint64_t p2p = p.fab->rootComplex("hb0").stats().counterValue("p2p_transactions");
  CHECK((path == SharedPath::AcsRedirected) == (p2p > 0));
  const auto& doneB = path == SharedPath::RootComplex ? b->readDone : b->writeDone;
  const auto [ra, rb] = sharedRates(*a, a->writeDone, kSize, *b, doneB, kSize);
  INFO("flow a " << ra << " Gb/s (expected " << expectA << "), flow b " << rb << " Gb/s (expected " << expectB
                 << ")");
  CHECK(relErr(ra, expectA) < 0.01);
  CHECK(relErr(rb, expectB) < 0.01);
}

}  // namespace

TEST_CASE("two flows sharing a switch-local link split it evenly at quantum 0") {
  sharedSplitAtQuantum(SharedPath::SwitchLocal, 0);
}
TEST_CASE("two flows sharing a switch-local link split it evenly at quantum 100 ns") {
  sharedSplitAtQuantum(SharedPath::SwitchLocal, 100'000);
}
TEST_CASE("two flows sharing a switch-local link split it evenly at quantum 1 us") {
  sharedSplitAtQuantum(SharedPath::SwitchLocal, 1'000'000);
}
TEST_CASE("two flows sharing a switch-local link split it evenly at quantum 10 us") {
  sharedSplitAtQuantum(SharedPath::SwitchLocal, 10'000'000);
}
TEST_CASE("a write and a read stream to host memory share the uplink as modelled at quantum 0") {
  sharedSplitAtQuantum(SharedPath::RootComplex, 0);
}
TEST_CASE("a write and a read stream to host memory share the uplink as modelled at quantum 100 ns") {
  sharedSplitAtQuantum(SharedPath::RootComplex, 100'000);
}
TEST_CASE("a write and a read stream to host memory share the uplink as modelled at quantum 1 us") {
  sharedSplitAtQuantum(SharedPath::RootComplex, 1'000'000);
}
TEST_CASE("a write and a read stream to host memory share the uplink as modelled at quantum 10 us") {
  sharedSplitAtQuantum(SharedPath::RootComplex, 10'000'000);
}
TEST_CASE("two ACS-redirected write flows split the uplink evenly at quantum 0") {
  sharedSplitAtQuantum(SharedPath::AcsRedirected, 0);
}
TEST_CASE("two ACS-redirected write flows split the uplink evenly at quantum 100 ns") {
  sharedSplitAtQuantum(SharedPath::AcsRedirected, 100'000);
}
TEST_CASE("two ACS-redirected write flows split the uplink evenly at quantum 1 us") {
  sharedSplitAtQuantum(SharedPath::AcsRedirected, 1'000'000);
}
TEST_CASE("two ACS-redirected write flows split the uplink evenly at quantum 10 us") {
  sharedSplitAtQuantum(SharedPath::AcsRedirected, 10'000'000);
}

TEST_CASE("per-burst: two flows sharing a switch-local link split it evenly at quantum 10 us") {
  sharedSplitAtQuantum(SharedPath::SwitchLocal, 10'000'000, PcieFidelity::PerBurst);
}
TEST_CASE(
    "per-burst: a write and a read stream to host memory share the uplink as modelled at quantum 10 us") {
  sharedSplitAtQuantum(SharedPath::RootComplex, 10'000'000, PcieFidelity::PerBurst);
}
TEST_CASE("per-burst: two ACS-redirected write flows split the uplink evenly at quantum 10 us") {
  sharedSplitAtQuantum(SharedPath::AcsRedirected, 10'000'000, PcieFidelity::PerBurst);
}

TEST_CASE("an ACS-redirected read stream runs at its path's model rate at quantum 0") {
  acsReadStreamAtModelRate(0);
}
TEST_CASE("an ACS-redirected read stream runs at its path's model rate at quantum 1 us") {
  acsReadStreamAtModelRate(1'000'000);
}
TEST_CASE("an ACS-redirected read stream runs at its path's model rate at quantum 10 us") {
  acsReadStreamAtModelRate(10'000'000);
}

TEST_CASE("one ACS-redirected 4 KiB read takes the same time at per-TLP and per-burst fidelity") {
  setQuantumPs(1'000'000);
  Platform tlp("t", true, PcieFidelity::PerTlp), burst("b", true, PcieFidelity::PerBurst);
  StreamDriver dt("dt", tlp.fab->engine("gpu0"), StreamOp::Read, tlp.bar2("gpu1"), 4096, 0, 1);
  StreamDriver db("db", burst.fab->engine("gpu0"), StreamOp::Read, burst.bar2("gpu1"), 4096, 0, 1);
  sc_core::sc_start();
  INFO("per-TLP " << dt.readDone[0] << " ps, per-burst " << db.readDone[0] << " ps");
  CHECK(relErr(double(dt.readDone[0]), double(db.readDone[0])) < 0.01);
  CHECK(dt.readDone[0] < 2'000'000);  // was 5.94 us per-TLP when requests queued behind completions
}

// smallPlatform plus a second host bridge hb1: rp2 -> gpu4; `p2p`: hb1 forwards peer traffic.
TopologyDesc twoHostBridges(bool p2p) {
  TopologyDesc two = smallPlatform(false);
  HostBridgeDesc hb1 = hostBridge("hb1", 0x80, 0xa0000000ull, 0x5000000000ull);
  hb1.params.p2pSupported = p2p;
  hb1.rootPorts = {port("rp2", 1)};
  two.hostBridges.push_back(hb1);
  two.endpoints.push_back(gpu("gpu4"));
  two.links.push_back(link("rp2", "gpu4"));
  return two;
}

TEST_CASE(
    "p2p write latency: switch-local < through one root complex < ACS-redirected, across host bridges "
    "slower than through one root complex, UR where a root complex does not forward p2p") {
  setQuantumPs(1'000'000);
  constexpr double kDefault = PcieRootComplexParams::DEFAULT_P2P_EFFICIENCY;
  Platform plain("p", false, PcieFidelity::PerTlp, kDefault), acs("a", true, PcieFidelity::PerTlp, kDefault);
  Platform bridges("x", twoHostBridges(true), PcieFidelity::PerTlp, kDefault);
  Platform closed("c", twoHostBridges(false), PcieFidelity::PerTlp, kDefault);
  DmaIssue local, viaRc, redirected, cross, refused;
  // One 4 KiB write per path, each from its own engine at time 0 over links no other one uses.
  QkThread a0("a0", [&](tlm_utils::tlm_quantumkeeper& qk) {
    local = plain.fab->engine("gpu0").issueWrite(plain.bar2("gpu1"), 4096, nullptr, qk);
  });
  QkThread a1("a1", [&](tlm_utils::tlm_quantumkeeper& qk) {
    viaRc = plain.fab->engine("gpu3").issueWrite(plain.bar2("gpu2"), 4096, nullptr, qk);
  });
  QkThread a2("a2", [&](tlm_utils::tlm_quantumkeeper& qk) {
    redirected = acs.fab->engine("gpu0").issueWrite(acs.bar2("gpu1"), 4096, nullptr, qk);
  });
  QkThread a3("a3", [&](tlm_utils::tlm_quantumkeeper& qk) {
    cross = bridges.fab->engine("gpu3").issueWrite(bridges.bar2("gpu4"), 4096, nullptr, qk);
  });
  QkThread a4("a4", [&](tlm_utils::tlm_quantumkeeper& qk) {
    refused = closed.fab->engine("gpu3").issueWrite(closed.bar2("gpu4"), 4096, nullptr, qk);
  });
  sc_core::sc_start();
  REQUIRE(local.status == CplStatus::SuccessfulCompletion);
  REQUIRE(viaRc.status == CplStatus::SuccessfulCompletion);
  REQUIRE(redirected.status == CplStatus::SuccessfulCompletion);
  REQUIRE(cross.status == CplStatus::SuccessfulCompletion);
  INFO("switch-local " << local.donePs << " ps, via root complex " << viaRc.donePs << " ps, ACS-redirected "
                       << redirected.donePs << " ps, across host bridges " << cross.donePs << " ps");
  CHECK(local.donePs < viaRc.donePs);
  CHECK(viaRc.donePs < redirected.donePs);
  // gpu3 -> gpu4 crosses the same switch and links as gpu3 -> gpu2, plus the destination root
  // complex's latency and the interconnect's latency and serialization.
  const PcieHostInterconnectParams ic;
  const std::uint64_t extra = PcieRootComplexParams{}.latencyPs + ic.latencyPs;
  CHECK(cross.donePs >= viaRc.donePs + extra);
  CHECK(bridges.fab->hostInterconnect().stats().counterValue("transactions") == 4096 / 256);
  CHECK(bridges.fab->rootComplex("hb1").stats().counterValue("from_peer_transactions") == 4096 / 256);
  CHECK(refused.status == CplStatus::UnsupportedRequest);
}

TEST_CASE(
    "a p2p read across host bridges returns its data over the interconnect, slower than through one "
    "root complex") {
  setQuantumPs(1'000'000);
  constexpr double kDefault = PcieRootComplexParams::DEFAULT_P2P_EFFICIENCY;
  Platform bridges("x", twoHostBridges(true), PcieFidelity::PerTlp, kDefault);
  Platform plain("p", false, PcieFidelity::PerTlp, kDefault);
  DmaIssue viaRc, cross;
  QkThread a0("a0", [&](tlm_utils::tlm_quantumkeeper& qk) {
    viaRc = plain.fab->engine("gpu3").issueRead(plain.bar2("gpu2"), 4096, nullptr, qk);
  });
  QkThread a1("a1", [&](tlm_utils::tlm_quantumkeeper& qk) {
    cross = bridges.fab->engine("gpu3").issueRead(bridges.bar2("gpu4"), 4096, nullptr, qk);
  });
  sc_core::sc_start();
  REQUIRE(viaRc.status == CplStatus::SuccessfulCompletion);
  REQUIRE(cross.status == CplStatus::SuccessfulCompletion);
  INFO("via root complex " << viaRc.donePs << " ps, across host bridges " << cross.donePs << " ps");
  // Request and completions each cross the destination root complex and the interconnect.
  const std::uint64_t extra =
      2 * (PcieRootComplexParams{}.latencyPs + PcieHostInterconnectParams{}.latencyPs);
  CHECK(cross.donePs >= viaRc.donePs + extra);
  PcieHostInterconnectModule& ic = bridges.fab->hostInterconnect();
  CHECK(ic.direction(1, 0).wireBytes() > 4096);  // the completions came back
  CHECK(ic.direction(0, 1).wireBytes() == 4096 / 512 * mrdWireBytes(bridges.linkConfig()));
}

TEST_CASE("a p2p write stream across host bridges runs at the interconnect's rate") {
  setQuantumPs(1'000'000);
  Platform p("p", twoHostBridges(true), PcieFidelity::PerBurst,
             PcieRootComplexParams::DEFAULT_P2P_EFFICIENCY);
  StreamDriver d("d", p.fab->engine("gpu2"), StreamOp::Write, p.bar2("gpu4"), kBurst, kBurst, 40);
  sc_core::sc_start();
  REQUIRE(d.worst == CplStatus::SuccessfulCompletion);
  // Bottleneck: the interconnect (166.4 Gb/s of TLP wire bytes) below the source root complex's
  // p2p forwarding (0.747 x the Gen4 x16 link) and the link itself.
  const PcieLinkConfig c = p.linkConfig();
  const double wirePerData = double(mwrWireBytes(c, 0) * (kBurst / c.mpsBytes) + kBurst) / double(kBurst);
  const double model =
      std::min({PcieHostInterconnectParams{}.bandwidthGbps / wirePerData,
                writeEffectiveGbps(c, kBurst) * PcieRootComplexParams::DEFAULT_P2P_EFFICIENCY,
                writeEffectiveGbps(c, kBurst)});
  INFO("p2p write across host bridges " << d.writeGbps() << " Gb/s, model " << model);
  CHECK(relErr(d.writeGbps(), model) < 0.01);
  CHECK(d.writeGbps() < writeEffectiveGbps(c, kBurst) * PcieRootComplexParams::DEFAULT_P2P_EFFICIENCY);
}

TEST_CASE("a p2p write stream through the root complex runs at the calibrated root-complex efficiency") {
  setQuantumPs(1'000'000);
  Platform p("p", false, PcieFidelity::PerBurst, PcieRootComplexParams::DEFAULT_P2P_EFFICIENCY);
  StreamDriver d("d", p.fab->engine("gpu0"), StreamOp::Write, p.bar2("gpu2"), kBurst, kBurst, 40);
  sc_core::sc_start();
  REQUIRE(d.worst == CplStatus::SuccessfulCompletion);
  const double model = writeEffectiveGbps(p.linkConfig(), kBurst) * 7.1 / 9.5;
  INFO("root-complex p2p write " << d.writeGbps() << " Gb/s, model " << model);
  CHECK(relErr(d.writeGbps(), model) < 0.01);
}
