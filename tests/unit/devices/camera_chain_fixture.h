#pragma once
// The platform of the camera and colour-engine tests and of bench_camera_chain, wired by hand
// (as tests/unit/platform/test_platform_seam.cpp; to be built by models/platform once it lands):
//
//   hb0 (IOMMU: IommuTranslationStage on the root complex when it translates; DRAM behind it)
//    ├─ rp0 ── sw0 ├─ dp0 ── cam0      (camera, Gen3 x4)
//    │             └─ dp1 ── colour0   (colour engine, Gen4 x8, BAR2 = its device memory)
//    └─ rp1 ── cam1                    (camera, Gen3 x4: its peer traffic crosses the root complex)
//
// One PhysMem holds RAM and the colour engine's device memory (at its BAR address); the fabric is
// FabricFromTopology over the same Topology the DMA layer, p2pdma and the routes use; one process
// (Mm) whose blocker is the ScBlocker (device threads and CPU threads sleep on its locks).

// CHAIN_REQUIRE: REQUIRE in tests; a benchmark defines it (e.g. to abort) before including this.
#ifndef CHAIN_REQUIRE
#include <catch2/catch.hpp>
#define CHAIN_REQUIRE(x) REQUIRE(x)
#endif

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <systemc>
#include <tlm>

#include <tlm_utils/tlm_quantumkeeper.h>

#include "hmm/p2p_checker.h"
#include "hmm/p2p_dma.h"
#include "models/cpu_mmu/dram.h"
#include "models/cpu_mmu/memory.h"
#include "models/cpu_mmu/mm.h"
#include "models/cpu_mmu/phys_mem.h"
#include "models/cpu_mmu/sc_blocker.h"
#include "models/devices/camera/camera.h"
#include "models/devices/camera/camera_driver.h"
#include "models/devices/colour_engine/colour_engine.h"
#include "models/devices/colour_engine/colour_engine_driver.h"
#include "models/pcie/dma_mapping.h"
#include "models/pcie/fabric_from_topology.h"
#include "models/pcie/iommu.h"
#include "models/pcie/iommu_topology.h"
#include "models/pcie/iommu_translation_stage.h"
#include "models/pcie/p2pdma.h"
#include "models/pcie/topology_desc.h"
#include "tests/unit/pcie/topology_fixtures.h"

