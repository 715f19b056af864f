// ImporterDma (models/devices/common/importer_dma.h): a device's DMA to and from a process VA range
// through the SystemC fabric, with real bytes, device faults, IOMMU translation, p2p to a peer's
// BAR, invalidations that wait for bursts in flight, and the checker on every access. The platform
// is smallPlatform({gpu0, gpu1}) built by FabricFromTopology: gpu0 (the importer) and gpu1 (the
// exporter, its device-private memory behind its BAR 2) under switch sw0, gpu2 on another root
// port; DRAM behind the root complex through the IOMMU. Assertions after sc_start().
#include <catch2/catch.hpp>

#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <vector>

#include <systemc>

#include <nlohmann/json.hpp>

#include "hmm/p2p.h"
#include "hmm/p2p_bar_manager.h"
#include "hmm/p2p_checker.h"
#include "hmm/p2p_dma.h"
#include "models/cpu_mmu/dram.h"
#include "models/cpu_mmu/sc_blocker.h"
#include "models/devices/common/importer_dma.h"
#include "models/pcie/dma_engine.h"
#include "models/pcie/fabric_from_topology.h"
#include "models/pcie/iommu_topology.h"
#include "models/pcie/iommu_translation_stage.h"
#include "models/pcie/memory_target.h"
#include "models/pcie/root_complex_module.h"
#include "sim/trace.h"
#include "tests/unit/hmm/hmm_test_support.h"
#include "tests/unit/pcie/fabric_test_util.h"
#include "tests/unit/pcie/topology_fixtures.h"

using namespace hmmsim;
using namespace hmmsim::test;

namespace {

constexpr std::uint64_t kRam = 256ull << 20;
constexpr std::uint64_t kBarBytes = 16ull << 20;  // gpu1's BAR 2 = its first device-memory chunk

TopologyDesc twoGpus() {
  TopologyDesc d = smallPlatform({"gpu0", "gpu1"});
  for (auto& e : d.endpoints) e.functions[0].bars = {mem32(0, 1 * kMiB), mem64pref(2, kBarBytes)};
  return d;
}

FabricFromTopologyParams fabricParams(bool timingOnly) {
  FabricFromTopologyParams p;
  p.externalHostMemory = true;
  p.hostMemory.baseAddr = 0;
  p.hostMemory.sizeBytes = kRam;
  p.dma.fidelity = PcieFidelity::PerBurst;
  p.dma.timingOnly = timingOnly;
  return p;
}

DramParams dramParams() {
  DramParams d;
  d.acceptNoData = true;
  return d;
}

IommuParams iommuMode(IommuMode m) {
  IommuParams p;
  p.mode = m;
  return p;
}

/// gpu1's devmem p2p ops (RFC 4/5) on a P2pBarManager: each device page gets its window's BAR
/// address; the BAR target's decode follows the windows the manager hands out.
class BarExporter : public DevmemP2pOps {
 public:
  BarExporter(P2pBarManager& bar, PcieMemoryTarget& target, PciDev& pci, P2pDmaMapper& mapper, Pfn base)
      : bar_(bar), target_(target), pci_(pci), mapper_(mapper), base_(base) {}
  std::uint64_t p2pMap(DeviceMemory& devmem, Device& importer, Va, const unsigned long* hmmPfns,
                       std::uint64_t npages, DmaAddr* pas, bool write) override {
    std::uint64_t k = 0;
    for (; k < npages; ++k) {
      const Pfn pfn = hmmPfnToPfn(hmmPfns[k]);
      if (!devmem.owns(pfn)) break;
      const DevPage page(pfn - base_);
      Pa cpu;
      if (!bar_.map(importer, page, 1, &cpu, BarMapMode::Prefix).ok()) break;
      syncWindow(page);
      const DmaDir dir = write ? DmaDir::Bidirectional : DmaDir::ToDevice;
      const DmaAddr a = mapper_.map(pci_, 2, importer, cpu, kPageSize, dir, nullptr);
      if (a == kDmaMappingError) {
        bar_.unmap(importer, page, 1);
        break;
      }
      pas[k] = a;
      grants_[{&importer, a.value()}] = {page, dir};
    }
    return k;
  }
  std::uint64_t p2pUnmap(DeviceMemory&, Device& importer, Va, const unsigned long*, std::uint64_t npages,
                         const DmaAddr* pas) override {
    std::uint64_t k = 0;
    for (; k < npages; ++k) {
      auto it = grants_.find({&importer, pas[k].value()});
      if (it == grants_.end()) break;
      REQUIRE(mapper_.unmap(importer, pas[k], kPageSize, it->second.second) == Errno::Ok);
      bar_.unmap(importer, it->second.first, 1);
      grants_.erase(it);
    }
    return k;
  }
  /// The BAR decode follows the manager: the window holding `page` shows its chunk.
  void syncWindow(DevPage page) {
    BarWindowIdx w;
    REQUIRE(bar_.windowOf(page, &w));
    const std::uint64_t wb = bar_.params().windowBytes;
    REQUIRE(target_.mapWindow(w.value() * wb, (page.value() << kPageShift) & ~(wb - 1), wb) == Errno::Ok);
  }
  std::optional<DevPage> devPageOf(Pfn pfn) const {
    if (pfn < base_ || pfn - base_ >= (kBarBytes >> kPageShift)) return std::nullopt;
    return DevPage(pfn - base_);
  }

