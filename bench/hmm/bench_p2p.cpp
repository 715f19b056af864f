// The RFC p2p layer's throughput, each next to its reference in the same run:
//  - the importer's DMA-map step over 1 Mi pages of a special vma (vm_ops p2pMap) and of a peer's
//    device-private memory (devmem p2pMap), next to a plain hmmRangeFault of 1 Mi present pages;
//  - invalidations fanned out to 4 importers that each hold p2p mappings of the range.
// The exporters here are trivial (addresses = BAR base + offset) so the figures measure hmm/'s
// share; a real exporter adds its window manager and DMA-API costs.

#include <benchmark/benchmark.h>

#include <memory>
#include <vector>

#include "bench/hmm/bench_mirror_setup.h"
#include "hmm/hmm.h"
#include "hmm/hmm_dma_map.h"
#include "hmm/importer_mirror.h"
#include "hmm/memremap.h"
#include "hmm/migrate_device.h"
#include "hmm/p2p.h"
#include "models/cpu_mmu/file.h"
#include "models/cpu_mmu/memory.h"
#include "models/cpu_mmu/mm.h"
#include "models/cpu_mmu/mmu_notifier.h"
#include "models/cpu_mmu/phys_mem.h"
#include "models/cpu_mmu/vm_operations.h"
#include "models/cpu_mmu/vma.h"
#include "sim/assert.h"

using namespace hmmsim;
using namespace hmmsim::bench;

