// hmmsim: the command-line front end.
//
//   hmmsim demo [--ram 64GiB] [--map 64MiB] [--stats-json stats.json]
//
// Errors in the command line name the option and what was expected, and exit with status 2.

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

}  // namespace

int sc_main(int argc, char* argv[]) {
  CLI::App app{"hmmsim: a full-system simulator of Linux HMM device p2p DMA with mmu-notifier semantics"};
  app.require_subcommand(1);

  std::string ram = "64GiB", map = "64MiB", statsJson;
  auto* demo = app.add_subcommand("demo", "run the built-in CPU memory-model demo and print its counters");
  demo->add_option("--ram", ram, "simulated RAM size (e.g. 64GiB)")->check(ByteSize());
  demo->add_option("--map", map, "bytes the demo process maps and touches (e.g. 64MiB, a multiple of 4MiB)")
      ->check(ByteSize());
  demo->add_option("--stats-json", statsJson, "write the stats as JSON to this file");

  // An unknown first word is a subcommand the user mistyped: say so, with the known ones.
  if (argc > 1 && argv[1][0] != '-' && std::string(argv[1]) != demo->get_name()) {
    std::cerr << "hmmsim: unknown subcommand '" << argv[1] << "' (known: demo); run hmmsim --help\n";
    return 2;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }

  if (demo->parsed()) {
    hmmsim::DemoOptions opt;
    opt.ramBytes = *hmmsim::parseBytes(ram);
    opt.mapBytes = *hmmsim::parseBytes(map);
    if (opt.mapBytes == 0 || opt.mapBytes % (4ull << 20) != 0 || opt.mapBytes * 4 > opt.ramBytes) {
      std::cerr << "hmmsim demo: --map " << map
                << ": must be a non-zero multiple of 4MiB and at most a quarter of --ram (" << ram << ")\n";
      return 2;
    }
    if (opt.ramBytes % (2ull << 20) != 0) {
      std::cerr << "hmmsim demo: --ram " << ram << ": must be a multiple of 2MiB\n";
      return 2;
    }
    // Check the output path before the run: a bad path fails now, not after the work.
    if (!statsJson.empty()) {
      if (const std::string err = hmmsim::checkOutputPath(statsJson); !err.empty()) {
        std::cerr << "hmmsim demo: --stats-json: " << err << '\n';
        return 2;
      }
    }
    opt.statsJson = statsJson;
    return hmmsim::runDemo(opt, std::cout);
  }
  return 0;
}

// Our own main, so the SystemC banner can be silenced before the kernel prints it (it would
// interleave with the summary); SystemC's main would call sc_elab_and_sim the same way.
int main(int argc, char* argv[]) {
  setenv("SYSTEMC_DISABLE_COPYRIGHT_MESSAGE", "1", 0);
  return sc_core::sc_elab_and_sim(argc, argv);
}
