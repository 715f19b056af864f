#pragma once
// The NIC + NVMe platform of the platform-built NVMe-via-NIC tests (test_nic_nvme_platform.cpp,
// test_nic_queue_invalidation.cpp): both under one switch, IOMMU off, one process, and the
// workload they run (8 commands of 16 KiB, write then read back).

#include "models/platform/nvme_via_nic.h"
#include "models/platform/platform_desc.h"
#include "tests/unit/pcie/topology_fixtures.h"

namespace hmmsim::test {

/// The NIC and the NVMe controller under one switch (IOMMU off: DMA addresses are physical).
inline PlatformDesc nicNvmeDesc() {
  PlatformDesc d;
  d.ram.ramSize = 256ull << 20;
  d.topology = smallPlatform({"nic", "nvme"});
  for (auto& e : d.topology.endpoints) {
    if (e.name == "nvme") e.functions[0].bars = {mem64pref(0, 4 * kMiB)};
    if (e.name == "nic") e.functions[0].bars = {mem64pref(0, 1 * kMiB)};
  }
  d.iommu.iommu.mode = IommuMode::Off;
  d.processes = {ProcessDesc{"proc0", {}}};
  d.devices = {DeviceDesc{"nvme", "nvme", "nvme", {}}, DeviceDesc{"nic", "nic", "nic", {}}};
  return d;
}

/// Eight 16 KiB requests (four writes with PRP lists, then reads of the same blocks), one every
/// 150 us, on `path`.
inline NvmeViaNicParams nicNvmeWorkload(NvmeViaNicPath path) {
  NvmeViaNicParams w;
  w.nic = "nic";
  w.nvme = "nvme";
  w.process = "proc0";
  w.commands = 8;
  w.ioBytes = 16384;
  w.queueDepth = 32;
  w.intervalPs = 150'000'000;
  w.op = NvmeViaNicOp::WriteRead;
  w.path = path;
  return w;
}

}  // namespace hmmsim::test
