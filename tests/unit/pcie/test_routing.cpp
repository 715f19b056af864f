#include <catch2/catch.hpp>

#include "models/pcie/routing.h"
#include "tests/unit/pcie/topology_fixtures.h"

using namespace hmmsim;
using namespace hmmsim::test;

namespace {

struct Net {
  explicit Net(const TopologyDesc& d) : topo(buildTopology(d)), router(*topo, "top.route") {}

  const PciDev& dev(const std::string& n) const { return *topo->findDev(n); }
  PciDevId id(const std::string& n) const { return dev(n).id(); }
  std::uint64_t bar(const std::string& n, int i) const { return dev(n).bar(i).bus.value(); }

  Hop up(const std::string& linkName) const { return linkHop(linkName, HopDir::Upstream); }
  Hop down(const std::string& linkName) const { return linkHop(linkName, HopDir::Downstream); }
  Hop linkHop(const std::string& linkName, HopDir dir) const {
    for (const PcieLink& l : topo->links())
      if (l.name == linkName) {
        Hop h;
        h.kind = HopKind::Link;
        h.dir = dir;
        h.link = l.id;
        return h;
      }
    FAIL("no link " << linkName);
    return {};
  }
  Hop sw(const std::string& in, const std::string& out) const { return comp(HopKind::Switch, in, out, ""); }
  Hop rc(const std::string& in, const std::string& out, const std::string& host) const {
    return comp(HopKind::RootComplex, in, out, host);
  }
  Hop fn(const std::string& in, const std::string& out) const { return comp(HopKind::Function, in, out, ""); }
  Hop comp(HopKind k, const std::string& in, const std::string& out, const std::string& host) const {
    Hop h;
    h.kind = k;
    h.dir = HopDir::Internal;
    h.ingress = in.empty() ? kNoDev : id(in);
    h.egress = out.empty() ? kNoDev : id(out);
    h.host = host.empty() ? kNoHost : hostBridgeIndex(*topo, *topo->findHostBridge(host));
    return h;
  }
  Route write(const std::string& from, std::uint64_t addr, TlpRouteAttrs a = {}) const {
    a.write = true;
    return router.routeRequest(dev(from), addr, a);
  }
  std::uint64_t counter(const char* n) const { return router.stats().counterValue(n); }

  std::unique_ptr<Topology> topo;
  Router router;
};

std::string show(const Route& r) {
  std::string s = routeStatusName(r.status);
  for (const Hop& h : r.hops) {
    s += " | ";
    switch (h.kind) {
      case HopKind::Link:
        s += "L" + std::to_string(h.link.value()) + (h.dir == HopDir::Upstream ? "^" : "v");
        break;
      case HopKind::Switch:
        s += "S";
        break;
      case HopKind::RootComplex:
        s += "RC " + std::to_string(h.host);
        break;
      case HopKind::Function:
        s += "F";
        break;
    }
    if (h.kind != HopKind::Link)
      s += "(" + std::to_string(h.ingress.value()) + "->" + std::to_string(h.egress.value()) + ")";
  }
  return s;
}

}  // namespace

TEST_CASE("without ACS a peer write turns around inside the switch") {
  Net n(platform());
  Route r = n.write("gpu0", n.bar("gpu1", 2) + 0x1000);
  INFO(show(r));
  REQUIRE(r.ok());
  CHECK(r.end == RouteEnd::Function);
  CHECK(r.target == &n.dev("gpu1"));
  CHECK(r.targetBar == 2);
  CHECK(r.targetAddr == n.bar("gpu1", 2) + 0x1000);
  CHECK(r.hops == std::vector<Hop>{n.up("sw0.dp0-gpu0"), n.sw("sw0.dp0", "sw0.dp1"), n.down("sw0.dp1-gpu1")});
  CHECK_FALSE(r.redirected);
  CHECK_FALSE(r.viaRootComplex);
  CHECK(n.counter("local_turnarounds") == 1);
}

