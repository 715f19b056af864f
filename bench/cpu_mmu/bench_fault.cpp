// Microbenchmarks of the fault path beyond bench_mm's plain handleMmFault loop: the user fault
// handler (vma lookup + fault), zero-page read faults, COW faults after fork, THP faults, and
// GUP pin/unpin. Each reports pages/s (CPU time). Target: >= 5 M write faults/s on 4 KiB
// anonymous pages (see helper "fault"'s report).
#include <benchmark/benchmark.h>

#include <memory>
#include <vector>

#include "models/cpu_mmu/gup.h"
#include "models/cpu_mmu/huge_memory.h"
#include "models/cpu_mmu/memory.h"
#include "models/cpu_mmu/mm.h"
#include "models/cpu_mmu/phys_mem.h"

using namespace hmmsim;

namespace {

PhysMemParams machine(std::uint64_t bytes) {
  PhysMemParams p;
  p.ramSize = bytes;  // sparse: untouched frames cost no host memory
  return p;
}

Va mapAnon(Mm& mm, std::uint64_t len) {
  const VaResult r = mm.mmap(Va(0), len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  if (!r.ok()) std::abort();
  return r.addr;
}

void faultAll(Mm& mm, Va a, std::uint64_t pages, bool write, std::uint64_t step = kPageSize) {
  MmapReadLock lock(mm);
  for (std::uint64_t off = 0; off < pages * kPageSize; off += step) {
    const VmFaultResult r = handleUserFault(mm, a + off, write);
    if (isFaultError(r)) std::abort();
  }
}

/// 1 Mi write faults through the arch fault handler (vma lookup + handle_mm_fault +
/// do_anonymous_page), THP off.
void BM_UserWriteFault4K(benchmark::State& state) {
  const std::uint64_t pages = std::uint64_t(state.range(0));
  PhysMem pm(machine(8ull << 30));
  for (auto _ : state) {
    state.PauseTiming();
    auto mm = std::make_unique<Mm>(pm, "mm");
    const Va a = mapAnon(*mm, pages * kPageSize);
    state.ResumeTiming();
    faultAll(*mm, a, pages, true);
    state.PauseTiming();
    mm.reset();
    state.ResumeTiming();
  }
  state.counters["pages/s"] =
      benchmark::Counter(double(pages) * double(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_UserWriteFault4K)->Arg(1 << 20)->Iterations(3)->Unit(benchmark::kMillisecond);

/// Read faults mapping the shared zero page.
void BM_ZeroPageReadFault(benchmark::State& state) {
  const std::uint64_t pages = std::uint64_t(state.range(0));
  PhysMem pm(machine(1ull << 30));
  for (auto _ : state) {
    state.PauseTiming();
    auto mm = std::make_unique<Mm>(pm, "mm");
    const Va a = mapAnon(*mm, pages * kPageSize);
    state.ResumeTiming();
    faultAll(*mm, a, pages, false);
    state.PauseTiming();
    mm.reset();
    state.ResumeTiming();
  }
  state.counters["pages/s"] =
      benchmark::Counter(double(pages) * double(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_ZeroPageReadFault)->Arg(1 << 18)->Iterations(3)->Unit(benchmark::kMillisecond);

/// COW faults in a fork child: every write copies a page (wp_page_copy, with its CLEAR round).
void BM_CowFaultAfterFork(benchmark::State& state) {
  const std::uint64_t pages = std::uint64_t(state.range(0));
  PhysMem pm(machine(4ull << 30));
  for (auto _ : state) {
    state.PauseTiming();
    auto parent = std::make_unique<Mm>(pm, "parent");
    const Va a = mapAnon(*parent, pages * kPageSize);
    faultAll(*parent, a, pages, true);
    ForkResult c = parent->fork("child");
    if (!c.ok()) std::abort();
    state.ResumeTiming();
    faultAll(*c.child, a, pages, true);
    state.PauseTiming();
    c.child.reset();
    parent.reset();
    state.ResumeTiming();
  }
  state.counters["pages/s"] =
      benchmark::Counter(double(pages) * double(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_CowFaultAfterFork)->Arg(1 << 18)->Iterations(3)->Unit(benchmark::kMillisecond);

/// THP write faults: one 2 MiB folio per fault (pages/s counts 4 KiB pages populated).
void BM_ThpWriteFault(benchmark::State& state) {
  const std::uint64_t pages = std::uint64_t(state.range(0));
  PhysMem pm(machine(8ull << 30));
  MmParams params;
  params.thp.enabled = ThpPolicy::Always;
  for (auto _ : state) {
    state.PauseTiming();
    auto mm = std::make_unique<Mm>(pm, "mm", params);
    const Va a = mapAnon(*mm, pages * kPageSize);
    state.ResumeTiming();
    faultAll(*mm, a, pages, true, kPmdSize);
    state.PauseTiming();
    mm.reset();
    state.ResumeTiming();
  }
  state.counters["pages/s"] =
      benchmark::Counter(double(pages) * double(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_ThpWriteFault)->Arg(1 << 20)->Iterations(3)->Unit(benchmark::kMillisecond);

/// pin_user_pages_fast + unpin_user_pages over a populated range, 512 pages per call.
void BM_PinUnpinFast(benchmark::State& state) {
  const std::uint64_t pages = 1 << 16;
  const std::uint64_t batch = 512;
  PhysMem pm(machine(1ull << 30));
  Mm mm(pm, "mm");
  const Va a = mapAnon(mm, pages * kPageSize);
  faultAll(mm, a, pages, true);
  std::vector<Pfn> out(batch);
  std::uint64_t done = 0;
  for (auto _ : state) {
    for (std::uint64_t i = 0; i < pages; i += batch) {
      const GupResult r = pinUserPagesFast(mm, a + i * kPageSize, batch, kFollWrite, out.data());
      if (r.nrPages != batch) std::abort();
      unpinUserPages(mm, out.data(), batch);
    }
    done += pages;
  }
  state.counters["pages/s"] = benchmark::Counter(double(done), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_PinUnpinFast)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
