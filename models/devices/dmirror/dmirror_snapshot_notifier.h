#pragma once
// dmirror_snapshot (lib/test_hmm.c): its chunk of pages per range, and the invalidate of the
// interval notifier it registers on each range for the duration (dmirror_snapshot_invalidate):
// it only moves the sequence, under the handle's update lock; a non-blockable invalidation that
// cannot take the lock fails.

#include <cstdint>

#include "hmm/mirror.h"
#include "models/cpu_mmu/mmu_notifier.h"

namespace hmmsim {

/// Pages of one snapshot range (dmirror_snapshot's pfns[] array).
constexpr unsigned kDmirrorSnapshotChunkPages = 32;

/// dmirror_snapshot_invalidate, used by dmirror's own snapshot and by its p2p half's.
class DmirrorSnapshotNotifierOps final : public MmuIntervalNotifierOps {
 public:
  explicit DmirrorSnapshotNotifierOps(SleepingMutex& lock) : lock_(lock) {}
  bool invalidate(MmuIntervalNotifier& sub, const MmuNotifierRange& range, std::uint64_t curSeq) override {
    if (range.blockable()) {
      lock_.lock();
    } else if (!lock_.tryLock()) {
      return false;
    }
    sub.setSeq(curSeq);
    lock_.unlock();
    return true;
  }

 private:
  SleepingMutex& lock_;
};

}  // namespace hmmsim
