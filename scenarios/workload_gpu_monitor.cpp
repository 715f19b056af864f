// workload.gpu_monitor: the RFC's GPU progress monitor (models/platform/gpu_monitor.h) as a
// scenario workload: the GPU computes while the NIC samples its progress counter.

#include "models/platform/gpu_monitor.h"
#include "scenarios/param_tables.h"
#include "scenarios/workloads.h"

namespace hmmsim::scenario {

namespace {

const ParamTable<GpuMonitorParams>& gpuMonitorParamTable() {
  static const ParamTable<GpuMonitorParams> table = [] {
    ParamTable<GpuMonitorParams> t(
        "workload.gpu_monitor",
        "the GPU computes while the NIC samples its VRAM progress counter; every sample checked");
    t.text("gpu", &GpuMonitorParams::gpu, "the gpu device (platform.devices)", false);
    t.text("nic", &GpuMonitorParams::nic, "the nic device (platform.devices)", false);
    t.text("process", &GpuMonitorParams::process, "the process the NIC reads through (made if absent)",
           false);
    t.choice("mode", &GpuMonitorParams::mode,
             "p2p: the NIC reads the counter from VRAM (special vma); copy: the GPU copies it to RAM before "
             "each sample, the NIC reads it there; none: no monitoring",
             {{"p2p", GpuMonitorMode::P2p}, {"copy", GpuMonitorMode::Copy}, {"none", GpuMonitorMode::None}});
    t.integer("samples", &GpuMonitorParams::samples, "samples", "samples the NIC takes", 1, 1'000'000);
    t.duration("period", &GpuMonitorParams::periodPs, "time between samples", 1000, 1'000'000'000'000ull);
    t.duration("start", &GpuMonitorParams::startPs, "time of the first sample", 0, 1'000'000'000'000ull);
    t.duration("lead", &GpuMonitorParams::leadPs,
               "copy mode: the copy is issued this long before each sample", 0, 1'000'000'000'000ull);
    t.bytes("region", &GpuMonitorParams::regionBytes,
            "VRAM region the kernel streams (in the GPU's kernel_region, a multiple of 4KiB)", 4096,
            1ull << 40);
    t.bytes("total", &GpuMonitorParams::totalBytes, "bytes the kernel streams (each read and written once)",
            4096, 1ull << 50);
    addPlaceParam(t,
                  "counter (mode copy: the page the GPU copies the counter to and the NIC reads; p2p: a "
                  "device-file mapping of the gpu from the counter's page, kernel_region start + region)");
    return t;
  }();
  return table;
}

std::any parseGpuMonitor(const ConfigNode& n, Scenario& s) {
  PlatformDesc& d = *s.platform.desc;
  GpuMonitorParams c;
  gpuMonitorParamTable().load(n, c);
  const ConfigNode& gpuAt = n.has("gpu") ? n.at("gpu") : n;
  const DeviceDesc& gpu =
      requireDevice(gpuAt, d, c.gpu, "gpu");  // its BAR against its VRAM: checked with the platform
  requireDevice(n.has("nic") ? n.at("nic") : n, d, c.nic, "nic");
  if (c.mode == GpuMonitorMode::Copy && c.leadPs > c.startPs)
    (n.has("lead") ? n.at("lead") : n)
        .fail("the first copy would be issued before time 0: lead must be at most start");
  ensureProcess(d, c.process);
  if (auto place = n.find("place"))
    c.place = parsePlacement(*place, d,
                             gpuMonitorPlaceable(c, GpuVramLayout::of(deviceParams<GpuDeviceParams>(gpu))));
  return c;
}

std::vector<ComparisonRow> gpuMonitorRows() {
  return {{"samples held by the counter",
           [](const RunResult& r) {
             return fixedText(statOf(r, "workload.samples_held"), 0) + "/" +
                    fixedText(statOf(r, "workload.samples"), 0);
           }},
          statRow("kernel time (us)", "workload.kernel_time", 1e6, 3),
          {"kernel time over its pace (ppm)",
           [](const RunResult& r) { return fixedText((statOf(r, "workload.slowdown") - 1) * 1e6, 1); }},
          statRow("sample staleness mean (KiB)", "workload.staleness_mean", 1024, 1),
          statRow("sample latency p50 (ns)", "workload.sample_latency_p50", 1e3, 0),
          statRow("sample latency p99 (ns)", "workload.sample_latency_p99", 1e3, 0)};
}

}  // namespace

WorkloadKind gpuMonitorWorkloadKind() {
  WorkloadKind k;
  k.key = "gpu_monitor";
  k.table = &gpuMonitorParamTable();
  k.parse = parseGpuMonitor;
  k.make = [](Platform& p, const std::any& params) -> std::unique_ptr<PlatformWorkload> {
    return std::make_unique<GpuMonitor>(p, std::any_cast<const GpuMonitorParams&>(params));
  };
  k.summary = [](const std::any& params) {
    const auto& c = std::any_cast<const GpuMonitorParams&>(params);
    return "gpu_monitor " + c.nic + " watches " + c.gpu + " through " + c.process + ", " +
           std::to_string(c.samples) + " sample(s), " + gpuMonitorModeName(c.mode);
  };
  k.regions = [](const std::any& params) {
    const auto& c = std::any_cast<const GpuMonitorParams&>(params);
    return c.mode == GpuMonitorMode::None ? RegionNames{} : RegionNames{{"counter", c.process}};
  };
  k.rows = gpuMonitorRows();
  return k;
}

}  // namespace hmmsim::scenario
