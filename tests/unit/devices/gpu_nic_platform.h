#pragma once
// Fixture of the GPU + NIC workloads on the platform builder (RFC workloads [2] and [3]): hb0:
// rp0 -> sw0 -> {gpu1, nic}, rp1 -> gpu2 (unused); Gen4 x16, per-burst fidelity; the IOMMU off
// and ACS off, as the RFC requires for p2p under a switch ("needs IOMMU off with ACS disabled and
// for both device to be on same PCIE sub-tree"), so DMA addresses are physical and the NIC reaches
// the GPU's BAR at its bus address without the root complex. Devices by type name: "gpu" (gpu1,
// a small GPU: 1 GiB of VRAM, 4 x 128 Gb/s) and "nic". One process.

#include <catch2/catch.hpp>

#include <cstdint>
#include <memory>
#include <string>

#include "models/devices/common/importer_dma.h"
#include "models/devices/gpu/gpu_device.h"
#include "models/devices/nic/nic_device.h"
#include "models/platform/builtin_devices.h"
#include "models/platform/platform.h"
#include "tests/unit/devices/gpu_fixture.h"
#include "tests/unit/pcie/fabric_test_util.h"
#include "tests/unit/pcie/topology_fixtures.h"

namespace hmmsim::test {

/// The machine; device instance names are prefixed with `tag` ("<tag>_gpu1", "<tag>_nic") so that
/// several machines run in one simulation.
inline PlatformDesc gpuNicMachine(const std::string& tag, const GpuParams& gpu, const NicParams& nic = {}) {
  PlatformDesc d;
  d.ram.ramSize = 256ull << 20;
  d.topology = smallPlatform({"gpu1", "nic"});
  for (auto& e : d.topology.endpoints)
    if (e.name == "nic") e.functions[0].bars = {mem64pref(0, 1 * kMiB)};
  d.iommu.iommu.mode = IommuMode::Off;
  d.processes = {ProcessDesc{"proc0", {}}};
  GpuDeviceParams gp;
  gp.gpu = gpu;
  gp.driver = smallGpuDriver();
  d.devices = {DeviceDesc{"gpu", tag + "_gpu1", "gpu1", gp}, DeviceDesc{"nic", tag + "_nic", "nic", nic}};
  return d;
}

/// One machine of the workload: the platform, its GPU and NIC, the process.
struct GpuNicRun {
  GpuNicRun(const std::string& tag, const GpuParams& gpu, const NicParams& nic = {})
      : p(tag, gpuNicMachine(tag, gpu, nic), builtinDevices()),
        gpu(p.deviceAs<GpuPlatformDevice>(tag + "_gpu1")),
        nic(p.deviceAs<NicPlatformDevice>(tag + "_nic").nic()),
        mm(p.process("proc0")),
        tag_(tag) {}
  ~GpuNicRun() {
    nic.setMonitorImporter(nullptr);
    nic.setTxImporter(nullptr);
    importer.reset();  // before the process exits (the platform's teardown)
  }
  /// mmap `bytes` of VRAM from VRAM offset `offset` (page aligned) through the GPU's device file:
  /// the special vma (RFC 3/5).
  Va mapVram(std::uint64_t offset, std::uint64_t bytes) {
    if (!file) file = gpu.driver().open();
    const VaResult r = mm.mmap(Va(0), bytes, PROT_READ | PROT_WRITE, MAP_SHARED, file,
                               gpu.driver().params().vramMmapOffset + offset);
    REQUIRE(r.ok());
    return r.addr;
  }
  Va mapAnon(std::uint64_t bytes) {
    const VaResult r = mm.mmap(Va(0), bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    REQUIRE(r.ok());
    return r.addr;
  }
  /// The NIC's importer over [start, start + bytes) (the one importer data path), its
  /// translations prefetched by its driver (as an ODP NIC's ibv_advise_mr(PREFETCH)).
  ImporterDma& nicImporter(Va start, std::uint64_t bytes) {
    HmmDmaImporter imp;
    imp.device = &p.pci("nic");
    imp.dma = &p.dma();
    importer =
        std::make_unique<ImporterDma>(tag_ + "_nic.dma", mm, imp, p.fabric().engine("nic"), start,
                                      bytes >> kPageShift, ImporterDmaParams{}, &p.checker(), &p.directory());
    REQUIRE(importer->mirror().map(start, start + bytes, false) == HmmStatus::Ok);
    return *importer;
  }
  std::uint64_t dramBytes() {
    return p.dram().stats().counterValue("bytes_read") + p.dram().stats().counterValue("bytes_written");
  }
  std::uint64_t rootComplexP2p() {
    return p.fabric().rootComplex("hb0").stats().counterValue("p2p_transactions");
  }

  Platform p;
  GpuPlatformDevice& gpu;
  Nic& nic;
  Mm& mm;
  std::shared_ptr<File> file;
  std::unique_ptr<ImporterDma> importer;

 private:
  std::string tag_;
};

}  // namespace hmmsim::test
