// FabricFromTopology: the SystemC fabric elaborated from an enumerated Topology and routed by
// topology's Router.
#include <catch2/catch.hpp>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "models/pcie/fabric_from_topology.h"
#include "sim/config.h"
#include "tests/unit/pcie/fabric_test_util.h"
#include "tests/unit/pcie/topology_fixtures.h"

using namespace hmmsim;
using namespace hmmsim::test;

namespace {

// hb0: rp0 -> sw0 (dp0 -> gpu0, dp1 -> gpu1), rp1 -> gpu2; every link gen4 x16.
TopologyDesc smallPlatform() {
  return test::smallPlatform({"gpu0", "gpu1"});
}

FabricFromTopologyParams params() {
  FabricFromTopologyParams p;
  p.hostMemory = hostMemory();  // 4 GiB at 0, below the BAR windows
  return p;
}

struct Built {
  Built(const std::string& name, const TopologyDesc& d)
      : topo(buildTopology(d)), fab(name, *topo, params()) {}
  std::uint64_t bar2(const std::string& n) const { return pciBusAddress(*topo->findDev(n), 2).value(); }
  std::unique_ptr<Topology> topo;
  FabricFromTopology fab;
};

std::string rejection(const TopologyDesc& d) {
  auto topo = buildTopology(d);
  try {
    FabricFromTopology f("bad", *topo, FabricFromTopologyParams{});
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("a switch-local p2p write built from a topology lands in the peer's BAR at the link's write rate") {
  tlm_utils::tlm_quantumkeeper::set_global_quantum(sc_core::sc_time(10, sc_core::SC_NS));
  Built b("fab", smallPlatform());
  const std::uint64_t peer = b.bar2("gpu1");
  constexpr std::uint64_t kBurst = 64 * 1024;
  std::vector<std::uint8_t> data(4096, 0x5a);
  CplStatus first = CplStatus::CompleterAbort;
  std::vector<std::uint64_t> done;
  CplStatus worst = CplStatus::SuccessfulCompletion;
  QkThread drv("drv", [&](tlm_utils::tlm_quantumkeeper& qk) {
    first = b.fab.engine("gpu0").write(peer, data.size(), data.data(), qk);
    for (int i = 0; i < 40; ++i) {
      const DmaIssue r = b.fab.engine("gpu0").issueWrite(peer + 1 * kMiB + i * kBurst, kBurst, nullptr, qk);
      done.push_back(r.donePs);
      if (r.status != CplStatus::SuccessfulCompletion) worst = r.status;
    }
  });
  sc_core::sc_start();
  REQUIRE(first == CplStatus::SuccessfulCompletion);
  REQUIRE(worst == CplStatus::SuccessfulCompletion);
  std::vector<std::uint8_t> got(data.size());
  b.fab.barMemory("gpu1").peek(peer, got.data(), got.size());
  CHECK(got == data);
  CHECK(b.fab.barMemory("gpu1").stats().counterValue("bytes_written") == 4096 + 40 * kBurst);
  CHECK(b.fab.rootComplex("hb0").stats().counterValue("p2p_transactions") == 0);  // never left sw0
  PcieLinkConfig c = b.fab.uplink("gpu0").params().config;
  CHECK(c.gen == PcieGen::Gen4);
  CHECK(c.lanes == 16);
  const double gbps = StreamDriver::gbps(done, kBurst);
  INFO("p2p write " << gbps << " Gb/s, model " << writeEffectiveGbps(c, kBurst));
  CHECK(relErr(gbps, writeEffectiveGbps(c, kBurst)) < 0.005);
}

TEST_CASE("an ACS-redirected p2p write goes through the root complex and takes its latency longer") {
  tlm_utils::tlm_quantumkeeper::set_global_quantum(sc_core::sc_time(10, sc_core::SC_NS));
  TopologyDesc acs = smallPlatform();
  setPortAcs(acs, "sw0.dp0", kPciAcsRr | kPciAcsCr | kPciAcsUf | kPciAcsSv);
  setPortAcs(acs, "rp0", kPciAcsRr | kPciAcsCr | kPciAcsUf | kPciAcsSv);  // UF: back down rp0
  Built direct("fd", smallPlatform()), redirected("fr", acs);
  DmaIssue d, r;
  QkThread dd("dd", [&](tlm_utils::tlm_quantumkeeper& qk) {
    d = direct.fab.engine("gpu0").issueWrite(direct.bar2("gpu1"), 4096, nullptr, qk);
  });
  QkThread dr("dr", [&](tlm_utils::tlm_quantumkeeper& qk) {
    r = redirected.fab.engine("gpu0").issueWrite(redirected.bar2("gpu1"), 4096, nullptr, qk);
  });
  sc_core::sc_start();
  REQUIRE(d.status == CplStatus::SuccessfulCompletion);
  REQUIRE(r.status == CplStatus::SuccessfulCompletion);
  CHECK(direct.fab.rootComplex("hb0").stats().counterValue("p2p_transactions") == 0);
  CHECK(redirected.fab.rootComplex("hb0").stats().counterValue("p2p_transactions") > 0);
  CHECK(redirected.fab.barMemory("gpu1").stats().counterValue("bytes_written") == 4096);
  const std::uint64_t rcLatency = PcieRootComplexParams{}.latencyPs;
  INFO("direct " << d.donePs << " ps, redirected " << r.donePs << " ps");
  CHECK(r.donePs >= d.donePs + rcLatency);
}

TEST_CASE("a root complex without p2p support answers a peer read with Unsupported Request") {
  tlm_utils::tlm_quantumkeeper::set_global_quantum(sc_core::sc_time(10, sc_core::SC_NS));
  TopologyDesc desc = smallPlatform();
  desc.hostBridges[0].params.p2pSupported = false;
  Built b("fab", desc);
  DmaIssue toPeer, toHost;
  QkThread drv("drv", [&](tlm_utils::tlm_quantumkeeper& qk) {
    toPeer = b.fab.engine("gpu0").issueRead(b.bar2("gpu2"), 4096, nullptr, qk);  // rp0 -> rp1
    toHost = b.fab.engine("gpu0").issueRead(0x1000'0000, 4096, nullptr, qk);
  });
  sc_core::sc_start();
  CHECK(toPeer.status == CplStatus::UnsupportedRequest);
  CHECK(toHost.status == CplStatus::SuccessfulCompletion);
  CHECK(b.fab.barMemory("gpu2").stats().counterValue("bytes_read") == 0);
}

TEST_CASE("a link width the timing table lacks is rejected with a message naming the link") {
  TopologyDesc d = smallPlatform();
  d.links[3].width = 12;  // rp1 -> gpu2
  auto topo = buildTopology(d);
  const std::string name = topo->link(topo->findDev("gpu2")->upstreamLink()).name;
  const std::string msg = rejection(d);
  INFO(msg);
  CHECK(msg.find("link '" + name + "'") != std::string::npos);
  CHECK(msg.find("x12") != std::string::npos);
}

TEST_CASE("a multi-function endpoint sharing one link is rejected with a message naming it") {
  const std::string msg = rejection(platform());  // nic0.f0 and nic0.f1 share sw0.dp2's link
  INFO(msg);
  CHECK(msg.find("multi-function endpoint 'nic0.f0'") != std::string::npos);
  CHECK(msg.find("nic0.f1") != std::string::npos);
}

TEST_CASE("the built fabric times a p2p write exactly as a hand-mirrored PcieFabric does") {
  tlm_utils::tlm_quantumkeeper::set_global_quantum(sc_core::sc_time(10, sc_core::SC_NS));
  Built b("fb", smallPlatform());
  // The same platform mirrored by hand, in the topology's port order, routed by the same adapter.
  PcieFabric hand("fh");
  PcieLinkParams link;
  link.config.gen = PcieGen::Gen4;
  link.config.lanes = 16;
  auto dma = [&](const std::string& n) {
    PcieDmaEngineParams e;
    e.requester = b.topo->findDev(n)->bdf();
    e.link = link.config;
    return e;
  };
  auto bar = [&](const std::string& n) {
    PcieMemoryTargetParams m;
    m.baseAddr = b.bar2(n);
    m.sizeBytes = 256 * kMiB;
    return m;
  };
  const auto rc = hand.addRootComplex("hb0", PcieRootComplexParams{}, hostMemory());
  const auto sw0 = hand.addSwitch("sw0", rc, link, PcieSwitchParams{});
  const auto gpu0 = hand.addEndpoint("gpu0", sw0, link, dma("gpu0"), bar("gpu0"));
  hand.addEndpoint("gpu1", sw0, link, dma("gpu1"), bar("gpu1"));
  hand.addEndpoint("gpu2", rc, link, dma("gpu2"), bar("gpu2"));
  hand.finalize();
  hand.engine(gpu0).setRouter(&b.fab.routeAdapter());
  hand.rootComplex(rc).setRouter(&b.fab.routeAdapter());
  DmaIssue built[2], mirrored[2];
  QkThread db("db", [&](tlm_utils::tlm_quantumkeeper& qk) {
    built[0] = b.fab.engine("gpu0").issueWrite(b.bar2("gpu1"), 64 * 1024, nullptr, qk);
    built[1] = b.fab.engine("gpu0").issueWrite(b.bar2("gpu2"), 64 * 1024, nullptr, qk);
  });
  QkThread dh("dh", [&](tlm_utils::tlm_quantumkeeper& qk) {
    mirrored[0] = hand.engine(gpu0).issueWrite(b.bar2("gpu1"), 64 * 1024, nullptr, qk);
    mirrored[1] = hand.engine(gpu0).issueWrite(b.bar2("gpu2"), 64 * 1024, nullptr, qk);
  });
  sc_core::sc_start();
  for (int i = 0; i < 2; ++i) {
    CHECK(built[i].status == CplStatus::SuccessfulCompletion);
    CHECK(built[i].donePs == mirrored[i].donePs);
  }
  CHECK(b.fab.rootComplex("hb0").stats().counterValue("p2p_transactions") ==
        hand.rootComplex(rc).stats().counterValue("p2p_transactions"));
}

TEST_CASE("each host bridge gets its own root complex, indexed as the router numbers host bridges") {
  tlm_utils::tlm_quantumkeeper::set_global_quantum(sc_core::sc_time(10, sc_core::SC_NS));
  TopologyDesc d = smallPlatform();
  HostBridgeDesc hb1 = hostBridge("hb1", 0x80, 0xa0000000ull, 0x5000000000ull);
  hb1.rootPorts = {port("rp2", 1)};
  d.hostBridges.push_back(hb1);
  d.endpoints.push_back(gpu("gpu3"));
  d.links.push_back(link("rp2", "gpu3"));
  Built b("fab", d);
  CHECK(b.fab.rootComplex("hb0").params().index == 0);
  CHECK(b.fab.rootComplex("hb1").params().index == 1);
  DmaIssue toHost, toOtherRc;
  QkThread drv("drv", [&](tlm_utils::tlm_quantumkeeper& qk) {
    toHost = b.fab.engine("gpu3").issueWrite(0x2000'0000, 4096, nullptr, qk);
    toOtherRc = b.fab.engine("gpu3").issueRead(b.bar2("gpu0"), 4096, nullptr, qk);
  });
  sc_core::sc_start();
  CHECK(toHost.status == CplStatus::SuccessfulCompletion);
  CHECK(b.fab.hostMemory("hb1").stats().counterValue("bytes_written") == 4096);
  CHECK(b.fab.hostMemory("hb0").stats().counterValue("bytes_written") == 0);
  // p2p between the host bridges: over the host interconnect into hb0's hierarchy.
  CHECK(toOtherRc.status == CplStatus::SuccessfulCompletion);
  CHECK(b.fab.hostInterconnect().stats().counterValue("transactions") == 4096 / 512);
  CHECK(b.fab.rootComplex("hb0").stats().counterValue("from_peer_transactions") == 4096 / 512);
}

TEST_CASE("an empty slot before an occupied one is rejected with a message naming the slot") {
  TopologyDesc d = smallPlatform();
  d.switches[0] = switchOf("sw0", 3);
  d.links[2].up = "sw0.dp2";  // gpu1 moves to dp2, dp1 stays empty
  const std::string msg = rejection(d);
  INFO(msg);
  CHECK(msg.find("empty slot 'sw0.dp1'") != std::string::npos);
}

TEST_CASE("trailing empty slots are accepted") {
  TopologyDesc d = smallPlatform();
  d.switches[0] = switchOf("sw0", 4);  // dp2, dp3 empty
  CHECK(rejection(d).empty());
}
