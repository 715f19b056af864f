#pragma once
// Hugetlb mappings (mm/hugetlb.c): MAP_HUGETLB memory of one hstate per vma, 2 MiB (PMD leaves)
// or 1 GiB (PUD leaves), never split, never THP-managed.
//
// Models: hstate_vma / huge_page_size (Vma::vmHugetlbShift, Vma::kernelPagesize), the per-mm
// pools and reservations of both sizes (MmParams::hugetlbPages / hugetlbPages1G, taken at mmap,
// returned when the vma goes), hugetlb_fault (hugetlb_no_page: a fresh folio of the hstate's
// order; hugetlb_wp: reuse an exclusive page, else copy the whole huge page inside an
// MMU_NOTIFY_CLEAR round over it), __unmap_hugepage_range, copy_hugetlb_page_range (fork: the
// caller raises MMU_NOTIFY_CLEAR over a COW vma, as the kernel does here instead of
// copy_page_range's PROTECTION_PAGE; maybe-DMA-pinned private pages are copied at once), and
// hugetlb_change_protection. Hugetlb pages count in mm->hugetlb_usage (Mm::hugetlbUsage), not
// in the rss counters, as in the kernel.
// Leaves out: hugetlbfs files (MAP_HUGETLB anonymous memory only), PMD sharing between
// processes, surplus pages and overcommit, the system-wide pool (pools are per mm; hmmsim runs
// one process per mm), hugetlb migration, hwpoison, userfaultfd.
// Timing: none here.

#include <cstdint>

#include "models/cpu_mmu/pte.h"
#include "models/cpu_mmu/vm_fault.h"
#include "models/cpu_mmu/vma.h"
#include "sim/errno.h"
#include "sim/strong_types.h"

namespace hmmsim {

/// Page-table level of a hugetlb vma's leaves: Pmd for 2 MiB, Pud for 1 GiB.
inline PtLevel hugetlbLevel(const Vma& vma) {
  return vma.vmHugetlbShift == kPudShift ? PtLevel::Pud : PtLevel::Pmd;
}
/// huge_page_order(hstate_vma(vma)): 9 or 18.
inline unsigned hugetlbOrder(const Vma& vma) {
  return vma.vmHugetlbShift - kPageShift;
}

/// hugetlb_fault: handle a fault at `vmf.address` of a VM_HUGETLB vma. Returns None (mapped),
/// Oom (no page table or no free huge folio in the buddy allocator), Retry (migration entry
/// with RETRY_NOWAIT), Sigbus (a non-present entry hmmsim does not resolve).
VmFaultResult hugetlbFault(VmFault& vmf);

/// __unmap_hugepage_range: clear every huge entry of [start, end) (aligned to the vma's huge
/// page size, inside the vma), dropping the mappings' references. The caller raises the
/// notifier round.
void unmapHugepageRange(Vma& vma, Va start, Va end);

/// copy_hugetlb_page_range (fork): copy `src`'s huge entries into `dst` (same range, child mm).
/// Shared mappings share the pages; private ones share them write-protected in both, except
/// maybe-DMA-pinned anonymous pages, which the child gets a copy of at once. Returns Ok or
/// NoMem (no page table, or no folio for an eager copy).
Errno copyHugetlbPageRange(Vma& dst, Vma& src);

/// hugetlb_change_protection: apply `newFlags` to the huge entries of [start, end) (aligned).
/// Returns the number of 4 KiB pages whose entry changed.
std::uint64_t hugetlbChangeProtection(Vma& vma, Va start, Va end, VmFlags newFlags);

}  // namespace hmmsim
