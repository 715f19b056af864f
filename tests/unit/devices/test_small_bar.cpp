// Issue 13's small_bar workload (models/platform/small_bar.h) on the platform builder: NIC
// importers read their slices of one special-vma mmap of a GPU's VRAM through a 256 MiB BAR
// (128 windows of 2 MiB), and the GPU's window policy decides. 8 importers x 64 MiB slices, one
// 4 KiB read per window, 2 passes: a footprint of 256 windows, twice the aperture. Assertions
// after sc_start().
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "models/devices/nic/nic.h"
#include "models/platform/small_bar.h"
#include "sim/config.h"
#include "tests/unit/devices/gpu_nic_platform.h"

using namespace hmmsim;
using namespace hmmsim::test;

namespace {

constexpr std::uint32_t kImporters = 8;
constexpr std::uint64_t kSlice = 64ull << 20;
constexpr std::uint64_t kRead = 4096;
constexpr std::uint32_t kPasses = 2;
constexpr std::uint64_t kLocations = kImporters * (kSlice >> 21);  // 256 windows' worth
constexpr std::uint64_t kApertureWindows = 128;                    // 256 MiB / 2 MiB

SmallBarParams params(std::uint32_t importers = kImporters) {
  SmallBarParams s;
  s.gpu = "gpu1";
  s.nic = "nic";
  s.process = "proc0";
  s.importers = importers;
  s.sliceBytes = kSlice;
  s.readBytes = kRead;
  s.strideBytes = 2ull << 20;
  s.passes = kPasses;
  s.retries = 2;
  s.backoffPs = 5'000'000;
  return s;
}

/// The fixture machine with the GPU's BAR policy `policy` (unlimited: a resized BAR as large as
/// VRAM).
PlatformDesc machine(BarPolicy policy, std::uint64_t capPages = 0) {
  GpuParams g = smallGpu();
  g.resizableBar = policy == BarPolicy::Unlimited;
  PlatformDesc d = gpuNicMachine(g);
  for (auto& e : d.topology.endpoints)
    if (e.name == "gpu1" && g.resizableBar) e.functions[0].bars[1].size = g.vramBytes;
  auto& gp = std::any_cast<GpuDeviceParams&>(d.devices[0].params);
  gp.driver.barPolicy = policy;
  gp.driver.importerCapPages = capPages;
  return d;
}

struct SmallBarRun {
  SmallBarRun(const std::string& tag, BarPolicy policy, std::uint32_t importers = kImporters,
              std::uint64_t capPages = 0)
      : p(tag, machine(policy, capPages), builtinDevices()), w(p, params(importers)) {
    w.start();
  }
  double stat(const std::string& name) { return workloadStat(p, w, name); }
  P2pBarManager& bar() { return w.parts().gpu().driver().exporter().bar(); }

  Platform p;
  SmallBar w;
};

/// After the run: finished, every byte exact, the checker clean, the BAR given back.
void checkClean(SmallBarRun& r) {
  r.w.finish();
  CHECK(r.w.done());
  CHECK(workloadFailures(r.w).empty());
  CHECK(r.stat("workload.bytes_wrong") == 0);
  CHECK(r.stat("workload.read_errors") == 0);
  CHECK(r.p.violations().ok());
  CHECK(r.bar().heldPages() == 0);  // every importer deregistered at its end
}

}  // namespace

TEST_CASE("small_bar: LRU reclaim thrashed by twice its windows revokes on every miss, bytes exact",
          "[devices][gpu][nic][platform][small_bar]") {
  SmallBarRun r("lru", BarPolicy::LruReclaim);
  sc_core::sc_start();
  checkClean(r);
  const std::uint64_t reads = kLocations * kPasses;
  CHECK(r.stat("workload.reads") == reads);
  CHECK(r.stat("workload.bytes_read") == reads * kRead);
  CHECK(r.stat("workload.reads_failed") == 0);
  // A cyclic footprint twice the LRU cache: every read misses; every fill after the first 128
  // re-points a window, revoking another importer's read first -- except the last 7 reads, which
  // find the windows of importer 0, done and deregistered, idle.
  const std::uint64_t revokes = reads - kApertureWindows - (kImporters - 1);
  CHECK(r.stat("workload.device_faults") == reads);
  CHECK(r.stat("workload.window_reclaims") == reads - kApertureWindows);
  CHECK(r.bar().stats().counterValue("reclaims_idle") == kImporters - 1);
  CHECK(r.stat("workload.revokes") == revokes);
  // One read's fault-around block each: the 4 KiB read's fault mapped the NIC's 16 pages around it.
  CHECK(r.stat("workload.revoked_pages") == revokes * NicParams{}.faultAroundPages);
  CHECK(r.stat("workload.refusals") == 0);
  CHECK(r.stat("workload.fairness") == 1.0);
  CHECK(r.stat("workload.revokes_per_s") == Approx(double(revokes) / (double(r.w.endPs()) * 1e-12)));
}

