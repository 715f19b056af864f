// hmmsim sweep: a cartesian grid of --param values, each point a run of the scenario with those
// overrides, one CSV row per point. Points run in parallel processes (--jobs, fork), or split
// over MPI ranks when the command was started by mpirun (rank r runs points r, r + n, ...; rank
// 0 gathers the rows and writes the CSV). A run is a pure function of (file, overrides, seed),
// so the CSV is the same whichever way the points ran.

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "scenarios/commands.h"
#include "scenarios/forked.h"
#include "scenarios/platform_run.h"
#include "scenarios/scenario.h"
#include "scenarios/scenario_run.h"
#include "sim/output_file.h"

#ifdef HMMSIM_HAVE_MPI
#include <mpi.h>
#endif

namespace hmmsim::scenario {

namespace {

struct Axis {
  std::string key;
  std::vector<std::string> values;
};

struct Point {
  std::vector<std::string> values;  ///< one per axis
};

/// One point's outcome, as a child process or MPI rank sends it: {"pass": bool, "stats": {...}}.
using PointResult = nlohmann::json;

bool parseAxes(const std::vector<std::string>& params, std::vector<Axis>& axes, std::ostream& err) {
  for (const std::string& p : params) {
    const std::size_t eq = p.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == p.size()) {
      err << "hmmsim sweep: --param: expected key=v1,v2,... (e.g. machine.phys_mem.ram=256MiB,512MiB), got '"
          << p << "'\n";
      return false;
    }
    Axis a{p.substr(0, eq), {}};
    std::istringstream vs(p.substr(eq + 1));
    for (std::string v; std::getline(vs, v, ',');) {
      if (v.empty()) {
        err << "hmmsim sweep: --param " << a.key << ": an empty value in '" << p << "'\n";
        return false;
      }
      a.values.push_back(v);
    }
    axes.push_back(std::move(a));
  }
  return true;
}

/// The grid, the first --param outermost.
std::vector<Point> grid(const std::vector<Axis>& axes) {
  std::vector<Point> points{Point{}};
  for (const Axis& a : axes) {
    std::vector<Point> next;
    for (const Point& p : points)
      for (const std::string& v : a.values) {
        Point q = p;
        q.values.push_back(v);
        next.push_back(std::move(q));
      }
    points = std::move(next);
  }
  return points;
}

std::vector<Override> overridesOf(const std::vector<Override>& fixed, const std::vector<Axis>& axes,
                                  const Point& p) {
  std::vector<Override> o = fixed;
  for (std::size_t i = 0; i < axes.size(); ++i)
    o.push_back({axes[i].key, p.values[i], std::nullopt, "--param"});
  return o;
}

PointResult runPoint(const std::string& file, const std::vector<Override>& overrides) {
  const Scenario s = loadScenario(file, overrides);
  PointResult j;
  nlohmann::json stats = nlohmann::json::object();
  if (s.platform.desc) {
    // A platform run elaborates SystemC in a process of its own (platform_run.h): the point's
    // variants run in forked children of this process, one at a time, also under mpirun.
    PlatformRunOptions o;
    const std::vector<VariantRun> runs = runPlatformVariants(s, o);
    j["pass"] = std::all_of(runs.begin(), runs.end(), [](const VariantRun& v) { return v.result.ok(); });
    for (const auto& [name, v] : mergedStats(runs).flat()) stats[name] = v;
  } else {
    const RunResult r = runScenario(s);
    j["pass"] = r.ok();
    for (const auto& [name, v] : r.stats.flat()) stats[name] = v;
  }
  j["stats"] = std::move(stats);
  return j;
}

/// Every point in `jobs` processes at a time; results in point order.
std::vector<PointResult> runLocal(const std::string& file, const std::vector<std::vector<Override>>& points,
                                  unsigned jobs) {
  std::vector<PointResult> results = runForked(
      points.size(), [&](std::size_t i) { return runPoint(file, points[i]); }, jobs);
  for (PointResult& r : results)
    if (r.contains("crashed")) r["pass"] = false;
  return results;
}

std::string formatValue(double v) {
  char buf[64];
  if (v == double(static_cast<long long>(v)) && v < 9e15 && v > -9e15)
    std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(v));
  else
    std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

std::string toCsv(const std::vector<Axis>& axes, const std::vector<Point>& points,
                  const std::vector<PointResult>& results) {
  std::set<std::string> columns;
  for (const PointResult& r : results)
    if (r.contains("stats"))
      for (const auto& [k, v] : r["stats"].items()) columns.insert(k);
  std::ostringstream os;
  for (const Axis& a : axes) os << a.key << ',';
  os << "pass";
  for (const std::string& c : columns) os << ',' << c;
  os << '\n';
  for (std::size_t i = 0; i < points.size(); ++i) {
    for (const std::string& v : points[i].values) os << v << ',';
    os << (results[i]["pass"].get<bool>() ? 1 : 0);
    for (const std::string& c : columns) {
      os << ',';
      if (results[i].contains("stats") && results[i]["stats"].contains(c))
        os << formatValue(results[i]["stats"][c].get<double>());
    }
    os << '\n';
  }
  return os.str();
}

#ifdef HMMSIM_HAVE_MPI
bool startedByMpirun() {
  return std::getenv("OMPI_COMM_WORLD_SIZE") || std::getenv("PMI_SIZE") || std::getenv("PMIX_RANK");
}

/// Rank r runs points r, r + n, ...; rank 0 receives the others' results. Returns the results
/// on rank 0 and an empty vector elsewhere.
std::vector<PointResult> runMpi(const std::string& file, const std::vector<std::vector<Override>>& points,
                                int rank, int size) {
  std::vector<PointResult> results(points.size());
  for (std::size_t i = std::size_t(rank); i < points.size(); i += std::size_t(size))
    results[i] = runPoint(file, points[i]);
  if (rank != 0) {
    for (std::size_t i = std::size_t(rank); i < points.size(); i += std::size_t(size)) {
      const std::string text = results[i].dump();
      MPI_Send(text.data(), int(text.size()), MPI_CHAR, 0, int(i), MPI_COMM_WORLD);
    }
    return {};
  }
  for (std::size_t i = 0; i < points.size(); ++i) {
    if (int(i % std::size_t(size)) == 0) continue;
    MPI_Status st;
    MPI_Probe(int(i % std::size_t(size)), int(i), MPI_COMM_WORLD, &st);
    int n = 0;
    MPI_Get_count(&st, MPI_CHAR, &n);
    std::string text(std::size_t(n), '\0');
    MPI_Recv(text.data(), n, MPI_CHAR, st.MPI_SOURCE, st.MPI_TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    results[i] = nlohmann::json::parse(text);
  }
  return results;
}
#endif

/// Loads every point up front: a bad file or a bad value fails before any point runs.
bool validatePoints(const SweepArgs& a, const std::vector<Override>& fixed, const std::vector<Axis>& axes,
                    const std::vector<Point>& points, std::vector<std::vector<Override>>& out,
                    std::ostream& err) {
  for (const Point& p : points) {
    out.push_back(overridesOf(fixed, axes, p));
    try {
      const Scenario s = loadScenario(a.file, out.back());
      if (s.platform.section && !s.workload.present())
        s.platform.section->fail("a platform scenario needs a workload: section (what runs on the platform)");
    } catch (const ConfigError& e) {
      err << e.what() << '\n';
      return false;
    }
  }
  return true;
}

int writeCsv(const SweepArgs& a, const std::string& csv, std::size_t failed, std::ostream& out,
             std::ostream& err) {
  if (a.out.empty()) {
    out << csv;
  } else if (const std::string why = writeFileAtomically(a.out, csv); !why.empty()) {
    err << "hmmsim sweep: " << why << '\n';
    return 1;
  }
  if (failed) err << "hmmsim sweep: " << failed << " point(s) failed their expectations (pass = 0)\n";
  return failed ? 1 : 0;
}

}  // namespace

int cmdSweep(const SweepArgs& a, std::ostream& out, std::ostream& err) {
  std::vector<Axis> axes;
  std::vector<Override> fixed;
  if (!parseAxes(a.params, axes, err)) return 2;
  for (const std::string& s : a.sets) {
    std::string why;
    auto o = parseOverride(s, &why);
    if (!o) {
      err << "hmmsim sweep: --set: " << why << '\n';
      return 2;
    }
    fixed.push_back(*o);
  }
  if (!a.out.empty())
    if (const std::string why = checkOutputPath(a.out); !why.empty()) {
      err << "hmmsim sweep: --out: " << why << '\n';
      return 2;
    }
  const std::vector<Point> points = grid(axes);
  std::vector<std::vector<Override>> overrides;
  if (!validatePoints(a, fixed, axes, points, overrides, err)) return 2;
  std::vector<PointResult> results;
#ifdef HMMSIM_HAVE_MPI
  if (startedByMpirun()) {
    MPI_Init(nullptr, nullptr);
    int rank = 0, size = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    results = runMpi(a.file, overrides, rank, size);
    MPI_Finalize();
    if (rank != 0) return 0;
  } else {
    results = runLocal(a.file, overrides, a.jobs);
  }
#else
  results = runLocal(a.file, overrides, a.jobs);
#endif
  std::size_t failed = 0;
  for (const PointResult& r : results) failed += r["pass"].get<bool>() ? 0 : 1;
  return writeCsv(a, toCsv(axes, points, results), failed, out, err);
}

}  // namespace hmmsim::scenario
