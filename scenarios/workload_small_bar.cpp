// workload.small_bar: many importers against a GPU BAR much smaller than its VRAM
// (models/platform/small_bar.h) as a scenario workload: the exporter's window policy decides.

#include "models/devices/gpu/gpu_device.h"
#include "models/platform/small_bar.h"
#include "scenarios/param_tables.h"
#include "scenarios/workloads.h"

namespace hmmsim::scenario {

namespace {

const ParamTable<SmallBarParams>& smallBarParamTable() {
  static const ParamTable<SmallBarParams> table = [] {
    ParamTable<SmallBarParams> t(
        "workload.small_bar",
        "many NIC importers read their slices of one special-vma mmap of VRAM through a small GPU BAR; "
        "the GPU's bar_policy shares the windows; every byte checked");
    t.text("gpu", &SmallBarParams::gpu, "the gpu device (platform.devices): its bar_policy decides", false);
    t.text("nic", &SmallBarParams::nic, "the nic device (platform.devices) whose importers read", false);
    t.text("process", &SmallBarParams::process, "the process holding the mmap of VRAM (made if absent)",
           false);
    t.integer("importers", &SmallBarParams::importers, "importers",
              "importers (memory regions of the NIC), each over its own slice of VRAM", 1, 4096);
    t.bytes("slice", &SmallBarParams::sliceBytes,
            "each importer's share of VRAM (a multiple of stride; importers x slice within vram)", 4096,
            1ull << 40);
    t.bytes("read", &SmallBarParams::readBytes, "one read (at most stride)", 1, 1ull << 30);
    t.bytes("stride", &SmallBarParams::strideBytes,
            "distance between an importer's reads (a multiple of 4KiB; 2MiB = one read per BAR window)", 4096,
            1ull << 40);
    t.integer("passes", &SmallBarParams::passes, "passes", "passes over every slice", 1, 1'000'000);
    t.duration("backoff", &SmallBarParams::backoffPs, "wait before a refused read is tried again", 0,
               1'000'000'000'000ull);
    t.integer("retries", &SmallBarParams::retries, "retries",
              "refused retries of one read before it is given up (reads_failed)", 0, 1'000'000);
    t.integer("seed", &SmallBarParams::seed, "", "seed of the VRAM pattern", 0, INT64_MAX);
    return t;
  }();
  return table;
}

ConfigNode keyAt(const ConfigNode& n, const std::string& key) {
  return n.has(key) ? n.at(key) : n;
}

std::any parseSmallBar(const ConfigNode& n, Scenario& s) {
  PlatformDesc& d = *s.platform.desc;
  SmallBarParams c;
  smallBarParamTable().load(n, c);
  DeviceDesc& gpu = requireDevice(keyAt(n, "gpu"), d, c.gpu, "gpu");
  requireDevice(keyAt(n, "nic"), d, c.nic, "nic");
  if (c.strideBytes % 4096 != 0) keyAt(n, "stride").fail("stride must be a multiple of 4KiB");
  if (c.sliceBytes % c.strideBytes != 0) keyAt(n, "slice").fail("slice must be a multiple of stride");
  if (c.readBytes > c.strideBytes) keyAt(n, "read").fail("a read must fit in one stride (read <= stride)");
  if (const auto* gp = std::any_cast<GpuDeviceParams>(&gpu.params)) {
    const std::uint64_t span = std::uint64_t(c.importers) * c.sliceBytes;
    if (span > gp->gpu.vramBytes)
      keyAt(n, "slice")
          .fail("importers x slice (" + bytesText(double(span)) + ") exceeds " + c.gpu + "'s vram (" +
                bytesText(double(gp->gpu.vramBytes)) + "): fewer importers, a smaller slice or more vram");
  }
  ensureProcess(d, c.process);
  return c;
}

std::vector<ComparisonRow> smallBarRows() {
  return {{"bytes read (wrong)",
           [](const RunResult& r) {
             return bytesText(statOf(r, "workload.bytes_read")) + " (" +
                    bytesText(statOf(r, "workload.bytes_wrong")) + ")";
           }},
          statRow("throughput (MB/s)", "workload.throughput", 1e6, 1),
          statRow("revokes", "workload.revokes", 1, 0),
          statRow("revokes per second", "workload.revokes_per_s", 1, 0),
          statRow("window reclaims", "workload.window_reclaims", 1, 0),
          statRow("device faults", "workload.device_faults", 1, 0),
          statRow("refused tries", "workload.refusals", 1, 0),
          statRow("reads given up", "workload.reads_failed", 1, 0),
          statRow("fairness (min/max share)", "workload.fairness", 1, 2)};
}

}  // namespace

WorkloadKind smallBarWorkloadKind() {
  WorkloadKind k;
  k.key = "small_bar";
  k.table = &smallBarParamTable();
  k.parse = parseSmallBar;
  k.make = [](Platform& p, const std::any& params) -> std::unique_ptr<PlatformWorkload> {
    return std::make_unique<SmallBar>(p, std::any_cast<const SmallBarParams&>(params));
  };
  k.summary = [](const std::any& params) {
    const auto& c = std::any_cast<const SmallBarParams&>(params);
    return "small_bar " + std::to_string(c.importers) + " importers on " + c.nic + " x " +
           std::to_string(c.sliceBytes >> 20) + " MiB of " + c.gpu + "'s VRAM, " + std::to_string(c.passes) +
           " pass(es)";
  };
  k.regions = [](const std::any& params) {
    return RegionNames{{"vram", std::any_cast<const SmallBarParams&>(params).process}};
  };
  k.rows = smallBarRows();
  return k;
}

}  // namespace hmmsim::scenario
