// P2pBarManager: windows, policies, revocation before reuse, exporter-initiated events and the
// checker-rule-3 query, with model importers that obey (or ignore) revocation.

#include <catch2/catch.hpp>

#include "hmm/p2p_bar_manager.h"
#include "sim/device.h"
#include "tests/unit/hmm/p2p_bar_test_support.h"

using namespace hmmsim;
using namespace hmmsim::test;

TEST_CASE("p2p bar: a map returns each page's address inside its window, and busOf gives the bus twin") {
  ModelImporters m(smallBar(4, 32));
  Device a("imp0");
  const BarMapResult r = m.map(a, kWinPages + 1, 2);  // chunk 1, pages 1 and 2
  REQUIRE(r.ok());
  CHECK(r.pages == 2);
  CHECK(r.err() == Errno::Ok);
  const Pa base = m.bar.params().barPa;
  CHECK(m.last[0] == base + kPageSize);  // first window (free list order), offset 1
  CHECK(m.last[1] == base + 2 * kPageSize);
  CHECK(m.bar.busOf(m.last[0]) == m.bar.params().barBus + kPageSize);
  CHECK(m.bar.paOfBus(m.bar.busOf(m.last[0])) == m.last[0]);
  BarWindowIdx w;
  REQUIRE(m.bar.windowOf(DevPage(kWinPages + 1), &w));
  CHECK(w == BarWindowIdx(0));
  CHECK(m.bar.heldPages(a) == 2);
  CHECK(m.bar.busyWindows() == 1);
  CHECK(m.bar.stats().counterValue("map_pages") == 2);
  CHECK(m.bar.stats().counterValue("window_fills") == 1);
}

TEST_CASE("p2p bar: pages of one chunk share a window, and mapping a resident chunk again is a hit") {
  ModelImporters m(smallBar(4, 32));
  Device a("imp0"), b("imp1");
  REQUIRE(m.map(a, 5, 1).ok());
  const Pa first = m.last[0];
  REQUIRE(m.map(b, 7, 1).ok());
  CHECK(m.last[0] == first + 2 * kPageSize);
  REQUIRE(m.map(a, 5, 1).ok());  // mapped twice: counted twice
  CHECK(m.last[0] == first);
  CHECK(m.bar.heldPages(a) == 2);
  CHECK(m.bar.stats().counterValue("window_fills") == 1);
  CHECK(m.bar.stats().counterValue("map_hits") == 2);
  CHECK(m.unmap(a, 5, 1) == BarUnmapStatus::Unmapped);
  CHECK(m.bar.busyWindows() == 1);
  CHECK(m.unmap(a, 5, 1) == BarUnmapStatus::Unmapped);
  CHECK(m.unmap(b, 7, 1) == BarUnmapStatus::Unmapped);
  CHECK(m.bar.busyWindows() == 0);
  CHECK(m.bar.idleWindows() == 1);  // stays resident: the next map gets the same address
  REQUIRE(m.map(b, 5, 1).ok());
  CHECK(m.last[0] == first);
}

TEST_CASE(
    "p2p bar: LRU reclaim revokes exactly the held runs of the least recently used window, then reuses it") {
  ModelImporters m(smallBar(2, 32));
  Device a("imp0"), b("imp1"), c("imp2");
  REQUIRE(m.map(a, 1, 3).ok());   // chunk 0: pages 1..3
  REQUIRE(m.map(a, 10, 1).ok());  // chunk 0: page 10
  const Pa chunk0Window = m.last[0] - 10 * kPageSize;
  REQUIRE(m.map(b, kWinPages, 1).ok());          // chunk 1: second window
  REQUIRE(m.map(c, 2 * kWinPages + 4, 1).ok());  // chunk 2: no free window, both busy
  REQUIRE(m.calls.size() == 2);
  CHECK(m.calls[0].first == 1);
  CHECK(m.calls[0].npages == 3);
  CHECK(m.calls[0].why == BarEvent::Reclaimed);
  CHECK(m.calls[1].first == 10);
  CHECK(m.calls[1].npages == 1);
  CHECK(m.last[0] == chunk0Window + 4 * kPageSize);  // chunk 2 now lives in chunk 0's window
  CHECK(m.bar.heldPages(a) == 0);
  CHECK(m.heldBy(a) == 0);
  CHECK(m.bar.heldPages(b) == 1);  // untouched
  CHECK(m.bar.stats().counterValue("reclaims") == 1);
  CHECK(m.bar.stats().counterValue("revoked_pages") == 4);
  CHECK(m.bar.stats().counterValue("pinned_pages") == 0);
  m.requireHoldsLive();
}

