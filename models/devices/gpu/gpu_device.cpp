// The GPU as a platform device. See gpu_device.h.
#include "models/devices/gpu/gpu_device.h"

#include "models/devices/common/importer_dma.h"
#include "models/pcie/memory_target.h"
#include "models/pcie/pci_dev.h"
#include "sim/assert.h"
#include "sim/config.h"

namespace hmmsim {

GpuPlatformDevice::GpuPlatformDevice(DeviceContext& ctx) : PlatformDevice(ctx.name) {
  HMMSIM_ASSERT(ctx.pci && ctx.engine && ctx.bar, "gpu " << ctx.name << ": needs a PCIe endpoint with a BAR");
  GpuDeviceParams p = ctx.paramsAs<GpuDeviceParams>();
  const PciBar& b = ctx.pci->bar(p.driver.bar);
  HMMSIM_ASSERT(
      b.assigned && ctx.bar->params().baseAddr == b.bus.value(),
      "gpu " << ctx.name << ": BAR " << p.driver.bar << " must be the endpoint's (largest) memory BAR");
  if (!p.gpu.resizableBar) p.gpu.barApertureBytes = b.size;
  const std::string err = p.gpu.check();
  HMMSIM_ASSERT(err.empty(), "gpu " << ctx.name << ": " << err);
  gpu_ = std::make_unique<Gpu>(ctx.moduleName.c_str(), p.gpu, ctx.physMem, *ctx.bar, *ctx.engine);
  const std::string derr = GpuDriver::check(*gpu_, *ctx.pci, p.driver);
  if (!derr.empty()) throw ConfigError("<platform>", 0, 0, "devices." + ctx.name, derr);
  driver_ = std::make_unique<GpuDriver>(ctx.name, *gpu_, *ctx.pci, ctx.mapper, &ctx.checker, p.driver,
                                        &ctx.directory);
  driver_->exporter().setTrace(ctx.trace);
  GpuDriver* d = driver_.get();
  ctx.directory.watchBar(
      *ctx.bar, [d](Pfn pfn) { return d->devPageOf(pfn); },
      [d](Mm& mm, Va va) { return d->exporter().specialDevPage(mm, va); });
  if (ctx.irq) {
    gpu_->setKernelMsi(ctx.irq->allocateVector(ctx.name + ".kernel", p.irqCostPs, [this](IrqContext& c) {
      ++kernelIrqs_;
      lastIrqPs_ = c.nowPs();
      kernelIrq_.notify(sc_core::SC_ZERO_TIME);
    }));
  }
}

GpuPlatformDevice::~GpuPlatformDevice() {
  driver_.reset();  // before the hardware half it drives
}

void registerGpu(DeviceRegistry& r) {
  r.add<GpuPlatformDevice>(
      "gpu",
      "GPU: VRAM (device memory in PhysMem) with its own bandwidth behind a BAR aperture managed by the "
      "exporter, HMM device-private memory, special-vma mmap of VRAM, a compute engine streaming VRAM or, as "
      "an importer, process memory");
}

}  // namespace hmmsim
