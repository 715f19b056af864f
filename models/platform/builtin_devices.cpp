// The built-in device types. See builtin_devices.h.
#include "models/platform/builtin_devices.h"

#include "models/devices/camera/camera_platform.h"
#include "models/devices/colour_engine/colour_engine_platform.h"
#include "models/devices/gpu/gpu_device.h"
#include "models/devices/nic/nic_device.h"
#include "models/devices/nvme/nvme_device.h"

namespace hmmsim {

DmirrorPlatformDevice::DmirrorPlatformDevice(const std::string& name, PhysMem& pm,
                                             const DmirrorDeviceParams& p)
    : PlatformDevice(name), dev_(std::make_unique<DmirrorDevice>(pm, p.id, p.type, p.dmirror)) {}

void registerDmirror(DeviceRegistry& r) {
  r.add("dmirror", "the kernel's HMM test device (lib/test_hmm.c): device memory, mirror, migrate",
        [](DeviceContext& ctx) -> std::unique_ptr<PlatformDevice> {
          return std::make_unique<DmirrorPlatformDevice>(ctx.name, ctx.physMem,
                                                         ctx.paramsAs<DmirrorDeviceParams>());
        });
}

DeviceRegistry builtinDevices() {
  DeviceRegistry r;
  registerCamera(r);
  registerColourEngine(r);
  registerDmirror(r);
  registerGpu(r);
  registerNic(r);
  registerNvme(r);
  return r;
}

}  // namespace hmmsim
