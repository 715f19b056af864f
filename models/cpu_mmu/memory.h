#pragma once
// The page-fault path and the page-table range operations of mm/memory.c.
//
// Models: handle_mm_fault and its do_* paths (anonymous read -> shared zero page, anonymous write
// -> zeroed private page, COW via do_wp_page/wp_page_copy with reuse of exclusively owned pages,
// file faults through vm_ops->fault with finish_fault/do_cow_fault/do_shared_fault, special
// vmas whose ->fault inserts pfns, THP and huge-zero-page faults (huge_memory.h), hugetlb faults,
// device-private entries -> pgmap->ops->migrateToRam, device-exclusive entries -> restore with an
// MMU_NOTIFY_EXCLUSIVE round, migration entries -> wait for the migration to end and retry),
// the CPU's user-access path (copy_{from,to}_user: walk, fault, move bytes through PhysMem),
// zap_page_range, copy_page_range (fork), change_protection (mprotect's page-table part) and the
// insert helpers drivers use from ->fault (vmf_insert_pfn, vmf_insert_mixed, vm_insert_page,
// remap_pfn_range).
// Leaves out: swap (no swap entries other than device-private/exclusive/migration), KSM,
// userfaultfd, NUMA balancing, soft-dirty, uffd-wp, mlock, per-VMA locks, page-table
// reclaim on zap (empty page-table pages are kept, like the kernel keeps them until free_pgtables).
// Locking: the pure core runs one operation at a time; callers stand for the mmap lock
// (handleMmFault expects the read lock, zap/copy/changeProtection the write lock).
// Notifiers: the fault path raises its own notifier rounds (wp_page_copy: CLEAR on the page;
// device-exclusive restore: EXCLUSIVE; split_huge_pmd: CLEAR on the PMD). zapPageRange,
// copyPageRange and changeProtection do NOT raise a round for their range: the caller (munmap,
// madvise, fork, mprotect in "mm") raises UNMAP/CLEAR/PROTECTION_PAGE/PROTECTION_VMA around them,
// as unmap_vmas/copy_page_range's callers/change_protection's callers do in the kernel.
// (The kernel raises the fork round inside copy_page_range; hmmsim lets fork raise it once for
// all vmas, which gives drivers the same event and range per vma.)
// Timing: none; the SystemC CPU core charges each handled fault and each access.
//
// Entry conventions (every creator of page-table entries must keep them: the fault path, mm's
// syscalls, hmm/'s migrate_vma and make_device_exclusive):
//  - present pte of a normal page: one folio reference + one mapcount on that subpage;
//  - present huge PMD (THP, hugetlb) or PUD (1 GiB hugetlb): one folio reference + one entire
//    mapcount on the head (hugetlb pages count in mm->hugetlb_usage, not in the rss counters);
//  - device-private entry: one reference + one mapcount on the device page (as the kernel's
//    remove_migration_pte does with folio_add_anon_rmap + folio_get);
//  - device-exclusive entry: the page keeps its reference and mapcount (the folio stays mapped,
//    as in kernels >= 6.15);
//  - migration entry: no reference, no mapcount (the migration holds them) but it still counts
//    in the mm's rss, as in the kernel;
//  - special entries (zero page, huge zero page, pfnmap/mixedmap pfns): nothing;
//  - rss: anonymous folios count in MM_ANONPAGES, page-cache folios in MM_SHMEMPAGES (every
//    hmmsim file is shmem-like, file.h).

#include <cstddef>
#include <cstdint>

#include "models/cpu_mmu/vm_fault.h"
#include "models/cpu_mmu/vma.h"
#include "sim/errno.h"
#include "sim/strong_types.h"