TEST_CASE("a peer write to a device below a nested switch crosses both switches") {
  Net n(platform());
  Route r = n.write("gpu0", n.bar("nvme0", 0));
  INFO(show(r));
  REQUIRE(r.ok());
  CHECK(r.hops == std::vector<Hop>{n.up("sw0.dp0-gpu0"), n.sw("sw0.dp0", "sw0.dp3"), n.down("sw0.dp3-sw1"),
                                   n.sw("sw1", "sw1.dp0"), n.down("sw1.dp0-nvme0")});
  CHECK(r.linkHops() == 3);
}

TEST_CASE("ACS RR redirects a peer request to the root complex, which routes it back down") {
  TopologyDesc d = platform();
  setPortAcs(d, "sw0.dp0", kPciAcsRr | kPciAcsCr | kPciAcsUf | kPciAcsSv);
  setPortAcs(d, "rp0", kPciAcsRr | kPciAcsCr | kPciAcsUf | kPciAcsSv);
  Net n(d);
  Route r = n.write("gpu0", n.bar("gpu1", 0));
  INFO(show(r));
  REQUIRE(r.ok());
  CHECK(r.target == &n.dev("gpu1"));
  CHECK(r.redirected);
  CHECK(r.viaRootComplex);
  CHECK(r.hops == std::vector<Hop>{n.up("sw0.dp0-gpu0"), n.sw("sw0.dp0", "sw0"), n.up("rp0-sw0"),
                                   n.rc("rp0", "rp0", "hb0"), n.down("rp0-sw0"), n.sw("sw0", "sw0.dp1"),
                                   n.down("sw0.dp1-gpu1")});
  CHECK(n.counter("acs_redirects") == 1);
}

TEST_CASE("a redirected request reaching a root port without ACS UF ends in Unsupported Request") {
  TopologyDesc d = platform();
  setPortAcs(d, "sw0.dp0", kPciAcsRr);
  Net n(d);
  Route r = n.write("gpu0", n.bar("gpu1", 0));
  INFO(show(r));
  CHECK(r.status == RouteStatus::UnsupportedRequest);
  CHECK(r.stoppedAt == &n.dev("rp0"));
  CHECK(n.counter("unsupported_requests") == 1);
}

TEST_CASE("ACS RR on another downstream port does not redirect this port's requests") {
  TopologyDesc d = platform();
  setPortAcs(d, "sw0.dp1", kPciAcsRr);
  Net n(d);
  Route r = n.write("gpu0", n.bar("gpu1", 0));
  REQUIRE(r.ok());
  CHECK_FALSE(r.redirected);
}

TEST_CASE("ACS CR redirects a peer completion with relaxed ordering clear") {
  TopologyDesc d = platform();
  setPortAcs(d, "sw0.dp1", kPciAcsCr);
  setPortAcs(d, "rp0", kPciAcsUf);
  Net n(d);
  Route r = n.router.routeCompletion(n.dev("gpu1"), n.dev("gpu0").bdf(), TlpRouteAttrs{});
  INFO(show(r));
  REQUIRE(r.ok());
  CHECK(r.target == &n.dev("gpu0"));
  CHECK(r.redirected);
  CHECK(r.hops == std::vector<Hop>{n.up("sw0.dp1-gpu1"), n.sw("sw0.dp1", "sw0"), n.up("rp0-sw0"),
                                   n.rc("rp0", "rp0", "hb0"), n.down("rp0-sw0"), n.sw("sw0", "sw0.dp0"),
                                   n.down("sw0.dp0-gpu0")});
}

TEST_CASE("ACS CR does not redirect a completion with relaxed ordering set") {
  TopologyDesc d = platform();
  setPortAcs(d, "sw0.dp1", kPciAcsCr);
  Net n(d);
  TlpRouteAttrs ro;
  ro.relaxedOrdering = true;
  Route r = n.router.routeCompletion(n.dev("gpu1"), n.dev("gpu0").bdf(), ro);
  INFO(show(r));
  REQUIRE(r.ok());
  CHECK_FALSE(r.redirected);
  CHECK(r.hops == std::vector<Hop>{n.up("sw0.dp1-gpu1"), n.sw("sw0.dp1", "sw0.dp0"), n.down("sw0.dp0-gpu0")});
}

