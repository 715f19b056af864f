// PhysMem microbenchmarks: startup cost of a 64 GiB machine, host memory per touched 4 KiB page
// (frame metadata + page tables, and the data buffer separately), allocator and data-path speed.
#include <benchmark/benchmark.h>

#include <unistd.h>
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <vector>

#include "models/cpu_mmu/page_table.h"
#include "models/cpu_mmu/phys_mem.h"
#include "sim/rng.h"

using namespace hmmsim;

namespace {

constexpr std::uint64_t k64GiB = 64ull << 30;

// Resident set size of this process in bytes (/proc/self/statm), for host-memory figures that
// include malloc overhead.
std::uint64_t rssBytes() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (!f) return 0;
  unsigned long size = 0, resident = 0;
  if (std::fscanf(f, "%lu %lu", &size, &resident) != 2) resident = 0;
  std::fclose(f);
  return std::uint64_t(resident) * std::uint64_t(sysconf(_SC_PAGESIZE));
}

PhysMemParams ram(std::uint64_t bytes) {
  PhysMemParams p;
  p.ramSize = bytes;
  return p;
}

// Construction (and destruction) of a 64 GiB PhysMem.
void BM_Startup64GiB(benchmark::State& state) {
  static std::uint64_t rss = 0;
  std::uint64_t meta = 0;
  for (auto _ : state) {
    const std::uint64_t rss0 = rssBytes();
    PhysMem pm(ram(k64GiB));
    rss = std::max(rss, rssBytes() - rss0);  // the first construction sees fresh host pages
    meta = pm.metadataBytes();
    benchmark::DoNotOptimize(pm.freePages());
  }
  state.counters["metadata_bytes"] = double(meta);
  state.counters["rss_delta_bytes"] = double(rss);
}
BENCHMARK(BM_Startup64GiB)->Unit(benchmark::kMicrosecond);

// A 64 GiB machine plus a 16 GiB device memory (VRAM) placed at a 64-bit BAR address above 256
// GiB, as enumeration assigns it (issue 12: "a 16 GiB-VRAM GPU platform starts in < 100 ms").
// Compare with BM_Startup64GiB of the same run: the device range adds chunk descriptors only.
void BM_Startup64GiBWith16GiBVram(benchmark::State& state) {
  std::uint64_t meta = 0;
  for (auto _ : state) {
    PhysMem pm(ram(k64GiB));
    const Errno e = pm.addDeviceRangeAt(Pa(0x40'0000'0000ull), (16ull << 30) / kPageSize, nullptr, nullptr);
    if (e != Errno::Ok) state.SkipWithError("addDeviceRangeAt failed");
    meta = pm.metadataBytes();
    benchmark::DoNotOptimize(pm.freePages());
  }
  state.counters["metadata_bytes"] = double(meta);
}
BENCHMARK(BM_Startup64GiBWith16GiBVram)->Unit(benchmark::kMicrosecond);

// Host memory per touched 4 KiB page: 256 Ki order-0 frames allocated from a 64 GiB machine, each
// written (8 bytes) and mapped at consecutive VAs in one page table.
void BM_MemoryPerTouchedPage(benchmark::State& state) {
  const std::uint64_t n = std::uint64_t(state.range(0));
  double metaPerPage = 0, ptPerPage = 0, dataPerPage = 0, rssPerPage = 0;
  for (auto _ : state) {
    const std::uint64_t rss0 = rssBytes();
    {
      PhysMem pm(ram(k64GiB));
      PageTable pt;
      const std::uint64_t meta0 = pm.metadataBytes();
      const Va base(0x7f00'0000'0000ull);
      for (std::uint64_t i = 0; i < n; ++i) {
        const Pfn p = *pm.allocFrame(0);
        const std::uint64_t v = i;
        pm.write(paOf(p), &v, sizeof v);
        *pt.ptePtr(base + i * kPageSize, true) = Pte::mkPresent(p, true);
      }
      metaPerPage = double(pm.metadataBytes() - meta0) / double(n);
      ptPerPage = double(pt.tableBytes()) / double(n);
      dataPerPage = double(pm.dataHostBytes()) / double(n);
      rssPerPage = double(rssBytes() - rss0) / double(n);
    }
  }
  state.counters["metadata_B_per_page"] = metaPerPage;
  state.counters["pgtable_B_per_page"] = ptPerPage;
  state.counters["overhead_B_per_page"] = metaPerPage + ptPerPage;
  state.counters["data_B_per_page"] = dataPerPage;
  state.counters["rss_B_per_page"] = rssPerPage;
  state.SetItemsProcessed(state.iterations() * std::int64_t(n));
}
BENCHMARK(BM_MemoryPerTouchedPage)->Arg(1 << 18)->Unit(benchmark::kMillisecond)->Iterations(1);

