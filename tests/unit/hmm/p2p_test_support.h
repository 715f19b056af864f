#pragma once
// Shared fixture of the RFC p2p tests: the hmm fixture (one Mm, an exporter's device memory with a
// dmirror-like migrate_to_ram) on the reference PCIe platform (tests/unit/pcie/topology_fixtures.h:
// gpu0 and gpu1 under switch sw0, gpu2 behind another root port, gpu3 behind another host
// bridge), an IOMMU + DMA API, p2pdma, and two test exporters on gpu1's BAR 2: devmem p2p ops for
// its private memory and a device file whose mmap exports a special vma with p2pMap. Importers
// get a resolver that routes each DMA address through the real PCIe router (switch turn-around,
// root complex + IOMMU) to the bytes it reaches.

#include <catch2/catch.hpp>

#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "hmm/hmm_dma_map.h"
#include "hmm/importer_mirror.h"
#include "hmm/p2p.h"
#include "hmm/p2p_checker.h"
#include "hmm/p2p_dma.h"
#include "models/cpu_mmu/file.h"
#include "models/cpu_mmu/vm_operations.h"
#include "models/cpu_mmu/vma.h"
#include "models/pcie/dma_mapping.h"
#include "models/pcie/iommu.h"
#include "models/pcie/iommu_topology.h"
#include "models/pcie/p2pdma.h"
#include "models/pcie/routing.h"
#include "models/pcie/topology_desc.h"
#include "tests/unit/hmm/hmm_test_support.h"
#include "tests/unit/pcie/topology_fixtures.h"

namespace hmmsim::test {

inline constexpr int kExportBar = 2;

/// gpu1's BAR 2 handed out 4 KiB slot by slot: each live slot maps one frame (the bytes).
/// A live slot is a "live BAR window" for checker rule 3.
struct BarSlots {
  PciDev& dev;
  std::vector<Pfn> slotPfn;  // slot -> frame, Pfn(0) = free
  std::vector<std::size_t> freeSlots;
  explicit BarSlots(PciDev& d) : dev(d), slotPfn(pciResourceLen(d, kExportBar) >> kPageShift, Pfn(0)) {
    for (std::size_t i = slotPfn.size(); i-- > 0;) freeSlots.push_back(i);
  }
  std::optional<std::size_t> take(Pfn pfn) {
    if (freeSlots.empty()) return std::nullopt;
    const std::size_t s = freeSlots.back();
    freeSlots.pop_back();
    slotPfn[s] = pfn;
    return s;
  }
  void give(std::size_t s) {
    slotPfn[s] = Pfn(0);
    freeSlots.push_back(s);
  }
  Pa cpuOf(std::size_t s) const { return pciResourceStart(dev, kExportBar) + (s << kPageShift); }
  /// Bus address inside a live slot?
  bool live(BusAddr a) const {
    const BusAddr base = pciBusAddress(dev, kExportBar);
    if (a < base || a - base >= pciResourceLen(dev, kExportBar)) return false;
    return slotPfn[(a - base) >> kPageShift] != Pfn(0);
  }
  std::size_t used() const { return slotPfn.size() - freeSlots.size(); }
};

/// One p2p mapping an exporter handed out: keyed by (importer, address).
struct P2pGrant {
  std::size_t slot = 0;
  DmaDir dir = DmaDir::ToDevice;
};

/// Exporter of gpu1's private memory (RFC 4/5): maps each page into a BAR slot.
class TestDevmemExporter : public DevmemP2pOps {
 public:
  TestDevmemExporter(BarSlots& bar, P2pDmaMapper& mapper) : bar_(bar), mapper_(mapper) {}
  std::uint64_t p2pMap(DeviceMemory& devmem, Device& importer, Va, const unsigned long* hmmPfns,
                       std::uint64_t npages, DmaAddr* pas, bool write) override {
    ++mapCalls;
    if (decline) return 0;
    std::uint64_t k = 0;
    for (; k < npages && (!maxPages || k < maxPages); ++k) {
      const Pfn pfn = hmmPfnToPfn(hmmPfns[k]);
      if (!devmem.owns(pfn)) break;
      const auto slot = bar_.take(pfn);
      if (!slot) break;
      const DmaDir dir = write ? DmaDir::Bidirectional : DmaDir::ToDevice;
      const DmaAddr a =
          mapper_.map(bar_.dev, kExportBar, importer, bar_.cpuOf(*slot), kPageSize, dir, &lastType);
      if (a == kDmaMappingError) {
        bar_.give(*slot);
        break;
      }
      pas[k] = a;
      grants[{&importer, a.value()}] = P2pGrant{*slot, dir};
      ++pagesMapped;
    }
    return k;
  }
  std::uint64_t p2pUnmap(DeviceMemory& devmem, Device& importer, Va, const unsigned long* hmmPfns,
                         std::uint64_t npages, const DmaAddr* pas) override {
    std::uint64_t k = 0;
    for (; k < npages; ++k) {
      if (!devmem.owns(hmmPfnToPfn(hmmPfns[k]))) break;
      auto it = grants.find({&importer, pas[k].value()});
      if (it == grants.end()) break;
      REQUIRE(mapper_.unmap(importer, pas[k], kPageSize, it->second.dir) == Errno::Ok);
      bar_.give(it->second.slot);
      grants.erase(it);
      ++pagesUnmapped;
    }
    return k;
  }
  bool decline = false;
  std::uint64_t maxPages = 0;  // 0 = no cap per call
  P2pMapType lastType = P2pMapType::Unknown;
  unsigned mapCalls = 0;
  std::uint64_t pagesMapped = 0, pagesUnmapped = 0;
  std::map<std::pair<const Device*, std::uint64_t>, P2pGrant> grants;

