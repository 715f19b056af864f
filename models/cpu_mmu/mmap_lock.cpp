// include/linux/mmap_lock.h over Mm's RwSemaphore. See mmap_lock.h.
#include "models/cpu_mmu/mmap_lock.h"

#include "models/cpu_mmu/mm.h"
#include "sim/assert.h"

namespace hmmsim {

void mmapReadLock(Mm& mm, LockSite site) {
  mm.mmapLock().downRead(mm.blocker(), site);
}

void mmapReadUnlock(Mm& mm, LockSite site) {
  mm.mmapLock().upRead(mm.blocker(), site);
}

bool mmapReadTrylock(Mm& mm, LockSite site) {
  return mm.mmapLock().downReadTrylock(mm.blocker(), site);
}

void mmapWriteLock(Mm& mm, LockSite site) {
  mm.mmapLock().downWrite(mm.blocker(), 0, site);
}

void mmapWriteLockNested(Mm& mm, unsigned subclass, LockSite site) {
  mm.mmapLock().downWrite(mm.blocker(), subclass, site);
}

void mmapWriteUnlock(Mm& mm, LockSite site) {
  mm.mmapLock().upWrite(mm.blocker(), site);
}

void mmapWriteDowngrade(Mm& mm, LockSite site) {
  mm.mmapLock().downgradeWrite(mm.blocker(), site);
}

bool mmapLockIsContended(Mm& mm) {
  return mm.mmapLock().waiters() > 0;
}

bool mmapLockHeld(Mm& mm) {
  return mm.blocker().current().holds(&mm.mmapLock());
}

void mmapAssertLocked(Mm& mm, LockSite site) {
  HMMSIM_ASSERT(mmapLockHeld(mm), "mmap_assert_locked: " << formatLockSite(site) << " needs mm " << mm.name()
                                                         << "'s mmap lock, and context "
                                                         << mm.blocker().current().name()
                                                         << " does not hold it");
}

void mmapAssertWriteLocked(Mm& mm, LockSite site) {
  const HeldLock* h = mm.blocker().current().find(&mm.mmapLock());
  HMMSIM_ASSERT(h && h->mode == LockMode::Write,
                "mmap_assert_write_locked: " << formatLockSite(site) << " needs mm " << mm.name()
                                             << "'s mmap lock for writing, and context "
                                             << mm.blocker().current().name() << " does not hold it so");
}

MmapMaybeReadLock::MmapMaybeReadLock(Mm& mm, bool userEntry, LockSite site)
    : mm_(mm), taken_(!mmapLockHeld(mm)), userEntry_(userEntry), site_(site) {
  if (taken_) mmapReadLock(mm_, site_);
}

MmapMaybeReadLock::~MmapMaybeReadLock() {
  if (!taken_) return;
  mmapReadUnlock(mm_, site_);
  if (userEntry_) mm_.blocker().current().sysExit(site_);
}

}  // namespace hmmsim