TEST_CASE("p2p bar: an idle window is reclaimed before any busy one, without calling the hook") {
  ModelImporters m(smallBar(2, 32));
  Device a("imp0"), b("imp1");
  REQUIRE(m.map(a, 0, 1).ok());
  REQUIRE(m.map(b, kWinPages, 1).ok());
  REQUIRE(m.unmap(b, kWinPages, 1) == BarUnmapStatus::Unmapped);  // chunk 1's window idle
  REQUIRE(m.map(a, 3 * kWinPages, 1).ok());
  CHECK(m.calls.empty());
  CHECK(m.bar.stats().counterValue("reclaims_idle") == 1);
  CHECK_FALSE(m.bar.windowOf(DevPage(kWinPages), nullptr));
  CHECK(m.bar.windowOf(DevPage(0), nullptr));
}

TEST_CASE("p2p bar: under LRU reclaim a range that mapped once maps again after its window was taken") {
  ModelImporters m(smallBar(1, 8));
  Device a("imp0"), b("imp1");
  REQUIRE(m.map(a, 3, 2).ok());
  REQUIRE(m.map(b, kWinPages, 1).ok());  // takes the only window: a revoked
  CHECK(m.heldBy(a) == 0);
  const BarMapResult again = m.map(a, 3, 2);  // predictability: succeeds (b is revoked in turn)
  CHECK(again.ok());
  CHECK(m.heldBy(b) == 0);
  CHECK(m.calls.size() == 2);
  m.requireHoldsLive();
}

TEST_CASE(
    "p2p bar: refuse-when-busy refuses with ENOSPC when every window is held, and breaks predictability") {
  ModelImporters m(smallBar(1, 8, BarPolicy::RefuseWhenBusy));
  Device a("imp0"), b("imp1");
  REQUIRE(m.map(a, 0, 1).ok());
  REQUIRE(m.unmap(a, 0, 1) == BarUnmapStatus::Unmapped);  // e.g. after an mprotect invalidation
  REQUIRE(m.map(b, kWinPages, 1).ok());                   // takes the idle window
  const BarMapResult r = m.map(a, 0, 1);
  CHECK(r.status == BarMapStatus::NoWindow);
  CHECK(r.err() == Errno::NoSpc);
  CHECK(r.pages == 0);
  CHECK(m.calls.empty());  // never revokes
  CHECK(m.bar.stats().counterValue("refused_no_window") == 1);
}

TEST_CASE(
    "p2p bar: the per-importer cap refuses beyond the cap with ENOSPC, spares other importers, breaks "
    "predictability") {
  P2pBarParams p = smallBar(4, 32, BarPolicy::PerImporterCap);
  p.importerCapPages = 4;
  ModelImporters m(p);
  Device a("imp0"), b("imp1");
  REQUIRE(m.map(a, 0, 2).ok());
  REQUIRE(m.unmap(a, 0, 2) == BarUnmapStatus::Unmapped);  // invalidated
  REQUIRE(m.map(a, 100, 4).ok());                         // fills its cap with other pages
  const BarMapResult r = m.map(a, 0, 2);                  // mapped once before: now refused
  CHECK(r.status == BarMapStatus::OverCap);
  CHECK(r.err() == Errno::NoSpc);
  CHECK(m.map(b, 0, 2).ok());  // another importer has its own cap
  // Prefix mode (devmem p2pMap) maps what fits and reports how much.
  REQUIRE(m.unmap(a, 100, 2) == BarUnmapStatus::Unmapped);
  const BarMapResult part = m.map(a, 200, 5, BarMapMode::Prefix);
  CHECK(part.status == BarMapStatus::OverCap);
  CHECK(part.pages == 2);
  CHECK(m.bar.heldPages(a) == 4);
  CHECK(m.bar.stats().counterValue("refused_over_cap") == 2);
}

