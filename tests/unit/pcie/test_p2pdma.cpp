#include <catch2/catch.hpp>

#include <set>

#include "models/pcie/p2pdma.h"
#include "tests/unit/pcie/topology_fixtures.h"

using namespace hmmsim;
using namespace hmmsim::test;

namespace {

struct Fixture {
  explicit Fixture(const TopologyDesc& d, CpuIdentity cpu = {}, std::uint64_t seed = 1)
      : topo(buildTopology(d)), p2p(*topo, P2pdmaParams{cpu}, Rng(seed), "top.p2pdma") {}
  PciDev& dev(const std::string& n) { return *topo->findDev(n); }
  P2pMapType mapType(const std::string& provider, const std::string& client, int* dist = nullptr) {
    int d = -100;
    P2pMapType t = p2p.calcMapTypeAndDist(dev(provider), dev(client), &d, false);
    if (dist) *dist = d;
    return t;
  }
  std::unique_ptr<Topology> topo;
  P2pdma p2p;
};

TopologyDesc withHostBridgeIds(std::uint16_t vendor0, std::uint16_t device0, std::uint16_t vendor1,
                               std::uint16_t device1) {
  TopologyDesc d = platform();
  d.hostBridges[0].params.vendor = vendor0;
  d.hostBridges[0].params.device = device0;
  d.hostBridges[1].params.vendor = vendor1;
  d.hostBridges[1].params.device = device1;
  return d;
}

}  // namespace

// ---- upstream_bridge_distance (2019-era) ------------------------------------------------

TEST_CASE("upstreamBridgeDistance of two devices below one switch is 4") {
  Fixture f(platform());
  CHECK(upstreamBridgeDistance(f.dev("gpu0"), f.dev("gpu1")) == 4);
}

TEST_CASE("upstreamBridgeDistance of two functions of one device is 2") {
  Fixture f(platform());
  CHECK(upstreamBridgeDistance(f.dev("nic0.f0"), f.dev("nic0.f1")) == 2);
}

TEST_CASE("upstreamBridgeDistance of a function with itself is 0") {
  Fixture f(platform());
  CHECK(upstreamBridgeDistance(f.dev("gpu0"), f.dev("gpu0")) == 0);
}

TEST_CASE("upstreamBridgeDistance across nested switches under one root port counts both chains") {
  Fixture f(platform());
  // gpu0 -> sw0.dp0 -> sw0 (2 hops); nvme0 -> sw1.dp0 -> sw1 -> sw0.dp3 -> sw0 (4 hops)
  CHECK(upstreamBridgeDistance(f.dev("gpu0"), f.dev("nvme0")) == 6);
}

TEST_CASE("upstreamBridgeDistance of devices under different root ports is -1") {
  Fixture f(platform());
  CHECK(upstreamBridgeDistance(f.dev("gpu0"), f.dev("gpu2")) == -1);
}

TEST_CASE("upstreamBridgeDistance with ACS redirect on the path is -2 and lists the bridge") {
  TopologyDesc d = platform();
  setPortAcs(d, "sw0.dp1", kPciAcsRr);
  Fixture f(d);
  std::string acs;
  CHECK(upstreamBridgeDistance(f.dev("gpu0"), f.dev("gpu1"), &acs) == -2);
  CHECK(acs == "0000:02:01.0;");
}

TEST_CASE("ACS source validation alone is not an ACS redirect for the distance") {
  TopologyDesc d = platform();
  setPortAcs(d, "sw0.dp1", kPciAcsSv | kPciAcsUf | kPciAcsTb);
  Fixture f(d);
  CHECK(upstreamBridgeDistance(f.dev("gpu0"), f.dev("gpu1")) == 4);
}

// ---- calc_map_type_and_dist --------------------------------------------------------------

TEST_CASE("two devices below one switch map by bus address at distance 4") {
  Fixture f(platform());
  int dist = 0;
  CHECK(f.mapType("gpu0", "gpu1", &dist) == P2pMapType::BusAddr);
  CHECK(dist == 4);
}

