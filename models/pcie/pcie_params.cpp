#include "models/pcie/pcie_params.h"

#include <string>

namespace hmmsim {

namespace {
constexpr std::uint64_t kSecondPs = 1'000'000'000'000ull;
constexpr std::int64_t kMaxEntries = 1 << 16;

ParamTable<IommuParams> iommuParamTable() {
  ParamTable<IommuParams> t("iommu", "");
  t.choice("mode", &IommuParams::mode, "how DMA is remapped (no IOMMU, identity domain, paging domains)",
           {{"off", IommuMode::Off},
            {"passthrough", IommuMode::Passthrough},
            {"translate", IommuMode::Translate}});
  t.choice("invalidation", &IommuParams::invalidation, "unmap flush policy: iommu.strict=1 / 0 (flush queue)",
           {{"strict", IommuInvalidation::Strict}, {"lazy", IommuInvalidation::Lazy}});
  t.boolean("large_pages", &IommuParams::largePages, "domains may use 2 MiB leaves");
  t.table("iotlb", iotlbParamTable(), &IommuParams::iotlb, "IOTLB geometry");
  t.duration("iotlb_hit_latency", &IommuParams::iotlbHitLatencyPs,
             "IOTLB lookup, paid by every translated request", 0, kSecondPs);
  t.duration("walk_access_latency", &IommuParams::walkAccessLatencyPs, "one page-table entry read from DRAM",
             0, kSecondPs);
  t.integer("page_walkers", &IommuParams::pageWalkers, "walks", "concurrent page walks", 1, 1024);
  t.integer("fault_records", &IommuParams::faultRecords, "records", "fault log capacity", 0, 1 << 20);
  t.duration("iotlb_invalidation_latency", &IommuParams::iotlbInvalidationLatencyPs,
             "one IOTLB invalidation + wait descriptor", 0, kSecondPs);
  t.duration("ats_invalidation_latency", &IommuParams::atsInvalidationLatencyPs,
             "ATS invalidation round trip per ATS device", 0, kSecondPs);
  t.boolean("report_lazy_window", &IommuParams::reportLazyWindow,
            "also report stale hits inside the lazy flush window to the checker");
  t.boolean("skip_iotlb_invalidation", &IommuParams::skipIotlbInvalidation,
            "misbehaviour injection: unmaps and flushes leave the IOTLB untouched");
  return t;
}

ParamTable<DmaMappingParams> dmaMappingParamTable() {
  ParamTable<DmaMappingParams> t("dma_mapping", "");
  t.integer("flush_queue_size", &DmaMappingParams::flushQueueSize, "entries",
            "IOVA_DEFAULT_FQ_SIZE: lazy unmaps queued before a forced flush", 1, 1 << 20);
  t.duration("flush_queue_timeout", &DmaMappingParams::flushQueueTimeoutPs,
             "IOVA_FQ_TIMEOUT after the first queued entry", 0, kSecondPs);
  t.boolean("force_dac", &DmaMappingParams::forceDac, "iommu.forcedac=1: no 32-bit-first IOVA attempt");
  return t;
}
}  // namespace

const ParamTable<IotlbParams>& iotlbParamTable() {
  static const ParamTable<IotlbParams> table = [] {
    ParamTable<IotlbParams> t("iotlb", "the IOMMU's IOTLB geometry (IotlbParams), the iotlb: map of iommu:");
    t.integer("entries_4k", &IotlbParams::entries4k, "entries", "4 KiB-page entries", 1, kMaxEntries);
    t.integer("ways_4k", &IotlbParams::ways4k, "ways", "associativity of the 4 KiB array", 1, kMaxEntries);
    t.integer("entries_2m", &IotlbParams::entries2m, "entries", "2 MiB-page entries", 1, kMaxEntries);
    t.integer("ways_2m", &IotlbParams::ways2m, "ways", "associativity of the 2 MiB array", 1, kMaxEntries);
    t.check([](const IotlbParams& p) -> std::string {
      if (p.entries4k % p.ways4k != 0)
        return "ways_4k (" + std::to_string(p.ways4k) + ") must divide entries_4k (" +
               std::to_string(p.entries4k) + ")";
      if (p.entries2m % p.ways2m != 0)
        return "ways_2m (" + std::to_string(p.ways2m) + ") must divide entries_2m (" +
               std::to_string(p.entries2m) + ")";
      return "";
    });
    return t;
  }();
  return table;
}

const ParamTable<IommuConfig>& iommuConfigParamTable() {
  static const ParamTable<IommuConfig> table = [] {
    ParamTable<IommuConfig> t("iommu", "the IOMMU and the DMA-mapping layer (IommuParams, DmaMappingParams)");
    t.merge(iommuParamTable(), &IommuConfig::iommu);
    t.merge(dmaMappingParamTable(), &IommuConfig::dma);
    return t;
  }();
  return table;
}

}  // namespace hmmsim