TEST_CASE("p2p bar: always-refuse declines every map with EOPNOTSUPP and holds nothing") {
  ModelImporters m(smallBar(4, 32, BarPolicy::AlwaysRefuse));
  Device a("imp0");
  const BarMapResult r = m.map(a, 0, 1);
  CHECK(r.status == BarMapStatus::Refused);
  CHECK(r.err() == Errno::OpNotSupp);
  CHECK(m.bar.heldPages() == 0);
  CHECK(m.bar.stats().counterValue("refused_policy") == 1);
}

TEST_CASE("p2p bar: unlimited maps every page at a fixed address and never reclaims") {
  ModelImporters m(smallBar(8, 8, BarPolicy::Unlimited));
  Device a("imp0");
  CHECK(m.bar.idleWindows() == 8);
  for (std::uint64_t c = 0; c < 8; ++c) {
    REQUIRE(m.map(a, c * kWinPages + 7, 1).ok());
    CHECK(m.last[0] == m.bar.params().barPa + c * (2ull << 20) + 7 * kPageSize);
  }
  CHECK(m.bar.stats().counterValue("reclaims") == 0);
  CHECK(m.bar.stats().counterValue("window_fills") == 0);
  CHECK(m.bar.moveWindow(BarWindowIdx(0), BarWindowIdx(1)).err == Errno::Inval);
}

TEST_CASE(
    "p2p bar: a request that needs more windows than the aperture is refused up front and maps nothing") {
  ModelImporters m(smallBar(2, 32));
  Device a("imp0"), b("imp1");
  REQUIRE(m.map(b, 0, 1).ok());
  const BarMapResult r = m.map(a, 0, 3 * kWinPages);
  CHECK(r.status == BarMapStatus::NoWindow);
  CHECK(r.pages == 0);
  CHECK(m.calls.empty());  // nobody was revoked for a request that could not succeed
  CHECK(m.bar.heldPages(a) == 0);
  // Prefix mode maps what the aperture can hold, never revoking pages of its own request.
  const BarMapResult part = m.map(a, 0, 3 * kWinPages, BarMapMode::Prefix);
  CHECK(part.status == BarMapStatus::NoWindow);
  CHECK(part.pages == 2 * kWinPages);
  CHECK(m.bar.heldPages(a) == 2 * kWinPages);
  m.requireHoldsLive();
}

TEST_CASE("p2p bar: a failed all-or-nothing map gives back every page it had taken") {
  ModelImporters m(smallBar(2, 32, BarPolicy::RefuseWhenBusy));
  Device a("imp0"), b("imp1");
  REQUIRE(m.map(b, 0, 1).ok());
  const BarMapResult r = m.map(a, 2 * kWinPages - 1, 3);  // chunk 1 (free window), then chunk 2: none
  CHECK(r.status == BarMapStatus::NoWindow);
  CHECK(r.pages == 0);
  CHECK(m.bar.heldPages(a) == 0);
  CHECK(m.bar.heldPages() == 1);
  CHECK(m.bar.stats().counterValue("map_pages") == 1);
}

TEST_CASE("p2p bar: a window pinned by an importer that ignores revocation is never reused") {
  ModelImporters m(smallBar(2, 32));
  Device pin("pinner"), b("imp1"), c("imp2");
  m.pinning.insert(&pin);
  REQUIRE(m.map(pin, 0, 1).ok());
  REQUIRE(m.map(b, kWinPages, 1).ok());
  REQUIRE(m.map(c, 2 * kWinPages, 1).ok());  // LRU candidate is pin's window: pinned, skipped -> b's
  CHECK(m.bar.stats().counterValue("reclaim_skipped_pinned") == 1);
  CHECK(m.bar.stats().counterValue("pinned_pages") == 1);
  CHECK(m.heldBy(b) == 0);
  m.requireHoldsLive();  // the pinner's page is still where it was
  // Only pinned windows left: refused.
  m.pinning.insert(&c);
  const BarMapResult r = m.map(b, 3 * kWinPages, 1);
  CHECK(r.status == BarMapStatus::NoWindow);
  m.requireHoldsLive();
}

