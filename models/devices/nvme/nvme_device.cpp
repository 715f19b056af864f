#include "models/devices/nvme/nvme_device.h"

#include "models/cpu_mmu/phys_mem.h"
#include "models/pcie/memory_target.h"
#include "models/pcie/pci_dev.h"
#include "sim/assert.h"

namespace hmmsim {

NvmePlatformDevice::NvmePlatformDevice(DeviceContext& ctx) : PlatformDevice(ctx.name), pm_(ctx.physMem) {
  HMMSIM_ASSERT(ctx.pci && ctx.engine && ctx.bar,
                "nvme " << ctx.name << ": needs a PCIe endpoint with a BAR");
  const PciBar& b = ctx.pci->bar(0);
  HMMSIM_ASSERT(b.assigned && ctx.bar->params().baseAddr == b.bus.value(),
                "nvme " << ctx.name << ": BAR 0 must be the endpoint's (largest) memory BAR");
  NvmeParams p = ctx.paramsAs<NvmeParams>();
  p.barBase = b.bus.value();
  p.barBytes = b.size;
  const std::string err = NvmeController::validate(p);
  HMMSIM_ASSERT(err.empty(), "nvme " << ctx.name << ": " << err);
  const std::string exp = NvmeExport::check(*ctx.pci, b.size);
  HMMSIM_ASSERT(exp.empty(), "nvme " << ctx.name << ": " << exp);
  // BAR0's bytes (the CMB) are device frames at the BAR's CPU address: one byte store.
  const Errno e = ctx.physMem.addDeviceRangeAt(b.cpu, b.size >> kPageShift, nullptr, nullptr);
  HMMSIM_ASSERT(e == Errno::Ok, "nvme " << ctx.name << ": BAR 0 cannot be placed in PhysMem");
  ctx.bar->setBacking(&ctx.physMem, b.cpu.value(), b.size);
  ctrl_ = std::make_unique<NvmeController>(ctx.moduleName.c_str(), p, *ctx.engine, *ctx.bar, ctx.physMem,
                                           b.cpu.value());
  export_ =
      std::make_unique<NvmeExport>(ctx.name, *ctx.pci, b.cpu, b.size, ctx.physMem, ctx.mapper, &ctx.checker);
  export_->bindBarTarget(*ctx.bar);
  export_->exporter().setTrace(ctx.trace);
}

std::shared_ptr<File> NvmePlatformDevice::openDeviceFile() {
  return hmmsim::openDeviceFile(pm_, *export_, FMODE_READ | FMODE_WRITE, name());
}

void registerNvme(DeviceRegistry& r) {
  r.add<NvmePlatformDevice>(
      "nvme",
      "NVMe SSD: BAR0 registers, doorbells, MSI-X and CMB; media with real bytes; CMB exported as a "
      "special vma");
}

}  // namespace hmmsim
