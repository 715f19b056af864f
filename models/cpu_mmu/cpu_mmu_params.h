#pragma once
// Declarative parameter tables (sim/params.h) of the cpu_mmu models: the one place where a YAML
// key, its unit, default (the struct's initialiser), description and range are written.

#include "models/cpu_mmu/cpu_core.h"
#include "models/cpu_mmu/dram.h"
#include "models/cpu_mmu/mm.h"
#include "models/cpu_mmu/phys_mem.h"
#include "sim/params.h"

namespace hmmsim {

/// `phys_mem`: PhysMemParams.
const ParamTable<PhysMemParams>& physMemParamTable();
/// `mm`: MmParams of a process.
const ParamTable<MmParams>& mmParamTable();
/// `dram`: DramParams.
const ParamTable<DramParams>& dramParamTable();
/// `cpu_core`: CpuCoreParams (its TLB under `cpu_core.tlb`: not yet a table).
const ParamTable<CpuCoreParams>& cpuCoreParamTable();

}  // namespace hmmsim
