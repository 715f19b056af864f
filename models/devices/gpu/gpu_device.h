#pragma once
// The GPU as a platform device (type "gpu", models/devices/common/device_registry.h): the hardware
// half (gpu.h) on the endpoint's DMA engine and BAR target, re-timed as VRAM, and the driver half
// (gpu_driver.h: VRAM as HMM device-private memory, the special-vma mmap of VRAM, the exporter on
// the BAR, rule 3 at the BAR through the platform's ImporterDmaDirectory). Params:
// GpuDeviceParams (the BAR's size is taken from the endpoint's BAR `driver.bar`, which must be its
// largest memory BAR: the one the fabric gives a target; vramPa must be clear of RAM and of other
// device memory). A kernel's completion is an MSI to the platform's interrupt controller; the
// driver's handler runs on a CPU driver thread (kernelCompletion()).

#include <memory>

#include <systemc>

#include "models/devices/common/device_registry.h"
#include "models/devices/gpu/gpu.h"
#include "models/devices/gpu/gpu_driver.h"

namespace hmmsim {

/// The "gpu" device's params (DeviceDesc::params holds one; empty: the defaults).
struct GpuDeviceParams {
  /// The hardware half; barApertureBytes is overwritten with the endpoint's BAR size (unless
  /// resizableBar, which requires the BAR to be vramBytes). Default GpuParams.
  GpuParams gpu;
  /// The driver half. Default GpuDriverParams.
  GpuDriverParams driver;
  /// CPU time of the driver's kernel-completion interrupt handler (fence signal, wake-up).
  /// Unit: ps. Default 2 us.
  std::uint64_t irqCostPs = 2'000'000;
};

class GpuPlatformDevice final : public PlatformDevice {
 public:
  explicit GpuPlatformDevice(DeviceContext& ctx);
  ~GpuPlatformDevice() override;
  Gpu& gpu() { return *gpu_; }
  GpuDriver& driver() { return *driver_; }
  /// Its VRAM's exporter.
  P2pExporter* p2pExporter() override { return &driver_->exporter(); }
  /// The device MMU over the bound address-space window (nullptr before
  /// GpuDriver::bindAddressSpace): what a scenario script's `misbehave` switches.
  ImporterDma* importerDma() override { return driver_->importerDma(); }
  /// The driver's file (GpuDriver::open): an mmap at file offset vramMmapOffset + o maps VRAM
  /// from offset o as a special vma (shared); beyond VRAM the mmap fails with Inval.
  std::shared_ptr<File> openDeviceFile() override { return driver_->open(); }
  /// Gives back the bound window (its device MMU) before the processes exit.
  void beforeProcessExit() override { driver_->releaseAddressSpace(); }
  /// Notified when the driver's interrupt handler took a kernel's completion MSI (what a process
  /// waiting on the kernel's fence wakes on).
  const sc_core::sc_event& kernelCompletion() const { return kernelIrq_; }
  /// Kernel completions the handler took, and when it took the last one. Unit: ps.
  std::uint64_t kernelInterrupts() const { return kernelIrqs_; }
  std::uint64_t lastKernelInterruptPs() const { return lastIrqPs_; }

 private:
  std::unique_ptr<Gpu> gpu_;
  std::unique_ptr<GpuDriver> driver_;
  sc_core::sc_event kernelIrq_;
  std::uint64_t kernelIrqs_ = 0, lastIrqPs_ = 0;
};

/// Adds type "gpu".
void registerGpu(DeviceRegistry& r);

}  // namespace hmmsim
