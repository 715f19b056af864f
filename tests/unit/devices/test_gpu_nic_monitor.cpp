// RFC workload [2] on the platform builder: "Accelerator device doing heavy computation and
// network device is monitoring progress. Direct accelerator's memory access by the network device
// avoid the need to use much slower system memory." The GPU's compute engine streams VRAM and
// keeps a progress counter in VRAM; the NIC's monitoring mode samples it periodically three ways,
// on three machines in one simulation:
//  - none: the GPU computes alone (the baseline);
//  - p2p: the NIC reads the counter through a process VA range over the GPU's special-vma mmap of
//    VRAM (RFC 3/5), through its importer (ImporterDma), straight from the GPU's BAR under the switch;
//  - copy: the GPU's copy engine copies the counter into the process's pinned system memory before
//    every sample (a runtime's periodic device-to-host copy) and the NIC reads that.
// The workload is models/platform's GpuMonitor; assertions after sc_start().
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <vector>

#include "models/platform/gpu_monitor.h"
#include "tests/unit/devices/gpu_nic_platform.h"

using namespace hmmsim;
using namespace hmmsim::test;

namespace {

constexpr std::uint64_t kPeriod = 20'000'000;  // 20 us between samples
constexpr std::uint64_t kStart = 10'000'000;   // first sample at 10 us
constexpr std::uint64_t kLead = 5'000'000;     // the copy runs 5 us before each sample
constexpr std::uint32_t kSamples = 40;

GpuParams monitoredGpu() {
  GpuParams g = smallGpu();
  g.computeShare = 1.0;  // the kernel wants all of VRAM: any other VRAM user shows in its time
  return g;
}

GpuMonitorParams monitorParams(GpuMonitorMode m) {
  GpuMonitorParams w;
  w.gpu = "gpu1";
  w.nic = "nic";
  w.process = "proc0";
  w.mode = m;
  w.samples = kSamples;
  w.periodPs = kPeriod;
  w.startPs = kStart;
  w.leadPs = kLead;
  w.regionBytes = 4ull << 20;
  w.totalBytes = 32ull << 20;
  return w;
}

/// One machine running the monitor workload in mode `m`.
struct MonitorRun {
  MonitorRun(const std::string& tag, GpuMonitorMode m)
      : p(tag, gpuNicMachine(monitoredGpu()), builtinDevices()), w(p, monitorParams(m)) {
    w.start();
  }
  Gpu& gpu() { return w.parts().gpu().gpu(); }
  Nic& nic() { return w.parts().nic(); }
  /// Stat `name` as addStats registers it ("workload.slowdown", "device.<gpu>.bar.bytes_read").
  double stat(const std::string& name) { return workloadStat(p, w, name); }
  std::vector<std::string> failures() { return workloadFailures(w); }

  Platform p;
  GpuMonitor w;
};

}  // namespace