TEST_CASE("two functions of one device map by bus address at distance 2") {
  Fixture f(platform());
  int dist = 0;
  CHECK(f.mapType("nic0.f0", "nic0.f1", &dist) == P2pMapType::BusAddr);
  CHECK(dist == 2);
}

TEST_CASE("a function mapping its own BAR maps by bus address at distance 0") {
  Fixture f(platform());
  int dist = 0;
  CHECK(f.mapType("gpu0", "gpu0", &dist) == P2pMapType::BusAddr);
  CHECK(dist == 0);
}

TEST_CASE("devices below different switches under one root port map by bus address") {
  Fixture f(platform());
  int dist = 0;
  CHECK(f.mapType("gpu0", "nvme0", &dist) == P2pMapType::BusAddr);
  CHECK(dist == 6);
}

TEST_CASE("different root ports of an allow-listed host bridge go through the host bridge") {
  Fixture f(platform());  // 8086:2020
  int dist = 0;
  CHECK(f.mapType("gpu0", "gpu2", &dist) == P2pMapType::ThruHostBridge);
  // No common bridge: the kernel sums the full chains (gpu0: 4 functions, gpu2: 2).
  CHECK(dist == 6);
}

TEST_CASE("different root ports of a host bridge not on the list are not supported") {
  Fixture f(withHostBridgeIds(0x8086, 0x1234, 0x8086, 0x2020));
  CHECK(f.mapType("gpu0", "gpu2") == P2pMapType::NotSupported);
}

TEST_CASE("an unlisted host bridge is named in a warning only when ACS forced the host-bridge path") {
  auto warned = [](Fixture& f) {
    for (const auto& l : f.p2p.log())
      if (l.find("Host bridge not in P2PDMA whitelist: 8086:1234") != std::string::npos) return true;
    return false;
  };
  int dist = 0;
  Fixture noCommon(withHostBridgeIds(0x8086, 0x1234, 0x8086, 0x2020));
  CHECK(noCommon.p2p.calcMapTypeAndDist(noCommon.dev("gpu0"), noCommon.dev("gpu2"), &dist, true) ==
        P2pMapType::NotSupported);
  CHECK_FALSE(warned(noCommon));
  CHECK(noCommon.p2p.log().back().find("do not share an upstream bridge or whitelisted host bridge") !=
        std::string::npos);
  TopologyDesc d = withHostBridgeIds(0x8086, 0x1234, 0x8086, 0x2020);
  setPortAcs(d, "sw0.dp0", kPciAcsRr);
  Fixture redirected(d);
  CHECK(redirected.p2p.calcMapTypeAndDist(redirected.dev("gpu0"), redirected.dev("gpu1"), &dist, false) ==
        P2pMapType::NotSupported);
  CHECK(warned(redirected));
}

TEST_CASE("every allow-listed Intel host bridge passes within one host bridge") {
  for (std::uint16_t id : {0x3c00, 0x3c01, 0x2f00, 0x2f01, 0x2030, 0x2031, 0x2032, 0x2033, 0x2020, 0x09a2}) {
    Fixture f(withHostBridgeIds(0x8086, id, 0x8086, 0x2020));
    INFO("device 0x" << std::hex << id);
    CHECK(f.mapType("gpu0", "gpu2") == P2pMapType::ThruHostBridge);
  }
}

TEST_CASE("REQ_SAME_HOST_BRIDGE entries fail across host bridges") {
  for (std::uint16_t id : {0x3c00, 0x3c01, 0x2f00, 0x2f01}) {
    Fixture f(withHostBridgeIds(0x8086, id, 0x8086, id));
    INFO("device 0x" << std::hex << id);
    CHECK(f.mapType("gpu0", "gpu3") == P2pMapType::NotSupported);
  }
}

