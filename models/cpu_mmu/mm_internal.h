#pragma once
// Internal helpers shared by the mm's syscall files (mm.cpp, mmap.cpp, mprotect.cpp, mremap.cpp,
// madvise.cpp, fork.cpp). Not a public interface: only those files include it.

#include <cstdint>
#include <memory>
#include <vector>

#include "models/cpu_mmu/mm.h"
#include "models/cpu_mmu/vma.h"
#include "sim/errno.h"
#include "sim/strong_types.h"

namespace hmmsim {

/// An owned vma that is linked nowhere (vm_area_alloc / vm_area_dup). Ownership of every vma:
/// a detached vma is held by a VmaPtr; linkVma moves it into the mm's tree, which owns its
/// linked vmas; unlinkVma hands it back as a VmaPtr, and dropping that frees it (vm_area_free,
/// which also drops the file and anon_vma references). No other code news or deletes a Vma.
using VmaPtr = std::unique_ptr<Vma>;

/// Friend of Mm: the vma-tree surgery the syscalls share (the kernel's mm/vma.c).
class MmInternals {
 public:
  /// ULONG_MAX as an exclusive end: exit_mmap's and mmu_notifier_release's [0, ULONG_MAX).
  static constexpr Va kVaMax{~0ull};

  /// vm_area_alloc: a new detached vma, every field default.
  static VmaPtr allocVma() { return std::make_unique<Vma>(); }
  /// vm_area_dup: a detached vma with every field copied from `src`.
  static VmaPtr dupVma(const Vma& src);
  /// Link `v` into mm's tree (which takes ownership) and, if file-backed, its inode's i_mmap.
  /// Returns the linked vma.
  static Vma& linkVma(Mm& mm, VmaPtr v);
  /// Unlink `v` from both; the caller owns it again (dropping the result frees it).
  [[nodiscard]] static VmaPtr unlinkVma(Mm& mm, Vma& v);
  /// remove_vma: unlink, vm_ops->close, drop the file reference, free. Pages must be zapped.
  static void removeVma(Mm& mm, Vma& v);

  /// May `v` be split at `addr`? (hugetlb: its huge page size; vm_ops->may_split.)
  static Errno maySplit(Vma& v, Va addr);
  /// __split_vma: split `v` at `addr` (strictly inside it). THPs straddling `addr` are split
  /// first (vma_adjust_trans_huge: CLEAR round). The part above `addr` is a new vma (returned);
  /// `v` keeps the part below. vm_ops->open is called for the new vma. Callers checked maySplit.
  static Vma* splitVma(Mm& mm, Vma& v, Va addr);
  /// Split so that a vma boundary exists at `addr` (no-op when addr is on a boundary or in a
  /// hole).
  static void splitAt(Mm& mm, Va addr);

  /// Can `a` (below) and `b` (directly above) be one vma? (is_mergeable_vma + anon_vma and
  /// pgoff compatibility; driver-backed vmas never merge because hmmsim cannot tell whether
  /// their close() does something.)
  static bool canMerge(const Vma& a, const Vma& b);
  /// vma_merge around `v`: join it with its neighbours where canMerge. Returns the surviving vma.
  static Vma& mergeAround(Mm& mm, Vma& v);

  /// Are the vmas contiguous over [start, end) (no hole)?
  static bool coveredWithoutHoles(Mm& mm, Va start, Va end);
  /// The vmas intersecting [start, end), in address order.
  static std::vector<Vma*> vmasIn(Mm& mm, Va start, Va end);

  /// do_vmi_munmap's body once arguments are valid: split the boundary vmas, raise one
  /// MMU_NOTIFY_UNMAP round over [start, end) while zapping, remove the vmas, free empty page
  /// tables. Returns Ok, or the split error (nothing changed then). No-op when nothing is mapped.
  static Errno unmapRange(Mm& mm, Va start, Va end);

