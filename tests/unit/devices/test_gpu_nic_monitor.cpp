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
// Assertions after sc_start().
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "models/cpu_mmu/memory.h"
#include "tests/unit/devices/gpu_nic_platform.h"

using namespace hmmsim;
using namespace hmmsim::test;

namespace {

constexpr std::uint64_t kPeriod = 20'000'000;  // 20 us between samples
constexpr std::uint64_t kStart = 10'000'000;   // first sample at 10 us
constexpr std::uint64_t kLead = 5'000'000;     // the copy runs 5 us before each sample
constexpr std::uint32_t kSamples = 40;
constexpr std::uint64_t kCounterBytes = 8;

GpuParams monitoredGpu() {
  GpuParams g = smallGpu();
  g.computeShare = 1.0;  // the kernel wants all of VRAM: any other VRAM user shows in its time
  g.recordProgress = true;
  return g;
}

enum class Mode { None, P2p, Copy };

struct MonitorRun : GpuNicRun {
  MonitorRun(const std::string& tag, Mode m) : GpuNicRun(tag, monitoredGpu()), mode(m) {
    k.regionOffset = gpu.driver().kernelRegionOffset();
    k.regionBytes = 4ull << 20;
    k.totalBytes = 32ull << 20;
    k.progressOffset = k.regionOffset + k.regionBytes;
    NicMonitorParams mon;
    mon.bytes = kCounterBytes;
    mon.periodPs = kPeriod;
    mon.samples = kSamples;
    mon.startPs = kStart;
    if (mode == Mode::P2p) {
      const Va v = mapVram(k.progressOffset, kPageSize);  // the counter's page of VRAM, a special vma
      nic.setMonitorImporter(&nicImporter(v, kPageSize));
      mon.addr = v.value();
    } else if (mode == Mode::Copy) {
      ram = mapAnon(kPageSize);
      const std::uint64_t zero = 0;
      REQUIRE(copyToUser(mm, ram, &zero, sizeof zero) == Errno::Ok);
      nic.setMonitorImporter(&nicImporter(ram, kPageSize));
      mon.addr = ram.value();
      copier = std::make_unique<QkThread>((tag + "_copier").c_str(),
                                          [this](tlm_utils::tlm_quantumkeeper& qk) { copyLoop(qk); });
    }
    if (mode != Mode::None) nic.startMonitor(mon);
    host = std::make_unique<QkThread>((tag + "_host").c_str(), [this](tlm_utils::tlm_quantumkeeper&) {
      gpu.gpu().launch(k);
      sc_core::wait(gpu.kernelCompletion());  // the driver's handler took the kernel's MSI
    });
  }
  // The runtime's periodic device-to-host copy of the counter, kLead before each sample.
  void copyLoop(tlm_utils::tlm_quantumkeeper& qk) {
    for (std::uint32_t i = 0; i < kSamples; ++i) {
      qk.sync();
      const std::uint64_t at = kStart + i * kPeriod - kLead, now = sc_core::sc_time_stamp().value();
      if (at > now) sc_core::wait(sc_core::sc_time::from_value(at - now));
      copyIssuePs.push_back(sc_core::sc_time_stamp().value());
      REQUIRE(gpu.driver().copyVramToUser(mm, ram, k.progressOffset, kCounterBytes, qk) == Errno::Ok);
      copyDonePs.push_back(sc_core::sc_time_stamp().value());
    }
  }
  std::uint64_t kernelPs() { return gpu.gpu().kernelEndPs() - gpu.gpu().kernelStartPs(); }
  std::uint64_t sample(std::size_t i) const {
    std::uint64_t v = 0;
    std::memcpy(&v, nic.monitorSamples()[i].data.data(), sizeof v);
    return v;
  }

  Mode mode;
  GpuKernel k;
  Va ram;
  std::vector<std::uint64_t> copyIssuePs, copyDonePs;
  std::unique_ptr<QkThread> copier, host;
};

// True when the counter held `v` at some time in [from, to] by the GPU's own record.
bool heldDuring(const std::vector<GpuProgressPoint>& h, std::uint64_t v, std::uint64_t from,
                std::uint64_t to) {
  for (std::size_t j = 0; j < h.size(); ++j)
    if (h[j].value == v && h[j].ps <= to && (j + 1 == h.size() || h[j + 1].ps >= from)) return true;
  return false;
}

// The counter's value at time t by the GPU's record.
std::uint64_t valueAt(const std::vector<GpuProgressPoint>& h, std::uint64_t t) {
  std::uint64_t v = 0;
  for (const GpuProgressPoint& p : h)
    if (p.ps <= t) v = p.value;
  return v;
}

}  // namespace