TEST_CASE("entries without REQ_SAME_HOST_BRIDGE pass across host bridges") {
  Fixture f(withHostBridgeIds(0x8086, 0x2030, 0x8086, 0x09a2));
  CHECK(f.mapType("gpu0", "gpu3") == P2pMapType::ThruHostBridge);
}

TEST_CASE("across host bridges both must be on the list") {
  Fixture f(withHostBridgeIds(0x8086, 0x2020, 0x8086, 0x1234));
  CHECK(f.mapType("gpu0", "gpu3") == P2pMapType::NotSupported);
}

TEST_CASE("a Google host bridge passes with any device id") {
  Fixture f(withHostBridgeIds(kPciVendorIdGoogle, 0x4242, kPciVendorIdGoogle, 0x0001));
  CHECK(f.mapType("gpu0", "gpu3") == P2pMapType::ThruHostBridge);
}

TEST_CASE("an AMD Zen CPU supports p2p through any host bridge") {
  TopologyDesc d = withHostBridgeIds(0x1022, 0x1480, 0x1022, 0x1480);
  Fixture zen(d, CpuIdentity{true, CpuVendor::Amd, 0x17});
  CHECK(zen.mapType("gpu0", "gpu3") == P2pMapType::ThruHostBridge);
  Fixture zen4(d, CpuIdentity{true, CpuVendor::Amd, 0x19});
  CHECK(zen4.mapType("gpu0", "gpu2") == P2pMapType::ThruHostBridge);
}

TEST_CASE("a pre-Zen AMD CPU, an Intel CPU or a non-x86 AMD identity does not qualify") {
  CHECK_FALSE(cpuSupportsP2pdma(CpuIdentity{true, CpuVendor::Amd, 0x16}));
  CHECK_FALSE(cpuSupportsP2pdma(CpuIdentity{true, CpuVendor::Intel, 0x17}));
  CHECK_FALSE(cpuSupportsP2pdma(CpuIdentity{false, CpuVendor::Amd, 0x19}));
  TopologyDesc d = withHostBridgeIds(0x1022, 0x1480, 0x1022, 0x1480);
  Fixture f(d, CpuIdentity{true, CpuVendor::Amd, 0x15});
  CHECK(f.mapType("gpu0", "gpu2") == P2pMapType::NotSupported);
}

TEST_CASE("an ACS redirect below one switch forces the host-bridge path") {
  TopologyDesc d = platform();
  setPortAcs(d, "sw0.dp0", kPciAcsRr | kPciAcsCr | kPciAcsUf);
  Fixture f(d);
  int dist = 0;
  CHECK(f.mapType("gpu0", "gpu1", &dist) == P2pMapType::ThruHostBridge);
  CHECK(dist == 4);
}

TEST_CASE(
    "an ACS redirect below one switch with an unlisted host bridge is not supported and names the bridge") {
  TopologyDesc d = withHostBridgeIds(0x8086, 0x1234, 0x8086, 0x1234);
  setPortAcs(d, "sw0.dp0", kPciAcsEc, 0x0);
  Fixture f(d);
  int dist = 0;
  CHECK(f.p2p.calcMapTypeAndDist(f.dev("gpu0"), f.dev("gpu1"), &dist, true) == P2pMapType::NotSupported);
  bool named = false;
  for (const auto& l : f.p2p.log())
    named |= l.find("pci=disable_acs_redir=0000:02:00.0") != std::string::npos;
  CHECK(named);
}

TEST_CASE("the host bridge function is the first root-bus function at 00.0 or a Root Port") {
  TopologyDesc d = platform();
  d.hostBridges[0].params.hostFunction = false;
  d.hostBridges[0].params.device = 0x1234;        // would not pass, but there is no 00.0 function
  d.hostBridges[0].rootPorts[0].device = 0x2031;  // rp0 at 01.0 is now first on the root bus
  Fixture f(d);
  const PciDev* root = pciHostBridgeDev(f.topo->hostBridges()[0]);
  REQUIRE(root);
  CHECK(root->name() == "rp0");
  CHECK(f.mapType("gpu0", "gpu2") == P2pMapType::ThruHostBridge);
}

