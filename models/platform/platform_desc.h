#pragma once
// PlatformDesc: everything the platform builder (platform.h) needs to make a whole machine, as
// typed C++ structs (the scenario-file table of issue 13 will fill them). The topology and IOMMU
// parts already load from YAML with the existing loaders (loadPlatformParts below).
//
// Every parameter has a unit, a default and a one-line description. Defaults: 4 GiB of DRAM,
// the cpu_mmu Dram timing, PCIe per-burst fidelity, IOMMU translating, a 1 us quantum, no
// processes, CPUs, device memories or devices.

#include <any>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "models/cpu_mmu/cpu_core.h"
#include "models/cpu_mmu/dram.h"
#include "models/cpu_mmu/mm.h"
#include "models/cpu_mmu/phys_mem.h"
#include "models/pcie/fabric_from_topology.h"
#include "models/pcie/iommu_config.h"
#include "models/pcie/p2pdma.h"
#include "models/pcie/topology_desc.h"
#include "models/platform/interrupts.h"
#include "sim/config.h"

namespace hmmsim {

/// How a region of a process's address space is mapped.
enum class MapKind {
  Anon,         ///< MAP_PRIVATE | MAP_ANONYMOUS
  SharedAnon,   ///< MAP_SHARED | MAP_ANONYMOUS (shmem)
  FilePrivate,  ///< MAP_PRIVATE of a tmpfile
  FileShared,   ///< MAP_SHARED of a tmpfile
  DeviceFile,   ///< a device's file (dmirror: MAP_PRIVATE, VM_MIXEDMAP; platform: MAP_SHARED special vma)
  Hugetlb,      ///< MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB (huge pages from the mm's pool)
};
/// "anon", "shared", "file-private", "file", "device-file", "hugetlb" (the scenario words).
const char* mapKindName(MapKind k);

/// A named mapping of a process, made when the platform is built (after its devices, before any
/// workload): memory a workload's buffers may be placed in (PlatformWorkload placements).
struct MappingDesc {
  std::string name;  ///< unique in the process
  MapKind kind = MapKind::Anon;
  std::uint64_t bytes = 0;            ///< a multiple of 4 KiB (hugetlb: of its page size)
  int prot = PROT_READ | PROT_WRITE;  ///< PROT_*
  /// madvise(MADV_HUGEPAGE) after mapping (THP for anonymous memory under thp: madvise).
  bool thp = false;
  /// Hugetlb: the page size, 2 MiB or 1 GiB (MAP_HUGE_2MB / MAP_HUGE_1GB), taken from the mm's
  /// pool (MmParams::hugetlbPages / hugetlbPages1G). Default 2 MiB.
  std::uint64_t hugePageBytes = 2ull << 20;
  std::string device;  ///< DeviceFile: the device whose file is mapped
  /// DeviceFile: the mmap offset into the device's file (what the device's mmap sees as vm_pgoff
  /// * 4 KiB: for the platform's devices, the device memory byte the mapping starts at). Unit:
  /// bytes, a multiple of 4 KiB. Default 0. Other kinds: 0.
  std::uint64_t offset = 0;
};

/// One process (an address space, Mm).
struct ProcessDesc {
  // A constructor, so that ProcessDesc{name, mm} (without memory) stays valid under -Wextra.
  ProcessDesc(std::string n = {}, MmParams m = {}, std::vector<MappingDesc> mem = {})
      : name(std::move(n)), mm(m), memory(std::move(mem)) {}
  std::string name;                 ///< unique, e.g. "proc0"
  MmParams mm;                      ///< its mm's parameters; default MmParams
  std::vector<MappingDesc> memory;  ///< its named mappings, in mapping order; default none
};

/// One CPU core. It runs a program given when the simulation is set up (Platform::startCpu).
struct CpuDesc {
  std::string name;      ///< unique, e.g. "cpu0"
  std::string process;   ///< the process whose address space it runs in (a ProcessDesc name)
  CpuCoreParams params;  ///< its timing; default CpuCoreParams
};

/// What kind of memory sits behind a device's BAR at the BAR's physical address.
enum class DeviceMemoryKind {
  Raw,       ///< plain device memory (VRAM, a CMB) in PhysMem, no struct pages for the mm
  Coherent,  ///< MEMORY_DEVICE_COHERENT pages (memremapPagesAt): the mm may map them
};
const char* deviceMemoryKindName(DeviceMemoryKind k);

/// Device memory placed at a BAR (the one byte store: the BAR target reads/writes these frames).
struct DeviceMemoryDesc {
  std::string endpoint;  ///< topology endpoint (function 0) whose BAR it sits behind
  int bar = 2;           ///< the BAR index; default 2 (a GPU's prefetchable 64-bit BAR)
  DeviceMemoryKind kind = DeviceMemoryKind::Raw;  ///< default Raw
};

/// One device, created through the DeviceRegistry by type name.
struct DeviceDesc {
  std::string type;      ///< registered type ("dmirror", "camera", ...)
  std::string name;      ///< unique instance name
  std::string endpoint;  ///< topology endpoint (function 0) it is; empty: not on PCIe (dmirror)
  std::any params;       ///< the device's own params struct; empty: its defaults
};

struct PlatformDesc {
  /// System RAM (PhysMem). ramSize: bytes, default 4 GiB; ramBase: default 0.
  PhysMemParams ram;
  /// DRAM timing (cpu_mmu Dram): channels, bandwidth, latency; default DramParams.
  DramParams dram;
  /// The PCIe topology (hosts, switches, endpoints, links); enumerated by the builder.
  TopologyDesc topology;
  /// Fabric timing (root complexes, switches, links, DMA engines, BAR memories); default
  /// FabricFromTopologyParams with per-burst DMA fidelity. Host memory is always the DRAM above.
  FabricFromTopologyParams fabric = defaultFabric();
  /// IOMMU and DMA API; default: translating, strict invalidation.
  IommuConfig iommu = defaultIommu();
  /// p2pdma's view of the CPU (host-bridge allow-list); default P2pdmaParams.
  P2pdmaParams p2pdma;
  /// MSI delivery and the CPU driver threads' costs; default InterruptParams.
  InterruptParams interrupts;
  std::vector<ProcessDesc> processes;          ///< address spaces; default none
  std::vector<CpuDesc> cpus;                   ///< CPU cores; default none
  std::vector<DeviceMemoryDesc> deviceMemory;  ///< device memory at BARs; default none
  std::vector<DeviceDesc> devices;             ///< devices by type; default none
  /// TLM global quantum. Unit: ps. Default 1 us.
  std::uint64_t quantumPs = 1'000'000;
  /// Threads written for it (the camera's, the colour engine's) skip syncs nothing could observe
  /// (models/cpu_mmu/lookahead.h): faster, same results. Default true.
  bool lookahead = true;
  /// Timing only: no payload anywhere (DMA engines and DRAM move no bytes). Default false.
  bool timingOnly = false;
  /// Seed of every random choice (p2pdma). Default 1.
  std::uint64_t seed = 1;

  static FabricFromTopologyParams defaultFabric();
  static IommuConfig defaultIommu();
  /// "" when valid; else what is wrong, naming the field (names unique, references resolve).
  std::string check() const;
  /// "" unless a host bridge window covers the MSI window (interrupt messages would then be
  /// routed as MMIO and lost); else what is wrong and the fix. Part of check().
  std::string msiWindowConflict() const;
};

/// Reads the parts of a scenario file the existing loaders cover: "topology:" (loadTopologyDesc)
/// and "iommu:" (loadIommuConfig) under `root`, if present, into `desc`. Throws ConfigError.
void loadPlatformParts(const ConfigNode& root, PlatformDesc& desc);

}  // namespace hmmsim
