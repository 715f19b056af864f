// libFuzzer target: the YAML topology loader (sim/config + models/pcie/topology_desc).
// Any text must end in a built topology or a ConfigError (a user's mistake, with file:line);
// anything else (another exception, an assertion, a sanitizer report) is a finding.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "models/pcie/topology_desc.h"
#include "sim/config.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const hmmsim::ConfigNode root = hmmsim::ConfigNode::loadString(text, "fuzz.yaml");
    const hmmsim::TopologyDesc desc = hmmsim::loadTopologyDesc(root);
    (void)hmmsim::buildTopology(desc);
  } catch (const hmmsim::ConfigError&) {
    // A clear error for a bad file: the expected outcome for most inputs.
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz_topology_yaml: escaped exception (not a ConfigError): %s\n", e.what());
    std::abort();
  }
  return 0;
}
