#include "models/pcie/iommu_config.h"

#include "models/pcie/pcie_params.h"

namespace hmmsim {

IommuConfig loadIommuConfig(const ConfigNode& node) {
  IommuConfig c;
  iommuConfigParamTable().load(node, c);
  return c;
}

}  // namespace hmmsim