 private:
  P2pBarManager& bar_;
  PcieMemoryTarget& target_;
  PciDev& pci_;
  P2pDmaMapper& mapper_;
  Pfn base_;
  std::map<std::pair<const Device*, std::uint64_t>, std::pair<DevPage, DmaDir>> grants_;
};

P2pBarParams unlimitedBar() {
  P2pBarParams b;
  b.policy = BarPolicy::Unlimited;
  b.apertureBytes = kBarBytes;
  return b;
}

struct Options {
  ImporterDmaParams importer;
  bool timingOnly = false;
  P2pBarParams bar = unlimitedBar();  // barPa/barBus/deviceMemBytes set from the topology
  IommuMode iommu = IommuMode::Translate;
  std::string prefix;                 // module and stats names (two platforms in one simulation)
  std::string importerName = "gpu0";  // the endpoint that imports
};

/// The platform (see the file comment). gpu0 imports [window, window + pages) of the process.
struct DmaPlatform : HmmFixture {
  explicit DmaPlatform(const Options& o = {})
      : HmmFixture(kRam),
        topo(buildTopology(twoGpus())),
        fab(o.prefix + "fab", *topo, fabricParams(o.timingOnly)),
        dram((o.prefix + "dram").c_str(), dramParams(), pm),
        iommu(o.prefix + "iommu", iommuMode(o.iommu)),
        dma(o.prefix + "dma", iommu, DmaMappingParams{}),
        stage(o.prefix + "rc.iommu", iommu, &dma),
        p2pdma(*topo, P2pdmaParams{}, Rng(1), o.prefix + "p2pdma"),
        mapper(p2pdma, dma, o.prefix + "p2p_dma"),
        checker(violations, [] { return sc_core::sc_time_stamp().value(); }),
        directory(checker),
        bar(barParams(o.bar), nullptr, o.prefix + "gpu1.bar"),
        exporter(bar, fab.barMemory("gpu1"), pci("gpu1"), mapper, dev->chunk(0).pgmap.pfnFirst),
        opts(o) {
    blocker.setLockdep(lockdep);
    lockdep.setChecker(&violations);
    mm->notifierSubscriptions().setBlocker(blocker);
    fab.router().setRcAddressResolver(iommuRcAddressResolver(iommu, *topo));
    fab.rootComplex("hb0").setTranslationStage(&stage);
    fab.rootComplex("hb0").memOut.bind(dram.tSocket);
    iommu.setChecker(&violations);
    for (const char* n : {"gpu0", "gpu1", "gpu2"})
      REQUIRE(dma.attachDevice(pci(n), pciDmaDeviceParams(pci(n), *topo)) == Errno::Ok);
    // gpu1's device memory is what its BAR shows (windows moved by the BAR manager).
    fab.barMemory("gpu1").setBacking(&pm, paOf(dev->chunk(0).pgmap.pfnFirst).value(), kBarBytes);
    dev->setP2pOps(&exporter);
    checker.registerBar(bar, "gpu1");
    directory.watchBar(fab.barMemory("gpu1"), [this](Pfn p) { return exporter.devPageOf(p); });
  }
  ~DmaPlatform() {
    importer.reset();
    checker.unregisterBar(bar);
    if (sub.inserted()) sub.remove();
    mm->notifierSubscriptions().setBlocker(singleThreadBlocker());
    mm.reset();
  }
  P2pBarParams barParams(P2pBarParams b) {
    PciDev& g = pci("gpu1");
    b.barPa = pciResourceStart(g, 2);
    b.barBus = pciBusAddress(g, 2);
    b.deviceMemBytes = kBarBytes;
    return b;
  }
  PciDev& pci(const std::string& n) { return *topo->findDev(n); }

  ImporterDma& importerOver(Va start, std::uint64_t pages) {
    HmmDmaImporter imp;
    imp.device = &pci(opts.importerName);
    imp.owner = &kDev1;
    imp.dma = &dma;
    imp.localAddress = [](Pfn p) { return DmaAddr(paOf(p).value()); };
    importer =
        std::make_unique<ImporterDma>(opts.prefix + "gpu0.dma", *mm, imp, fab.engine(opts.importerName),
                                      start, pages, opts.importer, &checker, &directory);
    return *importer;
  }
  std::vector<std::uint8_t> cpu(Va a, std::uint64_t len) {
    std::vector<std::uint8_t> b(len);
    REQUIRE(copyFromUser(*mm, b.data(), a, len) == Errno::Ok);
    return b;
  }

  std::unique_ptr<Topology> topo;
  FabricFromTopology fab;
  Dram dram;
  Iommu iommu;
  DmaMapping dma;
  IommuTranslationStage stage;
  P2pdma p2pdma;
  P2pDmaMapper mapper;
  InvariantChecker violations;
  P2pChecker checker;
  ImporterDmaDirectory directory;
  P2pBarManager bar;
  BarExporter exporter;
  Lockdep lockdep;
  ScBlocker blocker;
  Options opts;
  std::unique_ptr<ImporterDma> importer;
};

std::vector<std::uint8_t> pattern(std::size_t n, std::uint8_t seed) {
  std::vector<std::uint8_t> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::uint8_t>(i * 13 + seed + (i >> 12));
  return v;
}

std::uint64_t nowPs(const tlm_utils::tlm_quantumkeeper& qk) {
  return sc_core::sc_time_stamp().value() + qk.get_local_time().value();
}

void bigQuantum() {
  tlm_utils::tlm_quantumkeeper::set_global_quantum(sc_core::sc_time(1, sc_core::SC_MS));
}

/// Writes `out` to `pages` pages at `va` one page per transfer, like packets, in a device thread
/// run to the end of the simulation; whether every transfer succeeded.
bool streamPages(ImporterDma& imp, Va va, std::uint64_t pages, const std::vector<std::uint8_t>& out) {
  bool ok = true;
  QkThread t("dev", [&](tlm_utils::tlm_quantumkeeper& qk) {
    for (std::uint64_t i = 0; i < pages; ++i)
      ok = imp.write(va + i * kPageSize, kPageSize, out.data() + i * kPageSize, qk).ok() && ok;
  });
  sc_core::sc_start();
  return ok;
}

}  // namespace

