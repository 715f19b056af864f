#pragma once
// Loading the IOMMU and DMA-mapping parameters from a scenario's YAML ("iommu:" section).
//
// Every key is optional; absent keys keep the parameter structs' defaults. Values carry units.
// The keys, units, defaults and ranges are declared once in iommuConfigParamTable()
// (models/pcie/pcie_params.*), which also feeds `hmmsim describe iommu` and the docs.
// Errors (unknown key with the nearest valid one, wrong type, out-of-range value, an IOTLB whose
// ways do not divide its entries) are ConfigErrors naming file:line:column and the key.
//
//   iommu:
//     mode: translate            # off | passthrough | translate
//     invalidation: strict       # strict | lazy   (iommu.strict=1 / 0)
//     large_pages: true          # 2 MiB leaves allowed in DMA domains
//     iotlb: {entries_4k: 64, ways_4k: 8, entries_2m: 32, ways_2m: 32}
//     iotlb_hit_latency: 4ns
//     walk_access_latency: 56.5ns
//     page_walkers: 7
//     fault_records: 256
//     iotlb_invalidation_latency: 500ns
//     ats_invalidation_latency: 1us
//     report_lazy_window: false
//     skip_iotlb_invalidation: false   # misbehaviour injection
//     flush_queue_size: 256
//     flush_queue_timeout: 10ms
//     force_dac: false           # iommu.forcedac=1

#include "models/pcie/dma_mapping.h"
#include "models/pcie/iommu.h"
#include "sim/config.h"

namespace hmmsim {

struct IommuConfig {
  IommuParams iommu;
  DmaMappingParams dma;
};

/// Reads an "iommu:" map (the node itself, not its parent). Throws ConfigError.
IommuConfig loadIommuConfig(const ConfigNode& node);

}  // namespace hmmsim
