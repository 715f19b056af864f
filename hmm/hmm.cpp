// hmm_range_fault (mm/hmm.c). See hmm.h for the contract; comments here name the kernel
// function each step reproduces.

#include "hmm/hmm.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "hmm/p2p.h"
#include "models/cpu_mmu/dev_pagemap.h"
#include "models/cpu_mmu/memory.h"
#include "models/cpu_mmu/mm.h"
#include "models/cpu_mmu/mmu_notifier.h"
#include "models/cpu_mmu/page_table.h"
#include "models/cpu_mmu/phys_mem.h"
#include "models/cpu_mmu/vm_operations.h"
#include "models/cpu_mmu/vma.h"
#include "sim/assert.h"
#include "sim/wait_queue.h"

namespace hmmsim {

const char* hmmStatusName(HmmStatus s) {
  switch (s) {
    case HmmStatus::Ok:
      return "ok";
    case HmmStatus::Busy:
      return "busy";
    case HmmStatus::Fault:
      return "fault";
    case HmmStatus::Perm:
      return "perm";
    case HmmStatus::NoMem:
      return "nomem";
    case HmmStatus::Inval:
      return "inval";
  }
  return "?";
}

Errno hmmStatusToErrno(HmmStatus s) {
  switch (s) {
    case HmmStatus::Ok:
      return Errno::Ok;
    case HmmStatus::Busy:
      return Errno::Busy;
    case HmmStatus::Fault:
      return Errno::Fault;
    case HmmStatus::Perm:
      return Errno::Perm;
    case HmmStatus::NoMem:
      return Errno::NoMem;
    case HmmStatus::Inval:
      return Errno::Inval;
  }
  return Errno::Inval;
}

HmmStats::HmmStats(const std::string& name)
    : group(name),
      calls(group.counter("range_fault_calls", "calls", "hmm_range_fault calls")),
      pagesWalked(group.counter("pages_walked", "pages", "hmm_pfns entries written by walks")),
      faults(group.counter("faults", "faults", "handle_mm_fault calls made by hmm_range_fault")),
      busyRestarts(group.counter("busy_restarts", "walks",
                                 "internal walk restarts after a fault or a migration wait")),
      busyReturns(
          group.counter("busy_returns", "calls", "-EBUSY returned because the range was invalidated")),
      migrationWaits(group.counter("migration_waits", "waits", "waits on migration entries")),
      errors(group.counter("errors", "calls", "-EFAULT/-EPERM/-EINVAL returns")),
      p2pMaps(group.counter("p2p_maps", "calls", "special-vma p2p_map calls that succeeded")),
      p2pRefused(group.counter("p2p_refused", "calls", "special-vma p2p_map calls the exporter refused")),
      p2pUndone(group.counter("p2p_undone", "calls",
                              "p2p_unmap calls undoing this call's p2p_map after a failed walk")) {}

namespace {

// hmm_pte_need_fault's result bits.
constexpr unsigned kNeedFault = 1u << 0;
constexpr unsigned kNeedWriteFault = 1u << 1;

/// Walk-internal outcome: Ok/Fault/Perm as HmmStatus; Restart = the kernel's internal -EBUSY
/// (walk again from `last`).
enum class WalkRc { Ok, Restart, Fault, Perm };

class HmmWalk {
 public:
  HmmWalk(HmmRange& r, Mm& mm, HmmStats* stats)
      : range_(r), mm_(mm), pm_(mm.physMem()), stats_(stats), last_(r.start) {
    const unsigned long req = r.defaultFlags | r.pfnFlagsMask;
    anyFault_ = (req & HMM_PFN_REQ_FAULT) != 0;
  }

  Va last() const { return last_; }

  /// walk_page_range(mm, last, end): vma by vma, holes without a vma in between.
  WalkRc walk(Va from, Va end) {
    Va addr = from;
    while (addr < end) {
      Vma* vma = mm_.findVma(addr);
      if (!vma || vma->vmStart >= end) return holeNoVma(addr, end);
      if (vma->vmStart > addr) {
        const WalkRc rc = holeNoVma(addr, vma->vmStart);
        if (rc != WalkRc::Ok) return rc;
        addr = vma->vmStart;
      }
      const Va next = std::min(end, vma->vmEnd);
      const WalkRc rc = walkVma(*vma, addr, next);
      if (rc != WalkRc::Ok) return rc;
      addr = next;
    }
    return WalkRc::Ok;
  }

