#include <catch2/catch.hpp>

#include "models/pcie/enumeration.h"
#include "tests/unit/pcie/topology_fixtures.h"

using namespace hmmsim;
using namespace hmmsim::test;

namespace {

Bdf bdf(std::uint8_t bus, std::uint8_t dev, std::uint8_t fn, std::uint16_t domain = 0) {
  return Bdf{domain, bus, dev, fn};
}

// One root port, one switch with the given endpoints below its downstream ports.
TopologyDesc oneSwitch(std::vector<EndpointDesc> eps) {
  TopologyDesc d;
  HostBridgeDesc hb = hostBridge("hb0", 0, 0xc0000000ull, 0x4000000000ull);
  hb.rootPorts = {port("rp0", 1)};
  d.hostBridges = {hb};
  d.switches = {switchOf("sw0", static_cast<unsigned>(eps.size()))};
  d.links.push_back(link("rp0", "sw0"));
  for (std::size_t i = 0; i < eps.size(); ++i)
    d.links.push_back(link("sw0.dp" + std::to_string(i), eps[i].name));
  d.endpoints = std::move(eps);
  return d;
}

}  // namespace

TEST_CASE("bus numbers are assigned depth-first in devfn order") {
  auto topo = buildTopology(platform());
  auto rid = [&](const char* n) { return topo->findDev(n)->bdf(); };
  CHECK(rid("hb0.host") == bdf(0, 0, 0));
  CHECK(rid("rp0") == bdf(0, 1, 0));
  CHECK(rid("rp1") == bdf(0, 2, 0));
  CHECK(rid("sw0") == bdf(1, 0, 0));
  CHECK(rid("sw0.dp0") == bdf(2, 0, 0));
  CHECK(rid("sw0.dp3") == bdf(2, 3, 0));
  CHECK(rid("gpu0") == bdf(3, 0, 0));
  CHECK(rid("gpu1") == bdf(4, 0, 0));
  CHECK(rid("nic0.f0") == bdf(5, 0, 0));
  CHECK(rid("nic0.f1") == bdf(5, 0, 1));
  CHECK(rid("sw1") == bdf(6, 0, 0));
  CHECK(rid("sw1.dp0") == bdf(7, 0, 0));
  CHECK(rid("nvme0") == bdf(8, 0, 0));
  CHECK(rid("gpu2") == bdf(9, 0, 0));
}

TEST_CASE("a bridge's subordinate bus number covers its whole subtree") {
  auto topo = buildTopology(platform());
  const PciDev& rp0 = *topo->findDev("rp0");
  CHECK(rp0.primaryBus() == 0);
  CHECK(rp0.secondaryBus() == 1);
  CHECK(rp0.subordinateBus() == 8);
  const PciDev& dp3 = *topo->findDev("sw0.dp3");
  CHECK(dp3.secondaryBus() == 6);
  CHECK(dp3.subordinateBus() == 8);
  const PciDev& rp1 = *topo->findDev("rp1");
  CHECK(rp1.secondaryBus() == 9);
  CHECK(rp1.subordinateBus() == 9);
}

TEST_CASE("a second host bridge numbers from its own root bus") {
  auto topo = buildTopology(platform());
  CHECK(topo->findDev("rp2")->bdf() == bdf(0x80, 1, 0));
  CHECK(topo->findDev("gpu3")->bdf() == bdf(0x81, 0, 0));
}

TEST_CASE("host bridges whose bus ranges overlap in one domain are an error") {
  TopologyDesc d = platform();
  d.hostBridges[1].params.rootBus = 5;  // hb0 uses buses 0..9
  CHECK_THROWS_WITH(buildTopology(d), Catch::Contains("overlapping bus numbers"));
}

TEST_CASE("every BAR is aligned to its size") {
  auto topo = buildTopology(platform());
  for (const auto& d : topo->functions()) {
    for (int i = 0; i < kPciNumBars; ++i) {
      const PciBar& b = d->bar(i);
      if (!b.isMem()) continue;
      INFO(d->name() << " BAR " << i);
      REQUIRE(b.assigned);
      CHECK(b.bus.isAligned(b.size));
    }
  }
}

TEST_CASE("64-bit prefetchable BARs go to the prefetchable window, others below 4 GiB") {
  auto topo = buildTopology(platform());
  const PciDev& gpu0 = *topo->findDev("gpu0");
  CHECK(gpu0.bar(2).bus.value() >= 0x4000000000ull);
  CHECK(gpu0.bar(0).bus.value() + gpu0.bar(0).size <= (4ull << 30));
  const PciDev& dp0 = *topo->findDev("sw0.dp0");
  CHECK(dp0.prefWindow().contains(gpu0.bar(2).bus));
  CHECK(dp0.memWindow().contains(gpu0.bar(0).bus));
  // Every window of a bridge lies inside the window of the bridge above it.
  const PciDev& rp0 = *topo->findDev("rp0");
  const PciDev& usp = *topo->findDev("sw0");
  for (const PciDev* inner : {&dp0, &usp}) {
    CHECK(rp0.prefWindow().contains(inner->prefWindow().base));
    CHECK(inner->prefWindow().end() <= rp0.prefWindow().end());
  }
}

