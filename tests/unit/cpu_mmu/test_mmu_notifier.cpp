// Pure-logic tests of the mm's mmu-notifier mechanism (models/cpu_mmu/mmu_notifier.h): the
// sequence protocol, the interval lookup, deferral, the non-blocking unwind and release.
// No sc_start here; sleeping is exercised through a scripted Blocker that runs "the other thread".

#include <catch2/catch.hpp>

#include <functional>
#include <limits>
#include <vector>

#include "models/cpu_mmu/mmu_notifier.h"

using namespace hmmsim;

namespace {

struct Call {
  MmuIntervalNotifier* sub;
  Va start, end;
  MmuNotifierEvent event;
  const void* owner;
  unsigned flags;
  std::uint64_t curSeq;
};

// A driver's interval ops: records every call; sets the seq (as a correct driver must) unless told
// not to; refuses (returns false) when `refuse` is set.
class RecordingOps : public MmuIntervalNotifierOps {
 public:
  bool invalidate(MmuIntervalNotifier& sub, const MmuNotifierRange& range, std::uint64_t curSeq) override {
    calls.push_back({&sub, range.start, range.end, range.event, range.owner, range.flags, curSeq});
    if (refuse) return false;
    sub.setSeq(curSeq);
    return true;
  }
  std::vector<Call> calls;
  bool refuse = false;
};

// A plain subscriber that logs what it sees into a shared log (to check the order across subscribers).
class LoggingNotifier : public MmuNotifier {
 public:
  LoggingNotifier(std::vector<std::string>& log, std::string name) : log_(log), name_(std::move(name)) {}
  void release(Mm*) override { log_.push_back(name_ + ".release"); }
  Errno invalidateRangeStart(const MmuNotifierRange& range) override {
    log_.push_back(name_ + ".start");
    lastFlags = range.flags;
    return startResult;
  }
  void invalidateRangeEnd(const MmuNotifierRange&) override { log_.push_back(name_ + ".end"); }
  void archInvalidateSecondaryTlbs(Mm*, Va start, Va end) override {
    log_.push_back(name_ + ".tlb");
    tlbStart = start;
    tlbEnd = end;
  }
  Errno startResult = Errno::Ok;
  unsigned lastFlags = 0;
  Va tlbStart, tlbEnd;

 private:
  std::vector<std::string>& log_;
  std::string name_;
};

// Stands in for "another thread": when a kernel path must sleep, it runs `onSleep` (which is
// expected to make the awaited condition true, e.g. by ending the invalidation).
class ScriptedBlocker : public Blocker {
 public:
  void sleepOn(WaitQueue&, const char* what) override {
    ++sleeps;
    lastWhat = what;
    REQUIRE(onSleep);
    auto f = std::move(onSleep);
    onSleep = nullptr;
    f();
  }
  std::function<void()> onSleep;
  int sleeps = 0;
  std::string lastWhat;
};

MmuNotifierRange makeRange(Va start, Va end, MmuNotifierEvent ev = MmuNotifierEvent::Unmap,
                           const void* owner = nullptr) {
  MmuNotifierRange r;
  mmuNotifierRangeInitOwner(r, ev, 0, nullptr, start, end, owner);
  return r;
}

constexpr std::uint64_t kPage = kPageSize;

}  // namespace

TEST_CASE("interval notifier insert links it into the tree and remove unlinks it") {
  MmuNotifierSubscriptions subs(nullptr);
  RecordingOps ops;
  MmuIntervalNotifier sub;
  REQUIRE(subs.mmuIntervalNotifierInsert(sub, Va(0x10000), 4 * kPage, ops) == Errno::Ok);
  CHECK(sub.inserted());
  CHECK(sub.inTree());
  CHECK(sub.start() == Va(0x10000));
  CHECK(sub.last() == Va(0x10000 + 4 * kPage - 1));
  CHECK(sub.ops() == &ops);
  CHECK(subs.intervalCount() == 1);
  // Not under invalidation: the initial seq is odd and differs from the (even) global seq.
  CHECK(sub.invalidateSeq() == MmuNotifierSubscriptions::kInitialSeq - 1);
  CHECK(subs.invalidateSeq() == MmuNotifierSubscriptions::kInitialSeq);

  sub.remove();
  CHECK_FALSE(sub.inserted());
  CHECK_FALSE(sub.inTree());
  CHECK(subs.intervalCount() == 0);
}