TEST_CASE("a host bridge with no function at 00.0 and no Root Port first has no host bridge function") {
  Topology topo;
  HostBridgeParams hp;
  hp.name = "hb";
  hp.hostFunction = false;
  PciHostBridge& hb = topo.addHostBridge(hp);
  PciDevParams rciep;
  rciep.name = "rciep";
  rciep.type = PciDevType::Endpoint;
  rciep.devNo = 3;
  topo.addRootBusFunction(hb, rciep);
  CHECK(pciHostBridgeDev(hb) == nullptr);
}

// ---- the map-type cache, distance_many, map_type(provider, dev) --------------------------

TEST_CASE("calc_map_type_and_dist caches the result keyed by domain and requester id") {
  Fixture f(platform());
  REQUIRE(f.p2p.pciP2pdmaAddResource(f.dev("gpu1"), 2, 0, 0) == Errno::Ok);
  f.mapType("gpu1", "gpu0");
  const auto& cache = f.dev("gpu1").p2pdma()->mapTypes;
  REQUIRE(cache.size() == 1);
  CHECK(cache.begin()->first == ((0u << 16) | 0x0300u));  // 0000:03:00.0
  CHECK(cache.begin()->second == P2pMapType::BusAddr);
  CHECK(mapTypesIdx(f.dev("gpu3")) == 0x8100u);
}

TEST_CASE("pci_p2pdma_map_type answers from the cache once computed") {
  Fixture f(platform());
  PciDev& gpu1 = f.dev("gpu1");
  REQUIRE(f.p2p.pciP2pdmaAddResource(gpu1, 2, 0, 0) == Errno::Ok);
  const P2pdmaProvider* prov = f.p2p.pciP2pdmaProvider(gpu1, 2);
  REQUIRE(prov);
  CHECK(f.p2p.pciP2pdmaMapType(*prov, f.dev("gpu0")) == P2pMapType::BusAddr);
  CHECK(f.p2p.stats().counterValue("map_type_calcs") == 1);
  CHECK(f.p2p.pciP2pdmaMapType(*prov, f.dev("gpu0")) == P2pMapType::BusAddr);
  CHECK(f.p2p.stats().counterValue("map_type_calcs") == 1);
  CHECK(f.p2p.stats().counterValue("map_type_cache_hits") == 1);
}

TEST_CASE("pci_p2pdma_map_type is NotSupported for a non-PCI device or a provider without p2pdma") {
  Fixture f(platform());
  PciDev& gpu1 = f.dev("gpu1");
  REQUIRE(f.p2p.pciP2pdmaAddResource(gpu1, 2, 0, 0) == Errno::Ok);
  Device child("gpu0-client", &f.dev("gpu0"));  // PCI parent, but not PCI itself
  CHECK(f.p2p.pciP2pdmaMapType(*f.p2p.pciP2pdmaProvider(gpu1, 2), child) == P2pMapType::NotSupported);
  P2pdmaProvider bare{&f.dev("gpu2"), 2, 0};
  CHECK(f.p2p.pciP2pdmaMapType(bare, f.dev("gpu0")) == P2pMapType::NotSupported);
}

TEST_CASE("pci_p2pdma_distance_many sums the distances of all clients") {
  Fixture f(platform());
  Device nicChild("nic-queue", &f.dev("nic0.f0"));  // resolved through find_parent_pci_dev
  CHECK(f.p2p.pciP2pdmaDistanceMany(f.dev("gpu0"), {&f.dev("gpu1"), &nicChild}, false) == 8);
}

TEST_CASE("pci_p2pdma_distance_many fails if any client is NotSupported") {
  Fixture f(withHostBridgeIds(0x8086, 0x1234, 0x8086, 0x1234));
  CHECK(f.p2p.pciP2pdmaDistanceMany(f.dev("gpu0"), {&f.dev("gpu1"), &f.dev("gpu2")}, false) == -1);
}