 private:
  BarSlots& bar_;
  P2pDmaMapper& mapper_;
};

/// A device file of gpu1 whose mmap exports a special vma (RFC 3/5, 5/5): `pages` pages of device
/// memory that the CPU never maps (VM_IO | VM_PFNMAP, no fault handler), reachable by importers
/// through p2pMap only.
class TestVmaExporter : public VmOperations, public FileOperations {
 public:
  TestVmaExporter(BarSlots& bar, P2pDmaMapper& mapper, DeviceMemory& mem, std::uint64_t pages)
      : bar_(bar), mapper_(mapper) {
    for (std::uint64_t i = 0; i < pages; ++i) {
      auto p = mem.allocPage();
      REQUIRE(p);
      frames.push_back(*p);
    }
  }
  // FileOperations
  Errno mmap(File&, Vma& vma) override {
    if (((vma.vmPgoff << kPageShift) + vma.length()) > (frames.size() << kPageShift)) return Errno::Inval;
    vma.vmOps = this;
    vma.vmFlags |= VM_IO | VM_PFNMAP | VM_DONTEXPAND;
    return Errno::Ok;
  }
  // VmOperations
  bool hasFault() const override { return false; }
  bool hasP2p() const override { return true; }
  Errno p2pMap(Vma& vma, Device& importer, Va start, Va end, DmaAddr* pa, bool write) override {
    ++mapCalls;
    if (onMap) std::exchange(onMap, nullptr)();
    if (refuse != Errno::Ok) return refuse;
    if (write && readOnly) return Errno::Perm;
    const std::uint64_t n = (end - start) >> kPageShift;
    const std::uint64_t first = vma.vmPgoff + ((start - vma.vmStart) >> kPageShift);
    for (std::uint64_t i = 0; i < n; ++i) {
      const auto slot = bar_.take(frames[first + i]);
      const DmaDir dir = write ? DmaDir::Bidirectional : DmaDir::ToDevice;
      DmaAddr a = kDmaMappingError;
      if (slot) a = mapper_.map(bar_.dev, kExportBar, importer, bar_.cpuOf(*slot), kPageSize, dir, &lastType);
      if (a == kDmaMappingError) {
        if (slot) bar_.give(*slot);
        p2pUnmap(vma, importer, start, start + (i << kPageShift), pa);  // nothing stays mapped
        return slot ? Errno::Fault : Errno::NoSpc;
      }
      pa[i] = a;
      grants[{&importer, a.value()}] = P2pGrant{*slot, dir};
      ++pagesMapped;
    }
    return Errno::Ok;
  }
  Errno p2pUnmap(Vma&, Device& importer, Va start, Va end, const DmaAddr* pa) override {
    ++unmapCalls;
    const std::uint64_t n = (end - start) >> kPageShift;
    Errno rc = Errno::Ok;
    for (std::uint64_t i = 0; i < n; ++i) {
      auto it = grants.find({&importer, pa[i].value()});
      if (it == grants.end()) {
        rc = Errno::Inval;
        continue;
      }
      REQUIRE(mapper_.unmap(importer, pa[i], kPageSize, it->second.dir) == Errno::Ok);
      bar_.give(it->second.slot);
      grants.erase(it);
      ++pagesUnmapped;
    }
    return rc;
  }
  const char* name() const override { return "test_vma_exporter"; }