TEST_CASE(
    "insert with zero length or an end past the top of the address space returns EINVAL and changes "
    "nothing") {
  MmuNotifierSubscriptions subs(nullptr);
  RecordingOps ops;
  MmuIntervalNotifier sub;
  CHECK(subs.mmuIntervalNotifierInsert(sub, Va(0x1000), 0, ops) == Errno::Overflow);
  CHECK(subs.mmuIntervalNotifierInsert(sub, Va(~0ull - kPage + 2), kPage, ops) == Errno::Overflow);
  CHECK_FALSE(sub.inserted());
  CHECK(subs.intervalCount() == 0);
  // The very last byte is fine: last = ULONG_MAX does not overflow.
  CHECK(subs.mmuIntervalNotifierInsert(sub, Va(~0ull - kPage + 1), kPage, ops) == Errno::Ok);
  sub.remove();
}

TEST_CASE(
    "an invalidation calls exactly the overlapping interval notifiers with its range, event, owner and an "
    "odd seq") {
  MmuNotifierSubscriptions subs(nullptr);
  RecordingOps ops;
  MmuIntervalNotifier below, touchingStart, inside, touchingEnd, above;
  // Invalidate [0x10000, 0x20000): end is exclusive.
  REQUIRE(subs.mmuIntervalNotifierInsert(below, Va(0x0f000), kPage, ops) == Errno::Ok);  // ends at 0xffff
  REQUIRE(subs.mmuIntervalNotifierInsert(touchingStart, Va(0x0f000), 2 * kPage, ops) ==
          Errno::Ok);  // covers 0x10000
  REQUIRE(subs.mmuIntervalNotifierInsert(inside, Va(0x14000), kPage, ops) == Errno::Ok);
  REQUIRE(subs.mmuIntervalNotifierInsert(touchingEnd, Va(0x1f000), 4 * kPage, ops) ==
          Errno::Ok);  // starts at the last page
  REQUIRE(subs.mmuIntervalNotifierInsert(above, Va(0x20000), kPage, ops) == Errno::Ok);  // starts at end

  int ownerCookie = 0;
  MmuNotifierRange r = makeRange(Va(0x10000), Va(0x20000), MmuNotifierEvent::Migrate, &ownerCookie);
  subs.invalidateRangeStart(r);
  REQUIRE(ops.calls.size() == 3);
  // Start order.
  CHECK(ops.calls[0].sub == &touchingStart);
  CHECK(ops.calls[1].sub == &inside);
  CHECK(ops.calls[2].sub == &touchingEnd);
  for (const Call& c : ops.calls) {
    CHECK(c.start == Va(0x10000));
    CHECK(c.end == Va(0x20000));
    CHECK(c.event == MmuNotifierEvent::Migrate);
    CHECK(c.owner == &ownerCookie);
    CHECK((c.flags & kMmuNotifierRangeBlockable) != 0);
    CHECK(c.curSeq == subs.invalidateSeq());
    CHECK(c.curSeq % 2 == 1);
  }
  subs.invalidateRangeEnd(r);
  for (auto* s : {&below, &touchingStart, &inside, &touchingEnd, &above}) s->remove();
}

TEST_CASE("readRetry is false when no invalidation hit the range since readBegin") {
  MmuNotifierSubscriptions subs(nullptr);
  RecordingOps ops;
  MmuIntervalNotifier sub;
  REQUIRE(subs.mmuIntervalNotifierInsert(sub, Va(0x100000), 16 * kPage, ops) == Errno::Ok);
  const std::uint64_t seq = sub.readBegin();
  // An invalidation elsewhere does not disturb the reader.
  MmuNotifierRange r = makeRange(Va(0x200000), Va(0x201000));
  subs.invalidateRangeStart(r);
  subs.invalidateRangeEnd(r);
  CHECK_FALSE(sub.readRetry(seq));
  CHECK_FALSE(sub.checkRetry(seq));
  CHECK(subs.stats().counterValue("read_retry") == 0);
  sub.remove();
}

