// libFuzzer target: the scenario-file loader (scenarios/scenario_load.cpp, what `hmmsim validate`
// runs: includes, sections, parameter tables, the script and the expectations). Any text must end
// in a validated Scenario or a ConfigError (a user's mistake, with file:line); anything else
// (another exception, an assertion, a sanitizer report) is a finding.
//
// loadScenario reads a file (includes are paths relative to it), so each input is written to
// scenario.yaml in a scratch folder of this process, beside a copy of the selftests' shared
// hmm_fixture.yaml (the seed corpus is scenarios/selftests, which include it).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <unistd.h>

#include "scenarios/scenario.h"
#include "sim/config.h"

namespace {

namespace fs = std::filesystem;

/// The scratch folder, made on the first input. Removed at exit(); a libFuzzer run that ends
/// through _Exit leaves it behind (two small files).
const fs::path& scratch() {
  static const fs::path dir = [] {
    fs::path d = fs::temp_directory_path() / ("fuzz_scenario_yaml." + std::to_string(::getpid()));
    fs::create_directories(d);
    fs::copy_file(fs::path(HMMSIM_SCENARIO_SELFTESTS_DIR) / "hmm_fixture.yaml", d / "hmm_fixture.yaml",
                  fs::copy_options::overwrite_existing);
    std::atexit([] {
      std::error_code ec;
      fs::remove_all(scratch(), ec);
    });
    return d;
  }();
  return dir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const fs::path file = scratch() / "scenario.yaml";
  {
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  try {
    (void)hmmsim::scenario::loadScenario(file.string());
  } catch (const hmmsim::ConfigError&) {
    // A clear error for a bad file: the expected outcome for most inputs.
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz_scenario_yaml: escaped exception (not a ConfigError): %s\n", e.what());
    std::abort();
  }
  return 0;
}
