// The GPU progress monitor on a Platform. See gpu_monitor.h.
#include "models/platform/gpu_monitor.h"

#include <algorithm>
#include <cstring>

#include "models/cpu_mmu/memory.h"
#include "models/cpu_mmu/sequencer.h"
#include "sim/config.h"
#include "sim/errno.h"

namespace hmmsim {

namespace {
[[noreturn]] void fail(const std::string& key, const std::string& msg) {
  throw ConfigError("<workload>", 0, 0, key, msg);
}
}  // namespace

const char* gpuMonitorModeName(GpuMonitorMode m) {
  switch (m) {
    case GpuMonitorMode::None:
      return "none";
    case GpuMonitorMode::P2p:
      return "p2p";
    case GpuMonitorMode::Copy:
      return "copy";
  }
  return "?";
}

bool gpuCounterHeld(const std::vector<GpuProgressPoint>& h, std::uint64_t v, std::uint64_t from,
                    std::uint64_t to) {
  for (std::size_t j = 0; j < h.size(); ++j)
    if (h[j].value == v && h[j].ps <= to && (j + 1 == h.size() || h[j + 1].ps >= from)) return true;
  return false;
}

std::uint64_t gpuCounterAt(const std::vector<GpuProgressPoint>& h, std::uint64_t t) {
  std::uint64_t v = 0;
  for (const GpuProgressPoint& p : h)
    if (p.ps <= t) v = p.value;
  return v;
}

std::vector<PlaceableRegion> gpuMonitorPlaceable(const GpuMonitorParams& params, const GpuVramLayout& gpu) {
  PlaceableRegion counter{"counter", params.process, kPageSize, {}};
  switch (params.mode) {
    case GpuMonitorMode::Copy:
      counter.rule.what = "in mode copy the counter is process memory";
      counter.rule.users = "the GPU's copy engine writes it, the NIC reads it";
      counter.rule.alternative = "or take mode: p2p with a device-file mapping of " + params.gpu;
      break;
    case GpuMonitorMode::P2p: {
      // The kernel writes its progress in the page after its region (GpuMonitor's progressOffset).
      const std::uint64_t page = gpu.kernelRegionOffset() + params.regionBytes;
      setVramRule(counter.rule, params.gpu, gpu, page, page + kPageSize,
                  "the page of the kernel's progress counter, after its region");
      counter.rule.what = "in mode p2p the counter is " + params.gpu + "'s VRAM";
      counter.rule.users = "the NIC reads it";
      counter.rule.prot = PROT_READ;
      counter.rule.alternative = "or take mode: copy";
      break;
    }
    case GpuMonitorMode::None:
      counter.rule.memory = PlacementRule::Memory::None;
      counter.rule.what = "in mode none there is no counter to read: place it in mode copy or p2p";
      break;
  }
  return {counter};
}

GpuMonitor::GpuMonitor(Platform& platform, const GpuMonitorParams& params)
    : params_(params), parts_(platform, params.gpu, params.nic, params.process), stats_("workload") {
  GpuDriver& drv = parts_.gpu().driver();
  if (params.regionBytes == 0 || params.regionBytes % kPageSize != 0)
    fail("region", "the kernel's region must be a positive multiple of 4KiB");
  if (params.regionBytes + kPageSize > drv.params().kernelRegionBytes)
    fail("region", "the region and the counter's page must fit in the GPU driver's kernel region (" +
                       std::to_string(drv.params().kernelRegionBytes) + " bytes)");
  if (params.mode == GpuMonitorMode::Copy && params.leadPs > params.startPs)
    fail("lead", "the first copy would be issued before time 0: lead must be at most start");
  const std::vector<PlaceableRegion> placeable = gpuMonitorPlaceable(params, GpuVramLayout::of(parts_.gpu()));
  checkPlacement(platform, params.place, placeable);
  parts_.gpu().gpu().setRecordProgress(true);
  kernel_.regionOffset = drv.kernelRegionOffset();
  kernel_.regionBytes = params.regionBytes;
  kernel_.totalBytes = params.totalBytes;
  kernel_.progressOffset = kernel_.regionOffset + kernel_.regionBytes;
  monitor_.bytes = kGpuCounterBytes;
  monitor_.periodPs = params.periodPs;
  monitor_.samples = params.samples;
  monitor_.startPs = params.startPs;
  if (params.mode == GpuMonitorMode::P2p) {
    // The counter's page, a special vma: the process's device-file mapping of it, or the workload's own.
    const std::optional<Va> placed = placedRegion(platform, params.place, placeable.front());
    const Va v = placed ? *placed : parts_.mapVram(kernel_.progressOffset, kPageSize);
    parts_.nic().setMonitorImporter(&parts_.importerOver(v, kPageSize));
    monitor_.addr = v.value();
    counter_ = v;
  } else if (params.mode == GpuMonitorMode::Copy) {
    ram_ = parts_.processBuffer(params.place, placeable.front());
    parts_.nic().setMonitorImporter(&parts_.importerOver(ram_, kPageSize));
    monitor_.addr = ram_.value();
    counter_ = ram_;
    copier_ = std::make_unique<DriverThread>((std::string(parts_.nic().basename()) + "_copier").c_str(),
                                             platform, [this](DriverThread&) { copyLoop(); });
  }
  host_ = std::make_unique<DriverThread>(
      (std::string(parts_.gpu().gpu().basename()) + "_host").c_str(), platform, [this](DriverThread&) {
        GpuPlatformDevice& g = parts_.gpu();
        g.gpu().launch(kernel_);
        // Until the driver's handler took the kernel's MSI.
        // raw-systemc: kernelCompletion() is notified by delta notification (the MSI handler).
        sc_core::wait(g.kernelCompletion());
        kernelDone_ = true;
        if (trace_)
          trace_->slice(TraceCategory::Dma, "device." + params_.gpu, "kernel", g.gpu().kernelStartPs(),
                        g.gpu().kernelEndPs() - g.gpu().kernelStartPs());
      });
}

GpuMonitor::~GpuMonitor() = default;

void GpuMonitor::start() {
  if (params_.mode != GpuMonitorMode::None) parts_.nic().startMonitor(monitor_);
}

bool GpuMonitor::done() const {
  const std::size_t want = params_.mode == GpuMonitorMode::None ? 0 : params_.samples;
  return kernelDone_ && parts_.nic().monitorSamples().size() >= want;
}

// The runtime's periodic device-to-host copy of the counter, `lead` before each sample.
void GpuMonitor::copyLoop() {
  SeqQuantumKeeper qk;
  qk.reset();
  for (std::uint32_t i = 0; i < params_.samples; ++i) {
    qk.sync();
    const std::uint64_t at = params_.startPs + i * params_.periodPs - params_.leadPs;
    const std::uint64_t now = sc_core::sc_time_stamp().value();
    if (at > now) seqWait(sc_core::sc_time::from_value(at - now));
    copyIssuePs_.push_back(sc_core::sc_time_stamp().value());
    const Errno e =
        parts_.gpu().driver().copyVramToUser(parts_.mm(), ram_, kernel_.progressOffset, kGpuCounterBytes, qk);
    qk.sync();
    copyDonePs_.push_back(e == Errno::Ok ? sc_core::sc_time_stamp().value() : ~0ull);
    if (trace_)
      trace_->slice(TraceCategory::Dma, "device." + params_.gpu, "copy counter to RAM", copyIssuePs_.back(),
                    sc_core::sc_time_stamp().value() - copyIssuePs_.back());
  }
}

std::uint64_t GpuMonitor::kernelPs() const {
  Gpu& g = parts_.gpu().gpu();
  return g.kernelEndPs() - g.kernelStartPs();
}

double GpuMonitor::pacePs() const {
  const GpuParams& gp = parts_.gpu().gpu().params();
  return 2.0 * double(kernel_.totalBytes) * 8.0 * 1000.0 / (gp.computeShare * gp.vramGbps());
}

std::uint64_t GpuMonitor::sample(std::size_t i) const {
  std::uint64_t v = 0;
  const NicMonitorSample& s = parts_.nic().monitorSamples().at(i);
  std::memcpy(&v, s.data.data(), std::min(sizeof v, s.data.size()));
  return v;
}

bool GpuMonitor::sampleHeld(std::size_t i) const {
  const GpuNicParts& parts = parts_;
  const auto& h = parts.gpu().gpu().progressHistory();
  const NicMonitorSample& s = parts.nic().monitorSamples()[i];
  if (params_.mode == GpuMonitorMode::P2p) return gpuCounterHeld(h, sample(i), s.issuePs, s.donePs);
  if (i >= copyDonePs_.size()) return false;
  return gpuCounterHeld(h, sample(i), copyIssuePs_[i], copyDonePs_[i]);
}

void GpuMonitor::finish() {
  Gpu& g = parts_.gpu().gpu();
  const auto& h = g.progressHistory();
  const auto& samples = parts_.nic().monitorSamples();
  Counter& count = stats_.counter("samples", "samples", "progress samples the NIC took");
  Counter& ok = stats_.counter("samples_ok", "samples", "samples read without a DMA error");
  Counter& held =
      stats_.counter("samples_held", "samples",
                     "samples equal to a value the counter held while it was read (p2p) or copied");
  Distribution& stale = stats_.distribution(
      "staleness", "B", "progress the GPU had made past the sampled value when the NIC read it");
  Distribution& lat = stats_.distribution("sample_latency", "ps", "NIC read issued -> sample in");
  std::vector<std::uint64_t> staleV, latV;
  for (std::size_t i = 0; i < samples.size(); ++i) {
    const NicMonitorSample& s = samples[i];
    ++count;
    if (s.ok) ++ok;
    if (sampleHeld(i)) ++held;
    const std::uint64_t now = gpuCounterAt(h, s.issuePs), v = sample(i);
    staleV.push_back(now > v ? now - v : 0);
    latV.push_back(s.donePs - s.issuePs);
    stale.sample(staleV.back());
    lat.sample(latV.back());
  }
  stats_.scalar("kernel_time", "ps", "the kernel's time, launch to last byte written back")
      .set(double(kernelPs()));
  stats_.scalar("kernel_pace", "ps", "the kernel's time alone at its share of VRAM bandwidth").set(pacePs());
  stats_.scalar("slowdown", "ratio", "kernel_time / kernel_pace").set(double(kernelPs()) / pacePs());
  double mean = 0;
  for (std::uint64_t v : staleV) mean += double(v);
  stats_.scalar("staleness_mean", "B", "mean staleness of a sample")
      .set(staleV.empty() ? 0 : mean / staleV.size());
  stats_.scalar("staleness_max", "B", "largest staleness of a sample")
      .set(double(staleV.empty() ? 0 : *std::max_element(staleV.begin(), staleV.end())));
  stats_.scalar("sample_latency_p50", "ps", "median sample read latency").set(double(percentile(latV, 0.50)));
  stats_.scalar("sample_latency_p99", "ps", "99th percentile sample read latency")
      .set(double(percentile(latV, 0.99)));
}

void GpuMonitor::check(const std::string& at, std::vector<std::string>& failures) const {
  const GpuNicParts& parts = parts_;
  Gpu& g = parts.gpu().gpu();
  if (parts.gpu().kernelInterrupts() != 1)
    failures.push_back(at + "the kernel's completion interrupt was taken " +
                       std::to_string(parts.gpu().kernelInterrupts()) + " times, expected once");
  if (params_.mode == GpuMonitorMode::None) return;
  const auto& samples = parts.nic().monitorSamples();
  if (samples.size() != params_.samples)
    failures.push_back(at + std::to_string(samples.size()) + " of " + std::to_string(params_.samples) +
                       " samples came in");
  std::vector<std::string> bad;  // per sample; the first few are listed
  for (std::size_t i = 0; i < samples.size(); ++i) {
    const NicMonitorSample& s = samples[i];
    const std::string n = "sample " + std::to_string(i) + ": ";
    if (!s.ok) bad.push_back(n + "the NIC's read failed");
    if (!sampleHeld(i))
      bad.push_back(n + "value " + std::to_string(sample(i)) + " is not one the counter held while " +
                    (params_.mode == GpuMonitorMode::P2p ? "the NIC read it" : "it was copied"));
    if (params_.mode == GpuMonitorMode::Copy && (i >= copyDonePs_.size() || copyDonePs_[i] > s.issuePs))
      bad.push_back(n + "its copy had not landed in system memory when the NIC read it");
    if (s.donePs > g.kernelEndPs())
      bad.push_back(n + "taken after the kernel ended (raise total or lower samples)");
  }
  constexpr std::size_t kListed = 4;
  for (std::size_t i = 0; i < std::min(bad.size(), kListed); ++i) failures.push_back(at + bad[i]);
  if (bad.size() > kListed)
    failures.push_back(at + "... and " + std::to_string(bad.size() - kListed) + " more sample failure(s)");
}

void GpuMonitor::addStats(Platform& /*p*/, StatsRegistry& r) {
  r.add("workload", stats_);
  parts_.addStats(r);
}

std::vector<WorkloadRegion> GpuMonitor::regions() const {
  if (counter_ == Va(0)) return {};
  return {{"counter", params_.process, counter_, kPageSize}};
}

}  // namespace hmmsim