TEST_CASE("readRetry is true after an overlapping invalidation whose callback called setSeq") {
  MmuNotifierSubscriptions subs(nullptr);
  RecordingOps ops;
  MmuIntervalNotifier sub;
  REQUIRE(subs.mmuIntervalNotifierInsert(sub, Va(0x100000), 16 * kPage, ops) == Errno::Ok);
  const std::uint64_t seq = sub.readBegin();
  MmuNotifierRange r = makeRange(Va(0x104000), Va(0x105000), MmuNotifierEvent::Clear);
  subs.invalidateRangeStart(r);
  CHECK(sub.invalidateSeq() == ops.calls.at(0).curSeq);  // setSeq stored the odd cur_seq
  CHECK(sub.checkRetry(seq));                            // already visible before the end
  subs.invalidateRangeEnd(r);
  CHECK(sub.readRetry(seq));
  CHECK(subs.stats().counterValue("read_retry") == 1);
  CHECK(subs.stats().counterValue("check_retry") == 1);
  // A fresh read section after the end is clean again.
  const std::uint64_t seq2 = sub.readBegin();
  CHECK_FALSE(sub.readRetry(seq2));
  sub.remove();
}

TEST_CASE("nested and overlapping invalidations keep the seq odd until the last end and bump it once") {
  MmuNotifierSubscriptions subs(nullptr);
  RecordingOps ops;
  MmuIntervalNotifier a, b;
  REQUIRE(subs.mmuIntervalNotifierInsert(a, Va(0x1000), kPage, ops) == Errno::Ok);
  REQUIRE(subs.mmuIntervalNotifierInsert(b, Va(0x9000), kPage, ops) == Errno::Ok);
  const std::uint64_t seq0 = subs.invalidateSeq();
  MmuNotifierRange outer = makeRange(Va(0x0), Va(0x10000));
  MmuNotifierRange inner = makeRange(Va(0x1000), Va(0x2000));
  MmuNotifierRange other = makeRange(Va(0x9000), Va(0xa000));
  subs.invalidateRangeStart(outer);
  const std::uint64_t odd = subs.invalidateSeq();
  CHECK(odd == (seq0 | 1));
  subs.invalidateRangeStart(inner);
  subs.invalidateRangeStart(other);
  CHECK(subs.activeInvalidateRanges() == 3);
  CHECK(subs.invalidateSeq() == odd);
  // Every callback of the period saw the same odd seq.
  for (const Call& c : ops.calls) CHECK(c.curSeq == odd);
  subs.invalidateRangeEnd(inner);
  CHECK(subs.invalidateSeq() == odd);
  subs.invalidateRangeEnd(outer);
  CHECK(subs.invalidateSeq() == odd);
  subs.invalidateRangeEnd(other);
  CHECK(subs.invalidateSeq() == odd + 1);
  CHECK(subs.invalidateSeq() % 2 == 0);
  CHECK(subs.activeInvalidateRanges() == 0);
  CHECK(subs.stats().counterValue("seq_bumps") == 1);
  a.remove();
  b.remove();
}

TEST_CASE("an invalidation that overlaps no interval notifier leaves the seq even") {
  MmuNotifierSubscriptions subs(nullptr);
  RecordingOps ops;
  MmuIntervalNotifier a;
  REQUIRE(subs.mmuIntervalNotifierInsert(a, Va(0x1000), kPage, ops) == Errno::Ok);
  MmuNotifierRange r = makeRange(Va(0x8000), Va(0x9000));
  subs.invalidateRangeStart(r);
  CHECK(subs.activeInvalidateRanges() == 1);
  CHECK_FALSE(subs.isInvalidating());
  subs.invalidateRangeEnd(r);
  CHECK(subs.invalidateSeq() == MmuNotifierSubscriptions::kInitialSeq);
  CHECK(ops.calls.empty());
  a.remove();
}