TEST_CASE("NIC monitors a GPU's progress counter: p2p from VRAM vs a copy through system memory",
          "[devices][gpu][nic][platform][workload2]") {
  MonitorRun none("none", Mode::None), p2p("p2p", Mode::P2p), copy("copy", Mode::Copy);
  sc_core::sc_start();

  const GpuParams gp = monitoredGpu();
  // The baseline kernel at its pace: 2 x 32 MiB over 64 GB/s of VRAM.
  const double pacePs = 2.0 * double(none.k.totalBytes) * 8.0 * 1000.0 / (gp.computeShare * gp.vramGbps());
  CHECK(double(none.kernelPs()) == Approx(pacePs).epsilon(0.01));
  const std::uint64_t endPs =
      std::min({none.gpu.gpu().kernelEndPs(), p2p.gpu.gpu().kernelEndPs(), copy.gpu.gpu().kernelEndPs()});
  REQUIRE(kStart + (kSamples - 1) * kPeriod < endPs);  // every sample falls while the GPU computes

  // p2p: every sample is a value the counter held while the NIC's read was in flight, by the GPU's
  // own record; the samples rise with the computation.
  const auto& hp = p2p.gpu.gpu().progressHistory();
  REQUIRE(p2p.nic.monitorSamples().size() == kSamples);
  std::uint64_t last = 0, p2pAge = 0;
  for (std::uint32_t i = 0; i < kSamples; ++i) {
    const NicMonitorSample& s = p2p.nic.monitorSamples()[i];
    INFO("p2p sample " << i << " issued " << s.issuePs << " value " << p2p.sample(i));
    CHECK(s.ok);
    CHECK(heldDuring(hp, p2p.sample(i), s.issuePs, s.donePs));
    CHECK(p2p.sample(i) > last);
    last = p2p.sample(i);
    p2pAge = std::max(p2pAge, valueAt(hp, s.issuePs) - p2p.sample(i));
  }
  CHECK(p2pAge <= gp.computeChunkBytes);  // at most the chunk retiring as the read goes out
  CHECK(p2p.importer->stats().counterValue("device_faults") == 0);
  CHECK(p2p.rootComplexP2p() == 0);  // under the switch: the root complex never sees it
  CHECK(p2p.dramBytes() == 0);       // system memory is not involved at all

  // copy: every sample is the value the counter held when the copy engine read it, kLead before.
  const auto& hc = copy.gpu.gpu().progressHistory();
  REQUIRE(copy.nic.monitorSamples().size() == kSamples);
  REQUIRE(copy.copyIssuePs.size() == kSamples);
  std::uint64_t staleBytes = 0;
  for (std::uint32_t i = 0; i < kSamples; ++i) {
    const NicMonitorSample& s = copy.nic.monitorSamples()[i];
    INFO("copy sample " << i << " issued " << s.issuePs << " value " << copy.sample(i));
    CHECK(s.ok);
    CHECK(copy.copyDonePs[i] <= s.issuePs);  // the copy landed before the NIC reads
    CHECK(heldDuring(hc, copy.sample(i), copy.copyIssuePs[i], copy.copyDonePs[i]));
    CHECK(valueAt(hc, s.issuePs) > copy.sample(i));  // stale by the lead: the GPU went on
    staleBytes += valueAt(hc, s.issuePs) - copy.sample(i);
  }
  // DRAM: exactly the counter written by the copy engine and read by the NIC, per sample.
  CHECK(copy.dramBytes() == 2 * kSamples * kCounterBytes);
  CHECK(copy.gpu.gpu().stats().counterValue("copy_bytes_from_vram") == kSamples * kCounterBytes);

  // The GPU's slowdown. The compute engine books each chunk's read and write-back on the VRAM
  // channels when it issues it; a monitor's 8-byte VRAM read takes one channel for
  // ser = 8 B / channel bandwidth. The copy engine books at its own SystemC time, inside what the
  // compute engine already booked: each copy delays the kernel by at most ser. The NIC's read is
  // booked where it reaches VRAM, up to its fabric path latency ahead of SystemC time; the next
  // chunk's per-channel booking (chunk / channels at channel bandwidth) must fit whole in a gap,
  // so the hole before the peer's booking (at most the path latency, itself less than the
  // sample's round trip) can be lost too: per sample at most ser + min(round trip, chunk booking).
  const std::uint64_t serPs =
      static_cast<std::uint64_t>(std::ceil(double(kCounterBytes) * 8.0 * 1000.0 / gp.vramChannelGbps));
  const double chunkBookingPs =
      double(gp.computeChunkBytes / gp.vramChannels) * 8.0 * 1000.0 / gp.vramChannelGbps;
  double p2pBound = 0;
  for (const NicMonitorSample& s : p2p.nic.monitorSamples())
    p2pBound += double(serPs) + std::min(double(s.donePs - s.issuePs), chunkBookingPs);
  const std::uint64_t t0 = none.kernelPs(), tp = p2p.kernelPs(), tc = copy.kernelPs();
  INFO("kernel ps: none " << t0 << " p2p " << tp << " copy " << tc << "; p2p bound " << p2pBound
                          << ", copy bound " << kSamples * serPs << "; copy staleness "
                          << staleBytes / kSamples << " B/sample");
  CHECK(tp >= t0);
  CHECK(tc >= t0);
  CHECK(double(tp - t0) <= p2pBound);
  CHECK(tc - t0 <= kSamples * serPs);
  // What the copy path costs instead: every sample is stale by the lead (the GPU went on), and
  // the counter crosses system memory twice (asserted above).
  CHECK(staleBytes / kSamples >= gp.computeChunkBytes);

  for (MonitorRun* r : {&none, &p2p, &copy}) {  // completion: an MSI to the driver's handler
    CHECK(r->gpu.kernelInterrupts() == 1);
    CHECK(r->gpu.lastKernelInterruptPs() >=
          r->gpu.gpu().kernelEndPs() + r->p.desc().interrupts.entryLatencyPs);
  }
  CHECK(none.p.violations().ok());
  CHECK(p2p.p.violations().ok());
  CHECK(copy.p.violations().ok());
}
