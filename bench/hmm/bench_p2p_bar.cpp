// The exporter's BAR window manager (hmm/p2p_bar_manager.h), each policy next to the unlimited one
// in the same run:
//  - BM_BarMapUnmap/<policy>: map then unmap 16 pages (64 KiB) per iteration, walking all of device
//    memory (1 GiB, 2 MiB windows). Unlimited: every chunk has a fixed window (all hits).
//    LruReclaim with a 32 MiB aperture (16 windows for 512 chunks): nearly every map misses and
//    re-points the least recently used idle window (reclaim of an idle window, no revoke).
//  - BM_BarRevokeRemap/<policy>: the importer keeps what it mapped (busy windows), so under
//    LruReclaim every miss first revokes the least recently used busy window (the revoke hook is
//    an importer that p2pUnmaps exactly the revoked run, as an invalidation makes it do) and then
//    remaps it: revoke+remap/s. Unlimited never revokes: the same loop is all hits (its held
//    pages are given back every aperture-worth of maps to keep the counts bounded).
// items_per_second = map calls per second. Ratios between policies are the figures to quote.

#include <benchmark/benchmark.h>

#include <cstdint>
#include <vector>

#include "hmm/p2p_bar_manager.h"
#include "sim/assert.h"
#include "sim/device.h"

using namespace hmmsim;

namespace {

constexpr std::uint64_t kPagesPerMap = 16;
constexpr std::uint64_t kDevMem = 1ull << 30;
constexpr std::uint64_t kWindow = 2ull << 20;
constexpr std::uint64_t kWinPages = kWindow >> 12;

P2pBarParams params(BarPolicy policy) {
  P2pBarParams p;
  p.policy = policy;
  p.windowBytes = kWindow;
  p.deviceMemBytes = kDevMem;
  p.apertureBytes = policy == BarPolicy::Unlimited ? kDevMem : 32ull << 20;
  return p;
}

/// An importer that obeys revocation: gives back exactly the revoked run (one count per page).
struct ObedientImporter : BarRevokeHook {
  explicit ObedientImporter(Device& d) : dev(d) {}
  void revoke(DevPage first, std::uint64_t npages, BarEvent) override {
    HMMSIM_ASSERT(bar->unmap(dev, first, npages) == BarUnmapStatus::Unmapped, "revoke of pages not held");
    revoked += npages;
  }
  Device& dev;
  P2pBarManager* bar = nullptr;
  std::uint64_t revoked = 0;
};

BarPolicy policyOf(const benchmark::State& state) {
  return static_cast<BarPolicy>(state.range(0));
}

void BM_BarMapUnmap(benchmark::State& state) {
  Device imp("imp0");
  ObedientImporter hook(imp);
  P2pBarManager bar(params(policyOf(state)), &hook, "bench.bar");
  hook.bar = &bar;
  std::vector<Pa> out(kPagesPerMap);
  const std::uint64_t chunks = kDevMem / kWindow;
  std::uint64_t i = 0;
  for (auto _ : state) {
    const DevPage first((i % chunks) * kWinPages);  // a new chunk every map
    const BarMapResult r = bar.map(imp, first, kPagesPerMap, out.data());
    HMMSIM_ASSERT(r.ok(), "bench map refused: " << barMapStatusName(r.status));
    benchmark::DoNotOptimize(out.data());
    bar.unmap(imp, first, kPagesPerMap);
    ++i;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(i));
  state.SetLabel(barPolicyName(policyOf(state)));
  state.counters["reclaims"] = static_cast<double>(bar.stats().counterValue("reclaims"));
}

void BM_BarRevokeRemap(benchmark::State& state) {
  Device imp("imp0");
  ObedientImporter hook(imp);
  const BarPolicy policy = policyOf(state);
  P2pBarManager bar(params(policy), &hook, "bench.bar");
  hook.bar = &bar;
  std::vector<Pa> out(kPagesPerMap);
  const std::uint64_t chunks = kDevMem / kWindow;
  const std::uint64_t windows = bar.windowCount();
  std::uint64_t i = 0;
  for (auto _ : state) {
    const std::uint64_t c = i % chunks;
    if (policy == BarPolicy::Unlimited && c % windows == 0 && i >= windows) {
      // Keep the held counts bounded: give back the previous aperture's worth.
      for (std::uint64_t k = 1; k <= windows; ++k)
        bar.unmap(imp, DevPage(((i - k) % chunks) * kWinPages), kPagesPerMap);
    }
    const BarMapResult r = bar.map(imp, DevPage(c * kWinPages), kPagesPerMap, out.data());
    HMMSIM_ASSERT(r.ok(), "bench map refused: " << barMapStatusName(r.status));
    benchmark::DoNotOptimize(out.data());
    ++i;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(i));
  state.SetLabel(barPolicyName(policy));
  state.counters["revoked_pages"] = static_cast<double>(hook.revoked);
  state.counters["revoke_hook_calls"] = static_cast<double>(bar.stats().counterValue("revoke_hook_calls"));
}

}  // namespace

BENCHMARK(BM_BarMapUnmap)
    ->Arg(static_cast<int>(BarPolicy::Unlimited))
    ->Arg(static_cast<int>(BarPolicy::LruReclaim));
BENCHMARK(BM_BarRevokeRemap)
    ->Arg(static_cast<int>(BarPolicy::Unlimited))
    ->Arg(static_cast<int>(BarPolicy::LruReclaim));

BENCHMARK_MAIN();
