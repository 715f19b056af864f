#pragma once
// A platform scenario's `script:` (docs/scenario-format.md, "Platform scripts"): operations at
// simulated times while the workload runs. Two kinds:
//  - process operations on the workload's named memory (PlatformWorkload::regions) or on regions
//    the script maps: mmap, munmap, mprotect, madvise, CPU read and write. Each process the
//    script touches gets a CPU core ("script_<process>") whose program is these operations in
//    time order, each started at its time (CpuOp::until): system calls cost what the core
//    charges, loads and stores go through its TLB and the system bus, and an access that faults
//    kills the process (its later operations do not run);
//    fork and mremap run there too (the region's name follows the memory an mremap moves);
//  - injected events, run by one SystemC thread in time order: an exporter revoking its
//    importers, moving its BAR windows, BAR pressure from another importer, a device reset, an
//    invalidation storm over a region, an importer driver's misbehaviour switched on or off, a
//    device driver migrating a region to its device-private memory or back (migrate_vma, as a
//    GPU runtime or the dmirror test driver does).
// Every operation may give `expect:` (ok or an errno); a different result fails the run with the
// operation's file:line:column. Times: `at:` (first occurrence) and optionally `every:` with
// `count:` or `until:`; occurrences at the same time run in file order. Everything is checked
// before anything runs (loadScenario): operation names (nearest name on a typo), regions,
// processes and devices (with their types), times.

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "hmm/importer_mirror.h"
#include "models/platform/platform_desc.h"
#include "sim/config.h"

namespace hmmsim::scenario {

enum class PlatformOpKind {
  Mmap,               ///< map a region: a workload's again (MAP_FIXED at its address) or a new one
  Munmap,             ///< munmap(region + offset, length)
  Mprotect,           ///< mprotect(region + offset, length, prot)
  Madvise,            ///< madvise(region + offset, length, advice)
  Read,               ///< CPU loads, checked (every byte `value`, or the first `bytes`)
  Write,              ///< CPU stores of the byte `value`
  Revoke,             ///< the device's exporter revokes every importer's hold on its memory
  MoveWindows,        ///< the exporter moves each resident BAR window to a free one
  BarPressure,        ///< another importer takes `windows` BAR windows (held for `hold`)
  DeviceReset,        ///< the exporter's BAR reset: windows torn down, maps fail for `duration`
  InvalidationStorm,  ///< `times` MMU_NOTIFY_CLEAR rounds over the region, back to back
  Misbehave,          ///< the device's importer driver misbehaves from now on (`mode`)
  Fork,               ///< the process forks (COW write-protection of its private memory)
  Mremap,             ///< mremap(region, its size, `size`, MREMAP_MAYMOVE [| FIXED at `to`/back])
  Migrate,            ///< the device's driver migrates the region to its private memory or back
};

/// True for the operations a process's CPU core runs (the others are injected events).
bool isProcessOp(PlatformOpKind k);

struct PlatformOp {
  PlatformOpKind kind = PlatformOpKind::Revoke;
  std::string name;   ///< the `op:` word
  std::string where;  ///< file:line:column of the entry
  std::uint64_t atPs = 0;
  std::uint64_t everyPs = 0;  ///< 0: once
  std::uint64_t count = 1;    ///< occurrences
  std::string process;        ///< process ops: the region's process
  std::string region;
  std::uint64_t offset = 0;  ///< bytes into the region
  std::uint64_t length = 0;  ///< bytes; 0: to the region's end
  std::uint64_t size = 0;    ///< mmap of a new region: its size
  int prot = 0;
  int advice = 0;
  std::optional<int> value;               ///< write: the byte stored; read: every byte expected
  std::optional<std::vector<int>> bytes;  ///< read: the first bytes expected
  std::string device;
  std::uint64_t windows = 0;     ///< bar_pressure
  std::uint64_t durationPs = 0;  ///< bar_pressure: hold; device_reset: until the reset ends
  std::uint64_t times = 0;       ///< invalidation_storm: rounds
  ImporterMisbehaviour mode = ImporterMisbehaviour::None;
  std::string toRegion;  ///< mremap: MREMAP_FIXED at this region's address
  bool back = false;     ///< mremap: MREMAP_FIXED at the region's workload address
  bool toRam = false;    ///< migrate: back to system memory (else to the device)
  int expect = 0;        ///< 0 or -errno
};

/// One occurrence of an operation.
struct PlatformStep {
  std::uint64_t atPs = 0;
  std::size_t op = 0;  ///< index in the script
};

/// A region a workload kind declares (name, process), known before anything runs.
using RegionNames = std::vector<std::pair<std::string, std::string>>;

/// `script:` entries of a platform scenario → operations, validated against the workload's
/// regions and the platform's devices. Adds a CPU ("script_<process>") to `d` for each process
/// the script's process operations touch. Throws ConfigError at the offending key.
std::vector<PlatformOp> parsePlatformScript(const std::vector<ConfigNode>& elements,
                                            const RegionNames& regions, PlatformDesc& d);
/// Every occurrence of every operation, by time (ties: file order, then occurrence).
std::vector<PlatformStep> platformSchedule(const std::vector<PlatformOp>& ops);

}  // namespace hmmsim::scenario