TEST_CASE("a device writes and reads a process range through the IOMMU, faulting once, with real bytes") {
  bigQuantum();
  Options o;
  o.importer.faultPs = 5'000'000;
  o.importer.mirror.iovaLink = false;  // the per-page path (6.12, the RFC); iovaLink: the next test
  DmaPlatform p(o);
  constexpr std::uint64_t kPages = 64, kLen = kPages * kPageSize;
  const Va va = p.mapAnon(kLen);
  ImporterDma& imp = p.importerOver(va, kPages);
  const std::vector<std::uint8_t> out = pattern(kLen - 300, 7);
  std::vector<std::uint8_t> back(kLen - 300);
  ImporterDmaResult w, r;
  std::uint64_t writeStart = 0, writeEnd = 0;
  QkThread t("dev", [&](tlm_utils::tlm_quantumkeeper& qk) {
    writeStart = nowPs(qk);
    w = imp.write(va + 100, out.size(), out.data(), qk);
    writeEnd = nowPs(qk);
    r = imp.read(va + 100, back.size(), back.data(), qk);
  });
  sc_core::sc_start();
  CHECK(w.ok());
  CHECK(r.ok());
  CHECK(p.cpu(va + 100, out.size()) == out);  // the CPU sees what the device wrote
  CHECK(back == out);
  CHECK(imp.stats().counterValue("device_faults") == 1);  // one fault mapped the whole range
  CHECK(w.bytes == out.size());
  // One burst per page: dma_map_page hands out IOVAs top down, so no two pages are contiguous.
  CHECK(w.bursts == kPages);
  CHECK(p.stage.stats().counterValue("aborted") == 0);
  CHECK(p.stage.stats().counterValue("requests") == w.bursts + r.bursts);
  CHECK(p.dram.stats().counterValue("bytes_written") == out.size());
  // The write cost the fault and at least its bytes at Gen4 x16 (~31.5 GB/s raw).
  CHECK(writeEnd - writeStart >= o.importer.faultPs + out.size() * 1000 / 32);
  CHECK(w.donePs == writeEnd);
  CHECK(imp.inFlightBursts() == 0);
  CHECK(p.violations.ok());
}

TEST_CASE("with iovaLink the window is IOVA-contiguous: bursts span pages, the root complex scatters them") {
  bigQuantum();
  Options o;
  o.importer.mirror.iovaLink = true;
  DmaPlatform p(o);
  constexpr std::uint64_t kPages = 64, kLen = kPages * kPageSize;
  const Va va = p.mapAnon(kLen);
  const std::vector<std::uint8_t> out = pattern(kLen - 300, 9);
  std::vector<std::uint8_t> back(kLen - 300);
  ImporterDmaResult w, r;
  {
    ImporterDma& imp = p.importerOver(va, kPages);
    QkThread t("dev", [&](tlm_utils::tlm_quantumkeeper& qk) {
      w = imp.write(va + 100, out.size(), out.data(), qk);
      r = imp.read(va + 100, back.size(), back.data(), qk);
    });
    sc_core::sc_start();
    REQUIRE(imp.mirror().iovaLinked());
    CHECK(imp.stats().counterValue("device_faults") == 1);
    CHECK(p.dma.stats().counterValue("iova_ranges") == 1);
    CHECK(p.dma.stats().counterValue("iova_links") == kPages);
    CHECK(p.dma.stats().counterValue("maps") == 0);  // no dma_map_page at all
  }
  REQUIRE(w.ok());
  REQUIRE(r.ok());
  CHECK(p.cpu(va + 100, out.size()) == out);  // every byte landed in its own frame
  CHECK(back == out);
  // 64 KiB bursts instead of one per page (dma_map_page's descending IOVAs).
  CHECK(w.bursts == kLen / ImporterDmaParams{}.maxBurstBytes);
  CHECK(r.bursts == w.bursts);
  CHECK(p.stage.stats().counterValue("requests") == w.bursts + r.bursts);
  CHECK(p.stage.stats().counterValue("pages") == 2 * kPages);
  CHECK(p.stage.stats().counterValue("aborted") == 0);
  CHECK(p.dram.stats().counterValue("bytes_written") == out.size());
  CHECK(p.violations.ok());
}

TEST_CASE("with iovaLink the frames behind a burst need not be contiguous: each lands in its own frame") {
  bigQuantum();
  Options o;
  o.importer.mirror.iovaLink = true;
  DmaPlatform p(o);
  constexpr std::uint64_t kPages = 8, kLen = kPages * kPageSize;
  // Interleave two mappings' first touches so that neither gets consecutive frames.
  const Va a = p.mapAnon(kLen), b = p.mapAnon(kLen);
  for (std::uint64_t i = 0; i < kPages; ++i) {
    p.fillPattern(a + i * kPageSize, 1);
    p.fillPattern(b + i * kPageSize, 1);
  }
  const std::vector<std::uint8_t> out = pattern(kLen, 5);
  ImporterDmaResult w;
  {
    ImporterDma& imp = p.importerOver(a, kPages);
    QkThread t("dev", [&](tlm_utils::tlm_quantumkeeper& qk) { w = imp.write(a, kLen, out.data(), qk); });
    sc_core::sc_start();
  }
  REQUIRE(w.ok());
  CHECK(w.bursts == 1);
  CHECK(p.stage.stats().counterValue("scattered_bursts") == 1);
  CHECK(p.stage.stats().counterValue("pieces") == kPages);
  CHECK(p.cpu(a, kLen) == out);
  p.importer.reset();
  CHECK(p.dma.stats().counterValue("iova_unlinks") == kPages);  // the mirror gave every page back
  CHECK(p.violations.ok());
}

