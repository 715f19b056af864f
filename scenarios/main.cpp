// hmmsim: the command-line front end.
//
//   hmmsim demo [--ram 64GiB] [--map 64MiB] [--stats-json stats.json]
//   hmmsim run FILE [--set key=value]... [--seed N] [--out DIR] [--trace]
//   hmmsim validate FILE [--set key=value]...
//   hmmsim describe [MODEL] [--markdown]
//   hmmsim sweep FILE --param key=v1,v2,... [--param ...] [--set key=value]... [--jobs N] [--out CSV]
//   hmmsim plot CSV --x KEY --y STAT [--by KEY] [--out SVG]
//
// Exit status: 0 success, 1 a run that failed (an expectation, the checker), 2 a usage error or
// a bad scenario file (nothing ran, no output file was touched).
// Errors in the command line name the option and what was expected, and exit with status 2.

#include "scenarios/commands.h"
#include "scenarios/demo.h"
#include "sim/output_file.h"
#include "sim/units.h"

#include <CLI/CLI.hpp>

#include <cstdlib>
#include <iostream>
#include <systemc>

namespace {

// CLI11 validator for byte sizes written with units ("64GiB").
struct ByteSize : CLI::Validator {
  ByteSize() {
    name_ = "SIZE";
    func_ = [](const std::string& s) -> std::string {
      std::string why;
      return hmmsim::parseBytes(s, &why) ? std::string() : why;
    };
  }
};

/// Every subcommand's options, filled by CLI11.
struct Options {
  std::string ram = "64GiB", map = "64MiB", statsJson;
  hmmsim::scenario::RunArgs run;
  std::string validateFile;
  std::vector<std::string> validateSets;
  std::string model;
  bool markdown = false;
  hmmsim::scenario::SweepArgs sweep;
  hmmsim::scenario::PlotArgs plot;
};

void addScenarioCommands(CLI::App& app, Options& o) {
  auto* run = app.add_subcommand("run", "run a scenario file; exit 1 if an expectation or the checker fails");
  run->add_option("FILE", o.run.file, "the scenario (YAML)")->required();
  run->add_option("--set", o.run.sets,
                  "override a key of the file (key=value, e.g. machine.phys_mem.ram=1GiB)");
  run->add_option("--seed", o.run.seed, "the run's seed (default: the file's seed:)")
      ->check(CLI::NonNegativeNumber);
  run->add_option("--out", o.run.outDir, "write DIR/stats.json (and DIR/trace.json with --trace)");
  run->add_flag("--trace", o.run.trace, "write a Chrome/Perfetto trace (DIR/trace.json, needs --out)");

  auto* validate = app.add_subcommand("validate", "check a scenario file without running it");
  validate->add_option("FILE", o.validateFile, "the scenario (YAML)")->required();
  validate->add_option("--set", o.validateSets, "override a key of the file (key=value)");

  auto* describe = app.add_subcommand("describe", "list the models, or the parameters of one");
  describe->add_option("MODEL", o.model, "a model (phys_mem, mm, dmirror, ...)");
  describe->add_flag("--markdown", o.markdown, "print every table as docs/scenario-format.md has it");

  auto* sweep =
      app.add_subcommand("sweep", "run a scenario over a grid of parameter values, one CSV row per point");
  sweep->add_option("FILE", o.sweep.file, "the scenario (YAML)")->required();
  sweep->add_option("--param", o.sweep.params, "a swept key and its values (key=v1,v2,...)")->required();
  sweep->add_option("--set", o.sweep.sets, "a fixed override for every point (key=value)");
  sweep->add_option("--jobs", o.sweep.jobs, "points run at once, each in its own process")
      ->check(CLI::Range(1, 256));
  sweep->add_option("--out", o.sweep.out, "write the CSV here (default: standard output)");

  auto* plot = app.add_subcommand("plot", "draw a sweep's CSV as an SVG line chart");
  plot->add_option("CSV", o.plot.csv, "a CSV written by hmmsim sweep")->required();
  plot->add_option("--x", o.plot.x, "the column on the x axis")->required();
  plot->add_option("--y", o.plot.y, "the column (stat) on the y axis")->required();
  plot->add_option("--by", o.plot.by, "one line per value of this column");
  plot->add_option("--out", o.plot.out, "the SVG file (default: plot.svg)");
}

int runDemo(const Options& o) {
  hmmsim::DemoOptions opt;
  opt.ramBytes = *hmmsim::parseBytes(o.ram);
  opt.mapBytes = *hmmsim::parseBytes(o.map);
  if (opt.mapBytes == 0 || opt.mapBytes % (4ull << 20) != 0 || opt.mapBytes * 4 > opt.ramBytes) {
    std::cerr << "hmmsim demo: --map " << o.map
              << ": must be a non-zero multiple of 4MiB and at most a quarter of --ram (" << o.ram << ")\n";
    return 2;
  }
  if (opt.ramBytes % (2ull << 20) != 0) {
    std::cerr << "hmmsim demo: --ram " << o.ram << ": must be a multiple of 2MiB\n";
    return 2;
  }
  // Check the output path before the run: a bad path fails now, not after the work.
  if (!o.statsJson.empty()) {
    if (const std::string err = hmmsim::checkOutputPath(o.statsJson); !err.empty()) {
      std::cerr << "hmmsim demo: --stats-json: " << err << '\n';
      return 2;
    }
  }
  opt.statsJson = o.statsJson;
  return hmmsim::runDemo(opt, std::cout);
}

}  // namespace