TEST_CASE("NIC monitors a GPU's progress counter: p2p from VRAM vs a copy through system memory",
          "[devices][gpu][nic][platform][workload2]") {
  MonitorRun none("none", GpuMonitorMode::None), p2p("p2p", GpuMonitorMode::P2p),
      copy("copy", GpuMonitorMode::Copy);
  sc_core::sc_start();
  for (MonitorRun* r : {&none, &p2p, &copy}) {
    r->w.finish();
    INFO(gpuMonitorModeName(r->w.params().mode));
    CHECK(r->w.done());
    CHECK(r->failures().empty());  // the workload's own verdict
  }

  const GpuParams gp = none.gpu().params();
  // The baseline kernel at its pace: 2 x 32 MiB over 64 GB/s of VRAM.
  const double pacePs = 2.0 * double(32ull << 20) * 8.0 * 1000.0 / (gp.computeShare * gp.vramGbps());
  CHECK(none.w.pacePs() == Approx(pacePs));
  CHECK(double(none.w.kernelPs()) == Approx(pacePs).epsilon(0.01));
  const std::uint64_t endPs =
      std::min({none.gpu().kernelEndPs(), p2p.gpu().kernelEndPs(), copy.gpu().kernelEndPs()});
  REQUIRE(kStart + (kSamples - 1) * kPeriod < endPs);  // every sample falls while the GPU computes

  // p2p: every sample is a value the counter held while the NIC's read was in flight, by the GPU's
  // own record; the samples rise with the computation.
  const auto& hp = p2p.gpu().progressHistory();
  REQUIRE(p2p.nic().monitorSamples().size() == kSamples);
  std::uint64_t last = 0, p2pAge = 0;
  for (std::uint32_t i = 0; i < kSamples; ++i) {
    const NicMonitorSample& s = p2p.nic().monitorSamples()[i];
    INFO("p2p sample " << i << " issued " << s.issuePs << " value " << p2p.w.sample(i));
    CHECK(s.ok);
    CHECK(gpuCounterHeld(hp, p2p.w.sample(i), s.issuePs, s.donePs));
    CHECK(p2p.w.sample(i) > last);
    last = p2p.w.sample(i);
    p2pAge = std::max(p2pAge, gpuCounterAt(hp, s.issuePs) - p2p.w.sample(i));
  }
  CHECK(p2pAge <= gp.computeChunkBytes);  // at most the chunk retiring as the read goes out
  CHECK(p2p.w.stats().counterValue("samples_held") == kSamples);
  CHECK(p2p.w.parts().importer()->stats().counterValue("device_faults") == 0);
  CHECK(rootComplexP2p(p2p.p) == 0);  // under the switch: the root complex never sees it
  CHECK(dramBytes(p2p.p) == 0);       // system memory is not involved at all

  // copy: every sample is the value the counter held when the copy engine read it, kLead before.
  const auto& hc = copy.gpu().progressHistory();
  REQUIRE(copy.nic().monitorSamples().size() == kSamples);
  REQUIRE(copy.w.copyIssuePs().size() == kSamples);
  std::uint64_t staleBytes = 0;
  for (std::uint32_t i = 0; i < kSamples; ++i) {
    const NicMonitorSample& s = copy.nic().monitorSamples()[i];
    INFO("copy sample " << i << " issued " << s.issuePs << " value " << copy.w.sample(i));
    CHECK(s.ok);
    CHECK(copy.w.copyDonePs()[i] <= s.issuePs);  // the copy landed before the NIC reads
    CHECK(gpuCounterHeld(hc, copy.w.sample(i), copy.w.copyIssuePs()[i], copy.w.copyDonePs()[i]));
    CHECK(gpuCounterAt(hc, s.issuePs) > copy.w.sample(i));  // stale by the lead: the GPU went on
    staleBytes += gpuCounterAt(hc, s.issuePs) - copy.w.sample(i);
  }
  CHECK(copy.stat("workload.staleness_mean") == Approx(double(staleBytes) / kSamples));
  // DRAM: exactly the counter written by the copy engine and read by the NIC, per sample.
  CHECK(dramBytes(copy.p) == 2 * kSamples * kGpuCounterBytes);
  CHECK(copy.gpu().stats().counterValue("copy_bytes_from_vram") == kSamples * kGpuCounterBytes);

  // The GPU's slowdown. The compute engine books each chunk's read and write-back on the VRAM
  // channels when it issues it; a monitor's 8-byte VRAM read takes one channel for
  // ser = 8 B / channel bandwidth. The copy engine books at its own SystemC time, inside what the
  // compute engine already booked: each copy delays the kernel by at most ser. The NIC's read is
  // booked where it reaches VRAM, up to its fabric path latency ahead of SystemC time; the next
  // chunk's bookings take the channels' free time around it (PcieMemoryTarget::localStream), so
  // it costs the kernel only the channel time it occupies: its ser, stretched to its tail (the
  // fabric books a read from its head to its last byte's arrival, cut-through), well under 2 ser
  // per sample. (Booked whole, a chunk lost the hole in front of the read: about 28 ns a sample.)
  const std::uint64_t serPs =
      static_cast<std::uint64_t>(std::ceil(double(kGpuCounterBytes) * 8.0 * 1000.0 / gp.vramChannelGbps));
  const double p2pBound = double(kSamples * 2 * serPs);
  const std::uint64_t t0 = none.w.kernelPs(), tp = p2p.w.kernelPs(), tc = copy.w.kernelPs();
  INFO("kernel ps: none " << t0 << " p2p " << tp << " copy " << tc << "; p2p bound " << p2pBound
                          << ", copy bound " << kSamples * serPs << "; copy staleness "
                          << staleBytes / kSamples << " B/sample");
  CHECK(tp >= t0);
  CHECK(tc >= t0);
  CHECK(double(tp - t0) <= p2pBound);
  CHECK(tc - t0 <= kSamples * serPs);
  CHECK(p2p.stat("workload.slowdown") == Approx(double(tp) / pacePs));
  CHECK(p2p.stat("device.gpu1.bar.bytes_read") == kSamples * kGpuCounterBytes);  // the reads
  // What the copy path costs instead: every sample is stale by the lead (the GPU went on), and
  // the counter crosses system memory twice (asserted above).
  CHECK(staleBytes / kSamples >= gp.computeChunkBytes);

  for (MonitorRun* r : {&none, &p2p, &copy}) {  // completion: an MSI to the driver's handler
    CHECK(r->w.parts().gpu().kernelInterrupts() == 1);
    CHECK(r->w.parts().gpu().lastKernelInterruptPs() >=
          r->gpu().kernelEndPs() + r->p.desc().interrupts.entryLatencyPs);
  }
  CHECK(none.p.violations().ok());
  CHECK(p2p.p.violations().ok());
  CHECK(copy.p.violations().ok());
}
