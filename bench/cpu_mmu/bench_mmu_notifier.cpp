// Microbenchmarks of the mm's mmu-notifier mechanism: how many invalidate_range_start/end pairs per
// second the core sustains with N interval notifiers registered, and the cost of insert/remove.

#include <benchmark/benchmark.h>

#include <memory>
#include <vector>

#include "models/cpu_mmu/mmu_notifier.h"
#include "sim/rng.h"

using namespace hmmsim;

namespace {

// A minimal correct driver: set the seq, nothing else.
class SetSeqOps : public MmuIntervalNotifierOps {
 public:
  bool invalidate(MmuIntervalNotifier& sub, const MmuNotifierRange&, std::uint64_t curSeq) override {
    sub.setSeq(curSeq);
    return true;
  }
};

constexpr std::uint64_t kSpan = 2 * kPmdSize;    // each notifier mirrors 4 MiB
constexpr std::uint64_t kStride = 8 * kPmdSize;  // placed every 16 MiB (gaps between them)
constexpr std::uint64_t kBase = 0x7f00'0000'0000ull;

struct Setup {
  explicit Setup(int n) {
    for (int i = 0; i < n; ++i) {
      subs.push_back(std::make_unique<MmuIntervalNotifier>());
      (void)notifiers.mmuIntervalNotifierInsert(*subs.back(), Va(kBase + std::uint64_t(i) * kStride), kSpan,
                                                ops);
    }
  }
  ~Setup() {
    for (auto& s : subs) s->remove();
  }
  MmuNotifierSubscriptions notifiers{nullptr, "bench.notifier"};
  SetSeqOps ops;
  std::vector<std::unique_ptr<MmuIntervalNotifier>> subs;
};

// One-page invalidations (a CPU fault's COW break, a migration of one page) at random places
// inside the mirrored ranges: every invalidation hits exactly one notifier.
void BM_InvalidatePageHit(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  Setup s(n);
  Rng rng(1);
  std::vector<Va> addrs(4096);
  for (Va& a : addrs) a = Va(kBase + rng.below(n) * kStride + rng.below(kSpan / kPageSize) * kPageSize);
  std::size_t i = 0;
  for (auto _ : state) {
    MmuNotifierRange r;
    const Va a = addrs[i++ & 4095];
    mmuNotifierRangeInit(r, MmuNotifierEvent::Clear, 0, nullptr, a, a + kPageSize);
    s.notifiers.invalidateRangeStart(r);
    s.notifiers.invalidateRangeEnd(r);
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["notifiers"] = n;
}
BENCHMARK(BM_InvalidatePageHit)->Arg(1)->Arg(16)->Arg(256);

// One-page invalidations in the gaps: the tree lookup finds nothing (the common case for an mm
// with a few mirrored ranges).
void BM_InvalidatePageMiss(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  Setup s(n);
  Rng rng(2);
  std::vector<Va> addrs(4096);
  for (Va& a : addrs)
    a = Va(kBase + rng.below(n) * kStride + kSpan + rng.below((kStride - kSpan) / kPageSize) * kPageSize);
  std::size_t i = 0;
  for (auto _ : state) {
    MmuNotifierRange r;
    const Va a = addrs[i++ & 4095];
    mmuNotifierRangeInit(r, MmuNotifierEvent::Clear, 0, nullptr, a, a + kPageSize);
    s.notifiers.invalidateRangeStart(r);
    s.notifiers.invalidateRangeEnd(r);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_InvalidatePageMiss)->Arg(1)->Arg(16)->Arg(256);

// munmap-like: UNMAP invalidations of 64 MiB windows at random places; each covers about four
// notifiers (64 MiB / 16 MiB stride).
void BM_MunmapLike(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  Setup s(n);
  Rng rng(3);
  const std::uint64_t len = 64ull << 20;
  std::vector<Va> addrs(4096);
  for (Va& a : addrs) a = Va(kBase + rng.below(std::uint64_t(n) * kStride / kPageSize) * kPageSize);
  std::size_t i = 0;
  std::uint64_t calls0 = s.notifiers.stats().counterValue("interval_invalidate_calls");
  for (auto _ : state) {
    MmuNotifierRange r;
    const Va a = addrs[i++ & 4095];
    mmuNotifierRangeInit(r, MmuNotifierEvent::Unmap, 0, nullptr, a, a + len);
    s.notifiers.invalidateRangeStart(r);
    s.notifiers.invalidateRangeEnd(r);
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["callbacks_per_inv"] =
      double(s.notifiers.stats().counterValue("interval_invalidate_calls") - calls0) /
      double(state.iterations());
}
BENCHMARK(BM_MunmapLike)->Arg(1)->Arg(16)->Arg(256);

// Insert + remove of one interval notifier with N others registered (driver mirror setup/teardown).
void BM_InsertRemove(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  Setup s(n);
  MmuIntervalNotifier extra;
  Rng rng(4);
  for (auto _ : state) {
    const Va a = Va(kBase + rng.below(std::uint64_t(n) * kStride / kPageSize) * kPageSize);
    (void)s.notifiers.mmuIntervalNotifierInsert(extra, a, kSpan, s.ops);
    extra.remove();
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_InsertRemove)->Arg(1)->Arg(16)->Arg(256)->Arg(4096);

}  // namespace

BENCHMARK_MAIN();
