// IommuTranslationStage: the Iommu on the root complex's upstream path. Pure cases first, then
// SystemC cases through "link"'s fabric (one elaboration per test case = per process).
#include <catch2/catch.hpp>

#include <functional>
#include <vector>

#include "models/pcie/ats_cache.h"
#include "models/pcie/iommu_translation_stage.h"
#include "sim/rng.h"
#include "sim/units.h"
#include "tests/unit/pcie/fabric_test_util.h"

using namespace hmmsim;
using namespace hmmsim::test;

namespace {
constexpr Bdf kDev{0, 1, 0, 0};

struct PureFixture {
  PureFixture()
      : iommu("top.iommu", IommuParams{}),
        dom(iommu.domainAlloc(IommuDomainType::Dma)),
        stage("top.rc.iommu", iommu) {
    REQUIRE(iommu.attachDevice(dom, kDev) == Errno::Ok);
  }
  Iommu iommu;
  IommuDomain& dom;
  IommuTranslationStage stage;
};

PcieLinkParams gen3x8Link() {
  PcieLinkParams l;
  l.config.gen = PcieGen::Gen3;
  l.config.lanes = 8;
  return l;
}

PcieDmaEngineParams engineParams(Bdf rid, std::uint32_t tags = 256) {
  PcieDmaEngineParams d;
  d.requester = rid;
  d.link = gen3x8Link().config;
  d.readTags = tags;
  return d;
}
}  // namespace

// ---- pure ----