namespace hmmsim {

class Mm;

// ------------------------------------------------------------------------------------------
// Faults
// ------------------------------------------------------------------------------------------

/// handle_mm_fault(): resolve one fault at `address` in `vma` (which must contain it; the caller
/// found it under the mmap read lock). `faultFlags` are kFaultFlag* bits; kFaultFlagWrite asks
/// for a writable mapping, kFaultFlagUnshare for an exclusive page (GUP read pin).
///
/// Permission check first (like the arch fault handler + handle_mm_fault's
/// arch_vma_access_permitted): a write to a vma without VM_WRITE, or any access to a vma without
/// VM_READ|VM_WRITE|VM_EXEC (PROT_NONE) -> Sigsegv and nothing changes.
///
/// Returns:
///   None     the page is now mapped as requested (also for a spurious fault on an entry that was
///            already good, and after a migration-entry wait or a migrateToRam that succeeded:
///            the caller's access is simply retried, like the hardware re-executes the access),
///   Sigsegv  permission failure (see above),
///   Sigbus   a file fault beyond the end of the file, an unknown non-present entry, a special
///            vma (VM_PFNMAP/VM_IO) whose ->fault is missing or failed, migrateToRam's Sigbus,
///   Oom      no free frame (PhysMem exhausted) for the page, the copy, or a page-table page,
///   Retry    a migration entry was found and kFaultFlagRetryNowait was given (the caller must
///            not wait; GUP with FOLL_NOWAIT), or the wait mechanism asked the caller to retry,
///   NoPage   ->fault or migrateToRam installed the mapping itself (reported as success),
///   plus Major when the page cache had to read the page.
/// Bumps VmEventCounters::pgfault once per call.
VmFaultResult handleMmFault(Vma& vma, Va address, unsigned faultFlags);

/// The arch fault handler's part (do_user_addr_fault, x86): find the vma containing `address`
/// (expanding VM_GROWSDOWN is not modelled), return Sigsegv when there is none, else
/// handleMmFault with kFaultFlagUser and the access type. Retries after a migration-entry wait
/// until the fault is resolved or fails. Returns what handleMmFault returned last.
VmFaultResult handleUserFault(Mm& mm, Va address, bool write);

/// The CPU's access to user memory (copy_from_user/copy_to_user, and what a user load/store does):
/// for each page of [address, address+len), walk the page table; if the entry does not allow the
/// access (not present, device-private, migration or device-exclusive entry, read-only for a
/// write), take the fault (handleUserFault) and walk again; then move the bytes through PhysMem
/// (a write also marks the pte dirty/accessed, like the hardware).
/// Returns Ok when every byte moved, Fault (EFAULT) when a page faulted with Sigsegv/Sigbus/
/// Hwpoison or there is no vma, NoMem when a fault returned Oom. On failure, the bytes of the
/// pages before the failing page have been moved (copy_*_user's partial copy); `*done`, if
/// given, receives the number of bytes moved.
Errno cpuAccess(Mm& mm, Va address, void* buf, std::size_t len, bool write, std::size_t* done = nullptr);
/// copy_from_user: read `len` bytes at user address `src` into `dst`. Same returns as cpuAccess.
Errno copyFromUser(Mm& mm, void* dst, Va src, std::size_t len);
/// copy_to_user: write `len` bytes from `src` to user address `dst`. Same returns as cpuAccess.
Errno copyToUser(Mm& mm, Va dst, const void* src, std::size_t len);

/// migration_entry_wait(): the entry at `address` of `mm` is a migration entry; sleep (through
/// mm.blocker(), on mm.migrationWaitQueue()) until it is no longer that migration entry, i.e.
/// until the migration that owns it has replaced it (remove_migration_ptes) and woken the queue.
/// Returns at once if the entry is not a migration entry. In a pure C++ context a wait that is
/// needed is a deadlock (SingleThreadBlocker asserts) unless a test Blocker completes the
/// migration; in SystemC the faulting SC_THREAD sleeps.
void migrationEntryWait(Mm& mm, Va address);
/// The waker side (folio_unlock's wake-up after remove_migration_ptes): whoever replaces
/// migration entries of `mm` (hmm/'s migrate_vma_finalize, migrate_device_finalize) calls this
/// once per mm touched, after the entries are replaced. Also the wake-up for folioWaitLocked:
/// whoever unlocks a folio that is mapped in `mm` (migration finalize, the release of a
/// device-exclusive folio) calls it after clearing kFrameLocked.
void migrationEntryWake(Mm& mm);
/// folio_wait_locked(): sleep (mm.blocker(), on mm.migrationWaitQueue()) until the folio of
/// `pfn` is unlocked or freed. Used by the fault path when a device-private page or a
/// device-exclusive folio is locked by another context (a migration, a driver holding
/// exclusive access). Returns at once when it is not locked.
void folioWaitLocked(Mm& mm, Pfn pfn);

// ------------------------------------------------------------------------------------------
// Range operations (callers raise the notifier round; see the header comment)
// ------------------------------------------------------------------------------------------

/// struct zap_details.
struct ZapDetails {
  /// even_cows: also zap private COW copies of file pages (truncate); false for
  /// unmap_mapping_range(even_cows=0), which only drops page-cache pages.
  bool evenCows = true;
  /// Only zap page-cache pages of this file page range (unmap_mapping_range on truncation);
  /// when false, every entry in the range is zapped (munmap, MADV_DONTNEED, exit).
  bool onlyFilePages = false;
};

/// zap_page_range_single()/unmap_page_range(): clear every entry in [start, end) of `vma`
/// (page aligned, inside the vma). Present pages lose a mapcount and a reference (freed when the
/// refcount reaches zero; a ZONE_DEVICE frame then goes to pgmap->ops->folioFree); device-private
/// entries likewise drop their page; device-exclusive entries drop the page they stand for;
/// migration entries are cleared (the migration owns the page and will find the entry gone). A
/// PMD-mapped THP wholly inside the range is zapped as one entry (zap_huge_pmd); one partly
/// inside is split first (split_huge_pmd, which raises its own MMU_NOTIFY_CLEAR on the PMD
/// range) and then its covered half is zapped, the other half stays mapped with its data. A
/// hugetlb vma goes to unmapHugepageRange (hugetlb.h): whole huge pages only (HMMSIM_ASSERT).
/// Page-table pages are kept. No notifier round for [start, end) (the caller raises it).
void zapPageRange(Vma& vma, Va start, Va end, const ZapDetails* details = nullptr);

/// copy_page_range() for fork: populate `dst` (the child's vma, same range and flags, empty page
/// table) from `src`. Returns Ok, or NoMem when a frame or page-table page could not be allocated
/// (the child is then torn down by the caller).
/// - VM_SHARED and file-shared mappings: share the pages (mapcount+1, refcount+1).
/// - Private (COW) mappings: write-protect the pte in both parent and child (the caller raises
///   MMU_NOTIFY_PROTECTION_PAGE on the parent's range around the whole fork), mapcount+1.
///   A THP stays PMD-mapped in both (copy_huge_pmd); the huge zero page is shared.
/// - An anonymous page that may be DMA-pinned (folioMaybeDmaPinned) in a COW mapping is copied eagerly into a
/// new
///   page for the child and the parent keeps its writable mapping (page_needs_cow_for_dma).
/// - Device-private entries: the child gets the same entry; a writable entry in a COW mapping
///   becomes read-only in both (copy_nonpresent_pte), page refcount and mapcount +1.
/// - Device-exclusive entries: the parent's original pte is restored first (like
///   try_restore_exclusive_pte, inside fork's own PROTECTION_PAGE round), then copied as a
///   present pte.
/// - Migration entries: copied; a writable one in a COW mapping becomes read-only in both.
/// - VM_PFNMAP/VM_MIXEDMAP special entries: copied as is (no struct page to reference).
/// - Hugetlb vmas go to copyHugetlbPageRange (hugetlb.h).
/// Vmas with neither anon pages nor special mappings may be skipped by the caller
/// (vma_needs_copy); copying them is still correct.
Errno copyPageRange(Vma& dst, Vma& src);

/// change_protection(): apply `newFlags` (the vma's VM_READ/VM_WRITE/VM_EXEC after mprotect) to
/// the entries in [start, end) of `vma`. Removing write access write-protects present ptes and
/// PMDs and turns writable device-private and migration entries read-only; granting write access
/// makes a pte writable only where no COW is pending (an anonymous page mapped once in a
/// VM_SHARED or exclusively owned page: can_change_pte_writable), otherwise the next write
/// faults. PROT_NONE makes the entries inaccessible (pte_modify to PAGE_NONE: not present for the
/// hardware, kept for the mm). Huge PMDs partly covered are split first (split_huge_pmd, with its
/// own CLEAR round). Returns the number of entries changed (pages), as the kernel does.
/// No notifier round for the range (mprotect raises MMU_NOTIFY_PROTECTION_VMA).
std::uint64_t changeProtection(Vma& vma, Va start, Va end, VmFlags newFlags);

// ------------------------------------------------------------------------------------------
// Helpers drivers call from vm_operations::fault / mmap
// ------------------------------------------------------------------------------------------

/// vmf_insert_pfn(): map raw pfn `pfn` at `address` in a VM_PFNMAP (or VM_MIXEDMAP) vma as a
/// special pte (no refcount, no mapcount; GUP and hmm_range_fault see it as special).
/// Returns NoPage on success, Sigbus if the vma is not PFNMAP/MIXEDMAP or the address is outside
/// it, Oom without a page-table page. An existing entry is left alone (NoPage).
VmFaultResult vmfInsertPfn(Vma& vma, Va address, Pfn pfn);
/// vmf_insert_mixed(): in a VM_MIXEDMAP vma, map `pfn`. On x86 (CONFIG_ARCH_HAS_PTE_SPECIAL)
/// the kernel inserts every pfn, even one with a struct page, as a special pte (insert_pfn), and
/// so does hmmsim: no refcount, no mapcount. Returns as vmfInsertPfn (Sigbus without
/// VM_MIXEDMAP).
VmFaultResult vmfInsertMixed(Vma& vma, Va address, Pfn pfn);
/// vm_insert_page(): map the page `pfn` (a PhysMem frame) at `address`, setting VM_MIXEDMAP on
/// the vma if it has neither PFNMAP nor MIXEDMAP (like the kernel, which requires the mmap lock
/// for writing then). refcount+1, mapcount+1. Returns Ok, Inval (not a RAM/ZONE_DEVICE frame, or
/// the vma is VM_PFNMAP, or the address is outside the vma), Busy (an entry is already there),
/// NoMem (page-table page).
Errno vmInsertPage(Vma& vma, Va address, Pfn pfn);
/// remap_pfn_range(): map [pfn, pfn + size/4KiB) at [address, address+size) as special ptes with
/// the vma's protection, and set VM_IO|VM_PFNMAP|VM_DONTEXPAND|VM_DONTDUMP on the vma. Returns
/// Ok, Inval (unaligned or outside the vma), NoMem.
Errno remapPfnRange(Vma& vma, Va address, Pfn pfn, std::uint64_t size);

}  // namespace hmmsim
