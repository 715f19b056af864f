#pragma once
// Setup shared by the hmm-layer benchmarks (bench_hmm, bench_p2p): an mm with one interval
// notifier over the whole address space whose invalidate callback only bumps the sequence, a
// populated anonymous region, and the HmmRange that covers it.
#include <cstdint>
#include <memory>

#include "hmm/hmm.h"
#include "models/cpu_mmu/mm.h"
#include "models/cpu_mmu/mmu_notifier.h"
#include "models/cpu_mmu/phys_mem.h"
#include "sim/assert.h"

namespace hmmsim::bench {

struct SeqOps : MmuIntervalNotifierOps {
  bool invalidate(MmuIntervalNotifier& sub, const MmuNotifierRange&, std::uint64_t cur) override {
    sub.setSeq(cur);
    return true;
  }
};

inline PhysMemParams ram(std::uint64_t bytes) {
  PhysMemParams p;
  p.ramSize = bytes;
  return p;
}

/// `ramBytes` of RAM, an mm on it and a notifier subscription covering all of the mm.
struct MirroredMm {
  explicit MirroredMm(std::uint64_t ramBytes) : pm(ram(ramBytes)), mm(std::make_unique<Mm>(pm, "mm")) {
    HMMSIM_ASSERT(mmuIntervalNotifierInsert(sub, *mm, Va(0), ~0ull & ~(kPageSize - 1), ops) == Errno::Ok, "");
  }
  ~MirroredMm() {
    sub.remove();
    mm.reset();
  }
  MirroredMm(const MirroredMm&) = delete;
  MirroredMm& operator=(const MirroredMm&) = delete;

  /// `pages` of private anonymous memory in 4 KiB pages (no THP), populated writable.
  Va mmapPopulated(std::uint64_t pages) {
    const VaResult r =
        mm->mmap(Va(0), pages << kPageShift, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    HMMSIM_ASSERT(r.ok(), "mmap");
    HMMSIM_ASSERT(mm->madvise(r.addr, pages << kPageShift, MADV_NOHUGEPAGE) == Errno::Ok, "");
    HMMSIM_ASSERT(mm->madvise(r.addr, pages << kPageShift, MADV_POPULATE_WRITE) == Errno::Ok, "populate");
    return r.addr;
  }

  /// A range over `pages` pages from `start` with a fresh notifier sequence.
  HmmRange range(Va start, std::uint64_t pages, unsigned long* pfns, unsigned long defaultFlags) {
    HmmRange r;
    r.notifier = &sub;
    r.notifierSeq = sub.readBegin();
    r.start = start;
    r.end = start + (pages << kPageShift);
    r.hmmPfns = pfns;
    r.defaultFlags = defaultFlags;
    return r;
  }

  PhysMem pm;
  std::unique_ptr<Mm> mm;
  SeqOps ops;
  MmuIntervalNotifier sub;
};

}  // namespace hmmsim::bench
