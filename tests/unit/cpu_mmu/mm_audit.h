#pragma once
// Whole-system consistency audit of a set of address spaces sharing one PhysMem: what the page
// tables say must match what the frames, the rss counters and the anon_vma chains say. Used by
// the randomized stress tests after every operation; returns human-readable problems (empty =
// consistent) so a failure names the mm, address and frame.
//
// Checked, for every leaf of every vma (present, device-private, device-exclusive):
//  - each frame's PTE mapcount equals the PTE leaves mapping it; each folio head's entire
//    mapcount equals the PMD/PUD leaves mapping it;
//  - each folio's refcount is at least one per mapping (pins, page cache and drivers add more);
//  - each mm's rss counters (anon, shmem) and hugetlb_usage equal what its leaves map;
//  - no leaf outside every vma; no migration entry at rest;
//  - no special or hugetlb vma is mlocked;
//  - every vma with an anon_vma is on that anon_vma's chain, and every vma on a chain is a
//    live vma of one of the mms.
//
// MmAuditor keeps its working storage from one audit to the next (the replay and the fuzzer audit
// after every operation); auditMms is the one-shot form.

#include <algorithm>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "models/cpu_mmu/frame.h"
#include "models/cpu_mmu/mm.h"
#include "models/cpu_mmu/page_table.h"
#include "models/cpu_mmu/phys_mem.h"
#include "models/cpu_mmu/vma.h"

namespace hmmsim::test {

class MmAuditor {
 public:
  /// Audit `mms` (exited ones are skipped). Returns the problems found (at most 20); empty when
  /// everything is consistent.
  std::vector<std::string> audit(PhysMem& pm, const std::vector<Mm*>& mms) {
    problems_.clear();
    ptePfns_.clear();
    entireHeads_.clear();
    mappedHeads_.clear();
    liveVmas_.clear();
    for (Mm* mm : mms) {
      if (mm->exited()) continue;
      auditVmas(*mm);
      auditLeaves(pm, *mm);
    }
    std::sort(liveVmas_.begin(), liveVmas_.end());
    auditFrames(pm);
    // Every vma on a chain of a live vma is live.
    for (const Vma* v : liveVmas_) {
      if (!v->anonVma) continue;
      for (const Vma& c : v->anonVma->vmas)
        if (!std::binary_search(liveVmas_.begin(), liveVmas_.end(), &c) && c.vmMm && !c.vmMm->exited())
          problem("anon_vma " + std::to_string(v->anonVma->id) + ": chain holds a vma that is in no mm");
    }
    return problems_;
  }

 private:
  void problem(std::string s) {
    if (problems_.size() < 20) problems_.push_back(std::move(s));
  }

  void auditVmas(Mm& mm) {
    for (const Vma& v : mm.vmas()) {
      liveVmas_.push_back(&v);
      if ((v.vmFlags & VM_LOCKED_MASK) && ((v.vmFlags & VM_SPECIAL) || v.isHugetlb()))
        problem(mm.name() + ": special or hugetlb vma at " + std::to_string(v.vmStart.value()) +
                " is locked");
      if (v.anonVma) {
        bool onChain = false;
        for (const Vma& c : v.anonVma->vmas) onChain |= &c == &v;
        if (!onChain)
          problem(mm.name() + ": vma at " + std::to_string(v.vmStart.value()) +
                  " is not on its anon_vma chain");
      }
    }
  }

