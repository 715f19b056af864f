#pragma once
// Fixture of the GPU tests: the machine the platform builder (models/platform) makes from a
// PlatformDesc: hb0: rp0 -> sw0 -> {gpu0, gpu1}, rp1 -> gpu2; Gen4 x16, per-burst fidelity; DRAM
// behind the root complex with the IOMMU translating, the DMA layer, p2pdma, the RFC checker (rule
// 3 at the GPU's BAR through the ImporterDmaDirectory) and the sleeping mmap lock. gpu1 is the GPU
// (type "gpu": hardware half + driver); gpu0 is a peer importing through ImporterDma. One process.

#include <catch2/catch.hpp>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "models/cpu_mmu/memory.h"
#include "models/cpu_mmu/mm.h"
#include "models/devices/common/importer_dma.h"
#include "models/devices/gpu/gpu.h"
#include "models/devices/gpu/gpu_device.h"
#include "models/devices/gpu/gpu_driver.h"
#include "models/platform/builtin_devices.h"
#include "models/platform/platform.h"
#include "tests/unit/pcie/fabric_test_util.h"
#include "tests/unit/pcie/topology_fixtures.h"

namespace hmmsim::test {

inline constexpr std::uint64_t kGpuP = kPageSize;

/// A GPU small enough for unit tests: 1 GiB of VRAM, 4 channels of 128 Gb/s (64 GB/s).
inline GpuParams smallGpu() {
  GpuParams g;
  g.vramBytes = 1ull << 30;
  g.vramChannels = 4;
  g.vramChannelGbps = 128.0;
  return g;
}

inline GpuDriverParams smallGpuDriver() {
  GpuDriverParams d;
  d.chunkBytes = 64ull << 20;
  d.kernelRegionBytes = 256ull << 20;
  return d;
}

struct GpuPlatform {
  /// The machine: the platform builder's, gpu1 of type "gpu" with `gp` and `dp`, process "proc".
  static PlatformDesc desc(const GpuParams& gp, const GpuDriverParams& dp) {
    PlatformDesc d;
    d.ram.ramSize = 512ull << 20;
    d.topology = smallPlatform({"gpu0", "gpu1"});
    d.processes = {ProcessDesc{"proc", {}}};
    GpuDeviceParams g;
    g.gpu = gp;
    g.driver = dp;
    d.devices = {DeviceDesc{"gpu", "gpu1", "gpu1", g}};
    return d;
  }

  explicit GpuPlatform(const GpuParams& gp = smallGpu(), const GpuDriverParams& dp = smallGpuDriver())
      : GpuPlatform(desc(gp, dp)) {}
  /// The machine of `d` (desc() with changes, e.g. the IOMMU's).
  explicit GpuPlatform(const PlatformDesc& d)
      : plat("top", d, builtinDevices()),
        pm(plat.physMem()),
        violations(plat.violations()),
        checker(plat.checker()),
        directory(plat.directory()),
        dma(plat.dma()),
        fab(plat.fabric()),
        gpu(plat.deviceAs<GpuPlatformDevice>("gpu1").gpu()),
        driver(&plat.deviceAs<GpuPlatformDevice>("gpu1").driver()),
        mm(&plat.process("proc")) {}
  /// gpu0 importing [start, start + pages) through the one importer data path.
  ImporterDma& peerOver(Va start, std::uint64_t pages, const ImporterDmaParams& ip = {}) {
    HmmDmaImporter imp;
    imp.device = &pci("gpu0");
    imp.dma = &dma;
    peer = std::make_unique<ImporterDma>("gpu0.dma", *mm, imp, fab.engine("gpu0"), start, pages, ip, &checker,
                                         &directory);
    return *peer;
  }
  /// mmap `bytes` of VRAM from VRAM offset `offset` through the GPU's device file (a special vma).
  Va mapVram(std::uint64_t offset, std::uint64_t bytes) {
    if (!file) file = driver->open();
    const VaResult r = mm->mmap(Va(0), bytes, PROT_READ | PROT_WRITE, MAP_SHARED, file,
                                driver->params().vramMmapOffset + offset);
    REQUIRE(r.ok());
    return r.addr;
  }

  PciDev& pci(const std::string& n) { return plat.pci(n); }
  Va mapAnon(std::uint64_t len) {
    const VaResult r = mm->mmap(Va(0), len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    REQUIRE(r.ok());
    return r.addr;
  }
  static std::vector<std::uint8_t> pattern(std::uint64_t len, std::uint32_t tag) {
    std::vector<std::uint8_t> b(len);
    for (std::size_t i = 0; i + 4 <= len; i += 4) {
      const std::uint32_t v = tag * 0x10000 + static_cast<std::uint32_t>(i / 4);
      std::memcpy(&b[i], &v, 4);
    }
    return b;
  }
  void fill(Va a, std::uint64_t len, std::uint32_t tag) {
    const std::vector<std::uint8_t> b = pattern(len, tag);
    REQUIRE(copyToUser(*mm, a, b.data(), len) == Errno::Ok);
  }
  std::vector<std::uint8_t> cpu(Va a, std::uint64_t len) {
    std::vector<std::uint8_t> b(len);
    REQUIRE(copyFromUser(*mm, b.data(), a, len) == Errno::Ok);
    return b;
  }

  Platform plat;
  PhysMem& pm;
  InvariantChecker& violations;
  P2pChecker& checker;
  ImporterDmaDirectory& directory;
  DmaMapping& dma;
  FabricFromTopology& fab;
  Gpu& gpu;
  GpuDriver* driver;  ///< the platform device's driver half
  Mm* mm;             ///< the process
  std::shared_ptr<File> file;
  std::unique_ptr<ImporterDma> peer;  ///< destroyed before the platform
};

}  // namespace hmmsim::test