TEST_CASE("the stage returns the IOMMU's physical address and its latency") {
  PureFixture f;
  REQUIRE(f.iommu.map(f.dom, Iova(0x10000), Pa(0x5000'0000), kPageSize, kIommuRead | kIommuWrite) ==
          Errno::Ok);
  UpstreamTranslation t = f.stage.translateUpstream(kDev, 0x10040, 64, true, false, 0);
  CHECK(t.status == CplStatus::SuccessfulCompletion);
  CHECK(t.addr == 0x5000'0040);
  CHECK(t.latencyPs == 230'000);  // IOTLB lookup + 4-level walk with defaults
}

TEST_CASE("a translation fault aborts the request with Unsupported Request") {
  PureFixture f;
  UpstreamTranslation t = f.stage.translateUpstream(kDev, 0x10040, 64, false, false, 0);
  CHECK(t.status == CplStatus::UnsupportedRequest);
  CHECK(f.iommu.faultRecords().size() == 1);
  CHECK(f.stage.stats().counterValue("aborted") == 1);
}

TEST_CASE("a burst over several pages is translated page by page and charged its slowest page") {
  PureFixture f;
  REQUIRE(f.iommu.map(f.dom, Iova(0x10000), Pa(0x5000'0000), 2 * kPageSize, kIommuRead) == Errno::Ok);
  f.iommu.translate(kDev, Iova(0x10000), false, 0);  // first page now in the IOTLB
  UpstreamTranslation t = f.stage.translateUpstream(kDev, 0x10800, 4096, false, false, 1'000'000);
  CHECK(t.status == CplStatus::SuccessfulCompletion);
  CHECK(t.addr == 0x5000'0800);
  CHECK(f.stage.stats().counterValue("pages") == 2);
  CHECK(t.latencyPs == 230'000);  // the second page walked
}

TEST_CASE("a burst across physically discontiguous pages comes back as its contiguous pieces") {
  PureFixture f;
  REQUIRE(f.iommu.map(f.dom, Iova(0x10000), Pa(0x5000'0000), kPageSize, kIommuRead) == Errno::Ok);
  REQUIRE(f.iommu.map(f.dom, Iova(0x11000), Pa(0x7000'0000), kPageSize, kIommuRead) == Errno::Ok);
  REQUIRE(f.iommu.map(f.dom, Iova(0x12000), Pa(0x7000'1000), kPageSize, kIommuRead) == Errno::Ok);
  const UpstreamTranslation t =
      f.stage.translateUpstream(kDev, 0x10800, 2 * kPageSize + 0x100, false, false, 0);
  CHECK(t.status == CplStatus::SuccessfulCompletion);
  CHECK(t.addr == 0x5000'0800);
  REQUIRE(t.pieces != nullptr);
  REQUIRE(t.pieces->size() == 2);  // the second and third pages are contiguous: one piece
  CHECK((*t.pieces)[0].offset == 0);
  CHECK((*t.pieces)[0].addr == 0x5000'0800);
  CHECK((*t.pieces)[0].len == 0x800);
  CHECK((*t.pieces)[1].offset == 0x800);
  CHECK((*t.pieces)[1].addr == 0x7000'0000);
  CHECK((*t.pieces)[1].len == kPageSize + 0x900);
  CHECK(f.stage.stats().counterValue("scattered_bursts") == 1);
  CHECK(f.stage.stats().counterValue("pieces") == 2);
  // A contiguous burst has no pieces.
  CHECK(f.stage.translateUpstream(kDev, 0x11000, 2 * kPageSize, false, false, 0).pieces == nullptr);
  CHECK(f.stage.stats().counterValue("scattered_bursts") == 1);
}

TEST_CASE("an ATS-translated request passes only for a device with ATS enabled") {
  PureFixture f;
  CHECK(f.stage.translateUpstream(kDev, 0x5000'0000, 64, false, true, 0).status ==
        CplStatus::UnsupportedRequest);
  AtsCache atc("top.dev.atc", kDev, f.iommu, AtsCacheParams{});
  REQUIRE(f.iommu.enableAts(kDev, atc) == Errno::Ok);
  UpstreamTranslation t = f.stage.translateUpstream(kDev, 0x5000'0000, 64, false, true, 0);
  CHECK(t.status == CplStatus::SuccessfulCompletion);
  CHECK(t.addr == 0x5000'0000);
}

TEST_CASE("the stage advances the DMA layer's flush-queue clock so the lazy window closes on time") {
  IommuParams ip;
  ip.invalidation = IommuInvalidation::Lazy;
  Iommu iommu("top.iommu", ip);
  DmaMapping dma("top.dma", iommu, DmaMappingParams{});
  Device dev("dev");
  DmaDeviceParams dp;
  dp.bdf = kDev;
  REQUIRE(dma.attachDevice(dev, dp) == Errno::Ok);
  IommuTranslationStage stage("top.rc.iommu", iommu, &dma);
  DmaAddr a = dma.dmaMapPage(dev, Pa(0x1000'0000), kPageSize, DmaDir::ToDevice);
  REQUIRE(stage.translateUpstream(kDev, a.value(), 64, false, false, 0).status ==
          CplStatus::SuccessfulCompletion);
  REQUIRE(dma.dmaUnmapPage(dev, a, kPageSize, DmaDir::ToDevice) == Errno::Ok);
  CHECK(stage.translateUpstream(kDev, a.value(), 64, false, false, 5'000'000'000).status ==
        CplStatus::SuccessfulCompletion);  // stale, inside the 10 ms window
  CHECK(stage.translateUpstream(kDev, a.value(), 64, false, false, 10'000'000'000).status ==
        CplStatus::UnsupportedRequest);  // the timer flushed the queue first
  CHECK(iommu.stats().counterValue("stale_accesses") == 1);
}

// ---- SystemC, through the fabric ----

TEST_CASE("DMA writes through the root complex land at the IOMMU-translated physical address") {
  Iommu iommu("top.iommu", IommuParams{});
  IommuDomain& d = iommu.domainAlloc(IommuDomainType::Dma);
  REQUIRE(iommu.attachDevice(d, kDev) == Errno::Ok);
  REQUIRE(iommu.map(d, Iova(0x10000), Pa(0x200'0000), kPageSize, kIommuWrite) == Errno::Ok);
  IommuTranslationStage stage("top.rc.iommu", iommu);

  PcieFabric fab("fab");
  PcieMemoryTargetParams mem = hostMemory();
  mem.storeData = true;
  const auto rc = fab.addRootComplex("rc", PcieRootComplexParams{}, mem);
  const auto ep = fab.addEndpoint("ep", rc, gen3x8Link(), engineParams(kDev));
  fab.finalize();
  fab.rootComplex(rc).setTranslationStage(&stage);
  std::vector<std::uint8_t> data(256);
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = std::uint8_t(i * 7 + 1);
  CplStatus st = CplStatus::CompleterAbort;
  QkThread t("t", [&](tlm_utils::tlm_quantumkeeper& qk) {
    st = fab.engine(ep).write(0x10100, data.size(), data.data(), qk);
  });
  sc_core::sc_start();
  CHECK(st == CplStatus::SuccessfulCompletion);
  std::vector<std::uint8_t> back(data.size());
  fab.memory(rc).peek(0x200'0100, back.data(), back.size());
  CHECK(back == data);
  CHECK(iommu.stats().counterValue("translations") >= 1);
}

TEST_CASE("a DMA read of an unmapped IOVA through the root complex completes with Unsupported Request") {
  Iommu iommu("top.iommu", IommuParams{});
  IommuDomain& d = iommu.domainAlloc(IommuDomainType::Dma);
  REQUIRE(iommu.attachDevice(d, kDev) == Errno::Ok);
  IommuTranslationStage stage("top.rc.iommu", iommu);
  PcieFabric fab("fab");
  const auto rc = fab.addRootComplex("rc", PcieRootComplexParams{}, hostMemory());
  const auto ep = fab.addEndpoint("ep", rc, gen3x8Link(), engineParams(kDev));
  fab.finalize();
  fab.rootComplex(rc).setTranslationStage(&stage);
  CplStatus st = CplStatus::SuccessfulCompletion;
  QkThread t("t",
             [&](tlm_utils::tlm_quantumkeeper& qk) { st = fab.engine(ep).read(0x10000, 64, nullptr, qk); });
  sc_core::sc_start();
  CHECK(st == CplStatus::UnsupportedRequest);
  REQUIRE(iommu.faultRecords().size() == 1);
  CHECK(iommu.faultRecords()[0].iova == Iova(0x10000));
}

TEST_CASE(
    "through the fabric, 64 B random reads over 64 MiB of 4 KiB mappings run at about a third of a 256 KiB "
    "window") {
  // Two devices behind one root complex take turns: A reads a 256 KiB window, then B a 64 MiB
  // window, each with 64 tags. The link, root complex and memory timing are "link"'s models.
  constexpr Bdf kA{0, 1, 0, 0}, kB{0, 2, 0, 0};
  constexpr unsigned kReads = 6'000;
  IommuParams ip;
  ip.largePages = false;
  Iommu iommu("top.iommu", ip);
  IommuDomain& da = iommu.domainAlloc(IommuDomainType::Dma);
  IommuDomain& db = iommu.domainAlloc(IommuDomainType::Dma);
  REQUIRE(iommu.attachDevice(da, kA) == Errno::Ok);
  REQUIRE(iommu.attachDevice(db, kB) == Errno::Ok);
  REQUIRE(iommu.map(da, Iova(0x4000'0000), Pa(0x1000'0000), 256 * KiB, kIommuRead) == Errno::Ok);
  REQUIRE(iommu.map(db, Iova(0x4000'0000), Pa(0x1000'0000), 64 * MiB, kIommuRead) == Errno::Ok);
  IommuTranslationStage stage("top.rc.iommu", iommu);

  PcieFabric fab("fab");
  const auto rc = fab.addRootComplex("rc", PcieRootComplexParams{}, hostMemory());
  const auto a = fab.addEndpoint("a", rc, gen3x8Link(), engineParams(kA, 64));
  const auto b = fab.addEndpoint("b", rc, gen3x8Link(), engineParams(kB, 64));
  fab.finalize();
  fab.rootComplex(rc).setTranslationStage(&stage);

  auto sweep = [&](PcieDmaEngine& eng, std::uint64_t window, std::vector<std::uint64_t>& done, unsigned& bad,
                   tlm_utils::tlm_quantumkeeper& qk) {
    Rng rng(7);
    for (unsigned i = 0; i < kReads; ++i) {
      DmaIssue r = eng.issueRead(0x4000'0000 + rng.below(window / 64) * 64, 64, nullptr, qk);
      done.push_back(r.donePs);
      bad += r.status == CplStatus::SuccessfulCompletion ? 0 : 1;
    }
  };
  std::vector<std::uint64_t> doneA, doneB;
  unsigned badA = 0, badB = 0;
  QkThread t("t", [&](tlm_utils::tlm_quantumkeeper& qk) {
    sweep(fab.engine(a), 256 * KiB, doneA, badA, qk);
    qk.sync();
    sc_core::wait(sc_core::sc_time(10, sc_core::SC_US));
    sweep(fab.engine(b), 64 * MiB, doneB, badB, qk);
  });
  sc_core::sc_start();
  CHECK(badA == 0);
  CHECK(badB == 0);
  // Skip the first 1000 completions of each phase (cold IOTLB, pipeline fill).
  const auto gbps = [](std::vector<std::uint64_t> v) {
    v.erase(v.begin(), v.begin() + 1000);
    return StreamDriver::gbps(v, 64);
  };
  const double ga = gbps(doneA), gb = gbps(doneB);
  std::printf("fabric: 256 KiB window %.2f Gb/s, 64 MiB window %.2f Gb/s, ratio %.3f\n", ga, gb, gb / ga);
  CHECK(gb / ga == Approx(0.36).margin(0.06));
}
