// Platform start with a GPU (issue 12: "a 16 GiB-VRAM GPU platform starts in < 100 ms"; untouched
// device memory costs nothing). One platform = PhysMem (512 MiB RAM), the fabric tests' PCIe
// topology elaborated as SystemC modules, DRAM behind the root complex, the IOMMU/DMA layer,
// p2pdma and the checker, and a GPU (hardware half + driver: every VRAM frame registered,
// exporter on the BAR bound to the BAR target). Measured: wall time to build it, for 16 GiB and
// 1 GiB of VRAM and without a GPU, median of 5 builds each (unique module names; built before
// sc_start, never simulated). Also reported: the resident memory the 16 GiB build added.
// Usage: bench_gpu_start [rounds]

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <systemc>

#include "hmm/p2p_checker.h"
#include "hmm/p2p_dma.h"
#include "models/cpu_mmu/dram.h"
#include "models/cpu_mmu/phys_mem.h"
#include "models/devices/gpu/gpu.h"
#include "models/devices/gpu/gpu_driver.h"
#include "models/pcie/dma_mapping.h"
#include "models/pcie/fabric_from_topology.h"
#include "models/pcie/iommu.h"
#include "models/pcie/iommu_topology.h"
#include "models/pcie/p2pdma.h"
#include "models/pcie/routing.h"
#include "sim/assert.h"
#include "sim/checker.h"
#include "tests/unit/pcie/topology_fixtures.h"

using namespace hmmsim;

namespace {

struct Platform {
  Platform(const std::string& n, std::uint64_t vramBytes, bool withGpu)
      : pm(ram(), n + ".phys_mem"),
        topo(buildTopology(test::smallPlatform({"gpu0", "gpu1"}))),
        router(*topo, n + ".route"),
        iommu(n + ".iommu", IommuParams{}),
        dma(n + ".dma", iommu, DmaMappingParams{}),
        p2pdma(*topo, P2pdmaParams{}, Rng(1), n + ".p2pdma"),
        mapper(p2pdma, dma, n + ".p2p_dma"),
        checker(violations),
        fab(n + "_fab", *topo, fabricParams(gpuParams(vramBytes))),
        dram((n + "_dram").c_str(), DramParams{}, pm) {
    fab.rootComplex("hb0").memOut.bind(dram.tSocket);
    for (const char* d : {"gpu0", "gpu1"})
      HMMSIM_ASSERT(dma.attachDevice(pci(d), pciDmaDeviceParams(pci(d), *topo)) == Errno::Ok, "attach");
    if (!withGpu) return;
    gpu = std::make_unique<Gpu>((n + "_gpu1").c_str(), gpuParams(vramBytes), pm, fab.barMemory("gpu1"),
                                fab.engine("gpu1"));
    driver = std::make_unique<GpuDriver>(n + ".gpu1", *gpu, pci("gpu1"), mapper, &checker, GpuDriverParams{});
  }
  static PhysMemParams ram() {
    PhysMemParams p;
    p.ramSize = 512ull << 20;
    return p;
  }
  static GpuParams gpuParams(std::uint64_t vramBytes) {
    GpuParams g;
    g.vramBytes = vramBytes;
    return g;
  }
  static FabricFromTopologyParams fabricParams(const GpuParams& gp) {
    FabricFromTopologyParams f;
    f.externalHostMemory = true;
    f.barMemory = Gpu::barTargetParams(gp, 0);
    return f;
  }
  PciDev& pci(const std::string& d) { return *topo->findDev(d); }

  PhysMem pm;
  std::unique_ptr<Topology> topo;
  Router router;
  Iommu iommu;
  DmaMapping dma;
  P2pdma p2pdma;
  P2pDmaMapper mapper;
  InvariantChecker violations;
  P2pChecker checker;
  FabricFromTopology fab;
  Dram dram;
  std::unique_ptr<Gpu> gpu;
  std::unique_ptr<GpuDriver> driver;
};

long rssKiB() {
  std::ifstream f("/proc/self/status");
  std::string key;
  while (f >> key) {
    if (key == "VmRSS:") {
      long v = 0;
      f >> v;
      return v;
    }
    std::getline(f, key);
  }
  return 0;
}

double medianMs(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int sc_main(int argc, char* argv[]) {
  const int rounds = argc > 1 ? std::max(1, std::atoi(argv[1])) : 5;
  std::vector<std::unique_ptr<Platform>> keep;  // modules live until the end (SystemC names)
  auto build = [&](const std::string& tag, std::uint64_t vram, bool withGpu, long* rssDelta) {
    std::vector<double> ms;
    for (int r = 0; r < rounds; ++r) {
      const long before = rssKiB();
      const auto t0 = std::chrono::steady_clock::now();
      keep.push_back(std::make_unique<Platform>(tag + std::to_string(r), vram, withGpu));
      const auto t1 = std::chrono::steady_clock::now();
      ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
      if (rssDelta && r == 0) *rssDelta = rssKiB() - before;
      HMMSIM_ASSERT(keep.back()->pm.dataPages() == 0, "a fresh platform holds no data pages");
    }
    return medianMs(ms);
  };
  long rss16 = 0;
  const double bare = build("bare", 1ull << 30, false, nullptr);
  const double g1 = build("g1_", 1ull << 30, true, nullptr);
  const double g16 = build("g16_", 16ull << 30, true, &rss16);
  std::printf(
      "platform start (median of %d builds, wall ms): no GPU %.2f; GPU 1 GiB VRAM %.2f; "
      "GPU 16 GiB VRAM %.2f (target < 100 ms)\n",
      rounds, bare, g1, g16);
  std::printf(
      "ratios: 16 GiB / 1 GiB = %.2fx; 16 GiB / no GPU = %.2fx; resident memory added by the first "
      "16 GiB build: %ld KiB\n",
      g16 / g1, g16 / bare, rss16);
  return g16 < 100.0 ? 0 : 1;
}
