#pragma once
// struct vm_fault and vm_fault_t: the page-fault request and its outcome (include/linux/mm.h,
// include/linux/mm_types.h).
//
// Models: the fault descriptor that handleMmFault() builds and hands down the do_* paths, to
// vm_operations::fault of special/file vmas and to dev_pagemap_ops::migrate_to_ram; the
// FAULT_FLAG_* request bits; the VM_FAULT_* result bits; the per-mm vm-event counters that the
// fault path, THP and GUP bump (PGFAULT, THP_FAULT_ALLOC, THP_SPLIT_PMD, ...).
// Leaves out: the pte/pmd pointers and page-table locks of the kernel's vm_fault (the pure core is
// single-threaded; a fault runs to completion between two synchronized points), userfaultfd,
// NUMA hinting, the per-VMA lock (FAULT_FLAG_VMA_LOCK) and swap.
// Timing: none here; the SystemC CPU core charges a fault cost per handled fault.

#include <cstdint>
#include <optional>

#include "models/cpu_mmu/pte.h"
#include "sim/errno.h"
#include "sim/stats.h"
#include "sim/strong_types.h"

namespace hmmsim {

class Vma;

// ---- FAULT_FLAG_* (enum fault_flag, include/linux/mm_types.h; same bit values) ----
inline constexpr unsigned kFaultFlagWrite = 1u << 0;       ///< FAULT_FLAG_WRITE: write access
inline constexpr unsigned kFaultFlagMkwrite = 1u << 1;     ///< FAULT_FLAG_MKWRITE: write on present pte
inline constexpr unsigned kFaultFlagAllowRetry = 1u << 2;  ///< FAULT_FLAG_ALLOW_RETRY: caller can retry
inline constexpr unsigned kFaultFlagRetryNowait =
    1u << 3;  ///< FAULT_FLAG_RETRY_NOWAIT: do not wait (migration entry)
inline constexpr unsigned kFaultFlagKillable = 1u << 4;       ///< FAULT_FLAG_KILLABLE
inline constexpr unsigned kFaultFlagTried = 1u << 5;          ///< FAULT_FLAG_TRIED: second attempt
inline constexpr unsigned kFaultFlagUser = 1u << 6;           ///< FAULT_FLAG_USER: from user mode
inline constexpr unsigned kFaultFlagRemote = 1u << 7;         ///< FAULT_FLAG_REMOTE: GUP on another mm
inline constexpr unsigned kFaultFlagInstruction = 1u << 8;    ///< FAULT_FLAG_INSTRUCTION: instruction fetch
inline constexpr unsigned kFaultFlagInterruptible = 1u << 9;  ///< FAULT_FLAG_INTERRUPTIBLE
/// FAULT_FLAG_UNSHARE: break COW for a read-only pin (GUP FOLL_PIN on a shared anon page); the
/// result is an exclusive anonymous page mapped read-only as before.
inline constexpr unsigned kFaultFlagUnshare = 1u << 10;
inline constexpr unsigned kFaultFlagOrigPteValid = 1u << 11;  ///< FAULT_FLAG_ORIG_PTE_VALID: origPte is set

/// vm_fault_t: a bit set of VM_FAULT_* values (same bits as the kernel). Zero means "handled,
/// the access can be retried and will now succeed" (or "nothing to do": a spurious fault).
enum class VmFaultResult : std::uint32_t {
  None = 0,           ///< 0: success
  Oom = 0x000001,     ///< VM_FAULT_OOM: no memory for a page or a page table
  Sigbus = 0x000002,  ///< VM_FAULT_SIGBUS: bad access to an object (beyond file end, bad entry, driver error)
  Major = 0x000004,   ///< VM_FAULT_MAJOR: needed I/O (page-cache miss)
  Hwpoison = 0x000010,       ///< VM_FAULT_HWPOISON: poisoned small page
  HwpoisonLarge = 0x000020,  ///< VM_FAULT_HWPOISON_LARGE: poisoned huge page
  Sigsegv = 0x000040,        ///< VM_FAULT_SIGSEGV: access not permitted by the vma (or no vma)
  NoPage = 0x000100,     ///< VM_FAULT_NOPAGE: ->fault installed the pte itself (insert_pfn, migrate_to_ram)
  Locked = 0x000200,     ///< VM_FAULT_LOCKED: ->fault returned vmf.page locked
  Retry = 0x000400,      ///< VM_FAULT_RETRY: lock dropped (migration wait); the caller retries
  Fallback = 0x000800,   ///< VM_FAULT_FALLBACK: huge fault failed, fall back to small pages
  DoneCow = 0x001000,    ///< VM_FAULT_DONE_COW: ->fault did the COW itself
  NeedDsync = 0x002000,  ///< VM_FAULT_NEEDDSYNC: DAX synchronous fault
  Completed = 0x004000,  ///< VM_FAULT_COMPLETED: done, and the mmap lock was released
};

constexpr VmFaultResult operator|(VmFaultResult a, VmFaultResult b) {
  return VmFaultResult(std::uint32_t(a) | std::uint32_t(b));
}
constexpr VmFaultResult operator&(VmFaultResult a, VmFaultResult b) {
  return VmFaultResult(std::uint32_t(a) & std::uint32_t(b));
}
constexpr VmFaultResult& operator|=(VmFaultResult& a, VmFaultResult b) {
  return a = a | b;
}
/// True when any bit of `bits` is set in `r`.
constexpr bool hasAny(VmFaultResult r, VmFaultResult bits) {
  return (std::uint32_t(r) & std::uint32_t(bits)) != 0;
}
/// VM_FAULT_ERROR: the bits that mean the access failed.
inline constexpr VmFaultResult kVmFaultError = VmFaultResult::Oom | VmFaultResult::Sigbus |
                                               VmFaultResult::Sigsegv | VmFaultResult::Hwpoison |
                                               VmFaultResult::HwpoisonLarge | VmFaultResult::Fallback;
constexpr bool isFaultError(VmFaultResult r) {
  return hasAny(r, kVmFaultError);
}
/// What a user-space access turns a fault result into (the kernel's signal, or for
/// copy_{from,to}_user / GUP, the errno): OOM -> ENOMEM, SIGBUS/HWPOISON -> EFAULT (GUP: EFAULT;
/// with hwpoison GUP returns EHWPOISON which hmmsim folds into EFAULT), SIGSEGV -> EFAULT.
/// Ok for a non-error result. (The kernel's vm_fault_to_errno() with FOLL_* = 0.)
Errno vmFaultToErrno(VmFaultResult r);

/// struct vm_fault: one page-fault request as it travels the fault path. Built by handleMmFault();
/// a vm_operations::fault or dev_pagemap_ops::migrate_to_ram implementation reads the inputs and
/// may set the outputs.
struct VmFault {
  // ---- inputs (const in the kernel) ----
  Vma* vma = nullptr;       ///< target vma (vmf->vma); its vmMm is the faulting mm
  unsigned flags = 0;       ///< kFaultFlag* bits
  Va address;               ///< faulting address, page aligned (vmf->address)
  Va realAddress;           ///< the address as faulted, unaligned (vmf->real_address)
  std::uint64_t pgoff = 0;  ///< page offset in the vma's backing object (vmf->pgoff): vmPgoff + page index
  /// The pte value that caused the fault (vmf->orig_pte); meaningful when
  /// kFaultFlagOrigPteValid is set. For a device-private fault it is the device-private entry,
  /// for a migration fault the migration entry.
  Pte origPte;