TEST_CASE("without ACS a peer completion is routed by requester id inside the switch") {
  Net n(platform());
  Route r = n.router.routeCompletion(n.dev("nvme0"), n.dev("gpu1").bdf(), TlpRouteAttrs{});
  INFO(show(r));
  REQUIRE(r.ok());
  CHECK(r.hops == std::vector<Hop>{n.up("sw1.dp0-nvme0"), n.sw("sw1.dp0", "sw1"), n.up("sw0.dp3-sw1"),
                                   n.sw("sw0.dp3", "sw0.dp1"), n.down("sw0.dp1-gpu1")});
}

TEST_CASE("ACS RR does not redirect completions") {
  TopologyDesc d = platform();
  setPortAcs(d, "sw0.dp1", kPciAcsRr);
  Net n(d);
  Route r = n.router.routeCompletion(n.dev("gpu1"), n.dev("gpu0").bdf(), TlpRouteAttrs{});
  REQUIRE(r.ok());
  CHECK_FALSE(r.redirected);
}

TEST_CASE("ACS EC blocks a peer request towards a port whose egress bit is set") {
  TopologyDesc d = platform();
  setPortAcs(d, "sw0.dp0", kPciAcsEc, 1u << 1);  // sw0.dp1 is port number 1
  Net n(d);
  Route r = n.write("gpu0", n.bar("gpu1", 0));
  CHECK(r.status == RouteStatus::AcsViolation);
  CHECK(r.stoppedAt == &n.dev("sw0.dp0"));
  CHECK(n.counter("acs_violations") == 1);
}

TEST_CASE("ACS EC lets a peer request through to a port whose egress bit is clear") {
  TopologyDesc d = platform();
  setPortAcs(d, "sw0.dp0", kPciAcsEc, 1u << 2);  // only sw0.dp2 (nic0) is blocked
  Net n(d);
  Route toGpu = n.write("gpu0", n.bar("gpu1", 0));
  REQUIRE(toGpu.ok());
  CHECK_FALSE(toGpu.redirected);
  CHECK(n.write("gpu0", n.bar("nic0.f0", 0)).status == RouteStatus::AcsViolation);
}

TEST_CASE("ACS EC with RR redirects a blocked peer request upstream instead") {
  TopologyDesc d = platform();
  setPortAcs(d, "sw0.dp0", kPciAcsEc | kPciAcsRr, 1u << 1);
  setPortAcs(d, "rp0", kPciAcsUf);
  Net n(d);
  Route r = n.write("gpu0", n.bar("gpu1", 0));
  INFO(show(r));
  REQUIRE(r.ok());
  CHECK(r.redirected);
  CHECK(r.viaRootComplex);
}

TEST_CASE("ACS EC at a root port blocks peer requests towards another root port") {
  TopologyDesc d = platform();
  setPortAcs(d, "rp0", kPciAcsEc, 1u << 2);  // rp1 has port number 2
  Net n(d);
  Route r = n.write("gpu0", n.bar("gpu2", 0));
  CHECK(r.status == RouteStatus::AcsViolation);
  CHECK(r.stoppedAt == &n.dev("rp0"));
}

TEST_CASE("ACS SV blocks a request whose requester id is not below the port") {
  TopologyDesc d = platform();
  setPortAcs(d, "sw0.dp0", kPciAcsSv);
  Net n(d);
  TlpRouteAttrs spoof;
  spoof.requesterId = n.dev("gpu1").bdf();
  Route r = n.write("gpu0", n.bar("gpu1", 0), spoof);
  CHECK(r.status == RouteStatus::AcsViolation);
  CHECK(r.stoppedAt == &n.dev("sw0.dp0"));
  CHECK(n.write("gpu0", n.bar("gpu1", 0)).ok());  // its own id passes
}

TEST_CASE("without ACS SV a spoofed requester id is not checked") {
  Net n(platform());
  TlpRouteAttrs spoof;
  spoof.requesterId = n.dev("gpu1").bdf();
  CHECK(n.write("gpu0", n.bar("gpu1", 0), spoof).ok());
}

TEST_CASE("ACS TB blocks translated requests and lets untranslated ones pass") {
  TopologyDesc d = platform();
  setPortAcs(d, "sw0.dp0", kPciAcsTb);
  Net n(d);
  TlpRouteAttrs translated;
  translated.at = PcieAt::Translated;
  CHECK(n.write("gpu0", n.bar("gpu1", 0), translated).status == RouteStatus::AcsViolation);
  CHECK(n.write("gpu0", n.bar("gpu1", 0)).ok());
}

