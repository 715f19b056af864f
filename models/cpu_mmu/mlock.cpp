// mlock(2), mlock2(2), munlock(2), mlockall(2), munlockall(2) (mm/mlock.c): do_mlock,
// apply_vma_lock_flags, mlock_fixup, apply_mlockall_flags, can_do_mlock, mlock_future_ok.
// Contracts in mm.h.
#include <algorithm>
#include <utility>
#include <vector>

#include "models/cpu_mmu/mm.h"
#include "models/cpu_mmu/mm_internal.h"
#include "sim/assert.h"

namespace hmmsim {

bool MmInternals::canDoMlock(const Mm& mm) {
  return mm.params().rlimitMemlock != 0 || mm.params().capIpcLock;
}

bool MmInternals::mlockFutureOk(const Mm& mm, VmFlags flags, std::uint64_t bytes) {
  if (!(flags & VM_LOCKED) || mm.params().capIpcLock) return true;
  return (bytes >> kPageShift) + mm.lockedVm() <= (mm.params().rlimitMemlock >> kPageShift);
}

std::uint64_t Mm::lockedVm() const {
  std::uint64_t pages = 0;
  for (const Vma& v : vmas_)
    if (v.vmFlags & VM_LOCKED) pages += v.pages();
  return pages;
}

namespace {

/// mlock_fixup's refusal: these vmas keep their flags and do not count as locked.
bool lockable(const Vma& v) {
  return !(v.vmFlags & VM_SPECIAL) && !v.isHugetlb();
}

/// Pages of [start, end) already in VM_LOCKED vmas (count_mm_mlocked_page_nr).
std::uint64_t lockedPagesIn(Mm& mm, Va start, Va end) {
  std::uint64_t pages = 0;
  for (Vma* v : MmInternals::vmasIn(mm, start, end))
    if (v->vmFlags & VM_LOCKED)
      pages += (std::min(v->vmEnd, end) - std::max(v->vmStart, start)) >> kPageShift;
  return pages;
}

/// mlock_fixup over [start, end) of one vma: split off the range, set the lock flags, merge.
void mlockFixup(Mm& mm, Vma& vma, Va start, Va end, VmFlags lockFlags) {
  const VmFlags newFlags = (vma.vmFlags & ~VM_LOCKED_MASK) | lockFlags;
  if (newFlags == vma.vmFlags || !lockable(vma)) return;
  Vma* v = &vma;
  if (v->vmStart < start) v = MmInternals::splitVma(mm, *v, start);
  if (v->vmEnd > end) MmInternals::splitVma(mm, *v, end);
  v->vmFlags = newFlags;
  MmInternals::mergeAround(mm, *v);
}

/// apply_vma_lock_flags: `lockFlags` (0, VM_LOCKED, VM_LOCKED | VM_LOCKONFAULT) on every vma
/// part of [start, end). Holes were ruled out by the caller (mlockall passes the whole space).
void applyVmaLockFlags(Mm& mm, Va start, Va end, VmFlags lockFlags) {
  std::vector<std::pair<Va, Va>> ranges;
  for (Vma* v : MmInternals::vmasIn(mm, start, end))
    ranges.emplace_back(std::max(v->vmStart, start), std::min(v->vmEnd, end));
  for (const auto& range : ranges) {
    const Va ps = range.first, pe = range.second;  // not a structured binding: the assert lambda captures ps
    Vma* v = mm.vmaLookup(ps);
    HMMSIM_ASSERT(v != nullptr, "mlock: vma vanished at " << ps);
    mlockFixup(mm, *v, ps, pe, lockFlags);
  }
}

/// The range of an mlock-family call: start rounded down, length rounded up to pages. Returns
/// Ok (the range may be empty) or NoMem: it overflows, or it is not mapped without holes (the
/// kernel changes the vmas before a hole and then fails; hmmsim refuses first and changes
/// nothing, deliberately, as for mprotect).
Errno lockRange(Mm& mm, Va addr, std::uint64_t len, Va& start, Va& end) {
  const std::uint64_t off = addr.value() & (kPageSize - 1);
  std::uint64_t alen;
  if (len + off < len || !pageAlign(len + off, alen)) return Errno::NoMem;
  start = addr.alignDown(kPageSize);
  end = start + alen;
  if (end < start) return Errno::NoMem;
  if (start == end) return Errno::Ok;
  if (!mm.vmaLookup(start) || !MmInternals::coveredWithoutHoles(mm, start, end)) return Errno::NoMem;
  return Errno::Ok;
}

}  // namespace

Errno Mm::mlock2(Va addr, std::uint64_t len, int flags) {
  if (flags & ~MLOCK_ONFAULT) return MmInternals::fail(*this, Errno::Inval);
  MmInternals::enter(*this);
  auto failed = [&](Errno e) {
    MmInternals::leave(*this);
    return MmInternals::fail(*this, e);
  };
  if (!MmInternals::canDoMlock(*this)) return failed(Errno::Perm);
  Va start, end;
  if (Errno e = lockRange(*this, addr, len, start, end); e != Errno::Ok) return failed(e);
  if (start == end) {
    MmInternals::leave(*this);
    return Errno::Ok;
  }
  // do_mlock: the limit, not counting pages of the range that are locked already.
  if (!params_.capIpcLock) {
    const std::uint64_t locked =
        ((end - start) >> kPageShift) + lockedVm() - lockedPagesIn(*this, start, end);
    if (locked > (params_.rlimitMemlock >> kPageShift)) return failed(Errno::NoMem);
  }
  const VmFlags lockFlags = VM_LOCKED | ((flags & MLOCK_ONFAULT) ? VM_LOCKONFAULT : 0);
  applyVmaLockFlags(*this, start, end, lockFlags);
  MmInternals::leave(*this);
  // __mm_populate(start, len, 0), then __mlock_posix_error_return: EFAULT -> ENOMEM,
  // ENOMEM -> EAGAIN. The vmas stay locked.
  PopulateMode mode;
  mode.mmPopulate = true;
  const Errno e = mmPopulate(*this, start, end, mode);
  if (e == Errno::Fault) return MmInternals::fail(*this, Errno::NoMem);
  if (e == Errno::NoMem) return MmInternals::fail(*this, Errno::Again);
  return e;
}

Errno Mm::munlock(Va addr, std::uint64_t len) {
  MmInternals::enter(*this);
  Va start, end;
  const Errno e = lockRange(*this, addr, len, start, end);
  if (e == Errno::Ok) applyVmaLockFlags(*this, start, end, 0);
  MmInternals::leave(*this);
  return e == Errno::Ok ? e : MmInternals::fail(*this, e);
}

Errno Mm::mlockall(int flags) {
  if (!flags || (flags & ~(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT)) || flags == MCL_ONFAULT)
    return MmInternals::fail(*this, Errno::Inval);
  MmInternals::enter(*this);
  if (!MmInternals::canDoMlock(*this)) {
    MmInternals::leave(*this);
    return MmInternals::fail(*this, Errno::Perm);
  }
  std::uint64_t totalVm = 0;
  for (const Vma& v : vmas_) totalVm += v.pages();
  if ((flags & MCL_CURRENT) && !params_.capIpcLock && totalVm > (params_.rlimitMemlock >> kPageShift)) {
    MmInternals::leave(*this);
    return MmInternals::fail(*this, Errno::NoMem);
  }
  // apply_mlockall_flags.
  const VmFlags onFault = (flags & MCL_ONFAULT) ? VM_LOCKONFAULT : 0;
  defFlags_ &= ~VM_LOCKED_MASK;
  if (flags & MCL_FUTURE) defFlags_ |= VM_LOCKED | onFault;
  if (flags & MCL_CURRENT) applyVmaLockFlags(*this, Va(0), MmInternals::kVaMax, VM_LOCKED | onFault);
  MmInternals::leave(*this);
  if (flags & MCL_CURRENT) {
    mmPopulateIgnoringErrors(*this, Va(0), params_.taskSize);  // mm_populate(0, TASK_SIZE)
  }
  return Errno::Ok;
}

Errno Mm::munlockall() {
  MmInternals::enter(*this);
  defFlags_ &= ~VM_LOCKED_MASK;
  applyVmaLockFlags(*this, Va(0), MmInternals::kVaMax, 0);
  MmInternals::leave(*this);
  return Errno::Ok;
}

}  // namespace hmmsim
