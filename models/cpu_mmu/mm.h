#pragma once
// Mm: one process address space, the kernel's struct mm_struct plus the system calls that shape
// it (mm/mmap.c, mm/mprotect.c, mm/mremap.c, mm/madvise.c, kernel/fork.c dup_mmap, exit_mmap).
//
// What it models:
// - The VMA set (a Boost.Intrusive rbtree keyed by vmStart), find_vma/vma_lookup, splitting and
//   merging of vmas, deterministic top-down address selection (get_unmapped_area).
// - mmap (anonymous private/shared, file private/shared, device files through
//   FileOperations::mmap, MAP_FIXED, MAP_FIXED_NOREPLACE, MAP_HUGETLB, MAP_POPULATE), munmap,
//   mprotect, mlock/mlock2/munlock/mlockall/munlockall (and MAP_LOCKED), madvise (DONTNEED,
//   FREE, HUGEPAGE, NOHUGEPAGE, COLLAPSE, DONTFORK/DOFORK,
//   POPULATE_READ/WRITE, WILLNEED/NORMAL/RANDOM/SEQUENTIAL as no-ops on data), mremap
//   (MAYMOVE, FIXED, DONTUNMAP), fork (dup_mmap) and exit (exit_mmap), each raising the same
//   mmu-notifier rounds (event and range) as the kernel, and each returning the kernel's error
//   codes with nothing changed on a bad call.
// - The mm's page table, its mmu-notifier subscriptions, its rss counters (MM_ANONPAGES, ...),
//   and the mmap lock (see below).
// What it leaves out: rlimits other than RLIMIT_MEMLOCK, and overcommit accounting (mmap never
//   fails for lack of memory; faults do; VM_ACCOUNT is never set, so it never keeps two vmas
//   from merging as it can in the kernel after mprotect(PROT_WRITE)), the PG_mlocked /
//   unevictable LRU state of pages (mlock's effects are the vma flags, populating, locked_vm
//   and reclaim skipping locked vmas), brk, userfaultfd, KSM, NUMA policy, the per-VMA lock,
//   vm_page_prot caching, MAP_SYNC/MAP_32BIT, anon_vma_name.
// - Stack growth: MAP_GROWSDOWN vmas grow down on a user fault below them (expand_stack, with
//   stack_guard_gap, RLIMIT_STACK and the locked-stack limit); get_unmapped_area keeps the
//   guard gap free; mprotect(PROT_GROWSDOWN). GUP does not grow stacks (kernel >= 6.5).
// Timing: none (pure core). A SystemC shell charges syscalls and faults.
//
// The mmap lock: a sleeping reader/writer lock (RwSemaphore, sim/rwsem.h) used through the
// kernel's mmap_lock.h API (models/cpu_mmu/mmap_lock.h). The syscalls take it for writing
// themselves; code that walks the mm on behalf of a driver (hmm_range_fault, GUP, migrate_vma)
// runs under it for reading. Contention sleeps through the mm's Blocker: a pure unit test (one
// context) asserts, as a deadlock; SystemC threads suspend until the holder releases. Lock order
// and sleeping rules are checked per execution context by lockdep (sim/lockdep.h).

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <boost/intrusive/set.hpp>

#include "models/cpu_mmu/huge_memory.h"
#include "models/cpu_mmu/mmap_lock.h"
#include "models/cpu_mmu/mmu_notifier.h"
#include "models/cpu_mmu/vm_fault.h"
#include "models/cpu_mmu/vma.h"
#include "sim/assert.h"
#include "sim/errno.h"
#include "sim/rwsem.h"
#include "sim/stats.h"
#include "sim/strong_types.h"