  /// hugetlb pool accounting (hugetlb_reserve_pages / hugetlb_unreserve_pages): `hugePages`
  /// pages of the hstate with log2 size `shift` (kPmdShift or kPudShift). Reserve returns false,
  /// changing nothing, when the pool is short.
  static bool hugetlbReserve(Mm& mm, unsigned shift, std::uint64_t hugePages);
  static void hugetlbUnreserve(Mm& mm, unsigned shift, std::uint64_t hugePages);
  /// A hugetlb vma's whole reservation (its length in huge pages).
  static void hugetlbReserveVma(Mm& mm, const Vma& v);
  static void hugetlbUnreserveVma(Mm& mm, const Vma& v);
  /// expand_downwards (expand_stack): grow the VM_GROWSDOWN `vma` down to cover `address`
  /// (rounded down to a page). No notifier round (no entry changes). Returns Ok, Perm (below
  /// mmap_min_addr), or NoMem (inside the stack guard gap above an accessible non-stack vma,
  /// beyond RLIMIT_STACK, beyond RLIMIT_MEMLOCK for a locked stack). Nothing changes on error.
  static Errno expandDownwards(Mm& mm, Vma& vma, Va address);
  /// can_do_mlock: RLIMIT_MEMLOCK is not 0, or the process has CAP_IPC_LOCK.
  static bool canDoMlock(const Mm& mm);
  /// mlock_future_ok: may `bytes` more of a mapping with `flags` be locked (true when the flags
  /// do not lock, or CAP_IPC_LOCK)?
  static bool mlockFutureOk(const Mm& mm, VmFlags flags, std::uint64_t bytes);
  /// hugetlb_count_add / hugetlb_count_sub (4 KiB pages).
  static void hugetlbCountAdd(Mm& mm, std::int64_t pages);

  /// Private accessors.
  static Mm::VmaTree& tree(Mm& mm) { return mm.vmas_; }
  static std::uint64_t newAnonVmaId(Mm& mm) { return mm.nextAnonVmaId_++; }
  static void setExited(Mm& mm) { mm.exited_ = true; }

  /// The syscalls' common prologue/epilogue: assert the mm is alive, take the write lock
  /// (sleeping while another context holds it); release it and return to user space (lockdep:
  /// nothing may still be held).
  static void enter(Mm& mm, LockSite site = LockSite::here());
  static void leave(Mm& mm, LockSite site = LockSite::here());
  /// Count a failed syscall and return its error.
  static Errno fail(Mm& mm, Errno e);
};

/// How mmPopulate faults pages in.
struct PopulateMode {
  bool forceWrite = false;  ///< write faults everywhere (MADV_POPULATE_WRITE)
  bool forceRead = false;   ///< read faults everywhere (MADV_POPULATE_READ)
  /// __mm_populate (mmap MAP_POPULATE/MAP_LOCKED, mlock): holes are skipped, VM_LOCKONFAULT
  /// vmas left alone, PROT_NONE vmas fail with Fault. Otherwise faultin_page_range (madvise
  /// POPULATE_*): a hole fails with Fault.
  bool mmPopulate = false;
  bool ignoreErrors = false;  ///< keep going past failures and return Ok (mm_populate)
};

/// Fault the pages of [start, end) in (takes the mmap read lock): write faults when forceWrite
/// or for private writable vmas (breaking COW), read faults when forceRead or otherwise.
/// Returns Ok, Fault (a hole as the mode says, SIGBUS/SIGSEGV, PROT_NONE, or VM_IO/VM_PFNMAP
/// with a forced mode), NoMem.
Errno mmPopulate(Mm& mm, Va start, Va end, const PopulateMode& mode);

/// mm_populate(): __mm_populate's rules with errors ignored (mmap with MAP_POPULATE or
/// MAP_LOCKED, mlockall(MCL_CURRENT), a locked vma made writable or grown by mremap).
inline void mmPopulateIgnoringErrors(Mm& mm, Va start, Va end) {
  PopulateMode mode;
  mode.mmPopulate = true;
  mode.ignoreErrors = true;
  (void)mmPopulate(mm, start, end, mode);
}

/// Which vm flags PROT_* bits give (calc_vm_prot_bits).
constexpr VmFlags calcVmProtBits(int prot) {
  return ((prot & PROT_READ) ? VM_READ : 0) | ((prot & PROT_WRITE) ? VM_WRITE : 0) |
         ((prot & PROT_EXEC) ? VM_EXEC : 0);
}
inline constexpr VmFlags VM_ACCESS_FLAGS = VM_READ | VM_WRITE | VM_EXEC;

/// PAGE_ALIGN with overflow detection: false when rounding wraps.
inline bool pageAlign(std::uint64_t len, std::uint64_t& out) {
  out = (len + kPageSize - 1) & ~(kPageSize - 1);
  return !(len != 0 && out == 0);
}

}  // namespace hmmsim
