// The adapter from topology's routing to the fabric's source routes, and a DMA routed by
// topology's Router through the SystemC modules.
#include <catch2/catch.hpp>

#include <memory>
#include <vector>

#include "models/pcie/route_adapter.h"
#include "tests/unit/pcie/fabric_test_util.h"
#include "tests/unit/pcie/topology_fixtures.h"

using namespace hmmsim;
using namespace hmmsim::test;

namespace {

struct Platform {
  explicit Platform(const TopologyDesc& d = platform())
      : topo(buildTopology(d)), router(*topo, "top.route"), adapter(*topo, router, "top.fabric_route") {}
  const PciDev& dev(const std::string& n) const { return *topo->findDev(n); }
  std::uint64_t bar2(const std::string& n) const { return pciBusAddress(dev(n), 2).value(); }
  PcieRouteResult write(const std::string& from, std::uint64_t addr) const {
    return adapter.routeRequest(dev(from).bdf(), addr, true, false);
  }
  std::unique_ptr<Topology> topo;
  Router router;
  TopologyPcieRouter adapter;
};

std::vector<int> egress(const PcieRouteResult& r) {
  std::vector<int> v;
  for (int i = 0; i < r.route->length; ++i) v.push_back(r.route->egress[i]);
  return v;
}

}  // namespace