TEST_CASE("insert during an overlapping invalidation is deferred and applied at the last end") {
  MmuNotifierSubscriptions subs(nullptr);
  RecordingOps ops;
  MmuIntervalNotifier existing, late;
  REQUIRE(subs.mmuIntervalNotifierInsert(existing, Va(0x1000), kPage, ops) == Errno::Ok);
  MmuNotifierRange r1 = makeRange(Va(0x0), Va(0x100000));
  MmuNotifierRange r2 = makeRange(Va(0x0), Va(0x100000));
  subs.invalidateRangeStart(r1);
  subs.invalidateRangeStart(r2);
  REQUIRE(subs.mmuIntervalNotifierInsert(late, Va(0x2000), kPage, ops) == Errno::Ok);
  CHECK(late.inserted());
  CHECK_FALSE(late.inTree());
  CHECK(subs.deferredCount() == 1);
  // Its seq equals the odd global seq, so a reader would wait for the end.
  CHECK(late.invalidateSeq() == subs.invalidateSeq());
  subs.invalidateRangeEnd(r1);
  CHECK_FALSE(late.inTree());
  subs.invalidateRangeEnd(r2);
  CHECK(late.inTree());
  CHECK(subs.deferredCount() == 0);
  CHECK(subs.stats().counterValue("deferred_inserts") == 1);
  // From now on it is invalidated like any other, and readBegin does not wait.
  CHECK(late.readBegin() == late.invalidateSeq());
  ops.calls.clear();
  MmuNotifierRange r3 = makeRange(Va(0x2000), Va(0x3000));
  subs.invalidateRangeStart(r3);
  subs.invalidateRangeEnd(r3);
  REQUIRE(ops.calls.size() == 1);
  CHECK(ops.calls[0].sub == &late);
  existing.remove();
  late.remove();
}

TEST_CASE("insert during a non-overlapping invalidation links at once and makes the seq odd") {
  MmuNotifierSubscriptions subs(nullptr);
  RecordingOps ops;
  MmuIntervalNotifier sub;
  MmuNotifierRange r = makeRange(Va(0x0), Va(0x100000));
  subs.invalidateRangeStart(r);
  REQUIRE_FALSE(subs.isInvalidating());
  REQUIRE(subs.mmuIntervalNotifierInsert(sub, Va(0x1000), kPage, ops) == Errno::Ok);
  CHECK(sub.inTree());
  // The running invalidation may cover the new range: the seq goes odd and equals the sub's.
  CHECK(subs.isInvalidating());
  CHECK(sub.invalidateSeq() == subs.invalidateSeq());
  subs.invalidateRangeEnd(r);
  CHECK_FALSE(subs.isInvalidating());
  CHECK(subs.stats().counterValue("seq_bumps") == 1);
  sub.remove();
}

TEST_CASE("remove during an invalidation is deferred, sleeps until the last end, then unlinks") {
  ScriptedBlocker blocker;
  MmuNotifierSubscriptions subs(nullptr, "mm.notifier", blocker);
  RecordingOps ops;
  MmuIntervalNotifier sub;
  REQUIRE(subs.mmuIntervalNotifierInsert(sub, Va(0x1000), kPage, ops) == Errno::Ok);
  MmuNotifierRange r = makeRange(Va(0x0), Va(0x10000));
  subs.invalidateRangeStart(r);
  bool inTreeWhileWaiting = false;
  std::size_t deferredWhileWaiting = 0;
  blocker.onSleep = [&] {
    // "Another thread": the invalidation is still running; the removal is queued.
    inTreeWhileWaiting = sub.inTree();
    deferredWhileWaiting = subs.deferredCount();
    subs.invalidateRangeEnd(r);
  };
  sub.remove();
  CHECK(blocker.sleeps == 1);
  CHECK(inTreeWhileWaiting);
  CHECK(deferredWhileWaiting == 1);
  CHECK_FALSE(sub.inserted());
  CHECK_FALSE(sub.inTree());
  CHECK(subs.intervalCount() == 0);
  CHECK(subs.stats().counterValue("deferred_removes") == 1);
  CHECK(subs.stats().counterValue("remove_sleeps") == 1);
}

