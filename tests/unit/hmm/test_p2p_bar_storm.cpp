// Seeded randomized storms over P2pBarManager: maps, unmaps, range revokes, window moves,
// defragmentation and resets by several importers under each revoking policy. After every step,
// every page an importer still holds must be reachable at the address it was given (checker rule 3
// with the expected page): no window is re-pointed before its importers were revoked. The
// manager's counts must equal the model's. Same seed -> same run (the step log is compared).

#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "hmm/p2p_bar_manager.h"
#include "sim/device.h"
#include "sim/rng.h"
#include "tests/unit/hmm/p2p_bar_test_support.h"

using namespace hmmsim;
using namespace hmmsim::test;

namespace {

constexpr std::uint64_t kStormWindows = 3;
constexpr std::uint64_t kStormChunks = 8;
constexpr std::uint64_t kStormWinPages = 16;  // 64 KiB windows keep the storm small

P2pBarParams stormBar(BarPolicy policy) {
  P2pBarParams p;
  p.windowBytes = kStormWinPages * kPageSize;
  p.apertureBytes = kStormWindows * p.windowBytes;
  p.deviceMemBytes = kStormChunks * p.windowBytes;
  p.policy = policy;
  p.importerCapPages = 24;
  p.barPa = Pa(0x80'0000'0000ull);
  p.barBus = BusAddr(0x10'0000'0000ull);
  return p;
}

struct StormOptions {
  BarPolicy policy = BarPolicy::LruReclaim;
  bool withPinner = false;  ///< one importer ignores revocation (then no resets: they void pins)
  bool withResets = true;
  int steps = 400;
};

/// Runs one storm; returns a log of outcomes (for the determinism check).
std::string storm(std::uint64_t seed, const StormOptions& o, std::uint64_t* hookCalls = nullptr) {
  ModelImporters m(stormBar(o.policy));
  Device d0("imp0"), d1("imp1"), d2("imp2"), pin("pinner");
  std::vector<const Device*> devs{&d0, &d1, &d2};
  if (o.withPinner) {
    devs.push_back(&pin);
    m.pinning.insert(&pin);
  }
  Rng rng(seed);
  std::string log;
  const std::uint64_t totalPages = kStormChunks * kStormWinPages;
  for (int step = 0; step < o.steps; ++step) {
    const std::uint64_t op = rng.below(100);
    const Device& d = *devs[rng.below(devs.size())];
    if (op < 50) {
      const std::uint64_t n = 1 + rng.below(kStormWinPages + 4);  // may span two chunks
      const std::uint64_t first = rng.below(totalPages - n + 1);
      const BarMapMode mode = rng.below(2) ? BarMapMode::AllOrNothing : BarMapMode::Prefix;
      const std::uint64_t before = m.bar.heldPages(d);
      const BarMapResult r = m.map(d, first, n, mode);
      REQUIRE(m.bar.heldPages(d) <= before + r.pages);  // less when its own older pages were reclaimed
      if (mode == BarMapMode::AllOrNothing) REQUIRE((r.pages == 0 || r.pages == n));
      REQUIRE((r.ok() == (r.pages == n)));
      // Under LRU reclaim a request that fits the aperture only fails for pinned windows.
      if (o.policy == BarPolicy::LruReclaim && !o.withPinner) REQUIRE(r.ok());
      log += barMapStatusName(r.status);
    } else if (op < 80) {
      // Unmap one of d's holds (what an importer does when it is done).
      auto it = m.holds.lower_bound({&d, 0});
      if (it != m.holds.end() && it->first.first == &d) {
        std::uint64_t skip = rng.below(8);
        while (skip-- && std::next(it) != m.holds.end() && std::next(it)->first.first == &d) ++it;
        const std::uint64_t page = it->first.second;
        REQUIRE(m.unmap(d, page, 1) == BarUnmapStatus::Unmapped);
        log += "u";
      }
    } else if (op < 88) {
      const std::uint64_t n = 1 + rng.below(2 * kStormWinPages);
      const std::uint64_t first = rng.below(totalPages - n + 1);
      const BarRevokeResult r = m.bar.revokeRange(DevPage(first), n);
      REQUIRE(r.err == Errno::Ok);
      for (std::uint64_t p = first; p < first + n; ++p)
        for (const Device* x : devs)
          if (!m.pinning.count(x)) REQUIRE(m.holds.count({x, p}) == 0);
      log += "r";
    } else if (op < 95) {
      const BarWindowIdx from(rng.below(kStormWindows)), to(rng.below(kStormWindows));
      const BarRevokeResult r = m.bar.moveWindow(from, to);
      log += errnoName(r.err);
    } else if (op < 98) {
      const BarRevokeResult r = m.bar.defragment();
      REQUIRE(r.err == Errno::Ok);
      log += "d";
    } else if (o.withResets) {
      m.bar.reset();
      REQUIRE(m.holds.empty());
      log += "R";
    }
    m.requireHoldsLive();
    REQUIRE(m.bar.heldPages() == m.heldTotal());
    for (const Device* x : devs) REQUIRE(m.bar.heldPages(*x) == m.heldBy(*x));
    if (o.policy == BarPolicy::PerImporterCap)
      for (const Device* x : devs) REQUIRE(m.bar.heldPages(*x) <= 24);
    REQUIRE(m.bar.freeWindows() + m.bar.idleWindows() + m.bar.busyWindows() == kStormWindows);
  }
  // Everyone gives everything back: every window ends idle or free, nothing held.
  while (!m.holds.empty()) {
    auto it = m.holds.begin();
    REQUIRE(m.unmap(*it->first.first, it->first.second, 1) == BarUnmapStatus::Unmapped);
  }
  REQUIRE(m.bar.heldPages() == 0);
  REQUIRE(m.bar.busyWindows() == 0);
  REQUIRE(m.bar.stats().counterValue("unmap_unbalanced") == 0);
  if (hookCalls) *hookCalls += m.bar.stats().counterValue("revoke_hook_calls");
  return log;
}

void stormSeeds(const StormOptions& o, std::uint64_t seeds) {
  std::uint64_t hookCalls = 0;
  for (std::uint64_t seed = 1; seed <= seeds; ++seed) {
    INFO("seed " << seed);
    storm(seed, o, &hookCalls);
  }
  CHECK(hookCalls > seeds);  // the storms really revoked importers
}

}  // namespace

TEST_CASE(
    "p2p bar storm: LRU reclaim never re-points a window before its importers were revoked (32 seeds)") {
  StormOptions o;
  stormSeeds(o, 32);
}

TEST_CASE(
    "p2p bar storm: with an importer that ignores revocation, its pinned windows are never reused (32 "
    "seeds)") {
  StormOptions o;
  o.withPinner = true;
  o.withResets = false;
  stormSeeds(o, 32);
}

TEST_CASE("p2p bar storm: the per-importer cap holds and no window is reused before revocation (32 seeds)") {
  StormOptions o;
  o.policy = BarPolicy::PerImporterCap;
  stormSeeds(o, 32);
}

TEST_CASE(
    "p2p bar storm: refuse-when-busy never revokes for a map and never reuses a held window (32 seeds)") {
  StormOptions o;
  o.policy = BarPolicy::RefuseWhenBusy;
  stormSeeds(o, 32);
}

TEST_CASE("p2p bar storm: the same seed gives the same sequence of outcomes") {
  StormOptions o;
  o.withPinner = true;
  o.withResets = false;
  const std::string a = storm(7, o), b = storm(7, o), c = storm(8, o);
  CHECK(a == b);
  CHECK(a != c);
}
