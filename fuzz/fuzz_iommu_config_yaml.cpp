// libFuzzer target: the YAML loader of the IOMMU and DMA-mapping parameters (sim/config +
// models/pcie/iommu_config, a scenario's "iommu:" map). Any text must end in parameters the
// models accept (the Iommu and DmaMapping built from them, which assert on what they cannot
// take) or in a ConfigError (a user's mistake, with file:line); anything else (another
// exception, an assertion, a sanitizer report) is a finding.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "models/pcie/dma_mapping.h"
#include "models/pcie/iommu.h"
#include "models/pcie/iommu_config.h"
#include "sim/config.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const hmmsim::ConfigNode root = hmmsim::ConfigNode::loadString(text, "fuzz.yaml");
    const hmmsim::IommuConfig c = hmmsim::loadIommuConfig(root);
    hmmsim::Iommu iommu("fuzz.iommu", c.iommu);
    hmmsim::DmaMapping dma("fuzz.dma", iommu, c.dma);
  } catch (const hmmsim::ConfigError&) {
    // A clear error for a bad file: the expected outcome for most inputs.
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz_iommu_config_yaml: escaped exception (not a ConfigError): %s\n", e.what());
    std::abort();
  }
  return 0;
}
