#pragma once
// Fixture of the fault-path tests: a small machine, one Mm, a notifier recording every round
// over the whole address space, and load/store helpers that go through the CPU access path.

#include <cstdint>
#include <memory>
#include <ostream>
#include <vector>

#include "models/cpu_mmu/memory.h"
#include "models/cpu_mmu/mm.h"
#include "models/cpu_mmu/mmu_notifier.h"
#include "models/cpu_mmu/page_table.h"
#include "models/cpu_mmu/phys_mem.h"

namespace hmmsim::faulttest {

struct Round {
  MmuNotifierEvent event;
  Va start, end;
  const void* owner = nullptr;
  bool operator==(const Round& o) const {
    return event == o.event && start == o.start && end == o.end && owner == o.owner;
  }
};

inline std::ostream& operator<<(std::ostream& os, const Round& r) {
  return os << mmuNotifierEventName(r.event) << "[" << r.start << ", " << r.end << ") owner " << r.owner;
}

/// An interval notifier that records each invalidation and follows the seq protocol.
class Recorder : public MmuIntervalNotifierOps {
 public:
  bool invalidate(MmuIntervalNotifier& sub, const MmuNotifierRange& range, std::uint64_t curSeq) override {
    rounds.push_back(Round{range.event, range.start, range.end, range.owner});
    sub.setSeq(curSeq);
    return true;
  }
  std::vector<Round> rounds;
};

struct Fixture {
  explicit Fixture(std::uint64_t ramBytes = 64ull << 20, MmParams params = {})
      : pm(ramParams(ramBytes)), mm(std::make_unique<Mm>(pm, "mm", params)) {
    REQUIRE(mmuIntervalNotifierInsert(sub, *mm, Va(0), ~0ull & ~(kPageSize - 1), rec) == Errno::Ok);
  }
  ~Fixture() { sub.remove(); }
  Fixture(const Fixture&) = delete;
  Fixture& operator=(const Fixture&) = delete;

  static PhysMemParams ramParams(std::uint64_t bytes) {
    PhysMemParams p;
    p.ramSize = bytes;
    return p;
  }

  Va mapAnon(std::uint64_t len, int prot = PROT_READ | PROT_WRITE, int flags = MAP_PRIVATE | MAP_ANONYMOUS) {
    const VaResult r = mm->mmap(Va(0), len, prot, flags);
    REQUIRE(r.ok());
    return r.addr;
  }
  /// An anonymous mapping of `len` bytes whose start is 2 MiB aligned.
  Va mapAnonAligned(std::uint64_t len, int prot = PROT_READ | PROT_WRITE) {
    const VaResult r = mm->mmap(Va(0), len + kPmdSize, prot, MAP_PRIVATE | MAP_ANONYMOUS);
    REQUIRE(r.ok());
    const Va a = r.addr.alignUp(kPmdSize);
    if (a != r.addr) REQUIRE(mm->munmap(r.addr, a - r.addr) == Errno::Ok);
    if (a + len < r.addr + len + kPmdSize)
      REQUIRE(mm->munmap(a + len, (r.addr + len + kPmdSize) - (a + len)) == Errno::Ok);
    return a;
  }

  static void storeIn(Mm& m, Va va, std::uint64_t v) {
    REQUIRE(copyToUser(m, va, &v, sizeof v) == Errno::Ok);
  }
  static std::uint64_t loadIn(Mm& m, Va va) {
    std::uint64_t v = 0;
    REQUIRE(copyFromUser(m, &v, va, sizeof v) == Errno::Ok);
    return v;
  }
  void store(Va va, std::uint64_t v) { storeIn(*mm, va, v); }
  std::uint64_t load(Va va) { return loadIn(*mm, va); }
  PtWalk walk(Va va) { return mm->pageTable().lookup(va); }
  std::uint64_t counter(const char* name) { return mm->stats().counterValue(name); }

  PhysMem pm;
  std::unique_ptr<Mm> mm;
  Recorder rec;
  MmuIntervalNotifier sub;
};

}  // namespace hmmsim::faulttest