namespace hmmsim {

class File;
class PageTable;
class PhysMem;

/// Parameters of an address space. Defaults are x86-64 Linux with 4-level paging.
struct MmParams {
  /// TASK_SIZE (bytes): one past the highest user address. Default 0x7ffffffff000 (47-bit).
  Va taskSize{0x7ffffffff000ull};
  /// mm->mmap_base: top of the top-down mmap area; new mappings go below it. Default
  /// 0x7f0000000000 (fixed: hmmsim does not randomize, so runs are reproducible).
  Va mmapBase{0x7f0000000000ull};
  /// vm.mmap_min_addr (bytes): lowest address mmap hands out or accepts with MAP_FIXED
  /// (EPERM below it in the kernel; hmmsim returns EPERM too). Default 65536.
  Va mmapMinAddr{0x10000ull};
  /// THP policy for anonymous faults (transparent_hugepage/enabled, use_zero_page); read by the
  /// fault path (huge_memory.h). Default: madvise, huge zero page on.
  ThpParams thp;
  /// Align anonymous mappings of at least 2 MiB to 2 MiB (thp_get_unmapped_area for anonymous
  /// memory, kernel >= 6.7). Default true.
  bool thpAlignAnon = true;
  /// Hugetlb pool of 2 MiB pages available to MAP_HUGETLB in this mm (the kernel's hstate is
  /// system-wide; per-mm here because hmmsim runs one process per mm). mmap with MAP_HUGETLB
  /// reserves from it and fails with ENOMEM when it is short (hugetlb_reserve_pages).
  /// Default 0 (like a system with nr_hugepages = 0, where hmm-tests SKIP the hugetlb test).
  std::uint64_t hugetlbPages = 0;
  /// The same for 1 GiB pages (MAP_HUGETLB | MAP_HUGE_1GB; the kernel's
  /// hugepages-1048576kB/nr_hugepages). Default 0.
  std::uint64_t hugetlbPages1G = 0;
  /// RLIMIT_MEMLOCK (bytes): the most mlock, mlockall, MAP_LOCKED and a locked mremap may lock
  /// (mm->locked_vm). 0 also makes mlock fail with EPERM (can_do_mlock). Default 8 MiB (the
  /// kernel's default since 5.16).
  std::uint64_t rlimitMemlock = 8ull << 20;
  /// The process has CAP_IPC_LOCK: RLIMIT_MEMLOCK does not apply. Default false.
  bool capIpcLock = false;
  /// RLIMIT_STACK (bytes): the most a VM_GROWSDOWN vma may grow to by faults below it.
  /// Default 8 MiB.
  std::uint64_t rlimitStack = 8ull << 20;
  /// stack_guard_gap (bytes): a growing stack keeps this far from the vma below it, and
  /// get_unmapped_area keeps new mappings this far below a VM_GROWSDOWN vma. Default 1 MiB
  /// (256 pages, the kernel's default).
  std::uint64_t stackGuardGap = 1ull << 20;
  /// fault_around_bytes (debugfs): a read fault on an empty pte of a file or shared-anonymous
  /// vma first maps the pages already in the page cache in the naturally aligned window of this
  /// size around it (do_fault_around), clipped to the vma and to the PTE table. Rounded down to
  /// a power of two pages and clamped to 2 MiB (PTRS_PER_PTE pages) as the kernel's setter
  /// does; 4096 or less disables fault-around. The kernel's knob is system-wide. Unit: bytes.
  /// Default 65536.
  std::uint64_t faultAroundBytes = 64ull << 10;
};

/// rss counters (enum of MM_FILEPAGES, MM_ANONPAGES, MM_SWAPENTS, MM_SHMEMPAGES).
enum class MmCounter : unsigned {
  FilePages = 0,   ///< MM_FILEPAGES: page-cache pages mapped (file-backed, not shmem)
  AnonPages = 1,   ///< MM_ANONPAGES: anonymous pages mapped (incl. device-private entries)
  SwapEnts = 2,    ///< MM_SWAPENTS: swap entries (unused: no swap)
  ShmemPages = 3,  ///< MM_SHMEMPAGES: shmem/tmpfs pages mapped (shared anonymous, tmpfile)
};
inline constexpr unsigned kNrMmCounters = 4;

/// An address or an error (the kernel's "unsigned long or -errno" returns of mmap/mremap).
struct VaResult {
  Errno err = Errno::Ok;
  Va addr;  ///< valid when ok()
  bool ok() const { return err == Errno::Ok; }
};

class Mm;
/// fork()'s result: the child's address space, or an error (then `child` is null and the
/// parent is as before, apart from COW write-protection already applied, as in the kernel).
struct ForkResult {
  Errno err = Errno::Ok;
  std::unique_ptr<Mm> child;
  bool ok() const { return err == Errno::Ok; }
};

/// Counters of the mm's stats group (names in quotes). Tests assert on them.
struct MmStats {
  explicit MmStats(StatsGroup& g);
  Counter& mmapCalls;          ///< "mmap_calls": mmap calls, including failed ones
  Counter& munmapCalls;        ///< "munmap_calls"
  Counter& mprotectCalls;      ///< "mprotect_calls"
  Counter& mremapCalls;        ///< "mremap_calls"
  Counter& madviseCalls;       ///< "madvise_calls"
  Counter& forkCalls;          ///< "fork_calls"
  Counter& failedCalls;        ///< "failed_calls": syscalls above that returned an error
  Counter& vmaSplits;          ///< "vma_splits": __split_vma
  Counter& vmaMerges;          ///< "vma_merges": vma_merge joined two or three vmas
  Counter& stackExpansions;    ///< "stack_expansions": a fault below a VM_GROWSDOWN vma grew it
  Counter& lazyfreeDiscarded;  ///< "lazyfree_discarded": clean MADV_FREE pages reclaimed
  /// "notify_<event>" (unmap, clear, protection_vma, protection_page, soft_dirty, release,
  /// migrate, exclusive): invalidate_range_start rounds raised on this mm, per event.
  std::array<Counter*, kMmuNotifierEventCount> notifyEvents;
  /// "rss_anon", "rss_file", "rss_shmem" (pages): current rss, refreshed on each change.
  Scalar& rssAnon;
  Scalar& rssFile;
  Scalar& rssShmem;
};

class Mm {
 public:
  using VmaTree = boost::intrusive::set<Vma, boost::intrusive::base_hook<VmaTreeHook>,
                                        boost::intrusive::key_of_value<VmaStartKey>,
                                        boost::intrusive::constant_time_size<true>>;

