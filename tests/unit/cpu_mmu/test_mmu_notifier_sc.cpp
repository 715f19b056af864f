// The mmu notifiers' sleeps in SystemC: an SC_THREAD that must wait for another thread's
// invalidation sleeps on an sc_event (ScBlocker) and is woken when that invalidation ends.
// Nothing is asserted inside the threads: they record, the test case checks after sc_start().

#include <catch2/catch.hpp>

#include <systemc>

#include "models/cpu_mmu/mmu_notifier.h"
#include "models/cpu_mmu/sc_blocker.h"

using namespace hmmsim;
using sc_core::SC_NS;
using sc_core::sc_time;

namespace {

class SetSeqOps : public MmuIntervalNotifierOps {
 public:
  bool invalidate(MmuIntervalNotifier& sub, const MmuNotifierRange&, std::uint64_t curSeq) override {
    sub.setSeq(curSeq);
    ++calls;
    return true;
  }
  int calls = 0;
};

MmuNotifierRange makeRange(Va start, Va end) {
  MmuNotifierRange r;
  mmuNotifierRangeInit(r, MmuNotifierEvent::Unmap, 0, nullptr, start, end);
  return r;
}

// Two overlapping invalidations by two threads ([0,100) ns and [20,150) ns) and a reader that calls
// readBegin at 10 ns: it must sleep until the last end at 150 ns.
struct ReaderDuringInvalidation : sc_core::sc_module {
  MmuNotifierSubscriptions subs{nullptr, "mm.notifier", scBlocker()};
  SetSeqOps ops;
  MmuIntervalNotifier sub;
  std::uint64_t oddSeq = 0, seq = 0, seqAfter = 0;
  bool retry = true;
  sc_time readerReturnedAt;

  SC_HAS_PROCESS(ReaderDuringInvalidation);
  explicit ReaderDuringInvalidation(sc_core::sc_module_name n) : sc_core::sc_module(n) {
    (void)subs.mmuIntervalNotifierInsert(sub, Va(0x10000), 0x4000, ops);
    SC_THREAD(invalidatorA);
    SC_THREAD(invalidatorB);
    SC_THREAD(reader);
  }
  ~ReaderDuringInvalidation() override {
    if (sub.inserted()) sub.remove();
  }
  void invalidatorA() {
    MmuNotifierRange r = makeRange(Va(0x0), Va(0x20000));
    subs.invalidateRangeStart(r);
    oddSeq = subs.invalidateSeq();
    wait(100, SC_NS);
    subs.invalidateRangeEnd(r);
  }
  void invalidatorB() {
    wait(20, SC_NS);
    MmuNotifierRange r = makeRange(Va(0x12000), Va(0x13000));
    subs.invalidateRangeStart(r);
    wait(130, SC_NS);
    subs.invalidateRangeEnd(r);
  }
  void reader() {
    wait(10, SC_NS);
    seq = sub.readBegin();
    readerReturnedAt = sc_core::sc_time_stamp();
    seqAfter = subs.invalidateSeq();
    retry = sub.readRetry(seq);
  }
};

// A driver removes its notifier at 10 ns while an invalidation runs until 50 ns: remove returns at
// 50 ns and the notifier is gone; a later invalidation does not call it.
struct RemoveDuringInvalidation : sc_core::sc_module {
  MmuNotifierSubscriptions subs{nullptr, "mm.notifier", scBlocker()};
  SetSeqOps ops;
  MmuIntervalNotifier sub;
  sc_time removeReturnedAt;
  bool inTreeAfter = true;
  int callsAfterRemove = -1;

