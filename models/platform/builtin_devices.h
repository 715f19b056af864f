#pragma once
// The device types a platform can create by name. Each device folder provides one explicit
// registration function (models/devices/common/device_registry.h); builtinDevices() calls them
// all. A new device type adds its register call here.

#include "models/cpu_mmu/frame.h"
#include "models/devices/common/device_registry.h"
#include "models/devices/dmirror/dmirror.h"

namespace hmmsim {

/// "dmirror": the kernel's HMM test device (lib/test_hmm.c), not on PCIe.
struct DmirrorDeviceParams {
  /// Device number (the /dev/hmm_dmirror<id> minor). Default 0.
  unsigned id = 0;
  /// Its memory type: DevicePrivate (default) or DeviceCoherent.
  MemoryType type = MemoryType::DevicePrivate;
  /// The device's own parameters (device memory chunks, capacity); default DmirrorParams.
  DmirrorParams dmirror;
};

/// The platform's dmirror: owns the DmirrorDevice (dmirror() for tests and scenarios).
class DmirrorPlatformDevice final : public PlatformDevice {
 public:
  DmirrorPlatformDevice(const std::string& name, PhysMem& pm, const DmirrorDeviceParams& p);
  DmirrorDevice& dmirror() { return *dev_; }

 private:
  std::unique_ptr<DmirrorDevice> dev_;
};

void registerDmirror(DeviceRegistry& r);

/// Every built-in device type.
DeviceRegistry builtinDevices();

}  // namespace hmmsim
