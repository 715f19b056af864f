// Microbenchmarks of the address space: faulting in anonymous memory page by page (4 KiB, THP
// off) and munmap of a populated range with interval notifiers registered.
// Targets (see the mm report): >= 5 M faults/s, >= 20 M pages/s unmapped with 16 notifiers.
#include <benchmark/benchmark.h>

#include <memory>
#include <vector>

#include "models/cpu_mmu/memory.h"
#include "models/cpu_mmu/mm.h"
#include "models/cpu_mmu/mmu_notifier.h"
#include "models/cpu_mmu/phys_mem.h"

using namespace hmmsim;

namespace {

constexpr std::uint64_t kPages = 1ull << 20;  // 1 Mi pages = 4 GiB

PhysMemParams bigMachine() {
  PhysMemParams p;
  p.ramSize = 8ull << 30;  // sparse: only touched metadata chunks cost host memory
  return p;
}

class SetSeqOps : public MmuIntervalNotifierOps {
 public:
  bool invalidate(MmuIntervalNotifier& sub, const MmuNotifierRange&, std::uint64_t curSeq) override {
    sub.setSeq(curSeq);
    return true;
  }
};

/// Write-fault every page of [a, a + pages) (do_anonymous_page: a zeroed frame each; the data
/// stays sparse because nothing is written into it).
void faultIn(Mm& mm, Va a, std::uint64_t pages) {
  MmapReadLock lock(mm);
  Vma* v = mm.vmaLookup(a);
  for (std::uint64_t i = 0; i < pages; ++i) {
    Va at = a + i * kPageSize;
    if (at >= v->vmEnd) v = mm.vmaLookup(at);
    VmFaultResult r = handleMmFault(*v, at, kFaultFlagWrite);
    if (isFaultError(r)) std::abort();
  }
}

void BM_FaultAnonPages(benchmark::State& state) {
  PhysMem pm(bigMachine());
  const std::uint64_t pages = static_cast<std::uint64_t>(state.range(0));
  for (auto _ : state) {
    state.PauseTiming();
    auto mm = std::make_unique<Mm>(pm, "bench.mm");
    VaResult r = mm->mmap(Va(0), pages * kPageSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    if (!r.ok()) std::abort();
    state.ResumeTiming();
    faultIn(*mm, r.addr, pages);
    state.PauseTiming();
    mm.reset();
    state.ResumeTiming();
  }
  state.counters["pages/s"] =
      benchmark::Counter(double(pages) * double(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_FaultAnonPages)->Arg(kPages)->Unit(benchmark::kMillisecond)->Iterations(3);

void BM_MunmapWithNotifiers(benchmark::State& state) {
  PhysMem pm(bigMachine());
  const std::uint64_t pages = kPages;
  const int nNotifiers = static_cast<int>(state.range(0));
  SetSeqOps ops;
  for (auto _ : state) {
    state.PauseTiming();
    auto mm = std::make_unique<Mm>(pm, "bench.mm");
    VaResult r = mm->mmap(Va(0), pages * kPageSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    if (!r.ok()) std::abort();
    faultIn(*mm, r.addr, pages);
    // Notifiers mirror equal slices of the range (a device each), like dmirror instances.
    std::vector<std::unique_ptr<MmuIntervalNotifier>> subs;
    const std::uint64_t slice = pages * kPageSize / std::uint64_t(nNotifiers);
    for (int i = 0; i < nNotifiers; ++i) {
      subs.push_back(std::make_unique<MmuIntervalNotifier>());
      if (mmuIntervalNotifierInsert(*subs.back(), *mm, r.addr + std::uint64_t(i) * slice, slice, ops) !=
          Errno::Ok)
        std::abort();
    }
    state.ResumeTiming();
    if (mm->munmap(r.addr, pages * kPageSize) != Errno::Ok) std::abort();
    state.PauseTiming();
    for (auto& s : subs) s->remove();
    mm.reset();
    state.ResumeTiming();
  }
  state.counters["pages/s"] =
      benchmark::Counter(double(pages) * double(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_MunmapWithNotifiers)->Arg(16)->Unit(benchmark::kMillisecond)->Iterations(3);

// Same-run baseline for the two figures above: one read-modify-write of a 64-byte record per
// page over 1 Mi records (64 MiB, the size of the frames' metadata), in address order. It is
// the least any per-page pass over struct-page-sized metadata costs on this machine; divide the
// munmap and fault-in times by it to compare runs on machines of different speed.
void BM_BaselineMetadataSweep(benchmark::State& state) {
  struct alignas(64) Record {
    std::uint64_t word[8];
  };
  std::vector<Record> records(kPages);
  for (auto _ : state) {
    for (Record& r : records) {
      r.word[0] += 1;
      r.word[1] ^= r.word[0];
    }
    benchmark::ClobberMemory();
  }
  state.counters["pages/s"] =
      benchmark::Counter(double(kPages) * double(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_BaselineMetadataSweep)->Unit(benchmark::kMillisecond)->Iterations(3);

}  // namespace

BENCHMARK_MAIN();
