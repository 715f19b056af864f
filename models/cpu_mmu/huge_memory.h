#pragma once
// Transparent huge pages (mm/huge_memory.c, mm/khugepaged.c): PMD-size anonymous pages at fault
// time, the huge zero page, split_huge_pmd, and collapse for MADV_COLLAPSE.
//
// Models: the THP "enabled" policy (always / madvise / never) and use_zero_page as a parameter
// struct held per mm; thp_vma_allowable_order for anonymous vmas (VM_HUGEPAGE / VM_NOHUGEPAGE,
// PMD-aligned range wholly inside the vma); do_huge_pmd_anonymous_page (a read fault maps the
// huge zero page when use_zero_page is on, a write fault allocates a 2 MiB folio, falling back
// to 4 KiB pages with THP_FAULT_FALLBACK when no 2 MiB frame is free); do_huge_pmd_wp_page
// (a write to the huge zero page or to a shared THP splits the PMD and the 4 KiB path COWs,
// like current kernels; an exclusively owned THP is reused); __split_huge_pmd (every subpage
// keeps its data and gets its own pte with the PMD's permissions; the huge zero page becomes
// 512 zero-page ptes; a raised MMU_NOTIFY_CLEAR round over the PMD range); collapse of a fully
// populated, exclusively owned 4 KiB range into a fresh 2 MiB folio.
// Leaves out: khugepaged's background scanning (collapse happens only on MADV_COLLAPSE),
// shmem/file THPs (file mappings use 4 KiB page-cache pages), mTHP orders between 4 KiB and
// 2 MiB, PUD-size anonymous THPs, the deferred-split queue (a partly unmapped THP keeps its
// 2 MiB folio until all of it is unmapped, as the kernel does until memory pressure splits it).
// Timing: none here.

#include <cstdint>

#include "models/cpu_mmu/vm_fault.h"
#include "models/cpu_mmu/vma.h"
#include "sim/errno.h"
#include "sim/strong_types.h"

namespace hmmsim {

class Mm;

/// /sys/kernel/mm/transparent_hugepage/enabled.
enum class ThpPolicy {
  Always,   ///< "always": every anonymous vma without VM_NOHUGEPAGE gets THPs at fault time
  Madvise,  ///< "madvise": only vmas with VM_HUGEPAGE (MADV_HUGEPAGE) — most distributions' default
  Never,    ///< "never": no THP at fault time (MADV_COLLAPSE still works, as in the kernel)
};

const char* thpPolicyName(ThpPolicy p);

/// THP parameters of one mm (the kernel's are global sysfs knobs; per mm here so tests and
/// scenarios can vary them independently).
struct ThpParams {
  /// transparent_hugepage/enabled. Default: Madvise.
  ThpPolicy enabled = ThpPolicy::Madvise;
  /// transparent_hugepage/use_zero_page: a read fault in a THP-eligible range maps the huge zero
  /// page (read-only PMD). Default: true.
  bool useZeroPage = true;
};

/// thp_vma_allowable_order() for PMD order at `address`: the vma is anonymous (private) and not
/// hugetlb/special, THP is allowed by the policy and the vma flags (VM_NOHUGEPAGE wins; Always
/// or VM_HUGEPAGE), and the PMD-aligned 2 MiB range around `address` lies wholly inside the vma.
/// `forCollapse` ignores the policy (MADV_COLLAPSE works with "never", as in the kernel) but
/// not VM_NOHUGEPAGE.
bool thpVmaAllowable(const Vma& vma, Va address, const ThpParams& params, bool forCollapse = false);

/// split_huge_pmd(vma, pmd, address): if the PMD covering `address` in `vma` maps a THP or the
/// huge zero page, replace it by a page table of 512 ptes mapping the same subpages with the same
/// permissions and data (dirty/young propagated), inside an MMU_NOTIFY_CLEAR round over the
/// 2 MiB range (like __split_huge_pmd). Device-private / migration PMD entries become 512
/// entries of the same kind. No-op when the PMD is not huge. Returns Ok, or NoMem when no
/// page-table page could be allocated (the PMD then stays huge).
Errno splitHugePmd(Vma& vma, Va address);

/// vma_adjust_trans_huge(): before a vma is split or shrunk at `start` and/or `end`, split any
/// huge PMD that straddles either boundary (addresses that are not 2 MiB aligned). mm's
/// __split_vma / mprotect / mremap call it. Returns Ok or NoMem (from splitHugePmd).
Errno vmaAdjustTransHuge(Vma& vma, Va start, Va end);

/// madvise_collapse() for one PMD range: collapse the 2 MiB range containing `address` (which must
/// lie wholly inside `vma`) into one PMD-mapped THP. Requirements like hpage_collapse_scan_pmd:
/// anonymous private vma, every pte present (or zero page / none up to max_ptes_none = 511 for
/// MADV_COLLAPSE, which ignores the sysfs limits), no page mapped more than once or pinned, no
/// device/migration entries. Raises MMU_NOTIFY_CLEAR over the range while the ptes are
/// replaced. Returns Ok (also when already PMD-mapped), Inval (vma not eligible, range not
/// inside it), Again (a page is shared, pinned, or has a device/migration entry: the kernel's
/// SCAN_* failures map to EAGAIN), NoMem (no 2 MiB frame: THP_COLLAPSE_ALLOC_FAILED).
Errno collapseHugePage(Vma& vma, Va address);

}  // namespace hmmsim
