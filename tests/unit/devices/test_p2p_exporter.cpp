// The shared exporter half (models/devices/common/p2p_exporter.h) on the SystemC fabric: device
// memory in PhysMem behind a PcieMemoryTarget (setBacking), BAR windows moved by the exporter's
// P2pBarManager, an importer (ImporterMirror over a special vma) whose DMA engine reads and
// writes the BAR through the fabric. Assertions after sc_start().
#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <vector>

#include "hmm/importer_mirror.h"
#include "hmm/p2p_checker.h"
#include "hmm/p2p_dma.h"
#include "models/cpu_mmu/file.h"
#include "models/cpu_mmu/mm.h"
#include "models/cpu_mmu/phys_mem.h"
#include "models/devices/common/p2p_exporter.h"
#include "models/pcie/dma_mapping.h"
#include "models/pcie/fabric_from_topology.h"
#include "models/pcie/iommu.h"
#include "models/pcie/iommu_topology.h"
#include "models/pcie/memory_target.h"
#include "models/pcie/p2pdma.h"
#include "models/pcie/routing.h"
#include "sim/checker.h"
#include "tests/unit/pcie/fabric_test_util.h"
#include "tests/unit/pcie/topology_fixtures.h"

using namespace hmmsim;
using namespace hmmsim::test;

namespace {

constexpr std::uint64_t kP = kPageSize;
constexpr std::uint64_t kVramBytes = 1ull << 30;
constexpr std::uint64_t kWindow = 2ull << 20;
const Pa kVram(0x100'0000'0000ull);

/// Contiguous device memory: device page p is the frame at kVram + p * 4 KiB.
class Contiguous final : public P2pExportedMemory {
 public:
  explicit Contiguous(Pfn first) : first_(first) {}
  std::optional<DevPage> devPageOf(Pfn pfn) override {
    if (pfn < first_ || pfn - first_ >= (kVramBytes >> kPageShift)) return std::nullopt;
    return DevPage(pfn - first_);
  }
  std::optional<Pfn> pfnOf(DevPage p) override {
    if (p.value() >= (kVramBytes >> kPageShift)) return std::nullopt;
    return first_ + p.value();
  }

 private:
  Pfn first_;
};

/// The device file: an mmap exports device memory as a special vma.
class ExporterFile final : public FileOperations {
 public:
  explicit ExporterFile(P2pExporter& e) : e_(e) {}
  Errno mmap(File&, Vma& vma) override { return e_.mmapSpecial(vma); }

 private:
  P2pExporter& e_;
};

std::vector<std::uint8_t> tagged(std::uint64_t len, std::uint8_t tag) {
  std::vector<std::uint8_t> b(len);
  for (std::size_t i = 0; i < len; ++i) b[i] = static_cast<std::uint8_t>(tag ^ (i * 7));
  return b;
}

PhysMemParams ram() {
  PhysMemParams p;
  p.ramSize = 256ull << 20;
  return p;
}

struct Platform {
  explicit Platform(std::uint64_t apertureBytes, std::uint64_t apertureOffset = 0)
      : pm(ram()),
        topo(buildTopology(smallPlatform({"gpu0", "gpu1"}))),
        router(*topo, "top.route"),
        iommu("top.iommu", IommuParams{}),
        dma("top.dma", iommu, DmaMappingParams{}),
        p2pdma(*topo, P2pdmaParams{}, Rng(1), "top.p2pdma"),
        mapper(p2pdma, dma, "top.p2p_dma"),
        checker(violations),
        fab("fab", *topo, FabricFromTopologyParams{}),
        mem(pfnOf(kVram)) {
    router.setRcAddressResolver(iommuRcAddressResolver(iommu, *topo));
    for (const char* n : {"gpu0", "gpu1"})
      REQUIRE(dma.attachDevice(pci(n), pciDmaDeviceParams(pci(n), *topo)) == Errno::Ok);
    REQUIRE(pm.addDeviceRangeAt(kVram, kVramBytes >> kPageShift, nullptr, nullptr) == Errno::Ok);
    fab.barMemory("gpu1").setBacking(&pm, kVram.value(), kVramBytes);
    P2pExporterParams ep;
    ep.apertureBytes = apertureBytes;
    ep.apertureOffset = apertureOffset;
    REQUIRE(P2pExporter::check(pci("gpu1"), ep, kVramBytes).empty());
    exporter = std::make_unique<P2pExporter>("gpu1", pci("gpu1"), ep, kVramBytes, mem, pm, mapper, &checker);
    exporter->bindBarTarget(fab.barMemory("gpu1"));
    fops = std::make_unique<ExporterFile>(*exporter);
    mm = std::make_unique<Mm>(pm, "proc");
  }
  ~Platform() {
    importer.reset();
    mm.reset();
  }
  PciDev& pci(const std::string& n) { return *topo->findDev(n); }
  /// mmap `bytes` of device memory from device offset 0 and mirror it for gpu0.
  Va mapDeviceMemory(std::uint64_t bytes) {
    file = openDeviceFile(pm, *fops, FMODE_READ | FMODE_WRITE, "gpu1");
    const VaResult r = mm->mmap(Va(0), bytes, PROT_READ | PROT_WRITE, MAP_SHARED, file, 0);
    REQUIRE(r.ok());
    HmmDmaImporter imp;
    imp.device = &pci("gpu0");
    imp.dma = &dma;
    importer = std::make_unique<ImporterMirror>(*mm, imp, r.addr, bytes >> kPageShift, ImporterMirrorParams{},
                                                &checker, "gpu0.importer");
    return r.addr;
  }
  /// The bus address gpu0 uses for `va` (mapping it first if needed); 0 on failure.
  std::uint64_t busOf(Va va, bool write) {
    if (!importer->translate(va, write) && importer->map(va, va + kP, write) != HmmStatus::Ok) return 0;
    return importer->translate(va, write)->addr.value();
  }

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
  Contiguous mem;
  std::unique_ptr<P2pExporter> exporter;
  std::unique_ptr<ExporterFile> fops;
  std::unique_ptr<Mm> mm;
  std::shared_ptr<File> file;
  std::unique_ptr<ImporterMirror> importer;
};

}  // namespace