TEST_CASE(
    "a device writes a peer's device-private pages through its BAR under the switch, checked by rule 3") {
  bigQuantum();
  DmaPlatform p;
  constexpr std::uint64_t kPages = 16, kLen = kPages * kPageSize;
  const Va va = p.mapAnon(kLen);
  p.fillPattern(va, kPages);
  p.migrateToDevice(va, va + kLen);  // now in gpu1's device memory (owner kDev0)
  ImporterDma& imp = p.importerOver(va, kPages);
  const std::vector<std::uint8_t> out = pattern(kLen, 3);
  std::vector<std::uint8_t> back(kLen);
  ImporterDmaResult w, r;
  QkThread t("dev", [&](tlm_utils::tlm_quantumkeeper& qk) {
    w = imp.write(va, kLen, out.data(), qk);
    r = imp.read(va, kLen, back.data(), qk);
  });
  sc_core::sc_start();
  REQUIRE(w.ok());
  REQUIRE(r.ok());
  CHECK(imp.mirror().kindAt(va) == HmmDmaKind::DevmemP2p);
  CHECK(back == out);
  // The bytes are in gpu1's frames (the CPU's access migrates them back and sees them).
  CHECK(p.cpu(va, kLen) == out);
  CHECK(p.fab.barMemory("gpu1").stats().counterValue("bytes_written") == kLen);
  CHECK(p.fab.rootComplex("hb0").stats().counterValue("p2p_transactions") == 0);  // stayed under sw0
  CHECK(p.dram.stats().counterValue("bytes_written") == 0);
  CHECK(p.directory.checkedPages() == 2 * kPages);  // every page of every burst, both directions
  CHECK(p.checker.barChecks() == 2 * kPages);
  CHECK(p.violations.ok());
}

namespace {
/// What munmapWhileInFlight saw.
struct InFlightUnmap {
  ImporterDmaResult first, second;  ///< the faulting write, the write left in flight
  std::uint64_t issuedAt = 0;       ///< when the second write was issued
  std::uint64_t unmapAt = 0, unmapDone = 0;
  Errno unmapErr = Errno::Inval;
};

/// A device writes 1 MiB (faulting it in), then issues the same write again and leaves it in
/// flight (~40 us at Gen4 x16); 1 us later a CPU thread munmaps the range.
InFlightUnmap munmapWhileInFlight(DmaPlatform& p, ImporterDma& imp, Va va, std::uint64_t len) {
  const std::vector<std::uint8_t> out = pattern(len, 1);
  InFlightUnmap r;
  QkThread dev("dev", [&](tlm_utils::tlm_quantumkeeper& qk) {
    r.first = imp.write(va, len, out.data(), qk);  // faults the range in
    qk.sync();
    r.issuedAt = sc_core::sc_time_stamp().value();
    r.second = imp.issueWrite(va, len, out.data(), qk);  // left in flight
    qk.sync();
    sc_core::wait(1, sc_core::SC_MS);
    imp.drain(qk);
  });
  QkThread cpu("cpu", [&](tlm_utils::tlm_quantumkeeper&) {
    // 1 us after the second write was issued, long before it completes.
    while (r.issuedAt == 0 || sc_core::sc_time_stamp().value() < r.issuedAt + 1'000'000)
      sc_core::wait(1, sc_core::SC_US);
    r.unmapAt = sc_core::sc_time_stamp().value();
    r.unmapErr = p.mm->munmap(va, len);
    r.unmapDone = sc_core::sc_time_stamp().value();
  });
  sc_core::sc_start();
  return r;
}
}  // namespace

TEST_CASE("munmap waits in SystemC until the device's bursts on the range completed") {
  bigQuantum();
  DmaPlatform p;
  constexpr std::uint64_t kPages = 256, kLen = kPages * kPageSize;  // 1 MiB: ~40 us at Gen4 x16
  const Va va = p.mapAnon(kLen);
  ImporterDma& imp = p.importerOver(va, kPages);
  const InFlightUnmap r = munmapWhileInFlight(p, imp, va, kLen);
  REQUIRE(r.first.ok());
  REQUIRE(r.second.ok());
  CHECK(r.unmapErr == Errno::Ok);
  CHECK(r.second.donePs > r.issuedAt + 1'000'000);  // still in flight when munmap started
  // munmap returned exactly when it completed (the device TLB invalidation overlapped the wait),
  // plus the strict IOMMU's invalidation of each page's dma_unmap_page.
  CHECK(r.second.donePs > r.unmapAt + ImporterMirrorParams{}.tlbInvalidationPs);
  CHECK(r.unmapDone == r.second.donePs + kPages * p.iommu.params().iotlbInvalidationLatencyPs);
  CHECK(imp.stats().counterValue("invalidation_waits") == 1);
  CHECK(imp.mirror().stats().counterValue("dma_waits") == 1);
  CHECK(p.violations.ok());
}