TEST_CASE("pci_p2pdma_distance_many fails with no clients or a client without a PCI parent") {
  Fixture f(platform());
  Device orphan("orphan");
  CHECK(f.p2p.pciP2pdmaDistanceMany(f.dev("gpu0"), {}, false) == -1);
  CHECK(f.p2p.pciP2pdmaDistanceMany(f.dev("gpu0"), {&f.dev("gpu1"), &orphan}, false) == -1);
  CHECK(f.p2p.pciP2pdmaDistance(f.dev("gpu0"), f.dev("gpu1"), false) == 4);
}

TEST_CASE("a through-host-bridge client counts with its distance") {
  Fixture f(platform());
  CHECK(f.p2p.pciP2pdmaDistanceMany(f.dev("gpu0"), {&f.dev("gpu1"), &f.dev("gpu2")}, false) == 4 + 6);
}

// ---- add_resource, publish, find_many, the pool ------------------------------------------

TEST_CASE("pci_p2pdma_add_resource rejects a BAR that is not assigned memory") {
  TopologyDesc d = platform();
  BarDesc io;
  io.index = 4;
  io.size = 64;
  io.io = true;
  d.endpoints[0].functions[0].bars.push_back(io);
  Fixture f(d);
  PciDev& gpu0 = f.dev("gpu0");
  CHECK(f.p2p.pciP2pdmaAddResource(gpu0, 4, 0, 0) == Errno::Inval);  // I/O BAR
  CHECK(f.p2p.pciP2pdmaAddResource(gpu0, 1, 0, 0) == Errno::Inval);  // not implemented
  CHECK(f.p2p.pciP2pdmaAddResource(gpu0, 6, 0, 0) == Errno::Inval);  // no such BAR
  CHECK(gpu0.p2pdma() == nullptr);
}

TEST_CASE("pci_p2pdma_add_resource rejects an offset at or beyond the BAR length") {
  Fixture f(platform());
  CHECK(f.p2p.pciP2pdmaAddResource(f.dev("gpu0"), 2, 0, 256 * kMiB) == Errno::Inval);
  CHECK(f.dev("gpu0").p2pdma() == nullptr);
}

TEST_CASE("pci_p2pdma_add_resource rejects size plus offset beyond the BAR length") {
  Fixture f(platform());
  CHECK(f.p2p.pciP2pdmaAddResource(f.dev("gpu0"), 2, 200 * kMiB, 64 * kMiB) == Errno::Inval);
  CHECK(f.dev("gpu0").p2pdma() == nullptr);
}

TEST_CASE("pci_p2pdma_add_resource with size 0 publishes the rest of the BAR at its bus address") {
  TopologyDesc d = platform();
  // A host bridge whose bus addresses differ from CPU addresses: bus_offset != 0.
  d.hostBridges[0].params.pref.busBase = BusAddr(0x1000000000ull);
  Fixture f(d);
  PciDev& gpu0 = f.dev("gpu0");
  REQUIRE(f.p2p.pciP2pdmaAddResource(gpu0, 2, 0, 16 * kMiB) == Errno::Ok);
  const PciP2pdma* st = gpu0.p2pdma();
  REQUIRE(st);
  REQUIRE(st->pool.size() == 1);
  CHECK(st->pool[0].size == 240 * kMiB);
  CHECK(st->pool[0].bus == gpu0.bar(2).bus + 16 * kMiB);
  CHECK(st->pool[0].cpu == gpu0.bar(2).cpu + 16 * kMiB);
  const P2pdmaProvider* prov = f.p2p.pciP2pdmaProvider(gpu0, 2);
  REQUIRE(prov);
  CHECK(prov->owner == &gpu0);
  CHECK(prov->busOffset == gpu0.bar(2).bus.value() - gpu0.bar(2).cpu.value());
  CHECK(prov->busOffset == 0x1000000000ull - 0x4000000000ull);
}

