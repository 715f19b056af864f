// workload.gpu_stream_out: the RFC's GPU results streamed out by the NIC
// (models/platform/gpu_stream_out.h) as a scenario workload.

#include "models/platform/device_params.h"
#include "models/platform/gpu_stream_out.h"
#include "scenarios/param_tables.h"
#include "scenarios/workloads.h"

namespace hmmsim::scenario {

namespace {

const ParamTable<GpuStreamOutParams>& gpuStreamOutParamTable() {
  static const ParamTable<GpuStreamOutParams> table = [] {
    ParamTable<GpuStreamOutParams> t(
        "workload.gpu_stream_out",
        "the NIC sends the GPU's results from VRAM (p2p) or bounced through RAM; every byte checked");
    t.text("gpu", &GpuStreamOutParams::gpu, "the gpu device (platform.devices)", false);
    t.text("nic", &GpuStreamOutParams::nic, "the nic device (platform.devices)", false);
    t.text("process", &GpuStreamOutParams::process, "the process the NIC sends from (made if absent)", false);
    t.choice(
        "path", &GpuStreamOutParams::path,
        "p2p: the NIC reads VRAM (special vma); bounce: the GPU copies each chunk to RAM, the NIC sends it "
        "from there",
        {{"p2p", GpuStreamPath::P2p}, {"bounce", GpuStreamPath::Bounce}});
    t.bytes("bytes", &GpuStreamOutParams::bytes,
            "the results (a multiple of chunk, within the GPU's kernel_region)", 4096, 1ull << 40);
    t.bytes("chunk", &GpuStreamOutParams::chunkBytes,
            "the bounce's copy granule and the driver's batch per doorbell (a multiple of buffer and 4KiB)",
            4096, 1ull << 40);
    t.bytes("buffer", &GpuStreamOutParams::bufferBytes, "one TX descriptor's buffer", 1, 32ull << 10);
    t.integer("seed", &GpuStreamOutParams::seed, "", "seed of the results' pattern", 0, INT64_MAX);
    addPlaceParam(t,
                  "results (bounce: the process memory the GPU copies to and the NIC sends from; p2p: a "
                  "device-file mapping of the gpu within its kernel_region)");
    return t;
  }();
  return table;
}

std::any parseGpuStreamOut(const ConfigNode& n, Scenario& s) {
  PlatformDesc& d = *s.platform.desc;
  GpuStreamOutParams c;
  gpuStreamOutParamTable().load(n, c);
  const ConfigNode& gpuAt = n.has("gpu") ? n.at("gpu") : n;
  const DeviceDesc& gpu =
      requireDevice(gpuAt, d, c.gpu, "gpu");  // its BAR against its VRAM: checked with the platform
  requireDevice(n.has("nic") ? n.at("nic") : n, d, c.nic, "nic");
  if (c.chunkBytes % c.bufferBytes != 0 || c.chunkBytes % 4096 != 0)
    (n.has("chunk") ? n.at("chunk") : n).fail("chunk must be a multiple of buffer and of 4KiB");
  if (c.bytes % c.chunkBytes != 0)
    (n.has("bytes") ? n.at("bytes") : n).fail("bytes must be a multiple of chunk");
  ensureProcess(d, c.process);
  if (auto place = n.find("place"))
    c.place = parsePlacement(*place, d,
                             gpuStreamOutPlaceable(c, GpuVramLayout::of(deviceParams<GpuDeviceParams>(gpu))));
  return c;
}

std::vector<ComparisonRow> gpuStreamOutRows() {
  return {{"result bytes correct on the wire",
           [](const RunResult& r) {
             return bytesText(statOf(r, "workload.bytes_correct")) + "/" +
                    bytesText(statOf(r, "workload.bytes_sent"));
           }},
          statRow("throughput (Gb/s payload)", "workload.throughput", 1e9 / 8, 2),
          statRow("wire rate (Gb/s)", "workload.wire_rate", 1, 2),
          statRow("first byte latency (us)", "workload.first_byte_latency", 1e6, 2),
          statRow("chunk latency p50 (us)", "workload.chunk_latency_p50", 1e6, 1),
          statRow("chunk latency p99 (us)", "workload.chunk_latency_p99", 1e6, 1),
          {"system memory bytes beyond the ring", [](const RunResult& r) {
             return bytesText(statOf(r, "dram.bytes_read") + statOf(r, "dram.bytes_written") -
                              statOf(r, "workload.ring_bytes"));
           }}};
}

}  // namespace

WorkloadKind gpuStreamOutWorkloadKind() {
  WorkloadKind k;
  k.key = "gpu_stream_out";
  k.table = &gpuStreamOutParamTable();
  k.parse = parseGpuStreamOut;
  k.make = [](Platform& p, const std::any& params) -> std::unique_ptr<PlatformWorkload> {
    return std::make_unique<GpuStreamOut>(p, std::any_cast<const GpuStreamOutParams&>(params));
  };
  k.summary = [](const std::any& params) {
    const auto& c = std::any_cast<const GpuStreamOutParams&>(params);
    return "gpu_stream_out " + c.gpu + " -> " + c.nic + " through " + c.process + ", " +
           std::to_string(c.bytes) + " bytes, " + gpuStreamPathName(c.path);
  };
  k.regions = [](const std::any& params) {
    return RegionNames{{"results", std::any_cast<const GpuStreamOutParams&>(params).process}};
  };
  k.rows = gpuStreamOutRows();
  return k;
}

}  // namespace hmmsim::scenario
