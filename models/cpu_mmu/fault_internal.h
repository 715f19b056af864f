#pragma once
// Internal helpers shared by the fault-path files (memory.cpp, huge_memory.cpp, gup.cpp).
// Not a public interface.

#include <cstdint>

#include "models/cpu_mmu/frame.h"
#include "models/cpu_mmu/mm.h"
#include "models/cpu_mmu/page_table.h"
#include "models/cpu_mmu/phys_mem.h"
#include "models/cpu_mmu/pte.h"
#include "models/cpu_mmu/vm_fault.h"
#include "models/cpu_mmu/vma.h"

namespace hmmsim::fault_detail {

inline Mm& mmOf(const Vma& vma) {
  HMMSIM_ASSERT(vma.vmMm != nullptr, "vma without an mm");
  return *vma.vmMm;
}

/// vm_page_prot's write bit: only shared writable mappings map pages writable without a fault
/// (private ones stay read-only until a write fault breaks COW). hmmsim's files are all
/// shmem-like (no page_mkwrite, no dirty tracking), so no write-notify either.
inline bool protWritable(const Vma& vma) {
  return (vma.vmFlags & (VM_SHARED | VM_WRITE)) == (VM_SHARED | VM_WRITE);
}

/// mk_pte(pfn, vm_page_prot) with an explicit write bit; NX unless VM_EXEC. PROT_NONE vmas get
/// an x86 PROT_NONE entry (present for the mm, not for the MMU).
inline Pte mkPte(Pfn pfn, const Vma& vma, bool writable) {
  Pte p = Pte::mkPresent(pfn, writable);
  if (!(vma.vmFlags & VM_EXEC)) p = p.mkNoExec();
  if (!(vma.vmFlags & (VM_READ | VM_WRITE | VM_EXEC))) p = p.mkProtNone();
  return p;
}

/// mm_counter(folio): which rss counter a mapped frame counts in. Anonymous (and device-private)
/// folios count as AnonPages; page-cache folios as ShmemPages, because every hmmsim file is an
/// in-memory shmem/tmpfs file (file.h).
inline MmCounter mmCounterOf(const Frame& head) {
  return head.isAnon() ? MmCounter::AnonPages : MmCounter::ShmemPages;
}

/// The head frame of the folio containing `pfn`.
inline Frame& headFrame(PhysMem& pm, Pfn pfn) {
  return pm.frame(pm.compoundHead(pfn));
}

/// vm_normal_page(): does a present entry refer to a refcounted page? Special entries (zero page,
/// pfnmap/mixedmap raw pfns, the huge zero page) do not.
inline bool isNormalPage(const PhysMem& pm, Pte pte) {
  return pte.isPresent() && !pte.isSpecial() && pm.pfnValid(pte.pfn());
}

/// folio_add_new_anon_rmap's metadata part: a freshly allocated folio becomes an anonymous,
/// exclusively owned folio of `vma` at `address`.
void initAnonFolio(Mm& mm, Vma& vma, Va address, Pfn head);

/// The fault path without the arch access check (GUP has done check_vma_flags, FOLL_FORCE may
/// write to a read-only private mapping).
VmFaultResult handleMmFaultUnchecked(Vma& vma, Va address, unsigned faultFlags);

/// do_huge_pmd_anonymous_page: map the huge zero page (read) or a fresh 2 MiB folio (write) at the
/// empty PMD `pmdSlot`. Returns None, Oom (never: allocation failure is a Fallback), or
/// Fallback (THP_FAULT_FALLBACK counted) when the 4 KiB path must handle the fault.
VmFaultResult doHugePmdAnonymousPage(VmFault& vmf, Pte* pmdSlot);
/// do_huge_pmd_wp_page: a write (or unshare) to a present read-only huge PMD. Reuses an
/// exclusively owned folio; otherwise splits the PMD and returns Fallback so the pte path COWs
/// one 4 KiB page.
VmFaultResult doHugePmdWpPage(VmFault& vmf, Pte* pmdSlot);
/// change_protection's entry updates (memory.cpp), shared with hugetlb_change_protection:
/// the new value of a present entry under `newFlags` (pte_modify + the write-upgrade rules;
/// `huge`: the entry maps a whole folio, so AnonExclusive is read from the head) ...
Pte modifyPresent(PhysMem& pm, Pte pte, VmFlags newFlags, bool huge);
/// ... and of a non-present one (writable device-private / migration / device-exclusive
/// entries become read-only when write permission goes away).
Pte modifySwap(Pte pte, VmFlags newFlags);

/// __split_huge_pmd without a notifier round of its own (callers that already raised one);
/// splitHugePmd() wraps it in MMU_NOTIFY_CLEAR. Returns Ok (also when not huge) or NoMem.
Errno splitHugePmdLocked(Vma& vma, Va address);

/// PageAnonExclusive of the page `pfn` as mapped by a PTE (per subpage, like the kernel: a PMD
/// split copies the head's flag to every subpage). For a PMD mapping test the head frame.
inline bool isAnonExclusive(PhysMem& pm, Pfn pfn) {
  return pm.frame(pfn).test(kFrameAnonExclusive);
}

}  // namespace hmmsim::fault_detail