namespace hmmsim::test {

struct ChainPlatformParams {
  IommuMode iommu = IommuMode::Translate;                        ///< the IOMMU's mode
  CameraParams camera;                                           ///< both cameras
  ImporterDmaParams cameraDma = CameraDriverParams{}.dma;        ///< both cameras' importer data paths
  ColourEngineParams colour;                                     ///< the colour engine
  ImporterDmaParams colourDma = ColourEngineDriverParams{}.dma;  ///< the colour engine's importer
  bool colourPrefault = true;  ///< the colour engine maps a VA buffer when a job first uses it
  PcieFidelity fidelity = PcieFidelity::PerBurst;
  std::uint64_t ramBytes = 1ull << 30;
  bool storeData = true;     ///< DRAM keeps bytes (false: timing-only runs)
  std::string name = "top";  ///< prefix of module and stats names (two platforms in one run)
  /// The process's buffers come from one anonymous arena of this size (the colour engine's
  /// bound address-space window).
  std::uint64_t arenaBytes = 64ull << 20;
  /// The importers' mirrors link their windows into one IOVA range (ImporterMirrorParams::iovaLink,
  /// the platform's default); false: dma_map_page per page.
  bool iovaLink = ImporterMirrorParams{}.iovaLink;
};

inline TopologyDesc chainTopology(std::uint64_t colourMemBytes) {
  TopologyDesc d;
  HostBridgeDesc hb = hostBridge("hb0", 0, 0xc0000000ull, 0x4000000000ull);
  hb.rootPorts = {port("rp0", 1), port("rp1", 2)};
  d.hostBridges = {hb};
  d.switches = {switchOf("sw0", 2)};
  d.endpoints = {endpoint("cam0", {mem64pref(0, 1 * kMiB)}), endpoint("cam1", {mem64pref(0, 1 * kMiB)}),
                 endpoint("colour0", {mem32(0, 16 * 1024), mem64pref(2, colourMemBytes)})};
  d.links = {link("rp0", "sw0"), link("sw0.dp0", "cam0", 3, 4), link("sw0.dp1", "colour0", 4, 8),
             link("rp1", "cam1", 3, 4)};
  return d;
}

struct ChainPlatform {
  explicit ChainPlatform(const ChainPlatformParams& p = {})
      : params(p),
        pm(ram(p.ramBytes)),
        topo(buildTopology(chainTopology(p.colour.deviceMemoryBytes))),
        iommu(p.name + ".iommu", iommuParams(p.iommu)),
        dma(p.name + ".dma", iommu, DmaMappingParams{}),
        p2pdma(*topo, P2pdmaParams{}, Rng(1), p.name + ".p2pdma"),
        mapper(p2pdma, dma, p.name + ".p2p_dma"),
        fab(p.name, *topo, fabricParams(p)),
        dram((p.name + "_dram").c_str(), dramParams(p), pm),
        stage(p.name + ".hb0.iommu", iommu, &dma),
        checker(violations, [] { return sc_core::sc_time_stamp().value(); }),
        directory(checker) {
    CHAIN_REQUIRE(attachPciEndpoints(dma, *topo) == Errno::Ok);
    iommu.setChecker(&violations);
    fab.router().setRcAddressResolver(iommuRcAddressResolver(iommu, *topo));
    fab.rootComplex("hb0").memOut.bind(dram.tSocket);
    if (p.iommu == IommuMode::Translate) fab.rootComplex("hb0").setTranslationStage(&stage);
    mm = std::make_unique<Mm>(pm, p.name + ".proc0.mm");
    mm->notifierSubscriptions().setBlocker(scBlocker());
    const VaResult a = mm->mmap(Va(0), p.arenaBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    CHAIN_REQUIRE(a.ok());
    arena = a.addr;
    CameraDriverParams cdp;
    cdp.dma = p.cameraDma;
    cdp.dma.timingOnly = !p.storeData;
    cdp.dma.mirror.iovaLink = p.iovaLink;
    for (const char* c : {"cam0", "cam1"}) {
      cams.push_back(std::make_unique<Camera>((p.name + "_" + c).c_str(), p.camera, fab.engine(c)));
      camDrivers.push_back(std::make_unique<CameraDriver>(cams.back()->name(), *cams.back(), pci(c), &dma,
                                                          cdp, &checker, &directory));
    }
    const Pa barPa = pci("colour0").bar(2).cpu;
    colour = std::make_unique<ColourEngine>((p.name + "_colour0").c_str(), p.colour, fab.engine("colour0"),
                                            &fab.barMemory("colour0"), pm, barPa.value());
    ColourEngineDriverParams edp;
    edp.dma = p.colourDma;
    edp.prefault = p.colourPrefault;
    edp.dma.timingOnly = !p.storeData;
    edp.dma.mirror.iovaLink = p.iovaLink;
    colourDriver = std::make_unique<ColourEngineDriver>(colour->name(), *colour, pm, pci("colour0"), barPa,
                                                        dma, mapper, edp, &checker, &directory);
    CHAIN_REQUIRE(colourDriver->bindAddressSpace(*mm, arena, p.arenaBytes) == Errno::Ok);
  }
  ~ChainPlatform() {
    camDrivers.clear();  // the importers go before the exporter's mappings
    for (const auto& m : special) CHAIN_REQUIRE(mm->munmap(m.first, m.second) == Errno::Ok);
    files.clear();  // release() reaches the driver
    colourDriver.reset();
    mm->notifierSubscriptions().setBlocker(singleThreadBlocker());
    mm.reset();
  }

  static PhysMemParams ram(std::uint64_t bytes) {
    PhysMemParams r;
    r.ramSize = bytes;
    return r;
  }
  static IommuParams iommuParams(IommuMode m) {
    IommuParams i;
    i.mode = m;
    return i;
  }
  static FabricFromTopologyParams fabricParams(const ChainPlatformParams& p) {
    FabricFromTopologyParams f;
    f.externalHostMemory = true;
    f.hostMemory.sizeBytes = p.ramBytes;
    f.dma.fidelity = p.fidelity;
    f.barMemory.storeData = p.storeData;
    f.dma.timingOnly = !p.storeData;
    return f;
  }
  static DramParams dramParams(const ChainPlatformParams& p) {
    DramParams d;
    d.storeData = p.storeData;
    d.acceptNoData = !p.storeData;
    return d;
  }

  PciDev& pci(const std::string& n) { return *topo->findDev(n); }
  /// The next `len` bytes (page rounded) of the arena (private anonymous memory).
  Va mapAnon(std::uint64_t len) {
    const Va v = arena + arenaUsed;
    arenaUsed += pageRoundUp(len);
    CHAIN_REQUIRE(arenaUsed <= params.arenaBytes);
    return v;
  }
  /// The colour engine's device memory [offset, offset + len) mapped as its special vma.
  Va mapColourInput(std::uint64_t offset, std::uint64_t len) {
    files.push_back(colourDriver->openFile());
    const VaResult r =
        mm->mmap(mapAnon(len), len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, files.back(), offset);
    CHAIN_REQUIRE(r.ok());
    special.emplace_back(r.addr, len);
    return r.addr;
  }
  std::vector<std::uint8_t> cpu(Va a, std::uint64_t len) {
    std::vector<std::uint8_t> b(len);
    CHAIN_REQUIRE(copyFromUser(*mm, b.data(), a, len) == Errno::Ok);
    return b;
  }
  static std::uint64_t pageRoundUp(std::uint64_t b) { return (b + kPageSize - 1) & ~(kPageSize - 1); }
  Camera& cam(unsigned i) { return *cams[i]; }
  CameraDriver& camDriver(unsigned i) { return *camDrivers[i]; }

  ChainPlatformParams params;
  PhysMem pm;
  std::unique_ptr<Topology> topo;
  Iommu iommu;
  DmaMapping dma;
  P2pdma p2pdma;
  P2pDmaMapper mapper;
  FabricFromTopology fab;
  Dram dram;
  IommuTranslationStage stage;
  InvariantChecker violations;
  P2pChecker checker;
  ImporterDmaDirectory directory;
  std::unique_ptr<Mm> mm;
  Va arena;
  std::uint64_t arenaUsed = 0;
  std::vector<std::unique_ptr<Camera>> cams;
  std::vector<std::unique_ptr<CameraDriver>> camDrivers;
  std::unique_ptr<ColourEngine> colour;
  std::unique_ptr<ColourEngineDriver> colourDriver;
  std::vector<std::shared_ptr<File>> files;
  std::vector<std::pair<Va, std::uint64_t>> special;  // special-vma mappings of the colour engine
};

/// Page-rounded size of `bytes`.
inline std::uint64_t pageRound(std::uint64_t bytes) {
  return (bytes + kPageSize - 1) & ~(kPageSize - 1);
}

/// The reference transform (colour_engine.h: the arithmetic written plainly, independently of
/// the engine's data path).
inline Rgb referenceTransform(const ColourTransform& t, Rgb in) {
  return colourReferencePixel(t, in);
}

/// A transform with negative, above-one and rounding-edge coefficients and non-trivial LUTs (the
/// "vivid" preset).
inline ColourTransform testTransform() {
  return *colourTransformPreset("vivid");
}

/// First mismatching pixel of `bytes` (a frame in format `f`, `width` x `height`, packed)
/// against expect(x, y); -1 if none.
inline long long firstMismatch(const std::vector<std::uint8_t>& bytes, PixelFormat f, std::uint32_t width,
                               std::uint32_t height,
                               const std::function<Rgb(std::uint32_t, std::uint32_t)>& expect) {
  const std::uint32_t bpp = bytesPerPixel(f);
  for (std::uint32_t y = 0; y < height; ++y)
    for (std::uint32_t x = 0; x < width; ++x) {
      const std::uint8_t* p = &bytes[(std::uint64_t(y) * width + x) * bpp];
      if (loadPixel(f, p) != expect(x, y) || (bpp == 4 && p[3] != 0)) return (long long)y * width + x;
    }
  return -1;
}

/// An SC_THREAD running `body` with its own quantum keeper.
class ScThread : public sc_core::sc_module {
 public:
  SC_HAS_PROCESS(ScThread);
  ScThread(sc_core::sc_module_name n, std::function<void(tlm_utils::tlm_quantumkeeper&)> body)
      : sc_module(n), body_(std::move(body)) {
    SC_THREAD(run);
  }

 private:
  void run() {
    tlm_utils::tlm_quantumkeeper qk;
    qk.reset();
    body_(qk);
    qk.sync();
  }
  std::function<void(tlm_utils::tlm_quantumkeeper&)> body_;
};

}  // namespace hmmsim::test