 private:
  unsigned long* pfns(Va addr) { return range_.hmmPfns + ((addr - range_.start) >> kPageShift); }

  void fill(Va start, Va end, unsigned long value) {
    unsigned long* p = pfns(start);
    const std::uint64_t n = (end - start) >> kPageShift;
    for (std::uint64_t i = 0; i < n; ++i) p[i] = (p[i] & HMM_PFN_INOUT_FLAGS) | value;
    if (stats_) stats_->pagesWalked += n;
  }

  /// hmm_pte_need_fault().
  unsigned pteNeedFault(unsigned long pfnReq, unsigned long cpuFlags) const {
    pfnReq &= range_.pfnFlagsMask;
    pfnReq |= range_.defaultFlags;
    if (!(pfnReq & HMM_PFN_REQ_FAULT)) return 0;
    if ((pfnReq & HMM_PFN_REQ_WRITE) && !(cpuFlags & HMM_PFN_WRITE)) return kNeedFault | kNeedWriteFault;
    if (!(cpuFlags & HMM_PFN_VALID)) return kNeedFault;
    return 0;
  }

  /// hmm_range_need_fault(): OR of pteNeedFault over [start, end).
  unsigned rangeNeedFault(Va start, Va end, unsigned long cpuFlags) const {
    if (!anyFault_) return 0;
    const unsigned long* p = range_.hmmPfns + ((start - range_.start) >> kPageShift);
    const std::uint64_t n = (end - start) >> kPageShift;
    unsigned need = 0;
    for (std::uint64_t i = 0; i < n; ++i) {
      need |= pteNeedFault(p[i], cpuFlags);
      if (need == (kNeedFault | kNeedWriteFault)) break;
    }
    return need;
  }

  /// hmm_vma_fault(): fault every page of [addr, end) and restart the walk at addr.
  WalkRc vmaFault(Vma& vma, Va addr, Va end, unsigned required) {
    HMMSIM_ASSERT(required != 0, "hmm_vma_fault without a required fault");
    last_ = addr;
    unsigned flags = kFaultFlagRemote;
    if (required & kNeedWriteFault) {
      if (!(vma.vmFlags & VM_WRITE)) return WalkRc::Perm;
      flags |= kFaultFlagWrite;
    }
    for (Va a = addr; a < end; a += kPageSize) {
      if (stats_) ++stats_->faults;
      if (isFaultError(handleMmFault(vma, a, flags))) return WalkRc::Fault;
    }
    return WalkRc::Restart;
  }

  /// hmm_vma_walk_hole() with walk->vma == NULL.
  WalkRc holeNoVma(Va start, Va end) {
    if (rangeNeedFault(start, end, 0)) return WalkRc::Fault;
    fill(start, end, HMM_PFN_ERROR);
    return WalkRc::Ok;
  }

  /// hmm_vma_walk_hole() inside a vma.
  WalkRc hole(Vma& vma, Va start, Va end) {
    if (const unsigned need = rangeNeedFault(start, end, 0)) return vmaFault(vma, start, end, need);
    fill(start, end, 0);
    return WalkRc::Ok;
  }

  /// migration_entry_wait()/pmd_migration_entry_wait(): sleep until the entry at `addr` is no longer
  /// the migration entry `entry` (the migration that owns it ended), then restart at addr.
  WalkRc migrationWait(Va addr, Pte entry) {
    last_ = addr;
    if (stats_) ++stats_->migrationWaits;
    PageTable& pt = mm_.pageTable();
    waitEvent(
        mm_.blocker(), mm_.migrationWaitQueue(),
        [&] {
          const Pte now = pt.lookup(addr).pte;
          return !(now.isMigrationEntry() && now.swpPfn() == entry.swpPfn());
        },
        "migration_entry_wait");
    return WalkRc::Restart;
  }

