// workload.gpu_reduce: a GPU reduces a buffer of process memory read through its device MMU
// (models/platform/gpu_reduce.h) as a scenario workload.

#include "models/platform/gpu_reduce.h"
#include "scenarios/param_tables.h"
#include "scenarios/workloads.h"

namespace hmmsim::scenario {

namespace {

const ParamTable<GpuReduceParams>& gpuReduceParamTable() {
  static const ParamTable<GpuReduceParams> table = [] {
    ParamTable<GpuReduceParams> t("workload.gpu_reduce",
                                  "a GPU sums a process buffer (system memory, a peer GPU's VRAM p2p, or its "
                                  "own VRAM); the sum checked");
    t.text("gpu", &GpuReduceParams::gpu, "the reducing gpu device (platform.devices)", false);
    t.text("peer", &GpuReduceParams::peer, "the peer gpu device (sources peer_vram, peer_private)", false);
    t.text("process", &GpuReduceParams::process, "the process whose buffer is reduced (made if absent)",
           false);
    t.choice("source", &GpuReduceParams::source,
             "system: anonymous memory; peer_vram: the peer's VRAM mmapped (special vma); peer_private: "
             "migrated to the peer's VRAM; own: migrated to the reducing GPU's VRAM",
             {{"system", GpuReduceSource::System},
              {"peer_vram", GpuReduceSource::PeerVram},
              {"peer_private", GpuReduceSource::PeerPrivate},
              {"own", GpuReduceSource::Own}});
    t.bytes("bytes", &GpuReduceParams::bytes, "the buffer (a multiple of 4KiB)", 4096, 1ull << 40);
    t.integer("seed", &GpuReduceParams::seed, "", "seed of the buffer's words", 0, INT64_MAX);
    addPlaceParam(t,
                  "buffer (source system: any process memory; peer_private, own: anon or file-private, "
                  "the memory that migrates; peer_vram: a device-file mapping of the peer)");
    return t;
  }();
  return table;
}

std::any parseGpuReduce(const ConfigNode& n, Scenario& s) {
  PlatformDesc& d = *s.platform.desc;
  GpuReduceParams c;
  gpuReduceParamTable().load(n, c);
  requireDevice(n.has("gpu") ? n.at("gpu") : n, d, c.gpu, "gpu");
  GpuVramLayout peerVram;
  if (c.source == GpuReduceSource::PeerVram || c.source == GpuReduceSource::PeerPrivate) {
    const ConfigNode& at = n.has("peer") ? n.at("peer") : n;
    peerVram = GpuVramLayout::of(deviceParams<GpuDeviceParams>(requireDevice(at, d, c.peer, "gpu")));
    if (c.peer == c.gpu) at.fail("the peer must be another gpu than the reducing one");
  }
  if (c.bytes % 4096 != 0) (n.has("bytes") ? n.at("bytes") : n).fail("bytes must be a multiple of 4KiB");
  ensureProcess(d, c.process);
  if (auto place = n.find("place")) c.place = parsePlacement(*place, d, gpuReducePlaceable(c, peerVram));
  return c;
}

std::vector<ComparisonRow> gpuReduceRows() {
  return {{"sum correct",
           [](const RunResult& r) { return statOf(r, "workload.sum_correct") == 1 ? "yes" : "NO"; }},
          statRow("kernel time (us)", "workload.kernel_time", 1e6, 2),
          statRow("throughput (GB/s)", "workload.throughput", 1e9, 2),
          statRow("device faults", "workload.device_faults", 1, 0)};
}

}  // namespace

WorkloadKind gpuReduceWorkloadKind() {
  WorkloadKind k;
  k.key = "gpu_reduce";
  k.table = &gpuReduceParamTable();
  k.parse = parseGpuReduce;
  k.make = [](Platform& p, const std::any& params) -> std::unique_ptr<PlatformWorkload> {
    return std::make_unique<GpuReduce>(p, std::any_cast<const GpuReduceParams&>(params));
  };
  k.summary = [](const std::any& params) {
    const auto& c = std::any_cast<const GpuReduceParams&>(params);
    return "gpu_reduce on " + c.gpu + " of " + std::to_string(c.bytes) + " bytes of " + c.process +
           ", source " + gpuReduceSourceName(c.source);
  };
  k.regions = [](const std::any& params) {
    const auto& c = std::any_cast<const GpuReduceParams&>(params);
    return RegionNames{{"buffer", c.process}};
  };
  k.rows = gpuReduceRows();
  return k;
}

}  // namespace hmmsim::scenario
