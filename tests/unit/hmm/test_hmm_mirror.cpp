// HmmMirror: the update-lock pattern of hmm.rst, one behaviour per case.

#include <catch2/catch.hpp>

#include <functional>
#include <map>

#include "hmm/mirror.h"
#include "tests/unit/hmm/hmm_test_support.h"

using namespace hmmsim;
using namespace hmmsim::test;

namespace {
constexpr std::uint64_t kP = kPageSize;

/// A device page table like dmirror's xarray: va page -> hmm pfn entry.
class FakeDevice : public HmmMirrorDriver {
 public:
  void zapDeviceRange(Va start, Va end, const MmuNotifierRange& range) override {
    zaps.push_back({start, end, range.event});
    for (Va a = start; a < end; a += kP) pt.erase(a.value());
  }
  void commitPfns(const HmmRange& range) override {
    ++commitCalls;
    for (Va a = range.start; a < range.end; a += kP)
      pt[a.value()] = range.hmmPfns[(a - range.start) >> kPageShift];
  }
  struct Zap {
    Va start, end;
    MmuNotifierEvent event;
  };
  std::map<std::uint64_t, unsigned long> pt;
  std::vector<Zap> zaps;
  unsigned commitCalls = 0;
};

/// Runs "another context's" work when the caller must sleep (here: on the update lock).
// "The other thread" runs in its own execution context, so lockdep keeps its locks apart from
// the sleeper's.
class RunOtherBlocker final : public Blocker {
 public:
  std::function<void()> other;
  unsigned sleeps = 0;
  ExecContext main{"task"};
  ExecContext otherCtx{"other"};
  ExecContext* cur = &main;
  ExecContext& current() override { return *cur; }
  void sleepOn(WaitQueue& /*wq*/, const char* /*what*/) override {
    ++sleeps;
    REQUIRE(other);
    auto fn = std::move(other);
    other = nullptr;
    cur = &otherCtx;
    fn();
    cur = &main;
  }
  /// Runs `fn` as the other thread (it takes a lock the sleeper will contend on).
  template <class Fn>
  void asOther(Fn fn) {
    cur = &otherCtx;
    fn();
    cur = &main;
  }
};
}  // namespace

TEST_CASE("HmmMirror::fault commits the faulted pfns to the device page table") {
  HmmFixture f;
  FakeDevice dev;
  HmmMirror mirror(*f.mm, dev, f.owner());
  REQUIRE(mirror.insert(Va(0), ~0ull & ~(kP - 1)) == Errno::Ok);
  const Va a = f.mapAnon(40 * kP);
  f.fillPattern(a, 40);
  REQUIRE(mirror.fault(a, a + 40 * kP, false) == HmmStatus::Ok);
  REQUIRE(dev.commitCalls == 2);  // 32-page chunks
  REQUIRE(dev.pt.size() == 40);
  REQUIRE(hmmPfnToPfn(dev.pt.at((a + 39 * kP).value())) == f.pteAt(a + 39 * kP).pfn());
}

TEST_CASE("HmmMirror invalidation sets the seq and zaps the device range under the update lock") {
  HmmFixture f;
  FakeDevice dev;
  HmmMirror mirror(*f.mm, dev, f.owner());
  REQUIRE(mirror.insert(Va(0), ~0ull & ~(kP - 1)) == Errno::Ok);
  const Va a = f.mapAnon(4 * kP);
  f.fillPattern(a, 4);
  REQUIRE(mirror.fault(a, a + 4 * kP, true) == HmmStatus::Ok);
  const std::uint64_t seq = mirror.notifier().invalidateSeq();
  REQUIRE(f.mm->madvise(a + kP, kP, MADV_DONTNEED) == Errno::Ok);
  REQUIRE(mirror.notifier().invalidateSeq() != seq);
  REQUIRE(dev.pt.count((a + kP).value()) == 0);
  REQUIRE(dev.pt.count(a.value()) == 1);
  REQUIRE_FALSE(mirror.updateLock().held());
}

TEST_CASE("HmmMirror retries on readRetry and never commits the stale pfns") {
  HmmFixture f;
  RunOtherBlocker blk;
  f.mm->notifierSubscriptions().setBlocker(blk);
  FakeDevice dev;
  HmmMirror mirror(*f.mm, dev, f.owner());
  REQUIRE(mirror.insert(Va(0), ~0ull & ~(kP - 1)) == Errno::Ok);
  const Va a = f.mapAnon(kP);
  f.store(a, 1);
  const Pfn oldPfn = f.pteAt(a).pfn();
  f.pm.getPage(oldPfn);  // keep the old frame from being reused for the new page
  // The update lock is held by "another thread" when the mirror wants to commit; that thread
  // releases it after an invalidation replaced the page (zap + set_seq under the same lock).
  blk.asOther([&] { REQUIRE(mirror.updateLock().tryLock()); });
  blk.other = [&] {
    mirror.updateLock().unlock();
    REQUIRE(f.mm->madvise(a, kP, MADV_DONTNEED) == Errno::Ok);
    f.store(a, 2);  // a new page
  };
  REQUIRE(mirror.fault(a, a + kP, false) == HmmStatus::Ok);
  REQUIRE(blk.sleeps == 1);
  REQUIRE(mirror.readRetries() == 1);
  REQUIRE(dev.commitCalls == 1);
  const Pfn committed = hmmPfnToPfn(dev.pt.at(a.value()));
  REQUIRE(committed != oldPfn);
  REQUIRE(committed == f.pteAt(a).pfn());
  f.pm.putPage(oldPfn);
  f.mm->notifierSubscriptions().setBlocker(singleThreadBlocker());
}

