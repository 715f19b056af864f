// The IOMMU and DMA layer on topology's routing: reserved host-bridge windows and the root
// complex's address resolution through the IOMMU.
#include <catch2/catch.hpp>

#include "models/pcie/iommu_topology.h"
#include "tests/unit/pcie/topology_fixtures.h"

using namespace hmmsim;
using namespace hmmsim::test;

namespace {
struct Platform {
  explicit Platform(IommuMode mode = IommuMode::Translate)
      : topo(buildTopology(platform())),
        router(*topo, "top.route"),
        iommu("top.iommu", params(mode)),
        dma("top.dma", iommu, DmaMappingParams{}) {
    router.setRcAddressResolver(iommuRcAddressResolver(iommu, *topo));
  }
  static IommuParams params(IommuMode mode) {
    IommuParams p;
    p.mode = mode;
    return p;
  }
  PciDev& dev(const std::string& n) { return *topo->findDev(n); }
  void attach(const std::string& n) {
    REQUIRE(dma.attachDevice(dev(n), pciDmaDeviceParams(dev(n), *topo)) == Errno::Ok);
  }
  Route read(const std::string& from, std::uint64_t addr) {
    return router.routeRequest(dev(from), addr, TlpRouteAttrs{});
  }
  Route write(const std::string& from, std::uint64_t addr) {
    TlpRouteAttrs a;
    a.write = true;
    return router.routeRequest(dev(from), addr, a);
  }

  std::unique_ptr<Topology> topo;
  Router router;
  Iommu iommu;
  DmaMapping dma;
};
}  // namespace