TEST_CASE("pci_p2pmem_find_many only finds published memory") {
  Fixture f(platform());
  REQUIRE(f.p2p.pciP2pdmaAddResource(f.dev("gpu1"), 2, 0, 0) == Errno::Ok);
  CHECK(f.p2p.pciP2pmemFindMany({&f.dev("gpu0")}) == nullptr);
  f.p2p.pciP2pmemPublish(f.dev("gpu1"), true);
  CHECK(f.p2p.pciP2pmemFindMany({&f.dev("gpu0")}) == &f.dev("gpu1"));
  CHECK(f.p2p.pciP2pmemFind(f.dev("gpu0")) == &f.dev("gpu1"));
}

TEST_CASE("pci_p2pmem_find_many picks among the closest providers only") {
  std::set<std::string> picked;
  for (std::uint64_t seed = 1; seed <= 40; ++seed) {
    Fixture f(platform(), CpuIdentity{}, seed);
    for (const char* p : {"gpu1", "nic0.f0", "nvme0", "gpu2"}) {
      REQUIRE(f.p2p.pciP2pdmaAddResource(f.dev(p), 0, 0, 0) == Errno::Ok);
      f.p2p.pciP2pmemPublish(f.dev(p), true);
    }
    PciDev* got = f.p2p.pciP2pmemFindMany({&f.dev("gpu0")});
    REQUIRE(got);
    picked.insert(got->name());
  }
  // gpu1 and nic0.f0 are at distance 4; nvme0 at 6, gpu2 at 6 through the host bridge.
  CHECK(picked == std::set<std::string>{"gpu1", "nic0.f0"});
}

TEST_CASE("pci_p2pmem_find_many picks the same provider for the same seed") {
  auto pick = [](std::uint64_t seed) {
    Fixture f(platform(), CpuIdentity{}, seed);
    for (const char* p : {"gpu1", "nic0.f0"}) {
      REQUIRE(f.p2p.pciP2pdmaAddResource(f.dev(p), 0, 0, 0) == Errno::Ok);
      f.p2p.pciP2pmemPublish(f.dev(p), true);
    }
    std::vector<std::string> seq;
    for (int i = 0; i < 8; ++i) seq.push_back(f.p2p.pciP2pmemFindMany({&f.dev("gpu0")})->name());
    return seq;
  };
  CHECK(pick(7) == pick(7));
}

TEST_CASE("pci_p2pmem_find_many skips providers that cannot reach every client") {
  Fixture f(withHostBridgeIds(0x8086, 0x1234, 0x8086, 0x1234));
  REQUIRE(f.p2p.pciP2pdmaAddResource(f.dev("gpu2"), 2, 0, 0) == Errno::Ok);
  f.p2p.pciP2pmemPublish(f.dev("gpu2"), true);
  CHECK(f.p2p.pciP2pmemFindMany({&f.dev("gpu0")}) == nullptr);
}

TEST_CASE("pci_alloc_p2pmem hands out pages whose bus address is the BAR bus address plus the offset") {
  TopologyDesc d = platform();
  d.hostBridges[0].params.pref.busBase = BusAddr(0x1000000000ull);
  Fixture f(d);
  PciDev& gpu0 = f.dev("gpu0");
  REQUIRE(f.p2p.pciP2pdmaAddResource(gpu0, 2, 2 * kMiB, 4 * kMiB) == Errno::Ok);
  auto a = f.p2p.pciAllocP2pmem(gpu0, 4096);
  auto b = f.p2p.pciAllocP2pmem(gpu0, 10000);  // rounded up to 3 pages
  REQUIRE(a);
  REQUIRE(b);
  CHECK(*a == gpu0.bar(2).cpu + 4 * kMiB);
  CHECK(*b == *a + 4096);
  CHECK(f.p2p.pciP2pmemVirtToBus(gpu0, *b) == gpu0.bar(2).bus + 4 * kMiB + 4096);
  CHECK(f.p2p.pciP2pmemAvailable(gpu0) == 2 * kMiB - 4 * 4096);
  CHECK(f.p2p.pciP2pmemVirtToBus(gpu0, gpu0.bar(2).cpu) == BusAddr(0));  // outside the pool
}