TEST_CASE("remove of an insert that is still deferred cancels it without waiting") {
  ScriptedBlocker blocker;  // no onSleep: a sleep would fail the test
  MmuNotifierSubscriptions subs(nullptr, "mm.notifier", blocker);
  RecordingOps ops;
  MmuIntervalNotifier existing, late;
  REQUIRE(subs.mmuIntervalNotifierInsert(existing, Va(0x1000), kPage, ops) == Errno::Ok);
  MmuNotifierRange r = makeRange(Va(0x0), Va(0x10000));
  subs.invalidateRangeStart(r);
  REQUIRE(subs.mmuIntervalNotifierInsert(late, Va(0x2000), kPage, ops) == Errno::Ok);
  REQUIRE(subs.deferredCount() == 1);
  late.remove();
  CHECK(blocker.sleeps == 0);
  CHECK_FALSE(late.inserted());
  CHECK(subs.deferredCount() == 0);
  subs.invalidateRangeEnd(r);
  CHECK(subs.intervalCount() == 1);
  existing.remove();
}

TEST_CASE(
    "readBegin during an invalidation of its range sleeps until the end and returns the invalidation's seq") {
  ScriptedBlocker blocker;
  MmuNotifierSubscriptions subs(nullptr, "mm.notifier", blocker);
  RecordingOps ops;
  MmuIntervalNotifier sub;
  REQUIRE(subs.mmuIntervalNotifierInsert(sub, Va(0x1000), kPage, ops) == Errno::Ok);
  MmuNotifierRange r = makeRange(Va(0x0), Va(0x10000));
  subs.invalidateRangeStart(r);
  const std::uint64_t odd = subs.invalidateSeq();
  std::uint64_t seqWhenWoken = 0;
  blocker.onSleep = [&] {
    subs.invalidateRangeEnd(r);
    seqWhenWoken = subs.invalidateSeq();
  };
  const std::uint64_t seq = sub.readBegin();
  CHECK(blocker.sleeps == 1);
  CHECK(seq == odd);
  CHECK(seqWhenWoken == odd + 1);
  // No invalidation since: the read section is valid.
  CHECK_FALSE(sub.readRetry(seq));
  CHECK(subs.stats().counterValue("read_begin_sleeps") == 1);
  sub.remove();
}

TEST_CASE("readBegin does not sleep when the running invalidation does not cover its range") {
  ScriptedBlocker blocker;  // no onSleep: a sleep would fail the test
  MmuNotifierSubscriptions subs(nullptr, "mm.notifier", blocker);
  RecordingOps ops;
  MmuIntervalNotifier hit, miss;
  REQUIRE(subs.mmuIntervalNotifierInsert(hit, Va(0x1000), kPage, ops) == Errno::Ok);
  REQUIRE(subs.mmuIntervalNotifierInsert(miss, Va(0x100000), kPage, ops) == Errno::Ok);
  MmuNotifierRange r = makeRange(Va(0x0), Va(0x10000));
  subs.invalidateRangeStart(r);
  REQUIRE(subs.isInvalidating());
  const std::uint64_t seq = miss.readBegin();
  CHECK(blocker.sleeps == 0);
  subs.invalidateRangeEnd(r);
  CHECK_FALSE(miss.readRetry(seq));
  hit.remove();
  miss.remove();
}