TEST_CASE("a traced importer shows its fault and munmap's invalidation waiting for the burst") {
  bigQuantum();
  DmaPlatform p;
  TraceSink trace;
  trace.enable("all");
  p.fab.engine("gpu0").setTimelineTrace(&trace);  // before the importer: it takes the engine's sink
  constexpr std::uint64_t kPages = 256, kLen = kPages * kPageSize;
  const Va va = p.mapAnon(kLen);
  ImporterDma& imp = p.importerOver(va, kPages);
  const InFlightUnmap r = munmapWhileInFlight(p, imp, va, kLen);
  const ImporterDmaResult& second = r.second;
  const std::uint64_t unmapAt = r.unmapAt, unmapDone = r.unmapDone;
  REQUIRE(second.donePs > unmapAt);
  const std::string track = "device." + imp.device().name();
  std::map<std::string, std::vector<nlohmann::json>> slices;  // by "track/name"
  const nlohmann::json j = nlohmann::json::parse(trace.toJson());
  std::map<int, std::string> tracks;
  for (const auto& e : j["traceEvents"])
    if (e["ph"] == "M") tracks[e["tid"].get<int>()] = e["args"]["name"];
  for (const auto& e : j["traceEvents"])
    if (e["ph"] == "X")
      slices[tracks.at(e["tid"].get<int>()) + "/" + e["name"].get<std::string>()].push_back(e);
  const auto& fault = slices[track + ".faults/device fault"];
  REQUIRE(fault.size() == 1);
  // The fault's service time, then the walk: per page walked and mapped, per handle_mm_fault.
  const ImporterMirrorParams m;
  const double walkPs = double(kPages * (m.walkPagePs + m.mapPagePs + m.faultPagePs));
  CHECK(fault[0]["dur"].get<double>() == Approx((double(ImporterDmaParams{}.faultPs) + walkPs) / 1e6));
  CHECK(imp.stats().counterValue("walk_ps") == std::uint64_t(walkPs));
  const auto& inval = slices[track + ".invalidations/invalidate unmap"];
  const auto& wait = slices[track + ".invalidations/wait for in-flight DMA"];
  REQUIRE(inval.size() == 1);
  REQUIRE(wait.size() == 1);
  // The invalidation runs from munmap's call to its return; the wait inside it ends with the burst.
  CHECK(inval[0]["ts"].get<double>() == Approx(double(unmapAt) / 1e6));
  CHECK(inval[0]["dur"].get<double>() == Approx(double(unmapDone - unmapAt) / 1e6));
  CHECK(wait[0]["ts"].get<double>() + wait[0]["dur"].get<double>() == Approx(double(second.donePs) / 1e6));
}

TEST_CASE("an importer that acks an invalidation without waiting is caught when its burst completes") {
  bigQuantum();
  Options o;
  o.importer.mirror.misbehave = ImporterMisbehaviour::AckWithoutWaiting;
  // No IOMMU: behind a strict one the 256 dma_unmap_page IOTLB invalidations (128 us) would
  // outlast the burst, and the early ack would go unseen.
  o.iommu = IommuMode::Off;
  DmaPlatform p(o);
  constexpr std::uint64_t kPages = 256, kLen = kPages * kPageSize;
  const Va va = p.mapAnon(kLen);
  ImporterDma& imp = p.importerOver(va, kPages);
  ImporterDmaResult second;
  std::uint64_t issuedAt = 0, unmapDone = 0;
  Errno unmapErr = Errno::Inval;
  QkThread dev("dev", [&](tlm_utils::tlm_quantumkeeper& qk) {
    imp.write(va, kLen, nullptr, qk);
    qk.sync();
    issuedAt = sc_core::sc_time_stamp().value();
    second = imp.issueWrite(va, kLen, nullptr, qk);
    qk.sync();
    sc_core::wait(1, sc_core::SC_MS);
    imp.drain(qk);
  });
  QkThread cpu("cpu", [&](tlm_utils::tlm_quantumkeeper&) {
    while (issuedAt == 0 || sc_core::sc_time_stamp().value() < issuedAt + 1'000'000)
      sc_core::wait(1, sc_core::SC_US);
    unmapErr = p.mm->munmap(va, kLen);
    unmapDone = sc_core::sc_time_stamp().value();
  });
  sc_core::sc_start();
  CHECK(unmapErr == Errno::Ok);
  CHECK(unmapDone < second.donePs);  // returned while the device still wrote
  CHECK(p.violations.count(CheckRule::StaleTranslation) > 0);
}

TEST_CASE("without an IOMMU, pages contiguous in frames coalesce into bursts of at most maxBurstBytes") {
  bigQuantum();
  Options o;
  o.iommu = IommuMode::Off;
  o.importer.maxBurstBytes = 16 * kPageSize;
  DmaPlatform p(o);
  constexpr std::uint64_t kPages = 64, kLen = kPages * kPageSize;
  const Va va = p.mapAnon(kLen);
  ImporterDma& imp = p.importerOver(va, kPages);
  const std::vector<std::uint8_t> out = pattern(kLen, 9);
  ImporterDmaResult w;
  QkThread t("dev", [&](tlm_utils::tlm_quantumkeeper& qk) { w = imp.write(va, kLen, out.data(), qk); });
  sc_core::sc_start();
  REQUIRE(w.ok());
  CHECK(p.cpu(va, kLen) == out);
  // Frames of a fresh anonymous range are handed out in order: runs break only where a frame
  // does not follow its predecessor, and every run is cut at 16 pages.
  std::uint64_t breaks = 0;
  for (std::uint64_t i = 1; i < kPages; ++i)
    breaks +=
        imp.mirror().addrAt(va + i * kPageSize) != imp.mirror().addrAt(va + (i - 1) * kPageSize) + kPageSize;
  CHECK(breaks < 4);
  CHECK(w.bursts >= kPages / 16);
  CHECK(w.bursts <= kPages / 16 + breaks);
  CHECK(imp.stats().counterValue("bursts") == w.bursts);
  CHECK(p.violations.ok());
}