  // ---- outputs ----
  /// The page ->fault found or allocated (vmf->page), to be mapped by the core (finish_fault);
  /// unset when ->fault installed the mapping itself (returns NoPage). For migrate_to_ram it is
  /// the device-private page being faulted (an input there, as in the kernel).
  std::optional<Pfn> page;
  /// Page allocated by the core for a private COW of a file page (vmf->cow_page).
  std::optional<Pfn> cowPage;

  bool isWrite() const { return (flags & kFaultFlagWrite) != 0; }
};

/// The vm-event counters (enum vm_event_item, /proc/vmstat names) that the fault path, THP and
/// GUP bump. One instance per mm, registered into the mm's stats group. Tests assert on them
/// the way the kernel's selftests read /proc/vmstat.
struct VmEventCounters {
  explicit VmEventCounters(StatsGroup& g);
  Counter& pgfault;           ///< PGFAULT: handleMmFault calls (including retried ones)
  Counter& pgmajfault;        ///< PGMAJFAULT: faults that needed the page cache to read the page
  Counter& zeroPageMap;       ///< zero-page mappings installed by anonymous read faults (no kernel counter)
  Counter& anonFaultAlloc;    ///< anonymous pages allocated by write faults (do_anonymous_page)
  Counter& cowFault;          ///< COW copies made by wp_page_copy (includes zero-page -> private)
  Counter& cowReuse;          ///< write faults that reused an exclusively owned page (wp_page_reuse)
  Counter& thpFaultAlloc;     ///< THP_FAULT_ALLOC: PMD-size anonymous pages allocated at fault time
  Counter& thpFaultFallback;  ///< THP_FAULT_FALLBACK: THP-eligible faults that fell back to 4 KiB
  /// THP_ZERO_PAGE_ALLOC: the huge zero page is allocated once per PhysMem; hmmsim counts its
  /// first use in this mm (0 or 1), since the counter lives per mm.
  Counter& thpZeroPageAlloc;
  Counter& thpSplitPmd;             ///< THP_SPLIT_PMD: PMD mappings split into PTE mappings
  Counter& thpCollapseAlloc;        ///< THP_COLLAPSE_ALLOC: huge pages allocated by collapse
  Counter& hugetlbFault;            ///< hugetlb faults that mapped a huge page (no kernel counter)
  Counter& devicePrivateFault;      ///< faults on device-private entries handed to migrate_to_ram
  Counter& deviceExclusiveRestore;  ///< device-exclusive entries restored by a CPU fault
  Counter& migrationEntryWait;      ///< faults that waited on a migration entry (migration_entry_wait)
  Counter& gupPages;                ///< pages returned by get_user_pages (FOLL_GET)
  Counter& gupPins;                 ///< pages pinned by pin_user_pages (FOLL_PIN)
  Counter& gupUnpins;               ///< pages unpinned (unpin_user_page)
  Counter& gupLongtermMigrate;  ///< pages migrated away by FOLL_LONGTERM (check_and_migrate_movable_pages)
};

}  // namespace hmmsim
