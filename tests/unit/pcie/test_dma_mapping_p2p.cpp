// DmaMapping's p2pdma entry points: the map type decides between the bus address and the IOMMU.
#include <catch2/catch.hpp>

#include "models/pcie/dma_mapping.h"
#include "models/pcie/iommu_topology.h"
#include "models/pcie/p2pdma.h"
#include "tests/unit/pcie/topology_fixtures.h"

using namespace hmmsim;

namespace {
constexpr Bdf kBdfA{0, 1, 0, 0};

struct Fixture {
  Fixture() : iommu("top.iommu", IommuParams{}), dma("top.dma", iommu, DmaMappingParams{}), devA("nic0") {
    DmaDeviceParams p;
    p.bdf = kBdfA;
    p.reservedWindows = {IovaWindow{BusAddr(0xc000'0000), 0x2000'0000}};
    REQUIRE(dma.attachDevice(devA, p) == Errno::Ok);
  }
  Iommu iommu;
  DmaMapping dma;
  Device devA;
};
}  // namespace

TEST_CASE("P2pMapType::BusAddr mappings bypass the IOMMU and return the PCI bus address") {
  Fixture f;
  const std::uint64_t busOffset = 0x1'0000'0000;  // bus address = CPU physical + 4 GiB
  DmaAddr a = f.dma.dmaMapP2p(f.devA, Pa(0x38'0000'0000), 0x10000, DmaDir::Bidirectional, P2pMapType::BusAddr,
                              busOffset);
  CHECK(a == DmaAddr(0x39'0000'0000));
  CHECK(f.dma.domainOf(f.devA)->pageTable().mappedBytes() == 0);
  CHECK(f.dma.iovaDomainOf(f.devA)->allocatedCount() == 0);
  CHECK(f.dma.dmaUnmapP2p(f.devA, a, 0x10000, DmaDir::Bidirectional) == Errno::Ok);
}

TEST_CASE("P2pMapType::ThruHostBridge mappings go through the IOMMU") {
  Fixture f;
  DmaAddr a = f.dma.dmaMapP2p(f.devA, Pa(0x38'0000'0000), 0x10000, DmaDir::ToDevice,
                              P2pMapType::ThruHostBridge, 0x1'0000'0000);
  REQUIRE_FALSE(f.dma.dmaMappingError(f.devA, a));
  CHECK(f.iommu.translate(kBdfA, Iova(a.value()), false, 0).pa == Pa(0x38'0000'0000));
  CHECK(f.dma.dmaUnmapP2p(f.devA, a, 0x10000, DmaDir::ToDevice) == Errno::Ok);
  CHECK_FALSE(f.iommu.translate(kBdfA, Iova(a.value()), false, 0).ok);
}

TEST_CASE("P2pMapType::NotSupported mappings fail") {
  Fixture f;
  CHECK(f.dma.dmaMappingError(f.devA, f.dma.dmaMapP2p(f.devA, Pa(0x38'0000'0000), 0x1000, DmaDir::ToDevice,
                                                      P2pMapType::NotSupported, 0)));
  CHECK(f.dma.stats().counterValue("map_errors") == 1);
}

// ---- end to end on the reference platform: p2pdma map type, DMA API, routing ----

namespace {
struct P2pPlatform {
  P2pPlatform()
      : topo(buildTopology(test::platform())),
        router(*topo, "top.route"),
        iommu("top.iommu", IommuParams{}),
        dma("top.dma", iommu, DmaMappingParams{}),
        p2pdma(*topo, P2pdmaParams{}, Rng(1), "top.p2pdma") {
    router.setRcAddressResolver(iommuRcAddressResolver(iommu, *topo));
    for (const char* n : {"gpu0", "gpu2"})
      REQUIRE(dma.attachDevice(dev(n), pciDmaDeviceParams(dev(n), *topo)) == Errno::Ok);
    REQUIRE(p2pdma.pciP2pdmaAddResource(dev("gpu1"), 2, 0, 0) == Errno::Ok);
    pa = *p2pdma.pciAllocP2pmem(dev("gpu1"), kPageSize);
  }
  PciDev& dev(const std::string& n) { return *topo->findDev(n); }
  Route write(const std::string& from, DmaAddr a) {
    TlpRouteAttrs at;
    at.write = true;
    return router.routeRequest(dev(from), a.value(), at);
  }
  std::unique_ptr<Topology> topo;
  Router router;
  Iommu iommu;
  DmaMapping dma;
  P2pdma p2pdma;
  Pa pa;
};
}  // namespace

TEST_CASE("a peer under the same switch gets the bus address and the write turns around in the switch") {
  P2pPlatform p;
  P2pMapType type = P2pMapType::Unknown;
  DmaAddr a = p.dma.dmaMapPageP2pdma(p.dev("gpu0"), p.pa, kPageSize, DmaDir::Bidirectional, p.p2pdma, &type);
  CHECK(type == P2pMapType::BusAddr);
  CHECK(a.value() == p.p2pdma.pciP2pmemVirtToBus(p.dev("gpu1"), p.pa).value());
  CHECK(p.dma.domainOf(p.dev("gpu0"))->pageTable().mappedBytes() == 0);
  Route r = p.write("gpu0", a);
  REQUIRE(r.ok());
  CHECK(r.target == &p.dev("gpu1"));
  CHECK_FALSE(r.viaRootComplex);
  CHECK(p.dma.dmaUnmapP2p(p.dev("gpu0"), a, kPageSize, DmaDir::Bidirectional) == Errno::Ok);
}

TEST_CASE("a peer behind another root port goes through the host bridge with an IOVA the IOMMU translates") {
  P2pPlatform p;
  P2pMapType type = P2pMapType::Unknown;
  DmaAddr a = p.dma.dmaMapPageP2pdma(p.dev("gpu2"), p.pa, kPageSize, DmaDir::Bidirectional, p.p2pdma, &type);
  CHECK(type == P2pMapType::ThruHostBridge);
  REQUIRE_FALSE(p.dma.dmaMappingError(p.dev("gpu2"), a));
  CHECK(a.value() != p.p2pdma.pciP2pmemVirtToBus(p.dev("gpu1"), p.pa).value());
  Route r = p.write("gpu2", a);
  REQUIRE(r.ok());
  CHECK(r.viaRootComplex);
  CHECK(r.target == &p.dev("gpu1"));
  REQUIRE(p.dma.dmaUnmapP2p(p.dev("gpu2"), a, kPageSize, DmaDir::Bidirectional) == Errno::Ok);
  CHECK(p.write("gpu2", a).status == RouteStatus::IommuFault);
}

TEST_CASE("memory that is not p2pdma memory maps as a normal page") {
  P2pPlatform p;
  P2pMapType type = P2pMapType::Unknown;
  DmaAddr a =
      p.dma.dmaMapPageP2pdma(p.dev("gpu0"), Pa(0x1234'5000), kPageSize, DmaDir::ToDevice, p.p2pdma, &type);
  CHECK(type == P2pMapType::None);
  CHECK(p.iommu.translate(p.dev("gpu0").bdf(), Iova(a.value()), false, 0).pa == Pa(0x1234'5000));
}