int sc_main(int argc, char* argv[]) {
  CLI::App app{"hmmsim: a full-system simulator of Linux HMM device p2p DMA with mmu-notifier semantics"};
  app.require_subcommand(1);
  Options o;
  auto* demo = app.add_subcommand("demo", "run the built-in CPU memory-model demo and print its counters");
  demo->add_option("--ram", o.ram, "simulated RAM size (e.g. 64GiB)")->check(ByteSize());
  demo->add_option("--map", o.map, "bytes the demo process maps and touches (e.g. 64MiB, a multiple of 4MiB)")
      ->check(ByteSize());
  demo->add_option("--stats-json", o.statsJson, "write the stats as JSON to this file");
  addScenarioCommands(app, o);

  // An unknown first word is a subcommand the user mistyped: say so, with the known ones.
  if (argc > 1 && argv[1][0] != '-') {
    const std::string first = argv[1];
    bool known = false;
    for (const auto* sub : app.get_subcommands({})) known = known || sub->get_name() == first;
    if (!known) {
      std::cerr << "hmmsim: unknown subcommand '" << first
                << "' (known: demo run validate describe sweep plot); run hmmsim --help\n";
      return 2;
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  namespace sc = hmmsim::scenario;
  if (demo->parsed()) return runDemo(o);
  if (app.got_subcommand("run")) return sc::cmdRun(o.run, std::cout, std::cerr);
  if (app.got_subcommand("validate"))
    return sc::cmdValidate(o.validateFile, o.validateSets, std::cout, std::cerr);
  if (app.got_subcommand("describe")) return sc::cmdDescribe(o.model, o.markdown, std::cout, std::cerr);
  if (app.got_subcommand("sweep")) return sc::cmdSweep(o.sweep, std::cout, std::cerr);
  if (app.got_subcommand("plot")) return sc::cmdPlot(o.plot, std::cout, std::cerr);
  return 0;
}

// Our own main, so the SystemC banner can be silenced before the kernel prints it (it would
// interleave with the summary); SystemC's main would call sc_elab_and_sim the same way.
int main(int argc, char* argv[]) {
  setenv("SYSTEMC_DISABLE_COPYRIGHT_MESSAGE", "1", 0);
  return sc_core::sc_elab_and_sim(argc, argv);
}
