#pragma once
// The hmmsim subcommands that work on scenario files (run, validate, describe, sweep, plot).
// Each returns the process exit status: 0 success, 1 a run that failed (an expectation, the
// checker), 2 a user mistake (bad file, bad option, unwritable output), with the message
// already printed to `err`.

#include <iosfwd>
#include <string>
#include <vector>

namespace hmmsim::scenario {

struct RunArgs {
  std::string file;
  std::vector<std::string> sets;  ///< key=value
  long long seed = -1;            ///< < 0: the file's seed
  std::string outDir;             ///< "" = write no files
  bool trace = false;
};
int cmdRun(const RunArgs& a, std::ostream& out, std::ostream& err);
int cmdValidate(const std::string& file, const std::vector<std::string>& sets, std::ostream& out,
                std::ostream& err);
/// `model` "" lists the tables; `markdown` prints the generated doc section instead.
int cmdDescribe(const std::string& model, bool markdown, std::ostream& out, std::ostream& err);

struct SweepArgs {
  std::string file;
  std::vector<std::string> sets;    ///< fixed key=value for every point
  std::vector<std::string> params;  ///< key=v1,v2,...
  unsigned jobs = 1;
  std::string out;  ///< CSV path; "" = standard output
};
/// Runs every point of the grid (in `jobs` processes, or split over MPI ranks when started by
/// mpirun) and writes one CSV row per point: the parameters, pass, then every stat.
int cmdSweep(const SweepArgs& a, std::ostream& out, std::ostream& err);

struct PlotArgs {
  std::string csv, x, y, by, out;
};
int cmdPlot(const PlotArgs& a, std::ostream& out, std::ostream& err);

}  // namespace hmmsim::scenario