TEST_CASE(
    "p2p exporter: a peer reads and writes device memory through BAR windows the manager moves, "
    "byte-exact across reclaim and window moves",
    "[devices][p2p_exporter]") {
  Platform p(4 * kWindow);  // 4 windows of 2 MiB over 1 GiB of device memory
  constexpr unsigned kChunks = 8;
  const Va va = p.mapDeviceMemory(kChunks * kWindow);
  for (unsigned c = 0; c < kChunks; ++c) {
    const std::vector<std::uint8_t> b = tagged(kP, static_cast<std::uint8_t>(0x10 + c));
    p.pm.write(kVram + c * kWindow + 5 * kP, b.data(), b.size());
  }
  std::vector<std::vector<std::uint8_t>> got(2 * kChunks + 2, std::vector<std::uint8_t>(kP));
  std::vector<std::uint64_t> bus(2 * kChunks + 2), busBeforeMove(1);
  std::vector<CplStatus> st(2 * kChunks + 3, CplStatus::CompleterAbort);
  const std::vector<std::uint8_t> w = tagged(kP, 0xee);
  BarRevokeResult moved;
  QkThread th("peer", [&](tlm_utils::tlm_quantumkeeper& qk) {
    PcieDmaEngine& e = p.fab.engine("gpu0");
    // Chunks 0-7 in turn: 4..7 reclaim the windows 0..3 held (LRU, revoke first).
    for (unsigned c = 0; c < kChunks; ++c) {
      bus[c] = p.busOf(va + c * kWindow + 5 * kP, false);
      st[c] = e.read(bus[c], kP, got[c].data(), qk);
    }
    // Back to chunk 0: mapped again (predictable), maybe at another window.
    bus[kChunks] = p.busOf(va + 5 * kP, false);
    st[kChunks] = e.read(bus[kChunks], kP, got[kChunks].data(), qk);
    // A device reset frees every window (importers revoked); chunk 0 maps into one window,
    // which the exporter then moves to another: the importer is revoked and maps again there.
    p.exporter->bar().reset();
    busBeforeMove[0] = p.busOf(va + 5 * kP, false);
    BarWindowIdx from;
    p.exporter->bar().windowOf(DevPage(0), &from);
    moved = p.exporter->bar().moveWindow(from, BarWindowIdx((from.value() + 1) % 4));
    bus[kChunks + 1] = p.busOf(va + 5 * kP, true);
    st[kChunks + 1] = e.read(bus[kChunks + 1], kP, got[kChunks + 1].data(), qk);
    st[kChunks + 2] = e.write(bus[kChunks + 1], kP, w.data(), qk);
  });
  sc_core::sc_start();
  for (unsigned c = 0; c < kChunks; ++c) {
    INFO("chunk " << c);
    CHECK(st[c] == CplStatus::SuccessfulCompletion);
    CHECK(got[c] == tagged(kP, static_cast<std::uint8_t>(0x10 + c)));
  }
  CHECK(st[kChunks] == CplStatus::SuccessfulCompletion);
  CHECK(got[kChunks] == tagged(kP, 0x10));
  CHECK(st[kChunks + 1] == CplStatus::SuccessfulCompletion);
  CHECK(got[kChunks + 1] == tagged(kP, 0x10));
  CHECK(st[kChunks + 2] == CplStatus::SuccessfulCompletion);
  std::vector<std::uint8_t> back(kP);
  p.pm.read(kVram + 5 * kP, back.data(), back.size());
  CHECK(back == w);  // the peer's write landed in device page 5 of chunk 0
  // Every address was inside the 8 MiB aperture at the start of gpu1's BAR 2.
  const std::uint64_t barBus = p.exporter->bar().params().barBus.value();
  for (unsigned i = 0; i < kChunks + 2; ++i) {
    CHECK(bus[i] >= barBus);
    CHECK(bus[i] < barBus + 4 * kWindow);
  }
  CHECK(p.exporter->bar().stats().counterValue("reclaims") >= 4);
  CHECK(p.exporter->stats().counterValue("window_programs") >= 9);
  CHECK(p.checker.barChecks() == 0);  // the fabric path is not a pure-core resolver
  CHECK(p.violations.ok());
  CHECK(moved.err == Errno::Ok);
  CHECK(moved.pagesRevoked == 1);
  CHECK(bus[kChunks + 1] == busBeforeMove[0] + kWindow);  // the new window is the next one  // the importer
                                                          // held page 5 of chunk 0 and was told first
  CHECK(p.exporter->bar().windowOf(DevPage(0), nullptr));
}