TEST_CASE(
    "non-blockable start refused by an interval notifier returns EAGAIN and leaves the seq protocol "
    "consistent") {
  MmuNotifierSubscriptions subs(nullptr);
  RecordingOps okOps, refusingOps, laterOps;
  refusingOps.refuse = true;
  MmuIntervalNotifier first, refusing, later;
  REQUIRE(subs.mmuIntervalNotifierInsert(first, Va(0x1000), kPage, okOps) == Errno::Ok);
  REQUIRE(subs.mmuIntervalNotifierInsert(refusing, Va(0x2000), kPage, refusingOps) == Errno::Ok);
  REQUIRE(subs.mmuIntervalNotifierInsert(later, Va(0x3000), kPage, laterOps) == Errno::Ok);
  std::vector<std::string> log;
  LoggingNotifier plain(log, "plain");
  REQUIRE(subs.mmuNotifierRegister(plain) == Errno::Ok);
  const std::uint64_t seqFirst = first.readBegin();

  MmuNotifierRange r = makeRange(Va(0x0), Va(0x10000));
  CHECK(subs.invalidateRangeStartNonblock(r) == Errno::Again);
  CHECK_FALSE(r.blockable());
  CHECK(okOps.calls.size() == 1);
  CHECK(refusingOps.calls.size() == 1);
  CHECK(laterOps.calls.empty());  // the walk stops at the refusal
  CHECK(log.empty());             // plain subscribers are not reached
  // The interval part was ended by the core: idle, even, one bump; the caller must not call end.
  CHECK(subs.activeInvalidateRanges() == 0);
  CHECK_FALSE(subs.isInvalidating());
  CHECK(subs.stats().counterValue("seq_bumps") == 1);
  // The notifier that was invalidated must retry.
  CHECK(first.readRetry(seqFirst));
  CHECK(subs.stats().counterValue("invalidate_nonblock_again") == 1);
  subs.mmuNotifierUnregister(plain);
  for (auto* s : {&first, &refusing, &later}) s->remove();
}

TEST_CASE(
    "non-blockable start refused by a plain subscriber returns EAGAIN and ends only the subscribers that "
    "succeeded") {
  MmuNotifierSubscriptions subs(nullptr);
  std::vector<std::string> log;
  LoggingNotifier a(log, "a"), refusing(log, "refusing"), c(log, "c");
  refusing.startResult = Errno::Again;
  REQUIRE(subs.mmuNotifierRegister(a) == Errno::Ok);
  REQUIRE(subs.mmuNotifierRegister(refusing) == Errno::Ok);
  REQUIRE(subs.mmuNotifierRegister(c) == Errno::Ok);
  MmuNotifierRange r = makeRange(Va(0x0), Va(0x10000));
  CHECK(subs.invalidateRangeStartNonblock(r) == Errno::Again);
  // Newest first; every start runs even after the refusal; then the succeeded ones are ended.
  CHECK(log == std::vector<std::string>{"c.start", "refusing.start", "a.start", "c.end", "a.end"});
  CHECK(refusing.lastFlags == 0);  // non-blockable
  CHECK(subs.stats().counterValue("plain_start_warn") == 0);
  for (auto* n : {&a, &refusing, &c}) subs.mmuNotifierUnregister(*n);
}

TEST_CASE(
    "a plain subscriber's non-blocking refusal leaves the interval part active, as mm/mmu_notifier.c does") {
  MmuNotifierSubscriptions subs(nullptr);
  RecordingOps ops;
  MmuIntervalNotifier sub;
  REQUIRE(subs.mmuIntervalNotifierInsert(sub, Va(0x1000), kPage, ops) == Errno::Ok);
  std::vector<std::string> log;
  LoggingNotifier refusing(log, "refusing");
  refusing.startResult = Errno::Again;
  REQUIRE(subs.mmuNotifierRegister(refusing) == Errno::Ok);
  MmuNotifierRange r = makeRange(Va(0x0), Va(0x10000));
  CHECK(subs.invalidateRangeStartNonblock(r) == Errno::Again);
  CHECK(subs.activeInvalidateRanges() == 1);
  CHECK(subs.isInvalidating());
  CHECK(subs.stats().counterValue("nonblock_itree_left_active") == 1);
  // Only to let the test tear down: the kernel would stay odd until some later end.
  subs.invalidateRangeEnd(r);
  subs.mmuNotifierUnregister(refusing);
  sub.remove();
}

TEST_CASE("a blockable start ignores a refusing interval notifier, calls the rest and counts a warning") {
  MmuNotifierSubscriptions subs(nullptr);
  RecordingOps refusingOps, okOps;
  refusingOps.refuse = true;
  MmuIntervalNotifier refusing, ok;
  REQUIRE(subs.mmuIntervalNotifierInsert(refusing, Va(0x1000), kPage, refusingOps) == Errno::Ok);
  REQUIRE(subs.mmuIntervalNotifierInsert(ok, Va(0x2000), kPage, okOps) == Errno::Ok);
  MmuNotifierRange r = makeRange(Va(0x0), Va(0x10000));
  subs.invalidateRangeStart(r);
  CHECK(okOps.calls.size() == 1);
  CHECK(subs.stats().counterValue("interval_invalidate_warn") == 1);
  CHECK(subs.activeInvalidateRanges() == 1);
  subs.invalidateRangeEnd(r);
  refusing.remove();
  ok.remove();
}

