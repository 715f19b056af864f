// p2pUnmap on every overlapping invalidation, whatever the event, and the importer pattern:
// invalidate zaps the device PTEs and TLB, waits for in-flight DMA, gives each mapping back once,
// and only then returns; the non-blockable path changes nothing when the update lock is held.

#include <catch2/catch.hpp>

#include "tests/unit/hmm/p2p_test_support.h"

using namespace hmmsim;
using namespace hmmsim::test;

namespace {
constexpr std::uint64_t kP = kPageSize;

/// Peer device memory [a, a+n) mapped p2p by gpu0.
struct PeerSetup {
  explicit PeerSetup(P2pFixture& f, std::uint64_t n = 8, bool write = true, ImporterMirrorParams p = {})
      : f(f), n(n) {
    a = f.mapAnon(n * kP);
    f.fillPattern(a, n, 0x4400);
    f.migrateToDevice(a, a + n * kP);
    m = &f.importer("gpu0", a, n, p);
    REQUIRE(m->map(a, a + n * kP, write) == HmmStatus::Ok);
    REQUIRE(f.devmemExporter.grants.size() == n);
  }
  P2pFixture& f;
  std::uint64_t n;
  Va a;
  ImporterMirror* m = nullptr;
};
}  // namespace

TEST_CASE("munmap of peer device memory p2pUnmaps every page before the invalidation returns",
          "[hmm][p2p][invalidate]") {
  P2pFixture f;
  PeerSetup s(f);
  REQUIRE(f.mm->munmap(s.a + 2 * kP, 4 * kP) == Errno::Ok);
  CHECK(f.devmemExporter.pagesUnmapped == 4);
  CHECK(s.m->kindAt(s.a + 2 * kP) == HmmDmaKind::None);
  CHECK(s.m->kindAt(s.a + 1 * kP) == HmmDmaKind::DevmemP2p);
  std::uint64_t v = 0;
  CHECK_FALSE(s.m->dmaRead(s.a + 3 * kP, &v, sizeof v));  // device fault: nothing stale is used
  CHECK(dmaLoad(*s.m, s.a + 6 * kP) == 0x4406);
  CHECK(f.violations.ok());
}

TEST_CASE("munmap of a special vma p2pUnmaps it through its vm_ops while the vma still exists",
          "[hmm][p2p][invalidate]") {
  P2pFixture f;
  const Va a = f.mapSpecial(8);
  ImporterMirror& m = f.importer("gpu0", a, 8);
  REQUIRE(m.map(a, a + 8 * kP, true) == HmmStatus::Ok);
  REQUIRE(f.bar.used() == 8);
  REQUIRE(f.mm->munmap(a, 8 * kP) == Errno::Ok);
  CHECK(f.vmaExporter.pagesUnmapped == 8);
  CHECK(f.vmaExporter.grants.empty());
  CHECK(f.bar.used() == 0);
  CHECK(m.stats().counterValue("zapped_pages") == 8);
  CHECK(f.violations.ok());
}

TEST_CASE("mprotect over p2p mappings invalidates them and a later map follows the new protection",
          "[hmm][p2p][invalidate]") {
  P2pFixture f;
  PeerSetup s(f, 4);
  REQUIRE(f.mm->mprotect(s.a, 4 * kP, PROT_READ) == Errno::Ok);
  CHECK(f.devmemExporter.pagesUnmapped == 4);
  REQUIRE(s.m->map(s.a, s.a + 4 * kP, false) == HmmStatus::Ok);
  CHECK(s.m->kindAt(s.a) == HmmDmaKind::DevmemP2p);
  const std::uint64_t v = 1;
  CHECK_FALSE(s.m->dmaWrite(s.a, &v, sizeof v));  // read-only now
  CHECK(s.m->map(s.a, s.a + 4 * kP, true) == HmmStatus::Perm);
  CHECK(f.violations.ok());
}

TEST_CASE("fork write-protects the parent: the importer stops writing into what becomes the child's copy",
          "[hmm][p2p][invalidate]") {
  P2pFixture f;
  PeerSetup s(f, 4, /*write=*/true);
  {
    ForkResult fr = f.mm->fork("child");
    REQUIRE(fr.ok());
    // COW write-protection invalidated the writable p2p mappings.
    CHECK(f.devmemExporter.pagesUnmapped == 4);
    const std::uint64_t v = 0xbad;
    CHECK_FALSE(s.m->dmaWrite(s.a, &v, sizeof v));
    // Mapping for write now breaks COW first (migrate to RAM + copy): the device writes the
    // parent's private copy only.
    REQUIRE(s.m->map(s.a, s.a + 4 * kP, true) == HmmStatus::Ok);
    CHECK(s.m->kindAt(s.a) == HmmDmaKind::System);
    const std::uint64_t w = 0x600d;
    REQUIRE(s.m->dmaWrite(s.a, &w, sizeof w));
    CHECK(f.load(s.a) == 0x600d);
    CHECK(HmmFixture::loadIn(*fr.child, s.a) == 0x4400);
    CHECK(HmmFixture::loadIn(*fr.child, s.a + kP) == 0x4401);
    s.m->unmapAll();
    fr.child->exitMmap();
  }
  CHECK(f.violations.ok());
}