  /// pte_to_hmm_pfn_flags() / pmd_to_hmm_pfn_flags() without the order.
  static unsigned long leafCpuFlags(Pte e) {
    if (!e.isPresent() || e.isProtNone()) return 0;
    return e.isWrite() ? (HMM_PFN_VALID | HMM_PFN_WRITE) : HMM_PFN_VALID;
  }

  /// hmm_vma_walk_test() + the vma's page-table walk.
  WalkRc walkVma(Vma& vma, Va start, Va end) {
    // RFC 5/5: a device vma (VM_IO|VM_PFNMAP|VM_MIXEDMAP) whose exporter provides p2p_map is
    // mapped for the importer; without an importer, addresses or the callback, the rules below
    // apply unchanged.
    if ((vma.vmFlags & (VM_IO | VM_PFNMAP | VM_MIXEDMAP)) && range_.importer && range_.p2pAddrs &&
        vma.vmOps && vma.vmOps->hasP2p())
      return vmaP2pMap(vma, start, end);
    if ((vma.vmFlags & (VM_IO | VM_PFNMAP)) || !(vma.vmFlags & VM_READ)) {
      // A fault requested on an unsupported range is a hard failure; else ERROR and skip the vma.
      if (rangeNeedFault(start, end, 0)) return WalkRc::Fault;
      fill(start, end, HMM_PFN_ERROR);
      return WalkRc::Ok;
    }
    WalkRc rc = WalkRc::Ok;
    const bool hugetlb = vma.isHugetlb();
    mm_.pageTable().walkRange(start, end, [&](const PtRangeEntry& e) {
      switch (e.level) {
        case PtLevel::None:
          rc = holeRun(vma, e.start, e.end, end);
          break;
        case PtLevel::Pte:
          rc = handlePte(vma, e.start, pmdEnd(e.start, end), *e.slot);
          break;
        case PtLevel::Pmd:
          rc = hugetlb ? handleHugetlb(vma, e, kPmdShift - kPageShift) : handlePmd(vma, e);
          break;
        case PtLevel::Pud:
          rc = hugetlb ? handleHugetlb(vma, e, kPudShift - kPageShift) : handlePud(vma, e);
          break;
        default:
          HMMSIM_ASSERT(false, "hmm walk: unexpected leaf level");
          break;
      }
      return rc == WalkRc::Ok ? WalkAction::Continue : WalkAction::Stop;
    });
    return rc;
  }

  /// A run of unmapped addresses [start, end) of the walk [.., walkEnd), PMD range by PMD range:
  /// where a PTE table exists the run is pte_none entries (hmm_vma_handle_pte: the first one that
  /// needs a fault faults from there to the end of its PMD range, hmm_vma_fault(addr, end), so
  /// pages already mapped after it are faulted too: an own device-private page migrates back
  /// to RAM); elsewhere it is a none pmd/pud (hmm_vma_walk_hole over the empty range).
  WalkRc holeRun(Vma& vma, Va start, Va end, Va walkEnd) {
    for (Va a = start; a < end;) {
      const Va b = std::min(end, a.alignDown(kPmdSize) + kPmdSize);
      if (mm_.pageTable().lookup(a).slotLevel != PtLevel::Pte) {
        const WalkRc rc = hole(vma, a, b);
        if (rc != WalkRc::Ok) return rc;
        a = b;
        continue;
      }
      for (; a < b; a += kPageSize) {
        unsigned long* out = pfns(a);
        if (stats_) ++stats_->pagesWalked;
        if (const unsigned need = pteNeedFault(*out, 0)) return vmaFault(vma, a, pmdEnd(a, walkEnd), need);
        *out &= HMM_PFN_INOUT_FLAGS;
      }
    }
    return WalkRc::Ok;
  }

  /// hmm_vma_p2p_map() (RFC 5/5): `write` if any page of [start, end) asks for a write fault.
  WalkRc vmaP2pMap(Vma& vma, Va start, Va end) {
    const bool write = (rangeNeedFault(start, end, 0) & kNeedWriteFault) != 0;
    const std::uint64_t off = (start - range_.start) >> kPageShift;
    const Errno err = vma.vmOps->p2pMap(vma, *range_.importer, start, end, range_.p2pAddrs + off, write);
    if (err != Errno::Ok) {
      if (stats_) ++stats_->p2pRefused;
      range_.p2pError = err;
      fill(start, end, HMM_PFN_ERROR);
      return WalkRc::Fault;
    }
    if (stats_) ++stats_->p2pMaps;
    fill(start, end, HMM_PFN_P2P | (write ? HMM_PFN_WRITE : 0));
    p2pRuns_.push_back({start, end});
    return WalkRc::Ok;
  }

