// PageTable microbenchmarks: random lookups of present 4 KiB pages (the CPU/TLB-miss path and
// hmm_range_fault's per-page cost), range walks, and page-table bytes per mapped page.
#include <benchmark/benchmark.h>

#include <sys/mman.h>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <vector>

#include "models/cpu_mmu/page_table.h"
#include "sim/rng.h"

using namespace hmmsim;

namespace {

constexpr std::uint64_t kPages = 1ull << 20;  // 1 Mi pages = 4 GiB of VA
constexpr std::uint64_t kBase = 0x7f00'0000'0000ull;

// One page table with kPages present 4 KiB pages at [kBase, kBase + 4 GiB) (dense), or scattered
// one page per 64 KiB over 64 GiB (sparse: 16x more PTE tables, more cache misses).
std::unique_ptr<PageTable> buildTable(std::uint64_t stridePages) {
  auto pt = std::make_unique<PageTable>();
  for (std::uint64_t i = 0; i < kPages; ++i)
    *pt->ptePtr(Va(kBase + i * stridePages * kPageSize), true) = Pte::mkPresent(Pfn(i), true);
  return pt;
}

// The random-load baseline's buffer: 8 MiB (the size of the 1 Mi-page table's PTE level) on host
// huge pages where the host allows.
constexpr std::size_t kWords = (8u << 20) / 8;
std::uint64_t* baselineBuffer() {
  static std::uint64_t* buf = nullptr;
  if (!buf) {
    buf = static_cast<std::uint64_t*>(std::aligned_alloc(2u << 20, kWords * 8));
#ifdef MADV_HUGEPAGE
    madvise(buf, kWords * 8, MADV_HUGEPAGE);
#endif
    for (std::size_t i = 0; i < kWords; ++i) buf[i] = i;
  }
  return buf;
}

std::vector<Va> randomVas(std::uint64_t stridePages, std::size_t n) {
  Rng rng(42);
  std::vector<Va> vas(n);
  for (auto& v : vas) v = Va(kBase + rng.below(kPages) * stridePages * kPageSize + rng.below(kPageSize));
  return vas;
}

void lookupBench(benchmark::State& state, std::uint64_t stridePages) {
  static std::unique_ptr<PageTable> pts[2];
  auto& pt = pts[stridePages == 1 ? 0 : 1];
  if (!pt) pt = buildTable(stridePages);
  const std::vector<Va> vas = randomVas(stridePages, 1u << 16);
  std::size_t i = 0;
  std::uint64_t sum = 0;
  for (auto _ : state) {
    const PtWalk w = pt->lookup(vas[i]);
    sum += w.pte.raw();
    i = (i + 1) & (vas.size() - 1);
  }
  benchmark::DoNotOptimize(sum);
  state.SetItemsProcessed(state.iterations());
  state.counters["pt_bytes_per_page"] = double(pt->tableBytes()) / double(kPages);
}

void BM_LookupRandomDense4K(benchmark::State& state) {
  lookupBench(state, 1);
}
void BM_LookupRandomSparse4K(benchmark::State& state) {
  lookupBench(state, 16);
}
BENCHMARK(BM_LookupRandomDense4K);
BENCHMARK(BM_LookupRandomSparse4K);

// The same lookups with the random sequence fully random (no reuse of a 64 Ki table of VAs).
void BM_LookupRandomDense4KFresh(benchmark::State& state) {
  static std::unique_ptr<PageTable> pt;
  if (!pt) pt = buildTable(1);
  std::uint64_t x = 88172645463325252ull, sum = 0;
  for (auto _ : state) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    const PtWalk w = pt->lookup(Va(kBase + (x & (kPages - 1)) * kPageSize));
    sum += w.pte.raw();
  }
  benchmark::DoNotOptimize(sum);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_LookupRandomDense4KFresh);

// Baseline for the two benchmarks above: independent random 8-byte loads from an 8 MiB buffer
// (the size of the 1 Mi-page table's PTE level) on host huge pages: the memory system's floor
// for one random miss per lookup on this machine.
void BM_RandomLoadBaseline8MiB(benchmark::State& state) {
  std::uint64_t* const buf = baselineBuffer();
  std::uint64_t x = 88172645463325252ull, sum = 0;
  for (auto _ : state) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    sum += buf[x & (kWords - 1)];
  }
  benchmark::DoNotOptimize(sum);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RandomLoadBaseline8MiB);