TEST_CASE("pci_alloc_p2pmem fails when the pool is exhausted and succeeds again after a free") {
  Fixture f(platform());
  PciDev& nic = f.dev("nic0.f0");
  CHECK_FALSE(f.p2p.pciAllocP2pmem(nic, 4096));  // no p2pdma state yet
  REQUIRE(f.p2p.pciP2pdmaAddResource(nic, 0, 0, 0) == Errno::Ok);
  auto all = f.p2p.pciAllocP2pmem(nic, 1 * kMiB);
  REQUIRE(all);
  CHECK_FALSE(f.p2p.pciAllocP2pmem(nic, 4096));
  f.p2p.pciFreeP2pmem(nic, *all + 8192, 4096);
  auto again = f.p2p.pciAllocP2pmem(nic, 4096);
  REQUIRE(again);
  CHECK(*again == *all + 8192);
  CHECK(f.p2p.stats().counterValue("p2pmem_alloc_failures") == 2);
}

// ---- the RFC's pci_test_p2p / device_test_p2p --------------------------------------------

TEST_CASE("pci_test_p2p is true for two devices below one switch (unlike the posted patch)") {
  Fixture f(platform());
  CHECK(pciTestP2p(f.dev("gpu0"), f.dev("gpu1")));
  CHECK(deviceTestP2p(f.dev("gpu0"), f.dev("gpu1")));
}

TEST_CASE("pci_test_p2p is false for devices under different root ports") {
  Fixture f(platform());
  CHECK_FALSE(pciTestP2p(f.dev("gpu0"), f.dev("gpu2")));
  CHECK_FALSE(deviceTestP2p(f.dev("gpu0"), f.dev("gpu2")));
}

TEST_CASE("pci_test_p2p is false when ACS redirects on the path") {
  TopologyDesc d = platform();
  setPortAcs(d, "sw0.dp0", kPciAcsRr);
  Fixture f(d);
  CHECK_FALSE(pciTestP2p(f.dev("gpu0"), f.dev("gpu1")));
}

TEST_CASE("pci_test_p2p walks parents from a device whose parent is a PCI function") {
  Fixture f(platform());
  Device drm("card0", &f.dev("gpu0"));
  Device render("renderD128", &drm);
  CHECK(pciTestP2p(render, f.dev("gpu1")));
  CHECK(deviceTestP2p(f.dev("nic0.f1"), render));
}

TEST_CASE("pci_test_p2p is false for a device without a PCI ancestor") {
  Fixture f(platform());
  Device platformDev("soc-dma");
  Device child("soc-dma-chan0", &platformDev);
  CHECK_FALSE(pciTestP2p(child, f.dev("gpu0")));
  CHECK_FALSE(deviceTestP2p(f.dev("gpu0"), platformDev));
}

TEST_CASE("the provider of a physical address is found only inside a published range") {
  Fixture f(platform());
  PciDev& gpu1 = f.dev("gpu1");
  REQUIRE(f.p2p.pciP2pdmaAddResource(gpu1, 2, 64 * kMiB, 64 * kMiB) == Errno::Ok);
  const P2pdmaProvider* prov = f.p2p.providerOfPhys(gpu1.bar(2).cpu + 64 * kMiB + 123);
  REQUIRE(prov);
  CHECK(prov == f.p2p.pciP2pdmaProvider(gpu1, 2));
  CHECK(f.p2p.providerOfPhys(gpu1.bar(2).cpu) == nullptr);  // below the published offset
  CHECK(f.p2p.providerOfPhys(gpu1.bar(0).cpu) == nullptr);  // BAR 0 not added
}
