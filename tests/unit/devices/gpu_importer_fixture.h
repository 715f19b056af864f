#pragma once
// Fixture of the GPU-as-importer tests: the platform builder's machine hb0: rp0 -> sw0 -> {gpu0,
// gpu1}, rp1 -> gpu2 (Gen4 x16, per-burst; IOMMU translating, ACS off: p2p under the switch), with
// gpu0 and gpu1 both of type "gpu" (1 GiB of VRAM each, at their own VRAM addresses). gpu1 runs
// the kernels over a window of process "proc"; gpu0 is the peer whose VRAM they may read.

#include <catch2/catch.hpp>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "models/cpu_mmu/memory.h"
#include "models/cpu_mmu/mm.h"
#include "models/devices/gpu/gpu_device.h"
#include "models/devices/gpu/gpu_va_kernel.h"
#include "models/platform/builtin_devices.h"
#include "models/platform/platform.h"
#include "tests/unit/devices/gpu_fixture.h"
#include "tests/unit/pcie/fabric_test_util.h"
#include "tests/unit/pcie/topology_fixtures.h"

namespace hmmsim::test {

/// The window gpu1 binds: 64 MiB from the first VA the test maps.
inline constexpr std::uint64_t kGpuWindowBytes = 64ull << 20;

struct TwoGpus {
  /// `g1` are gpu1's params (the importer); gpu0 has the small GPU's defaults.
  static PlatformDesc desc(const GpuDeviceParams& g1) {
    PlatformDesc d;
    d.ram.ramSize = 512ull << 20;
    d.topology = smallPlatform({"gpu0", "gpu1"});
    d.processes = {ProcessDesc{"proc", {}}};
    d.devices = {DeviceDesc{"gpu", "gpu0", "gpu0", gpu0Params()}, DeviceDesc{"gpu", "gpu1", "gpu1", g1}};
    return d;
  }
  static GpuDeviceParams gpu0Params() {
    GpuDeviceParams g;
    g.gpu = smallGpu();
    g.driver = smallGpuDriver();
    return g;
  }
  /// gpu1: the small GPU at VRAM address 0x8'4000'0000.
  static GpuDeviceParams gpu1Params() {
    GpuDeviceParams g = gpu0Params();
    g.gpu.vramPa = Pa(0x8'4000'0000ull);
    return g;
  }

  explicit TwoGpus(const GpuDeviceParams& params1 = gpu1Params())
      : plat("top", desc(params1), builtinDevices()),
        g0(plat.deviceAs<GpuPlatformDevice>("gpu0")),
        g1(plat.deviceAs<GpuPlatformDevice>("gpu1")),
        mm(plat.process("proc")) {
    // Every buffer of a test comes from one reservation, so gpu1's window covers them all.
    const VaResult r = mm.mmap(Va(0), kGpuWindowBytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS);
    REQUIRE(r.ok());
    window = r.addr;
    REQUIRE(mm.munmap(window, kGpuWindowBytes) == Errno::Ok);
    REQUIRE(g1.driver().bindAddressSpace(mm, window, kGpuWindowBytes) == Errno::Ok);
  }
  ~TwoGpus() { g1.driver().releaseAddressSpace(); }

  /// `bytes` of anonymous memory at the next free place of the window.
  Va anon(std::uint64_t bytes) {
    const VaResult r =
        mm.mmap(next(bytes), bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED);
    REQUIRE(r.ok());
    return r.addr;
  }
  /// `bytes` of gpu0's VRAM from VRAM offset `offset`, mmapped (special vma) into the window.
  Va peerVram(std::uint64_t offset, std::uint64_t bytes) {
    if (!peerFile) peerFile = g0.driver().open();
    const VaResult r = mm.mmap(next(bytes), bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, peerFile,
                               g0.driver().params().vramMmapOffset + offset);
    REQUIRE(r.ok());
    return r.addr;
  }
  /// Little-endian 64-bit words i * mul + add, i = 0.. (a pattern whose sum is known).
  static std::vector<std::uint8_t> words(std::uint64_t bytes, std::uint64_t mul, std::uint64_t add) {
    std::vector<std::uint8_t> b(bytes);
    for (std::uint64_t i = 0; i * 8 < bytes; ++i) {
      const std::uint64_t w = i * mul + add;
      std::memcpy(&b[i * 8], &w, 8);
    }
    return b;
  }
  void fill(Va a, const std::vector<std::uint8_t>& b) {
    REQUIRE(copyToUser(mm, a, b.data(), b.size()) == Errno::Ok);
  }
  std::vector<std::uint8_t> cpu(Va a, std::uint64_t len) {
    std::vector<std::uint8_t> b(len);
    REQUIRE(copyFromUser(mm, b.data(), a, len) == Errno::Ok);
    return b;
  }
  /// The 64-bit word at gpu1's VRAM offset `off`.
  std::uint64_t vramWord(std::uint64_t off) {
    std::uint64_t v = 0;
    plat.physMem().read(g1.gpu().params().vramPa + off, &v, 8);
    return v;
  }
  /// The sum of the words of `b` (the reference of Sum64).
  static std::uint64_t sum(const std::vector<std::uint8_t>& b) {
    std::uint64_t s = 0;
    std::vector<std::uint8_t> none;
    gpuKernelApply(GpuKernelOp::Sum64, 0, b.data(), b.size(), none.data(), s);
    return s;
  }
  /// A Sum64 kernel over [in, in + bytes) into gpu1's kernel region.
  GpuVaKernel sumKernel(Va in, std::uint64_t bytes) {
    GpuVaKernel k;
    k.op = GpuKernelOp::Sum64;
    k.in = in;
    k.bytes = bytes;
    k.outVramOffset = g1.driver().kernelRegionOffset();
    return k;
  }
  std::uint64_t counter(StatsGroup& g, const char* name) { return g.counterValue(name); }

  Platform plat;
  GpuPlatformDevice& g0;
  GpuPlatformDevice& g1;
  Mm& mm;
  Va window;
  std::shared_ptr<File> peerFile;

 private:
  Va next(std::uint64_t bytes) {
    const Va a = window + used_;
    used_ += (bytes + kPageSize - 1) & ~(kPageSize - 1);
    REQUIRE(used_ <= kGpuWindowBytes);
    return a;
  }
  std::uint64_t used_ = 0;
};

}  // namespace hmmsim::test
