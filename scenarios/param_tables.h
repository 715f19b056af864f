#pragma once
// Every parameter table `hmmsim describe` knows and docs/scenario-format.md documents (dmirror's
// is the platform's, models/platform/device_params.h).
//
// How a model joins: write `const ParamTable<FooParams>& fooParamTable()` next to FooParams (in
// the model's layer, see models/cpu_mmu/cpu_mmu_params.cpp), add it to allParamTables() here,
// and regenerate the doc (`hmmsim describe --markdown > docs/scenario-format-params.md`; ctest
// checks it is current).

#include <vector>

#include "models/platform/device_params.h"
#include "sim/params.h"

namespace hmmsim::scenario {

/// Every table, in the order describe and the doc list them.
std::vector<const ParamTableBase*> allParamTables();

}  // namespace hmmsim::scenario