  std::vector<Pfn> frames;  // file page -> device frame holding its bytes
  Errno refuse = Errno::Ok;
  bool readOnly = false;
  std::function<void()> onMap;  // runs once inside the next p2pMap (races)
  P2pMapType lastType = P2pMapType::Unknown;
  unsigned mapCalls = 0, unmapCalls = 0;
  std::uint64_t pagesMapped = 0, pagesUnmapped = 0;
  std::map<std::pair<const Device*, std::uint64_t>, P2pGrant> grants;

 private:
  BarSlots& bar_;
  P2pDmaMapper& mapper_;
};

inline IommuParams iommuParams(IommuMode mode, bool skipIotlbFlush = false) {
  IommuParams p;
  p.mode = mode;
  p.skipIotlbInvalidation = skipIotlbFlush;
  return p;
}

/// The platform: HmmFixture's mm and exporter memory (owner &kDev0, on gpu1), PCIe, IOMMU, DMA
/// API, p2pdma, the two exporters, and importers on any endpoint.
struct P2pFixture : HmmFixture {
  explicit P2pFixture(IommuMode mode = IommuMode::Translate, TopologyDesc desc = platform(),
                      std::uint64_t specialPages = 64, bool skipIotlbFlush = false)
      : topo(buildTopology(desc)),
        router(*topo, "top.route"),
        iommu("top.iommu", iommuParams(mode, skipIotlbFlush)),
        dma("top.dma", iommu, DmaMappingParams{}),
        p2pdma(*topo, P2pdmaParams{}, Rng(1), "top.p2pdma"),
        mapper(p2pdma, dma, "top.p2p_dma"),
        bar(pci("gpu1")),
        devmemExporter(bar, mapper),
        vmaExporter(bar, mapper, *dev, specialPages),
        checker(violations) {
    router.setRcAddressResolver(iommuRcAddressResolver(iommu, *topo));
    iommu.setChecker(&violations);  // rule 4 lives in the IOMMU model
    for (const char* n : {"gpu0", "gpu2", "gpu3", "gpu1"})
      REQUIRE(dma.attachDevice(pci(n), pciDmaDeviceParams(pci(n), *topo)) == Errno::Ok);
    dev->setP2pOps(&devmemExporter);
    checker.setBarQuery([this](BusAddr a) { return bar.live(a); });
  }
  ~P2pFixture() {
    importers.clear();  // before the mm and the exporters
    if (sub.inserted()) sub.remove();
    mm.reset();
  }

  PciDev& pci(const std::string& n) { return *topo->findDev(n); }

  HmmDmaImporter importerOf(const std::string& n) {
    HmmDmaImporter imp;
    imp.device = &pci(n);
    imp.owner = &kDev1;  // an owner no test memory has
    imp.dma = &dma;
    imp.localAddress = [](Pfn p) { return DmaAddr(paOf(p).value()); };
    return imp;
  }