TEST_CASE("ACS DT sends translated peer requests directly despite RR") {
  TopologyDesc d = platform();
  setPortAcs(d, "sw0.dp0", kPciAcsRr | kPciAcsDt);
  setPortAcs(d, "rp0", kPciAcsUf);
  Net n(d);
  TlpRouteAttrs translated;
  translated.at = PcieAt::Translated;
  Route direct = n.write("gpu0", n.bar("gpu1", 0), translated);
  REQUIRE(direct.ok());
  CHECK_FALSE(direct.redirected);
  Route untranslated = n.write("gpu0", n.bar("gpu1", 0));
  REQUIRE(untranslated.ok());
  CHECK(untranslated.redirected);
}

TEST_CASE("peer traffic between functions of one device stays inside the device without ACS") {
  Net n(platform());
  Route r = n.write("nic0.f0", n.bar("nic0.f1", 0));
  INFO(show(r));
  REQUIRE(r.ok());
  CHECK(r.hops == std::vector<Hop>{n.fn("nic0.f0", "nic0.f1")});
}

TEST_CASE("ACS RR on a function sends its peer requests up, which needs UF at each port above") {
  TopologyDesc d = platform();
  setPortAcs(d, "nic0.f0", kPciAcsRr);
  Net without(d);
  Route bounced = without.write("nic0.f0", without.bar("nic0.f1", 0));
  CHECK(bounced.status == RouteStatus::UnsupportedRequest);
  CHECK(bounced.stoppedAt == &without.dev("sw0.dp2"));
  setPortAcs(d, "sw0.dp2", kPciAcsUf);
  setPortAcs(d, "rp0", kPciAcsUf);
  Net n(d);
  Route r = n.write("nic0.f0", n.bar("nic0.f1", 0));
  INFO(show(r));
  REQUIRE(r.ok());
  CHECK(r.target == &n.dev("nic0.f1"));
  CHECK(r.hops == std::vector<Hop>{n.up("sw0.dp2-nic0"), n.sw("sw0.dp2", "sw0"), n.up("rp0-sw0"),
                                   n.rc("rp0", "rp0", "hb0"), n.down("rp0-sw0"), n.sw("sw0", "sw0.dp2"),
                                   n.down("sw0.dp2-nic0")});
}

TEST_CASE("a peer request between root ports crosses the root complex when it supports p2p") {
  Net n(platform());
  Route r = n.write("gpu0", n.bar("gpu2", 2));
  INFO(show(r));
  REQUIRE(r.ok());
  CHECK(r.hops == std::vector<Hop>{n.up("sw0.dp0-gpu0"), n.sw("sw0.dp0", "sw0"), n.up("rp0-sw0"),
                                   n.rc("rp0", "rp1", "hb0"), n.down("rp1-gpu2")});
  CHECK(n.counter("rc_p2p") == 1);
}

TEST_CASE("a root complex without p2p support answers a peer request with Unsupported Request") {
  TopologyDesc d = platform();
  d.hostBridges[0].params.p2pSupported = false;
  Net n(d);
  Route r = n.write("gpu0", n.bar("gpu2", 2));
  CHECK(r.status == RouteStatus::UnsupportedRequest);
  CHECK(r.end == RouteEnd::None);
  CHECK(r.hops.back() == n.rc("rp0", "", "hb0"));
  CHECK(n.counter("rc_p2p_unsupported") == 1);
  CHECK(n.counter("unsupported_requests") == 1);
  // DMA to system memory still works.
  CHECK(n.write("gpu0", 0x100000).ok());
}

TEST_CASE("a peer request to another host bridge crosses both root complexes") {
  Net n(platform());
  Route r = n.write("gpu0", n.bar("gpu3", 0));
  INFO(show(r));
  REQUIRE(r.ok());
  CHECK(r.target == &n.dev("gpu3"));
  CHECK(r.hops == std::vector<Hop>{n.up("sw0.dp0-gpu0"), n.sw("sw0.dp0", "sw0"), n.up("rp0-sw0"),
                                   n.rc("rp0", "", "hb0"), n.rc("", "rp2", "hb1"), n.down("rp2-gpu3")});
}