TEST_CASE("a PCI function's DMA parameters carry its Bdf and reserve its host bridge's windows") {
  Platform p;
  DmaDeviceParams d = pciDmaDeviceParams(p.dev("gpu0"), *p.topo);
  CHECK(d.bdf == p.dev("gpu0").bdf());
  REQUIRE(d.reservedWindows.size() == 2);
  CHECK(d.reservedWindows[0].start == BusAddr(0xc000'0000));
  CHECK(d.reservedWindows[0].size == 512 * kMiB);
  CHECK(d.reservedWindows[1].start == BusAddr(0x40'0000'0000));
  CHECK(d.reservedWindows[1].size == 64 * kGiB);
}

TEST_CASE("DMA through an IOVA from dma_map_page reaches system memory at the mapped page") {
  Platform p;
  p.attach("gpu0");
  DmaAddr a = p.dma.dmaMapPage(p.dev("gpu0"), Pa(0x1234'5000), kPageSize, DmaDir::Bidirectional);
  Route r = p.write("gpu0", a.value() + 0x10);
  REQUIRE(r.ok());
  CHECK(r.end == RouteEnd::SystemMemory);
  CHECK(r.targetAddr == 0x1234'5010);
}

TEST_CASE("a peer BAR mapped with dma_map_resource is reached through the root complex") {
  Platform p;
  p.attach("gpu0");
  const Pa peer = p.dev("gpu2").bar(2).cpu;
  DmaAddr a = p.dma.dmaMapResource(p.dev("gpu0"), peer, kPageSize, DmaDir::Bidirectional);
  REQUIRE_FALSE(p.dma.dmaMappingError(p.dev("gpu0"), a));
  Route r = p.write("gpu0", a.value());
  REQUIRE(r.ok());
  CHECK(r.viaRootComplex);
  REQUIRE(r.target);
  CHECK(r.target == &p.dev("gpu2"));
  CHECK(r.targetBar == 2);
}

TEST_CASE("an unmapped IOVA is refused at the root complex with IommuFault") {
  Platform p;
  p.attach("gpu0");
  CHECK(p.read("gpu0", 0x1000'0000).status == RouteStatus::IommuFault);
}

TEST_CASE("a write through a DMA_TO_DEVICE mapping is refused at the root complex") {
  Platform p;
  p.attach("gpu0");
  DmaAddr a = p.dma.dmaMapPage(p.dev("gpu0"), Pa(0x1234'5000), kPageSize, DmaDir::ToDevice);
  CHECK(p.read("gpu0", a.value()).ok());
  CHECK(p.write("gpu0", a.value()).status == RouteStatus::IommuFault);
}

TEST_CASE("a device without a domain is refused at the root complex when the IOMMU translates") {
  Platform p;
  CHECK(p.read("gpu2", 0x1000'0000).status == RouteStatus::IommuFault);
}

TEST_CASE("in passthrough a bus address inside a host window resolves to its CPU address") {
  Platform p(IommuMode::Passthrough);
  p.attach("gpu0");
  const PciBar& bar = p.dev("gpu2").bar(2);
  Route r = p.write("gpu0", bar.bus.value());
  REQUIRE(r.ok());
  CHECK(r.target == &p.dev("gpu2"));
  Route mem = p.write("gpu0", 0x1234'5000);
  REQUIRE(mem.ok());
  CHECK(mem.end == RouteEnd::SystemMemory);
  CHECK(mem.targetAddr == 0x1234'5000);
}

// ---- IOMMU groups (pci_device_group) ----

namespace {
unsigned groupOf(const std::map<std::uint64_t, unsigned>& g, const Topology& t, const std::string& n) {
  return g.at(t.findDev(n)->id().value());
}
}  // namespace

TEST_CASE("without ACS every function below a root port shares one IOMMU group") {
  auto topo = buildTopology(platform());
  auto g = pciDeviceGroups(*topo);
  const unsigned rp0 = groupOf(g, *topo, "rp0");
  for (const char* n : {"sw0", "sw0.dp0", "gpu0", "gpu1", "nic0.f0", "nic0.f1", "sw1", "nvme0"})
    CHECK(groupOf(g, *topo, n) == rp0);
  CHECK(groupOf(g, *topo, "gpu2") != rp0);
  CHECK(groupOf(g, *topo, "gpu3") != rp0);
  CHECK(groupOf(g, *topo, "gpu2") != groupOf(g, *topo, "gpu3"));
}

TEST_CASE("ACS on every port isolates endpoints, but a multi-function device without ACS stays one group") {
  TopologyDesc d = platform();
  for (const char* port : {"rp0", "rp1", "rp2", "sw0.dp0", "sw0.dp1", "sw0.dp2", "sw0.dp3", "sw1.dp0"})
    setPortAcs(d, port, kReqAcsFlags);
  auto topo = buildTopology(d);
  auto g = pciDeviceGroups(*topo);
  CHECK(groupOf(g, *topo, "gpu0") != groupOf(g, *topo, "gpu1"));
  CHECK(groupOf(g, *topo, "gpu0") != groupOf(g, *topo, "rp0"));
  CHECK(groupOf(g, *topo, "nvme0") != groupOf(g, *topo, "gpu1"));
  CHECK(groupOf(g, *topo, "nic0.f0") == groupOf(g, *topo, "nic0.f1"));
  CHECK(groupOf(g, *topo, "nic0.f0") != groupOf(g, *topo, "gpu0"));
}

TEST_CASE("attachPciEndpoints puts the endpoints of one IOMMU group in one domain") {
  Platform p;
  REQUIRE(attachPciEndpoints(p.dma, *p.topo) == Errno::Ok);
  CHECK(p.dma.domainOf(p.dev("gpu0")) == p.dma.domainOf(p.dev("gpu1")));
  CHECK(p.dma.domainOf(p.dev("gpu0")) == p.dma.domainOf(p.dev("nvme0")));
  CHECK(p.dma.domainOf(p.dev("gpu0")) != p.dma.domainOf(p.dev("gpu2")));
  CHECK(p.dma.domainOf(p.dev("gpu2")) != p.dma.domainOf(p.dev("gpu3")));
  // gpu3 sits behind the other host bridge: its IOVA space reserves hb1's windows.
  DmaAddr a = p.dma.dmaMapPage(p.dev("gpu3"), Pa(0x1000'0000), kPageSize, DmaDir::ToDevice);
  CHECK((a.value() < 0xa000'0000 || a.value() >= 0xa000'0000 + 512 * kMiB));
}