TEST_CASE("small_bar: an unlimited resized BAR faults once per location and never revokes",
          "[devices][gpu][nic][platform][small_bar]") {
  SmallBarRun r("unl", BarPolicy::Unlimited), lru("lru", BarPolicy::LruReclaim);
  sc_core::sc_start();
  checkClean(r);
  lru.w.finish();
  CHECK(r.stat("workload.bytes_read") == kLocations * kPasses * kRead);
  CHECK(r.stat("workload.device_faults") == kLocations);  // the first pass only
  CHECK(r.stat("workload.revokes") == 0);
  CHECK(r.stat("workload.window_reclaims") == 0);
  // No fault on the second pass: the same bytes in less time than under LRU's thrash.
  CHECK(r.stat("workload.throughput") > 1.5 * lru.stat("workload.throughput"));
}

TEST_CASE("small_bar: a footprint that fits the aperture never revokes under LRU reclaim",
          "[devices][gpu][nic][platform][small_bar]") {
  SmallBarRun r("fit", BarPolicy::LruReclaim, 4);  // 4 x 32 = 128 windows
  sc_core::sc_start();
  checkClean(r);
  CHECK(r.stat("workload.device_faults") == 128);
  CHECK(r.stat("workload.revokes") == 0);
}

TEST_CASE("small_bar: refuse_when_busy refuses maps once every window is held and never revokes",
          "[devices][gpu][nic][platform][small_bar]") {
  SmallBarRun r("rwb", BarPolicy::RefuseWhenBusy);
  sc_core::sc_start();
  checkClean(r);
  CHECK(r.stat("workload.revokes") == 0);
  CHECK(r.bar().stats().counterValue("refused_no_window") > 0);
  // The first 128 locations got the windows and keep them; every read of the others is refused
  // (ENOSPC), retried twice and given up -- until the holders deregister at their end, when a
  // retry may find a window.
  const double failed = r.stat("workload.reads_failed");
  CHECK(failed > 0);
  CHECK(r.stat("workload.refusals") >= 3 * failed);  // first try + 2 retries each
  CHECK(r.stat("workload.reads") + failed == kLocations * kPasses);
  CHECK(r.stat("workload.bytes_read") == r.stat("workload.reads") * kRead);
}

TEST_CASE("small_bar: per_importer_cap refuses the NIC beyond its cap although windows are free",
          "[devices][gpu][nic][platform][small_bar]") {
  // 64 pages: the fault-around blocks (16 pages) of 4 reads, of 128 locations.
  SmallBarRun r("cap", BarPolicy::PerImporterCap, kImporters, 64);
  sc_core::sc_start();
  checkClean(r);
  CHECK(r.stat("workload.revokes") == 0);
  CHECK(r.bar().stats().counterValue("refused_over_cap") > 0);
  CHECK(r.bar().stats().counterValue("refused_no_window") == 0);
  CHECK(r.stat("workload.reads_failed") > 0);
}

TEST_CASE("small_bar: importers x slice beyond VRAM is a ConfigError naming slice",
          "[devices][gpu][nic][platform][small_bar]") {
  Platform p("big", machine(BarPolicy::LruReclaim), builtinDevices());
  SmallBarParams s = params();
  s.importers = 17;  // 17 x 64 MiB > 1 GiB
  CHECK_THROWS_WITH(SmallBar(p, s), Catch::Contains("slice") && Catch::Contains("exceeds the GPU's VRAM"));
}
