// The checker proves importers obey invalidation: each misbehaviour switch is caught, and correct
// importers are never flagged in seeded randomized invalidation storms.

#include <catch2/catch.hpp>

#include "sim/rng.h"
#include "tests/unit/hmm/p2p_test_support.h"

using namespace hmmsim;
using namespace hmmsim::test;

namespace {
constexpr std::uint64_t kP = kPageSize;

ImporterMirrorParams misbehaving(ImporterMisbehaviour m) {
  ImporterMirrorParams p;
  p.misbehave = m;
  return p;
}
}  // namespace

TEST_CASE(
    "checker: an importer ignoring invalidations is caught holding mappings and using stale translations",
    "[hmm][p2p][checker]") {
  P2pFixture f;
  const Va a = f.mapAnon(4 * kP);
  f.fillPattern(a, 4, 0x10);
  ImporterMirror& m = f.importer("gpu0", a, 4, misbehaving(ImporterMisbehaviour::IgnoreInvalidations));
  REQUIRE(m.map(a, a + 4 * kP, false) == HmmStatus::Ok);
  REQUIRE(f.violations.ok());
  REQUIRE(f.mm->munmap(a, 4 * kP) == Errno::Ok);
  CHECK(f.violations.count(CheckRule::StaleTranslation) == 4);  // 4 pages still held at return
  std::uint64_t v = 0;
  m.dmaRead(a + kP, &v, sizeof v);
  CHECK(f.violations.count(CheckRule::StaleTranslation) == 5);  // the access through it
  CHECK(f.violations.count(CheckRule::FreedFrame) == 1);        // into a freed frame
  const Violation& last = f.violations.violations().back();
  CHECK(last.device == "gpu0");
  CHECK(InvariantChecker::format(f.violations.violations()[4]).find("unmap invalidation") !=
        std::string::npos);
}

TEST_CASE("checker: a stale DMA is reported when its burst is noted and again when it ends",
          "[hmm][p2p][checker]") {
  // The end of a burst skips the checks only while nothing they depend on changed since the note
  // (ImporterMirror::checkStamp); a report at the note is such a change, so counts stay per check.
  P2pFixture f;
  const Va a = f.mapAnon(2 * kP);
  f.fillPattern(a, 2, 0x30);
  ImporterMirror& m = f.importer("gpu0", a, 2, misbehaving(ImporterMisbehaviour::IgnoreInvalidations));
  REQUIRE(m.map(a, a + 2 * kP, false) == HmmStatus::Ok);
  const std::vector<std::uint64_t> clean{*m.beginDma(a, false), *m.beginDma(a + kP, false)};
  m.noteDmaAccesses(clean, 2 * kP);
  m.endDmas(clean);
  REQUIRE(f.violations.ok());
  REQUIRE(f.mm->munmap(a, 2 * kP) == Errno::Ok);
  REQUIRE(f.violations.count(CheckRule::StaleTranslation) == 2);  // both pages held at return
  const std::vector<std::uint64_t> stale{*m.beginDma(a, false)};
  m.noteDmaAccesses(stale, kP);
  CHECK(f.violations.count(CheckRule::StaleTranslation) == 3);
  CHECK(f.violations.count(CheckRule::FreedFrame) == 1);
  m.endDmas(stale);
  CHECK(f.violations.count(CheckRule::StaleTranslation) == 4);
  CHECK(f.violations.count(CheckRule::FreedFrame) == 2);
}

TEST_CASE("checker: its change stamp moves with each recorded invalidation and each report",
          "[hmm][p2p][checker]") {
  P2pFixture f;
  const Va a = f.mapAnon(kP);
  f.fillPattern(a, 1, 0x40);
  ImporterMirror& m = f.importer("gpu0", a, 1, misbehaving(ImporterMisbehaviour::IgnoreInvalidations));
  REQUIRE(m.map(a, a + kP, false) == HmmStatus::Ok);
  const std::uint64_t s0 = f.checker.changeStamp();
  const std::uint64_t g0 = f.mm->physMem().generationStamp();
  REQUIRE(f.mm->munmap(a, kP) == Errno::Ok);  // one record, one report (the page still held)
  CHECK(f.checker.changeStamp() == s0 + 2);
  CHECK(f.mm->physMem().generationStamp() > g0);  // the frame was freed
}

TEST_CASE("checker: acknowledging an invalidation without waiting for in-flight DMA is caught",
          "[hmm][p2p][checker]") {
  P2pFixture f;
  const Va a = f.mapAnon(2 * kP);
  f.fillPattern(a, 2, 0x20);
  ImporterMirror& m = f.importer("gpu0", a, 2, misbehaving(ImporterMisbehaviour::AckWithoutWaiting));
  REQUIRE(m.map(a, a + 2 * kP, false) == HmmStatus::Ok);
  const auto id = m.beginDma(a, false);
  REQUIRE(id);
  REQUIRE(f.mm->munmap(a, 2 * kP) == Errno::Ok);  // returns with the DMA still in flight
  REQUIRE(f.violations.ok());
  std::uint64_t v = 0;
  m.transferDma(*id, &v, sizeof v);  // the DMA goes on after the invalidation returned
  m.endDma(*id);
  CHECK(f.violations.count(CheckRule::StaleTranslation) == 1);
}

