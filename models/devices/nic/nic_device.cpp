#include "models/devices/nic/nic_device.h"

#include "models/pcie/memory_target.h"
#include "sim/assert.h"

namespace hmmsim {

NicPlatformDevice::NicPlatformDevice(DeviceContext& ctx) : PlatformDevice(ctx.name) {
  HMMSIM_ASSERT(ctx.engine && ctx.bar, "nic " << ctx.name << ": needs a PCIe endpoint with a BAR");
  NicParams p = ctx.paramsAs<NicParams>();
  p.barBase = ctx.bar->params().baseAddr;
  p.barBytes = ctx.bar->params().sizeBytes;
  const std::string err = Nic::validate(p);
  HMMSIM_ASSERT(err.empty(), "nic " << ctx.name << ": " << err);
  nic_ = std::make_unique<Nic>(ctx.moduleName.c_str(), p, *ctx.engine, *ctx.bar);
}

void registerNic(DeviceRegistry& r) {
  r.add<NicPlatformDevice>("nic",
                           "NIC: TX ring at line rate, monitoring reads, NVMe queue writer; wire recorded");
}

}  // namespace hmmsim
