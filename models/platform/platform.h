#pragma once
// Platform: the whole machine built from a PlatformDesc (platform_desc.h) — the layer above the
// devices that scenarios (and integration tests) build on.
//
// What the builder makes, in this order:
//  1. PhysMem (DRAM's bytes and every device memory: one byte store) and the cpu_mmu Dram;
//  2. the Topology from the description (enumeration assigns bus numbers and BAR addresses) and
//     its SystemC fabric (FabricFromTopology, routed by topology's Router);
//  3. the IOMMU and the DMA API (every endpoint attached, IOMMU groups as the kernel forms them),
//     an IOMMU translation stage on every root complex with the MSI window passed through, and
//     the interrupt controller: every root complex's host-memory port goes through an MsiTarget
//     to the DRAM;
//  4. p2pdma and the p2p DMA mapper, the checker (InvariantChecker + P2pChecker with the
//     simulated clock; lockdep reports into it), the ImporterDmaDirectory (rule 3 at BARs);
//  5. the system address map and the CPU's SystemBus: DRAM, and each host bridge's MMIO windows
//     through its root complex (CPU loads/stores to BARs and device-coherent memory);
//  6. processes (an Mm each, sleeping through one ScBlocker);
//  7. device memory at BAR addresses (PhysMem device range or MEMORY_DEVICE_COHERENT pages via
//     memremapPagesAt; the BAR target reads/writes those frames);
//  8. devices through the DeviceRegistry by type name;
//  9. each process's named mappings (ProcessDesc::memory), in order: anonymous (THP-advised or
//     not), shared anonymous, tmpfiles (shared or private), hugetlb (2 MiB or 1 GiB pages from
//     the mm's pool) and device files (PlatformDevice::openDeviceFile, mapped shared from
//     MappingDesc::offset: the mmap's pgoff, checked by the device's mmap).
// CPU cores are added with startCpu (their program is the run's), before sc_start.
// Teardown: devices' beforeProcessExit, then processes exit, then devices, then the rest.
// A user's mistake (a bad description, an unknown device type or endpoint) is a ConfigError
// naming the field, file "<platform>".
// Tracing: given a TraceSink, the builder hands it to every model that records timeline slices
// (wireTrace): each link direction's occupancy ("link.<lower end>.up/down"), the IOMMU's walks
// and faults, every device's DMA bursts ("device.<name>.dma"), the interrupt controller's MSIs and
// handlers ("cpu.driver<c>"), and through DeviceContext::trace and PcieDmaEngine::timelineTrace the
// devices' exporters (BAR window events), importers (faults, invalidations) and drivers
// (migrations). Categories are fixed when the platform is built: enable them on the sink first.
// Timing: the models'; the builder adds none.

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "hmm/p2p_checker.h"
#include "hmm/p2p_dma.h"
#include "models/cpu_mmu/cpu_core.h"
#include "models/cpu_mmu/dev_pagemap.h"
#include "models/cpu_mmu/dram.h"
#include "models/cpu_mmu/mm.h"
#include "models/cpu_mmu/phys_mem.h"
#include "models/cpu_mmu/sc_blocker.h"
#include "models/cpu_mmu/system_address_map.h"
#include "models/cpu_mmu/system_bus.h"
#include "models/devices/common/device_registry.h"
#include "models/devices/common/importer_dma.h"
#include "models/pcie/dma_mapping.h"
#include "models/pcie/fabric_from_topology.h"
#include "models/pcie/iommu.h"
#include "models/pcie/iommu_translation_stage.h"
#include "models/pcie/link_occupancy_trace.h"
#include "models/pcie/p2pdma.h"
#include "models/pcie/topology.h"
#include "models/platform/interrupts.h"
#include "models/platform/platform_desc.h"
#include "sim/checker.h"
#include "sim/lockdep.h"

namespace hmmsim {

/// A process mapping the builder made (ProcessDesc::memory): where it is.
struct ProcessMapping {
  Va start;  ///< page aligned (hugetlb: aligned to its page size)
  std::uint64_t bytes = 0;
  MapKind kind = MapKind::Anon;
  int prot = PROT_READ | PROT_WRITE;  ///< as mapped (MappingDesc::prot)
  std::string device;                 ///< DeviceFile: the device
  std::uint64_t offset = 0;           ///< DeviceFile: the mmap offset into its file (MappingDesc::offset)
};

class Platform {
 public:
  /// Builds the machine (see the header comment). `name` prefixes module and stats names.
  /// `registry` must hold every device type `desc` names. `trace` (optional, must outlive the
  /// platform) receives the timeline (see the header comment). Throws ConfigError.
  Platform(const std::string& name, const PlatformDesc& desc, const DeviceRegistry& registry,
           TraceSink* trace = nullptr);
  ~Platform();
  Platform(const Platform&) = delete;
  Platform& operator=(const Platform&) = delete;