TEST_CASE("DMA to an address outside every window goes to system memory") {
  Net n(platform());
  Route r = n.write("gpu1", 0x12345000);
  INFO(show(r));
  REQUIRE(r.ok());
  CHECK(r.end == RouteEnd::SystemMemory);
  CHECK(r.targetAddr == 0x12345000);
  CHECK(r.hops == std::vector<Hop>{n.up("sw0.dp1-gpu1"), n.sw("sw0.dp1", "sw0"), n.up("rp0-sw0"),
                                   n.rc("rp0", "", "hb0")});
}

TEST_CASE("the root complex address resolver decides where an upstream request goes") {
  Net n(platform());
  const std::uint64_t gpu2Bar = n.dev("gpu2").bar(2).cpu.value();
  n.router.setRcAddressResolver([&](const PciDev&, std::uint64_t iova, const TlpRouteAttrs&) {
    if (iova == 0xdead000) return RcResolveResult{false, Pa(0)};
    if (iova == 0x1000) return RcResolveResult{true, Pa(gpu2Bar + 0x40)};
    return RcResolveResult{true, Pa(iova + 0x100000000ull)};
  });
  Route fault = n.write("gpu0", 0xdead000);
  CHECK(fault.status == RouteStatus::IommuFault);
  CHECK(n.counter("iommu_faults") == 1);
  Route peer = n.write("gpu0", 0x1000);
  REQUIRE(peer.ok());
  CHECK(peer.target == &n.dev("gpu2"));
  CHECK(peer.targetAddr == n.bar("gpu2", 2) + 0x40);
  Route mem = n.write("gpu0", 0x2000);
  REQUIRE(mem.ok());
  CHECK(mem.targetAddr == 0x100002000ull);
}

TEST_CASE("a CPU MMIO request reaches the BAR through its host bridge") {
  Net n(platform());
  const PciDev& nvme = n.dev("nvme0");
  Route r = n.router.routeHostRequest(n.topo->hostBridges()[0], nvme.bar(0).cpu + 8, TlpRouteAttrs{});
  INFO(show(r));
  REQUIRE(r.ok());
  CHECK(r.target == &nvme);
  CHECK(r.hops == std::vector<Hop>{n.rc("", "rp0", "hb0"), n.down("rp0-sw0"), n.sw("sw0", "sw0.dp3"),
                                   n.down("sw0.dp3-sw1"), n.sw("sw1", "sw1.dp0"), n.down("sw1.dp0-nvme0")});
  CHECK(n.router.routeHostRequest(n.topo->hostBridges()[0], Pa(0x1000), TlpRouteAttrs{}).status ==
        RouteStatus::UnsupportedRequest);
}

TEST_CASE("a completion from system memory is routed down by requester id") {
  Net n(platform());
  Route r = n.router.routeHostCompletion(n.topo->hostBridges()[0], n.dev("nic0.f1").bdf(), TlpRouteAttrs{});
  INFO(show(r));
  REQUIRE(r.ok());
  CHECK(r.target == &n.dev("nic0.f1"));
  CHECK(r.hops == std::vector<Hop>{n.rc("", "rp0", "hb0"), n.down("rp0-sw0"), n.sw("sw0", "sw0.dp2"),
                                   n.down("sw0.dp2-nic0")});
}

TEST_CASE("a completion to an unknown requester id is an Unsupported Request") {
  Net n(platform());
  Route r = n.router.routeCompletion(n.dev("gpu1"), Bdf{0, 0x42, 0, 0}, TlpRouteAttrs{});
  CHECK(r.status == RouteStatus::UnsupportedRequest);
}

TEST_CASE("a request to an address inside a bridge window but no BAR is an Unsupported Request") {
  Net n(platform());
  const PciDev& dp = n.dev("sw1.dp0");  // 1 MiB window holding a 16 KiB BAR
  std::uint64_t hole = dp.memWindow().base.value() + 512 * 1024;
  Route r = n.write("gpu0", hole);
  CHECK(r.status == RouteStatus::UnsupportedRequest);
  CHECK(r.stoppedAt == &n.dev("nvme0"));
}