TEST_CASE("a plain MmuNotifier gets a start and an end for every invalidation, newest subscriber first") {
  MmuNotifierSubscriptions subs(nullptr);
  std::vector<std::string> log;
  LoggingNotifier older(log, "older"), newer(log, "newer");
  REQUIRE(subs.mmuNotifierRegister(older) == Errno::Ok);
  REQUIRE(subs.mmuNotifierRegister(newer) == Errno::Ok);
  CHECK(subs.notifierCount() == 2);
  MmuNotifierRange r = makeRange(Va(0x1000), Va(0x2000), MmuNotifierEvent::ProtectionVma);
  subs.invalidateRangeStart(r);
  CHECK(newer.lastFlags == kMmuNotifierRangeBlockable);
  subs.invalidateRangeEnd(r);
  CHECK(log == std::vector<std::string>{"newer.start", "older.start", "newer.end", "older.end"});
  CHECK(subs.stats().counterValue("plain_start_calls") == 2);
  CHECK(subs.stats().counterValue("plain_end_calls") == 2);
  subs.mmuNotifierUnregister(older);
  subs.mmuNotifierUnregister(newer);
}

TEST_CASE("mmu_notifier_unregister calls release when the mm was not released") {
  MmuNotifierSubscriptions subs(nullptr);
  std::vector<std::string> log;
  LoggingNotifier n(log, "n");
  REQUIRE(subs.mmuNotifierRegister(n) == Errno::Ok);
  subs.mmuNotifierUnregister(n);
  CHECK(log == std::vector<std::string>{"n.release"});
  CHECK_FALSE(n.registered());
  CHECK(subs.notifierCount() == 0);
}

TEST_CASE(
    "release calls every interval notifier with RELEASE over the whole address space and every plain "
    "subscriber's release once") {
  MmuNotifierSubscriptions subs(nullptr);
  RecordingOps ops;
  MmuIntervalNotifier low, high;
  REQUIRE(subs.mmuIntervalNotifierInsert(low, Va(0x1000), kPage, ops) == Errno::Ok);
  REQUIRE(subs.mmuIntervalNotifierInsert(high, Va(0x7fff'ffff'f000), kPage, ops) == Errno::Ok);
  std::vector<std::string> log;
  LoggingNotifier a(log, "a"), b(log, "b");
  REQUIRE(subs.mmuNotifierRegister(a) == Errno::Ok);
  REQUIRE(subs.mmuNotifierRegister(b) == Errno::Ok);

  subs.release();
  REQUIRE(ops.calls.size() == 2);
  for (const Call& c : ops.calls) {
    CHECK(c.event == MmuNotifierEvent::Release);
    CHECK(c.start == Va(0));
    CHECK(c.end == Va(std::numeric_limits<std::uint64_t>::max()));
    CHECK((c.flags & kMmuNotifierRangeBlockable) != 0);
  }
  CHECK(log == std::vector<std::string>{"b.release", "a.release"});
  CHECK(subs.activeInvalidateRanges() == 0);
  CHECK_FALSE(subs.isInvalidating());
  // Plain subscribers are unhashed; a later unregister does not call release again.
  CHECK_FALSE(a.registered());
  CHECK(subs.notifierCount() == 0);
  subs.mmuNotifierUnregister(a);
  subs.mmuNotifierUnregister(b);
  CHECK(log.size() == 2);
  // Interval notifiers stay until their drivers remove them.
  CHECK(subs.intervalCount() == 2);
  low.remove();
  high.remove();
}

