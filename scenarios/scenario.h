#pragma once
// A scenario file, parsed and validated: the machine, the processes and their memory, an ordered
// script of operations with their expected results, and the run's expectations. The format is
// docs/scenario-format.md; loadScenario() is the only place YAML is read, and every user mistake
// is a ConfigError (file:line:column, the key, what was expected, the nearest valid key), raised
// before anything runs.
//
// Two kinds of scenario:
//  - the dmirror machine (`machine:`, `processes:`, `script:`): the functional mm (mmap, munmap,
//    mprotect, mremap, madvise, fork, CPU loads and stores) and dmirror devices
//    (lib/test_hmm.c), as the kernel's HMM selftests do (scenario_run.h);
//  - the SystemC platform (`platform:` + `workload:`): root complexes, switches, links, the
//    IOMMU and real devices built by models/platform, running one workload (workloads.h lists
//    the kinds), optionally as `variants:` compared side by side (platform_run.h).

#include <any>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "models/cpu_mmu/dev_pagemap.h"
#include "models/cpu_mmu/mm.h"
#include "models/cpu_mmu/phys_mem.h"
#include "models/devices/dmirror/dmirror.h"
#include "models/platform/platform_desc.h"
#include "scenarios/platform_script.h"
#include "sim/config.h"

namespace hmmsim::scenario {

/// Where an element of the file is: "file:line:column" (for run-time failure messages).
std::string where(const ConfigNode& n);
/// "a, b, c".
std::string joinedWords(const std::vector<std::string>& words);
/// "; did you mean 'x'?" for the known word nearest to `got`, or "" when none is near.
std::string didYouMean(const std::string& got, const std::vector<std::string>& known);

/// int word i of a range = base + step * i (step 0: every word is base).
struct IntPattern {
  std::int64_t base = 0;
  std::int64_t step = 1;
};

// How a region is mapped: MapKind (models/platform/platform_desc.h), shared with the platform's
// process mappings.

/// A named region: `memory:` of a process, or a script `mmap`.
struct RegionSpec {
  std::string name;
  std::uint64_t size = 0;  ///< bytes, a multiple of 4 KiB
  int prot = 0;            ///< PROT_*
  MapKind kind = MapKind::Anon;
  std::uint64_t align = 0;             ///< place the region at this alignment (maps size + align); 0: none
  bool thp = false;                    ///< madvise(MADV_HUGEPAGE) after mapping
  std::optional<IntPattern> fileInts;  ///< initial contents of the backing file
  std::optional<IntPattern> fill;      ///< CPU stores after mapping
  std::string fd;                      ///< DeviceFile (dmirror machine): the descriptor's name
  std::string device;                  ///< DeviceFile (platform): the device whose file is mapped
  std::uint64_t hugePageBytes = 2ull << 20;  ///< Hugetlb: 2 MiB or 1 GiB (`page_size`)
};

/// A process of the scenario; the first one is the default target of script operations.
struct ProcessSpec {
  std::string name;
  MmParams mm;
  std::vector<unsigned> open;  ///< dmirror devices opened at start (descriptor "dmirror<N>")
  std::vector<RegionSpec> memory;
};

/// One dmirror device (/dev/hmm_dmirror<id>).
struct DeviceSpec {
  unsigned id = 0;
  MemoryType memory = MemoryType::DevicePrivate;
};

enum class OpKind {
  Mmap,      ///< map a region (RegionSpec)
  Munmap,    ///< munmap(region + offset, length)
  Mprotect,  ///< mprotect(region + offset, length, prot)
  Mremap,    ///< mremap(region, size, new_size, MREMAP_MAYMOVE [| FIXED at `to_region`])
  Madvise,   ///< madvise(region + offset, length, advice)
  Fork,      ///< fork(): `child` gets a copy of the process's address space
  Exit,      ///< the process closes its descriptors and exits
  Open,      ///< open a dmirror device: descriptor `as` (default "dmirror<N>")
  Close,     ///< close a descriptor
  Write,     ///< CPU stores of an int pattern
  Read,      ///< CPU loads, checked against an int pattern or bytes
  Dmirror,   ///< an HMM_DMIRROR_* ioctl
  Repeat,    ///< the nested `script` `times` times
};

/// Expected outcome of an operation that returns an error code (0 = success).
struct ExpectRet {
  int ret = 0;  ///< 0 or -errno
  std::optional<std::uint64_t> cpages, faults;
};

struct Op {
  OpKind kind = OpKind::Read;
  std::string where;              ///< file:line:column of the operation
  std::optional<ConfigNode> src;  ///< the operation's node (for errors found by checkScenario)
  std::string text;               ///< "dmirror read" etc., for messages
  std::string process;            ///< target process ("" = the first)
  std::string region;
  std::uint64_t offset = 0, length = 0;  ///< bytes; length 0 = to the end of the region
  int prot = 0;
  int advice = 0;
  std::uint64_t newSize = 0;
  std::string toRegion;  ///< mremap: move to this region's address (MREMAP_FIXED)
  std::string child;     ///< fork
  unsigned device = 0;   ///< open
  std::string fd;        ///< dmirror, close, open's `as`
  unsigned command = 0;  ///< HMM_DMIRROR_*
  std::string mirror;    ///< dmirror: the bounce buffer region
  std::uint64_t npages = 0;
  std::uint64_t flagsValue = 0;           ///< dmirror flags
  std::optional<IntPattern> ints;         ///< write: the data; read: the expectation
  std::optional<std::vector<int>> bytes;  ///< read: expected bytes (snapshot results)
  ExpectRet expect;         ///< munmap/mprotect/mremap/madvise/mmap/fork/dmirror; read: SIGSEGV as -EFAULT
  RegionSpec mapping;       ///< mmap
  std::uint64_t times = 0;  ///< repeat
  std::vector<Op> body;     ///< repeat
};

/// `expect: stats:` entry: the stat's value must lie in [min, max].
struct StatExpect {
  std::string where;
  std::string stat;
  std::optional<double> eq;        ///< `eq:` the value exactly (then min and max are unset)
  std::optional<double> min, max;  ///< `min:` / `max:` bounds, inclusive
};

/// What the checker must conclude.
struct CheckerExpect {
  bool clean = true;                            ///< no violation at all
  std::map<std::string, std::uint64_t> counts;  ///< rule name -> exact count (when !clean)
};

struct Expect {
  std::vector<StatExpect> stats;
  CheckerExpect checker;
};

/// The SystemC platform (models/platform): the `platform:` section, validated into a
/// PlatformDesc (topology and IOMMU through loadPlatformParts, RAM and DRAM through their
/// parameter tables, the quantum, devices by their types' tables; the workload's process added).
struct PlatformHook {
  std::optional<ConfigNode> section;
  std::optional<PlatformDesc> desc;
};

/// `workload:` what runs on the platform: one of the kinds of scenarios/workloads.h.
struct WorkloadSpec {
  std::string kind;  ///< its key ("camera_chain"); "" when the file has no workload
  std::any params;   ///< that kind's parameters (CameraChainParams, ...)
  bool present() const { return !kind.empty(); }
};

struct Scenario {
  std::string file;
  std::string name;
  std::string description;
  std::uint64_t seed = 1;
  PhysMemParams physMem;
  DmirrorParams dmirror;
  std::vector<DeviceSpec> devices;
  std::vector<ProcessSpec> processes;
  std::vector<Op> script;
  Expect expect;
  PlatformHook platform;
  WorkloadSpec workload;
  /// A platform scenario's `script:` (platform_script.h): operations and events during the workload.
  std::vector<PlatformOp> platformScript;
  std::string variant;             ///< this run's name among the file's variants ("" otherwise)
  std::string variantDescription;  ///< its description
  /// `variants:` the file run once per entry, with that entry's `set:` overrides and extra
  /// `expect:` stats (each a whole, validated Scenario); empty: the file runs once.
  std::vector<Scenario> variants;
};

/// One `--set key=value` (key: dotted path with [i] for list elements: "machine.ram",
/// "processes[0].memory[1].size").
// Its implicit move assignment assigns an optional ConfigNode, whose YAML::Node may throw (see
// sim/config.h); an Override is never assigned where the exception could not propagate.
// NOLINTNEXTLINE(bugprone-exception-escape)
struct Override {
  std::string key, value;
  /// The value's node when it comes from a file (a variant's `set:`): errors point at it.
  std::optional<ConfigNode> src;
  /// The command-line option that gave it ("--set", a sweep's "--param"): an error about a value
  /// without `src` names "<origin> key=value", where the user wrote it.
  std::string origin = "--set";
};

/// Reads `path`, its includes and the overrides, and validates everything. Throws ConfigError.
Scenario loadScenario(const std::string& path, const std::vector<Override>& overrides = {});
/// Parses "key=value"; returns nullopt (and says why in `why`) when malformed.
std::optional<Override> parseOverride(const std::string& text, std::string* why);

}  // namespace hmmsim::scenario