namespace {

constexpr std::uint64_t kPages = 1ull << 20;
constexpr std::uint64_t kBarBase = 0x40'0000'0000ull;

/// A special-vma exporter whose BAR maps the whole file: pa = BAR base + file offset.
struct FlatVmaExporter : VmOperations, FileOperations {
  Errno mmap(File&, Vma& vma) override {
    vma.vmOps = this;
    vma.vmFlags |= VM_IO | VM_PFNMAP;
    return Errno::Ok;
  }
  bool hasFault() const override { return false; }
  bool hasP2p() const override { return true; }
  Errno p2pMap(Vma& vma, Device&, Va start, Va end, DmaAddr* pa, bool) override {
    const std::uint64_t base = kBarBase + (vma.vmPgoff << kPageShift) + (start - vma.vmStart);
    const std::uint64_t n = (end - start) >> kPageShift;
    for (std::uint64_t i = 0; i < n; ++i) pa[i] = DmaAddr(base + (i << kPageShift));
    return Errno::Ok;
  }
  Errno p2pUnmap(Vma&, Device&, Va, Va, const DmaAddr*) override { return Errno::Ok; }
};

/// A devmem exporter whose BAR maps all of its memory: pa = BAR base + frame offset.
struct FlatDevmemExporter : DevmemP2pOps {
  std::uint64_t p2pMap(DeviceMemory& dm, Device&, Va, const unsigned long* pfns, std::uint64_t n,
                       DmaAddr* pas, bool) override {
    DeviceMemory::Chunk* c = dm.chunkOf(hmmPfnToPfn(pfns[0]));
    if (!c) return 0;
    std::uint64_t k = 0;
    for (; k < n; ++k) {
      const Pfn p = hmmPfnToPfn(pfns[k]);
      if (!c->pgmap.contains(p)) break;
      pas[k] = DmaAddr(kBarBase + (p.value() << kPageShift));
    }
    return k;
  }
  std::uint64_t p2pUnmap(DeviceMemory& dm, Device&, Va, const unsigned long* pfns, std::uint64_t n,
                         const DmaAddr*) override {
    DeviceMemory::Chunk* c = dm.chunkOf(hmmPfnToPfn(pfns[0]));
    std::uint64_t k = 0;
    while (c && k < n && c->pgmap.contains(hmmPfnToPfn(pfns[k]))) ++k;
    return k;
  }
};

/// RAM for 1 Mi pages twice over (source and device copies) and some to spare.
struct Platform : MirroredMm {
  Platform() : MirroredMm((kPages << kPageShift) * 2 + (512ull << 20)) {}
};

/// Plain hmmRangeFault of 1 Mi present pages (the reference).
void BM_P2pRefRangeFault1Mi(benchmark::State& state) {
  Platform p;
  const Va start = p.mmapPopulated(kPages);
  std::vector<unsigned long> pfns(kPages);
  for (auto _ : state) {
    HmmRange range = p.range(start, kPages, pfns.data(), HMM_PFN_REQ_FAULT);
    MmapReadLock l(*p.mm);
    HMMSIM_ASSERT(hmmRangeFault(range) == HmmStatus::Ok, "");
    benchmark::DoNotOptimize(pfns.data());
  }
  state.SetItemsProcessed(std::int64_t(state.iterations() * kPages));
}
BENCHMARK(BM_P2pRefRangeFault1Mi)->Unit(benchmark::kMillisecond);

/// hmmRangeDmaMap of 1 Mi pages of a special vma (one p2pMap call), then unmap (not timed).
void BM_P2pDmaMapSpecialVma1Mi(benchmark::State& state) {
  Platform p;
  FlatVmaExporter exp;
  auto file = openDeviceFile(p.pm, exp, FMODE_READ | FMODE_WRITE, "bar");
  const VaResult r = p.mm->mmap(Va(0), kPages << kPageShift, PROT_READ | PROT_WRITE, MAP_SHARED, file, 0);
  HMMSIM_ASSERT(r.ok(), "mmap");
  const Va start = r.addr;
  Device importer("importer");
  HmmDmaImporter imp;
  imp.device = &importer;
  std::vector<unsigned long> pfns(kPages);
  std::vector<DmaAddr> addrs(kPages);
  std::vector<HmmDmaKind> kinds(kPages);
  for (auto _ : state) {
    HmmRange range = p.range(start, kPages, pfns.data(), HMM_PFN_REQ_FAULT);
    MmapReadLock l(*p.mm);
    HMMSIM_ASSERT(hmmRangeDmaMap(range, imp, addrs.data(), kinds.data()) == HmmStatus::Ok, "");
    benchmark::DoNotOptimize(addrs.data());
    state.PauseTiming();
    hmmRangeDmaUnmap(range, imp, addrs.data(), kinds.data(), range.start, range.end);
    state.ResumeTiming();
  }
  state.SetItemsProcessed(std::int64_t(state.iterations() * kPages));
  p.mm->exitMmap();
}
BENCHMARK(BM_P2pDmaMapSpecialVma1Mi)->Unit(benchmark::kMillisecond);

/// hmmRangeDmaMap of 1 Mi pages of a peer's device-private memory (devmem p2pMap per run).
void BM_P2pDmaMapDevmem1Mi(benchmark::State& state) {
  Platform p;
  static const int kExporter = 0, kImporter = 0;
  DeviceMemoryParams dp;
  dp.chunkBytes = 256ull << 20;
  dp.capacityBytes = (kPages << kPageShift) + dp.chunkBytes;
  DeviceMemory dev(p.pm, dp, &kExporter, "exporter");
  FlatDevmemExporter exp;
  dev.setP2pOps(&exp);
  MigrateCopier copier(p.pm);
  const Va start = p.mmapPopulated(kPages);
  {  // migrate everything to the exporter's memory (setup, not timed)
    const std::uint64_t chunk = 1ull << 15;
    std::vector<unsigned long> src(chunk), dst(chunk);
    MmapReadLock l(*p.mm);
    for (std::uint64_t off = 0; off < kPages; off += chunk) {
      MigrateVma a;
      a.vma = p.mm->vmaLookup(start);
      a.src = src.data();
      a.dst = dst.data();
      a.start = start + (off << kPageShift);
      a.end = a.start + (chunk << kPageShift);
      a.pgmapOwner = &kExporter;
      a.flags = MIGRATE_VMA_SELECT_SYSTEM;
      HMMSIM_ASSERT(migrateVmaSetup(a) == Errno::Ok, "");
      for (std::uint64_t i = 0; i < chunk; ++i) {
        if (!(src[i] & MIGRATE_PFN_MIGRATE)) continue;
        const auto d = dev.allocPage();
        HMMSIM_ASSERT(d, "device full");
        dst[i] = migratePfn(*d);
      }
      migrateVmaPages(a);
      migrateVmaFinalize(a);
    }
  }
  Device importer("importer");
  HmmDmaImporter imp;
  imp.device = &importer;
  imp.owner = &kImporter;
  std::vector<unsigned long> pfns(kPages);
  std::vector<DmaAddr> addrs(kPages);
  std::vector<HmmDmaKind> kinds(kPages);
  for (auto _ : state) {
    HmmRange range = p.range(start, kPages, pfns.data(), HMM_PFN_REQ_FAULT);
    MmapReadLock l(*p.mm);
    const HmmStatus st = hmmRangeDmaMap(range, imp, addrs.data(), kinds.data());
    HMMSIM_ASSERT(st == HmmStatus::Ok && kinds[kPages - 1] == HmmDmaKind::DevmemP2p,
                  "devmem map: " << hmmStatusName(st));
    benchmark::DoNotOptimize(addrs.data());
    state.PauseTiming();
    hmmRangeDmaUnmap(range, imp, addrs.data(), kinds.data(), range.start, range.end);
    state.ResumeTiming();
  }
  state.SetItemsProcessed(std::int64_t(state.iterations() * kPages));
  p.mm->exitMmap();
}
BENCHMARK(BM_P2pDmaMapDevmem1Mi)->Unit(benchmark::kMillisecond);

/// One-page invalidations (zap_vma_ptes of a special vma) fanned out to 4 importers that each
/// hold p2p mappings of the whole range; items = invalidations. Remapping (when every page was
/// invalidated once) is not timed.
void BM_P2pInvalidateFanout4(benchmark::State& state) {
  constexpr std::uint64_t kRange = 1ull << 14;
  Platform p;
  FlatVmaExporter exp;
  auto file = openDeviceFile(p.pm, exp, FMODE_READ | FMODE_WRITE, "bar");
  const VaResult r = p.mm->mmap(Va(0), kRange << kPageShift, PROT_READ | PROT_WRITE, MAP_SHARED, file, 0);
  HMMSIM_ASSERT(r.ok(), "mmap");
  std::vector<std::unique_ptr<Device>> devs;
  std::vector<std::unique_ptr<ImporterMirror>> imps;
  ImporterMirrorParams ip;
  ip.chunkPages = 4096;
  for (int i = 0; i < 4; ++i) {
    devs.push_back(std::make_unique<Device>("imp" + std::to_string(i)));
    HmmDmaImporter imp;
    imp.device = devs.back().get();
    imps.push_back(
        std::make_unique<ImporterMirror>(*p.mm, imp, r.addr, kRange, ip, nullptr, "imp" + std::to_string(i)));
  }
  auto remap = [&] {
    for (auto& m : imps)
      HMMSIM_ASSERT(m->map(r.addr, r.addr + (kRange << kPageShift), false) == HmmStatus::Ok, "");
  };
  remap();
  std::uint64_t next = 0;
  for (auto _ : state) {
    if (next == kRange) {
      state.PauseTiming();
      remap();
      next = 0;
      state.ResumeTiming();
    }
    const Va a = r.addr + (next++ << kPageShift);
    zapVmaPtes(*p.mm, a, a + kPageSize);
  }
  state.SetItemsProcessed(std::int64_t(state.iterations()));
  imps.clear();
  p.mm->exitMmap();
}
BENCHMARK(BM_P2pInvalidateFanout4);

}  // namespace

BENCHMARK_MAIN();
