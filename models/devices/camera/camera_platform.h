#pragma once
// The camera as a platform device (models/devices/common/device_registry.h): type "camera".
// The factory builds the hardware half on the endpoint's DMA engine and the driver half, asks
// the platform's interrupt controller for an MSI vector and programs it: each frame's completion
// is a posted MSI write behind the frame's data, and the driver's handler runs on a CPU driver
// thread after the interrupt entry latency and `irqCostPs` (then the completion callback the user
// set runs there). Buffers and capture are the user's (driver()).

#include <cstdint>
#include <functional>
#include <memory>

#include "models/devices/camera/camera.h"
#include "models/devices/camera/camera_driver.h"
#include "models/devices/common/device_registry.h"

namespace hmmsim {

/// Parameters of a "camera" platform device.
struct CameraDeviceParams {
  /// The hardware half. Defaults: CameraParams (1080p60 RGB888).
  CameraParams camera;
  /// The driver half. Defaults: CameraDriverParams.
  CameraDriverParams driver;
  /// CPU time of the driver's frame interrupt handler (vb2_buffer_done and wake-up). Unit: ps.
  /// Default 2 us.
  std::uint64_t irqCostPs = 2'000'000;
};

class CameraPlatformDevice final : public PlatformDevice {
 public:
  explicit CameraPlatformDevice(DeviceContext& ctx);
  ~CameraPlatformDevice() override;
  Camera& hardware() { return *hw_; }
  CameraDriver& driver() { return *driver_; }
  /// Runs in the interrupt handler (a CPU driver thread) for each completed frame, in order.
  void onFrame(std::function<void(const CameraCompletion&)> fn) { onFrame_ = std::move(fn); }
  /// Frames whose interrupt the handler took.
  std::uint64_t interrupts() const { return handled_; }
  /// Gives back the user buffers (their importer) before the processes exit.
  void beforeProcessExit() override { driver_->releaseBuffers(); }
  /// The user buffers' importer (nullptr before setUserBuffers).
  ImporterDma* importerDma() override { return driver_->importerDma(); }

 private:
  std::unique_ptr<Camera> hw_;
  std::unique_ptr<CameraDriver> driver_;
  std::function<void(const CameraCompletion&)> onFrame_;
  std::uint64_t handled_ = 0;
};

/// Adds type "camera" (params: CameraDeviceParams) to `r`.
void registerCamera(DeviceRegistry& r);

}  // namespace hmmsim