// The walk figure, measured so that machine noise cancels: each iteration times a block
// of fully random lookups over the dense 1 Mi-page table and, right after it, a block of the
// baseline's independent random 8-byte loads over a buffer as large as the PTE level. Reported:
// lookups/s and loads/s over the same wall-clock stretch, and walk_per_load = lookup time / load
// time (1.0 would mean a walk costs exactly one random memory access).
void BM_LookupVsRandomLoad(benchmark::State& state) {
  static std::unique_ptr<PageTable> pt;
  if (!pt) pt = buildTable(1);
  std::uint64_t* const buf = baselineBuffer();
  constexpr int kBlock = 4096;
  using Clock = std::chrono::steady_clock;
  Clock::duration walkTime{}, loadTime{};
  std::uint64_t x = 88172645463325252ull, y = 0x9E3779B97F4A7C15ull, sum = 0;
  for (auto _ : state) {
    const auto t0 = Clock::now();
    for (int k = 0; k < kBlock; ++k) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      sum += pt->lookup(Va(kBase + (x & (kPages - 1)) * kPageSize)).pte.raw();
    }
    const auto t1 = Clock::now();
    for (int k = 0; k < kBlock; ++k) {
      y ^= y << 13;
      y ^= y >> 7;
      y ^= y << 17;
      sum += buf[y & (kWords - 1)];
    }
    const auto t2 = Clock::now();
    walkTime += t1 - t0;
    loadTime += t2 - t1;
  }
  benchmark::DoNotOptimize(sum);
  const double n = double(state.iterations()) * kBlock;
  const double walkS = std::chrono::duration<double>(walkTime).count();
  const double loadS = std::chrono::duration<double>(loadTime).count();
  state.counters["lookups_per_s"] = n / walkS;
  state.counters["loads_per_s"] = n / loadS;
  state.counters["walk_per_load"] = walkS / loadS;
}
BENCHMARK(BM_LookupVsRandomLoad);

// walkRange over all 1 Mi pages (what zap/mprotect/fork/hmm_range_fault pay per page).
void BM_WalkRangeDense(benchmark::State& state) {
  static std::unique_ptr<PageTable> pt;
  if (!pt) pt = buildTable(1);
  for (auto _ : state) {
    std::uint64_t sum = 0;
    pt->walkRange(Va(kBase), Va(kBase + kPages * kPageSize), [&](const PtRangeEntry& r) {
      sum += r.slot ? r.slot->raw() : 0;
      return WalkAction::Continue;
    });
    benchmark::DoNotOptimize(sum);
  }
  state.SetItemsProcessed(state.iterations() * std::int64_t(kPages));
}
BENCHMARK(BM_WalkRangeDense)->Unit(benchmark::kMillisecond);

// Building the table: ptePtr(allocate) + store per page.
void BM_PopulateDense(benchmark::State& state) {
  for (auto _ : state) {
    PageTable pt;
    for (std::uint64_t i = 0; i < kPages; ++i)
      *pt.ptePtr(Va(kBase + i * kPageSize), true) = Pte::mkPresent(Pfn(i), true);
    benchmark::DoNotOptimize(pt.tablePages());
  }
  state.SetItemsProcessed(state.iterations() * std::int64_t(kPages));
}
BENCHMARK(BM_PopulateDense)->Unit(benchmark::kMillisecond);

// Split of a huge PMD (THP split path) and freeing the resulting table.
void BM_SplitHugePmd(benchmark::State& state) {
  PageTable pt;
  const Va va(kBase);
  Pte* pmd = pt.pmdPtr(va, true);
  for (auto _ : state) {
    *pmd = Pte::mkPresent(Pfn(512), true).mkHuge();
    pt.splitHugePmd(va);
    state.PauseTiming();
    for (unsigned i = 0; i < 512; ++i) *pt.ptePtr(va + i * kPageSize, false) = Pte();
    pt.freePgtables(va, va + kPmdSize);
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_SplitHugePmd);

}  // namespace

BENCHMARK_MAIN();
