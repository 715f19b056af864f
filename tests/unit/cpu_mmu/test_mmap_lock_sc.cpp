// The mm's mmap lock (RwSemaphore through mmap_lock.h) under SystemC: contending SC_THREADs
// sleep and are handed the lock in the kernel rwsem's order. Threads only record; the test case
// checks after sc_start().

#include <catch2/catch.hpp>

#include <memory>
#include <string>
#define SC_INCLUDE_DYNAMIC_PROCESSES
#include <systemc>
#include <vector>

#include "models/cpu_mmu/mm.h"
#include "models/cpu_mmu/mmap_lock.h"
#include "models/cpu_mmu/phys_mem.h"
#include "models/cpu_mmu/sc_blocker.h"
#include "sim/checker.h"

using namespace hmmsim;
using sc_core::SC_NS;

namespace {

PhysMemParams machine() {
  PhysMemParams p;
  p.ramSize = 64ull << 20;
  return p;
}

struct Grant {
  std::string who;
  double atNs;
};

// One thread per role: at `start` it takes the mmap lock (read or write), holds it for `hold`.
struct Contenders : sc_core::sc_module {
  struct Role {
    std::string name;
    bool write;
    int startNs;
    int holdNs;
  };
  PhysMem pm{machine()};
  std::unique_ptr<Mm> mm = std::make_unique<Mm>(pm, "mm");
  InvariantChecker checker;
  Lockdep lockdep;
  ScBlocker blocker;
  std::vector<Role> roles;
  std::vector<Grant> grants;

  SC_HAS_PROCESS(Contenders);
  Contenders(sc_core::sc_module_name n, std::vector<Role> r) : sc_core::sc_module(n), roles(std::move(r)) {
    lockdep.setChecker(&checker);
    blocker.setLockdep(lockdep);
    mm->notifierSubscriptions().setBlocker(blocker);
    for (std::size_t i = 0; i < roles.size(); ++i)
      sc_core::sc_spawn([this, i] { run(roles[i]); }, roles[i].name.c_str());
  }
  ~Contenders() override { mm->notifierSubscriptions().setBlocker(singleThreadBlocker()); }

  void run(const Role& r) {
    wait(r.startNs, SC_NS);
    if (r.write)
      mmapWriteLock(*mm);
    else
      mmapReadLock(*mm);
    grants.push_back({r.name, sc_core::sc_time_stamp().to_seconds() * 1e9});
    wait(r.holdNs, SC_NS);
    if (r.write)
      mmapWriteUnlock(*mm);
    else
      mmapReadUnlock(*mm);
  }
  double at(const std::string& who) const {
    for (const Grant& g : grants)
      if (g.who == who) return g.atNs;
    return -1;
  }
};

}  // namespace

TEST_CASE("mmap lock: a waiting writer blocks new readers, which are served after it") {
  Contenders top("top", {{"r1", false, 0, 100}, {"w", true, 10, 50}, {"r2", false, 20, 10}});
  sc_core::sc_start();
  REQUIRE(top.grants.size() == 3);
  CHECK(top.at("r1") == Approx(0));
  CHECK(top.at("w") == Approx(100));   // waits for r1
  CHECK(top.at("r2") == Approx(150));  // queued behind w although only readers held the lock at 20 ns
  CHECK(top.mm->mmapLock().contendedWrites() == 1);
  CHECK(top.mm->mmapLock().contendedReads() == 1);
  CHECK(top.checker.ok());
  CHECK_FALSE(top.mm->mmapLocked());
}

TEST_CASE(
    "mmap lock: hand-off is FIFO, a reader at the head brings every queued reader, writers keep their "
    "place") {
  Contenders top("top", {{"w1", true, 0, 100},
                         {"r1", false, 10, 30},
                         {"w2", true, 20, 10},
                         {"r2", false, 30, 50},
                         {"r3", false, 40, 20}});
  sc_core::sc_start();
  REQUIRE(top.grants.size() == 5);
  CHECK(top.at("r1") == Approx(100));
  CHECK(top.at("r2") == Approx(100));
  CHECK(top.at("r3") == Approx(100));
  CHECK(top.at("w2") == Approx(150));  // after the last of the three readers (r2, 50 ns)
  CHECK(top.grants[0].who == "w1");
  // r1..r3 were granted together at 100 ns; SystemC resumes them in its own order in that delta.
  CHECK(top.grants[4].who == "w2");
  CHECK(top.checker.ok());
}

TEST_CASE("mmap lock: writers queue FIFO behind each other") {
  Contenders top("top", {{"w1", true, 0, 50}, {"w3", true, 20, 10}, {"w2", true, 10, 10}});
  sc_core::sc_start();
  REQUIRE(top.grants.size() == 3);
  CHECK(top.at("w2") == Approx(50));
  CHECK(top.at("w3") == Approx(60));
  CHECK(top.checker.ok());
}