TEST_CASE(
    "checker: the same in-flight DMA under a correct importer completes before the invalidation returns",
    "[hmm][p2p][checker]") {
  P2pFixture f;
  const Va a = f.mapAnon(2 * kP);
  f.fillPattern(a, 2, 0x20);
  ImporterMirror& m = f.importer("gpu0", a, 2);
  REQUIRE(m.map(a, a + 2 * kP, false) == HmmStatus::Ok);
  const auto id = m.beginDma(a, false);
  REQUIRE(id);
  std::uint64_t v = 0;
  m.setWaitForDma([&](ImporterMirror& mm, Va, Va) {
    mm.transferDma(*id, &v, sizeof v);
    mm.endDma(*id);
  });
  REQUIRE(f.mm->munmap(a, 2 * kP) == Errno::Ok);
  CHECK(v == 0x20);
  CHECK(f.violations.ok());
}

TEST_CASE("checker: an importer that pins forever (never p2pUnmap) is caught when the invalidation returns",
          "[hmm][p2p][checker]") {
  P2pFixture f;
  const Va a = f.mapSpecial(4);
  ImporterMirror& m = f.importer("gpu0", a, 4, misbehaving(ImporterMisbehaviour::PinForever));
  REQUIRE(m.map(a, a + 4 * kP, false) == HmmStatus::Ok);
  REQUIRE(zapVmaPtes(*f.mm, a, a + 4 * kP) == Errno::Ok);
  CHECK(f.violations.count(CheckRule::StaleTranslation) == 4);
  CHECK(f.vmaExporter.pagesUnmapped == 0);
  CHECK(f.bar.used() == 4);  // the exporter cannot reuse its windows
  CHECK(f.violations.violations()[0].cause.find("must p2p_unmap") != std::string::npos);
}

TEST_CASE(
    "checker: unmapping but going on using the old address is caught (stale translation, outside a live BAR "
    "window)",
    "[hmm][p2p][checker]") {
  P2pFixture f;
  for (std::uint64_t i = 0; i < 2; ++i) f.exporterStore(i, 0x40 + i);
  const Va a = f.mapSpecial(2);
  ImporterMirror& m = f.importer("gpu0", a, 2, misbehaving(ImporterMisbehaviour::KeepOldAddress));
  REQUIRE(m.map(a, a + 2 * kP, false) == HmmStatus::Ok);
  CHECK(dmaLoad(m, a) == 0x40);  // the device TLB now holds the translation
  REQUIRE(zapVmaPtes(*f.mm, a, a + 2 * kP) == Errno::Ok);
  CHECK(f.vmaExporter.pagesUnmapped == 2);
  REQUIRE(f.violations.ok());
  std::uint64_t v = 0;
  m.dmaRead(a, &v, sizeof v);  // through the stale TLB entry, to a window that is gone
  CHECK(f.violations.count(CheckRule::StaleTranslation) == 1);
  CHECK(f.violations.count(CheckRule::OutsideBarWindow) == 1);
}

// ---- seeded randomized invalidation storms: correct importers are never flagged ---------------------