TEST_CASE("p2p bar: revokeRange revokes exactly the held pages in the range and keeps the window") {
  ModelImporters m(smallBar(4, 32));
  Device a("imp0"), b("imp1");
  REQUIRE(m.map(a, 0, 8).ok());
  const Pa page2 = m.last[2];
  REQUIRE(m.map(b, 5, 1).ok());
  const BarRevokeResult r = m.bar.revokeRange(DevPage(2), 4);  // pages 2..5
  CHECK(r.err == Errno::Ok);
  REQUIRE(m.calls.size() == 1);
  CHECK(m.calls[0].first == 2);
  CHECK(m.calls[0].npages == 4);
  CHECK(m.calls[0].why == BarEvent::Revoked);
  CHECK(r.pagesRevoked == 4);
  CHECK(r.pagesPinned == 0);
  CHECK(m.heldBy(a) == 4);  // 0, 1, 6, 7
  CHECK(m.heldBy(b) == 0);
  REQUIRE(m.map(a, 2, 1).ok());
  CHECK(m.last[0] == page2);  // same window, same address
  CHECK(m.bar.revokeRange(DevPage(0), 0).err == Errno::Inval);
}

TEST_CASE(
    "p2p bar: moveWindow revokes first, then the chunk maps at the new window and the old address is "
    "illegal") {
  ModelImporters m(smallBar(4, 32));
  Device a("imp0");
  REQUIRE(m.map(a, 3, 1).ok());
  const Pa old = m.last[0];
  const BarRevokeResult r = m.bar.moveWindow(BarWindowIdx(0), BarWindowIdx(2));
  CHECK(r.err == Errno::Ok);
  REQUIRE(m.calls.size() == 1);
  CHECK(m.calls[0].why == BarEvent::Moved);
  CHECK(m.heldBy(a) == 0);
  const DevPage p3(3);
  const BarAccessCheck stale = m.bar.checkAccess(old, kPageSize, &p3);
  CHECK_FALSE(stale.legal);
  CHECK(stale.cause == BarEvent::Moved);
  REQUIRE(m.map(a, 3, 1).ok());
  CHECK(m.last[0] == m.bar.params().barPa + 2 * (2ull << 20) + 3 * kPageSize);
  CHECK(m.bar.stats().counterValue("window_moves") == 1);
  // Bad moves change nothing.
  CHECK(m.bar.moveWindow(BarWindowIdx(1), BarWindowIdx(3)).err == Errno::Inval);  // 1 maps nothing
  CHECK(m.bar.moveWindow(BarWindowIdx(2), BarWindowIdx(2)).err == Errno::Inval);
  CHECK(m.bar.moveWindow(BarWindowIdx(2), BarWindowIdx(9)).err == Errno::Inval);
}

TEST_CASE("p2p bar: moveWindow of a pinned window fails with EBUSY and moves nothing") {
  ModelImporters m(smallBar(4, 32));
  Device pin("pinner");
  m.pinning.insert(&pin);
  REQUIRE(m.map(pin, 3, 1).ok());
  const BarRevokeResult r = m.bar.moveWindow(BarWindowIdx(0), BarWindowIdx(1));
  CHECK(r.err == Errno::Busy);
  CHECK(r.pagesPinned == 1);
  m.requireHoldsLive();
}

TEST_CASE("p2p bar: defragment compacts resident windows to the start of the aperture") {
  Device a("imp0");
  ModelImporters n(smallBar(4, 32));
  REQUIRE(n.map(a, 0, 1).ok());                                                  // window 0
  REQUIRE(n.map(a, kWinPages, 1).ok());                                          // window 1
  REQUIRE(n.map(a, 2 * kWinPages, 1).ok());                                      // window 2
  REQUIRE(n.bar.moveWindow(BarWindowIdx(1), BarWindowIdx(3)).err == Errno::Ok);  // holes: 1
  REQUIRE(n.bar.moveWindow(BarWindowIdx(0), BarWindowIdx(1)).err == Errno::Ok);  // holes: 0
  // Resident: 1 (chunk 0), 2 (chunk 2), 3 (chunk 1); free: 0.
  n.calls.clear();
  REQUIRE(n.map(a, 0, 1).ok());
  const BarRevokeResult r = n.bar.defragment();
  CHECK(r.err == Errno::Ok);
  BarWindowIdx w;
  REQUIRE(n.bar.windowOf(DevPage(0), &w));
  CHECK(w == BarWindowIdx(0));
  REQUIRE(n.bar.windowOf(DevPage(2 * kWinPages), &w));
  CHECK(w == BarWindowIdx(1));
  REQUIRE(n.bar.windowOf(DevPage(kWinPages), &w));
  CHECK(w == BarWindowIdx(2));
  CHECK(n.bar.freeWindows() == 1);
  CHECK(n.calls.size() == 2);  // chunks 0 and 2 were held and moved; chunk 1 was idle
  n.requireHoldsLive();
}

