#pragma once
// Shared fixture of the mm tests: a small machine (PhysMem), one Mm, and a recording interval
// notifier over the whole address space, like dmirror's [0, ULONG_MAX & PAGE_MASK).

#include <cstdint>
#include <string>
#include <vector>

#include "models/cpu_mmu/file.h"
#include "models/cpu_mmu/memory.h"
#include "models/cpu_mmu/mm.h"
#include "models/cpu_mmu/mmu_notifier.h"
#include "models/cpu_mmu/page_table.h"
#include "models/cpu_mmu/phys_mem.h"

namespace hmmsim::test {

struct Round {
  MmuNotifierEvent event;
  Va start, end;
  bool operator==(const Round& o) const { return event == o.event && start == o.start && end == o.end; }
};

inline std::ostream& operator<<(std::ostream& os, const Round& r) {
  return os << mmuNotifierEventName(r.event) << "[" << r.start << ", " << r.end << ")";
}

/// Records every invalidation it receives (and obeys the seq protocol like a correct driver).
class RecordingOps : public MmuIntervalNotifierOps {
 public:
  bool invalidate(MmuIntervalNotifier& sub, const MmuNotifierRange& range, std::uint64_t curSeq) override {
    rounds.push_back(Round{range.event, range.start, range.end});
    sub.setSeq(curSeq);
    return true;
  }
  std::vector<Round> rounds;
};

inline PhysMemParams smallMachine(std::uint64_t bytes = 256ull << 20) {
  PhysMemParams p;
  p.ramSize = bytes;
  return p;
}

struct MmFixture {
  explicit MmFixture(std::uint64_t ramBytes = 256ull << 20, MmParams params = {})
      : pm(smallMachine(ramBytes)), mm(std::make_unique<Mm>(pm, "mm", params)) {
    watch(*mm, sub, ops);
  }
  ~MmFixture() {
    for (auto* s : watched) s->remove();
  }
  MmFixture(const MmFixture&) = delete;
  MmFixture& operator=(const MmFixture&) = delete;

  void watch(Mm& m, MmuIntervalNotifier& s, RecordingOps& o) {
    REQUIRE(mmuIntervalNotifierInsert(s, m, Va(0), ~0ull & ~(kPageSize - 1), o) == Errno::Ok);
    watched.push_back(&s);
  }

  Va mapAnon(std::uint64_t len, int prot = PROT_READ | PROT_WRITE, int flags = MAP_PRIVATE | MAP_ANONYMOUS,
             Va hint = Va(0)) {
    VaResult r = mm->mmap(hint, len, prot, flags);
    REQUIRE(r.ok());
    return r.addr;
  }

  void store(Va va, std::uint64_t v) { REQUIRE(copyToUser(*mm, va, &v, sizeof v) == Errno::Ok); }
  std::uint64_t load(Va va) {
    std::uint64_t v = 0;
    REQUIRE(copyFromUser(*mm, &v, va, sizeof v) == Errno::Ok);
    return v;
  }
  static void storeIn(Mm& m, Va va, std::uint64_t v) {
    REQUIRE(copyToUser(m, va, &v, sizeof v) == Errno::Ok);
  }
  static std::uint64_t loadIn(Mm& m, Va va) {
    std::uint64_t v = 0;
    REQUIRE(copyFromUser(m, &v, va, sizeof v) == Errno::Ok);
    return v;
  }

  /// The vmas as (start, end, flags) triples, for before/after comparisons.
  struct VmaShape {
    Va start, end;
    VmFlags flags;
    bool operator==(const VmaShape& o) const { return start == o.start && end == o.end && flags == o.flags; }
  };
  std::vector<VmaShape> shape() const {
    std::vector<VmaShape> out;
    for (const Vma& v : mm->vmas()) out.push_back({v.vmStart, v.vmEnd, v.vmFlags});
    return out;
  }
  /// Raw page-table entries of [start, end), one per 4 KiB (leaf values repeated for huge ones).
  std::vector<std::uint64_t> ptes(Va start, Va end) {
    std::vector<std::uint64_t> out;
    for (Va a = start; a < end; a += kPageSize) out.push_back(mm->pageTable().lookup(a).pte.raw());
    return out;
  }

  PhysMem pm;
  std::unique_ptr<Mm> mm;
  RecordingOps ops;
  MmuIntervalNotifier sub;
  std::vector<MmuIntervalNotifier*> watched;
};

}  // namespace hmmsim::test
