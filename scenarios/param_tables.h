#pragma once
// Every parameter table `hmmsim describe` knows and docs/scenario-format.md documents, plus the
// tables of what the scenario layer itself reads (dmirror devices until models/platform builds
// devices from their own tables).
//
// How a model joins: write `const ParamTable<FooParams>& fooParamTable()` next to FooParams (in
// the model's layer, see models/cpu_mmu/cpu_mmu_params.cpp), add it to allParamTables() here,
// and regenerate the doc (`hmmsim describe --markdown > docs/scenario-format-params.md`; ctest
// checks it is current).

#include <vector>

#include "models/devices/dmirror/dmirror.h"
#include "sim/params.h"

namespace hmmsim::scenario {

/// `machine.dmirror`: DmirrorParams of every dmirror device.
const ParamTable<DmirrorParams>& dmirrorParamTable();

/// Every table, in the order describe and the doc list them.
std::vector<const ParamTableBase*> allParamTables();

}  // namespace hmmsim::scenario
