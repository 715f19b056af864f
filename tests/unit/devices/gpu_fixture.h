#pragma once
// Fixture of the GPU tests: the fabric tests' platform (hb0: rp0 -> sw0 -> {gpu0, gpu1}, rp1 ->
// gpu2; Gen4 x16, per-burst fidelity), DRAM (cpu_mmu Dram over PhysMem) behind the root complex
// with the IOMMU's translation stage, the DMA layer, p2pdma, the RFC checker (rule 3 at the GPU's
// BAR through an ImporterDmaDirectory) and an ScBlocker for the mm. gpu1 is the GPU (hardware
// half + driver); gpu0 is a peer importing through ImporterDma. One process address space.

#include <catch2/catch.hpp>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "hmm/p2p_checker.h"
#include "hmm/p2p_dma.h"
#include "models/cpu_mmu/dram.h"
#include "models/cpu_mmu/memory.h"
#include "models/cpu_mmu/mm.h"
#include "models/cpu_mmu/phys_mem.h"
#include "models/cpu_mmu/sc_blocker.h"
#include "models/devices/common/importer_dma.h"
#include "models/devices/gpu/gpu.h"
#include "models/devices/gpu/gpu_driver.h"
#include "models/pcie/dma_mapping.h"
#include "models/pcie/fabric_from_topology.h"
#include "models/pcie/iommu.h"
#include "models/pcie/iommu_topology.h"
#include "models/pcie/iommu_translation_stage.h"
#include "models/pcie/p2pdma.h"
#include "models/pcie/root_complex_module.h"
#include "models/pcie/routing.h"
#include "sim/checker.h"
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
  static PhysMemParams ram() {
    PhysMemParams p;
    p.ramSize = 512ull << 20;
    return p;
  }
  static FabricFromTopologyParams fabricParams(const GpuParams& gp) {
    FabricFromTopologyParams f;
    f.externalHostMemory = true;
    f.dma.fidelity = PcieFidelity::PerBurst;
    f.barMemory = Gpu::barTargetParams(gp, 0);  // every endpoint's BAR: gpu1's is the GPU's VRAM
    return f;
  }
  static IommuParams iommuParams() {
    IommuParams p;
    p.mode = IommuMode::Translate;
    return p;
  }

  explicit GpuPlatform(const GpuParams& gp = smallGpu(), const GpuDriverParams& dp = smallGpuDriver())
      : pm(ram()),
        topo(buildTopology(smallPlatform({"gpu0", "gpu1"}))),
        router(*topo, "top.route"),
        iommu("top.iommu", iommuParams()),
        dma("top.dma", iommu, DmaMappingParams{}),
        stage("top.rc.iommu", iommu, &dma),
        p2pdma(*topo, P2pdmaParams{}, Rng(1), "top.p2pdma"),
        mapper(p2pdma, dma, "top.p2p_dma"),
        checker(violations, [] { return sc_core::sc_time_stamp().value(); }),
        directory(checker),
        fab("fab", *topo, fabricParams(gp)),
        dram("dram", DramParams{}, pm),
        gpu("gpu1", gp, pm, fab.barMemory("gpu1"), fab.engine("gpu1")) {
    fab.router().setRcAddressResolver(iommuRcAddressResolver(iommu, *topo));
    fab.rootComplex("hb0").setTranslationStage(&stage);
    fab.rootComplex("hb0").memOut.bind(dram.tSocket);
    iommu.setChecker(&violations);
    for (const char* n : {"gpu0", "gpu1"})
      REQUIRE(dma.attachDevice(pci(n), pciDmaDeviceParams(pci(n), *topo)) == Errno::Ok);
    REQUIRE(GpuDriver::check(gpu, pci("gpu1"), dp).empty());
    driver = std::make_unique<GpuDriver>("gpu1", gpu, pci("gpu1"), mapper, &checker, dp);
    directory.watchBar(fab.barMemory("gpu1"), [this](Pfn p) { return driver->devPageOf(p); });
    mm = std::make_unique<Mm>(pm, "proc");
    blocker.setLockdep(lockdep);
    lockdep.setChecker(&violations);
    mm->notifierSubscriptions().setBlocker(blocker);
  }
  ~GpuPlatform() {
    peer.reset();
    file.reset();
    mm->notifierSubscriptions().setBlocker(singleThreadBlocker());
    mm.reset();
    driver.reset();
  }
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

  PciDev& pci(const std::string& n) { return *topo->findDev(n); }
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

  PhysMem pm;
  std::unique_ptr<Topology> topo;
  Router router;
  Iommu iommu;
  DmaMapping dma;
  IommuTranslationStage stage;
  P2pdma p2pdma;
  P2pDmaMapper mapper;
  InvariantChecker violations;
  P2pChecker checker;
  ImporterDmaDirectory directory;
  FabricFromTopology fab;
  Dram dram;
  Gpu gpu;
  std::unique_ptr<GpuDriver> driver;
  std::unique_ptr<Mm> mm;
  Lockdep lockdep;
  ScBlocker blocker;
  std::shared_ptr<File> file;
  std::unique_ptr<ImporterDma> peer;
};

}  // namespace hmmsim::test
