// hmm-tests.c benchmark_thp_migration as a Google Benchmark: one round = MIGRATE_TO_DEV then
// MIGRATE_TO_SYS of a buffer of PMD x {1/4, 1/2, 1, 2, 4, 8} through the dmirror device
// (private variant), with THP (MADV_HUGEPAGE, 2 MiB-aligned) and without (MADV_NOHUGEPAGE).
// The kernel's 128 x PMD size is left out to keep the host memory small; the per-byte figures
// are flat from 8 x PMD on. Reported: host time per round (the simulator's speed), and the
// simulated copy time per round ("sim_copy_us", the MigrateCopier's cost model) as counters.

#include <benchmark/benchmark.h>

#include <memory>
#include <vector>

#include "models/cpu_mmu/memory.h"
#include "models/cpu_mmu/mm.h"
#include "models/cpu_mmu/phys_mem.h"
#include "models/devices/dmirror/dmirror.h"
#include "sim/assert.h"

using namespace hmmsim;

namespace {

void BM_ThpMigration(benchmark::State& state) {
  const std::uint64_t size = static_cast<std::uint64_t>(state.range(0)) * (kPmdSize / 4);
  const bool thp = state.range(1) != 0;
  const std::uint64_t npages = size >> kPageShift;

  PhysMemParams pp;
  pp.ramSize = 256ull << 20;
  PhysMem pm(pp);
  DmirrorDevice dev(pm, 0, MemoryType::DevicePrivate);
  auto mm = std::make_unique<Mm>(pm, "bench");
  auto fd = dev.open(*mm);
  HMMSIM_ASSERT(fd, "open");

  VaResult map = mm->mmap(Va(0), size + kPmdSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  HMMSIM_ASSERT(map.ok(), "mmap");
  const Va ptr = map.addr.alignUp(kPmdSize);
  HMMSIM_ASSERT(mm->madvise(ptr, size, thp ? MADV_HUGEPAGE : MADV_NOHUGEPAGE) == Errno::Ok, "madvise");
  VaResult mirror = mm->mmap(Va(0), size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  HMMSIM_ASSERT(mirror.ok(), "mmap mirror");
  {
    std::vector<int> v(size / sizeof(int));
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<int>(i);
    HMMSIM_ASSERT(copyToUser(*mm, ptr, v.data(), size) == Errno::Ok, "init");
  }

  HmmDmirrorCmd cmd;
  std::uint64_t simPs = 0;
  for (auto _ : state) {
    cmd = HmmDmirrorCmd{ptr.value(), mirror.addr.value(), npages, 0, 0};
    HMMSIM_ASSERT(dev.ioctl(*fd, HMM_DMIRROR_MIGRATE_TO_DEV, cmd) == Errno::Ok, "to dev");
    cmd = HmmDmirrorCmd{ptr.value(), mirror.addr.value(), npages, 0, 0};
    HMMSIM_ASSERT(dev.ioctl(*fd, HMM_DMIRROR_MIGRATE_TO_SYS, cmd) == Errno::Ok, "to sys");
    HMMSIM_ASSERT(cmd.cpages == npages, "cpages " << cmd.cpages);
    simPs += dev.copier().takePendingPs();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * 2 *
                          static_cast<std::int64_t>(size));
  state.counters["sim_copy_us"] =
      benchmark::Counter(static_cast<double>(simPs) / 1e6 / static_cast<double>(state.iterations()));
  state.counters["pages"] = static_cast<double>(npages);
  fd.reset();
  mm->exitMmap();
}

// range(0): size in quarter PMDs (1 = PMD/4 ... 32 = 8 x PMD); range(1): THP on/off.
BENCHMARK(BM_ThpMigration)
    ->ArgNames({"quarter_pmds", "thp"})
    ->ArgsProduct({{1, 2, 4, 8, 16, 32}, {0, 1}})
    ->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