TEST_CASE("p2p exporter: the thread whose map or move points a BAR window waits window_program_cost for it",
          "[devices][p2p_exporter][timing]") {
  Platform p(4 * kWindow);  // 4 windows over 1 GiB: windows are re-pointed, each costs 1 us
  const std::uint64_t cost = P2pExporterParams{}.windowProgramPs;
  constexpr unsigned kChunks = 6;
  const Va va = p.mapDeviceMemory(kChunks * kWindow);
  std::vector<std::uint64_t> took(kChunks + 2);
  QkThread th("peer", [&](tlm_utils::tlm_quantumkeeper&) {
    auto now = [] { return std::uint64_t(sc_core::sc_time_stamp().value()); };
    // Chunks 0-3 take the free windows, 4-5 reclaim the LRU ones: one window programmed each.
    for (unsigned c = 0; c < kChunks; ++c) {
      const std::uint64_t t0 = now();
      REQUIRE(p.busOf(va + c * kWindow, false) != 0);
      took[c] = now() - t0;
    }
    // A page of a resident chunk maps without programming anything.
    std::uint64_t t0 = now();
    REQUIRE(p.busOf(va + 5 * kWindow + kP, false) != 0);
    took[kChunks] = now() - t0;
    // Moving a window re-points it: the mover waits.
    BarWindowIdx from;
    REQUIRE(p.exporter->bar().windowOf(DevPage(0), nullptr) == false);
    REQUIRE(p.exporter->bar().windowOf(DevPage(5 * (kWindow / kP)), &from));
    t0 = now();
    p.exporter->bar().reset();
    REQUIRE(p.busOf(va + 5 * kWindow, false) != 0);  // one window programmed
    p.exporter->bar().windowOf(DevPage(5 * (kWindow / kP)), &from);
    REQUIRE(p.exporter->bar().moveWindow(from, BarWindowIdx((from.value() + 1) % 4)).err == Errno::Ok);
    p.exporter->settleWindowTime();  // a caller of bar() takes the move's programming
    took[kChunks + 1] = now() - t0;
  });
  sc_core::sc_start();
  for (unsigned c = 0; c < kChunks; ++c) {
    INFO("chunk " << c);
    CHECK(took[c] == cost);
  }
  CHECK(took[kChunks] == 0);
  CHECK(took[kChunks + 1] == 2 * cost);
  CHECK(p.exporter->stats().counterValue("window_program_ps") == (kChunks + 2) * cost);
  CHECK(p.violations.ok());
}

