#include "models/devices/colour_engine/colour_engine_platform.h"

#include "models/cpu_mmu/phys_mem.h"
#include "models/devices/common/msi.h"
#include "models/pcie/pci_dev.h"
#include "sim/assert.h"

namespace hmmsim {

ColourEnginePlatformDevice::ColourEnginePlatformDevice(DeviceContext& ctx) : PlatformDevice(ctx.name) {
  HMMSIM_ASSERT(ctx.engine && ctx.pci && ctx.bar,
                "colour engine " << ctx.name << " needs a PCIe endpoint with a BAR");
  const ColourEngineDeviceParams p = ctx.paramsAs<ColourEngineDeviceParams>();
  const Pa barPa = ctx.pci->bar(p.driver.exporter.bar).cpu;
  hw_ = std::make_unique<ColourEngine>(ctx.moduleName.c_str(), p.engine, *ctx.engine, ctx.bar, ctx.physMem,
                                       barPa.value());
  driver_ = std::make_unique<ColourEngineDriver>(ctx.name, *hw_, ctx.physMem, *ctx.pci, barPa, ctx.dma,
                                                 ctx.mapper, p.driver, &ctx.checker, &ctx.directory);
  driver_->exporter().setTrace(ctx.trace);
  if (ctx.irq) {
    const MsiMessage m = ctx.irq->allocateVector(ctx.name + ".job", p.irqCostPs, [this](IrqContext&) {
      HMMSIM_ASSERT(handled_ < hw_->completions().size(), name() << ": an interrupt without a job");
      const ColourCompletion c = hw_->completions()[handled_++];
      if (onJob_) onJob_(c);
    });
    hw_->setMsi(m.address, m.data);
  }
}

ColourEnginePlatformDevice::~ColourEnginePlatformDevice() = default;

void registerColourEngine(DeviceRegistry& r) {
  r.add<ColourEnginePlatformDevice>(
      "colour_engine",
      "a colour-correction engine (3x3 matrix + LUTs) exporting its input memory "
      "(models/devices/colour_engine)");
}

}  // namespace hmmsim