  /// `physMem` provides frames (not owned, must outlive the Mm). `name` names the stats group
  /// ("top.proc0.mm").
  Mm(PhysMem& physMem, const std::string& name, const MmParams& params = {});
  /// Runs exitMmap() if it has not run.
  ~Mm();
  Mm(const Mm&) = delete;
  Mm& operator=(const Mm&) = delete;

  const std::string& name() const { return stats_.name(); }
  const MmParams& params() const { return params_; }
  PhysMem& physMem() const { return physMem_; }
  PageTable& pageTable() { return *pageTable_; }
  /// mm->notifier_subscriptions (always present here; the kernel allocates it lazily).
  MmuNotifierSubscriptions& notifierSubscriptions() { return *subscriptions_; }
  StatsGroup& stats() { return stats_; }
  MmStats& mmStats() { return mmStats_; }
  /// The fault path's vm-event counters (PGFAULT, THP_*, ...), registered in stats().
  VmEventCounters& vmEvents() { return vmEvents_; }
  /// Where faults on migration entries of this mm sleep (migration_entry_wait; the kernel uses
  /// the folio lock's hashed wait queue) and what the end of a migration wakes
  /// (migrationEntryWake in memory.h).
  WaitQueue& migrationWaitQueue() { return migrationWq_; }
  /// How a kernel sleep blocks the calling context for this mm: the notifier subscriptions'
  /// Blocker (pure C++: asserts; SystemC: ScBlocker installed by the platform).
  Blocker& blocker() { return subscriptions_->blocker(); }

  // ---- vma lookup (mmap lock held in either mode) ----------------------------------------
  /// find_vma(): the first vma with vmEnd > addr (it may start above addr), or null.
  Vma* findVma(Va addr);
  /// vma_lookup(): the vma containing addr, or null.
  Vma* vmaLookup(Va addr);
  /// find_vma_intersection(): the first vma overlapping [start, end), or null.
  Vma* findVmaIntersection(Va start, Va end);
  /// The vma set in address order (iterate with range-for; do not modify through it).
  const VmaTree& vmas() const { return vmas_; }
  /// mm->map_count: number of vmas.
  std::size_t mapCount() const { return vmas_.size(); }
  /// Total mapped bytes (mm->total_vm in bytes).
  std::uint64_t totalVm() const;

