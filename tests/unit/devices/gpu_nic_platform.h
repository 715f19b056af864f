#pragma once
// Fixture of the GPU + NIC workloads on the platform builder (RFC workloads [2] and [3]): hb0:
// rp0 -> sw0 -> {gpu1, nic}, rp1 -> gpu2 (unused); Gen4 x16, per-burst fidelity; the IOMMU off
// and ACS off, as the RFC requires for p2p under a switch ("needs IOMMU off with ACS disabled and
// for both device to be on same PCIE sub-tree"), so DMA addresses are physical and the NIC reaches
// the GPU's BAR at its bus address without the root complex. Devices "gpu1" (type "gpu", a small
// GPU: 1 GiB of VRAM, 4 x 128 Gb/s) and "nic" (type "nic"). One process, "proc0".
// The workloads themselves are models/platform's GpuMonitor and GpuStreamOut.

#include <catch2/catch.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "models/devices/gpu/gpu_device.h"
#include "models/devices/nic/nic_device.h"
#include "models/platform/builtin_devices.h"
#include "models/platform/platform.h"
#include "models/platform/workload.h"
#include "tests/unit/devices/gpu_fixture.h"
#include "tests/unit/pcie/fabric_test_util.h"
#include "tests/unit/pcie/topology_fixtures.h"

namespace hmmsim::test {

/// The machine. Several run in one simulation when their Platforms have distinct names (the
/// devices' SystemC modules are "<platform>_gpu1", "<platform>_nic").
inline PlatformDesc gpuNicMachine(const GpuParams& gpu, const NicParams& nic = {}) {
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
  d.devices = {DeviceDesc{"gpu", "gpu1", "gpu1", gp}, DeviceDesc{"nic", "nic", "nic", nic}};
  return d;
}

/// DRAM bytes read and written.
inline std::uint64_t dramBytes(Platform& p) {
  return p.dram().stats().counterValue("bytes_read") + p.dram().stats().counterValue("bytes_written");
}
/// Peer transactions the root complex hb0 routed.
inline std::uint64_t rootComplexP2p(Platform& p) {
  return p.fabric().rootComplex("hb0").stats().counterValue("p2p_transactions");
}

/// Stat `name` as the workload's addStats registers it (-1 when absent).
inline double workloadStat(Platform& p, PlatformWorkload& w, const std::string& name) {
  StatsRegistry r;
  w.addStats(p, r);
  return r.value(name).value_or(-1);
}

/// What the workload's check() reports.
inline std::vector<std::string> workloadFailures(const PlatformWorkload& w) {
  std::vector<std::string> f;
  w.check("", f);
  return f;
}

}  // namespace hmmsim::test