TEST_CASE("HmmMirror returns Busy when its retry budget (HMM_RANGE_DEFAULT_TIMEOUT) is spent") {
  HmmFixture f;
  RunOtherBlocker blk;
  f.mm->notifierSubscriptions().setBlocker(blk);
  FakeDevice dev;
  HmmMirrorParams p;
  p.maxRetries = 0;
  HmmMirror mirror(*f.mm, dev, f.owner(), p);
  REQUIRE(mirror.insert(Va(0), ~0ull & ~(kP - 1)) == Errno::Ok);
  const Va a = f.mapAnon(kP);
  f.store(a, 1);
  blk.asOther([&] { REQUIRE(mirror.updateLock().tryLock()); });
  blk.other = [&] {
    mirror.updateLock().unlock();
    REQUIRE(f.mm->madvise(a, kP, MADV_DONTNEED) == Errno::Ok);
  };
  REQUIRE(mirror.fault(a, a + kP, false) == HmmStatus::Busy);
  REQUIRE(dev.commitCalls == 0);
  REQUIRE(mirror.stats().counterValue("timeouts") == 1);
  f.mm->notifierSubscriptions().setBlocker(singleThreadBlocker());
}

TEST_CASE("HmmMirror::fault returns hmmRangeFault's Perm for a write to a read-only vma") {
  HmmFixture f;
  FakeDevice dev;
  HmmMirror mirror(*f.mm, dev, f.owner());
  REQUIRE(mirror.insert(Va(0), ~0ull & ~(kP - 1)) == Errno::Ok);
  const Va a = f.mapAnon(kP, PROT_READ);
  REQUIRE(mirror.fault(a, a + kP, true) == HmmStatus::Perm);
  REQUIRE(dev.commitCalls == 0);
}

TEST_CASE("HmmMirror skips its own MIGRATE events and zaps for other owners' migrations") {
  HmmFixture f;
  FakeDevice dev;
  HmmMirror mirror(*f.mm, dev, f.owner());
  REQUIRE(mirror.insert(Va(0), ~0ull & ~(kP - 1)) == Errno::Ok);
  const Va a = f.mapAnon(2 * kP);
  f.fillPattern(a, 2);
  REQUIRE(mirror.fault(a, a + 2 * kP, false) == HmmStatus::Ok);
  f.migrateToDevice(a, a + kP);  // owner == mirror's owner
  REQUIRE(dev.zaps.empty());
  REQUIRE(mirror.stats().counterValue("skipped_own") == 1);
  // A migration by another device owner is a real invalidation for this mirror.
  std::vector<unsigned long> src(1), dst(1);
  static const int other = 0;
  MigrateVma m;
  {
    MmapReadLock l(*f.mm);
    m.vma = f.mm->vmaLookup(a + kP);
    m.src = src.data();
    m.dst = dst.data();
    m.start = a + kP;
    m.end = a + 2 * kP;
    m.pgmapOwner = &other;
    m.flags = MIGRATE_VMA_SELECT_SYSTEM;
    REQUIRE(migrateVmaSetup(m) == Errno::Ok);
    migrateVmaFinalize(m);  // nothing copied: restored
  }
  REQUIRE(dev.zaps.size() == 1);
  REQUIRE(dev.zaps[0].event == MmuNotifierEvent::Migrate);
  REQUIRE(dev.pt.count((a + kP).value()) == 0);
}

TEST_CASE("HmmMirror refuses a non-blockable invalidation while its update lock is held") {
  HmmFixture f;
  FakeDevice dev;
  HmmMirror mirror(*f.mm, dev, f.owner());
  REQUIRE(mirror.insert(Va(0), ~0ull & ~(kP - 1)) == Errno::Ok);
  MmuNotifierRange r;
  mmuNotifierRangeInit(r, MmuNotifierEvent::Unmap, 0, f.mm.get(), Va(0x1000), Va(0x2000));
  REQUIRE(mirror.updateLock().tryLock());
  REQUIRE_FALSE(mirror.invalidate(mirror.notifier(), r, 3));
  mirror.updateLock().unlock();
  REQUIRE(mirror.invalidate(mirror.notifier(), r, 3));
  REQUIRE(mirror.notifier().invalidateSeq() == 3);
  REQUIRE(dev.zaps.size() == 1);
}