  // ---- rss (get_mm_counter / add_mm_counter) ---------------------------------------------
  std::int64_t mmCounter(MmCounter c) const { return rss_[static_cast<unsigned>(c)]; }
  /// add_mm_counter (inline: the fault and zap paths call it per page).
  void addMmCounter(MmCounter c, std::int64_t pages) {
    auto& slot = rss_[static_cast<unsigned>(c)];
    slot += pages;
    HMMSIM_ASSERT(slot >= 0,
                  "mm " << name() << ": rss counter " << static_cast<unsigned>(c) << " went negative");
    switch (c) {
      case MmCounter::AnonPages:
        mmStats_.rssAnon.set(double(slot));
        break;
      case MmCounter::FilePages:
        mmStats_.rssFile.set(double(slot));
        break;
      case MmCounter::ShmemPages:
        mmStats_.rssShmem.set(double(slot));
        break;
      case MmCounter::SwapEnts:
        break;
    }
  }
  /// get_mm_rss(): file + anon + shmem pages.
  std::int64_t rss() const;
  /// mm->hugetlb_usage (HugetlbPages of /proc/pid/status), in 4 KiB pages: hugetlb pages
  /// mapped in this mm. Hugetlb memory is not part of the rss counters, as in the kernel.
  std::int64_t hugetlbUsage() const { return hugetlbUsage_; }

  // ---- mmap lock (mmap_lock.h's functions take and release it) ---------------------------
  /// mm->mmap_lock.
  RwSemaphore& mmapLock() { return mmapLock_; }
  /// rwsem_is_locked(&mm->mmap_lock): some context holds it (use mmapLockHeld(mm) for "I do").
  bool mmapLocked() const { return mmapLock_.isLocked(); }
  bool mmapWriteLocked() const { return mmapLock_.writeLocked(); }

  // ---- notifier rounds ---------------------------------------------------------------------
  /// mmu_notifier_invalidate_range_start/end on this mm, counting the round per event in
  /// mmStats(). Every notifier round the mm or the fault path raises goes through these two
  /// (the fault path too, so the per-event counts are complete).
  void invalidateRangeStart(MmuNotifierRange& range);
  void invalidateRangeEnd(MmuNotifierRange& range);
  /// Convenience: one blockable round for [start, end) with `event` (and `owner`, normally null).
  void notifyRange(MmuNotifierEvent event, Va start, Va end, const void* owner = nullptr,
                   const std::function<void()>& body = {});

