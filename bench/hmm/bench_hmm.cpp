// hmm layer microbenchmarks: hmm_range_fault throughput over present pages, and migration to
// device-private memory and back (4 KiB pages and THPs, with data). Invalidation throughput with
// 1/16/256 interval notifiers is bench_mmu_notifier's BM_InvalidatePageHit (not duplicated).

#include <benchmark/benchmark.h>

#include <memory>
#include <vector>

#include "bench/hmm/bench_mirror_setup.h"
#include "hmm/hmm.h"
#include "hmm/memremap.h"
#include "hmm/migrate_device.h"
#include "models/cpu_mmu/memory.h"
#include "models/cpu_mmu/mm.h"
#include "models/cpu_mmu/mmu_notifier.h"
#include "models/cpu_mmu/phys_mem.h"
#include "sim/assert.h"

using namespace hmmsim;
using namespace hmmsim::bench;

namespace {

/// hmm_range_fault over 1 Mi present 4 KiB pages (populated writable, no data touched).
void BM_HmmRangeFault1MiPages(benchmark::State& state) {
  const std::uint64_t pages = 1ull << 20;
  MirroredMm m((pages << kPageShift) + (512ull << 20));
  const Va start = m.mmapPopulated(pages);
  std::vector<unsigned long> pfns(pages);
  const unsigned long flags = state.range(0) ? HMM_PFN_REQ_FAULT : 0;
  for (auto _ : state) {
    HmmRange range = m.range(start, pages, pfns.data(), flags);
    MmapReadLock l(*m.mm);
    const HmmStatus st = hmmRangeFault(range);
    HMMSIM_ASSERT(st == HmmStatus::Ok, "hmmRangeFault: " << hmmStatusName(st));
    benchmark::DoNotOptimize(pfns.data());
  }
  state.SetItemsProcessed(std::int64_t(state.iterations() * pages));
}
BENCHMARK(BM_HmmRangeFault1MiPages)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);

/// Migrate `pages` (4 KiB, or THPs with SELECT_COMPOUND) to device-private memory and back,
/// copying the data both ways. Items = pages moved (both directions).
class MigrateBench {
 public:
  MigrateBench(std::uint64_t bytes, bool thp)
      : pm_(ram(bytes * 2 + (256ull << 20))), copier_(pm_), thp_(thp) {
    DeviceMemoryParams dp;
    dp.chunkBytes = 64ull << 20;
    dp.capacityBytes = bytes * 2 + dp.chunkBytes;
    dp.capacityBytes = (dp.capacityBytes + dp.chunkBytes - 1) / dp.chunkBytes * dp.chunkBytes;
    dev_ = std::make_unique<DeviceMemory>(pm_, dp, &owner_, "dev");
    mm_ = std::make_unique<Mm>(pm_, "mm");
    const VaResult r =
        mm_->mmap(Va(0), bytes + kPmdSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    HMMSIM_ASSERT(r.ok(), "mmap");
    start_ = r.addr.alignUp(kPmdSize);
    end_ = start_ + bytes;
    HMMSIM_ASSERT(mm_->madvise(r.addr, bytes + kPmdSize, thp ? MADV_HUGEPAGE : MADV_NOHUGEPAGE) == Errno::Ok,
                  "");
    for (Va a = start_; a < end_; a += kPageSize) {
      const std::uint64_t v = a.value();
      HMMSIM_ASSERT(copyToUser(*mm_, a, &v, sizeof v) == Errno::Ok, "store");
    }
    src_.resize(bytes >> kPageShift);
    dst_.resize(bytes >> kPageShift);
  }
  ~MigrateBench() { mm_.reset(); }

  std::uint64_t roundTrip() {
    const std::uint64_t a = migrate(true);
    const std::uint64_t b = migrate(false);
    return a + b;
  }
  void verify() {
    for (Va a = start_; a < end_; a += kPageSize * 97) {
      std::uint64_t v = 0;
      HMMSIM_ASSERT(copyFromUser(*mm_, &v, a, sizeof v) == Errno::Ok && v == a.value(), "data");
    }
  }
  std::uint64_t copyPs() const { return copier_.totalPs(); }

 private:
  std::uint64_t migrate(bool toDevice) {
    MmapReadLock l(*mm_);
    MigrateVma m;
    m.vma = mm_->vmaLookup(start_);
    m.src = src_.data();
    m.dst = dst_.data();
    m.start = start_;
    m.end = end_;
    m.pgmapOwner = &owner_;
    m.flags = (toDevice ? MIGRATE_VMA_SELECT_SYSTEM : MIGRATE_VMA_SELECT_DEVICE_PRIVATE) |
              (thp_ ? MIGRATE_VMA_SELECT_COMPOUND : 0);
    HMMSIM_ASSERT(migrateVmaSetup(m) == Errno::Ok, "setup");
    std::uint64_t moved = 0;
    for (unsigned long i = 0; i < m.npages; ++i) {
      if (!(src_[i] & MIGRATE_PFN_MIGRATE)) continue;
      const bool compound = (src_[i] & MIGRATE_PFN_COMPOUND) != 0;
      const unsigned order = compound ? PhysMem::kPmdOrder : 0;
      std::optional<Pfn> d = toDevice ? (compound ? dev_->allocFolio() : dev_->allocPage())
                                      : migrateAllocSystemFolio(pm_, order);
      HMMSIM_ASSERT(d.has_value(), "destination allocation");
      if (auto s = migratePfnToPfn(src_[i]))
        copier_.copyFolio(*d, *s, order);
      else
        copier_.clearFolio(*d, order);
      dst_[i] = migratePfn(*d) | (compound ? MIGRATE_PFN_COMPOUND : 0);
      moved += 1ull << order;
    }
    migrateVmaPages(m);
    migrateVmaFinalize(m);
    return moved;
  }

  PhysMem pm_;
  MigrateCopier copier_;
  bool thp_;
  int owner_ = 0;
  std::unique_ptr<DeviceMemory> dev_;
  std::unique_ptr<Mm> mm_;
  Va start_, end_;
  std::vector<unsigned long> src_, dst_;
};

void BM_MigrateRoundTrip(benchmark::State& state) {
  const std::uint64_t bytes = std::uint64_t(state.range(0)) << 20;
  MigrateBench b(bytes, state.range(1) != 0);
  std::uint64_t pages = 0;
  for (auto _ : state) pages += b.roundTrip();
  b.verify();
  state.SetItemsProcessed(std::int64_t(pages));
  state.counters["sim_copy_ms"] = double(b.copyPs()) / 1e9;
}
BENCHMARK(BM_MigrateRoundTrip)
    ->Args({1, 0})
    ->Args({16, 0})
    ->Args({16, 1})
    ->ArgNames({"MiB", "thp"})
    ->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