 public:
  /// Undo every p2pMap of this call (a non-Ok return: the caller would otherwise leak them).
  void undoP2p() {
    for (const auto& [s, e] : p2pRuns_) {
      if (stats_) ++stats_->p2pUndone;
      hmmRangeP2pUnmap(range_, s, e);
    }
    p2pRuns_.clear();
  }

 private:
  /// A foreign device-private page the importer may reach peer to peer (RFC 4/5): its devmem has
  /// p2p ops. Looked up once per pgmap (runs of pages share it).
  bool p2pPeer(const DevPagemap* pgmap) {
    if (!range_.importer || !pgmap) return false;
    if (pgmap != lastPgmap_) {
      lastPgmap_ = pgmap;
      lastPeer_ = devmemP2pOps(pgmap) != nullptr;
    }
    return lastPeer_;
  }

  /// Report a device-private entry instead of faulting it: the owner matches, or the importer may
  /// reach it peer to peer and the entry satisfies the request.
  bool reportDevicePrivate(const Frame& f, unsigned long req, unsigned long cpu) {
    if (!f.pgmap) return false;
    if (f.pgmap->owner == range_.devPrivateOwner) return true;
    return p2pPeer(f.pgmap) && pteNeedFault(req, cpu) == 0;
  }

  /// The end of the pmd_entry range that contains `addr` (walk_pmd_range's `next`).
  static Va pmdEnd(Va addr, Va end) { return std::min(end, addr.alignDown(kPmdSize) + kPmdSize); }

  /// hmm_vma_handle_pte(). `end` is the end of the current PMD range (faults cover [addr, end)).
  WalkRc handlePte(Vma& vma, Va addr, Va end, Pte pte) {
    unsigned long* out = pfns(addr);
    const unsigned long req = *out;
    if (stats_) ++stats_->pagesWalked;
    if (pte.isNone() || pte.isPteMarker()) {  // pte_none_mostly
      if (const unsigned need = pteNeedFault(req, 0)) return vmaFault(vma, addr, end, need);
      *out &= HMM_PFN_INOUT_FLAGS;
      return WalkRc::Ok;
    }
    if (!pte.isPresent()) {
      // Device-private pages of the caller's own device: report, never fault.
      if (pte.isDevicePrivateEntry()) {
        const Frame& f = pm_.frame(pte.swpPfn());
        unsigned long cpu = HMM_PFN_VALID;
        if (pte.isWritableDevicePrivateEntry()) cpu |= HMM_PFN_WRITE;
        if (reportDevicePrivate(f, req, cpu)) {
          *out = (*out & HMM_PFN_INOUT_FLAGS) | pte.swpPfn().value() | cpu;
          return WalkRc::Ok;
        }
      }
      const unsigned need = pteNeedFault(req, 0);
      if (!need) {
        *out &= HMM_PFN_INOUT_FLAGS;
        return WalkRc::Ok;
      }
      if (pte.isSwapSlot() || pte.isDevicePrivateEntry() || pte.isDeviceExclusiveEntry())
        return vmaFault(vma, addr, end, need);
      if (pte.isMigrationEntry()) return migrationWait(addr, pte);
      return WalkRc::Fault;  // hwpoison and anything else
    }
    const unsigned long cpu = leafCpuFlags(pte);
    if (const unsigned need = pteNeedFault(req, cpu)) return vmaFault(vma, addr, end, need);
    // vm_normal_page() == NULL (special/pfnmap/mixedmap raw pfn) and not the zero page: ERROR.
    // As in vm_normal_page, only a VM_MIXEDMAP vma can hold a non-special pte without a struct
    // page, so only there is pfn_valid consulted.
    const Pfn pfn = pte.pfn();
    const bool normal = !pte.isSpecial() && (!(vma.vmFlags & VM_MIXEDMAP) || pm_.pfnValid(pfn));
    if (!normal && !pm_.isZeroPfn(pfn)) {
      if (pteNeedFault(req, 0)) return WalkRc::Fault;
      *out = (*out & HMM_PFN_INOUT_FLAGS) | HMM_PFN_ERROR;
      return WalkRc::Ok;
    }
    *out = (*out & HMM_PFN_INOUT_FLAGS) | pfn.value() | cpu;
    return WalkRc::Ok;
  }