TEST_CASE("a DMA to system memory maps to the switch's upstream port and the host-memory egress") {
  Platform p;
  const auto r = p.write("gpu0", 0x1000'0000);
  REQUIRE(r.route != nullptr);
  CHECK(egress(r) == std::vector<int>{0, kEgressHostMemory});
}

TEST_CASE("a peer write under one switch maps to the peer's downstream port only") {
  Platform p;
  const auto r = p.write("gpu0", p.bar2("gpu1"));
  REQUIRE(r.route != nullptr);
  CHECK(egress(r) == std::vector<int>{2});  // sw0.dp1 is switch port 2 (port 0 = upstream)
}

TEST_CASE("a route to a peer BAR holds for the whole BAR unless an IOMMU resolves it at the RC") {
  Platform p;
  const std::uint64_t base = p.bar2("gpu1"), size = pciResourceLen(p.dev("gpu1"), 2);
  const auto r = p.write("gpu0", base + 0x12345);  // under one switch: no root complex
  REQUIRE(r.route != nullptr);
  CHECK(r.validBase == base);
  CHECK(r.validBytes == size);
  CHECK(p.write("gpu0", p.bar2("gpu2")).validBytes == pciResourceLen(p.dev("gpu2"), 2));  // RC, no IOMMU
  CHECK(p.write("gpu0", 0x1000'0000).validBytes == 0);  // system memory: no promise
  p.router.setRcAddressResolver([](const PciDev&, std::uint64_t a, const TlpRouteAttrs&) {
    return RcResolveResult{true, Pa(a)};
  });
  const auto viaIommu = p.write("gpu0", p.bar2("gpu2"));
  REQUIRE(viaIommu.route != nullptr);
  CHECK(viaIommu.validBytes == 0);                  // the IOMMU's mappings change: looked up per burst
  CHECK(p.write("gpu0", base).validBytes == size);  // the switch turns it before the RC
}

TEST_CASE("a peer write between root ports maps to the root port index at the root complex") {
  Platform p;
  const auto r = p.write("gpu0", p.bar2("gpu2"));
  REQUIRE(r.route != nullptr);
  CHECK(egress(r) == std::vector<int>{0, 1});  // up through sw0, out of root port rp1
}

TEST_CASE("ACS request redirect sends a peer write up to the root complex and back down") {
  TopologyDesc d = platform();
  setPortAcs(d, "sw0.dp0", kPciAcsRr | kPciAcsCr | kPciAcsUf | kPciAcsSv);
  setPortAcs(d, "rp0", kPciAcsRr | kPciAcsCr | kPciAcsUf | kPciAcsSv);  // UF: back down rp0
  Platform p(d);
  const auto r = p.write("gpu0", p.bar2("gpu1"));
  REQUIRE(r.route != nullptr);
  CHECK(egress(r) == std::vector<int>{0, 0, 2});  // sw0 up, RC out of rp0, sw0 out of dp1
}

TEST_CASE("an ACS egress-control violation completes with Completer Abort") {
  TopologyDesc d = platform();
  setPortAcs(d, "sw0.dp0", kPciAcsEc, 0xff);
  Platform p(d);
  const auto r = p.write("gpu0", p.bar2("gpu1"));
  CHECK(r.route == nullptr);
  CHECK(r.status == CplStatus::CompleterAbort);
  CHECK(p.adapter.stats().counterValue("failed_routes") == 1);
}

TEST_CASE("a route between two root complexes leaves by the host interconnect to the other's root port") {
  Platform p;
  const auto r = p.write("gpu0", p.bar2("gpu3"));
  REQUIRE(r.route != nullptr);
  // sw0 up, hb0 to the interconnect (from root complex 0 to 1), hb1 out of rp2.
  CHECK(egress(r) == std::vector<int>{0, kEgressPeerRootComplex, 0, 1, 0});
  CHECK(r.route->peerAddrOffset == 0);  // both host bridges map bus = CPU physical
  CHECK(p.adapter.stats().counterValue("cross_root_complex") == 1);
}

TEST_CASE("a route into a root complex that does not forward p2p is reported as Unsupported Request") {
  TopologyDesc d = platform();
  d.hostBridges[1].params.p2pSupported = false;
  Platform p(d);
  const auto r = p.write("gpu0", p.bar2("gpu3"));
  CHECK(r.route == nullptr);
  CHECK(r.status == CplStatus::UnsupportedRequest);
  CHECK(p.adapter.stats().counterValue("cross_root_complex") == 0);
}

TEST_CASE("equal routes are interned: two addresses in system memory share one stored route") {
  Platform p;
  const auto a = p.write("gpu0", 0x1000'0000);
  REQUIRE(a.route != nullptr);
  const std::vector<int> first = egress(a);
  // Many addresses with the same path store one route; the memory does not grow with them.
  for (std::uint64_t addr = 0x2000'0000; addr < 0x2000'0000 + (1000ull << 12); addr += 1ull << 12) {
    const auto b = p.write("gpu0", addr);
    REQUIRE(b.route != nullptr);
    CHECK(egress(b) == first);
  }
  CHECK(p.adapter.internedRoutes() == 1);
  // A different path adds one route, and the first result stays valid and unchanged.
  REQUIRE(p.write("gpu0", p.bar2("gpu1")).route != nullptr);
  CHECK(p.adapter.internedRoutes() == 2);
  CHECK(egress(a) == first);
}

TEST_CASE("a kept route to system memory still follows the IOMMU's current mapping of each address") {
  Platform p;
  // An IOMMU whose mapping of the IOVA block at 256 MiB can be changed: to DRAM, to gpu2's BAR
  // (a peer through the root complex), or unmapped (a fault).
  std::uint64_t target = 0x7000'0000;  // DRAM
  bool mapped = true;
  p.router.setRcAddressResolver([&](const PciDev&, std::uint64_t a, const TlpRouteAttrs&) {
    return RcResolveResult{mapped, Pa(target + (a & 0xfffff))};
  });
  const std::uint64_t iova = 0x1000'0000;
  const auto first = p.write("gpu0", iova);
  REQUIRE(first.route != nullptr);
  CHECK(egress(first) == std::vector<int>{0, kEgressHostMemory});
  for (std::uint64_t off = 4096; off < (1u << 20); off += 4096) {  // the rest of the block: kept
    const auto again = p.write("gpu0", iova + off);
    REQUIRE(again.route == first.route);
  }
  target = p.bar2("gpu2");  // remapped to a peer BAR: the peer route, not the kept one
  const auto peer = p.write("gpu0", iova + 8192);
  REQUIRE(peer.route != nullptr);
  CHECK(egress(peer) == std::vector<int>{0, 1});  // up through sw0, out of rp1
  mapped = false;                                 // unmapped: an IOMMU fault, counted and refused
  const auto fault = p.write("gpu0", iova + 8192);
  CHECK(fault.route == nullptr);
  CHECK(fault.status == CplStatus::UnsupportedRequest);
  CHECK(p.router.stats().counterValue("iommu_faults") == 1);
  // Every request is counted once, kept route or walked: 256 + 1 + 1.
  CHECK(p.router.stats().counterValue("requests") == 258);
  mapped = true;
  target = 0x7000'0000;
  CHECK(p.write("gpu0", iova + 8192).route == first.route);
  CHECK(p.write("gpu1", iova).route != nullptr);  // another requester: its own route
  CHECK(egress(p.write("gpu2", iova)) == std::vector<int>{kEgressHostMemory});
}

TEST_CASE("a root complex's route to system memory is the same for every address outside its windows") {
  Platform p;
  const auto a = p.adapter.routeFromRootComplex(0, 0x1000'0000, true);
  REQUIRE(a.route != nullptr);
  CHECK(egress(a) == std::vector<int>{kEgressHostMemory});
  CHECK(p.adapter.routeFromRootComplex(0, 0x3000'0000, true).route == a.route);
  const auto peer = p.adapter.routeFromRootComplex(0, p.bar2("gpu2"), true);  // a window: the peer
  REQUIRE(peer.route != nullptr);
  CHECK(egress(peer) == std::vector<int>{1});
  CHECK(p.router.stats().counterValue("requests") == 3);
}

TEST_CASE("a DMA routed by topology's Router reaches the peer BAR through the fabric modules") {
  tlm_utils::tlm_quantumkeeper::set_global_quantum(sc_core::sc_time(1, sc_core::SC_US));
  Platform p;
  // Modules mirroring hb0 of the fixture, ports added in the topology's order:
  // rc0: rp0 (port 0) -> sw0, rp1 (port 1) -> gpu2; sw0: dp0..dp3 = ports 1..4.
  PcieFabric fab("fab");
  PcieLinkParams link;
  link.config.gen = PcieGen::Gen4;
  link.config.lanes = 16;
  auto dma = [&](const std::string& n) {
    PcieDmaEngineParams e;
    e.requester = p.dev(n).bdf();
    e.link = link.config;
    return e;
  };
  auto barOf = [&](const std::string& n) {
    PcieMemoryTargetParams m;
    m.baseAddr = p.bar2(n);
    m.sizeBytes = 256ull << 20;
    m.storeData = true;
    return m;
  };
  auto mem = hostMemory();
  mem.storeData = true;
  const auto rc = fab.addRootComplex("rc0", PcieRootComplexParams{}, mem);
  const auto sw0 = fab.addSwitch("sw0", rc, link, PcieSwitchParams{});
  const auto gpu0 = fab.addEndpoint("gpu0", sw0, link, dma("gpu0"), barOf("gpu0"));
  const auto gpu1 = fab.addEndpoint("gpu1", sw0, link, dma("gpu1"), barOf("gpu1"));
  const auto gpu2 = fab.addEndpoint("gpu2", rc, link, dma("gpu2"), barOf("gpu2"));
  fab.finalize();
  fab.engine(gpu0).setRouter(&p.adapter);
  fab.rootComplex(rc).setRouter(&p.adapter);
  std::vector<std::uint8_t> data(4096, 0x77);
  CplStatus toPeer = CplStatus::CompleterAbort, toRemote = CplStatus::CompleterAbort;
  QkThread drv("drv", [&](tlm_utils::tlm_quantumkeeper& qk) {
    toPeer = fab.engine(gpu0).write(p.bar2("gpu1"), data.size(), data.data(), qk);
    toRemote = fab.engine(gpu0).write(p.bar2("gpu2") + 4096, data.size(), data.data(), qk);
  });
  sc_core::sc_start();
  CHECK(toPeer == CplStatus::SuccessfulCompletion);
  CHECK(toRemote == CplStatus::SuccessfulCompletion);
  CHECK(fab.memory(gpu1).stats().counterValue("bytes_written") == 4096);
  CHECK(fab.memory(gpu2).stats().counterValue("bytes_written") == 4096);
  CHECK(fab.rootComplex(rc).stats().counterValue("p2p_transactions") == 16);  // only gpu2's
  std::vector<std::uint8_t> got(4096);
  fab.memory(gpu1).peek(p.bar2("gpu1"), got.data(), got.size());
  CHECK(got == data);
}