  SC_HAS_PROCESS(RemoveDuringInvalidation);
  explicit RemoveDuringInvalidation(sc_core::sc_module_name n) : sc_core::sc_module(n) {
    (void)subs.mmuIntervalNotifierInsert(sub, Va(0x10000), 0x4000, ops);
    SC_THREAD(invalidator);
    SC_THREAD(driver);
  }
  void invalidator() {
    MmuNotifierRange r = makeRange(Va(0x0), Va(0x20000));
    subs.invalidateRangeStart(r);
    wait(50, SC_NS);
    subs.invalidateRangeEnd(r);
    wait(50, SC_NS);
    const int before = ops.calls;
    MmuNotifierRange again = makeRange(Va(0x0), Va(0x20000));
    subs.invalidateRangeStart(again);
    subs.invalidateRangeEnd(again);
    callsAfterRemove = ops.calls - before;
  }
  void driver() {
    wait(10, SC_NS);
    sub.remove();
    removeReturnedAt = sc_core::sc_time_stamp();
    inTreeAfter = sub.inTree();
  }
};

// A plain subscriber whose invalidate_range_start sleeps 40 ns (a device shootdown). A driver
// thread unregisters it at 10 ns: release runs at once, unregister returns only when the running
// callback finished (synchronize_srcu), and the round's end no longer reaches it.
class SleepyNotifier : public MmuNotifier {
 public:
  Errno invalidateRangeStart(const MmuNotifierRange&) override {
    ++starts;
    sc_core::wait(40, SC_NS);
    return Errno::Ok;
  }
  void invalidateRangeEnd(const MmuNotifierRange&) override { ++ends; }
  void release(Mm*) override {
    ++releases;
    releasedAt = sc_core::sc_time_stamp();
  }
  int starts = 0, ends = 0, releases = 0;
  sc_time releasedAt;
};

struct UnregisterDuringCallback : sc_core::sc_module {
  MmuNotifierSubscriptions subs{nullptr, "mm.notifier", scBlocker()};
  SleepyNotifier n;
  sc_time unregisterReturnedAt;
  std::size_t countAfter = 99;

  SC_HAS_PROCESS(UnregisterDuringCallback);
  explicit UnregisterDuringCallback(sc_core::sc_module_name name) : sc_core::sc_module(name) {
    (void)subs.mmuNotifierRegister(n);
    SC_THREAD(invalidator);
    SC_THREAD(driver);
  }
  void invalidator() {
    MmuNotifierRange r = makeRange(Va(0x0), Va(0x1000));
    subs.invalidateRangeStart(r);
    subs.invalidateRangeEnd(r);
  }
  void driver() {
    wait(10, SC_NS);
    subs.mmuNotifierUnregister(n);
    unregisterReturnedAt = sc_core::sc_time_stamp();
    countAfter = subs.notifierCount();
  }
};

}  // namespace

TEST_CASE("an SC_THREAD calling readBegin during another thread's invalidation sleeps until the last end") {
  ReaderDuringInvalidation top("top");
  sc_core::sc_start();
  CHECK(top.readerReturnedAt == sc_time(150, SC_NS));
  CHECK(top.seq == top.oddSeq);
  CHECK(top.oddSeq % 2 == 1);
  CHECK(top.seqAfter == top.oddSeq + 1);
  CHECK_FALSE(top.retry);
  CHECK(top.subs.stats().counterValue("read_begin_sleeps") == 1);
  CHECK(top.subs.stats().counterValue("seq_bumps") == 1);
}

TEST_CASE("an SC_THREAD removing an interval notifier during an invalidation waits for its end") {
  RemoveDuringInvalidation top("top");
  sc_core::sc_start();
  CHECK(top.removeReturnedAt == sc_time(50, SC_NS));
  CHECK_FALSE(top.inTreeAfter);
  CHECK_FALSE(top.sub.inserted());
  CHECK(top.callsAfterRemove == 0);
  CHECK(top.subs.stats().counterValue("remove_sleeps") == 1);
  CHECK(top.subs.stats().counterValue("deferred_removes") == 1);
}

TEST_CASE("mmu_notifier_unregister in an SC_THREAD waits for a running callback of that mm to finish") {
  UnregisterDuringCallback top("top");
  sc_core::sc_start();
  CHECK(top.n.releases == 1);
  CHECK(top.n.releasedAt == sc_time(10, SC_NS));
  CHECK(top.unregisterReturnedAt == sc_time(40, SC_NS));
  CHECK(top.n.starts == 1);
  CHECK(top.n.ends == 0);
  CHECK(top.countAfter == 0);
  CHECK_FALSE(top.n.registered());
  CHECK(top.subs.stats().counterValue("unregister_sleeps") == 1);
}