TEST_CASE("timing-only transfers move no bytes and take the same time as real ones") {
  bigQuantum();
  Options real, timing;
  real.prefix = "a_";
  timing.prefix = "b_";
  timing.timingOnly = true;
  timing.importer.timingOnly = true;
  DmaPlatform a(real), b(timing);
  constexpr std::uint64_t kPages = 32, kLen = kPages * kPageSize;
  const std::vector<std::uint8_t> out = pattern(kLen, 5);
  DmaPlatform* ps[] = {&a, &b};
  std::vector<std::unique_ptr<QkThread>> threads;
  ImporterDmaResult res[2];
  std::uint64_t took[2] = {};
  Va va[2];
  for (int i = 0; i < 2; ++i) {
    va[i] = ps[i]->mapAnon(kLen);
    ImporterDma& imp = ps[i]->importerOver(va[i], kPages);
    threads.push_back(std::make_unique<QkThread>(("dev" + std::to_string(i)).c_str(),
                                                 [&, i, &imp = imp](tlm_utils::tlm_quantumkeeper& qk) {
                                                   const std::uint64_t t0 = nowPs(qk);
                                                   res[i] = imp.write(va[i], kLen, out.data(), qk);
                                                   took[i] = nowPs(qk) - t0;
                                                 }));
  }
  sc_core::sc_start();
  REQUIRE(res[0].ok());
  REQUIRE(res[1].ok());
  CHECK(took[1] == took[0]);
  CHECK(res[1].bursts == res[0].bursts);
  CHECK(a.cpu(va[0], kLen) == out);
  CHECK(b.cpu(va[1], kLen) == std::vector<std::uint8_t>(kLen, 0));  // nothing was written
  CHECK(b.dram.stats().counterValue("bytes_written") == kLen);      // but the DRAM was charged
  CHECK(b.fab.engine("gpu0").scratchBytes() == 0);
}

TEST_CASE("an exporter reusing a BAR window before revoking is caught by rule 3 at its BAR target") {
  // LRU aperture of two 2 MiB windows, exporter misbehaving: it re-points the window gpu0 still
  // uses at another chunk without invalidating gpu0. gpu0's next burst reaches the BAR through
  // its (still valid) translation; the BAR target's observer reports it, naming the event.
  bigQuantum();
  Options o;
  o.bar.policy = BarPolicy::LruReclaim;
  o.bar.apertureBytes = 4ull << 20;
  o.bar.reuseBeforeRevoke = true;
  DmaPlatform p(o);
  constexpr std::uint64_t kPages = 4, kLen = kPages * kPageSize;
  const Va va = p.mapAnon(kLen);
  p.fillPattern(va, kPages);
  p.migrateToDevice(va, va + kLen);
  ImporterDma& imp = p.importerOver(va, kPages);
  const std::vector<std::uint8_t> first = pattern(kLen, 1), second = pattern(kLen, 2);
  ImporterDmaResult w1, w2;
  std::size_t afterFirst = 99;
  QkThread t("dev", [&](tlm_utils::tlm_quantumkeeper& qk) {
    w1 = imp.write(va, kLen, first.data(), qk);
    afterFirst = p.violations.violations().size();
    // Another importer maps two far chunks: the second takes gpu0's window by force.
    for (std::uint64_t page : {2048ull, 3072ull}) {
      Pa cpu;
      if (p.bar.map(p.pci("gpu2"), DevPage(page), 1, &cpu).ok()) p.exporter.syncWindow(DevPage(page));
    }
    w2 = imp.write(va, kLen, second.data(), qk);
  });
  sc_core::sc_start();
  REQUIRE(w1.ok());
  CHECK(w2.ok());  // the fabric delivered it: the hardware does not know
  CHECK(afterFirst == 0);
  CHECK(p.violations.count(CheckRule::OutsideBarWindow) == kPages);
  CHECK(p.violations.count(CheckRule::StaleTranslation) == 0);
  const std::string msg = InvariantChecker::format(p.violations.violations().at(0));
  CHECK(msg.find("forced") != std::string::npos);
  // The bytes went where the window now points: into the other importer's chunk.
  std::vector<std::uint8_t> landed(kPageSize);
  const Pfn base = p.dev->chunk(0).pgmap.pfnFirst;
  bool foundElsewhere = false;
  for (std::uint64_t page : {2048ull, 3072ull}) {
    for (std::uint64_t i = 0; i < 512 && !foundElsewhere; ++i) {
      p.pm.read(paOf(base + page + i), landed.data(), kPageSize);
      foundElsewhere = std::equal(landed.begin(), landed.end(), second.begin());
    }
  }
  CHECK(foundElsewhere);
}

TEST_CASE("a device on another root port reaches the peer's BAR through the root complex and the IOMMU") {
  bigQuantum();
  Options o;
  o.importerName = "gpu2";
  DmaPlatform p(o);
  constexpr std::uint64_t kPages = 8, kLen = kPages * kPageSize;
  const Va va = p.mapAnon(kLen);
  p.fillPattern(va, kPages);
  p.migrateToDevice(va, va + kLen);
  ImporterDma& imp = p.importerOver(va, kPages);
  const std::vector<std::uint8_t> out = pattern(kLen, 4);
  ImporterDmaResult w;
  QkThread t("dev", [&](tlm_utils::tlm_quantumkeeper& qk) { w = imp.write(va, kLen, out.data(), qk); });
  sc_core::sc_start();
  REQUIRE(w.ok());
  CHECK(imp.mirror().kindAt(va) == HmmDmaKind::DevmemP2p);
  CHECK(p.cpu(va, kLen) == out);
  CHECK(p.fab.rootComplex("hb0").stats().counterValue("p2p_transactions") == w.bursts);
  CHECK(p.stage.stats().counterValue("requests") == w.bursts);  // IOVA -> BAR through the IOMMU
  CHECK(p.checker.barChecks() == kPages);
  CHECK(p.violations.ok());
}

TEST_CASE("bursts kept in flight across transfers are all retired, none leaked") {
  // Regression (reported by the camera helper): compacting the in-flight list moved a kept burst
  // onto itself, which emptied it, so its DMAs never ended and the next invalidation hung.
  bigQuantum();
  DmaPlatform p;
  constexpr std::uint64_t kPages = 16, kLen = kPages * kPageSize;
  const Va va = p.mapAnon(kLen);
  ImporterDma& imp = p.importerOver(va, kPages);
  std::size_t inFlightBetween = 0, mirrorAfter = 99;
  QkThread t("dev", [&](tlm_utils::tlm_quantumkeeper& qk) {
    imp.write(va, kLen, nullptr, qk);  // fault in
    imp.issueRead(va, kLen, nullptr, qk);
    imp.issueRead(va, kLen, nullptr, qk);  // retires what completed, keeps the rest
    inFlightBetween = imp.inFlightBursts();
    imp.drain(qk);
    mirrorAfter = imp.mirror().inFlight(va, va + kLen);
  });
  sc_core::sc_start();
  CHECK(inFlightBetween > 0);
  CHECK(mirrorAfter == 0);
  CHECK(p.mm->munmap(va, kLen) == Errno::Ok);  // no DMA left to wait for
  CHECK(p.violations.ok());
}