TEST_CASE("p2p bar: reset revokes every importer, maps fail with EIO until it ends, then work again") {
  ModelImporters m(smallBar(4, 32));
  Device a("imp0"), b("imp1");
  REQUIRE(m.map(a, 0, 4).ok());
  REQUIRE(m.map(b, kWinPages + 9, 1).ok());
  const BarRevokeResult r = m.bar.resetBegin();
  CHECK(r.pagesRevoked == 5);
  CHECK(r.hookCalls == 2);
  CHECK(m.holds.empty());
  CHECK(m.bar.resetting());
  const BarMapResult during = m.map(a, 0, 1);
  CHECK(during.status == BarMapStatus::Resetting);
  CHECK(during.err() == Errno::Io);
  CHECK(m.bar.freeWindows() == 4);
  m.bar.resetEnd();
  CHECK(m.map(a, 0, 1).ok());
  CHECK(m.bar.stats().counterValue("resets") == 1);
  for (const RevokeCall& c : m.calls) CHECK(c.why == BarEvent::Reset);
}

TEST_CASE("p2p bar: hot-unplug revokes every importer, later maps fail with ENODEV, nothing stays held") {
  ModelImporters m(smallBar(4, 32));
  Device a("imp0"), pin("pinner");
  m.pinning.insert(&pin);
  REQUIRE(m.map(a, 0, 4).ok());
  REQUIRE(m.map(pin, kWinPages, 2).ok());
  const Pa pinned = m.last[0];
  const BarRevokeResult r = m.bar.unplug();
  CHECK(r.pagesRevoked == 6);
  CHECK(r.pagesPinned == 2);
  CHECK(m.bar.heldPages() == 0);  // the pinner's holds are void: the hardware is gone
  CHECK(m.bar.freeWindows() == 4);
  const BarMapResult after = m.map(a, 0, 1);
  CHECK(after.status == BarMapStatus::Gone);
  CHECK(after.err() == Errno::NoDev);
  // The pinner's late p2pUnmap is harmless and reported; its old address is illegal (unplugged).
  CHECK(m.unmap(pin, kWinPages, 2) == BarUnmapStatus::NotMapped);
  const DevPage p(kWinPages);
  const BarAccessCheck c = m.bar.checkAccess(pinned, kPageSize, &p);
  CHECK_FALSE(c.legal);
  CHECK(c.cause == BarEvent::Unplugged);
  CHECK(m.bar.moveWindow(BarWindowIdx(0), BarWindowIdx(1)).err == Errno::NoDev);
  CHECK(m.bar.resetBegin().err == Errno::NoDev);
}

TEST_CASE("p2p bar: checkAccess tells live from outside, never mapped, crossing and re-pointed windows") {
  ModelImporters m(smallBar(2, 32));
  m.bar.setTimeSource([] { return std::uint64_t(1234); });
  Device a("imp0"), b("imp1"), c("imp2");
  REQUIRE(m.map(a, 7, 1).ok());
  const Pa addr = m.last[0];
  const DevPage p7(7);
  BarAccessCheck ok = m.bar.checkAccess(m.bar.busOf(addr), 64, &p7);
  CHECK(ok.legal);
  CHECK(ok.page == p7);

  BarAccessCheck out = m.bar.checkAccess(BusAddr(0x1000), 4);
  CHECK_FALSE(out.legal);
  CHECK_FALSE(out.inAperture);
  CHECK(out.describe() == "outside the BAR aperture");

  BarAccessCheck never = m.bar.checkAccess(m.bar.params().barBus + (2ull << 20), 4);
  CHECK_FALSE(never.legal);
  CHECK(never.cause == BarEvent::None);
  CHECK(never.describe() == "window 1 never mapped");

  BarAccessCheck cross = m.bar.checkAccess(m.bar.busOf(addr) + (kPageSize - 8), (2ull << 20));
  CHECK(cross.crossesWindow);
  CHECK_FALSE(cross.legal);

  REQUIRE(m.map(b, kWinPages, 1).ok());
  REQUIRE(m.map(c, 2 * kWinPages + 7, 1).ok());  // reclaims a's window (a revoked first)
  BarAccessCheck stale = m.bar.checkAccess(addr, kPageSize, &p7);
  CHECK_FALSE(stale.legal);
  CHECK(stale.wrongPage);
  CHECK(stale.cause == BarEvent::Reclaimed);
  CHECK(stale.causeTimePs == 1234);
  CHECK(stale.describe() ==
        "window 0 maps page 0x407, not 0x7 since it was reclaimed at 1234ps (bar event #1)");
  CHECK(m.bar.checkAccess(addr, kPageSize).legal);  // without the expected page: a live window
}