TEST_CASE("a false return from an interval notifier during release only counts a warning") {
  MmuNotifierSubscriptions subs(nullptr);
  RecordingOps ops;
  ops.refuse = true;
  MmuIntervalNotifier sub;
  REQUIRE(subs.mmuIntervalNotifierInsert(sub, Va(0x1000), kPage, ops) == Errno::Ok);
  subs.release();
  CHECK(ops.calls.size() == 1);
  CHECK(subs.stats().counterValue("release_warn") == 1);
  CHECK(subs.activeInvalidateRanges() == 0);
  sub.remove();
}

TEST_CASE(
    "interval insert after mmu_notifier_release (no mm users left) returns EINVAL and changes nothing") {
  MmuNotifierSubscriptions subs(nullptr);
  subs.release();
  CHECK(subs.released());
  RecordingOps ops;
  MmuIntervalNotifier sub;
  CHECK(subs.mmuIntervalNotifierInsert(sub, Va(0x1000), kPage, ops) == Errno::Inval);
  CHECK_FALSE(sub.inserted());
  CHECK(subs.intervalCount() == 0);
  CHECK(subs.stats().counterValue("insert_after_release") == 1);
}

TEST_CASE("arch_invalidate_secondary_tlbs reaches every plain subscriber with the flushed range") {
  MmuNotifierSubscriptions subs(nullptr);
  std::vector<std::string> log;
  LoggingNotifier n(log, "n");
  REQUIRE(subs.mmuNotifierRegister(n) == Errno::Ok);
  subs.archInvalidateSecondaryTlbs(Va(0x4000), Va(0x6000));
  CHECK(log == std::vector<std::string>{"n.tlb"});
  CHECK(n.tlbStart == Va(0x4000));
  CHECK(n.tlbEnd == Va(0x6000));
  subs.mmuNotifierUnregister(n);
}

TEST_CASE("stats count invalidations per event type") {
  MmuNotifierSubscriptions subs(nullptr, "top.proc0.mm.notifier");
  RecordingOps ops;
  MmuIntervalNotifier sub;
  REQUIRE(subs.mmuIntervalNotifierInsert(sub, Va(0x1000), kPage, ops) == Errno::Ok);
  const MmuNotifierEvent events[] = {MmuNotifierEvent::Unmap,          MmuNotifierEvent::Unmap,
                                     MmuNotifierEvent::Clear,          MmuNotifierEvent::ProtectionVma,
                                     MmuNotifierEvent::ProtectionPage, MmuNotifierEvent::SoftDirty,
                                     MmuNotifierEvent::Migrate,        MmuNotifierEvent::Exclusive};
  for (MmuNotifierEvent e : events) {
    MmuNotifierRange r = makeRange(Va(0x0), Va(0x2000), e);
    subs.invalidateRangeStart(r);
    subs.invalidateRangeEnd(r);
  }
  const StatsGroup& st = subs.stats();
  CHECK(st.counterValue("invalidate_start") == 8);
  CHECK(st.counterValue("invalidate_start_unmap") == 2);
  CHECK(st.counterValue("invalidate_start_clear") == 1);
  CHECK(st.counterValue("invalidate_start_protection_vma") == 1);
  CHECK(st.counterValue("invalidate_start_protection_page") == 1);
  CHECK(st.counterValue("invalidate_start_soft_dirty") == 1);
  CHECK(st.counterValue("invalidate_start_release") == 0);
  CHECK(st.counterValue("invalidate_start_migrate") == 1);
  CHECK(st.counterValue("invalidate_start_exclusive") == 1);
  CHECK(st.counterValue("invalidate_end") == 8);
  CHECK(st.counterValue("interval_invalidate_calls") == 8);
  CHECK(st.counterValue("seq_bumps") == 8);
  sub.remove();
}

TEST_CASE("event names and values are the kernel's") {
  CHECK(static_cast<unsigned>(MmuNotifierEvent::Unmap) == 0);
  CHECK(static_cast<unsigned>(MmuNotifierEvent::Release) == 5);
  CHECK(static_cast<unsigned>(MmuNotifierEvent::Exclusive) == 7);
  CHECK(std::string(mmuNotifierEventName(MmuNotifierEvent::ProtectionPage)) == "protection_page");
  CHECK(std::string(mmuNotifierEventName(MmuNotifierEvent::Migrate)) == "migrate");
}