  /// Adds CPU core `cpu` (a CpuDesc) running `program`, bound to the system bus. Before sc_start.
  CpuCore& startCpu(const std::string& cpu, CpuProgram program);
  /// A driver's uncached physical access from an SC_THREAD (MMIO: doorbells, registers; or DRAM)
  /// through the system bus: loosely timed, `delay` is the caller's local time offset and comes
  /// back advanced by the access. Returns false on an address error (nothing decodes there).
  bool driverAccess(bool write, Pa pa, std::uint8_t* data, std::uint64_t len, sc_core::sc_time& delay);

  /// Writes what the trace still holds back (each link direction's open occupancy run) to the
  /// sink: call before reading the sink after a run (the destructor does it too).
  void flushTrace();

  PhysMem& physMem() { return pm_; }
  Dram& dram() { return dram_; }
  Topology& topology() { return *topo_; }
  FabricFromTopology& fabric() { return fab_; }
  Iommu& iommu() { return iommu_; }
  DmaMapping& dma() { return dma_; }
  P2pdma& p2pdma() { return p2pdma_; }
  P2pDmaMapper& mapper() { return mapper_; }
  InvariantChecker& violations() { return violations_; }
  P2pChecker& checker() { return checker_; }
  ImporterDmaDirectory& directory() { return directory_; }
  InterruptControllerModule& interrupts() { return irq_; }
  ScBlocker& blocker() { return blocker_; }
  SystemAddressMap& addressMap() { return map_; }
  SystemBus& bus() { return bus_; }
  /// The IOMMU stage of host bridge `hb` (nullptr: IOMMU off).
  IommuTranslationStage* iommuStage(const std::string& hb);
  /// By name; an unknown name asserts (a test's or scenario's bug once the desc was checked).
  Mm& process(const std::string& name);
  /// Mapping `mapping` of process `process` (ProcessDesc::memory), or nullptr when either is unknown.
  const ProcessMapping* mapping(const std::string& process, const std::string& mapping) const;
  PciDev& pci(const std::string& endpoint);
  PlatformDevice& device(const std::string& name);
  template <class T>
  T& deviceAs(const std::string& name) {
    return dynamic_cast<T&>(device(name));
  }
  CpuCore& cpu(const std::string& name);
  /// The coherent device memory's pgmap of `endpoint` (nullptr: none, or raw memory).
  DevPagemap* coherentMemory(const std::string& endpoint);
  const PlatformDesc& desc() const { return desc_; }

 private:
  class CoherentOps;
  class DriverPort;
  struct DeviceMemory {
    std::string endpoint;
    std::unique_ptr<DevPagemap> pgmap;  // Coherent only
  };
  void wireInterrupts();
  /// Checker rule 7: a root complex refused a request (the router's observer); reported when the
  /// requester's importer was issuing a peer burst.
  void onRcRefusal(const RcRefusal& r);
  void wireTrace();
  void buildAddressMap();
  void placeDeviceMemory(const DeviceMemoryDesc& m);
  void createDevice(const DeviceDesc& d, const DeviceRegistry& registry);
  /// Step 9: maps ProcessDesc::memory of `p`; a mapping the mm refuses is a ConfigError.
  void mapProcessMemory(const ProcessDesc& p);

  std::string name_;
  PlatformDesc desc_;
  PhysMem pm_;
  std::unique_ptr<Topology> topo_;
  FabricFromTopology fab_;
  Dram dram_;
  Iommu iommu_;
  DmaMapping dma_;
  std::map<std::string, std::unique_ptr<IommuTranslationStage>> stages_;  // by host bridge
  std::vector<std::unique_ptr<MsiPassStage>> msiStages_;
  InterruptControllerModule irq_;
  HostMemoryRequesters hostMemoryRequesters_;  // noted by every MsiTarget (one DRAM)
  std::vector<std::unique_ptr<MsiTarget>> msiTargets_;
  P2pdma p2pdma_;
  P2pDmaMapper mapper_;
  InvariantChecker violations_;
  P2pChecker checker_;
  ImporterDmaDirectory directory_;
  Lockdep lockdep_;
  ScBlocker blocker_;
  SystemAddressMap map_;
  SystemBus bus_;
  std::unique_ptr<DriverPort> driverPort_;
  std::unique_ptr<CoherentOps> coherentOps_;
  std::vector<DeviceMemory> deviceMemory_;
  std::map<std::string, std::unique_ptr<Mm>> processes_;
  std::map<std::pair<std::string, std::string>, ProcessMapping> mappings_;  // by (process, mapping)
  std::vector<std::unique_ptr<PlatformDevice>> devices_;
  std::map<std::string, std::unique_ptr<CpuCore>> cores_;
  TraceSink* trace_;
  std::vector<std::unique_ptr<LinkOccupancyTrace>> linkTraces_;
};

}  // namespace hmmsim