  // ---- system calls (they take the mmap write lock themselves) --------------------------
  /// mmap(2). `file` is null for MAP_ANONYMOUS. Returns the mapped address, or:
  ///  Inval  len == 0; offset not page-aligned; MAP_TYPE not SHARED/PRIVATE/SHARED_VALIDATE;
  ///         MAP_FIXED with an unaligned addr (huge-page aligned for MAP_HUGETLB); no file and
  ///         no MAP_ANONYMOUS; MAP_HUGETLB with a file, or with a MAP_HUGE_* size that has no
  ///         hstate (2 MiB and 1 GiB have one); offset + len overflowing; (page-rounded) len
  ///         overflowing. MAP_HUGETLB rounds len up to the huge page size.
  ///  NoMem  len rounds past TASK_SIZE; no hole large enough; a MAP_FIXED range beyond
  ///         TASK_SIZE; MAP_HUGETLB beyond the hugetlb pool (hugetlb_reserve_pages).
  ///  Perm   MAP_FIXED below mmap_min_addr.
  ///  Exist  MAP_FIXED_NOREPLACE over an existing mapping.
  ///  Acces  file not opened for reading; MAP_SHARED with PROT_WRITE on a file without
  ///         FMODE_WRITE.
  ///  NoDev  the file cannot be mapped (device file whose fops->mmap is absent is not a case
  ///         here: every FileOperations has mmap); errors of FileOperations::mmap unchanged.
  ///         After a failing FileOperations::mmap, whatever the driver inserted is zapped in
  ///         one MMU_NOTIFY_UNMAP round over the range (the kernel's unmap_region), and a
  ///         MAP_FIXED call has already unmapped the old range (as in the kernel).
  /// MAP_FIXED over existing mappings unmaps them first with one MMU_NOTIFY_UNMAP round over
  /// [addr, addr+len) (do_vmi_munmap in mmap_region), splitting partly covered vmas and THPs.
  /// MAP_POPULATE faults the range in (mm_populate); a failure there does not fail mmap.
  VaResult mmap(Va addr, std::uint64_t len, int prot, int flags, const std::shared_ptr<File>& file = nullptr,
                std::uint64_t offset = 0);
  /// munmap(2). Unmaps every vma part in [addr, addr+len): one MMU_NOTIFY_UNMAP round over
  /// [addr, addr+len page-rounded) when any vma intersects (none otherwise), partial vmas split
  /// (THPs straddling a boundary split with their own MMU_NOTIFY_CLEAR round), pages freed.
  /// Returns Ok (also when nothing was mapped there), or Inval (unaligned addr, len == 0, range
  /// beyond TASK_SIZE; a hugetlb vma split off its huge page boundaries), NoMem (the split would
  /// exceed the vma limit: not modelled, never returned).
  Errno munmap(Va addr, std::uint64_t len);
  /// mprotect(2). Returns Ok, or Inval (unaligned addr, prot has unknown bits, end < start),
  /// NoMem (part of [addr, addr+len) is not mapped: the kernel changes the vmas before the hole
  /// and then fails; hmmsim checks first and changes nothing — a deliberate difference so that
  /// "bad calls change nothing" holds), Acces (PROT_WRITE on a shared file mapping opened
  /// read-only: VM_MAYWRITE missing). One MMU_NOTIFY_PROTECTION_VMA round per vma part whose
  /// flags change (change_protection's range), vmas split at the boundaries and merged with
  /// equal neighbours afterwards (vma_merge), THPs straddling a boundary split.
  Errno mprotect(Va addr, std::uint64_t len, int prot);
  /// madvise(2). Returns Ok, or:
  ///  Inval  unaligned addr; unknown advice; len overflowing; DONTNEED/FREE on a VM_LOCKED or
  ///         VM_PFNMAP vma; FREE on a vma that is not private anonymous (or hugetlb); DONTNEED
  ///         on hugetlb at a start off its huge page boundaries; DOFORK on VM_IO; WIPEONFORK on a
  ///         non-private-anon vma; POPULATE_* on VM_IO/VM_PFNMAP; COLLAPSE outside private anonymous vmas.
  ///  NoMem  part of [addr, addr+len) is not mapped. The kernel applies the advice to the
  ///         mapped parts and then returns ENOMEM; hmmsim refuses first and changes nothing
  ///         (deliberate, so that a bad call changes nothing).
  ///  Fault  POPULATE_* hit a page that cannot be faulted in (SIGBUS/SIGSEGV).
  ///  Again  COLLAPSE could not collapse some piece (shared/pinned page, device entry);
  ///         NoMem when no 2 MiB frame was free for it.
  ///  Acces/OpNotSupp  MADV_REMOVE: checks only (hole punching is not modelled).
  /// Events:
  ///  DONTNEED  MMU_NOTIFY_CLEAR per vma part (zap_page_range_single), pages freed;
  ///  FREE      MMU_NOTIFY_CLEAR per vma part; order-0 anonymous pages mapped once (and whole
  ///            PMD-mapped THPs) become lazyfree (pte clean+old, folio !swapbacked): a later
  ///            reclaimLazyfree() discards them while they stay clean; a write keeps them;
  ///  HUGEPAGE/NOHUGEPAGE/DONTFORK/DOFORK/WIPEONFORK/KEEPONFORK/NORMAL/RANDOM/SEQUENTIAL/
  ///            DONTDUMP/DODUMP: vma flag change with splits (a THP straddling a split is split:
  ///            CLEAR round on its 2 MiB) and merges; no other round;
  ///  COLLAPSE  per 2 MiB-aligned piece inside the range: collapseHugePage (CLEAR round on it);
  ///  WILLNEED  nothing (no backing store); POPULATE_READ/WRITE: faults, no round of its own.
  Errno madvise(Va addr, std::uint64_t len, int advice);
  /// mlock(2) / mlock2(2) (`flags`: 0 or MLOCK_ONFAULT): set VM_LOCKED (and VM_LOCKONFAULT)
  /// on [addr, addr + len) (addr rounded down, len up to pages), splitting and merging vmas
  /// (VM_SPECIAL and hugetlb vmas are left unlocked, as mlock_fixup does), then fault every page
  /// in (__mm_populate: write faults for private writable vmas, breaking COW) unless ONFAULT.
  /// No notifier round of its own. Returns Ok, or:
  ///  Inval  unknown mlock2 flags.
  ///  Perm   RLIMIT_MEMLOCK is 0 without CAP_IPC_LOCK (can_do_mlock).
  ///  NoMem  a hole in the range (nothing changes: the kernel locks the part before the hole
  ///         first); locking would exceed RLIMIT_MEMLOCK (pages already locked in the range do
  ///         not count twice); populating hit an inaccessible (PROT_NONE) page or SIGBUS (the
  ///         kernel's EFAULT -> ENOMEM; the vmas stay locked).
  ///  Again  populating ran out of memory (ENOMEM -> EAGAIN; the vmas stay locked).
  Errno mlock(Va addr, std::uint64_t len) { return mlock2(addr, len, 0); }
  Errno mlock2(Va addr, std::uint64_t len, int flags);
  /// munlock(2): clear VM_LOCKED/VM_LOCKONFAULT on the range. Returns Ok or NoMem (a hole;
  /// nothing changes).
  Errno munlock(Va addr, std::uint64_t len);
  /// mlockall(2): MCL_FUTURE locks later mappings (mm->def_flags), MCL_CURRENT locks every vma
  /// now and populates the whole address space (errors ignored), MCL_ONFAULT makes either lock
  /// on fault. Returns Ok, or Inval (no flags, unknown flags, MCL_ONFAULT alone), Perm
  /// (can_do_mlock), NoMem (MCL_CURRENT with more mapped than RLIMIT_MEMLOCK).
  Errno mlockall(int flags);
  /// munlockall(2): unlock every vma and clear MCL_FUTURE. Returns Ok.
  Errno munlockall();
  /// mm->locked_vm: pages in VM_LOCKED vmas (count_mm_mlocked_page_nr over the whole mm).
  std::uint64_t lockedVm() const;
  /// mm->def_flags: VM_LOCKED/VM_LOCKONFAULT after mlockall(MCL_FUTURE), else 0.
  VmFlags defFlags() const { return defFlags_; }
  /// mremap(2). Returns the new address, or:
  ///  Inval  unaligned oldAddr; unknown flags; FIXED or DONTUNMAP without MAYMOVE; DONTUNMAP
  ///         with oldLen != newLen or on a VM_DONTEXPAND|VM_PFNMAP vma (kernel >= 5.13 rules);
  ///         newLen == 0; oldLen == 0 (the kernel duplicates a shared mapping then: not
  ///         modelled); FIXED with an unaligned or out-of-range newAddr or overlapping ranges;
  ///         a hugetlb vma (hmmsim does not model hugetlb mremap).
  ///  Fault  no vma at oldAddr, or [oldAddr, oldAddr+oldLen) not inside one vma; growing a
  ///         VM_DONTEXPAND/VM_PFNMAP vma.
  ///  NoMem  growing in place impossible and no MAYMOVE; no room for the move.
  ///  Perm   FIXED below mmap_min_addr.
  /// Shrinking unmaps the tail (MMU_NOTIFY_UNMAP round over it). Growing in place raises
  /// nothing. FIXED first unmaps the target range (UNMAP round if mapped). Moving: a new vma
  /// keeps the old pgoff (copy_vma), the page-table entries move (move_page_tables: one
  /// MMU_NOTIFY_UNMAP round over the old range; data stays with its frames; a THP moves as one
  /// PMD when wholly inside and the target is 2 MiB aligned, else it is split, CLEAR round),
  /// then the old range is unmapped (a second UNMAP round over it, nothing left to free) unless
  /// DONTUNMAP, which leaves the old vma in place with no entries (a later touch faults in
  /// zeros). Difference: the kernel may widen move_page_tables' range to PMD boundaries
  /// (try_realign_addr); hmmsim does not.
  VaResult mremap(Va oldAddr, std::uint64_t oldLen, std::uint64_t newLen, int flags, Va newAddr = Va(0));
  /// fork(): a child Mm (`childName` names its stats group) with copies of every vma except
  /// VM_DONTCOPY ones. Private writable mappings become COW in both: one
  /// MMU_NOTIFY_PROTECTION_PAGE round on the parent per copied COW vma that has pages
  /// (copy_page_range), with parent and child ptes write-protected. MAP_SHARED stays shared.
  /// VM_WIPEONFORK vmas are copied empty. The child has its own page table and empty notifier
  /// subscriptions. Returns the child, or NoMem (no frame for a page table or a DMA-pinned
  /// page's eager copy; the partial child is torn down).
  ForkResult fork(const std::string& childName);
  /// exit_mmap(): the mm's last user is gone. First the notifier release (MMU_NOTIFY_RELEASE to
  /// every interval notifier over [0, ULONG_MAX), ->release of the others), then one
  /// MMU_NOTIFY_UNMAP round over [0, ULONG_MAX) while every vma is zapped and closed, then every
  /// page-table page is freed. Afterwards the mm has no vmas and no frames; further syscalls
  /// are simulator bugs (assert). Idempotent.
  void exitMmap();
  bool exited() const { return exited_; }

