#include "models/devices/camera/camera_platform.h"

#include "models/devices/common/msi.h"
#include "models/pcie/pci_dev.h"
#include "sim/assert.h"

namespace hmmsim {

CameraPlatformDevice::CameraPlatformDevice(DeviceContext& ctx) : PlatformDevice(ctx.name) {
  HMMSIM_ASSERT(ctx.engine && ctx.pci, "camera " << ctx.name << " must be a PCIe endpoint");
  const CameraDeviceParams p = ctx.paramsAs<CameraDeviceParams>();
  hw_ = std::make_unique<Camera>(ctx.moduleName.c_str(), p.camera, *ctx.engine);
  driver_ = std::make_unique<CameraDriver>(ctx.name, *hw_, *ctx.pci, &ctx.dma, p.driver, &ctx.checker,
                                           &ctx.directory);
  if (ctx.irq) {
    const MsiMessage m = ctx.irq->allocateVector(ctx.name + ".frame", p.irqCostPs, [this](IrqContext&) {
      // One message per frame, in order: this interrupt is for the next completion not yet handled.
      HMMSIM_ASSERT(handled_ < hw_->completions().size(), name() << ": an interrupt without a frame");
      const CameraCompletion c = hw_->completions()[handled_++];
      if (onFrame_) onFrame_(c);
    });
    driver_->setMsi(m.address, m.data);
  }
}

CameraPlatformDevice::~CameraPlatformDevice() = default;

void registerCamera(DeviceRegistry& r) {
  r.add<CameraPlatformDevice>(
      "camera", "an image sensor streaming frames by DMA into process buffers (models/devices/camera)");
}

}  // namespace hmmsim