  // Leaves, and where they are; the rss counters.
  void auditLeaves(PhysMem& pm, Mm& mm) {
    std::int64_t anon = 0, shmem = 0, hugetlb = 0;
    // Leaves come in address order: the vma holding each one is found by moving along the tree.
    auto vit = mm.vmas().begin();
    mm.pageTable().walkRange(Va(0), Va(PageTable::kVaLimit), [&](const PtRangeEntry& e) {
      if (e.level == PtLevel::None) return WalkAction::Continue;
      const Pte p = *e.slot;
      const Va at = e.leafStart();
      while (vit != mm.vmas().end() && vit->vmEnd <= at) ++vit;
      const Vma* v = vit != mm.vmas().end() && vit->vmStart <= at ? &*vit : nullptr;
      auto where = [&] {
        std::ostringstream w;
        w << mm.name() << " @" << at;
        return w.str();
      };
      if (!v || at + ptLevelSize(e.level) > v->vmEnd) {
        problem(where() + ": leaf outside every vma");
        return WalkAction::Continue;
      }
      if (p.isMigrationEntry()) problem(where() + ": migration entry at rest");
      if (p.isPresent() &&
          (p.isSpecial() || !pm.pfnValid(p.pfn()) || pm.isZeroPfn(p.pfn()) || pm.isHugeZeroPfn(p.pfn())))
        return WalkAction::Continue;
      if (!p.isPresent() && !(p.isDevicePrivateEntry() || p.isDeviceExclusiveEntry()))
        return WalkAction::Continue;
      const Pfn pfn = p.anyPfn();
      const Pfn head = pm.compoundHead(pfn);
      const std::int64_t pages = std::int64_t(ptLevelSize(e.level) >> kPageShift);
      if (e.level == PtLevel::Pte)
        ptePfns_.push_back(pfn.value());
      else
        entireHeads_.push_back(head.value());
      mappedHeads_.push_back(head.value());
      const Frame& h = pm.frame(head);
      if (v->isHugetlb())
        hugetlb += pages;
      else if (h.isAnon() || p.isDevicePrivateEntry())
        anon += pages;
      else
        shmem += pages;
      return WalkAction::Continue;
    });
    if (mm.mmCounter(MmCounter::AnonPages) != anon)
      problem(mm.name() + ": MM_ANONPAGES " + std::to_string(mm.mmCounter(MmCounter::AnonPages)) +
              " but the page table maps " + std::to_string(anon));
    if (mm.mmCounter(MmCounter::ShmemPages) != shmem)
      problem(mm.name() + ": MM_SHMEMPAGES " + std::to_string(mm.mmCounter(MmCounter::ShmemPages)) +
              " but the page table maps " + std::to_string(shmem));
    if (mm.hugetlbUsage() != hugetlb)
      problem(mm.name() + ": hugetlb_usage " + std::to_string(mm.hugetlbUsage()) +
              " but the page table maps " + std::to_string(hugetlb));
  }

  // Calls f(value, occurrences) for every distinct value of `v`, in increasing order.
  template <class F>
  static void forEachCount(std::vector<std::uint64_t>& v, F f) {
    std::sort(v.begin(), v.end());
    for (std::size_t i = 0, j = 0; i < v.size(); i = j) {
      while (j < v.size() && v[j] == v[i]) ++j;
      f(v[i], std::int64_t(j - i));
    }
  }

  // The frames' counts against the leaves found (one entry per leaf, sorted and counted: cheaper
  // than a map node per frame).
  void auditFrames(PhysMem& pm) {
    forEachCount(ptePfns_, [&](std::uint64_t pfn, std::int64_t n) {
      if (pm.frame(Pfn(pfn)).mapcount != n)
        problem("pfn " + std::to_string(pfn) + ": mapcount " + std::to_string(pm.frame(Pfn(pfn)).mapcount) +
                " but " + std::to_string(n) + " PTE mappings");
    });
    forEachCount(entireHeads_, [&](std::uint64_t head, std::int64_t n) {
      if (pm.frame(Pfn(head)).entireMapcount() != n)
        problem("folio " + std::to_string(head) + ": entire mapcount " +
                std::to_string(pm.frame(Pfn(head)).entireMapcount()) + " but " + std::to_string(n) +
                " huge mappings");
    });
    forEachCount(mappedHeads_, [&](std::uint64_t head, std::int64_t n) {
      if (pm.frame(Pfn(head)).refcount() < n)
        problem("folio " + std::to_string(head) + ": refcount " +
                std::to_string(pm.frame(Pfn(head)).refcount()) + " below its " + std::to_string(n) +
                " mappings");
    });
  }

  std::vector<std::string> problems_;
  std::vector<std::uint64_t> ptePfns_;      ///< pfn of each PTE leaf
  std::vector<std::uint64_t> entireHeads_;  ///< head of each PMD/PUD leaf
  std::vector<std::uint64_t> mappedHeads_;  ///< head of each leaf (one reference needed per mapping)
  std::vector<const Vma*> liveVmas_;        ///< every vma of the audited mms (sorted before use)
};

inline std::vector<std::string> auditMms(PhysMem& pm, const std::vector<Mm*>& mms) {
  return MmAuditor().audit(pm, mms);
}

}  // namespace hmmsim::test
