// Transparent huge pages (mm/huge_memory.c, mm/khugepaged.c); hugetlb is in hugetlb.cpp.
// Contracts in huge_memory.h; reference conventions in memory.cpp's header comment.

#include "models/cpu_mmu/huge_memory.h"

#include "models/cpu_mmu/fault_internal.h"
#include "models/cpu_mmu/gup.h"
#include "models/cpu_mmu/memory.h"
#include "models/cpu_mmu/mmu_notifier.h"
#include "sim/assert.h"

namespace hmmsim {

using namespace fault_detail;

const char* thpPolicyName(ThpPolicy p) {
  switch (p) {
    case ThpPolicy::Always:
      return "always";
    case ThpPolicy::Madvise:
      return "madvise";
    case ThpPolicy::Never:
      return "never";
  }
  return "?";
}

bool thpVmaAllowable(const Vma& vma, Va address, const ThpParams& params, bool forCollapse) {
  // Anonymous private memory only (shmem/file THPs are not modelled), never special or hugetlb.
  if (!vma.isAnonymous() || vma.isHugetlb()) return false;
  if (vma.vmFlags & (VM_SPECIAL | VM_NOHUGEPAGE)) return false;
  if (!forCollapse) {
    if (params.enabled == ThpPolicy::Never) return false;
    if (params.enabled == ThpPolicy::Madvise && !(vma.vmFlags & VM_HUGEPAGE)) return false;
  }
  // thp_vma_suitable_order: the aligned 2 MiB around the address lies inside the vma.
  const Va haddr = address.alignDown(kPmdSize);
  return haddr >= vma.vmStart && haddr + kPmdSize <= vma.vmEnd;
}

namespace fault_detail {

Errno splitHugePmdLocked(Vma& vma, Va address) {
  Mm& mm = mmOf(vma);
  PhysMem& pm = mm.physMem();
  PageTable& pt = mm.pageTable();
  const Va haddr = address.alignDown(kPmdSize);
  Errno err = Errno::Ok;
  Pte* slot = pt.pmdPtr(haddr, false, &err);
  if (!slot) return Errno::Ok;
  const Pte pmd = *slot;
  const bool leaf = pmd.isHuge() || pmd.isSwap();
  if (!leaf) return Errno::Ok;
  HMMSIM_ASSERT(!vma.isHugetlb(), "split_huge_pmd on a hugetlb mapping at " << haddr);
  err = pt.splitHugePmd(haddr);
  if (err != Errno::Ok) return err;
  Pte* ptes = pt.ptePtr(haddr, false);
  HMMSIM_ASSERT(ptes, "no pte table after splitting the PMD at " << haddr);
  if (pmd.isPresent()) {
    const Pfn pfn = pmd.pfn();
    if (pm.isHugeZeroPfn(pfn) || !pm.pfnValid(pfn) || pmd.isSpecial()) {
      // __split_huge_zero_page_pmd: 512 ptes of the small zero page (special, read-only).
      if (pm.isHugeZeroPfn(pfn)) {
        for (unsigned i = 0; i < kPagesPerPmd; ++i) {
          Pte p = mkPte(pm.zeroPfn(), vma, false).mkSpecial();
          if (pmd.isYoung()) p = p.mkYoung();
          ptes[i] = p;
        }
      }
    } else {
      // __split_huge_pmd_locked for a THP: each subpage gets a pte (same bits, from the page
      // table's split), a mapcount and a folio reference; the entire mapcount goes away;
      // PageAnonExclusive moves from the folio to every subpage.
      Frame& h = headFrame(pm, pfn);
      HMMSIM_ASSERT(h.entireMapcount() > 0, "split of PMD-mapped " << pfn << " with entire mapcount 0");
      h.setEntireMapcount(h.entireMapcount() - 1);
      const bool exclusive = h.test(kFrameAnonExclusive);
      for (unsigned i = 0; i < kPagesPerPmd; ++i) {
        Frame& f = pm.frame(pfn + i);
        ++f.mapcount;
        if (h.isAnon()) {
          if (exclusive)
            f.set(kFrameAnonExclusive);
          else
            f.clear(kFrameAnonExclusive);
        }
      }
      pm.folioRefAdd(pfn, std::int32_t(kPagesPerPmd - 1));
    }
  } else if (pmd.isDevicePrivateEntry()) {
    const Pfn pfn = pmd.swpPfn();
    Frame& h = headFrame(pm, pfn);
    h.setEntireMapcount(h.entireMapcount() - 1);
    for (unsigned i = 0; i < kPagesPerPmd; ++i) ++pm.frame(pfn + i).mapcount;
    pm.folioRefAdd(pfn, std::int32_t(kPagesPerPmd - 1));
  }
  // Migration PMD entries become 512 migration ptes: no references to move.
  ++mm.vmEvents().thpSplitPmd;
  return Errno::Ok;
}

}  // namespace fault_detail

Errno splitHugePmd(Vma& vma, Va address) {
  Mm& mm = mmOf(vma);
  const Va haddr = address.alignDown(kPmdSize);
  Pte* slot = mm.pageTable().pmdPtr(haddr, false);
  if (!slot || !(slot->isHuge() || slot->isSwap())) return Errno::Ok;
  // __split_huge_pmd: its own MMU_NOTIFY_CLEAR round over the whole 2 MiB.
  MmuNotifierRange range;
  mmuNotifierRangeInit(range, MmuNotifierEvent::Clear, 0, &mm, haddr, haddr + kPmdSize);
  mm.invalidateRangeStart(range);
  const Errno err = splitHugePmdLocked(vma, haddr);
  mm.invalidateRangeEnd(range);
  return err;
}

Errno vmaAdjustTransHuge(Vma& vma, Va start, Va end) {
  for (Va a : {start, end}) {
    if (a.isAligned(kPmdSize)) continue;
    const Va haddr = a.alignDown(kPmdSize);
    // Only PMDs that lie inside the vma can be huge (a huge PMD never straddles a vma).
    if (haddr < vma.vmStart || haddr + kPmdSize > vma.vmEnd) continue;
    if (vma.isHugetlb()) continue;  // hugetlb vmas are split only at huge page boundaries (maySplit)
    const Errno err = splitHugePmd(vma, haddr);
    if (err != Errno::Ok) return err;
  }
  return Errno::Ok;
}

namespace fault_detail {

VmFaultResult doHugePmdAnonymousPage(VmFault& vmf, Pte* pmdSlot) {
  Vma& vma = *vmf.vma;
  Mm& mm = mmOf(vma);
  PhysMem& pm = mm.physMem();
  const Va haddr = vmf.address.alignDown(kPmdSize);
  if (!vmf.isWrite() && !(vmf.flags & kFaultFlagUnshare) && mm.params().thp.useZeroPage) {
    // set_huge_zero_folio: the huge zero page, read-only, special. mm_get_huge_zero_folio
    // allocates it on first use (THP_ZERO_PAGE_ALLOC counted per mm at its first use here);
    // without a free 2 MiB block the fault falls back to 4 KiB (THP_FAULT_FALLBACK).
    static_assert(PhysMem::kPmdOrder == 9, "huge zero page is PMD-sized");
    const auto hz = pm.hugeZeroPfn();
    if (!hz) {
      ++mm.vmEvents().thpFaultFallback;
      return VmFaultResult::Fallback;
    }
    if (mm.vmEvents().thpZeroPageAlloc.value() == 0) ++mm.vmEvents().thpZeroPageAlloc;
    *pmdSlot = mkPte(*hz, vma, false).mkHuge().mkSpecial().mkYoung();
    return VmFaultResult::None;
  }
  const auto folio = pm.allocFrame(PhysMem::kPmdOrder);
  if (!folio) {
    ++mm.vmEvents().thpFaultFallback;
    return VmFaultResult::Fallback;
  }
  initAnonFolio(mm, vma, haddr, *folio);
  Frame& h = pm.frame(*folio);
  h.setEntireMapcount(1);  // the allocation's reference becomes the PMD mapping's
  const bool writable = vmf.isWrite() && (vma.vmFlags & VM_WRITE);
  Pte p = mkPte(*folio, vma, writable).mkHuge().mkYoung();
  if (vmf.isWrite()) p = p.mkDirty();
  *pmdSlot = p;
  mm.addMmCounter(MmCounter::AnonPages, std::int64_t(kPagesPerPmd));
  ++mm.vmEvents().thpFaultAlloc;
  return VmFaultResult::None;
}

VmFaultResult doHugePmdWpPage(VmFault& vmf, Pte* pmdSlot) {
  Vma& vma = *vmf.vma;
  Mm& mm = mmOf(vma);
  PhysMem& pm = mm.physMem();
  const Pte pmd = *pmdSlot;
  const Pfn pfn = pmd.pfn();
  const bool unshare = (vmf.flags & kFaultFlagUnshare) != 0;
  const bool normal = isNormalPage(pm, pmd) && !pm.isHugeZeroPfn(pfn);
  if (normal && headFrame(pm, pfn).isAnon()) {
    Frame& h = headFrame(pm, pfn);
    // Reuse an exclusively owned THP, or one mapped once with no other reference.
    if (h.test(kFrameAnonExclusive) || (h.refcount() == 1 && h.entireMapcount() == 1)) {
      h.set(kFrameAnonExclusive);
      if (!unshare) {
        Pte p = pmd.mkDirty().mkYoung();
        if (vma.vmFlags & VM_WRITE) p = p.mkWrite();
        *pmdSlot = p;
        ++mm.vmEvents().cowReuse;
      }
      return VmFaultResult::None;
    }
  }
  // The huge zero page or a shared THP: split the PMD (CLEAR round) and let the pte path COW
  // the one page that was written (current kernels no longer copy 2 MiB at once).
  if (splitHugePmd(vma, vmf.address) != Errno::Ok) return VmFaultResult::Oom;
  return VmFaultResult::Fallback;
}

}  // namespace fault_detail

Errno collapseHugePage(Vma& vma, Va address) {
  Mm& mm = mmOf(vma);
  PhysMem& pm = mm.physMem();
  PageTable& pt = mm.pageTable();
  const Va haddr = address.alignDown(kPmdSize);
  if (haddr < vma.vmStart || haddr + kPmdSize > vma.vmEnd) return Errno::Inval;
  if (!thpVmaAllowable(vma, haddr, mm.params().thp, true)) return Errno::Inval;
  Pte* pmdSlot = pt.pmdPtr(haddr, false);
  if (pmdSlot && pmdSlot->isHuge()) return Errno::Ok;     // already PMD-mapped
  if (pmdSlot && pmdSlot->isSwap()) return Errno::Again;  // PMD migration entry
  // hpage_collapse_scan_pmd: every pte must be none, the zero page, or an exclusively owned
  // anonymous page mapped once and not pinned; no device or migration entries.
  Pte* ptes = pmdSlot && pmdSlot->isTable() ? pt.ptePtr(haddr, false) : nullptr;
  if (ptes) {
    for (unsigned i = 0; i < kPagesPerPmd; ++i) {
      const Pte p = ptes[i];
      if (p.isNone()) continue;
      if (p.isSwap()) return Errno::Again;
      if (pm.isZeroPfn(p.pfn())) continue;
      if (!isNormalPage(pm, p)) return Errno::Inval;
      const Frame& f = pm.frame(p.pfn());
      const Frame& h = headFrame(pm, p.pfn());
      if (!h.isAnon() || f.mapcount != 1) return Errno::Again;
      if (h.order() == 0 && h.refcount() != 1) return Errno::Again;  // extra reference or pin
      if (h.order() != 0 && folioMaybeDmaPinned(mm, p.pfn())) return Errno::Again;
    }
  }
  const auto folio = pm.allocFrame(PhysMem::kPmdOrder);
  if (!folio) return Errno::NoMem;  // SCAN_ALLOC_HUGE_PAGE_FAIL
  ++mm.vmEvents().thpCollapseAlloc;
  bool anyWritable = (vma.vmFlags & VM_WRITE) != 0;
  bool anyDirty = false;
  // collapse_huge_page: MMU_NOTIFY_CLEAR over the 2 MiB while the ptes are cleared, the data
  // copied into the new folio and the PMD installed.
  MmuNotifierRange range;
  mmuNotifierRangeInit(range, MmuNotifierEvent::Clear, 0, &mm, haddr, haddr + kPmdSize);
  mm.invalidateRangeStart(range);
  std::int64_t anonPages = 0;
  if (ptes) {
    for (unsigned i = 0; i < kPagesPerPmd; ++i) {
      const Pte p = ptes[i];
      if (p.isNone()) continue;
      ptes[i] = Pte();
      if (pm.isZeroPfn(p.pfn())) continue;
      pm.copyFrame(*folio + i, p.pfn());
      anyDirty = anyDirty || p.isDirty();
      Frame& f = pm.frame(p.pfn());
      --f.mapcount;
      ++anonPages;
      pm.putPage(p.pfn());
    }
  }
  Errno err = Errno::Ok;
  // The now-empty pte table stays (freed with the others by free_pgtables); the PMD slot must
  // point at a leaf: replace the table entry by the huge entry. PageTable keeps the empty table
  // page accounted until freePgtables, which is what the kernel's pte_free_defer amounts to.
  if (pmdSlot && pmdSlot->isTable()) {
    pt.freePgtables(haddr, haddr + kPmdSize);
    pmdSlot = pt.pmdPtr(haddr, false);
  }
  if (!pmdSlot) pmdSlot = pt.pmdPtr(haddr, true, &err);
  if (!pmdSlot || !pmdSlot->isNone()) {
    mm.invalidateRangeEnd(range);
    pm.putPage(*folio);
    return pmdSlot ? Errno::Again : Errno::NoMem;
  }
  initAnonFolio(mm, vma, haddr, *folio);
  pm.frame(*folio).setEntireMapcount(1);
  Pte p = mkPte(*folio, vma, anyWritable).mkHuge().mkYoung();
  if (anyDirty || anyWritable) p = p.mkDirty();
  *pmdSlot = p;
  mm.addMmCounter(MmCounter::AnonPages, std::int64_t(kPagesPerPmd) - anonPages);
  mm.invalidateRangeEnd(range);
  return Errno::Ok;
}

}  // namespace hmmsim
