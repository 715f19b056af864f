#pragma once
// The NVMe controller as a platform device (type "nvme", models/devices/common/device_registry.h):
// the hardware half (nvme.h) on the endpoint's DMA engine and BAR0 target, BAR0's bytes placed in
// PhysMem at the address enumeration assigned, and the exporter side of the driver half
// (nvme_export.h: BAR0 as a special vma through the shared P2pExporter). Params: NvmeParams
// (barBase and barBytes are taken from the endpoint's BAR 0, which must be its largest memory
// BAR: the one the fabric gives a target). The CPU driver half (nvme_driver.h) runs in whatever
// CPU context the scenario gives it (a DriverHost).

#include <memory>

#include "models/devices/common/device_registry.h"
#include "models/devices/nvme/nvme.h"
#include "models/devices/nvme/nvme_export.h"

namespace hmmsim {

class PhysMem;

class NvmePlatformDevice final : public PlatformDevice {
 public:
  explicit NvmePlatformDevice(DeviceContext& ctx);
  NvmeController& controller() { return *ctrl_; }
  NvmeExport& exporter() { return *export_; }
  /// Its controller memory buffer's exporter.
  P2pExporter* p2pExporter() override { return &export_->exporter(); }
  /// The controller's device file (NvmeExport's fops): file offset o is BAR 0 byte o (registers,
  /// doorbells, CMB), mapped as a special vma (shared); beyond BAR 0 the mmap fails with Inval.
  std::shared_ptr<File> openDeviceFile() override;

 private:
  PhysMem& pm_;
  std::unique_ptr<NvmeController> ctrl_;
  std::unique_ptr<NvmeExport> export_;
};

/// Adds type "nvme".
void registerNvme(DeviceRegistry& r);

}  // namespace hmmsim