  /// Fill [e.start, e.end) from a leaf mapping `first` at e.leafStart() with `cpu` flags.
  void fillLeaf(const PtRangeEntry& e, Pfn first, unsigned long cpu) {
    Pfn pfn = first + ((e.start - e.leafStart()) >> kPageShift);
    unsigned long* p = pfns(e.start);
    const std::uint64_t n = (e.end - e.start) >> kPageShift;
    for (std::uint64_t i = 0; i < n; ++i) p[i] = (p[i] & HMM_PFN_INOUT_FLAGS) | (pfn.value() + i) | cpu;
    if (stats_) stats_->pagesWalked += n;
  }

  /// hmm_vma_walk_pmd() for a PMD leaf: THP / huge zero page, PMD migration entry, device-private
  /// PMD entry (hmm_vma_handle_absent_pmd of current kernels), or another non-present PMD.
  WalkRc handlePmd(Vma& vma, const PtRangeEntry& e) {
    const Pte pmd = *e.slot;
    if (pmd.isMigrationEntry()) {
      if (rangeNeedFault(e.start, e.end, 0)) return migrationWait(e.start, pmd);
      fill(e.start, e.end, 0);
      return WalkRc::Ok;
    }
    if (!pmd.isPresent()) {
      if (pmd.isDevicePrivateEntry()) {
        const Frame& f = pm_.frame(pmd.swpPfn());
        unsigned long cpu = HMM_PFN_VALID | hmmPfnFlagsOrder(kPmdShift - kPageShift);
        if (pmd.isWritableDevicePrivateEntry()) cpu |= HMM_PFN_WRITE;
        const bool own = f.pgmap && f.pgmap->owner == range_.devPrivateOwner;
        if (own || (f.pgmap && p2pPeer(f.pgmap) && rangeNeedFault(e.start, e.end, cpu) == 0)) {
          fillLeaf(e, pmd.swpPfn(), cpu);
          return WalkRc::Ok;
        }
      }
      if (const unsigned need = rangeNeedFault(e.start, e.end, 0)) {
        if (pmd.isDevicePrivateEntry()) return vmaFault(vma, e.start, e.end, need);
        return WalkRc::Fault;
      }
      fill(e.start, e.end, HMM_PFN_ERROR);
      return WalkRc::Ok;
    }
    // hmm_vma_handle_pmd().
    unsigned long cpu = leafCpuFlags(pmd);
    if (cpu) cpu |= hmmPfnFlagsOrder(kPmdShift - kPageShift);
    if (const unsigned need = rangeNeedFault(e.start, e.end, cpu)) return vmaFault(vma, e.start, e.end, need);
    fillLeaf(e, pmd.pfn(), cpu);
    return WalkRc::Ok;
  }

  /// hmm_vma_walk_pud(): a present PUD leaf (1 GiB); a non-present one is a hole.
  WalkRc handlePud(Vma& vma, const PtRangeEntry& e) {
    const Pte pud = *e.slot;
    if (!pud.isPresent()) return hole(vma, e.start, e.end);
    unsigned long cpu = leafCpuFlags(pud);
    if (cpu) cpu |= hmmPfnFlagsOrder(kPudShift - kPageShift);
    if (const unsigned need = rangeNeedFault(e.start, e.end, cpu)) return vmaFault(vma, e.start, e.end, need);
    fillLeaf(e, pud.pfn(), cpu);
    return WalkRc::Ok;
  }

