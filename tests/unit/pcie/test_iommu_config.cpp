// Loading the "iommu:" scenario section.
#include <catch2/catch.hpp>

#include "models/pcie/iommu_config.h"

using namespace hmmsim;

TEST_CASE("an iommu section sets the parameters it names and keeps the defaults of the rest") {
  auto n = ConfigNode::loadString(
      "mode: passthrough\ninvalidation: lazy\niotlb: {entries_4k: 128, ways_4k: 4}\n"
      "walk_access_latency: 100ns\npage_walkers: 2\nflush_queue_timeout: 1ms\nforce_dac: true\n",
      "s.yaml");
  IommuConfig c = loadIommuConfig(n);
  CHECK(c.iommu.mode == IommuMode::Passthrough);
  CHECK(c.iommu.invalidation == IommuInvalidation::Lazy);
  CHECK(c.iommu.iotlb.entries4k == 128);
  CHECK(c.iommu.iotlb.ways4k == 4);
  CHECK(c.iommu.iotlb.entries2m == IotlbParams{}.entries2m);
  CHECK(c.iommu.walkAccessLatencyPs == 100'000);
  CHECK(c.iommu.pageWalkers == 2);
  CHECK(c.iommu.iotlbHitLatencyPs == IommuParams{}.iotlbHitLatencyPs);
  CHECK(c.dma.flushQueueTimeoutPs == 1'000'000'000);
  CHECK(c.dma.forceDac);
}

TEST_CASE("an unknown iommu key is rejected with the nearest valid key") {
  auto n = ConfigNode::loadString("page_walker: 3\n", "s.yaml");
  try {
    loadIommuConfig(n);
    FAIL("no error");
  } catch (const ConfigError& e) {
    CHECK(std::string(e.what()).find("page_walkers") != std::string::npos);
    CHECK(e.line() == 1);
  }
}

TEST_CASE("IOTLB ways that do not divide the entries are rejected at the iotlb key") {
  auto n = ConfigNode::loadString("mode: translate\niotlb:\n  entries_4k: 64\n  ways_4k: 6\n", "s.yaml");
  try {
    loadIommuConfig(n);
    FAIL("no error");
  } catch (const ConfigError& e) {
    CHECK(std::string(e.what()).find("ways_4k") != std::string::npos);
    CHECK(e.line() == 3);
  }
}

TEST_CASE("an invalid iommu mode names the choices") {
  auto n = ConfigNode::loadString("mode: translat\n", "s.yaml");
  CHECK_THROWS_WITH(loadIommuConfig(n), Catch::Contains("translate"));
}
