// workload.nvme_via_nic: NVMe commands driven by the NIC (models/platform/nvme_via_nic.h) as a
// scenario workload: the NIC fills the submission queue in the controller's CMB (p2p), or the
// CPU does on the NIC's receive interrupt (cpu).

#include <algorithm>

#include "models/platform/device_params.h"
#include "models/platform/nvme_via_nic.h"
#include "scenarios/param_tables.h"
#include "scenarios/workloads.h"

namespace hmmsim::scenario {

namespace {

const ParamTable<NvmeViaNicParams>& nvmeViaNicParamTable() {
  static const ParamTable<NvmeViaNicParams> table = [] {
    ParamTable<NvmeViaNicParams> t(
        "workload.nvme_via_nic",
        "storage requests from the network become NVMe commands: the NIC fills the SQ in the CMB, or the CPU "
        "does");
    t.text("nic", &NvmeViaNicParams::nic, "the nic device (platform.devices)", false);
    t.text("nvme", &NvmeViaNicParams::nvme, "the nvme device (platform.devices)", false);
    t.text("process", &NvmeViaNicParams::process,
           "the process that maps the controller's BAR 0 for the NIC (made if absent)", false);
    t.integer("commands", &NvmeViaNicParams::commands, "commands", "storage requests", 1, 65535);
    t.bytes("io_size", &NvmeViaNicParams::ioBytes, "data per request (a multiple of the media's block_size)",
            512, 2ull << 20);
    t.integer("queue_depth", &NvmeViaNicParams::queueDepth, "entries",
              "I/O submission and completion queue size (entries - 1 commands in flight)", 2, 65536);
    t.duration("interval", &NvmeViaNicParams::intervalPs, "time between request arrivals at the NIC", 0,
               1'000'000'000'000ull);
    t.choice("path", &NvmeViaNicParams::path,
             "p2p: the NIC writes the SQ in the CMB and rings the doorbell; cpu: the CPU takes the NIC's "
             "interrupt and submits into a host-memory SQ",
             {{"p2p", NvmeViaNicPath::P2p}, {"cpu", NvmeViaNicPath::Cpu}});
    t.choice("op", &NvmeViaNicParams::op,
             "write, read (blocks stored beforehand), or write_read (the second half reads the first half's "
             "blocks back)",
             {{"write", NvmeViaNicOp::Write},
              {"read", NvmeViaNicOp::Read},
              {"write_read", NvmeViaNicOp::WriteRead}});
    t.duration("rx_cost", &NvmeViaNicParams::rxCostPs,
               "cpu path: CPU time per request in the receive handler", 0, 1'000'000'000'000ull);
    t.duration("submit_cost", &NvmeViaNicParams::submitCostPs,
               "cpu path: CPU time to build and submit one command", 0, 1'000'000'000'000ull);
    t.duration("completion_cost", &NvmeViaNicParams::completionCostPs,
               "cpu path: CPU time per completion in the completion handler", 0, 1'000'000'000'000ull);
    addPlaceParam(t,
                  "nvme_bar (p2p: a device-file mapping of the nvme device from offset 0, all of its BAR 0)");
    return t;
  }();
  return table;
}

/// The devices exist with their types and the workload fits the controller; the process is added.
std::any parseNvmeViaNic(const ConfigNode& n, Scenario& s) {
  PlatformDesc& d = *s.platform.desc;
  NvmeViaNicParams w;
  nvmeViaNicParamTable().load(n, w);
  requireDevice(n.has("nic") ? n.at("nic") : n, d, w.nic, "nic");
  const DeviceDesc& nvme = requireDevice(n.has("nvme") ? n.at("nvme") : n, d, w.nvme, "nvme");
  NvmeParams np = nvme.params.has_value() ? std::any_cast<NvmeParams>(nvme.params) : NvmeParams{};
  // The CMB within BAR 0: checked with the platform (scenario_parse_platform.cpp, checkNvme).
  const auto [key, why] = nvmeViaNicProblem(w, np);
  if (!key.empty()) (n.has(key) ? n.at(key) : n).fail(why);
  ensureProcess(d, w.process);
  if (auto place = n.find("place"))
    w.place = parsePlacement(*place, d, nvmeViaNicPlaceable(w, endpointBarBytes(d, nvme.endpoint, 0)));
  return w;
}

std::vector<ComparisonRow> nvmeViaNicRows() {
  return {{"commands ok / exact",
           [](const RunResult& r) {
             return fixedText(statOf(r, "workload.commands") - statOf(r, "workload.commands_failed"), 0) +
                    " / " + fixedText(statOf(r, "workload.commands_exact"), 0);
           }},
          statRow("latency p50 (us)", "workload.latency_p50", 1e6, 2),
          statRow("latency p99 (us)", "workload.latency_p99", 1e6, 2),
          statRow("IOPS (k)", "workload.iops", 1e3, 1),
          statRow("CPU interrupts", "workload.cpu_interrupts", 1, 0),
          statRow("CPU handler time / command (us)", "workload.cpu_ps_per_command", 1e6, 2),
          {"queue bytes in system memory",
           [](const RunResult& r) { return bytesText(statOf(r, "workload.queue_system_memory_bytes")); }}};
}

}  // namespace

WorkloadKind nvmeViaNicWorkloadKind() {
  WorkloadKind k;
  k.key = "nvme_via_nic";
  k.table = &nvmeViaNicParamTable();
  k.parse = parseNvmeViaNic;
  k.make = [](Platform& p, const std::any& params) -> std::unique_ptr<PlatformWorkload> {
    return std::make_unique<NvmeViaNic>(p, std::any_cast<const NvmeViaNicParams&>(params));
  };
  k.summary = [](const std::any& params) {
    const auto& w = std::any_cast<const NvmeViaNicParams&>(params);
    return "nvme_via_nic " + w.nic + " -> " + w.nvme + ", " + std::to_string(w.commands) + " " +
           nvmeViaNicOpName(w.op) + " command(s) of " + std::to_string(w.ioBytes) + " B, " +
           nvmeViaNicPathName(w.path);
  };
  k.regions = [](const std::any& params) {
    const auto& c = std::any_cast<const NvmeViaNicParams&>(params);
    return c.path == NvmeViaNicPath::P2p ? RegionNames{{"nvme_bar", c.process}} : RegionNames{};
  };
  k.rows = nvmeViaNicRows();
  return k;
}

}  // namespace hmmsim::scenario
