// DmaMapping's p2pdma entry points: the map type decides between the bus address and the IOMMU.
#include <catch2/catch.hpp>

#include "models/pcie/dma_mapping.h"
#include "models/pcie/p2pdma.h"

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
  DmaAddr a = f.dma.dmaMapP2p(f.devA, Pa(0x38'0000'0000), 0x10000, DmaDir::ToDevice, P2pMapType::ThruHostBridge,
                              0x1'0000'0000);
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
