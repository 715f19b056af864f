// get_user_pages / pin_user_pages (mm/gup.c). Contracts in gup.h.

#include "models/cpu_mmu/gup.h"

#include <vector>

#include "models/cpu_mmu/dev_pagemap.h"
#include "models/cpu_mmu/fault_internal.h"
#include "models/cpu_mmu/huge_memory.h"
#include "models/cpu_mmu/memory.h"
#include "models/cpu_mmu/mmu_notifier.h"
#include "models/cpu_mmu/rmap.h"
#include "sim/assert.h"

namespace hmmsim {

using namespace fault_detail;

namespace {

constexpr int kMaxGupRetries = 64;

/// check_vma_flags().
Errno checkVmaFlags(const Vma& vma, unsigned gupFlags) {
  const VmFlags f = vma.vmFlags;
  const bool write = gupFlags & kFollWrite;
  const bool force = gupFlags & kFollForce;
  if ((gupFlags & kFollAnon) && !vma.isAnonymous()) return Errno::Fault;
  if (f & (VM_IO | VM_PFNMAP)) return Errno::Fault;
  if (write) {
    if (!(f & VM_WRITE)) {
      if (!force) return Errno::Fault;
      // FOLL_FORCE may write only through COW of a private mapping (ptrace's rule).
      if (!(f & VM_MAYWRITE)) return Errno::Fault;
      if (f & (VM_SHARED | VM_MAYSHARE)) return Errno::Fault;
    }
  } else if (!(f & VM_READ)) {
    if (!force) return Errno::Fault;
    if (!(f & VM_MAYREAD)) return Errno::Fault;
  }
  return Errno::Ok;
}

/// gup_must_unshare(): a read-only FOLL_PIN of an anonymous page this mm does not own
/// exclusively must first unshare it, so the pin stays coherent with what the mm sees. For a
/// page-cache page, only FOLL_LONGTERM pins in a COW mapping need it.
bool gupMustUnshare(PhysMem& pm, const Vma& vma, unsigned gupFlags, Pfn pfn, bool huge) {
  if ((gupFlags & (kFollWrite | kFollPin)) != kFollPin) return false;
  const Frame& h = headFrame(pm, pfn);
  if (!h.isAnon()) {
    if (!(gupFlags & kFollLongterm)) return false;
    return vma.isCowMapping();
  }
  return huge ? !h.test(kFrameAnonExclusive) : !isAnonExclusive(pm, pfn);
}

/// can_follow_write_pte()/can_follow_write_pmd(): FOLL_FORCE may use a read-only entry of a
/// private !VM_WRITE mapping once COW made the page this mm's exclusive anonymous page.
bool canFollowWrite(PhysMem& pm, const Vma& vma, unsigned gupFlags, Pte entry, bool huge) {
  if (entry.isWrite()) return true;
  if (!(gupFlags & kFollForce)) return false;
  if (vma.vmFlags & (VM_SHARED | VM_MAYSHARE)) return false;
  if (!(vma.vmFlags & VM_MAYWRITE) || (vma.vmFlags & VM_WRITE)) return false;
  if (!isNormalPage(pm, entry)) return false;
  const Frame& h = headFrame(pm, entry.pfn());
  if (!h.isAnon()) return false;
  return huge ? h.test(kFrameAnonExclusive) : isAnonExclusive(pm, entry.pfn());
}

enum class Follow {
  Page,   ///< `pfn` is the page to return
  Fault,  ///< fault with `faultFlags` and follow again
  Error,  ///< stop with `err`
};

struct FollowResult {
  Follow kind = Follow::Fault;
  Pfn pfn;
  unsigned faultFlags = 0;
  Errno err = Errno::Ok;
};

/// follow_page_mask(): look at the entry for `addr` without changing anything (except splitting
/// the PMD for FOLL_SPLIT_PMD).
FollowResult followPage(Vma& vma, Va addr, unsigned gupFlags) {
  Mm& mm = mmOf(vma);
  PhysMem& pm = mm.physMem();
  const bool write = gupFlags & kFollWrite;
  FollowResult r;
  r.faultFlags = write ? kFaultFlagWrite : 0u;
  for (;;) {
    const PtWalk w = mm.pageTable().lookup(addr);
    if (w.level == PtLevel::None || !w.pte.isHwPresent()) return r;  // none/swap/prot-none
    const bool huge = w.level != PtLevel::Pte;
    if (huge && (gupFlags & kFollSplitPmd) && !vma.isHugetlb() && w.level == PtLevel::Pmd) {
      if (splitHugePmd(vma, addr) != Errno::Ok) return {Follow::Error, Pfn(), 0, Errno::NoMem};
      continue;
    }
    const Pte e = w.pte;
    const Pfn pfn = e.pfn() + ((addr.value() & (ptLevelSize(w.level) - 1)) >> kPageShift);
    if (write && !canFollowWrite(pm, vma, gupFlags, e, huge)) return r;
    if (!isNormalPage(pm, e) || pm.isHugeZeroPfn(pfn)) {
      const bool zero = pm.isZeroPfn(pfn) || pm.isHugeZeroPfn(pfn);
      // follow_page_pte: FOLL_DUMP skips the zero page (and special entries) with -EFAULT; the
      // zero page is otherwise returned; any other special pfn is -EFAULT (follow_pfn_pte).
      if (!zero || (gupFlags & kFollDump)) return {Follow::Error, Pfn(), 0, Errno::Fault};
      if ((gupFlags & kFollLongterm) && (gupFlags & kFollPin) && vma.isCowMapping()) {
        // gup_must_unshare for a non-anonymous page under FOLL_LONGTERM in a COW mapping: a
        // long-term read pin must not stay on the shared zero page.
        r.faultFlags = kFaultFlagUnshare;
        return r;
      }
      return {Follow::Page, pfn, 0, Errno::Ok};
    }
    const Frame& h = headFrame(pm, pfn);
    if (isPciP2pdma(h.pgmap) && !(gupFlags & kFollPciP2pdma)) {
      // The kernel returns -EREMOTEIO; sim/errno.h has no EREMOTEIO: hmmsim returns EFAULT.
      return {Follow::Error, Pfn(), 0, Errno::Fault};
    }
    if (gupMustUnshare(pm, vma, gupFlags, pfn, huge)) {
      r.faultFlags = kFaultFlagUnshare;
      return r;
    }
    return {Follow::Page, pfn, 0, Errno::Ok};
  }
}

/// try_grab_folio(): the reference or pin GUP hands out.
void grabPage(Mm& mm, Pfn pfn, unsigned gupFlags) {
  PhysMem& pm = mm.physMem();
  if (gupFlags & kFollPin) {
    // pin_user_pages never pins the zero page (unpin ignores it too).
    if (pm.isZeroPfn(pfn) || pm.isHugeZeroPfn(pfn)) return;
    pm.folioRefAdd(pfn, kGupPinCountingBias);
    ++mm.vmEvents().gupPins;
  } else if (gupFlags & kFollGet) {
    pm.getPage(pfn);
    ++mm.vmEvents().gupPages;
  }
}

void ungrabPage(Mm& mm, Pfn pfn, unsigned gupFlags) {
  if (gupFlags & kFollPin) {
    unpinUserPage(mm, pfn);
  } else if (gupFlags & kFollGet) {
    mm.physMem().putPage(pfn);
  }
}

/// __get_user_pages(): the slow walk with faults. Returns pages taken or the first error.
GupResult getUserPagesSlow(Mm& mm, Va start, std::size_t nrPages, unsigned gupFlags, Pfn* pages,
                           std::size_t first = 0) {
  GupResult res;
  res.nrPages = first;
  Vma* vma = nullptr;
  for (std::size_t i = first; i < nrPages; ++i) {
    const Va addr = start + i * kPageSize;
    if (!vma || !vma->contains(addr)) {
      vma = mm.vmaLookup(addr);
      // (vma_is_fsdax refusal of FOLL_LONGTERM: hmmsim has no DAX files, file.h; fs-dax
      // pages met through other vmas are refused by longtermPinnable below.)
      const Errno err = vma ? checkVmaFlags(*vma, gupFlags) : Errno::Fault;
      if (err != Errno::Ok) {
        if (res.nrPages == 0) res.err = err;
        return res;
      }
    }
    int tries = 0;
    for (;;) {
      HMMSIM_ASSERT(++tries < kMaxGupRetries, "GUP at " << addr << " livelocks");
      const FollowResult f = followPage(*vma, addr, gupFlags);
      if (f.kind == Follow::Page) {
        grabPage(mm, f.pfn, gupFlags);
        if (pages) pages[i] = f.pfn;
        res.nrPages = i + 1;
        break;
      }
      if (f.kind == Follow::Error) {
        if (res.nrPages == 0) res.err = f.err;
        return res;
      }
      if (gupFlags & kFollNofault) {
        if (res.nrPages == 0) res.err = Errno::Fault;
        return res;
      }
      // faultin_page(): FOLL_FORCE has passed check_vma_flags, so the fault goes in without the
      // arch access check (a forced write COWs a read-only private mapping).
      unsigned faultFlags = f.faultFlags | kFaultFlagAllowRetry | kFaultFlagKillable;
      if (gupFlags & kFollRemote) faultFlags |= kFaultFlagRemote;
      if (gupFlags & kFollNowait) faultFlags |= kFaultFlagRetryNowait;
      const VmFaultResult r = handleMmFaultUnchecked(*vma, addr, faultFlags);
      if (isFaultError(r)) {
        if (res.nrPages == 0) res.err = vmFaultToErrno(r);
        return res;
      }
      if (hasAny(r, VmFaultResult::Retry) && (gupFlags & kFollNowait)) {
        if (res.nrPages == 0) res.err = Errno::Again;
        return res;
      }
    }
  }
  return res;
}

/// folio_is_longterm_pinnable(): device-coherent memory (and fs-dax, and ZONE_MOVABLE/CMA, which
/// hmmsim does not have) may not be pinned for an unbounded time.
bool longtermPinnable(PhysMem& pm, Pfn pfn) {
  if (pm.isZeroPfn(pfn) || pm.isHugeZeroPfn(pfn)) return true;
  const Frame& h = headFrame(pm, pfn);
  return !(isDeviceCoherent(h.pgmap) || isFsDax(h.pgmap));
}

/// migrate_device_coherent_folio(): copy a device-coherent order-0 page to a new system page
/// and move every mapping of it over (the rmap walk, across the fork family for an anonymous
/// page), each inside an MMU_NOTIFY_CLEAR round of its mm (try_to_migrate_one's event). The old
/// page loses the mappings' references, so its driver gets folio_free. Returns Ok; Busy if the
/// page has references beyond its mappings (a pin, a driver's hold: migrate_folio refuses) or
/// a mapping the walk cannot see (a page-cache page: no file rmap here); NoMem without RAM.
Errno migrateDeviceCoherentForPin(Mm& mm, Pfn pfn) {
  PhysMem& pm = mm.physMem();
  Frame& f = pm.frame(pfn);
  if (headFrame(pm, pfn).order() != 0 || f.refcount() != f.mapcount) return Errno::Busy;
  std::vector<RmapMapping> maps;
  rmapWalkAnon(pm, pfn, [&](const RmapMapping& m) {
    if (m.slot->isPresent() && m.level == PtLevel::Pte) maps.push_back(m);
  });
  if (maps.size() != std::size_t(f.mapcount)) return Errno::Busy;
  const auto npfn = pm.allocFrame(0);
  if (!npfn) return Errno::NoMem;
  pm.copyFrame(*npfn, pfn);
  Frame& nf = pm.frame(*npfn);
  nf.mapping = f.mapping;
  nf.index = f.index;
  for (FrameFlag fl :
       {kFrameAnon, kFrameAnonExclusive, kFrameSwapBacked, kFrameUptodate, kFrameDirty, kFramePageCache})
    if (f.test(fl)) nf.set(fl);
  // allocFrame's reference becomes the first mapping's; one more for each further mapping.
  if (maps.size() > 1) pm.folioRefAdd(*npfn, std::int32_t(maps.size() - 1));
  for (const RmapMapping& m : maps) {
    MmuNotifierRange range;
    mmuNotifierRangeInit(range, MmuNotifierEvent::Clear, 0, m.mm, m.va, m.va + kPageSize);
    m.mm->invalidateRangeStart(range);
    *m.slot = m.slot->withPfn(*npfn);
    ++nf.mapcount;
    --f.mapcount;
    m.mm->invalidateRangeEnd(range);
    pm.putPage(pfn);  // that mapping's reference; the last one -> the driver's folioFree
  }
  ++mm.vmEvents().gupLongtermMigrate;
  return Errno::Ok;
}

/// __gup_longterm_locked(): GUP, then check_and_migrate_movable_pages: if any pinned page may not
/// be pinned long-term, unpin everything, migrate those pages and start over.
GupResult gupLongterm(Mm& mm, Va start, std::size_t nrPages, unsigned gupFlags, Pfn* pages) {
  PhysMem& pm = mm.physMem();
  for (int round = 0; round < kMaxGupRetries; ++round) {
    GupResult r = getUserPagesSlow(mm, start, nrPages, gupFlags, pages);
    if (r.nrPages == 0) return r;
    std::vector<std::size_t> bad;
    for (std::size_t i = 0; i < r.nrPages; ++i)
      if (!longtermPinnable(pm, pages[i])) bad.push_back(i);
    if (bad.empty()) return r;
    for (std::size_t i = 0; i < r.nrPages; ++i) ungrabPage(mm, pages[i], gupFlags);
    for (std::size_t i : bad) {
      if (isFsDax(headFrame(pm, pages[i]).pgmap)) return {0, Errno::OpNotSupp};
      const Errno e = migrateDeviceCoherentForPin(mm, pages[i]);
      if (e != Errno::Ok) return {0, e};
    }
  }
  HMMSIM_ASSERT(false, "FOLL_LONGTERM GUP did not converge");
  return {0, Errno::Busy};
}

GupResult gupCommon(Mm& mm, Va start, std::size_t nrPages, unsigned gupFlags, Pfn* pages, bool fast) {
  if (!start.isAligned(kPageSize)) return {0, Errno::Inval};
  if ((gupFlags & kFollPin) && (gupFlags & kFollGet)) return {0, Errno::Inval};
  if ((gupFlags & kFollLongterm) && !pages) return {0, Errno::Inval};
  if (nrPages == 0) return {0, Errno::Ok};
  if (start + nrPages * kPageSize < start) return {0, Errno::Fault};
  MmapMaybeReadLock lock(mm);
  if (gupFlags & kFollLongterm) return gupLongterm(mm, start, nrPages, gupFlags, pages);
  std::size_t first = 0;
  if (fast) {
    // gup_fast: lockless walk of entries that need no fault; no vma checks beyond what the
    // entries say (the kernel checks pte_access_permitted and skips special/devmap/p2pdma).
    PhysMem& pm = mm.physMem();
    for (; first < nrPages; ++first) {
      const Va addr = start + first * kPageSize;
      const PtWalk w = mm.pageTable().lookup(addr);
      if (w.level == PtLevel::None || !w.pte.isHwPresent() || w.pte.isSpecial()) break;
      if ((gupFlags & kFollWrite) && !w.pte.isWrite()) break;
      const Pfn pfn = w.pte.pfn() + ((addr.value() & (ptLevelSize(w.level) - 1)) >> kPageShift);
      if (!pm.pfnValid(pfn)) break;
      const Frame& h = headFrame(pm, pfn);
      if (h.pgmap && !(isPciP2pdma(h.pgmap) && (gupFlags & kFollPciP2pdma)) && !isDeviceCoherent(h.pgmap))
        break;
      Vma* vma = mm.vmaLookup(addr);
      if (!vma || gupMustUnshare(pm, *vma, gupFlags, pfn, w.level != PtLevel::Pte)) break;
      grabPage(mm, pfn, gupFlags);
      if (pages) pages[first] = pfn;
    }
    if (first == nrPages) return {nrPages, Errno::Ok};
  }
  GupResult r = getUserPagesSlow(mm, start, nrPages, gupFlags, pages, first);
  if (r.nrPages == 0 && first > 0) r.nrPages = first;
  if (r.nrPages > 0) r.err = Errno::Ok;
  return r;
}

}  // namespace

GupResult getUserPages(Mm& mm, Va start, std::size_t nrPages, unsigned gupFlags, Pfn* pages) {
  if (gupFlags & kFollPin) return {0, Errno::Inval};
  if (pages) gupFlags |= kFollGet;
  return gupCommon(mm, start, nrPages, gupFlags, pages, false);
}

GupResult pinUserPages(Mm& mm, Va start, std::size_t nrPages, unsigned gupFlags, Pfn* pages) {
  if ((gupFlags & kFollGet) || !pages) return {0, Errno::Inval};
  return gupCommon(mm, start, nrPages, gupFlags | kFollPin, pages, false);
}

GupResult getUserPagesFast(Mm& mm, Va start, std::size_t nrPages, unsigned gupFlags, Pfn* pages) {
  if ((gupFlags & kFollPin) || !pages) return {0, Errno::Inval};
  return gupCommon(mm, start, nrPages, gupFlags | kFollGet, pages, true);
}

GupResult pinUserPagesFast(Mm& mm, Va start, std::size_t nrPages, unsigned gupFlags, Pfn* pages) {
  if ((gupFlags & kFollGet) || !pages) return {0, Errno::Inval};
  return gupCommon(mm, start, nrPages, gupFlags | kFollPin, pages, true);
}

void putUserPage(Mm& mm, Pfn pfn) {
  mm.physMem().putPage(pfn);
}

void unpinUserPage(Mm& mm, Pfn pfn) {
  PhysMem& pm = mm.physMem();
  if (pm.isZeroPfn(pfn) || pm.isHugeZeroPfn(pfn)) return;
  HMMSIM_ASSERT(headFrame(pm, pfn).refcount() >= kGupPinCountingBias,
                "unpin of pfn " << pfn << " that is not pinned");
  pm.folioPutRefs(pfn, kGupPinCountingBias);
  ++mm.vmEvents().gupUnpins;
}

void unpinUserPages(Mm& mm, const Pfn* pages, std::size_t nrPages) {
  for (std::size_t i = 0; i < nrPages; ++i) unpinUserPage(mm, pages[i]);
}

void unpinUserPagesDirtyLock(Mm& mm, const Pfn* pages, std::size_t nrPages, bool makeDirty) {
  PhysMem& pm = mm.physMem();
  for (std::size_t i = 0; i < nrPages; ++i) {
    if (makeDirty && !pm.isZeroPfn(pages[i]) && !pm.isHugeZeroPfn(pages[i]))
      headFrame(pm, pages[i]).set(kFrameDirty);
    unpinUserPage(mm, pages[i]);
  }
}

bool folioMaybeDmaPinned(Mm& mm, Pfn pfn) {
  PhysMem& pm = mm.physMem();
  if (pm.isZeroPfn(pfn) || pm.isHugeZeroPfn(pfn)) return false;
  return headFrame(pm, pfn).refcount() >= kGupPinCountingBias;
}

GupResult populateVmaPageRange(Vma& vma, Va start, Va end) {
  Mm& mm = mmOf(vma);
  HMMSIM_ASSERT(start >= vma.vmStart && end <= vma.vmEnd && start <= end,
                "populateVmaPageRange outside the vma");
  unsigned gupFlags = 0;
  // Private writable mappings are populated with write faults so COW is broken in advance;
  // accessible vmas get FOLL_FORCE so a PROT_READ-less but accessible mapping still populates.
  if ((vma.vmFlags & (VM_WRITE | VM_SHARED)) == VM_WRITE) gupFlags |= kFollWrite;
  if (vma.vmFlags & (VM_READ | VM_WRITE | VM_EXEC)) gupFlags |= kFollForce;
  const std::size_t n = (end - start) >> kPageShift;
  MmapMaybeReadLock lock(mm);
  return getUserPagesSlow(mm, start, n, gupFlags, nullptr);
}

Errno faultinPageRange(Mm& mm, Va start, Va end, bool write) {
  MmapMaybeReadLock lock(mm);
  for (Va a = start; a < end;) {
    Vma* vma = mm.vmaLookup(a);
    if (!vma) return Errno::Fault;
    if (vma->vmFlags & (VM_IO | VM_PFNMAP)) return Errno::Inval;
    const Va e = vma->vmEnd < end ? vma->vmEnd : end;
    const GupResult r = getUserPagesSlow(mm, a, (e - a) >> kPageShift, write ? kFollWrite : 0u, nullptr);
    if (r.nrPages != ((e - a) >> kPageShift)) return r.err == Errno::Ok ? Errno::Fault : r.err;
    a = e;
  }
  return Errno::Ok;
}

Errno fixupUserFault(Mm& mm, Va address, unsigned faultFlags) {
  MmapMaybeReadLock lock(mm);
  Vma* vma = mm.vmaLookup(address);
  if (!vma) return Errno::Fault;
  const Errno err = checkVmaFlags(*vma, (faultFlags & kFaultFlagWrite) ? kFollWrite : 0u);
  if (err != Errno::Ok) return err;
  VmFaultResult r = VmFaultResult::Retry;
  for (int i = 0; i < kMaxGupRetries && hasAny(r, VmFaultResult::Retry); ++i)
    r = handleMmFaultUnchecked(*vma, address, faultFlags | kFaultFlagAllowRetry);
  return vmFaultToErrno(r);
}

}  // namespace hmmsim
