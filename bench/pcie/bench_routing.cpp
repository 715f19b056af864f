// Cost of the pure routing and p2pdma decisions (helper "topology"): what a fabric pays per DMA
// burst if it does not cache routes, and what a DMA map pays for a map-type lookup.
#include <benchmark/benchmark.h>

#include "models/pcie/p2pdma.h"
#include "models/pcie/routing.h"
#include "tests/unit/pcie/topology_fixtures.h"

using namespace hmmsim;
using namespace hmmsim::test;

namespace {

void BM_RoutePeerTurnaround(benchmark::State& state) {
  auto topo = buildTopology(platform());
  Router router(*topo, "bench.route");
  const PciDev& gpu0 = *topo->findDev("gpu0");
  const std::uint64_t target = topo->findDev("gpu1")->bar(2).bus.value();
  TlpRouteAttrs a;
  a.write = true;
  for (auto _ : state) benchmark::DoNotOptimize(router.routeRequest(gpu0, target, a));
}
BENCHMARK(BM_RoutePeerTurnaround);

void BM_RouteAcsRedirectThroughRc(benchmark::State& state) {
  TopologyDesc d = platform();
  setPortAcs(d, "sw0.dp0", kPciAcsRr | kPciAcsCr | kPciAcsUf);
  setPortAcs(d, "rp0", kPciAcsUf);
  auto topo = buildTopology(d);
  Router router(*topo, "bench.route");
  const PciDev& gpu0 = *topo->findDev("gpu0");
  const std::uint64_t target = topo->findDev("gpu1")->bar(2).bus.value();
  for (auto _ : state) benchmark::DoNotOptimize(router.routeRequest(gpu0, target, TlpRouteAttrs{}));
}
BENCHMARK(BM_RouteAcsRedirectThroughRc);

void BM_RouteToSystemMemory(benchmark::State& state) {
  auto topo = buildTopology(platform());
  Router router(*topo, "bench.route");
  const PciDev& nvme = *topo->findDev("nvme0");
  for (auto _ : state) benchmark::DoNotOptimize(router.routeRequest(nvme, 0x10000000, TlpRouteAttrs{}));
}
BENCHMARK(BM_RouteToSystemMemory);

void BM_CalcMapTypeAndDist(benchmark::State& state) {
  auto topo = buildTopology(platform());
  P2pdma p2p(*topo, P2pdmaParams{}, Rng(1), "bench.p2pdma");
  PciDev& gpu0 = *topo->findDev("gpu0");
  PciDev& nvme = *topo->findDev("nvme0");
  int dist = 0;
  for (auto _ : state) benchmark::DoNotOptimize(p2p.calcMapTypeAndDist(gpu0, nvme, &dist, false));
}
BENCHMARK(BM_CalcMapTypeAndDist);

void BM_P2pdmaMapTypeCached(benchmark::State& state) {
  auto topo = buildTopology(platform());
  P2pdma p2p(*topo, P2pdmaParams{}, Rng(1), "bench.p2pdma");
  PciDev& gpu1 = *topo->findDev("gpu1");
  p2p.pciP2pdmaAddResource(gpu1, 2, 0, 0);
  const P2pdmaProvider& prov = *p2p.pciP2pdmaProvider(gpu1, 2);
  PciDev& gpu0 = *topo->findDev("gpu0");
  for (auto _ : state) benchmark::DoNotOptimize(p2p.pciP2pdmaMapType(prov, gpu0));
}
BENCHMARK(BM_P2pdmaMapTypeCached);

void BM_BuildAndEnumeratePlatform(benchmark::State& state) {
  const TopologyDesc d = platform();
  for (auto _ : state) benchmark::DoNotOptimize(buildTopology(d));
}
BENCHMARK(BM_BuildAndEnumeratePlatform);

}  // namespace

BENCHMARK_MAIN();
