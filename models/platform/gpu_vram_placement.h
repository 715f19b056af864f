#pragma once
// A GPU's VRAM as a placement target (placement.h): where VRAM lies in the GPU's device file and
// the rule of a workload region that is VRAM (gpu_stream_out's p2p results, gpu_monitor's p2p
// counter, gpu_reduce's peer_vram buffer): a device-file mapping of that GPU whose offset puts
// the region in the part of VRAM the workload uses. The scenario parser builds it from the
// device's params (GpuDeviceParams), the workload from the device the Platform made.

#include <cstdint>
#include <string>

#include "models/devices/gpu/gpu_device.h"
#include "models/platform/placement.h"

namespace hmmsim {

/// VRAM as the GPU's device file shows it.
struct GpuVramLayout {
  std::uint64_t fileOffset = 0;  ///< the file offset of VRAM offset 0 (GpuDriverParams::vramMmapOffset)
  std::uint64_t vramBytes = 0;
  std::uint64_t kernelRegionBytes = 0;  ///< driver-owned VRAM at the top
  std::uint64_t kernelRegionOffset() const { return vramBytes - kernelRegionBytes; }

  static GpuVramLayout of(const GpuParams& hw, const GpuDriverParams& driver) {
    return {driver.vramMmapOffset, hw.vramBytes, driver.kernelRegionBytes};
  }
  static GpuVramLayout of(const GpuDeviceParams& p) { return of(p.gpu, p.driver); }
  static GpuVramLayout of(GpuPlatformDevice& g) { return of(g.gpu().params(), g.driver().params()); }
};

/// Makes `rule` the rule of a region that is VRAM offsets [first, end) of GPU `gpu` with layout
/// `l` (`part` says what they are: "the GPU driver's kernel region"): a device-file mapping of
/// `gpu` from a file offset that puts the region there.
inline void setVramRule(PlacementRule& rule, const std::string& gpu, const GpuVramLayout& l,
                        std::uint64_t first, std::uint64_t end, const std::string& part) {
  rule.memory = PlacementRule::Memory::DeviceFile;
  rule.device = gpu;
  rule.fileFirst = l.fileOffset + first;
  rule.fileEnd = l.fileOffset + end;
  rule.fileWhat = part;
}

}  // namespace hmmsim
