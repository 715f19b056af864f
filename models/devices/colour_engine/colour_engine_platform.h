#pragma once
// The colour-correction engine as a platform device (models/devices/common/device_registry.h):
// type "colour_engine". The factory builds the hardware half on the endpoint's DMA engine and BAR
// target (its device memory at the BAR's physical address, exported by the driver through a
// special vma) and the driver half, and programs an MSI vector: each job's completion runs the
// driver's handler on a CPU driver thread (then the callback the user set). The process binds its
// address-space window and submits frames through driver().

#include <cstdint>
#include <functional>
#include <memory>

#include "models/devices/colour_engine/colour_engine.h"
#include "models/devices/colour_engine/colour_engine_driver.h"
#include "models/devices/common/device_registry.h"

namespace hmmsim {

/// Parameters of a "colour_engine" platform device.
struct ColourEngineDeviceParams {
  /// The hardware half. Defaults: ColourEngineParams (300 Mpx/s, 64 MiB device memory).
  ColourEngineParams engine;
  /// The driver half; `driver.exporter.bar` is the BAR holding the device memory (default 2).
  ColourEngineDriverParams driver;
  /// CPU time of the driver's job-done interrupt handler. Unit: ps. Default 2 us.
  std::uint64_t irqCostPs = 2'000'000;
};

class ColourEnginePlatformDevice final : public PlatformDevice {
 public:
  explicit ColourEnginePlatformDevice(DeviceContext& ctx);
  ~ColourEnginePlatformDevice() override;
  ColourEngine& hardware() { return *hw_; }
  ColourEngineDriver& driver() { return *driver_; }
  /// Runs in the interrupt handler (a CPU driver thread) for each finished job, in order.
  void onJob(std::function<void(const ColourCompletion&)> fn) { onJob_ = std::move(fn); }
  std::uint64_t interrupts() const { return handled_; }
  /// Gives back the bound address-space window (its importer) before the processes exit; the
  /// export stays until the device goes (the process's special vmas close at its exit).
  void beforeProcessExit() override { driver_->releaseAddressSpace(); }
  /// Its device memory's exporter.
  P2pExporter* p2pExporter() override { return &driver_->exporter(); }
  /// The bound address-space window's importer (nullptr before bindAddressSpace).
  ImporterDma* importerDma() override { return driver_->importerDma(); }
  /// The driver's file: its mmap maps the device memory (a special vma, shared).
  std::shared_ptr<File> openDeviceFile() override { return driver_->openFile(); }

 private:
  std::unique_ptr<ColourEngine> hw_;
  std::unique_ptr<ColourEngineDriver> driver_;
  std::function<void(const ColourCompletion&)> onJob_;
  std::uint64_t handled_ = 0;
};

/// Adds type "colour_engine" (params: ColourEngineDeviceParams) to `r`.
void registerColourEngine(DeviceRegistry& r);

}  // namespace hmmsim