// alloc_pages(0) + put_page in steady state.
void BM_AllocFreeOrder0(benchmark::State& state) {
  PhysMem pm(ram(k64GiB));
  std::vector<Pfn> live;
  for (int i = 0; i < 4096; ++i) live.push_back(*pm.allocFrame(0));
  std::size_t k = 0;
  for (auto _ : state) {
    pm.putPage(live[k]);
    live[k] = *pm.allocFrame(0);
    k = (k + 1) & 4095;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_AllocFreeOrder0);

// THP-sized allocations (order 9) + free.
void BM_AllocFreeOrder9(benchmark::State& state) {
  PhysMem pm(ram(k64GiB));
  for (auto _ : state) {
    const Pfn p = *pm.allocFrame(9);
    pm.putPage(p);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_AllocFreeOrder9);

// frame(pfn) for random frames of an allocated 4 GiB working set.
void BM_FrameLookupRandom(benchmark::State& state) {
  PhysMem pm(ram(k64GiB));
  const Pfn g = *pm.allocFrame(18);
  for (std::uint64_t i = 0; i < (1u << 18); i += 512) benchmark::DoNotOptimize(pm.frame(g + i));
  Rng rng(7);
  std::vector<Pfn> pfns(1u << 16);
  for (auto& p : pfns) p = g + rng.below(1u << 18);
  std::size_t i = 0;
  std::uint64_t sum = 0;
  for (auto _ : state) {
    sum += pm.generationOf(pfns[i]);
    i = (i + 1) & (pfns.size() - 1);
  }
  benchmark::DoNotOptimize(sum);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_FrameLookupRandom);

// Whole-page write + read through PhysMem (the CPU/DMA data path).
void BM_WriteRead4K(benchmark::State& state) {
  PhysMem pm(ram(1ull << 30));
  std::vector<Pfn> pages;
  for (int i = 0; i < 1024; ++i) pages.push_back(*pm.allocFrame(0));
  std::vector<std::uint8_t> buf(kPageSize, 0x5a), back(kPageSize);
  std::size_t k = 0;
  for (auto _ : state) {
    pm.write(paOf(pages[k]), buf.data(), buf.size());
    pm.read(paOf(pages[k]), back.data(), back.size());
    k = (k + 1) & 1023;
  }
  state.SetBytesProcessed(state.iterations() * std::int64_t(2 * kPageSize));
}
BENCHMARK(BM_WriteRead4K);

// copy_highpage: Arg 0 = touched source, copy dropped again (the share/unshare bookkeeping of
// copy-on-write); Arg 1 = untouched source (lazy: nothing to share); Arg 2 = touched source and
// then one byte written into the copy (the full copy-on-write cost: share + 4 KiB copy).
void BM_CopyFrame(benchmark::State& state) {
  PhysMem pm(ram(1ull << 30));
  const Pfn a = *pm.allocFrame(0), z = *pm.allocFrame(0);
  std::vector<Pfn> dst;
  for (int i = 0; i < 1024; ++i) dst.push_back(*pm.allocFrame(0));
  std::vector<std::uint8_t> page(kPageSize, 0x3c);
  pm.write(paOf(a), page.data(), page.size());
  const std::int64_t mode = state.range(0);
  std::size_t k = 0;
  const std::uint8_t x = 1;
  for (auto _ : state) {
    const Pfn d = dst[k];
    k = (k + 1) & 1023;
    pm.copyFrame(d, mode == 1 ? z : a);
    if (mode == 2)
      pm.write(paOf(d), &x, 1);
    else
      pm.zeroFrame(d);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CopyFrame)->Arg(0)->Arg(1)->Arg(2);

}  // namespace

BENCHMARK_MAIN();
