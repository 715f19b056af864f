#pragma once
// What the GPU + NIC workloads (gpu_monitor.h, gpu_stream_out.h) share: the "gpu" and "nic"
// devices found by name, the process, the GPU's VRAM mapped through its device file (the special
// vma, RFC 3/5) or anonymous memory, and the NIC's importer over a process range (the one
// importer data path, its translations prefetched as an ODP NIC's ibv_advise_mr(PREFETCH)).
//
// Contract: built on a Platform before sc_start(); holds the device file and the importer, so it
// goes before the Platform. Failures are ConfigErrors of file "<workload>" naming the key.

#include <cstdint>
#include <memory>
#include <string>

#include "models/devices/common/importer_dma.h"
#include "models/devices/gpu/gpu_device.h"
#include "models/devices/nic/nic_device.h"
#include "models/platform/placement.h"
#include "models/platform/platform.h"
#include "sim/stats_registry.h"

namespace hmmsim {

class GpuNicParts {
 public:
  /// Finds device `gpu` (type "gpu"), `nic` (type "nic") and process `process` in `p`.
  GpuNicParts(Platform& p, const std::string& gpu, const std::string& nic, const std::string& process);
  ~GpuNicParts();
  GpuNicParts(const GpuNicParts&) = delete;
  GpuNicParts& operator=(const GpuNicParts&) = delete;

  /// `bytes` of VRAM from VRAM offset `offset` (page aligned), mapped shared through the GPU's
  /// device file.
  Va mapVram(std::uint64_t offset, std::uint64_t bytes);
  /// Region `r` of process memory, populated (zeroed through the CPU) as a runtime's pinned
  /// buffer: at the start of its mapping when `place` places it (placedRegion checks it), else
  /// `r.bytes` of anonymous memory of its own.
  Va processBuffer(const WorkloadPlacement& place, const PlaceableRegion& r);
  /// The NIC's importer over [start, start + bytes), every page mapped ahead (one per parts); its
  /// device faults map the NIC's fault-around block (NicParams::faultAroundPages).
  ImporterDma& importerOver(Va start, std::uint64_t bytes);
  /// Another importer of the NIC over [start, start + bytes) (one more memory region of the same
  /// PCI function, on its DMA engine), nothing mapped: its pages fault in on demand, as an ODP
  /// region's do. `name` names its stats group; its device faults map the NIC's fault-around
  /// block (importerParams()). The caller keeps it and destroys it before the parts.
  std::unique_ptr<ImporterDma> newImporter(const std::string& name, Va start, std::uint64_t bytes);
  /// The parameters of the NIC's importers: ImporterDmaParams with the NIC's fault-around block
  /// (NicParams::faultAroundPages).
  ImporterDmaParams importerParams() const;

  // Handles to the platform's parts (const: the parts do not own them).
  Platform& platform() const { return p_; }
  GpuPlatformDevice& gpu() const { return *gpu_; }
  Nic& nic() const { return nic_->nic(); }
  Mm& mm() const { return *mm_; }
  /// The importer (null before importerOver()).
  ImporterDma* importer() const { return importer_.get(); }
  /// The NIC's topology endpoint.
  const std::string& nicEndpoint() const { return nicEndpoint_; }
  /// The devices' stats into `r`: "device.<gpu>", "device.<gpu>.bar" (the BAR target's bytes),
  /// "device.<gpu>.bar_manager" (its windows: maps, refusals by reason, reclaims, revokes),
  /// "device.<nic>" and, once made, "device.<nic>.importer" (the GPU + NIC workloads' addStats).
  void addStats(StatsRegistry& r) const;

 private:
  Platform& p_;
  GpuPlatformDevice* gpu_ = nullptr;
  NicPlatformDevice* nic_ = nullptr;
  Mm* mm_ = nullptr;
  std::string gpuName_, nicName_, nicEndpoint_;
  std::shared_ptr<File> file_;
  std::unique_ptr<ImporterDma> importer_;
};

}  // namespace hmmsim