  /// hmm_vma_walk_hugetlb_entry(): the request of the first page decides (hmm_pte_need_fault on
  /// hmm_pfns[i]); the order is the hstate's. A non-present hugetlb entry (migration) without a
  /// request reports 0 (the kernel writes a meaningless pfn without VALID there).
  WalkRc handleHugetlb(Vma& vma, const PtRangeEntry& e, unsigned order) {
    const Pte entry = *e.slot;
    unsigned long cpu = leafCpuFlags(entry);
    const unsigned long req = *pfns(e.start);
    if (const unsigned need = pteNeedFault(req, cpu)) {
      if (entry.isMigrationEntry()) return migrationWait(e.start, entry);
      return vmaFault(vma, e.start, e.end, need);
    }
    if (!cpu) {
      fill(e.start, e.end, 0);
      return WalkRc::Ok;
    }
    fillLeaf(e, entry.pfn(), cpu | hmmPfnFlagsOrder(order));
    return WalkRc::Ok;
  }

  HmmRange& range_;
  Mm& mm_;
  PhysMem& pm_;
  HmmStats* stats_;
  Va last_;
  bool anyFault_ = false;
  std::vector<std::pair<Va, Va>> p2pRuns_;  // special-vma ranges this call mapped
  const DevPagemap* lastPgmap_ = nullptr;
  bool lastPeer_ = false;
};

}  // namespace

HmmStatus hmmRangeFault(HmmRange& range, HmmStats* stats) {
  if (stats) ++stats->calls;
  range.p2pError = Errno::Ok;
  if (!range.notifier || !range.notifier->mm() || !range.hmmPfns || range.start >= range.end ||
      !range.start.isAligned(kPageSize) || !range.end.isAligned(kPageSize)) {
    if (stats) ++stats->errors;
    return HmmStatus::Inval;
  }
  Mm& mm = *range.notifier->mm();
  mmapAssertLocked(mm);  // hmm_range_fault: mmap_assert_locked(range->notifier->mm)
  HmmWalk walk(range, mm, stats);
  for (;;) {
    if (range.notifier->checkRetry(range.notifierSeq)) {
      if (stats) ++stats->busyReturns;
      walk.undoP2p();
      return HmmStatus::Busy;
    }
    switch (walk.walk(walk.last(), range.end)) {
      case WalkRc::Ok:
        return HmmStatus::Ok;
      case WalkRc::Restart:
        if (stats) ++stats->busyRestarts;
        continue;
      case WalkRc::Fault:
        if (stats) ++stats->errors;
        walk.undoP2p();
        return HmmStatus::Fault;
      case WalkRc::Perm:
        if (stats) ++stats->errors;
        walk.undoP2p();
        return HmmStatus::Perm;
    }
  }
}

Errno hmmRangeP2pUnmap(HmmRange& range, Va start, Va end) {
  HMMSIM_ASSERT(range.notifier && range.notifier->mm() && range.importer && range.p2pAddrs,
                "hmmRangeP2pUnmap needs the range's notifier, importer and addresses");
  Mm& mm = *range.notifier->mm();
  Errno first = Errno::Ok;
  Va a = start;
  while (a < end) {
    const std::uint64_t i = (a - range.start) >> kPageShift;
    if (!hmmPfnIsP2p(range.hmmPfns[i])) {
      a += kPageSize;
      continue;
    }
    Vma* vma = mm.vmaLookup(a);
    if (!vma || !vma->vmOps || !vma->vmOps->hasP2p()) {
      // The vma went away while the importer still held the mapping: it ignored the UNMAP
      // invalidation (the checker reported it). The exporter's mapping cannot be given back.
      if (first == Errno::Ok) first = Errno::Fault;
      range.hmmPfns[i] &= HMM_PFN_INOUT_FLAGS;
      a += kPageSize;
      continue;
    }
    // The run of p2p entries inside this vma.
    Va e = a;
    const Va limit = std::min(end, vma->vmEnd);
    while (e < limit && hmmPfnIsP2p(range.hmmPfns[(e - range.start) >> kPageShift])) e += kPageSize;
    const Errno err = vma->vmOps->p2pUnmap(*vma, *range.importer, a, e, range.p2pAddrs + i);
    if (err != Errno::Ok && first == Errno::Ok) first = err;
    for (Va x = a; x < e; x += kPageSize)
      range.hmmPfns[(x - range.start) >> kPageShift] &= HMM_PFN_INOUT_FLAGS;
    a = e;
  }
  return first;
}

}  // namespace hmmsim