TEST_CASE("routing on from a root complex after translation reaches a peer BAR or memory") {
  Net n(platform());
  const PciHostBridge& hb0 = n.topo->hostBridges()[0];
  Route peer = n.router.routeFromRootComplex(hb0, n.dev("gpu3").bar(2).cpu + 64, TlpRouteAttrs{});
  INFO(show(peer));
  REQUIRE(peer.ok());
  CHECK(peer.target == &n.dev("gpu3"));
  CHECK(peer.hops == std::vector<Hop>{n.rc("", "", "hb0"), n.rc("", "rp2", "hb1"), n.down("rp2-gpu3")});
  Route mem = n.router.routeFromRootComplex(hb0, Pa(0x8000), TlpRouteAttrs{});
  REQUIRE(mem.ok());
  CHECK(mem.end == RouteEnd::SystemMemory);
}

TEST_CASE("fabric port indices number switch and root ports as the fabric modules do") {
  Net n(platform());
  const PcieSwitch& sw0 = *n.topo->findSwitch("sw0");
  CHECK(switchPortIndex(sw0, n.dev("sw0")) == 0);
  CHECK(switchPortIndex(sw0, n.dev("sw0.dp2")) == 3);
  CHECK(rootPortIndex(n.topo->hostBridges()[0], n.dev("rp1")) == 1);
  CHECK(hostBridgeIndex(*n.topo, n.topo->hostBridges()[1]) == 1);
}

#include "models/pcie/p2pdma.h"

namespace {

// For every ordered pair of endpoint functions of different devices: the kernel's map type
// agrees with the path the hardware takes (BusAddr: below the root complex; ThruHostBridge:
// through it). Functions of one device are left out: see the test after these.
void checkMapTypesMatchRoutes(const TopologyDesc& d) {
  Net n(d);
  P2pdma p2p(*n.topo, P2pdmaParams{}, Rng(1), "top.p2pdma");
  std::vector<PciDev*> eps;
  for (const auto& f : n.topo->functions())
    if (f->type() == PciDevType::Endpoint) eps.push_back(f.get());
  for (PciDev* provider : eps) {
    for (PciDev* client : eps) {
      if (provider->bus() == client->bus()) continue;  // functions of one device
      int dist = 0;
      P2pMapType t = p2p.calcMapTypeAndDist(*provider, *client, &dist, false);
      int bar = provider->bar(0).isMem() ? 0 : 2;
      Route r = n.router.routeRequest(*client, provider->bar(bar).bus.value(), TlpRouteAttrs{});
      INFO(client->name() << " -> " << provider->name() << ": " << p2pMapTypeName(t) << ", " << show(r));
      REQUIRE(r.ok());
      CHECK(r.target == provider);
      CHECK((t == P2pMapType::BusAddr) == !r.viaRootComplex);
    }
  }
}

}  // namespace

TEST_CASE("the kernel's map type agrees with the routed path for every pair without ACS") {
  checkMapTypesMatchRoutes(platform());
}

TEST_CASE("the kernel's map type agrees with the routed path for every pair with ACS redirect everywhere") {
  TopologyDesc d = platform();
  const std::uint16_t linuxDefault = kPciAcsSv | kPciAcsRr | kPciAcsCr | kPciAcsUf;  // pci_std_enable_acs
  for (const char* p : {"rp0", "rp1", "rp2", "sw0.dp0", "sw0.dp1", "sw0.dp2", "sw0.dp3", "sw1.dp0"})
    setPortAcs(d, p, linuxDefault);
  checkMapTypesMatchRoutes(d);
}

TEST_CASE(
    "the kernel sends two functions of one device through the host bridge when the port above redirects") {
  // calc_map_type_and_dist() checks ACS on the common upstream bridge as well, here sw0.dp2, even
  // though traffic between the functions never reaches it: the hardware turns it around inside
  // the device (no ACS on the functions), the kernel maps it as ThruHostBridge. Conservative, not
  // wrong: the IOVA/physical address then travels up to the root complex and back.
  TopologyDesc d = platform();
  setPortAcs(d, "sw0.dp2", kPciAcsSv | kPciAcsRr | kPciAcsCr | kPciAcsUf);
  Net n(d);
  P2pdma p2p(*n.topo, P2pdmaParams{}, Rng(1), "top.p2pdma");
  int dist = 0;
  CHECK(p2p.calcMapTypeAndDist(*n.topo->findDev("nic0.f0"), *n.topo->findDev("nic0.f1"), &dist, false) ==
        P2pMapType::ThruHostBridge);
  Route r = n.write("nic0.f1", n.bar("nic0.f0", 0));
  REQUIRE(r.ok());
  CHECK_FALSE(r.viaRootComplex);
  CHECK(r.hops == std::vector<Hop>{n.fn("nic0.f1", "nic0.f0")});
}