TEST_CASE("p2p exporter: an aperture at an offset in the BAR starts its windows and bus addresses there",
          "[devices][p2p_exporter]") {
  constexpr std::uint64_t kOffset = 64ull << 20;
  Platform p(4 * kWindow, kOffset);  // gpu1's BAR 2 is 256 MiB: the aperture is [64 MiB, 72 MiB)
  const std::uint64_t bar = pciBusAddress(p.pci("gpu1"), 2).value();
  CHECK(p.exporter->bar().params().barBus.value() == bar + kOffset);
  CHECK(p.exporter->bar().params().barPa == pciResourceStart(p.pci("gpu1"), 2) + kOffset);
  constexpr unsigned kChunks = 6;  // two more than windows: the LRU reclaims two
  const Va va = p.mapDeviceMemory(kChunks * kWindow);
  for (unsigned c = 0; c < kChunks; ++c) {
    const std::vector<std::uint8_t> b = tagged(kP, static_cast<std::uint8_t>(0x40 + c));
    p.pm.write(kVram + c * kWindow + 3 * kP, b.data(), b.size());
  }
  std::vector<std::vector<std::uint8_t>> got(kChunks, std::vector<std::uint8_t>(kP));
  std::vector<std::uint64_t> bus(kChunks);
  std::vector<CplStatus> st(kChunks + 1, CplStatus::CompleterAbort);
  const std::vector<std::uint8_t> w = tagged(kP, 0x99);
  QkThread th("peer", [&](tlm_utils::tlm_quantumkeeper& qk) {
    PcieDmaEngine& e = p.fab.engine("gpu0");
    for (unsigned c = 0; c < kChunks; ++c) {
      bus[c] = p.busOf(va + c * kWindow + 3 * kP, c == kChunks - 1);
      st[c] = e.read(bus[c], kP, got[c].data(), qk);
    }
    st[kChunks] = e.write(bus[kChunks - 1], kP, w.data(), qk);
  });
  sc_core::sc_start();
  for (unsigned c = 0; c < kChunks; ++c) {
    INFO("chunk " << c);
    CHECK(st[c] == CplStatus::SuccessfulCompletion);
    CHECK(got[c] == tagged(kP, static_cast<std::uint8_t>(0x40 + c)));
    // Window k of the aperture is BAR bytes [64 MiB + k * 2 MiB, ...): page 3 of its chunk there.
    CHECK(bus[c] >= bar + kOffset);
    CHECK(bus[c] < bar + kOffset + 4 * kWindow);
    CHECK((bus[c] - bar - kOffset) % kWindow == 3 * kP);
  }
  CHECK(st[kChunks] == CplStatus::SuccessfulCompletion);
  std::vector<std::uint8_t> back(kP);
  p.pm.read(kVram + (kChunks - 1) * kWindow + 3 * kP, back.data(), back.size());
  CHECK(back == w);  // the write through the offset aperture landed in its device page
  CHECK(p.exporter->bar().stats().counterValue("reclaims") == 2);
  CHECK(p.violations.ok());
}

TEST_CASE("p2p exporter: an aperture offset must be window-aligned and leave the aperture inside the BAR",
          "[devices][p2p_exporter]") {
  std::unique_ptr<Topology> topo = buildTopology(smallPlatform({"gpu0", "gpu1"}));
  PciDev& gpu1 = *topo->findDev("gpu1");  // BAR 2: 256 MiB
  P2pExporterParams ep;
  ep.apertureOffset = 64ull << 20;
  CHECK(P2pExporter::check(gpu1, ep, kVramBytes).empty());
  ep.apertureBytes = 192ull << 20;  // exactly the rest of the BAR
  CHECK(P2pExporter::check(gpu1, ep, kVramBytes).empty());
  ep.apertureBytes = 194ull << 20;
  CHECK_THAT(P2pExporter::check(gpu1, ep, kVramBytes),
             Catch::Contains(
                 "apertureBytes exceeds BAR 2 of gpu1 (at most 201326592 from apertureOffset 67108864)"));
  ep.apertureBytes = 0;
  ep.apertureOffset = 3ull << 20;
  CHECK_THAT(P2pExporter::check(gpu1, ep, kVramBytes),
             Catch::Contains("apertureOffset 3145728 must be a multiple of windowBytes (2097152)"));
  ep.apertureOffset = 256ull << 20;
  CHECK_THAT(P2pExporter::check(gpu1, ep, kVramBytes), Catch::Contains("below the size of BAR 2 of gpu1"));
}