TEST_CASE("with faultAheadPastEnd a streamer of small transfers takes one fault per faultAheadPages") {
  bigQuantum();
  Options o;
  o.importer.faultAheadPages = 16;
  o.importer.faultAheadPastEnd = true;
  DmaPlatform p(o);
  constexpr std::uint64_t kPages = 40, kLen = kPages * kPageSize;
  const Va va = p.mapAnon(kLen);
  ImporterDma& imp = p.importerOver(va, kPages);
  const std::vector<std::uint8_t> out = pattern(kLen, 6);
  CHECK(streamPages(imp, va, kPages, out));
  CHECK(imp.stats().counterValue("device_faults") ==
        3);  // pages 0, 16, 32 (the last run stops at the window)
  CHECK(p.cpu(va, kLen) == out);
  CHECK(p.violations.ok());
}

TEST_CASE(
    "with faultAroundPages a streamer of page transfers takes one fault per block, each page walked once") {
  bigQuantum();
  Options o;
  o.importer.faultAroundPages = 16;
  o.importer.mirror.walkPagePs = 20'000;
  o.importer.mirror.mapPagePs = 100'000;
  o.importer.mirror.faultPagePs = 500'000;
  DmaPlatform p(o);
  constexpr std::uint64_t kPages = 40, kLen = kPages * kPageSize;
  const Va va = p.mapAnon(kLen);
  ImporterDma& imp = p.importerOver(va, kPages);
  const std::vector<std::uint8_t> out = pattern(kLen, 7);
  CHECK(streamPages(imp, va, kPages, out));
  CHECK(imp.stats().counterValue("device_faults") == 3);  // pages 0, 16, 32 (40 pages: the last block is 8)
  CHECK(imp.mirror().stats().counterValue("commits") == 3);
  // Each page is walked and mapped once (no block maps a mapped page again), and faulted in once.
  CHECK(imp.stats().counterValue("walk_ps") == kPages * (20'000 + 100'000) + kPages * 500'000);
  CHECK(p.cpu(va, kLen) == out);
  CHECK(p.violations.ok());
}

TEST_CASE(
    "a fault of a transfer that is a piece of a larger DMA maps to the DMA's end, not past mapped pages") {
  bigQuantum();
  DmaPlatform p;
  constexpr std::uint64_t kPages = 24, kLen = kPages * kPageSize;
  const Va va = p.mapAnon(kLen);
  ImporterDma& imp = p.importerOver(va, kPages);
  const std::vector<std::uint8_t> out = pattern(kLen, 8);
  bool ok = true;
  std::uint64_t commitsBefore = 0;
  QkThread t("dev", [&](tlm_utils::tlm_quantumkeeper& qk) {
    // Pages 4 and 5 are mapped already: the first fault stops before them.
    ok = imp.write(va + 4 * kPageSize, 2 * kPageSize, out.data() + 4 * kPageSize, qk).ok();
    commitsBefore = imp.mirror().stats().counterValue("commits");
    // Three DMAs of 8 pages (a descriptor's buffer each), sent page by page.
    for (std::uint64_t d = 0; d < 3; ++d) {
      const Va dmaEnd = va + (d + 1) * 8 * kPageSize;
      for (std::uint64_t i = d * 8; i < (d + 1) * 8; ++i)
        ok = imp.issueWrite(va + i * kPageSize, kPageSize, out.data() + i * kPageSize, qk, dmaEnd).ok() && ok;
      imp.drain(qk);
    }
  });
  sc_core::sc_start();
  CHECK(ok);
  // [4, 6) by the first write; then [0, 4), [6, 8), [8, 16), [16, 24): one fault each.
  CHECK(imp.stats().counterValue("device_faults") == 5);
  CHECK(imp.mirror().stats().counterValue("commits") - commitsBefore == 4);
  CHECK(p.cpu(va, kLen) == out);
  CHECK(p.violations.ok());
}

TEST_CASE("the fault-around block stays inside the faulting page's vma") {
  bigQuantum();
  Options o;
  o.importer.faultAroundPages = 16;
  DmaPlatform p(o);
  constexpr std::uint64_t kPages = 16, kLen = kPages * kPageSize;
  const Va va = p.mapAnon(kLen);
  REQUIRE(p.mm->munmap(va + 12 * kPageSize, 4 * kPageSize) == Errno::Ok);  // a hole in the block
  ImporterDma& imp = p.importerOver(va, kPages);
  const std::vector<std::uint8_t> out = pattern(12 * kPageSize, 9);
  bool ok = true;
  QkThread t("dev", [&](tlm_utils::tlm_quantumkeeper& qk) {
    for (std::uint64_t i = 0; i < 12; ++i)
      ok = imp.write(va + i * kPageSize, kPageSize, out.data() + i * kPageSize, qk).ok() && ok;
  });
  sc_core::sc_start();
  CHECK(ok);
  CHECK(imp.stats().counterValue("device_faults") == 1);  // [0, 12) in one, not a page per fault
  CHECK(imp.mirror().stats().counterValue("commits") == 1);
  CHECK(p.cpu(va, 12 * kPageSize) == out);
  CHECK(p.violations.ok());
}

TEST_CASE("a device fault costs faultPs plus the walk, each handle_mm_fault and the map of every page") {
  bigQuantum();
  Options plain, costed;
  plain.prefix = "a_";
  costed.prefix = "b_";
  for (Options* o : {&plain, &costed}) {
    o->importer.faultPs = 3'000'000;
    o->importer.mirror.walkPagePs = 0;
    o->importer.mirror.faultPagePs = 0;
    o->importer.mirror.mapPagePs = 0;
  }
  costed.importer.mirror.walkPagePs = 17'000;
  costed.importer.mirror.faultPagePs = 410'000;
  costed.importer.mirror.mapPagePs = 123'000;
  DmaPlatform a(plain), b(costed);
  constexpr std::uint64_t kPages = 48, kLen = kPages * kPageSize;
  const std::vector<std::uint8_t> out = pattern(kLen, 4);
  DmaPlatform* ps[] = {&a, &b};
  std::vector<std::unique_ptr<QkThread>> threads;
  ImporterDmaResult res[2];
  std::uint64_t took[2] = {}, faults[2] = {};
  for (int i = 0; i < 2; ++i) {
    const Va va = ps[i]->mapAnon(kLen);
    ImporterDma& imp = ps[i]->importerOver(va, kPages);
    threads.push_back(std::make_unique<QkThread>(
        ("dev" + std::to_string(i)).c_str(), [&, i, va, &imp = imp](tlm_utils::tlm_quantumkeeper& qk) {
          const std::uint64_t f0 = ps[i]->mm->vmEvents().pgfault.value();
          const std::uint64_t t0 = nowPs(qk);
          res[i] = imp.write(va, kLen, out.data(), qk);
          took[i] = nowPs(qk) - t0;
          faults[i] = ps[i]->mm->vmEvents().pgfault.value() - f0;
        }));
  }
  sc_core::sc_start();
  REQUIRE(res[0].ok());
  REQUIRE(res[1].ok());
  CHECK(a.importer->stats().counterValue("device_faults") == 1);
  CHECK(b.importer->stats().counterValue("device_faults") == 1);
  CHECK(faults[1] == kPages);  // hmm_range_fault faulted every untouched page in (write faults)
  // The walk of the one fault is charged to the device before its bursts, to the ps.
  const std::uint64_t walk = kPages * (17'000 + 123'000) + faults[1] * 410'000;
  CHECK(b.importer->stats().counterValue("walk_ps") == walk);
  CHECK(a.importer->stats().counterValue("walk_ps") == 0);
  CHECK(took[1] - took[0] == walk);
  CHECK(a.violations.ok());
  CHECK(b.violations.ok());
}

namespace {
/// A device writes [va, va + len) (faulting it in, bursts completed); `gapPs` later a second
/// thread munmaps it. Returns how long munmap took.
std::uint64_t munmapAfterDma(DmaPlatform& p, ImporterDma& imp, Va va, std::uint64_t len) {
  const std::vector<std::uint8_t> out = pattern(len, 2);
  std::uint64_t doneAt = 0, took = 0;
  bool written = false;
  Errno unmapped = Errno::Inval;
  QkThread dev("dev", [&](tlm_utils::tlm_quantumkeeper& qk) {
    written = imp.write(va, len, out.data(), qk).ok();
    qk.sync();
    doneAt = sc_core::sc_time_stamp().value();
  });
  QkThread cpu("cpu", [&](tlm_utils::tlm_quantumkeeper&) {
    while (doneAt == 0) sc_core::wait(1, sc_core::SC_US);
    const std::uint64_t t0 = sc_core::sc_time_stamp().value();
    unmapped = p.mm->munmap(va, len);
    took = sc_core::sc_time_stamp().value() - t0;
  });
  sc_core::sc_start();
  REQUIRE(written);
  REQUIRE(unmapped == Errno::Ok);
  CHECK(imp.mirror().stats().counterValue("zapped_pages") == len / kPageSize);
  return took;
}
}  // namespace

TEST_CASE("without an IOMMU, munmap of an imported range waits exactly the device TLB invalidation") {
  bigQuantum();
  Options o;
  o.iommu = IommuMode::Off;
  o.importer.mirror.tlbInvalidationPs = 1'700'000;
  DmaPlatform p(o);
  constexpr std::uint64_t kPages = 32, kLen = kPages * kPageSize;
  const Va va = p.mapAnon(kLen);
  ImporterDma& imp = p.importerOver(va, kPages);
  CHECK(munmapAfterDma(p, imp, va, kLen) == 1'700'000);
  CHECK(imp.stats().counterValue("tlb_invalidation_ps") == 1'700'000);
  CHECK(imp.stats().counterValue("unmap_ps") == 0);  // dma-direct unmaps invalidate nothing
  CHECK(imp.stats().counterValue("invalidation_waits") == 0);
  CHECK(p.violations.ok());
}

TEST_CASE("behind a strict IOMMU, munmap also waits one IOTLB invalidation per dma_unmap_page") {
  bigQuantum();
  Options o;
  o.importer.mirror.tlbInvalidationPs = 1'300'000;
  DmaPlatform p(o);
  constexpr std::uint64_t kPages = 32, kLen = kPages * kPageSize;
  const Va va = p.mapAnon(kLen);
  ImporterDma& imp = p.importerOver(va, kPages);
  const std::uint64_t before = p.iommu.invalidationPs();
  const std::uint64_t iotlb = p.iommu.params().iotlbInvalidationLatencyPs;
  CHECK(munmapAfterDma(p, imp, va, kLen) == 1'300'000 + kPages * iotlb);
  CHECK(p.iommu.invalidationPs() - before == kPages * iotlb);
  CHECK(imp.stats().counterValue("unmap_ps") == kPages * iotlb);
  CHECK(p.violations.ok());
}
