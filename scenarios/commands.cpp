// hmmsim run, validate and describe. See commands.h.

#include "scenarios/commands.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <sstream>
#include <thread>

#include "scenarios/param_tables.h"
#include "scenarios/platform_run.h"
#include "scenarios/scenario.h"
#include "scenarios/scenario_run.h"
#include "scenarios/workloads.h"
#include "sim/output_file.h"

namespace hmmsim::scenario {

namespace {

/// Parses the --set options; prints the problem and returns false on a malformed one.
bool parseSets(const std::vector<std::string>& sets, std::vector<Override>& out, std::ostream& err) {
  for (const std::string& s : sets) {
    std::string why;
    auto o = parseOverride(s, &why);
    if (!o) {
      err << "hmmsim: --set: " << why << '\n';
      return false;
    }
    out.push_back(*o);
  }
  return true;
}

/// Loads and validates; prints the error and returns nullopt on a bad file. `forRun`: refuses a
/// platform without a workload (it validates, but there is nothing to run).
std::optional<Scenario> load(const std::string& file, const std::vector<std::string>& sets, std::ostream& err,
                             bool forRun) {
  std::vector<Override> overrides;
  if (!parseSets(sets, overrides, err)) return std::nullopt;
  try {
    Scenario s = loadScenario(file, overrides);
    if (forRun && s.platform.section && !s.workload.present())
      s.platform.section->fail(
          "a platform scenario needs a workload: section (what runs on the platform; hmmsim describe "
          "lists the workload.* kinds)");
    return s;
  } catch (const ConfigError& e) {
    err << e.what() << '\n';
    return std::nullopt;
  }
}

/// One line: what the platform section describes.
std::string platformSummary(const PlatformDesc& d) {
  static const char* const kModes[] = {"off", "passthrough", "translate"};
  std::ostringstream os;
  os << "platform: " << d.topology.hostBridges.size() << " host bridge(s), " << d.topology.switches.size()
     << " switch(es), " << d.topology.endpoints.size() << " endpoint(s), " << d.topology.links.size()
     << " link(s), IOMMU " << kModes[int(d.iommu.iommu.mode)] << ", RAM " << formatBytes(d.ram.ramSize);
  return os.str();
}

/// A platform scenario: every variant in its own process (SystemC elaborates once per process),
/// the comparison table, stats.json with each variant under its name.
int runPlatform(const Scenario& s, const RunArgs& a, const std::string& statsPath,
                const std::string& tracePath, const std::string& violationsPath, std::ostream& out,
                std::ostream& err) {
  if (a.trace && a.outDir.empty()) {
    err << "hmmsim run: --trace needs --out DIR (the trace goes to DIR/trace.json)\n";
    return 2;
  }
  PlatformRunOptions o;
  o.parallel = std::max(1u, std::thread::hardware_concurrency());
  o.trace = a.trace;
  o.progress = isatty(STDERR_FILENO) != 0;
  o.progressLabel = s.variants.empty()
                        ? s.name
                        : s.variants.front().variant + " (1 of " + std::to_string(s.variants.size()) + ")";
  const std::vector<VariantRun> runs = runPlatformVariants(s, o);
  out << formatComparison(s, runs);
  bool ok = true;
  for (const VariantRun& v : runs) ok = ok && v.result.ok();
  if (!a.outDir.empty()) {
    if (const std::string why = writeFileAtomically(statsPath, mergedStats(runs).toJson().dump(2) + "\n");
        !why.empty()) {
      err << "hmmsim run: " << why << '\n';
      return 1;
    }
    if (a.trace)
      if (const std::string why = writeFileAtomically(tracePath, mergedTrace(runs) + "\n"); !why.empty()) {
        err << "hmmsim run: " << why << '\n';
        return 1;
      }
    const std::string violations = allViolations(runs);
    if (!violations.empty())
      if (const std::string why = writeFileAtomically(violationsPath, violations); !why.empty()) {
        err << "hmmsim run: " << why << '\n';
        return 1;
      }
    out << "  stats written to " << statsPath << (a.trace ? ", trace to " + tracePath : "")
        << (violations.empty() ? "" : ", checker reports to " + violationsPath) << '\n';
  }
  return ok ? 0 : 1;
}

}  // namespace

int cmdValidate(const std::string& file, const std::vector<std::string>& sets, std::ostream& out,
                std::ostream& err) {
  std::optional<Scenario> s = load(file, sets, err, false);
  if (!s) return 2;
  std::size_t ops = s->platform.desc ? s->platformScript.size() : s->script.size();
  const std::size_t processes = s->platform.desc ? s->platform.desc->processes.size() : s->processes.size();
  const std::size_t devices = s->platform.desc ? s->platform.desc->devices.size() : s->devices.size();
  out << file << ": ok (scenario " << s->name << ", " << processes << " process(es), " << devices
      << " device(s), " << ops << " script operation(s))\n";
  if (s->platform.desc) out << "  " << platformSummary(*s->platform.desc) << '\n';
  if (const WorkloadKind* kind = findWorkloadKind(s->workload.kind))
    out << "  workload: " << kind->summary(s->workload.params) << '\n';
  if (!s->platformScript.empty())
    out << "  script: " << s->platformScript.size() << " operation(s), "
        << platformSchedule(s->platformScript).size() << " occurrence(s), the last at "
        << platformSchedule(s->platformScript).back().atPs << " ps\n";
  for (const Scenario& v : s->variants)
    out << "  variant " << v.variant << (v.variantDescription.empty() ? "" : ": " + v.variantDescription)
        << '\n';
  return 0;
}

int cmdRun(const RunArgs& a, std::ostream& out, std::ostream& err) {
  std::optional<Scenario> s = load(a.file, a.sets, err, true);
  if (!s) return 2;
  if (a.seed >= 0) {
    s->seed = static_cast<std::uint64_t>(a.seed);
    if (s->platform.desc) s->platform.desc->seed = s->seed;
    for (Scenario& v : s->variants) v.seed = v.platform.desc->seed = s->seed;
  }
  const std::filesystem::path dir(a.outDir);
  const std::string statsPath = (dir / "stats.json").string(), tracePath = (dir / "trace.json").string(),
                    violationsPath = (dir / "violations.txt").string();
  if (!a.outDir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    for (const std::string& p : {statsPath, tracePath, violationsPath}) {
      if (p == tracePath && !a.trace) continue;
      if (const std::string why = checkOutputPath(p); !why.empty()) {
        err << "hmmsim run: --out: " << why << '\n';
        return 2;
      }
    }
  }
  if (s->platform.desc) return runPlatform(*s, a, statsPath, tracePath, violationsPath, out, err);
  RunOptions opts;
  opts.trace = a.trace;
  const RunResult r = runScenario(*s, opts);
  out << formatSummary(*s, r);
  if (!a.outDir.empty()) {
    std::string why = writeFileAtomically(statsPath, r.stats.toJson().dump(2) + "\n");
    if (why.empty() && a.trace) why = writeFileAtomically(tracePath, r.traceJson + "\n");
    if (!why.empty()) {
      err << "hmmsim run: " << why << '\n';
      return 1;
    }
    out << "  stats written to " << statsPath << (a.trace ? ", trace to " + tracePath : "") << '\n';
  } else if (a.trace) {
    err << "hmmsim run: --trace needs --out DIR (the trace goes to DIR/trace.json)\n";
    return 2;
  }
  return r.ok() ? 0 : 1;
}

int cmdDescribe(const std::string& model, bool markdown, std::ostream& out, std::ostream& err) {
  const std::vector<const ParamTableBase*> tables = allParamTables();
  if (markdown) {
    for (const ParamTableBase* t : tables) out << t->markdown();
    return 0;
  }
  if (model.empty()) {
    out << "models (hmmsim describe MODEL for their parameters):\n";
    for (const ParamTableBase* t : tables) out << "  " << t->model() << "  " << t->summary() << '\n';
    return 0;
  }
  std::vector<std::string> names;
  for (const ParamTableBase* t : tables) {
    if (t->model() == model) {
      out << t->describe();
      return 0;
    }
    names.push_back(t->model());
  }
  const std::string near = nearestWord(model, names);
  err << "hmmsim describe: unknown model '" << model << "'"
      << (near.empty() ? "" : "; did you mean '" + near + "'?") << " (hmmsim describe lists them)\n";
  return 2;
}

}  // namespace hmmsim::scenario