TEST_CASE(
    "p2p bar: reuse-before-revoke misbehaviour re-points a busy window silently and checkAccess catches the "
    "stale user") {
  P2pBarParams p = smallBar(1, 8);
  p.reuseBeforeRevoke = true;
  ModelImporters m(p);
  Device a("imp0"), b("imp1");
  REQUIRE(m.map(a, 2, 1).ok());
  const Pa aAddr = m.last[0];
  REQUIRE(m.map(b, kWinPages + 2, 1).ok());
  CHECK(m.calls.empty());  // the importers were never told
  CHECK(m.bar.stats().counterValue("forced_reuse_pages") == 1);
  const DevPage p2(2);
  const BarAccessCheck c = m.bar.checkAccess(aAddr, kPageSize, &p2);  // a still believes page 2 is there
  CHECK_FALSE(c.legal);
  CHECK(c.cause == BarEvent::Forced);
  CHECK(m.bar.unmap(a, DevPage(2), 1) == BarUnmapStatus::NotMapped);
}

TEST_CASE("p2p bar: an unbalanced unmap is reported as NotMapped and changes nothing else") {
  ModelImporters m(smallBar(2, 32));
  Device a("imp0"), b("imp1");
  REQUIRE(m.map(a, 0, 2).ok());
  CHECK(m.bar.unmap(b, DevPage(0), 2) == BarUnmapStatus::NotMapped);  // b never mapped them
  CHECK(m.bar.unmap(a, DevPage(1), 2) == BarUnmapStatus::NotMapped);  // page 2 is not a's
  CHECK(m.bar.heldPages(a) == 1);
  CHECK(m.bar.stats().counterValue("unmap_unbalanced") == 3);
  CHECK(m.bar.unmap(a, DevPage(0), 0) == BarUnmapStatus::OutOfRange);
  CHECK(m.bar.unmap(a, DevPage(32 * kWinPages), 1) == BarUnmapStatus::OutOfRange);
  CHECK(m.map(a, 32 * kWinPages - 1, 2).status == BarMapStatus::OutOfRange);
  CHECK(m.map(a, 32 * kWinPages - 1, 2).err() == Errno::Inval);
}

TEST_CASE("p2p bar: parameter check names the bad key and the fix") {
  P2pBarParams p;
  CHECK(p.check().empty());
  p.windowBytes = 3000;
  CHECK(p.check().find("p2p_bar.window_bytes") != std::string::npos);
  p = P2pBarParams{};
  p.apertureBytes = (2ull << 20) + 4096;
  CHECK(p.check().find("p2p_bar.aperture_bytes") != std::string::npos);
  p = P2pBarParams{};
  p.policy = BarPolicy::Unlimited;
  CHECK(p.check().find("p2p_bar.policy: unlimited needs aperture_bytes") != std::string::npos);
  p = P2pBarParams{};
  p.policy = BarPolicy::PerImporterCap;
  CHECK(p.check().find("p2p_bar.importer_cap_pages") != std::string::npos);
  p = P2pBarParams{};
  p.barPa = Pa(0x1000);
  CHECK(p.check().find("p2p_bar.bar_pa") != std::string::npos);
  p = P2pBarParams{};
  p.deviceMemBytes = 0;
  CHECK(p.check().find("p2p_bar.device_mem_bytes") != std::string::npos);
}