TEST_CASE("migrating the exporter's memory back to RAM invalidates the p2p mapping and a remap maps RAM",
          "[hmm][p2p][invalidate]") {
  P2pFixture f;
  PeerSetup s(f, 4);
  f.migrateToSystem(s.a, s.a + 4 * kP);
  CHECK(f.devmemExporter.pagesUnmapped == 4);
  CHECK(s.m->kindAt(s.a) == HmmDmaKind::None);
  REQUIRE(s.m->map(s.a, s.a + 4 * kP, false) == HmmStatus::Ok);
  for (std::uint64_t i = 0; i < 4; ++i) {
    CHECK(s.m->kindAt(s.a + i * kP) == HmmDmaKind::System);
    CHECK(dmaLoad(*s.m, s.a + i * kP) == 0x4400 + i);
  }
  CHECK(f.violations.ok());
}

TEST_CASE(
    "an exporter revokes a special vma at any time (zap_vma_ptes) and a reset device refuses later maps",
    "[hmm][p2p][invalidate]") {
  P2pFixture f;
  const Va a = f.mapSpecial(4);
  ImporterMirror& m = f.importer("gpu0", a, 4);
  REQUIRE(m.map(a, a + 4 * kP, false) == HmmStatus::Ok);
  // Revoke part of it (e.g. a window moved): exactly that part goes.
  REQUIRE(zapVmaPtes(*f.mm, a + kP, a + 3 * kP) == Errno::Ok);
  CHECK(f.vmaExporter.pagesUnmapped == 2);
  CHECK(m.kindAt(a) == HmmDmaKind::VmaP2p);
  CHECK(m.kindAt(a + kP) == HmmDmaKind::None);
  // Remap: the exporter may hand out other addresses now, the data is the same.
  f.exporterStore(1, 0x1111);
  REQUIRE(m.map(a + kP, a + 2 * kP, false) == HmmStatus::Ok);
  CHECK(dmaLoad(m, a + kP) == 0x1111);
  // Reset: revoke everything, then maps fail with the device's error.
  REQUIRE(zapVmaPtes(*f.mm, a, a + 4 * kP) == Errno::Ok);
  f.vmaExporter.refuse = Errno::NoDev;
  CHECK(f.bar.used() == 0);
  CHECK(m.map(a, a + 4 * kP, false) == HmmStatus::Fault);
  CHECK(m.lastP2pError() == Errno::NoDev);
  CHECK(zapVmaPtes(*f.mm, a + 8 * kP, a + 9 * kP) == Errno::Inval);
  CHECK(f.violations.ok());
}

TEST_CASE("mm teardown (RELEASE) gives every p2p mapping back", "[hmm][p2p][invalidate]") {
  P2pFixture f;
  PeerSetup s(f, 4);
  const Va sp = f.mapSpecial(2);
  ImporterMirror& m2 = f.importer("gpu2", sp, 2);
  REQUIRE(m2.map(sp, sp + 2 * kP, false) == HmmStatus::Ok);
  f.mm->exitMmap();
  CHECK(f.devmemExporter.grants.empty());
  CHECK(f.vmaExporter.grants.empty());
  CHECK(f.bar.used() == 0);
  CHECK(f.dma.stats().counterValue("maps") == f.dma.stats().counterValue("unmaps"));
  CHECK(f.violations.ok());
}

TEST_CASE(
    "a non-blockable invalidation while the importer holds its update lock returns -EAGAIN and tears nothing "
    "down",
    "[hmm][p2p][invalidate]") {
  P2pFixture f;
  PeerSetup s(f, 4);
  s.m->updateLock().lock();
  MmuNotifierRange r;
  mmuNotifierRangeInit(r, MmuNotifierEvent::Unmap, 0, f.mm.get(), s.a, s.a + 4 * kP);
  CHECK(f.mm->notifierSubscriptions().invalidateRangeStartNonblock(r) == Errno::Again);
  s.m->updateLock().unlock();
  CHECK(f.devmemExporter.pagesUnmapped == 0);
  CHECK(s.m->kindAt(s.a) == HmmDmaKind::DevmemP2p);
  CHECK(s.m->stats().counterValue("refused_nonblock") == 1);
  CHECK(dmaLoad(*s.m, s.a + kP) == 0x4401);
  // Without contention the same non-blockable invalidation succeeds and unmaps.
  MmuNotifierRange r2;
  mmuNotifierRangeInit(r2, MmuNotifierEvent::Unmap, 0, f.mm.get(), s.a, s.a + 4 * kP);
  REQUIRE(f.mm->notifierSubscriptions().invalidateRangeStartNonblock(r2) == Errno::Ok);
  f.mm->notifierSubscriptions().invalidateRangeEnd(r2);
  CHECK(f.devmemExporter.pagesUnmapped == 4);
  CHECK(f.violations.ok());
}

