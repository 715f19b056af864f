// Hugetlb mappings (mm/hugetlb.c). Contracts in hugetlb.h; reference conventions in memory.cpp's
// header comment.

#include "models/cpu_mmu/hugetlb.h"

#include <optional>

#include "models/cpu_mmu/fault_internal.h"
#include "models/cpu_mmu/gup.h"
#include "models/cpu_mmu/memory.h"
#include "models/cpu_mmu/mm_internal.h"
#include "models/cpu_mmu/mmu_notifier.h"
#include "sim/assert.h"

namespace hmmsim {

using namespace fault_detail;

namespace {

/// huge_pte_offset / huge_pte_alloc: the slot of the huge entry that maps `haddr`.
Pte* hugePteSlot(PageTable& pt, const Vma& vma, Va haddr, bool allocate, Errno* err) {
  Pte* slot =
      hugetlbLevel(vma) == PtLevel::Pud ? pt.pudPtr(haddr, allocate, err) : pt.pmdPtr(haddr, allocate, err);
  // A hugetlb range never holds lower tables: mmap (MAP_FIXED) unmapped and freed them, and
  // nothing maps small pages into a hugetlb vma.
  HMMSIM_ASSERT(!slot || !slot->isTable(), "hugetlb: a page table sits under the huge entry at " << haddr);
  return slot;
}

/// pages_per_huge_page(hstate_vma(vma)).
std::int64_t pagesPerHugePage(const Vma& vma) {
  return std::int64_t(1) << hugetlbOrder(vma);
}

/// alloc_hugetlb_folio + the owner setup of hugetlb_no_page / hugetlb_wp: a folio of the vma's
/// hstate, anonymous and exclusive for a private mapping, cache-owned for a shared one, mapped
/// once by the caller's huge entry. std::nullopt when the buddy allocator has no such block.
std::optional<Pfn> allocHugetlbFolio(Mm& mm, Vma& vma, Va haddr) {
  PhysMem& pm = mm.physMem();
  const auto folio = pm.allocFrame(hugetlbOrder(vma));
  if (!folio) return std::nullopt;
  Frame& h = pm.frame(*folio);
  h.set(kFrameHugeTlb);
  if (vma.isShared()) {
    h.set(kFrameUptodate);
    h.index = vma.linearPageIndex(haddr);
  } else {
    initAnonFolio(mm, vma, haddr, *folio);
  }
  h.setEntireMapcount(1);
  return folio;
}

/// copy_user_large_folio: every subpage's bytes (untouched subpages stay untouched).
void copyHugePage(PhysMem& pm, Pfn dst, Pfn src, std::uint64_t pages) {
  for (std::uint64_t i = 0; i < pages; ++i) pm.copyFrame(dst + i, src + i);
}

}  // namespace

VmFaultResult hugetlbFault(VmFault& vmf) {
  Vma& vma = *vmf.vma;
  Mm& mm = mmOf(vma);
  PhysMem& pm = mm.physMem();
  const std::uint64_t size = vma.kernelPagesize();
  const std::int64_t nr = pagesPerHugePage(vma);
  const Va haddr = vmf.address.alignDown(size);
  Errno err = Errno::Ok;
  Pte* slot = hugePteSlot(mm.pageTable(), vma, haddr, true, &err);
  if (!slot) return VmFaultResult::Oom;
  const Pte entry = *slot;
  const bool shared = vma.isShared();
  if (entry.isNone()) {
    // hugetlb_no_page: a fresh huge page. The pool reservation is the mm's (mmap); an empty
    // buddy allocator here is the kernel's "no huge page available" -> VM_FAULT_OOM.
    const auto folio = allocHugetlbFolio(mm, vma, haddr);
    if (!folio) return VmFaultResult::Oom;
    // make_huge_pte(vma, folio, writable = VM_SHARED): a private read maps read-only; a
    // private write goes through hugetlb_wp, which reuses the exclusive page: writable.
    const bool writable = (vma.vmFlags & VM_WRITE) && (shared || vmf.isWrite());
    Pte p = mkPte(*folio, vma, writable).mkHuge().mkYoung();
    if (vmf.isWrite()) p = p.mkDirty();
    *slot = p;
    MmInternals::hugetlbCountAdd(mm, nr);
    ++mm.vmEvents().hugetlbFault;
    return VmFaultResult::None;
  }
  if (entry.isMigrationEntry()) {
    ++mm.vmEvents().migrationEntryWait;
    if (vmf.flags & kFaultFlagRetryNowait) return VmFaultResult::Retry;
    migrationEntryWait(mm, vmf.address);
    return VmFaultResult::None;
  }
  if (!entry.isPresent()) return VmFaultResult::Sigbus;
  const bool wantWrite = vmf.isWrite() || (vmf.flags & kFaultFlagUnshare);
  if (!wantWrite || entry.isWrite()) {
    Pte p = entry.mkYoung();
    if (vmf.isWrite()) p = p.mkDirty();
    *slot = p;
    return VmFaultResult::None;
  }
  if (shared) {
    *slot = entry.mkWrite().mkDirty().mkYoung();
    return VmFaultResult::None;
  }
  // hugetlb_wp: reuse an exclusive page, else copy the whole huge page (never split).
  const Pfn old = entry.pfn();
  Frame& oh = headFrame(pm, old);
  if (oh.test(kFrameAnonExclusive) || (oh.refcount() == 1 && oh.entireMapcount() == 1)) {
    oh.set(kFrameAnonExclusive);
    if (vmf.isWrite()) {
      Pte p = entry.mkDirty().mkYoung();
      if (vma.vmFlags & VM_WRITE) p = p.mkWrite();
      *slot = p;
      ++mm.vmEvents().cowReuse;
    }
    return VmFaultResult::None;
  }
  const auto folio = allocHugetlbFolio(mm, vma, haddr);
  if (!folio) return VmFaultResult::Oom;
  copyHugePage(pm, *folio, old, std::uint64_t(nr));
  const bool writable = vmf.isWrite() && (vma.vmFlags & VM_WRITE);
  Pte p = mkPte(*folio, vma, writable).mkHuge().mkYoung();
  if (vmf.isWrite()) p = p.mkDirty();
  MmuNotifierRange range;
  mmuNotifierRangeInit(range, MmuNotifierEvent::Clear, 0, &mm, haddr, haddr + size);
  mm.invalidateRangeStart(range);
  *slot = p;
  oh.setEntireMapcount(oh.entireMapcount() - 1);
  mm.invalidateRangeEnd(range);
  pm.putPage(old);
  ++mm.vmEvents().cowFault;
  return VmFaultResult::None;
}

void unmapHugepageRange(Vma& vma, Va start, Va end) {
  const std::uint64_t size = vma.kernelPagesize();
  HMMSIM_ASSERT(vma.isHugetlb() && start.isAligned(size) && end.isAligned(size) && start < end &&
                    start >= vma.vmStart && end <= vma.vmEnd,
                "unmapHugepageRange [" << start << ", " << end << ") not whole huge pages of the vma");
  Mm& mm = mmOf(vma);
  PhysMem& pm = mm.physMem();
  const PtLevel level = hugetlbLevel(vma);
  const std::int64_t nr = pagesPerHugePage(vma);
  mm.pageTable().walkRange(start, end, [&](const PtRangeEntry& e) {
    if (e.level == PtLevel::None) return WalkAction::Continue;
    HMMSIM_ASSERT(e.level == level, "hugetlb vma with a leaf of another size at " << e.start);
    const Pte pte = *e.slot;
    *e.slot = Pte();
    if (!pte.isPresent()) return WalkAction::Continue;  // migration/hwpoison: just cleared
    Frame& h = headFrame(pm, pte.pfn());
    HMMSIM_ASSERT(h.entireMapcount() > 0, "zap of hugetlb " << pte.pfn() << " with entire mapcount 0");
    h.setEntireMapcount(h.entireMapcount() - 1);
    if (pte.isDirty() && !h.isAnon()) h.set(kFrameDirty);
    MmInternals::hugetlbCountAdd(mm, -nr);
    pm.putPage(pte.pfn());
    return WalkAction::Continue;
  });
}

Errno copyHugetlbPageRange(Vma& dst, Vma& src) {
  HMMSIM_ASSERT(src.isHugetlb() && dst.vmStart == src.vmStart && dst.vmEnd == src.vmEnd &&
                    dst.vmHugetlbShift == src.vmHugetlbShift,
                "copyHugetlbPageRange between different vmas");
  Mm& smm = mmOf(src);
  Mm& dmm = mmOf(dst);
  PhysMem& pm = smm.physMem();
  const bool cow = src.isCowMapping();
  const std::int64_t nr = pagesPerHugePage(src);
  Errno result = Errno::Ok;
  smm.pageTable().walkRange(src.vmStart, src.vmEnd, [&](const PtRangeEntry& e) {
    if (e.level == PtLevel::None) return WalkAction::Continue;
    const Va addr = e.leafStart();
    Errno err = Errno::Ok;
    Pte* dslot = hugePteSlot(dmm.pageTable(), dst, addr, true, &err);
    if (!dslot) {
      result = Errno::NoMem;
      return WalkAction::Stop;
    }
    const Pte pte = *e.slot;
    if (!pte.isPresent()) {
      // Migration / hwpoison entries are copied; COW makes a writable migration entry read-only
      // in both.
      Pte copy = pte;
      if (cow && pte.isWritableMigrationEntry()) *e.slot = copy = Pte::mkMigration(pte.swpPfn(), false);
      *dslot = copy;
      return WalkAction::Continue;
    }
    Frame& h = headFrame(pm, pte.pfn());
    if (cow && h.isAnon() && folioMaybeDmaPinned(smm, pte.pfn())) {
      // hugetlb_try_dup_anon_rmap failed (the page may be pinned): the child gets its own copy
      // now (copy_user_large_folio + hugetlb_install_folio). make_huge_pte(writable = 1) would
      // map it writable even in a private vma without VM_WRITE; hmmsim honours VM_WRITE there.
      const auto folio = allocHugetlbFolio(dmm, dst, addr);
      if (!folio) {
        result = Errno::NoMem;
        return WalkAction::Stop;
      }
      copyHugePage(pm, *folio, pte.pfn(), std::uint64_t(nr));
      *dslot = mkPte(*folio, dst, (dst.vmFlags & VM_WRITE) != 0).mkHuge().mkDirty().mkYoung();
      MmInternals::hugetlbCountAdd(dmm, nr);
      return WalkAction::Continue;
    }
    pm.getPage(pte.pfn());
    h.setEntireMapcount(h.entireMapcount() + 1);
    if (h.isAnon()) h.clear(kFrameAnonExclusive);  // hugetlb_try_dup_anon_rmap
    Pte copy = pte;
    if (cow && pte.isWrite()) {
      *e.slot = pte.wrprotect();  // huge_ptep_set_wrprotect
      copy = copy.wrprotect();
    }
    *dslot = copy;
    MmInternals::hugetlbCountAdd(dmm, nr);
    return WalkAction::Continue;
  });
  return result;
}

std::uint64_t hugetlbChangeProtection(Vma& vma, Va start, Va end, VmFlags newFlags) {
  const std::uint64_t size = vma.kernelPagesize();
  HMMSIM_ASSERT(vma.isHugetlb() && start.isAligned(size) && end.isAligned(size) && start <= end &&
                    start >= vma.vmStart && end <= vma.vmEnd,
                "hugetlbChangeProtection [" << start << ", " << end << ") not whole huge pages of the vma");
  if (start == end) return 0;
  Mm& mm = mmOf(vma);
  PhysMem& pm = mm.physMem();
  std::uint64_t pages = 0;
  mm.pageTable().walkRange(start, end, [&](const PtRangeEntry& e) {
    if (e.level == PtLevel::None) return WalkAction::Continue;
    const Pte pte = *e.slot;
    const Pte np = pte.isPresent() ? modifyPresent(pm, pte, newFlags, true) : modifySwap(pte, newFlags);
    if (np != pte) {
      *e.slot = np;
      pages += std::uint64_t(pagesPerHugePage(vma));
    }
    return WalkAction::Continue;
  });
  return pages;
}

}  // namespace hmmsim
