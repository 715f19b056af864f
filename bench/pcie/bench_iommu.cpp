// IOMMU simulation speed: translations per second of wall time (host CPU), with IOTLB hits
// (a 64-page working set), with misses (random 4 KiB pages over 64 MiB: one 4-level walk each),
// with 2 MiB mappings, and the DMA API's map + unmap round trip in strict and lazy mode.
// Not a test: figures for the report (run with --benchmark_min_time=0.2).
#include <benchmark/benchmark.h>

#include <vector>

#include "models/pcie/dma_mapping.h"
#include "models/pcie/iommu.h"
#include "sim/rng.h"

using namespace hmmsim;

namespace {
constexpr Bdf kDev{0, 1, 0, 0};

void translateLoop(benchmark::State& state, std::uint64_t window, bool largePages) {
  IommuParams p;
  p.largePages = largePages;
  Iommu iommu("top.iommu", p);
  IommuDomain& d = iommu.domainAlloc(IommuDomainType::Dma);
  iommu.attachDevice(d, kDev);
  iommu.map(d, Iova(0x4000'0000), Pa(0x1'0000'0000), window, kIommuRead);
  Rng rng(1);
  std::vector<Iova> addrs(1 << 16);
  for (Iova& a : addrs) a = Iova(0x4000'0000) + rng.below(window / 64) * 64;
  std::uint64_t now = 0, i = 0, bad = 0;
  for (auto _ : state) {
    IommuTranslation t = iommu.translate(kDev, addrs[i++ & 0xffff], false, now);
    now += 10'000;
    bad += t.ok ? 0 : 1;
    benchmark::DoNotOptimize(t.pa);
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["iotlb_hit_rate"] =
      double(iommu.stats().counterValue("iotlb_hits")) / double(iommu.stats().counterValue("translations"));
  if (bad) state.SkipWithError("translation faults");
}

void BM_TranslateIotlbHit(benchmark::State& state) {
  translateLoop(state, 256 << 10, false);
}
void BM_TranslateIotlbMiss4K(benchmark::State& state) {
  translateLoop(state, 64 << 20, false);
}
void BM_TranslateIotlbHit2M(benchmark::State& state) {
  translateLoop(state, 64 << 20, true);
}

void mapUnmapLoop(benchmark::State& state, IommuInvalidation inv) {
  IommuParams p;
  p.invalidation = inv;
  Iommu iommu("top.iommu", p);
  DmaMapping dma("top.dma", iommu, DmaMappingParams{});
  Device dev("dev");
  DmaDeviceParams dp;
  dp.bdf = kDev;
  dma.attachDevice(dev, dp);
  std::uint64_t pa = 0x1000'0000, now = 0;
  for (auto _ : state) {
    DmaAddr a = dma.dmaMapPage(dev, Pa(pa), kPageSize, DmaDir::Bidirectional);
    dma.dmaUnmapPage(dev, a, kPageSize, DmaDir::Bidirectional);
    pa += kPageSize;
    now += 100'000;
    dma.tick(now);
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_DmaMapUnmapStrict(benchmark::State& state) {
  mapUnmapLoop(state, IommuInvalidation::Strict);
}
void BM_DmaMapUnmapLazy(benchmark::State& state) {
  mapUnmapLoop(state, IommuInvalidation::Lazy);
}
}  // namespace

BENCHMARK(BM_TranslateIotlbHit);
BENCHMARK(BM_TranslateIotlbMiss4K);
BENCHMARK(BM_TranslateIotlbHit2M);
BENCHMARK(BM_DmaMapUnmapStrict);
BENCHMARK(BM_DmaMapUnmapLazy);
BENCHMARK_MAIN();
