// Platform scenarios: one run per forked process, compared side by side. See platform_run.h.
#include "scenarios/platform_run.h"

#include <algorithm>
#include <functional>
#include <iomanip>
#include <memory>
#include <sstream>

#include <systemc>

#include "models/platform/builtin_devices.h"
#include "models/platform/platform.h"
#include "scenarios/forked.h"
#include "scenarios/platform_script_run.h"
#include "scenarios/progress.h"
#include "scenarios/workloads.h"
#include "sim/checker.h"
#include "sim/trace.h"

namespace hmmsim::scenario {

namespace {

/// Wire bytes (both ways) on the links whose upper end is a root port: what crosses the root
/// complex, to memory or to a peer below another root port.
double rootComplexBytes(Platform& p) {
  double bytes = 0;
  for (const LinkDesc& l : p.desc().topology.links)
    for (const HostBridgeDesc& hb : p.desc().topology.hostBridges)
      for (const PortDesc& rp : hb.rootPorts)
        if (rp.name == l.up) {
          const StatsGroup& g = p.fabric().uplink(l.down).stats();
          bytes += double(g.counterValue("up_wire_bytes") + g.counterValue("down_wire_bytes"));
        }
  return bytes;
}

void collectStats(const Scenario& s, Platform& p, PlatformWorkload* workload, PlatformScriptRunner* script,
                  RunResult& r) {
  r.stats.addValue("run.seed", double(s.seed), "", "the run's seed");
  if (workload) workload->addStats(p, r.stats);
  if (script) script->addStats(r.stats);
  r.stats.add("dram", p.dram().stats());
  for (const ProcessDesc& pd : p.desc().processes) {
    Mm& mm = p.process(pd.name);
    r.stats.add("process." + pd.name, mm.stats());
    r.stats.addValue("process." + pd.name + ".hugetlb_usage", double(mm.hugetlbUsage()), "pages",
                     "4 KiB pages of hugetlb memory mapped at the end (HugetlbPages)");
  }
  r.stats.add("interrupts", p.interrupts().stats());
  r.stats.add("iommu", p.iommu().stats());
  r.stats.add("dma", p.dma().stats());
  r.stats.add("p2p_dma", p.mapper().stats());
  for (const HostBridgeDesc& hb : p.desc().topology.hostBridges)
    r.stats.add("rc." + hb.params.name, p.fabric().rootComplex(hb.params.name).stats());
  for (const LinkDesc& l : p.desc().topology.links)
    r.stats.add("link." + l.down, p.fabric().uplink(l.down).stats());
  const StatsGroup& dram = p.dram().stats();
  r.stats.addValue("run.root_complex_bytes", rootComplexBytes(p), "B",
                   "wire bytes both ways on the root ports' links (to memory or to a peer)");
  r.stats.addValue("run.system_memory_bytes",
                   double(dram.counterValue("bytes_read") + dram.counterValue("bytes_written")), "B",
                   "bytes read from and written to system DRAM");
  r.stats.addValue("run.iommu_translating", p.iommu().mode() == IommuMode::Translate ? 1 : 0, "",
                   "1 when the IOMMU translates DMA addresses");
  r.stats.addValue("run.sim_time", double(sc_core::sc_time_stamp().value()), "ps",
                   "simulated time at the end");
  r.stats.addValue("checker.violations", double(p.violations().violations().size()), "reports",
                   "reports of the invariant checker");
  for (const Violation& v : p.violations().violations()) r.violations.push_back(InvariantChecker::format(v));
}

/// One run, in this process (a forked child): the whole machine, the simulation, the checks.
RunResult runHere(const Scenario& s, const PlatformRunOptions& o, bool progress) {
  RunResult r;
  try {
    TraceSink trace;  // before the platform: its models write here until it is gone
    if (o.trace) trace.enable("all");
    Platform p("platform", *s.platform.desc, builtinDevices(), o.trace ? &trace : nullptr);
    std::unique_ptr<PlatformWorkload> workload;
    std::unique_ptr<PlatformScriptRunner> script;
    std::unique_ptr<ProgressLine> line;
    if (const WorkloadKind* kind = findWorkloadKind(s.workload.kind)) {
      workload = kind->make(p, s.workload.params);
      if (o.trace) workload->setTrace(&trace);
      workload->start();
    }
    if (!s.platformScript.empty()) {
      script = std::make_unique<PlatformScriptRunner>(p, workload.get(), s.platformScript);
      if (o.trace) {
        trace.enable(TraceCategory::Script);
        script->setTrace(&trace);
      }
      script->start();
    }
    if (progress) {
      line = std::make_unique<ProgressLine>(o.progressLabel);
      line->run();
    } else {
      sc_core::sc_start();
    }
    line.reset();
    if (o.trace) {
      p.flushTrace();
      r.traceJson = trace.toJson();
    }
    if (workload) {
      workload->finish();
      workload->check(s.file + ": workload." + s.workload.kind + ": ", r.failures);
    }
    if (script) {
      script->finish();
      script->check(r.failures);
    }
    collectStats(s, p, workload.get(), script.get(), r);
    checkExpectations(s, p.violations(), r);
  } catch (const ConfigError& e) {
    r.failures.push_back(e.what());
  }
  return r;
}

nlohmann::json toJson(const RunResult& r) {
  return nlohmann::json{{"failures", r.failures},
                        {"violations", r.violations},
                        {"stats", r.stats.entries()},
                        {"trace", r.traceJson}};
}

RunResult fromJson(const nlohmann::json& j, const std::string& name) {
  RunResult r;
  if (j.contains("crashed")) {
    r.failures.push_back("variant '" + name + "': the run crashed (see its messages above)");
    return r;
  }
  r.failures = j["failures"].get<std::vector<std::string>>();
  r.violations = j["violations"].get<std::vector<std::string>>();
  r.stats.addEntries("", j["stats"]);
  r.traceJson = j["trace"].get<std::string>();
  return r;
}

}  // namespace

std::vector<VariantRun> runPlatformVariants(const Scenario& s, const PlatformRunOptions& o) {
  std::vector<const Scenario*> runs;
  for (const Scenario& v : s.variants) runs.push_back(&v);
  if (runs.empty()) runs.push_back(&s);
  const std::vector<nlohmann::json> out = runForked(
      runs.size(), [&](std::size_t i) { return toJson(runHere(*runs[i], o, o.progress && i == 0)); },
      o.parallel);
  std::vector<VariantRun> result;
  for (std::size_t i = 0; i < runs.size(); ++i)
    result.push_back(
        VariantRun{runs[i]->variant, runs[i]->variantDescription, fromJson(out[i], runs[i]->variant)});
  return result;
}

std::string mergedTrace(const std::vector<VariantRun>& runs) {
  nlohmann::json events = nlohmann::json::array();
  for (std::size_t i = 0; i < runs.size(); ++i) {
    if (runs[i].result.traceJson.empty()) continue;
    const int pid = int(i) + 1;
    events.push_back({{"ph", "M"},
                      {"name", "process_name"},
                      {"pid", pid},
                      {"args", {{"name", runs[i].name.empty() ? "run" : runs[i].name}}}});
    const nlohmann::json one =
        nlohmann::json::parse(runs[i].result.traceJson);  // kept: the loop reads into it
    for (nlohmann::json e : one["traceEvents"]) {
      e["pid"] = pid;
      events.push_back(std::move(e));
    }
  }
  return nlohmann::json{{"traceEvents", events}, {"displayTimeUnit", "ns"}}.dump();
}

std::string allViolations(const std::vector<VariantRun>& runs) {
  std::string text;
  for (const VariantRun& v : runs)
    for (const std::string& x : v.result.violations) text += (v.name.empty() ? "" : v.name + ": ") + x + '\n';
  return text;
}

StatsRegistry mergedStats(const std::vector<VariantRun>& runs) {
  StatsRegistry all;
  for (const VariantRun& v : runs)
    all.addEntries(v.name.empty() ? "" : v.name + ".", v.result.stats.entries());
  return all;
}

namespace {

std::vector<ComparisonRow> comparisonRows(const Scenario& s) {
  std::vector<ComparisonRow> rows;
  if (const WorkloadKind* kind = findWorkloadKind(s.workload.kind)) rows = kind->rows;
  ComparisonRow scriptOps = statRow("script operations run", "script.ops", 1, 0);
  ComparisonRow scriptFailed = statRow("script expectations failed", "script.expect_failed", 1, 0);
  scriptOps.onlyIfNonzero = scriptFailed.onlyIfNonzero = true;
  rows.push_back(scriptOps);
  rows.push_back(scriptFailed);
  rows.push_back({"root complex bytes",
                  [=](const RunResult& r) { return bytesText(statOf(r, "run.root_complex_bytes")); }});
  rows.push_back({"system memory bytes",
                  [=](const RunResult& r) { return bytesText(statOf(r, "run.system_memory_bytes")); }});
  if (s.platform.desc)
    for (const LinkDesc& l : s.platform.desc->topology.links) {
      const std::string g = "link." + l.down + ".";
      rows.push_back({"link above " + l.down + " up/down (MiB)", [=](const RunResult& r) {
                        return fixedText(statOf(r, g + "up_wire_bytes") / 1048576, 2) + "/" +
                               fixedText(statOf(r, g + "down_wire_bytes") / 1048576, 2);
                      }});
    }
  rows.push_back({"IOMMU IOTLB hits/misses", [=](const RunResult& r) {
                    if (statOf(r, "run.iommu_translating") == 0) return std::string("off");
                    return fixedText(statOf(r, "iommu.iotlb_hits"), 0) + "/" +
                           fixedText(statOf(r, "iommu.iotlb_misses"), 0);
                  }});
  rows.push_back(statRow("p2p maps", "p2p_dma.maps", 1, 0));
  rows.push_back({"checker", [](const RunResult& r) {
                    return r.violations.empty() ? std::string("clean")
                                                : std::to_string(r.violations.size()) + " violation(s)";
                  }});
  rows.push_back({"result", [](const RunResult& r) { return std::string(r.ok() ? "PASS" : "FAIL"); }});
  return rows;
}

}  // namespace

std::string formatComparison(const Scenario& s, const std::vector<VariantRun>& runs) {
  std::ostringstream os;
  os << "scenario " << s.name << " (" << s.file << ")\n";
  if (!s.description.empty()) os << "  " << s.description << '\n';
  const std::vector<ComparisonRow> rows = comparisonRows(s);
  std::size_t wLabel = 0;
  for (const ComparisonRow& r : rows) wLabel = std::max(wLabel, r.label.size());
  std::vector<std::vector<std::string>> cells(runs.size());
  std::vector<std::size_t> width(runs.size());
  for (std::size_t i = 0; i < runs.size(); ++i) {
    width[i] = std::max<std::size_t>(runs[i].name.size(), 6);
    for (const ComparisonRow& r : rows) {
      cells[i].push_back(r.cell(runs[i].result));
      width[i] = std::max(width[i], cells[i].back().size());
    }
  }
  os << "  " << std::left << std::setw(int(wLabel)) << "";
  for (std::size_t i = 0; i < runs.size(); ++i)
    os << "  " << std::right << std::setw(int(width[i])) << runs[i].name;
  os << '\n';
  for (std::size_t k = 0; k < rows.size(); ++k) {
    if (rows[k].onlyIfNonzero && std::all_of(cells.begin(), cells.end(),
                                             [k](const std::vector<std::string>& c) { return c[k] == "0"; }))
      continue;
    os << "  " << std::left << std::setw(int(wLabel)) << rows[k].label;
    for (std::size_t i = 0; i < runs.size(); ++i)
      os << "  " << std::right << std::setw(int(width[i])) << cells[i][k];
    os << '\n';
  }
  for (const VariantRun& v : runs)
    if (!v.description.empty()) os << "  " << v.name << ": " << v.description << '\n';
  for (const VariantRun& v : runs) {
    const std::vector<std::string>& all = v.result.violations;
    for (std::size_t i = 0; i < std::min(all.size(), kViolationsShown); ++i)
      os << "  " << (v.name.empty() ? "" : v.name + ": ") << all[i] << '\n';
    if (all.size() > kViolationsShown)
      os << "  " << (v.name.empty() ? "" : v.name + ": ") << "... and " << all.size() - kViolationsShown
         << " more violation(s) (--out DIR writes every one to DIR/violations.txt)\n";
    for (const std::string& f : v.result.failures)
      os << "  FAILED: " << (v.name.empty() ? "" : v.name + ": ") << f << '\n';
  }
  return os.str();
}

}  // namespace hmmsim::scenario
