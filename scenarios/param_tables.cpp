#include "scenarios/param_tables.h"

#include "models/cpu_mmu/cpu_mmu_params.h"
#include "models/pcie/pcie_params.h"
#include "models/pcie/topology_desc.h"
#include "models/platform/device_params.h"
#include "scenarios/workloads.h"

namespace hmmsim::scenario {

const ParamTable<DmirrorParams>& dmirrorParamTable() {
  static const ParamTable<DmirrorParams> table = [] {
    ParamTable<DmirrorParams> t("dmirror", "lib/test_hmm.c's dmirror devices (DmirrorParams)");
    t.bytes("chunk", &DmirrorParams::chunkBytes,
            "device memory chunk (DEVMEM_CHUNK_SIZE), a multiple of 2 MiB", 2ull << 20, 1ull << 40);
    t.bytes("capacity", &DmirrorParams::capacityBytes, "most device memory (chunks added on demand)",
            2ull << 20, 1ull << 44);
    t.integer("fault_chunk_pages", &DmirrorParams::faultChunkPages, "pages",
              "pages per hmm_range in dmirror_fault", 1, 1 << 20);
    t.integer("max_retries", &DmirrorParams::maxRetries, "restarts",
              "hmm_range_fault restart budget per range", 1, 1 << 30);
    t.boolean("evict_on_release", &DmirrorParams::evictOnRelease,
              "evict the device's chunks when a handle closes");
    t.boolean("buggy_fault", &DmirrorParams::faultStoresDevicePage,
              "reproduce 6.12's dmirror_do_fault mistake (stores a device-private page)");
    t.check([](const DmirrorParams& p) -> std::string {
      if (p.chunkBytes % (2ull << 20) != 0) return "chunk must be a multiple of 2MiB";
      if (p.capacityBytes < p.chunkBytes) return "capacity must be at least one chunk";
      return "";
    });
    return t;
  }();
  return table;
}

std::vector<const ParamTableBase*> allParamTables() {
  std::vector<const ParamTableBase*> t = {
      &physMemParamTable(),     &mmParamTable(),     &dramParamTable(),         &cpuCoreParamTable(),
      &dmirrorParamTable(),     &cameraParamTable(), &cameraSensorParamTable(), &colourEngineParamTable(),
      &importerDmaParamTable(), &nvmeParamTable(),   &nicParamTable(),          &gpuParamTable()};
  for (const WorkloadKind& k : workloadKinds()) t.push_back(k.table);
  for (const ParamTableBase* topo : topologyParamTables()) t.push_back(topo);
  return t;
}

}  // namespace hmmsim::scenario