TEST_CASE("bridge windows have 1 MiB granularity") {
  auto topo = buildTopology(platform());
  const PciDev& dp = *topo->findDev("sw1.dp0");  // holds only nvme0's 16 KiB BAR
  CHECK(dp.memWindow().enabled);
  CHECK(dp.memWindow().size == 1 * kMiB);
  CHECK(dp.memWindow().base.isAligned(1 * kMiB));
  CHECK_FALSE(dp.prefWindow().enabled);
}

TEST_CASE("resources are packed largest first") {
  TopologyDesc d = oneSwitch({endpoint("a", {mem32(0, 1 * kMiB)}), endpoint("b", {mem32(0, 4 * kMiB)}),
                              endpoint("c", {mem32(0, 2 * kMiB)})});
  auto topo = buildTopology(d);
  BusAddr a = topo->findDev("a")->bar(0).bus, b = topo->findDev("b")->bar(0).bus,
          c = topo->findDev("c")->bar(0).bus;
  CHECK(b < c);
  CHECK(c < a);
  CHECK(c - b == 4 * kMiB);
  CHECK(a - c == 2 * kMiB);
  CHECK(topo->findDev("rp0")->memWindow().size == 7 * kMiB);
}

TEST_CASE("CPU addresses of BARs follow the host bridge window translation") {
  TopologyDesc d = platform();
  d.hostBridges[0].params.mem.busBase = BusAddr(0x80000000ull);  // CPU 0xc0000000 -> bus 0x80000000
  auto topo = buildTopology(d);
  const PciBar& b = topo->findDev("gpu0")->bar(0);
  CHECK(b.bus.value() >= 0x80000000ull);
  CHECK(b.cpu.value() - b.bus.value() == 0x40000000ull);
}

TEST_CASE("a BAR that cannot fit is an error naming the BAR") {
  TopologyDesc d = platform();
  d.endpoints[1].functions[0].bars[1].size = 128 * kGiB;  // gpu1 BAR 2, window is 64 GiB
  try {
    buildTopology(d);
    FAIL("expected an error");
  } catch (const ConfigError& e) {
    CHECK_THAT(e.what(), Catch::Contains("BAR 2 of gpu1 (128GiB, 64-bit prefetchable) does not fit"));
  }
}

TEST_CASE("the Enumerator reports the failing BAR and leaves nothing assigned") {
  TopologyDesc d =
      oneSwitch({endpoint("small", {mem32(0, 16 * kMiB)}), endpoint("big", {mem32(0, 1 * kGiB)})});
  d.hostBridges[0].params.mem = HostWindow{Pa(0x80000000ull), BusAddr(0x80000000ull), 2 * kGiB, false};
  d.endpoints[1].functions[0].bars[0].resizable = {1 * kGiB, 2 * kGiB};
  auto topo = buildTopology(d);
  PciDev& big = *topo->findDev("big");
  Enumerator e(*topo);
  e.releaseAll();
  REQUIRE(big.resizeBar(0, 2 * kGiB) == Errno::Ok);  // 2 GiB + 16 MiB > the 2 GiB aperture
  auto err = e.assignResources();
  REQUIRE(err);
  CHECK(err->device == "big");
  CHECK(err->bar == 0);
  CHECK_FALSE(topo->findDev("small")->bar(0).assigned);
  CHECK_FALSE(topo->findDev("rp0")->memWindow().enabled);
}

TEST_CASE("resizing an assigned BAR is refused until it is released") {
  TopologyDesc d = oneSwitch({endpoint("gpu", {mem64pref(0, 256 * kMiB)})});
  d.endpoints[0].functions[0].bars[0].resizable = {256 * kMiB, 1 * kGiB};
  auto topo = buildTopology(d);
  CHECK(topo->findDev("gpu")->resizeBar(0, 1 * kGiB) == Errno::Busy);
  CHECK(topo->findDev("gpu")->bar(0).size == 256 * kMiB);
}

TEST_CASE("a resized BAR is placed at its new size after re-enumeration") {
  TopologyDesc d = oneSwitch({endpoint("gpu", {mem64pref(0, 256 * kMiB)})});
  d.endpoints[0].functions[0].bars[0].resizable = {256 * kMiB, 1 * kGiB, 8 * kGiB};
  auto topo = buildTopology(d);
  PciDev& gpu = *topo->findDev("gpu");
  Enumerator e(*topo);
  e.releaseAll();
  REQUIRE(gpu.resizeBar(0, 8 * kGiB) == Errno::Ok);
  REQUIRE_FALSE(e.assignResources());
  CHECK(gpu.bar(0).size == 8 * kGiB);
  CHECK(gpu.bar(0).bus.isAligned(8 * kGiB));
  CHECK(topo->findDev("rp0")->prefWindow().size == 8 * kGiB);
}

TEST_CASE("a resize to a size the BAR does not support is rejected") {
  TopologyDesc d = oneSwitch({endpoint("gpu", {mem64pref(0, 256 * kMiB)})});
  d.endpoints[0].functions[0].bars[0].resizable = {256 * kMiB, 1 * kGiB};
  auto topo = buildTopology(d);
  Enumerator e(*topo);
  e.releaseAll();
  CHECK(topo->findDev("gpu")->resizeBar(0, 512 * kMiB) == Errno::Inval);
  CHECK(topo->findDev("gpu")->bar(0).size == 256 * kMiB);
}
