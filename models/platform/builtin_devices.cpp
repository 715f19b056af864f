// The built-in device types. See builtin_devices.h.
#include "models/platform/builtin_devices.h"

#include <systemc>

#include "models/cpu_mmu/mm.h"
#include "models/cpu_mmu/sequencer.h"
#include "models/devices/camera/camera_platform.h"
#include "models/devices/colour_engine/colour_engine_platform.h"
#include "models/devices/gpu/gpu_device.h"
#include "models/devices/nic/nic_device.h"
#include "models/devices/nvme/nvme_device.h"

namespace hmmsim {

DmirrorPlatformDevice::DmirrorPlatformDevice(const std::string& name, PhysMem& pm,
                                             const DmirrorDeviceParams& p)
    : PlatformDevice(name), dev_(std::make_unique<DmirrorDevice>(pm, p.id, p.type, p.dmirror)) {
  // The migrating thread copies (lib/test_hmm.c: copy_highpage on the CPU) before
  // migrate_vma_pages; outside an SC_THREAD (elaboration, teardown) nothing can wait.
  dev_->setCopyWait([](Mm* mm, std::uint64_t ps) {
    const sc_core::sc_process_handle h = sc_core::sc_get_current_process_handle();
    if (!sc_core::sc_is_running() || !h.valid() || h.proc_kind() != sc_core::SC_THREAD_PROC_) return;
    if (mm != nullptr) mm->blocker().current().mightSleep("dmirror: migration copy", LockSite::here());
    seqWait(sc_core::sc_time(static_cast<double>(ps), sc_core::SC_PS));
  });
}

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