  /// Where the bytes of a DMA address emitted by `importer` live: the PCIe route (switch
  /// turn-around, or root complex with the IOMMU) to system memory or to gpu1's BAR slot.
  std::optional<Pa> resolve(Device& importer, DmaAddr a, HmmDmaKind kind, bool write) {
    if (kind == HmmDmaKind::Local) return Pa(a.value());
    if (kind == HmmDmaKind::System && iommu.mode() == IommuMode::Translate) {
      // Upstream to RAM through the IOMMU's IOTLB and walker (what catches a skipped flush).
      const IommuTranslation t = iommu.translate(toPciDev(&importer)->bdf(), Iova(a.value()), write, 0);
      if (!t.ok) return std::nullopt;
      return t.pa;
    }
    TlpRouteAttrs at;
    at.write = write;
    const Route r = router.routeRequest(*toPciDev(&importer), a.value(), at);
    if (!r.ok()) return std::nullopt;
    if (r.end == RouteEnd::SystemMemory) return Pa(r.targetAddr);
    if (r.target != &bar.dev || r.targetBar != kExportBar) return std::nullopt;
    const std::uint64_t off = r.targetAddr - pciBusAddress(bar.dev, kExportBar).value();
    checker.peerAccess(importer, BusAddr(r.targetAddr), "gpu1");
    const Pfn pfn = bar.slotPfn[off >> kPageShift];
    if (pfn == Pfn(0)) return std::nullopt;
    return paOf(pfn) + (off & (kPageSize - 1));
  }

  /// An importer mirror of [start, start + pages) for endpoint `n`.
  ImporterMirror& importer(const std::string& n, Va start, std::uint64_t pages, ImporterMirrorParams p = {}) {
    importers.push_back(
        std::make_unique<ImporterMirror>(*mm, importerOf(n), start, pages, p, &checker, "imp." + n));
    ImporterMirror& m = *importers.back();
    m.setResolver([this](Device& d, DmaAddr a, const DeviceTranslation& t, bool w) {
      return resolve(d, a, t.kind, w);
    });
    return m;
  }

  /// mmap of the special vma (pages [pgoff, pgoff + pages) of the device file).
  Va mapSpecial(std::uint64_t pages, std::uint64_t pgoff = 0, int prot = PROT_READ | PROT_WRITE) {
    if (!devFile) devFile = openDeviceFile(pm, vmaExporter, FMODE_READ | FMODE_WRITE, "gpu1-export");
    VaResult r = mm->mmap(Va(0), pages << kPageShift, prot, MAP_SHARED, devFile, pgoff);
    REQUIRE(r.ok());
    return r.addr;
  }
  /// The exporter writes `v` into its special page `i` (the device's own view).
  void exporterStore(std::uint64_t i, std::uint64_t v) {
    pm.write(paOf(vmaExporter.frames[i]), &v, sizeof v);
  }
  std::uint64_t exporterLoad(std::uint64_t i) {
    std::uint64_t v = 0;
    pm.read(paOf(vmaExporter.frames[i]), &v, sizeof v);
    return v;
  }

  std::unique_ptr<Topology> topo;
  Router router;
  Iommu iommu;
  DmaMapping dma;
  P2pdma p2pdma;
  P2pDmaMapper mapper;
  BarSlots bar;
  TestDevmemExporter devmemExporter;
  TestVmaExporter vmaExporter;
  InvariantChecker violations;
  P2pChecker checker;
  std::shared_ptr<File> devFile;
  std::vector<std::unique_ptr<ImporterMirror>> importers;
};

/// A word read by the importer's DMA (REQUIREs success).
inline std::uint64_t dmaLoad(ImporterMirror& m, Va va) {
  std::uint64_t v = 0;
  REQUIRE(m.dmaRead(va, &v, sizeof v));
  return v;
}

}  // namespace hmmsim::test
