// Mm: construction, vma tree, lookups, rss, the mmap lock, notifier rounds, the shared vma
// surgery (mm/vma.c: split, merge, unmap) and exit_mmap. The syscalls live in mmap.cpp,
// mprotect.cpp, mremap.cpp, madvise.cpp and fork.cpp.
#include "models/cpu_mmu/mm.h"

#include <algorithm>

#include "models/cpu_mmu/file.h"
#include "models/cpu_mmu/huge_memory.h"
#include "models/cpu_mmu/memory.h"
#include "models/cpu_mmu/mm_internal.h"
#include "models/cpu_mmu/page_table.h"
#include "models/cpu_mmu/phys_mem.h"
#include "models/cpu_mmu/vm_operations.h"
#include "sim/assert.h"

namespace hmmsim {

namespace {
std::array<Counter*, kMmuNotifierEventCount> registerEventCounters(StatsGroup& g) {
  std::array<Counter*, kMmuNotifierEventCount> a{};
  for (unsigned i = 0; i < kMmuNotifierEventCount; ++i) {
    const char* ev = mmuNotifierEventName(static_cast<MmuNotifierEvent>(i));
    a[i] = &g.counter(std::string("notify_") + ev, "rounds",
                      std::string("mmu-notifier invalidate_range_start rounds with MMU_NOTIFY_") + ev);
  }
  return a;
}
}  // namespace

MmStats::MmStats(StatsGroup& g)
    : mmapCalls(g.counter("mmap_calls", "calls", "mmap calls, including failed ones")),
      munmapCalls(g.counter("munmap_calls", "calls", "munmap calls, including failed ones")),
      mprotectCalls(g.counter("mprotect_calls", "calls", "mprotect calls, including failed ones")),
      mremapCalls(g.counter("mremap_calls", "calls", "mremap calls, including failed ones")),
      madviseCalls(g.counter("madvise_calls", "calls", "madvise calls, including failed ones")),
      forkCalls(g.counter("fork_calls", "calls", "fork (dup_mmap) calls, including failed ones")),
      failedCalls(g.counter("failed_calls", "calls", "mm syscalls that returned an error")),
      vmaSplits(g.counter("vma_splits", "splits", "vmas split in two (__split_vma)")),
      vmaMerges(g.counter("vma_merges", "merges", "adjacent vmas joined (vma_merge)")),
      stackExpansions(g.counter("stack_expansions", "expansions",
                                "VM_GROWSDOWN vmas grown by a fault below them (expand_stack)")),
      lazyfreeDiscarded(
          g.counter("lazyfree_discarded", "pages", "clean MADV_FREE pages discarded by reclaimLazyfree")),
      notifyEvents(registerEventCounters(g)),
      rssAnon(g.scalar("rss_anon", "pages", "anonymous pages mapped (MM_ANONPAGES)")),
      rssFile(g.scalar("rss_file", "pages", "file pages mapped (MM_FILEPAGES)")),
      rssShmem(g.scalar("rss_shmem", "pages", "shmem/tmpfs pages mapped (MM_SHMEMPAGES)")) {}

Mm::Mm(PhysMem& physMem, const std::string& name, const MmParams& params)
    : physMem_(physMem),
      params_(params),
      stats_(name),
      mmStats_(stats_),
      vmEvents_(stats_),
      pageTable_(std::make_unique<PageTable>(&physMem)),
      subscriptions_(std::make_unique<MmuNotifierSubscriptions>(this, name + ".notifier")) {
  HMMSIM_ASSERT(params_.mmapMinAddr.isAligned(kPageSize) && params_.mmapBase.isAligned(kPageSize) &&
                    params_.taskSize.isAligned(kPageSize) && params_.mmapMinAddr < params_.mmapBase &&
                    params_.mmapBase <= params_.taskSize && params_.taskSize.value() <= PageTable::kVaLimit,
                "MmParams: need mmapMinAddr < mmapBase <= taskSize <= 2^48, page aligned");
}

Mm::~Mm() {
  exitMmap();
}

// ---- lookups ----------------------------------------------------------------------------------

Vma* Mm::findVma(Va addr) {
  // The candidate is the last vma starting at or below addr; if it ends at or below addr the
  // answer is the next one.
  auto it = vmas_.upper_bound(addr);
  if (it != vmas_.begin()) {
    auto prev = std::prev(it);
    if (prev->vmEnd > addr) return &*prev;
  }
  return it == vmas_.end() ? nullptr : &*it;
}

Vma* Mm::vmaLookup(Va addr) {
  Vma* v = findVma(addr);
  return (v && v->vmStart <= addr) ? v : nullptr;
}

Vma* Mm::findVmaIntersection(Va start, Va end) {
  Vma* v = findVma(start);
  return (v && v->vmStart < end) ? v : nullptr;
}

std::uint64_t Mm::totalVm() const {
  std::uint64_t total = 0;
  for (const Vma& v : vmas_) total += v.length();
  return total;
}

// ---- rss --------------------------------------------------------------------------------------

std::int64_t Mm::rss() const {
  return mmCounter(MmCounter::FilePages) + mmCounter(MmCounter::AnonPages) + mmCounter(MmCounter::ShmemPages);
}

// ---- notifier rounds --------------------------------------------------------------------------

void Mm::invalidateRangeStart(MmuNotifierRange& range) {
  HMMSIM_ASSERT(range.mm == this, "notifier range raised on the wrong mm");
  ++*mmStats_.notifyEvents[static_cast<unsigned>(range.event)];
  subscriptions_->invalidateRangeStart(range);
}

void Mm::invalidateRangeEnd(MmuNotifierRange& range) {
  HMMSIM_ASSERT(range.mm == this, "notifier range ended on the wrong mm");
  subscriptions_->invalidateRangeEnd(range);
}

void Mm::notifyRange(MmuNotifierEvent event, Va start, Va end, const void* owner,
                     const std::function<void()>& body) {
  MmuNotifierRange range;
  mmuNotifierRangeInitOwner(range, event, 0, this, start, end, owner);
  invalidateRangeStart(range);
  if (body) body();
  invalidateRangeEnd(range);
}

AnonVma& Mm::anonVmaPrepare(Vma& vma) {
  HMMSIM_ASSERT(vma.vmMm == this, "anonVmaPrepare on a foreign vma");
  if (!vma.anonVma) {
    // anon_vma_prepare: reuse a mergeable neighbour's anon_vma (find_mergeable_anon_vma), so
    // that adjacent vmas can still merge later; else a new one.
    auto it = vmas_.iterator_to(vma);
    if (it != vmas_.begin()) {
      auto prev = std::prev(it);
      if (prev->anonVma && prev->vmEnd == vma.vmStart && MmInternals::canMerge(*prev, vma)) {
        vma.setAnonVma(prev->anonVma);
        return *vma.anonVma;
      }
    }
    auto next = std::next(it);
    if (next != vmas_.end() && next->anonVma && vma.vmEnd == next->vmStart &&
        MmInternals::canMerge(vma, *next)) {
      vma.setAnonVma(next->anonVma);
      return *vma.anonVma;
    }
    auto av = std::make_shared<AnonVma>();
    av->id = nextAnonVmaId_++;
    physMem_.retainOwner(av);  // frames may point at it after its last vma (see vma.h)
    vma.setAnonVma(std::move(av));
  }
  return *vma.anonVma;
}

// ---- exit_mmap --------------------------------------------------------------------------------

void Mm::exitMmap() {
  if (exited_) return;
  HMMSIM_ASSERT(!mmapLocked(), "exit_mmap with the mmap lock held");
  // mmu_notifier_release first: interval notifiers get MMU_NOTIFY_RELEASE over [0, ULONG_MAX),
  // plain subscribers ->release; secondary MMUs drop everything before any page is freed.
  subscriptions_->release();

  mmapWriteLock(*this);
  if (!vmas_.empty()) {
    // unmap_vmas(&tlb, ..., 0, ULONG_MAX): one MMU_NOTIFY_UNMAP round over everything.
    MmuNotifierRange range;
    mmuNotifierRangeInit(range, MmuNotifierEvent::Unmap, 0, this, Va(0), MmInternals::kVaMax);
    invalidateRangeStart(range);
    for (Vma& v : vmas_) zapPageRange(v, v.vmStart, v.vmEnd, nullptr);
    invalidateRangeEnd(range);
    // free_pgtables, then remove_vma for each (vm_ops->close, fput).
    pageTable_->freePgtables(Va(0), Va(PageTable::kVaLimit));
    while (!vmas_.empty()) MmInternals::removeVma(*this, *vmas_.begin());
  }
  hugetlbReserved_[0] = hugetlbReserved_[1] = 0;
  mmapWriteUnlock(*this);
  exited_ = true;
}

// ---- MmInternals ------------------------------------------------------------------------------

void MmInternals::enter(Mm& mm, LockSite site) {
  HMMSIM_ASSERT(!mm.exited(), "mm " << mm.name() << ": syscall after exit_mmap");
  mmapWriteLock(mm, site);
}

void MmInternals::leave(Mm& mm, LockSite site) {
  mmapWriteUnlock(mm, site);
  mm.blocker().current().sysExit(site);
}

Errno MmInternals::fail(Mm& mm, Errno e) {
  ++mm.mmStats().failedCalls;
  return e;
}

VmaPtr MmInternals::dupVma(const Vma& src) {
  VmaPtr v = allocVma();
  v->vmStart = src.vmStart;
  v->vmEnd = src.vmEnd;
  v->vmFlags = src.vmFlags;
  v->vmPgoff = src.vmPgoff;
  v->vmFile = src.vmFile;
  v->vmOps = src.vmOps;
  v->setAnonVma(src.anonVma);
  v->vmPrivateData = src.vmPrivateData;
  v->vmMm = src.vmMm;
  v->vmHugetlbShift = src.vmHugetlbShift;
  return v;
}

Vma& MmInternals::linkVma(Mm& mm, VmaPtr owned) {
  HMMSIM_ASSERT(owned, "linkVma of no vma");
  Vma& v = *owned;
  HMMSIM_ASSERT(v.vmStart < v.vmEnd && v.vmStart.isAligned(kPageSize) && v.vmEnd.isAligned(kPageSize),
                "linkVma: bad vma [" << v.vmStart << ", " << v.vmEnd << ")");
  HMMSIM_ASSERT(mm.findVmaIntersection(v.vmStart, v.vmEnd) == nullptr,
                "linkVma: [" << v.vmStart << ", " << v.vmEnd << ") overlaps an existing vma");
  v.vmMm = &mm;
  mm.vmas_.insert(*owned.release());  // the tree owns its linked vmas
  if (v.vmFile) v.vmFile->inode().linkVma(v);
  return v;
}

VmaPtr MmInternals::unlinkVma(Mm& mm, Vma& v) {
  mm.vmas_.erase(mm.vmas_.iterator_to(v));
  if (v.vmFile) v.vmFile->inode().unlinkVma(v);
  return VmaPtr(&v);
}

void MmInternals::removeVma(Mm& mm, Vma& v) {
  VmaPtr owned = unlinkVma(mm, v);
  if (owned->isHugetlb()) hugetlbUnreserveVma(mm, *owned);
  if (owned->vmOps) owned->vmOps->close(*owned);
}  // vm_area_free: drops the file and anon_vma references

Errno MmInternals::maySplit(Vma& v, Va addr) {
  if (v.isHugetlb() && !addr.isAligned(v.kernelPagesize())) return Errno::Inval;  // hugetlb_vm_op_split
  if (v.vmOps) return v.vmOps->maySplit(v, addr);
  return Errno::Ok;
}

Vma* MmInternals::splitVma(Mm& mm, Vma& v, Va addr) {
  HMMSIM_ASSERT(v.vmStart < addr && addr < v.vmEnd && addr.isAligned(kPageSize),
                "splitVma at " << addr << " outside (" << v.vmStart << ", " << v.vmEnd << ")");
  // vma_adjust_trans_huge: a THP straddling the new boundary is split first (CLEAR round).
  Errno e = vmaAdjustTransHuge(v, addr, addr);
  HMMSIM_ASSERT(e == Errno::Ok, "THP split at a vma split failed: " << e);
  VmaPtr dup = dupVma(v);
  dup->vmStart = addr;
  dup->vmPgoff = v.vmPgoff + ((addr - v.vmStart) >> kPageShift);
  // Shrink the lower part in place (its key, vmStart, does not change: the tree stays ordered).
  v.vmEnd = addr;
  Vma& upper = linkVma(mm, std::move(dup));
  if (upper.vmOps) upper.vmOps->open(upper);
  ++mm.mmStats().vmaSplits;
  return &upper;
}

void MmInternals::splitAt(Mm& mm, Va addr) {
  Vma* v = mm.vmaLookup(addr);
  if (v && v->vmStart != addr) splitVma(mm, *v, addr);
}

bool MmInternals::canMerge(const Vma& a, const Vma& b) {
  if (a.vmEnd != b.vmStart) return false;
  if ((a.vmFlags ^ b.vmFlags) & ~VM_SOFTDIRTY) return false;  // is_mergeable_vma
  if (a.vmFlags & (VM_SPECIAL | VM_HUGETLB)) return false;    // hugetlb vm_ops has close
  if (a.vmFile != b.vmFile || a.vmOps != b.vmOps) return false;
  // Only anonymous and page-cache vmas merge: a driver's close() may care (the kernel refuses
  // to merge vmas whose vm_ops has close).
  if (a.vmOps != nullptr && a.vmOps != &filemapVmOps()) return false;
  if (a.vmPrivateData != b.vmPrivateData) return false;
  // anon_vma compatibility: equal, or at least one without (is_mergeable_anon_vma).
  if (a.anonVma && b.anonVma && a.anonVma != b.anonVma) return false;
  // Page offsets must continue (anonymous pgoffs too: a moved vma keeps its old pgoff).
  if (a.vmPgoff + a.pages() != b.vmPgoff) return false;
  return true;
}

Vma& MmInternals::mergeAround(Mm& mm, Vma& v) {
  Vma* cur = &v;
  auto it = mm.vmas_.iterator_to(*cur);
  // Merge with the next one first (the lower vma absorbs the upper: its key stays valid).
  auto next = std::next(it);
  if (next != mm.vmas_.end() && canMerge(*cur, *next)) {
    Vma& n = *next;
    if (!cur->anonVma) cur->setAnonVma(n.anonVma);
    cur->vmFlags |= n.vmFlags & VM_SOFTDIRTY;
    Va newEnd = n.vmEnd;
    VmaPtr merged = unlinkVma(mm, n);  // freed here without close(): merged, not removed (vma_merge)
    cur->vmEnd = newEnd;
    ++mm.mmStats().vmaMerges;
  }
  it = mm.vmas_.iterator_to(*cur);
  if (it != mm.vmas_.begin()) {
    auto prev = std::prev(it);
    if (canMerge(*prev, *cur)) {
      Vma& p = *prev;
      if (!p.anonVma) p.setAnonVma(cur->anonVma);
      p.vmFlags |= cur->vmFlags & VM_SOFTDIRTY;
      Va newEnd = cur->vmEnd;
      VmaPtr merged = unlinkVma(mm, *cur);  // freed here, as above
      p.vmEnd = newEnd;
      ++mm.mmStats().vmaMerges;
      cur = &p;
    }
  }
  return *cur;
}

bool MmInternals::coveredWithoutHoles(Mm& mm, Va start, Va end) {
  Va at = start;
  while (at < end) {
    Vma* v = mm.vmaLookup(at);
    if (!v) return false;
    at = v->vmEnd;
  }
  return true;
}

std::vector<Vma*> MmInternals::vmasIn(Mm& mm, Va start, Va end) {
  std::vector<Vma*> out;
  for (Vma* v = mm.findVma(start); v && v->vmStart < end;) {
    out.push_back(v);
    auto it = std::next(mm.vmas_.iterator_to(*v));
    v = it == mm.vmas_.end() ? nullptr : &*it;
  }
  return out;
}

Errno MmInternals::unmapRange(Mm& mm, Va start, Va end) {
  Vma* first = mm.findVmaIntersection(start, end);
  if (!first) return Errno::Ok;
  // Check both splits before changing anything (the kernel's __split_vma fails before any
  // change for the first vma; for the last one it would have split the first already —
  // hmmsim checks both up front so a failing call changes nothing).
  if (first->vmStart < start) {
    if (Errno e = maySplit(*first, start); e != Errno::Ok) return e;
  }
  Vma* last = mm.vmaLookup(end - kPageSize);
  if (!last) {
    auto all = vmasIn(mm, start, end);
    last = all.back();
  }
  if (last->vmEnd > end) {
    if (Errno e = maySplit(*last, end); e != Errno::Ok) return e;
  }
  splitAt(mm, start);
  splitAt(mm, end);
  auto victims = vmasIn(mm, start, end);
  // unmap_region: one MMU_NOTIFY_UNMAP round over the whole munmap range.
  MmuNotifierRange range;
  mmuNotifierRangeInit(range, MmuNotifierEvent::Unmap, 0, &mm, start, end);
  mm.invalidateRangeStart(range);
  for (Vma* v : victims) zapPageRange(*v, v->vmStart, v->vmEnd, nullptr);
  mm.invalidateRangeEnd(range);
  mm.pageTable().freePgtables(start, end);
  for (Vma* v : victims) removeVma(mm, *v);
  return Errno::Ok;
}

namespace {
unsigned hstateIndex(unsigned shift) {
  HMMSIM_ASSERT(shift == kPmdShift || shift == kPudShift, "no hstate of huge page shift " << shift);
  return shift == kPmdShift ? 0 : 1;
}
}  // namespace

bool MmInternals::hugetlbReserve(Mm& mm, unsigned shift, std::uint64_t hugePages) {
  const unsigned h = hstateIndex(shift);
  const std::uint64_t pool = h == 0 ? mm.params().hugetlbPages : mm.params().hugetlbPages1G;
  if (mm.hugetlbReserved_[h] + hugePages > pool) return false;
  mm.hugetlbReserved_[h] += hugePages;
  return true;
}

void MmInternals::hugetlbUnreserve(Mm& mm, unsigned shift, std::uint64_t hugePages) {
  const unsigned h = hstateIndex(shift);
  HMMSIM_ASSERT(mm.hugetlbReserved_[h] >= hugePages, "hugetlb reservation underflow");
  mm.hugetlbReserved_[h] -= hugePages;
}

void MmInternals::hugetlbReserveVma(Mm& mm, const Vma& v) {
  // fork's copy of a reservation: the parent's vma already fits its pool, so does the child's
  // (per-mm pools; see MmParams::hugetlbPages).
  const unsigned h = hstateIndex(v.vmHugetlbShift);
  mm.hugetlbReserved_[h] += v.length() >> v.vmHugetlbShift;
}

void MmInternals::hugetlbUnreserveVma(Mm& mm, const Vma& v) {
  hugetlbUnreserve(mm, v.vmHugetlbShift, v.length() >> v.vmHugetlbShift);
}

void MmInternals::hugetlbCountAdd(Mm& mm, std::int64_t pages) {
  mm.hugetlbUsage_ += pages;
  HMMSIM_ASSERT(mm.hugetlbUsage_ >= 0, "mm " << mm.name() << ": hugetlb_usage went negative");
}

}  // namespace hmmsim