  /// Page reclaim of MADV_FREE pages (the part of shrink_folio_list hmmsim models): every
  /// lazyfree anonymous page whose pte is still clean is unmapped (MMU_NOTIFY_CLEAR round per
  /// page, like try_to_unmap) and freed; later reads see zeros. Dirty (re-written) ones are
  /// kept and lose their lazyfree mark. Returns the number of pages discarded.
  std::uint64_t reclaimLazyfree();

  /// get_unmapped_area(): where mmap would put `len` bytes with hint `addr` (0 = none) and
  /// `flags` (MAP_FIXED returns addr unchecked apart from bounds). `align` (power of two, >=
  /// 4 KiB) is the required alignment. Returns NoMem when nothing fits. Deterministic: the hint
  /// if it fits in a hole, else the highest hole below mmapBase (top-down), else the lowest
  /// hole above it.
  VaResult getUnmappedArea(Va addr, std::uint64_t len, std::uint64_t align, int flags) const;

  /// Make `vma`'s anonymous identity exist (anon_vma_prepare). Returns the AnonVma. Used by the
  /// fault path before installing the first anonymous page of a vma.
  AnonVma& anonVmaPrepare(Vma& vma);

 private:
  friend class MmInternals;
  PhysMem& physMem_;
  MmParams params_;
  StatsGroup stats_;
  MmStats mmStats_;
  VmEventCounters vmEvents_;
  std::unique_ptr<PageTable> pageTable_;
  std::unique_ptr<MmuNotifierSubscriptions> subscriptions_;
  VmaTree vmas_;  ///< owns its linked vmas (MmInternals::linkVma/unlinkVma; freed by exitMmap)
  WaitQueue migrationWq_;
  std::array<std::int64_t, kNrMmCounters> rss_{};
  RwSemaphore mmapLock_{kMmapLockClass};
  bool exited_ = false;
  std::uint64_t hugetlbReserved_[2] = {0, 0};  ///< huge pages reserved by MAP_HUGETLB vmas: 2 MiB, 1 GiB
  std::int64_t hugetlbUsage_ = 0;              ///< hugetlb_count_add/sub, 4 KiB pages
  VmFlags defFlags_ = 0;                       ///< mm->def_flags (mlockall MCL_FUTURE)
  std::uint64_t nextAnonVmaId_ = 1;
};

// Kernel-spelled entry points that take an mm (include/linux/mmu_notifier.h). Everything that
// raises a notifier round on an Mm (the mm's syscalls, the fault path, hmm/migrate) goes through
// these so that Mm's per-event counters are complete.

/// mmu_notifier_invalidate_range_start(range): range.mm must be set.
inline void mmuNotifierInvalidateRangeStart(MmuNotifierRange& range) {
  range.mm->invalidateRangeStart(range);
}
/// mmu_notifier_invalidate_range_end(range).
inline void mmuNotifierInvalidateRangeEnd(MmuNotifierRange& range) {
  range.mm->invalidateRangeEnd(range);
}
/// mmu_interval_notifier_insert(sub, mm, start, length, ops): see
/// MmuNotifierSubscriptions::mmuIntervalNotifierInsert (Ok, Overflow for an empty/overflowing
/// interval, Inval after exit_mmap).
inline Errno mmuIntervalNotifierInsert(MmuIntervalNotifier& sub, Mm& mm, Va start, std::uint64_t length,
                                       MmuIntervalNotifierOps& ops) {
  return mm.notifierSubscriptions().mmuIntervalNotifierInsert(sub, start, length, ops);
}

}  // namespace hmmsim
