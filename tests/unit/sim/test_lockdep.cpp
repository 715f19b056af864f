// sim/lockdep.h and sim/rwsem.h in pure C++: every lockdep report, each checked through the
// InvariantChecker (CheckRule::Locking) with the context, the locks held and the sites named.

#include <catch2/catch.hpp>

#include <string>

#include "sim/checker.h"
#include "sim/lockdep.h"
#include "sim/rwsem.h"
#include "sim/wait_queue.h"

using namespace hmmsim;

namespace {
constexpr LockClass kOuter{"test_outer_sem", 5, LockKind::Sleeping};
constexpr LockClass kInner{"test_inner_sem", 15, LockKind::Sleeping};
constexpr LockClass kSpin{"test_spin", 40, LockKind::Spinning};

struct Fixture {
  InvariantChecker checker;
  Lockdep lockdep;
  ExecContext cpu0{"cpu0", lockdep};
  ExecContext dev0{"dev0", lockdep};
  SingleThreadBlocker blocker;
  Fixture() {
    lockdep.setChecker(&checker);
    blocker.setCurrent(&cpu0);
  }
  const Violation& only(LockdepError e) {
    REQUIRE(lockdep.total() == 1);
    REQUIRE(lockdep.count(e) == 1);
    REQUIRE(checker.violations().size() == 1);
    const Violation& v = checker.violations()[0];
    CHECK(v.rule == CheckRule::Locking);
    CHECK(v.cause.find(lockdepErrorName(e)) == 0);
    return v;
  }
};
}  // namespace

TEST_CASE("lockdep: a correctly ordered, balanced sequence reports nothing") {
  Fixture f;
  RwSemaphore outer(kOuter), inner(kInner);
  SpinLock spin(kSpin);
  outer.downRead(f.blocker);
  inner.downWrite(f.blocker);
  spin.lock(f.cpu0);
  spin.unlock(f.cpu0);
  inner.upWrite(f.blocker);
  outer.upRead(f.blocker);
  f.cpu0.sysExit(LockSite::here());
  CHECK(f.lockdep.total() == 0);
  CHECK(f.checker.ok());
}

TEST_CASE("lockdep: taking an outer lock while holding an inner one is reported with both sites") {
  Fixture f;
  RwSemaphore outer(kOuter), inner(kInner);
  inner.downRead(f.blocker);
  outer.downRead(f.blocker);
  const Violation& v = f.only(LockdepError::OutOfOrder);
  CHECK(v.device == "cpu0");
  CHECK(v.cause.find("test_outer_sem") != std::string::npos);
  CHECK(v.cause.find("test_inner_sem") != std::string::npos);
  CHECK(v.cause.find("test_lockdep.cpp:") != std::string::npos);
}

TEST_CASE("lockdep: a nested subclass of the same class is in order, the same subclass is not") {
  Fixture f;
  RwSemaphore a(kOuter), b(kOuter), c(kOuter);
  a.downWrite(f.blocker);
  b.downWrite(f.blocker, 1);  // mmap_write_lock_nested(SINGLE_DEPTH_NESTING)
  CHECK(f.lockdep.total() == 0);
  c.downWrite(f.blocker, 1);
  f.only(LockdepError::OutOfOrder);
}

TEST_CASE("lockdep: a second down_read of a held rwsem is recursive locking") {
  Fixture f;
  RwSemaphore sem(kOuter);
  sem.downRead(f.blocker);
  sem.downRead(f.blocker);
  const Violation& v = f.only(LockdepError::Recursive);
  CHECK(v.device == "cpu0");
  CHECK(v.cause.find("test_outer_sem (read) acquired at") != std::string::npos);
}

TEST_CASE("lockdep: releasing a lock another context holds is reported in the releasing context") {
  Fixture f;
  RwSemaphore sem(kOuter);
  sem.downRead(f.blocker);  // cpu0
  f.blocker.setCurrent(&f.dev0);
  sem.upRead(f.blocker);
  const Violation& v = f.only(LockdepError::ReleaseNotHeld);
  CHECK(v.device == "dev0");
  CHECK(f.cpu0.holds(&sem));
}

TEST_CASE("lockdep: taking a sleeping lock or waiting while holding a spinlock is sleep-in-atomic") {
  Fixture f;
  RwSemaphore sem(kOuter);
  SpinLock spin(kSpin);
  spin.lock(f.cpu0);
  WaitQueue wq;
  waitEvent(
      f.blocker, wq, [] { return true; }, "test wait");
  const Violation& v = f.only(LockdepError::SleepInAtomic);
  CHECK(v.cause.find("test wait") != std::string::npos);
  CHECK(v.cause.find("test_spin (write) acquired at") != std::string::npos);
  spin.unlock(f.cpu0);
  // A trylock never sleeps: not reported even under a spinlock.
  spin.lock(f.cpu0);
  CHECK(sem.downReadTrylock(f.blocker));
  CHECK(f.lockdep.count(LockdepError::SleepInAtomic) == 1);
}

TEST_CASE("lockdep: a might-sleep point inside a non-blockable section is reported") {
  Fixture f;
  RwSemaphore sem(kOuter);
  f.cpu0.nonBlockStart();
  sem.downWrite(f.blocker);
  f.cpu0.nonBlockEnd();
  const Violation& v = f.only(LockdepError::SleepInNonblockable);
  CHECK(v.device == "cpu0");
  CHECK(v.cause.find("test_outer_sem") != std::string::npos);
}

TEST_CASE("lockdep: returning to user space with a lock held is reported with the lock") {
  Fixture f;
  RwSemaphore sem(kInner);
  sem.downRead(f.blocker);
  f.cpu0.sysExit(LockSite::here());
  const Violation& v = f.only(LockdepError::HeldAtUserReturn);
  CHECK(v.cause.find("test_inner_sem (read) acquired at") != std::string::npos);
  // Another context holding nothing returns cleanly.
  f.dev0.sysExit(LockSite::here());
  CHECK(f.lockdep.total() == 1);
}

TEST_CASE("rwsem trylocks fail while held incompatibly and succeed when free") {
  Fixture f;
  RwSemaphore sem(kOuter);
  CHECK(sem.downWriteTrylock(f.blocker));
  f.blocker.setCurrent(&f.dev0);
  CHECK_FALSE(sem.downReadTrylock(f.blocker));
  CHECK_FALSE(sem.downWriteTrylock(f.blocker));
  f.blocker.setCurrent(&f.cpu0);
  sem.downgradeWrite(f.blocker);
  f.blocker.setCurrent(&f.dev0);
  CHECK(sem.downReadTrylock(f.blocker));
  CHECK(sem.readers() == 2);
  sem.upRead(f.blocker);
  f.blocker.setCurrent(&f.cpu0);
  sem.upRead(f.blocker);
  CHECK_FALSE(sem.isLocked());
  CHECK(f.lockdep.total() == 0);
}
