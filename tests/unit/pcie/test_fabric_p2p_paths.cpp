// p2p paths through the SystemC fabric built from a topology: switch-local, through the root
// complex, and ACS-redirected (up to the root complex and back down the same link), at per-TLP
// and per-burst fidelity and at global quanta from 0 to 10 us.
#include <catch2/catch.hpp>

#include <memory>
#include <string>

#include "models/pcie/fabric_from_topology.h"
#include "tests/unit/pcie/fabric_test_util.h"
#include "tests/unit/pcie/topology_fixtures.h"

using namespace hmmsim;
using namespace hmmsim::test;

namespace {

constexpr std::uint64_t kBurst = 64 * 1024;

// hb0: rp0 -> sw0 (dp0 -> gpu0, dp1 -> gpu1), rp1 -> gpu2; every link gen4 x16.
TopologyDesc smallPlatform(bool acsRedirect) {
  TopologyDesc d;
  HostBridgeDesc hb = hostBridge("hb0", 0, 0xc0000000ull, 0x4000000000ull);
  hb.rootPorts = {port("rp0", 1), port("rp1", 2)};
  d.hostBridges = {hb};
  d.switches = {switchOf("sw0", 2)};
  d.endpoints = {gpu("gpu0"), gpu("gpu1"), gpu("gpu2")};
  d.links = {link("rp0", "sw0"), link("sw0.dp0", "gpu0"), link("sw0.dp1", "gpu1"), link("rp1", "gpu2")};
  if (acsRedirect) {
    for (const char* p : {"sw0.dp0", "sw0.dp1"}) setPortAcs(d, p, kPciAcsRr | kPciAcsCr | kPciAcsUf | kPciAcsSv);
    setPortAcs(d, "rp0", kPciAcsRr | kPciAcsCr | kPciAcsUf | kPciAcsSv);  // UF: back down rp0
  }
  return d;
}

struct Platform {
  Platform(const std::string& name, bool acs, PcieFidelity f, double rcEfficiency = 1.0) : topo(buildTopology(smallPlatform(acs))) {
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
  StreamDriver db("db", burst.fab->engine("gpu0"), StreamOp::Read, burst.bar2("gpu1") + kMiB, kBurst, kBurst, 40);
  sc_core::sc_start();
  REQUIRE(dt.worst == CplStatus::SuccessfulCompletion);
  REQUIRE(db.worst == CplStatus::SuccessfulCompletion);
  REQUIRE(tlp.fab->rootComplex("hb0").stats().counterValue("p2p_transactions") > 0);
  const double model = sharedLinkReadGbps(tlp.linkConfig(), kBurst);
  INFO("per-TLP " << dt.readGbps() << " Gb/s, per-burst " << db.readGbps() << " Gb/s, model " << model);
  CHECK(relErr(dt.readGbps(), model) < 0.01);
  CHECK(relErr(db.readGbps(), model) < 0.01);
}

}  // namespace

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
