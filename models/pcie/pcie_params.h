#pragma once
// Declarative parameter tables (sim/params.h) of the pcie models: the `iommu:` section's keys
// (IommuParams, its IOTLB, and the DMA layer's DmaMappingParams), written once.

#include "models/pcie/iommu_config.h"
#include "sim/params.h"

namespace hmmsim {

/// `iotlb`: IotlbParams (the `iotlb:` map inside `iommu:`).
const ParamTable<IotlbParams>& iotlbParamTable();
/// `iommu`: IommuParams and DmaMappingParams, the keys of a scenario's `iommu:` section.
const ParamTable<IommuConfig>& iommuConfigParamTable();

}  // namespace hmmsim