TEST_CASE("invalidate waits for in-flight DMA that used the range before giving the mapping back",
          "[hmm][p2p][invalidate]") {
  P2pFixture f;
  PeerSetup s(f, 2);
  const auto id = s.m->beginDma(s.a, false);
  REQUIRE(id);
  std::vector<std::string> order;
  s.m->setWaitForDma([&](ImporterMirror& m, Va, Va) {
    order.push_back("wait");
    CHECK(f.devmemExporter.pagesUnmapped == 0);  // not given back while the DMA runs
    std::uint64_t v = 0;
    CHECK(m.transferDma(*id, &v, sizeof v));  // the in-flight DMA completes legally
    CHECK(v == 0x4400);
    m.endDma(*id);
  });
  REQUIRE(f.mm->munmap(s.a, 2 * kP) == Errno::Ok);
  CHECK(order.size() == 1);
  CHECK(f.devmemExporter.pagesUnmapped == 2);
  CHECK(s.m->stats().counterValue("dma_waits") == 1);
  CHECK(f.violations.ok());
}

TEST_CASE("a burst's DMAs end together, side by side or scattered, and the rest stay in flight",
          "[hmm][p2p][invalidate]") {
  P2pFixture f;
  PeerSetup s(f, 4);
  std::vector<std::uint64_t> ids;
  for (std::uint64_t i = 0; i < 4; ++i) ids.push_back(*s.m->beginDma(s.a + i * kP, false));
  s.m->noteDmaAccesses(ids, 4 * kP);
  CHECK(s.m->stats().counterValue("dma_bytes") == 4 * kP);
  s.m->endDmas({ids[1], ids[2]});  // side by side: erased in one go
  s.m->endDmas({ids[3], ids[0]});  // out of order: one by one
  for (std::uint64_t id : ids) CHECK(s.m->dmaTranslation(id) == nullptr);
  const auto late = s.m->beginDma(s.a, false);
  REQUIRE(late);
  s.m->endDmas({*late});
  // Nothing in flight: munmap does not wait, and ending DMAs checked them while still legal.
  REQUIRE(f.mm->munmap(s.a, 4 * kP) == Errno::Ok);
  CHECK(s.m->stats().counterValue("dma_waits") == 0);
  CHECK(f.violations.ok());
}

TEST_CASE("a DMA a burst still holds after the invalidation returned is reported when the burst ends",
          "[hmm][p2p][invalidate]") {
  P2pFixture f;
  ImporterMirrorParams p;
  p.misbehave = ImporterMisbehaviour::AckWithoutWaiting;
  PeerSetup s(f, 2, true, p);
  std::vector<std::uint64_t> ids{*s.m->beginDma(s.a, false), *s.m->beginDma(s.a + kP, false)};
  REQUIRE(f.mm->munmap(s.a + kP, kP) == Errno::Ok);
  s.m->endDmas(ids);
  // Page 1's translation was used after its invalidation returned: rule 1, once.
  REQUIRE(f.violations.count(CheckRule::StaleTranslation) == 1);
}

TEST_CASE("a map racing an invalidation drops its fresh mappings and retries (readRetry under the lock)",
          "[hmm][p2p][invalidate]") {
  P2pFixture f;
  const Va a = f.mapSpecial(2);
  ImporterMirror& m = f.importer("gpu0", a, 2);
  // The exporter moves its window while the importer is mapping: the addresses the first walk got
  // are stale by the time the importer takes its update lock, so it must not commit them.
  f.vmaExporter.onMap = [&] { REQUIRE(zapVmaPtes(*f.mm, a, a + 2 * kP) == Errno::Ok); };
  REQUIRE(m.map(a, a + 2 * kP, false) == HmmStatus::Ok);
  CHECK(m.stats().counterValue("read_retries") == 1);
  CHECK(f.vmaExporter.mapCalls == 2);
  CHECK(f.vmaExporter.pagesMapped == 4);
  CHECK(f.vmaExporter.pagesUnmapped == 2);  // the stale first mapping, given back once
  CHECK(f.bar.used() == 2);
  CHECK(m.kindAt(a) == HmmDmaKind::VmaP2p);
  CHECK(f.violations.ok());
}