namespace {
void storm(std::uint64_t seed) {
  P2pFixture f;
  Rng rng(seed);
  constexpr std::uint64_t kN = 32;
  const Va a = f.mapAnon(kN * kP);
  f.fillPattern(a, kN, seed << 16);
  const Va s = f.mapSpecial(16);
  for (std::uint64_t i = 0; i < 16; ++i) f.exporterStore(i, 0xe000 + i);
  ImporterMirror& m0 = f.importer("gpu0", a, kN);
  ImporterMirror& m2 = f.importer("gpu2", a, kN);
  ImporterMirror& ms = f.importer("gpu3", s, 16);
  std::vector<std::uint64_t> expect(kN);
  for (std::uint64_t i = 0; i < kN; ++i) expect[i] = (seed << 16) + i;
  auto pick = [&](std::uint64_t n) {
    const std::uint64_t x = rng.below((n - 1) + 1), y = rng.below((n - 1) + 1);
    return std::make_pair(std::min(x, y), std::max(x, y) + 1);
  };
  for (int step = 0; step < 300; ++step) {
    const auto [lo, hi] = pick(kN);
    const Va b = a + lo * kP, e = a + hi * kP;
    const Va ev = std::min(e, f.mm->vmaLookup(b)->vmEnd);  // migrations stay inside one vma
    switch (rng.below((8) + 1)) {
      case 0:
        f.migrateToDevice(b, ev);
        break;
      case 1:
        f.migrateToSystem(b, ev);
        break;
      case 2:
        REQUIRE(f.mm->mprotect(b, e - b, PROT_READ) == Errno::Ok);
        break;
      case 3:
        REQUIRE(f.mm->mprotect(b, e - b, PROT_READ | PROT_WRITE) == Errno::Ok);
        break;
      case 4: {
        const auto [x, y] = pick(16);
        REQUIRE(zapVmaPtes(*f.mm, s + x * kP, s + y * kP) == Errno::Ok);
        break;
      }
      case 5: {  // a DMA in flight across an invalidation
        ImporterMirror& m = rng.below((1) + 1) ? m0 : m2;
        if (m.map(b, e, false) != HmmStatus::Ok) break;
        const auto id = m.beginDma(b, false);
        REQUIRE(id);
        m.setWaitForDma([id = *id](ImporterMirror& mm, Va, Va) { mm.endDma(id); });
        f.migrateToSystem(b, ev);
        if (m.inFlight(b, b + kP)) m.endDma(*id);
        m.setWaitForDma({});
        break;
      }
      default: {  // map and read back through the device, byte exact
        ImporterMirror& m = rng.below((1) + 1) ? m0 : m2;
        const bool write = rng.below((1) + 1) == 1;
        const HmmStatus st = m.map(b, e, write);
        REQUIRE((st == HmmStatus::Ok || st == HmmStatus::Perm));
        if (st != HmmStatus::Ok) break;
        for (std::uint64_t i = lo; i < hi; ++i) {
          std::uint64_t v = 0;
          if (!m.dmaRead(a + i * kP, &v, sizeof v)) continue;  // invalidated meanwhile: fault
          if (v != expect[i])
            f.checker.dataMismatch(m.device(), a + i * kP, "device read differs from the process's data");
        }
        const auto [x, y] = pick(16);
        if (ms.map(s + x * kP, s + y * kP, false) == HmmStatus::Ok)
          for (std::uint64_t i = x; i < y; ++i) {
            std::uint64_t v = 0;
            if (ms.dmaRead(s + i * kP, &v, sizeof v) && v != 0xe000 + i)
              f.checker.dataMismatch(ms.device(), s + i * kP, "special vma read differs");
          }
        break;
      }
    }
  }
  INFO((f.violations.ok() ? std::string() : InvariantChecker::format(f.violations.violations()[0])));
  CHECK(f.violations.ok());
  CHECK(m0.stats().counterValue("invalidations") + m2.stats().counterValue("invalidations") > 50);
}
}  // namespace

TEST_CASE("storm: correct importers are never flagged (seed 1)", "[hmm][p2p][checker][storm]") {
  storm(1);
}
TEST_CASE("storm: correct importers are never flagged (seed 2)", "[hmm][p2p][checker][storm]") {
  storm(2);
}
TEST_CASE("storm: correct importers are never flagged (seed 3)", "[hmm][p2p][checker][storm]") {
  storm(3);
}
TEST_CASE("storm: correct importers are never flagged (seed 4)", "[hmm][p2p][checker][storm]") {
  storm(4);
}

TEST_CASE("checker: an IOMMU that skips the IOTLB flush on unmap is caught when the stale entry is used",
          "[hmm][p2p][checker]") {
  // gpu0 reads system memory through the IOMMU; the importer keeps its old address after the
  // invalidation (KeepOldAddress) and the IOMMU did not flush: the DMA reaches memory through an
  // IOVA whose mapping is gone (rule 4, reported by the IOMMU model).
  P2pFixture f(IommuMode::Translate, platform(), 64, /*skipIotlbFlush=*/true);
  const Va a = f.mapAnon(kP);
  f.store(a, 0x99);
  ImporterMirror& m = f.importer("gpu0", a, 1, misbehaving(ImporterMisbehaviour::KeepOldAddress));
  REQUIRE(m.map(a, a + kP, false) == HmmStatus::Ok);
  CHECK(dmaLoad(m, a) == 0x99);
  REQUIRE(f.mm->munmap(a, kP) == Errno::Ok);
  std::uint64_t v = 0;
  m.dmaRead(a, &v, sizeof v);
  CHECK(f.violations.count(CheckRule::StaleTranslation) == 1);
  CHECK(f.violations.count(CheckRule::UnmappedIova) == 1);
}

TEST_CASE("checker: with the IOTLB flushed the same stale use faults in the IOMMU instead of reaching memory",
          "[hmm][p2p][checker]") {
  P2pFixture f;
  const Va a = f.mapAnon(kP);
  f.store(a, 0x99);
  ImporterMirror& m = f.importer("gpu0", a, 1, misbehaving(ImporterMisbehaviour::KeepOldAddress));
  REQUIRE(m.map(a, a + kP, false) == HmmStatus::Ok);
  CHECK(dmaLoad(m, a) == 0x99);
  REQUIRE(f.mm->munmap(a, kP) == Errno::Ok);
  std::uint64_t v = 0;
  CHECK_FALSE(m.dmaRead(a, &v, sizeof v));  // IOMMU fault: nothing reached memory
  CHECK(f.violations.count(CheckRule::StaleTranslation) == 1);
  CHECK(f.violations.count(CheckRule::UnmappedIova) == 0);
}
