// mmap(2), munmap(2) and get_unmapped_area (mm/mmap.c, mm/vma.c).
#include <algorithm>

#include "models/cpu_mmu/file.h"
#include "models/cpu_mmu/memory.h"
#include "models/cpu_mmu/mm.h"
#include "models/cpu_mmu/mm_internal.h"
#include "models/cpu_mmu/page_table.h"
#include "models/cpu_mmu/vm_operations.h"
#include "sim/assert.h"

namespace hmmsim {

VaResult Mm::getUnmappedArea(Va addr, std::uint64_t len, std::uint64_t align, int flags) const {
  const std::uint64_t task = params_.taskSize.value();
  if (len == 0 || len > task) return VaResult{Errno::NoMem, Va()};
  if (flags & MAP_FIXED) {
    if (addr.value() > task - len) return VaResult{Errno::NoMem, Va()};
    return VaResult{Errno::Ok, addr};
  }
  auto& tree = const_cast<Mm*>(this)->vmas_;
  // vm_start_gap: the stack guard gap below a VM_GROWSDOWN vma counts as occupied.
  auto startGap = [&](const Vma& v) {
    const std::uint64_t s = v.vmStart.value();
    if (!(v.vmFlags & VM_GROWSDOWN)) return s;
    return s > params_.stackGuardGap ? s - params_.stackGuardGap : 0;
  };
  auto isFree = [&](std::uint64_t a) {
    const Vma* next = const_cast<Mm*>(this)->findVma(Va(a));
    return !next || a + len <= startGap(*next);
  };
  const std::uint64_t low = std::max<std::uint64_t>(params_.mmapMinAddr.value(), kPageSize);
  // The hint: honoured when the page-aligned address (raised to mmap_min_addr) is free.
  if (addr.value() != 0) {
    std::uint64_t a = std::max(addr.alignUp(kPageSize).value(), low);
    if (a <= task - len && isFree(a)) return VaResult{Errno::Ok, Va(a)};
  }
  // Top-down (arch_get_unmapped_area_topdown): the highest gap below mmap_base that fits.
  const std::uint64_t high = params_.mmapBase.value();
  auto fitDown = [&](std::uint64_t gapStart, std::uint64_t gapEnd, std::uint64_t& out) {
    if (gapEnd < gapStart || gapEnd - gapStart < len) return false;
    std::uint64_t a = (gapEnd - len) & ~(align - 1);
    if (a < gapStart) return false;
    out = a;
    return true;
  };
  {
    std::uint64_t gapEnd = high;
    auto it = tree.lower_bound(Va(high));  // first vma starting at or above mmap_base
    while (it != tree.begin()) {
      --it;
      const std::uint64_t vs = it->vmStart.value(), ve = it->vmEnd.value();
      if (ve < gapEnd) {
        std::uint64_t out;
        if (fitDown(std::max(ve, low), gapEnd, out)) return VaResult{Errno::Ok, Va(out)};
      }
      gapEnd = std::min(gapEnd, startGap(*it));
      (void)vs;
      if (gapEnd <= low) break;
    }
    std::uint64_t out;
    if (gapEnd > low && fitDown(low, gapEnd, out)) return VaResult{Errno::Ok, Va(out)};
  }
  // Bottom-up fallback above mmap_base (the kernel retries with the legacy layout).
  {
    std::uint64_t a = (high + align - 1) & ~(align - 1);
    auto it = tree.lower_bound(Va(0));
    for (; it != tree.end() && a <= task - len; ++it) {
      if (it->vmEnd.value() <= a) continue;
      if (startGap(*it) >= a + len) break;
      a = (it->vmEnd.value() + align - 1) & ~(align - 1);
    }
    if (a <= task - len && isFree(a)) return VaResult{Errno::Ok, Va(a)};
  }
  return VaResult{Errno::NoMem, Va()};
}

Errno mmPopulate(Mm& mm, Va start, Va end, const PopulateMode& mode) {
  MmapReadLock lock(mm);
  Errno result = Errno::Ok;
  Va a = start;
  while (a < end) {
    Vma* v = mm.vmaLookup(a);
    if (!v) {
      // A hole: __mm_populate skips to the next vma; faultin_page_range (madvise) fails.
      Vma* next = mm.findVma(a);
      if (!mode.mmPopulate || !next || next->vmStart >= end) return mode.mmPopulate ? result : Errno::Fault;
      a = next->vmStart;
      continue;
    }
    const Va stop = std::min(end, v->vmEnd);
    auto fail = [&](Errno e) {
      if (!mode.ignoreErrors && result == Errno::Ok) result = e;
      a = stop;
    };
    if (v->vmFlags & (VM_IO | VM_PFNMAP)) {  // nothing to populate; POPULATE_* would say EFAULT
      if (mode.forceWrite || mode.forceRead) return Errno::Fault;
      a = stop;
      continue;
    }
    if (mode.mmPopulate) {
      // populate_vma_page_range: VM_LOCKONFAULT vmas are left to fault; inaccessible
      // (PROT_NONE) ones fail without FOLL_FORCE.
      if (v->vmFlags & VM_LOCKONFAULT) {
        a = stop;
        continue;
      }
      if (!(v->vmFlags & (VM_READ | VM_WRITE | VM_EXEC))) {
        fail(Errno::Fault);
        if (!mode.ignoreErrors) return result;
        continue;
      }
    }
    const bool write =
        mode.forceWrite || (!mode.forceRead && (v->vmFlags & (VM_WRITE | VM_SHARED)) == VM_WRITE);
    const std::uint64_t step = v->kernelPagesize();
    for (; a < stop; a = (a + step).alignDown(step)) {
      VmFaultResult r = handleMmFault(*v, a, write ? kFaultFlagWrite : 0u);
      if (isFaultError(r)) {
        Errno e = vmFaultToErrno(r);
        fail(e == Errno::NoMem ? Errno::NoMem : Errno::Fault);
        if (!mode.ignoreErrors) return result;
        break;
      }
    }
    a = std::max(a, stop);
  }
  return result;
}

Errno MmInternals::expandDownwards(Mm& mm, Vma& vma, Va address) {
  HMMSIM_ASSERT(vma.vmFlags & VM_GROWSDOWN, "expandDownwards on a vma without VM_GROWSDOWN");
  address = address.alignDown(kPageSize);
  if (address >= vma.vmStart) return Errno::Ok;
  if (address < mm.params().mmapMinAddr) return Errno::Perm;
  // stack_guard_gap to the vma below, unless it is a stack too or inaccessible.
  auto it = mm.vmas_.iterator_to(vma);
  if (it != mm.vmas_.begin()) {
    const Vma& prev = *std::prev(it);
    if (!(prev.vmFlags & VM_GROWSDOWN) && (prev.vmFlags & (VM_READ | VM_WRITE | VM_EXEC)) &&
        address - prev.vmEnd < mm.params().stackGuardGap)
      return Errno::NoMem;
  }
  // acct_stack_growth: RLIMIT_STACK, RLIMIT_MEMLOCK for a locked stack; the pgoff must not wrap.
  const std::uint64_t grow = (vma.vmStart - address) >> kPageShift;
  if (grow > vma.vmPgoff) return Errno::NoMem;
  if (vma.vmEnd - address > mm.params().rlimitStack) return Errno::NoMem;
  if (!mlockFutureOk(mm, vma.vmFlags, grow << kPageShift)) return Errno::NoMem;
  if (vma.isAnonymous()) mm.anonVmaPrepare(vma);
  // The tree stays ordered: the new start is above the previous vma's end.
  vma.vmStart = address;
  vma.vmPgoff -= grow;
  vma.vmFlags |= VM_SOFTDIRTY;
  ++mm.mmStats().stackExpansions;
  return Errno::Ok;
}

namespace {

/// What do_mmap decided about a request before mmap_region places it.
struct MmapRequest {
  std::shared_ptr<File> file;          ///< nullptr for anonymous memory (the fd is ignored)
  std::uint64_t len = 0;               ///< rounded up to the page (hugetlb: huge page) size
  std::uint64_t pgoff = 0;             ///< offset >> PAGE_SHIFT
  bool shared = false;                 ///< MAP_SHARED or MAP_SHARED_VALIDATE
  bool anon = false;                   ///< MAP_ANONYMOUS
  bool hugetlb = false;                ///< MAP_HUGETLB
  bool fixed = false;                  ///< MAP_FIXED or MAP_FIXED_NOREPLACE
  unsigned hugeShift = 0;              ///< hugetlb: log2 of the huge page size, else 0
  std::uint64_t hugeSize = kPageSize;  ///< the alignment of a fixed address
  VmFlags vmFlags = 0;                 ///< the new vma's flags
  bool populate = false;               ///< MAP_POPULATE or locked: mm_populate after the lock is dropped
};

/// ksys_mmap_pgoff / do_mmap's argument checks: mapping type, file or anonymous, hugetlb size
/// (hstate_sizelog), length rounding and overflow, fixed-address bounds. Fills everything but
/// vmFlags/populate. Returns Ok, Inval, NoMem or Perm (a fixed address below mmap_min_addr).
Errno mmapCheckArgs(const Mm& mm, Va addr, std::uint64_t len, int flags, const std::shared_ptr<File>& fileIn,
                    std::uint64_t offset, MmapRequest& req) {
  if (offset & (kPageSize - 1)) return Errno::Inval;  // ksys_mmap_pgoff
  const int type = flags & MAP_TYPE;
  if (type != MAP_SHARED && type != MAP_PRIVATE && type != MAP_SHARED_VALIDATE) return Errno::Inval;
  req.shared = type != MAP_PRIVATE;
  req.anon = (flags & MAP_ANONYMOUS) != 0;
  req.file = req.anon ? nullptr : fileIn;           // the fd is ignored for anonymous maps
  if (!req.anon && !req.file) return Errno::Inval;  // the kernel's EBADF
  req.hugetlb = (flags & MAP_HUGETLB) != 0;
  if (req.hugetlb && req.file) return Errno::Inval;  // not a hugetlbfs file
  if (len == 0) return Errno::Inval;
  // hstate_sizelog: the huge page size MAP_HUGE_* asks for (0: the default hstate, 2 MiB);
  // a size with no hstate is EINVAL.
  if (req.hugetlb) {
    const unsigned sizelog = unsigned(flags >> MAP_HUGE_SHIFT) & MAP_HUGE_MASK;
    req.hugeShift = sizelog == 0 ? kPmdShift : sizelog;
    if (req.hugeShift != kPmdShift && req.hugeShift != kPudShift) return Errno::Inval;
    req.hugeSize = 1ull << req.hugeShift;
    const std::uint64_t r = (len + req.hugeSize - 1) & ~(req.hugeSize - 1);
    if (r == 0) return Errno::NoMem;
    len = r;
  }
  if (!pageAlign(len, len)) return Errno::NoMem;
  req.len = len;
  req.pgoff = offset >> kPageShift;
  if (req.pgoff + (len >> kPageShift) < req.pgoff) return Errno::Inval;  // EOVERFLOW
  req.fixed = (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) != 0;
  const std::uint64_t task = mm.params().taskSize.value();
  if (len > task) return Errno::NoMem;
  if (req.fixed) {
    if (!addr.isAligned(req.hugeSize)) return Errno::Inval;
    if (addr.value() > task - len) return Errno::NoMem;
    if (addr < mm.params().mmapMinAddr) return Errno::Perm;
  }
  return Errno::Ok;
}

/// do_mmap's vm_flags: calc_vm_prot_bits, the file's access mode for shared mappings,
/// calc_vm_flag_bits, mm->def_flags, and the mlock limits. Returns Ok, Acces (the file's mode
/// forbids the access), Inval (MAP_GROWSDOWN on shared anonymous memory), Perm (MAP_LOCKED
/// without mlock rights) or Again (RLIMIT_MEMLOCK).
Errno mmapVmFlags(const Mm& mm, int prot, int flags, MmapRequest& req) {
  VmFlags vmFlags = calcVmProtBits(prot) | VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC;
  if (req.file) {
    if (req.shared) {
      if ((prot & PROT_WRITE) && !req.file->writable()) return Errno::Acces;
      vmFlags |= VM_SHARED | VM_MAYSHARE;
      if (!req.file->writable()) vmFlags &= ~(VM_MAYWRITE | VM_SHARED);
    }
    if (!req.file->readable()) return Errno::Acces;
  } else if (req.shared) {
    if (flags & MAP_GROWSDOWN) return Errno::Inval;  // do_mmap: no growing shared anon
    vmFlags |= VM_SHARED | VM_MAYSHARE;
  }
  if (flags & MAP_GROWSDOWN) vmFlags |= VM_GROWSDOWN;
  vmFlags |= VM_SOFTDIRTY;  // mmap_region: a new mapping is all soft-dirty
  if (flags & MAP_LOCKED) vmFlags |= VM_LOCKED;
  if (flags & MAP_NORESERVE) vmFlags |= VM_NORESERVE;
  if (req.hugetlb) vmFlags |= VM_HUGETLB | VM_DONTEXPAND;
  vmFlags |= mm.defFlags();  // mm->def_flags: mlockall(MCL_FUTURE)
  if ((flags & MAP_LOCKED) && !MmInternals::canDoMlock(mm)) return Errno::Perm;
  if (!MmInternals::mlockFutureOk(mm, vmFlags, req.len)) return Errno::Again;
  req.vmFlags = vmFlags;
  req.populate = (flags & MAP_POPULATE) || (vmFlags & VM_LOCKED);
  return Errno::Ok;
}

/// The alignment get_unmapped_area must honour: the huge page size for hugetlb,
/// thp_get_unmapped_area's PMD alignment for large private anonymous mappings, else a page.
std::uint64_t mmapAlignment(const Mm& mm, const MmapRequest& req) {
  if (req.hugetlb) return req.hugeSize;
  if (req.anon && !req.shared && mm.params().thpAlignAnon && req.len >= kPmdSize) return kPmdSize;
  return kPageSize;
}

/// mmap_region: reserve hugetlb pages, unmap what a fixed mapping replaces, allocate the vma,
/// call the file's mmap (undoing what it inserted if it fails), link and merge the vma.
/// Returns Ok, NoMem (hugetlb pool short), the unmap's error, or the file's mmap error.
Errno mmapRegion(Mm& mm, Va start, const MmapRequest& req) {
  const Va end = start + req.len;
  const std::uint64_t hugePages = req.len >> req.hugeShift;
  if (req.hugetlb && !MmInternals::hugetlbReserve(mm, req.hugeShift, hugePages)) return Errno::NoMem;

  // MAP_FIXED over existing mappings: unmap them first (one MMU_NOTIFY_UNMAP round).
  if (req.fixed) {
    if (Errno e = MmInternals::unmapRange(mm, start, end); e != Errno::Ok) {
      if (req.hugetlb) MmInternals::hugetlbUnreserve(mm, req.hugeShift, hugePages);
      return e;
    }
  }

  VmaPtr v = MmInternals::allocVma();
  v->vmStart = start;
  v->vmEnd = end;
  v->vmFlags = req.vmFlags;
  v->vmMm = &mm;
  v->vmHugetlbShift = static_cast<std::uint8_t>(req.hugeShift);
  if (req.file) {
    v->vmPgoff = req.pgoff;
    v->vmFile = req.file;
    // call_mmap: the file's mmap installs its vm_ops (page cache, or the driver's).
    if (Errno e = req.file->fOp().mmap(*req.file, *v); e != Errno::Ok) {
      // The kernel's error path (unmap_region after a failed call_mmap): whatever the driver
      // inserted is zapped inside an MMU_NOTIFY_UNMAP round; the vma was never opened.
      MmuNotifierRange range;
      mmuNotifierRangeInit(range, MmuNotifierEvent::Unmap, 0, &mm, start, end);
      mm.invalidateRangeStart(range);
      zapPageRange(*v, start, end, nullptr);
      mm.invalidateRangeEnd(range);
      mm.pageTable().freePgtables(start, end);
      v.reset();  // never linked: freed without close()
      if (req.hugetlb) MmInternals::hugetlbUnreserve(mm, req.hugeShift, hugePages);
      return e;
    }
  } else if (req.shared) {
    // shmem_zero_setup: shared anonymous memory is an unnamed shmem file of the mapping's size.
    v->vmPgoff = 0;
    v->vmFile = tmpfile(mm.physMem(), req.len, "dev/zero");
    v->vmOps = &filemapVmOps();
  } else {
    v->vmPgoff = start.value() >> kPageShift;
  }
  // mmap_region: special and hugetlb vmas are never locked.
  if ((v->vmFlags & VM_SPECIAL) || v->isHugetlb()) v->vmFlags &= ~VM_LOCKED_MASK;
  Vma& linked = MmInternals::linkVma(mm, std::move(v));
  if (!req.hugetlb) MmInternals::mergeAround(mm, linked);
  return Errno::Ok;
}

}  // namespace

VaResult Mm::mmap(Va addr, std::uint64_t len, int prot, int flags, const std::shared_ptr<File>& fileIn,
                  std::uint64_t offset) {
  MmInternals::enter(*this);
  ++mmStats_.mmapCalls;
  auto failed = [&](Errno e) {
    MmInternals::leave(*this);
    return VaResult{MmInternals::fail(*this, e), Va()};
  };
  // do_mmap: check the arguments, compute the flags, find the place; then mmap_region.
  MmapRequest req;
  if (Errno e = mmapCheckArgs(*this, addr, len, flags, fileIn, offset, req); e != Errno::Ok) return failed(e);
  if (Errno e = mmapVmFlags(*this, prot, flags, req); e != Errno::Ok) return failed(e);
  Va start = addr;
  if (!req.fixed) {
    VaResult r = getUnmappedArea(addr, req.len, mmapAlignment(*this, req), flags & ~MAP_FIXED);
    if (!r.ok()) return failed(r.err);
    start = r.addr;
  }
  if ((flags & MAP_FIXED_NOREPLACE) && findVmaIntersection(start, start + req.len))  // wins over MAP_FIXED
    return failed(Errno::Exist);
  if (Errno e = mmapRegion(*this, start, req); e != Errno::Ok) return failed(e);
  MmInternals::leave(*this);

  if (req.populate) {
    // mm_populate runs after the write lock is dropped; its failure does not fail mmap.
    mmPopulateIgnoringErrors(*this, start, start + req.len);
  }
  return VaResult{Errno::Ok, start};
}

Errno Mm::munmap(Va addr, std::uint64_t len) {
  MmInternals::enter(*this);
  ++mmStats_.munmapCalls;
  auto done = [&](Errno e) {
    MmInternals::leave(*this);
    return e == Errno::Ok ? e : MmInternals::fail(*this, e);
  };
  const std::uint64_t task = params_.taskSize.value();
  if (!addr.isAligned(kPageSize) || addr.value() > task || len > task - addr.value())
    return done(Errno::Inval);
  std::uint64_t alen;
  if (!pageAlign(len, alen) || alen == 0) return done(Errno::Inval);
  return done(MmInternals::unmapRange(*this, addr, addr + alen));
}

}  // namespace hmmsim