// ---- the refusal observer (checker rule 7) ---------------------------------------------------

TEST_CASE("a root complex without p2p tells the refusal observer who, where and why") {
  TopologyDesc d = platform();
  d.hostBridges[0].params.p2pSupported = false;
  Net n(d);
  std::vector<RcRefusal> seen;
  n.router.setRcRefusalObserver([&](const RcRefusal& r) { seen.push_back(r); });
  CHECK(n.write("gpu0", 0x100000).ok());  // system memory: nothing refused
  CHECK(seen.empty());
  const std::uint64_t addr = n.bar("gpu2", 2) + 0x40;
  CHECK(n.write("gpu0", addr).status == RouteStatus::UnsupportedRequest);
  REQUIRE(seen.size() == 1);
  CHECK(seen[0].requester == &n.dev("gpu0"));
  CHECK(seen[0].addr == addr);
  CHECK(seen[0].hostBridge == n.topo->findHostBridge("hb0"));
  CHECK(seen[0].peerHostBridge == n.topo->findHostBridge("hb0"));
  CHECK(seen[0].reason == RcRefusalReason::P2pNotForwarded);
  CHECK(seen[0].write);
}

TEST_CASE("a redirected peer request bounced at a root port without UF reaches the refusal observer") {
  TopologyDesc d = platform();
  setPortAcs(d, "sw0.dp0", kPciAcsRr);
  Net n(d);
  std::vector<RcRefusal> seen;
  n.router.setRcRefusalObserver([&](const RcRefusal& r) { seen.push_back(r); });
  CHECK(n.write("gpu0", n.bar("gpu1", 0)).status == RouteStatus::UnsupportedRequest);
  REQUIRE(seen.size() == 1);
  CHECK(seen[0].reason == RcRefusalReason::NoUpstreamForwarding);
  CHECK(seen[0].port == &n.dev("rp0"));
  CHECK(seen[0].hostBridge == n.topo->findHostBridge("hb0"));
  // With UF on the root port the request crosses the root complex (p2p supported): not refused.
  TopologyDesc uf = platform();
  setPortAcs(uf, "sw0.dp0", kPciAcsRr);
  setPortAcs(uf, "rp0", kPciAcsUf);
  Net m(uf);
  std::vector<RcRefusal> none;
  m.router.setRcRefusalObserver([&](const RcRefusal& r) { none.push_back(r); });
  CHECK(m.write("gpu0", m.bar("gpu1", 0)).ok());
  CHECK(none.empty());
}

TEST_CASE("a request the address resolver refuses reaches the refusal observer, completions never") {
  Net n(platform());
  n.router.setRcAddressResolver([](const PciDev&, std::uint64_t iova, const TlpRouteAttrs&) {
    return RcResolveResult{iova != 0xdead000, Pa(iova)};
  });
  std::vector<RcRefusal> seen;
  n.router.setRcRefusalObserver([&](const RcRefusal& r) { seen.push_back(r); });
  CHECK(n.write("gpu0", 0xdead000).status == RouteStatus::IommuFault);
  REQUIRE(seen.size() == 1);
  CHECK(seen[0].reason == RcRefusalReason::ResolverFault);
  CHECK(seen[0].addr == 0xdead000);
  CHECK(std::string(rcRefusalReasonName(seen[0].reason)) == "address resolver (IOMMU) fault");
  // A completion to an unknown requester id is refused too, but it is no request.
  CHECK_FALSE(n.router.routeCompletion(n.dev("gpu0"), Bdf{0, 0x7f, 0, 0}, {}).ok());
  CHECK(seen.size() == 1);
}
