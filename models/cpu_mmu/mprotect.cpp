// mprotect(2) (mm/mprotect.c): do_mprotect_pkey, mprotect_fixup, and the notifier rounds of
// change_protection.
#include <algorithm>
#include <vector>

#include "models/cpu_mmu/memory.h"
#include "models/cpu_mmu/mm.h"
#include "models/cpu_mmu/mm_internal.h"
#include "models/cpu_mmu/page_table.h"
#include "sim/assert.h"

namespace hmmsim {

namespace {

/// change_protection's notifier rounds for [start, end) of `vma`, around `body`. In the kernel
/// change_pud_range opens one MMU_NOTIFY_PROTECTION_VMA round per top-level (PGD, 512 GiB)
/// entry, starting at the first non-empty PUD entry and ending at the end of that PGD entry's
/// part of the range; nothing is raised where no page table exists. hugetlb_change_protection
/// raises one round over the whole range.
void protectionRounds(Mm& mm, Vma& vma, Va start, Va end) {
  if (vma.isHugetlb()) {
    mm.notifyRange(MmuNotifierEvent::ProtectionVma, start, end, nullptr,
                   [&] { changeProtection(vma, start, end, vma.vmFlags); });
    return;
  }
  PageTable& pt = mm.pageTable();
  const std::uint64_t pgdSize = ptLevelSize(PtLevel::Pgd);
  const std::uint64_t pudSize = ptLevelSize(PtLevel::Pud);
  Va chunk = start;
  while (chunk < end) {
    Va chunkEnd = std::min(end, chunk.alignDown(pgdSize) + pgdSize);
    // First PUD entry of this chunk that is not none.
    std::optional<Va> first;
    for (Va a = chunk; a < chunkEnd; a = a.alignDown(pudSize) + pudSize) {
      Pte* pud = pt.pudPtr(a, false);
      if (!pud) break;  // no PUD table under this PGD entry: the whole chunk is empty
      if (!pud->isNone()) {
        first = a;
        break;
      }
    }
    if (first) {
      Va rs = *first;
      mm.notifyRange(MmuNotifierEvent::ProtectionVma, rs, chunkEnd, nullptr,
                     [&] { changeProtection(vma, rs, chunkEnd, vma.vmFlags); });
    }
    chunk = chunkEnd;
  }
}

}  // namespace

Errno Mm::mprotect(Va addr, std::uint64_t len, int prot) {
  MmInternals::enter(*this);
  ++mmStats_.mprotectCalls;
  auto done = [&](Errno e) {
    MmInternals::leave(*this);
    return e == Errno::Ok ? e : MmInternals::fail(*this, e);
  };
  constexpr int kProtSem = 0x8, kGrowsDown = 0x01000000, kGrowsUp = 0x02000000;
  if ((prot & kGrowsDown) && (prot & kGrowsUp)) return done(Errno::Inval);
  if (prot & kGrowsUp) return done(Errno::Inval);  // x86 has no VM_GROWSUP vmas
  if (!addr.isAligned(kPageSize)) return done(Errno::Inval);
  if (len == 0) return done(Errno::Ok);
  std::uint64_t alen;
  if (!pageAlign(len, alen)) return done(Errno::NoMem);
  Va start = addr;
  const Va end = addr + alen;
  if (prot & kGrowsDown) {
    // PROT_GROWSDOWN: the change reaches down to the start of the VM_GROWSDOWN vma at addr.
    Vma* v = findVma(start);
    if (!v || v->vmStart >= end || !(v->vmFlags & VM_GROWSDOWN)) return done(Errno::Inval);
    start = std::min(start, v->vmStart);
    prot &= ~kGrowsDown;
  }
  if (end <= start) return done(Errno::NoMem);
  if (prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC | kProtSem)) return done(Errno::Inval);

  // Validate everything first: the kernel fails with ENOMEM at the first hole after having
  // changed the vmas before it; hmmsim refuses before changing anything (deliberate).
  Vma* first = findVma(start);
  if (!first || first->vmStart > start) return done(Errno::NoMem);
  if (!MmInternals::coveredWithoutHoles(*this, start, end)) return done(Errno::NoMem);
  const VmFlags protFlags = calcVmProtBits(prot);
  auto newFlagsOf = [&](const Vma& v) { return protFlags | (v.vmFlags & ~VM_ACCESS_FLAGS); };
  auto parts = MmInternals::vmasIn(*this, start, end);
  for (Vma* v : parts) {
    VmFlags nf = newFlagsOf(*v);
    if ((nf & ~(nf >> 4)) & VM_ACCESS_FLAGS) return done(Errno::Acces);  // VM_MAY* missing
  }
  if (first->vmStart < start && newFlagsOf(*first) != first->vmFlags) {
    if (Errno e = MmInternals::maySplit(*first, start); e != Errno::Ok) return done(e);
  }
  Vma* last = parts.back();
  if (last->vmEnd > end && newFlagsOf(*last) != last->vmFlags) {
    if (Errno e = MmInternals::maySplit(*last, end); e != Errno::Ok) return done(e);
  }

  // Apply per vma part (mprotect_fixup): split, set flags, merge, then change_protection.
  // A locked private vma that becomes writable is populated with write faults afterwards
  // (mprotect_fixup's populate_vma_page_range: break COW so the locked pages stay resident).
  std::vector<std::pair<Va, Va>> ranges, populate;
  for (Vma* v : parts) ranges.emplace_back(std::max(v->vmStart, start), std::min(v->vmEnd, end));
  for (const auto& range : ranges) {
    const Va ps = range.first, pe = range.second;  // not a structured binding: the assert lambda captures ps
    Vma* v = vmaLookup(ps);
    HMMSIM_ASSERT(v != nullptr, "mprotect: vma vanished at " << ps);
    const VmFlags nf = newFlagsOf(*v);
    if (nf == v->vmFlags) continue;
    if ((v->vmFlags & (VM_WRITE | VM_SHARED | VM_LOCKED)) == VM_LOCKED && (nf & VM_WRITE))
      populate.emplace_back(ps, pe);
    if (v->vmStart < ps) v = MmInternals::splitVma(*this, *v, ps);
    if (v->vmEnd > pe) MmInternals::splitVma(*this, *v, pe);
    v->vmFlags = nf;
    Vma& merged = MmInternals::mergeAround(*this, *v);
    protectionRounds(*this, merged, ps, pe);
  }
  MmInternals::leave(*this);
  for (auto [ps, pe] : populate) mmPopulateIgnoringErrors(*this, ps, pe);
  return Errno::Ok;
}

}  // namespace hmmsim
