// fork()'s address-space part (kernel/fork.c dup_mmap).
#include "models/cpu_mmu/file.h"
#include "models/cpu_mmu/memory.h"
#include "models/cpu_mmu/mm.h"
#include "models/cpu_mmu/mm_internal.h"
#include "models/cpu_mmu/page_table.h"
#include "models/cpu_mmu/phys_mem.h"
#include "models/cpu_mmu/vm_operations.h"
#include "sim/assert.h"

namespace hmmsim {

ForkResult Mm::fork(const std::string& childName) {
  MmInternals::enter(*this);
  ++mmStats_.forkCalls;
  // mm_alloc -> pgd_alloc: without a free frame for the child's pgd, fork fails with ENOMEM
  // before anything is copied (PageTable treats a missing pgd frame as a simulator bug).
  if (physMem_.freePages() == 0) {
    MmInternals::leave(*this);
    return ForkResult{MmInternals::fail(*this, Errno::NoMem), nullptr};
  }
  auto child = std::make_unique<Mm>(physMem_, childName, params_);
  // The child's tasks run where the parent's do: same kind of sleeping (and the same lockdep
  // contexts, so the nested lock below is checked against the parent's).
  child->notifierSubscriptions().setBlocker(blocker());
  // dup_mmap: mmap_write_lock_nested(mm, SINGLE_DEPTH_NESTING) under the parent's write lock.
  mmapWriteLockNested(*child, kSingleDepthNesting);
  Errno err = Errno::Ok;
  for (Vma& src : vmas_) {
    if (src.vmFlags & VM_DONTCOPY) continue;  // MADV_DONTFORK, drivers' VM_DONTCOPY
    VmaPtr dup = MmInternals::dupVma(src);
    Vma* dst = dup.get();
    dst->vmMm = child.get();
    dst->vmFlags &= ~VM_LOCKED_MASK;  // dup_mmap: locks are not inherited
    const bool wipe = (src.vmFlags & VM_WIPEONFORK) != 0;
    if (wipe) dst->setAnonVma(nullptr);  // the child starts with an empty private mapping
    // anon_vma_fork: the child's private pages (still the parent's after COW) belong to the
    // same family; hmmsim shares the AnonVma identity (see vma.h).
    MmInternals::linkVma(*child, std::move(dup));
    if (dst->isHugetlb()) MmInternals::hugetlbReserveVma(*child, *dst);
    if (dst->vmOps) dst->vmOps->open(*dst);
    if (wipe) continue;
    // vma_needs_copy: only vmas with anonymous pages or special (pfn) mappings are copied; file
    // and shared pages are faulted in again by the child from the page cache.
    const bool needsCopy = (src.vmFlags & (VM_PFNMAP | VM_MIXEDMAP)) || src.anonVma || src.isHugetlb();
    if (!needsCopy) continue;
    if (src.isCowMapping()) {
      // copy_page_range on a COW mapping: MMU_NOTIFY_PROTECTION_PAGE over the parent's vma while
      // its ptes are write-protected; copy_hugetlb_page_range raises MMU_NOTIFY_CLEAR instead.
      const MmuNotifierEvent event =
          src.isHugetlb() ? MmuNotifierEvent::Clear : MmuNotifierEvent::ProtectionPage;
      notifyRange(event, src.vmStart, src.vmEnd, nullptr, [&] { err = copyPageRange(*dst, src); });
    } else {
      err = copyPageRange(*dst, src);
    }
    if (err != Errno::Ok) break;
  }
  mmapWriteUnlock(*child);
  MmInternals::leave(*this);
  if (err != Errno::Ok) {
    child.reset();  // exit_mmap of the partial child frees what was copied
    return ForkResult{MmInternals::fail(*this, err), nullptr};
  }
  return ForkResult{Errno::Ok, std::move(child)};
}

}  // namespace hmmsim
