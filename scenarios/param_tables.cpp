#include "scenarios/param_tables.h"

#include "models/cpu_mmu/cpu_mmu_params.h"
#include "models/pcie/pcie_params.h"
#include "models/pcie/topology_desc.h"
#include "models/platform/device_params.h"
#include "scenarios/workloads.h"

namespace hmmsim::scenario {

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
