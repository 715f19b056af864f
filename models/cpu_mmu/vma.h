#pragma once
// Vma: the kernel's struct vm_area_struct, one contiguous range of an address space with one set
// of permissions and one backing (anonymous memory, a file's page cache, or a device driver).
//
// What it models: vm_start/vm_end/vm_flags/vm_pgoff/vm_file/vm_ops/vm_private_data/anon_vma and
// the owning mm; the VM_* flag bits with Linux's values; PROT_*/MAP_*/MREMAP_*/MADV_* constants
// with Linux's values (uapi/asm-generic/mman*.h).
// What it leaves out: the maple tree (Mm keeps its VMAs in a Boost.Intrusive rbtree keyed by
// vmStart, which is what the kernel used before 6.1), vm_page_prot (derived from vmFlags when
// needed), anon_vma_chain (AnonVma below is one shared identity per fork family, enough for COW
// and for telling anonymous pages apart), userfaultfd, mempolicy, numa.
// Timing: none; Vma is pure bookkeeping.

#include <cstdint>
#include <memory>

#include <boost/intrusive/list.hpp>
#include <boost/intrusive/list_hook.hpp>
#include <boost/intrusive/set_hook.hpp>

#include "sim/strong_types.h"

namespace hmmsim {

class Mm;
class File;
class VmOperations;

/// vm_flags_t. Bit values are Linux's (include/linux/mm.h).
using VmFlags = std::uint64_t;

inline constexpr VmFlags VM_NONE = 0x00000000;
inline constexpr VmFlags VM_READ = 0x00000001;
inline constexpr VmFlags VM_WRITE = 0x00000002;
inline constexpr VmFlags VM_EXEC = 0x00000004;
inline constexpr VmFlags VM_SHARED = 0x00000008;
/// The VM_MAY* bits say what mprotect may later enable (set from the file's open mode).
inline constexpr VmFlags VM_MAYREAD = 0x00000010;
inline constexpr VmFlags VM_MAYWRITE = 0x00000020;
inline constexpr VmFlags VM_MAYEXEC = 0x00000040;
inline constexpr VmFlags VM_MAYSHARE = 0x00000080;
inline constexpr VmFlags VM_GROWSDOWN = 0x00000100;
/// Page ranges are raw PFNs without struct page (remap_pfn_range); no CPU fault populates them.
inline constexpr VmFlags VM_PFNMAP = 0x00000400;
inline constexpr VmFlags VM_LOCKED = 0x00002000;
/// Memory-mapped I/O (device registers, BARs).
inline constexpr VmFlags VM_IO = 0x00004000;
/// Not copied on fork (MADV_DONTFORK, or set by a driver's mmap).
inline constexpr VmFlags VM_DONTCOPY = 0x00020000;
/// MADV_SEQUENTIAL / MADV_RANDOM read-ahead hints (no effect on data here, but they split vmas).
inline constexpr VmFlags VM_SEQ_READ = 0x00008000;
/// Lock pages only as they are faulted in (mlock2 MLOCK_ONFAULT, mlockall MCL_ONFAULT).
inline constexpr VmFlags VM_LOCKONFAULT = 0x00080000;
inline constexpr VmFlags VM_RAND_READ = 0x00010000;
/// mremap may not grow it (drivers, hugetlb).
inline constexpr VmFlags VM_DONTEXPAND = 0x00040000;
inline constexpr VmFlags VM_ACCOUNT = 0x00100000;
inline constexpr VmFlags VM_NORESERVE = 0x00200000;
/// Backed by hugetlb (2 MiB pages here).
inline constexpr VmFlags VM_HUGETLB = 0x00400000;
inline constexpr VmFlags VM_WIPEONFORK = 0x02000000;
inline constexpr VmFlags VM_DONTDUMP = 0x04000000;
/// Soft-dirty tracking: the whole vma counts as written since the last clear_refs (set on new
/// mappings and on stack growth, cleared by clear_refs 4; never keeps vmas from merging).
inline constexpr VmFlags VM_SOFTDIRTY = 0x08000000;
/// Mix of struct-page pages and raw PFNs (vm_insert_page / vm_insert_mixed); dmirror's mmap.
inline constexpr VmFlags VM_MIXEDMAP = 0x10000000;
/// MADV_HUGEPAGE / MADV_NOHUGEPAGE.
inline constexpr VmFlags VM_HUGEPAGE = 0x20000000;
inline constexpr VmFlags VM_NOHUGEPAGE = 0x40000000;

/// Flags that make a vma "special" for hmm_range_fault and GUP (no struct page behind it).
inline constexpr VmFlags VM_SPECIAL = VM_IO | VM_DONTEXPAND | VM_PFNMAP | VM_MIXEDMAP;
inline constexpr VmFlags VM_LOCKED_MASK = VM_LOCKED | VM_LOCKONFAULT;

// mmap/mprotect prot bits (uapi/asm-generic/mman-common.h).
inline constexpr int PROT_NONE = 0x0;
inline constexpr int PROT_READ = 0x1;
inline constexpr int PROT_WRITE = 0x2;
inline constexpr int PROT_EXEC = 0x4;

// mmap flags (uapi/linux/mman.h, asm-generic/mman-common.h; x86-64 values).
inline constexpr int MAP_SHARED = 0x01;
inline constexpr int MAP_PRIVATE = 0x02;
inline constexpr int MAP_SHARED_VALIDATE = 0x03;
inline constexpr int MAP_TYPE = 0x0f;
inline constexpr int MAP_FIXED = 0x10;
inline constexpr int MAP_ANONYMOUS = 0x20;
inline constexpr int MAP_GROWSDOWN = 0x0100;
inline constexpr int MAP_LOCKED = 0x2000;
inline constexpr int MAP_NORESERVE = 0x4000;
inline constexpr int MAP_POPULATE = 0x8000;
inline constexpr int MAP_HUGETLB = 0x40000;
inline constexpr int MAP_FIXED_NOREPLACE = 0x100000;
// Huge page size of MAP_HUGETLB (uapi/asm-generic/hugetlb_encode.h): log2 of the size in bits
// 26..31 of the flags; 0 asks for the default hstate (2 MiB on x86-64).
inline constexpr int MAP_HUGE_SHIFT = 26;
inline constexpr int MAP_HUGE_MASK = 0x3f;
inline constexpr int MAP_HUGE_2MB = 21 << MAP_HUGE_SHIFT;
inline constexpr int MAP_HUGE_1GB = 30 << MAP_HUGE_SHIFT;

// mlock2 / mlockall flags (uapi/asm-generic/mman-common.h, mman.h).
inline constexpr int MLOCK_ONFAULT = 0x01;
inline constexpr int MCL_CURRENT = 1;
inline constexpr int MCL_FUTURE = 2;
inline constexpr int MCL_ONFAULT = 4;

// mremap flags (uapi/linux/mman.h).
inline constexpr int MREMAP_MAYMOVE = 1;
inline constexpr int MREMAP_FIXED = 2;
inline constexpr int MREMAP_DONTUNMAP = 4;

// madvise advice (uapi/asm-generic/mman-common.h).
inline constexpr int MADV_NORMAL = 0;
inline constexpr int MADV_RANDOM = 1;
inline constexpr int MADV_SEQUENTIAL = 2;
inline constexpr int MADV_WILLNEED = 3;
inline constexpr int MADV_DONTNEED = 4;
inline constexpr int MADV_FREE = 8;
inline constexpr int MADV_REMOVE = 9;
inline constexpr int MADV_DONTFORK = 10;
inline constexpr int MADV_DOFORK = 11;
inline constexpr int MADV_HUGEPAGE = 14;
inline constexpr int MADV_NOHUGEPAGE = 15;
inline constexpr int MADV_DONTDUMP = 16;
inline constexpr int MADV_DODUMP = 17;
inline constexpr int MADV_WIPEONFORK = 18;
inline constexpr int MADV_KEEPONFORK = 19;
inline constexpr int MADV_POPULATE_READ = 22;
inline constexpr int MADV_POPULATE_WRITE = 23;
inline constexpr int MADV_COLLAPSE = 25;

struct AnonVma;

/// Boost.Intrusive hook tags: a Vma sits in its Mm's tree and, when file-backed, in its inode's
/// i_mmap list (the kernel's address_space.i_mmap, an interval tree there; a list here because
/// mappings per file are few in hmmsim's workloads).
struct VmaTreeTag;
struct VmaFileTag;
struct VmaAnonTag;
using VmaTreeHook = boost::intrusive::set_base_hook<boost::intrusive::tag<VmaTreeTag>,
                                                    boost::intrusive::link_mode<boost::intrusive::safe_link>>;
using VmaFileHook =
    boost::intrusive::list_base_hook<boost::intrusive::tag<VmaFileTag>,
                                     boost::intrusive::link_mode<boost::intrusive::safe_link>>;
/// A vma's link in its AnonVma's chain (auto-unlinked when the vma is destroyed).
using VmaAnonHook =
    boost::intrusive::list_base_hook<boost::intrusive::tag<VmaAnonTag>,
                                     boost::intrusive::link_mode<boost::intrusive::auto_unlink>>;

/// One VMA. Fields keep the kernel's names (camelCase) and are public like the kernel's struct;
/// only Mm's operations (mmap.cpp, mprotect.cpp, ...) change vmStart/vmEnd/vmFlags of a vma that
/// is in a tree, with the mmap lock held for writing.
///
/// Invariants while linked in an Mm: vmStart < vmEnd, both page-aligned (aligned to the huge
/// page size for VM_HUGETLB); vmas of one Mm never overlap; vmMm points at that Mm.
class Vma : public VmaTreeHook, public VmaFileHook, public VmaAnonHook {
 public:
  Va vmStart;           ///< first byte
  Va vmEnd;             ///< one past the last byte (exclusive)
  VmFlags vmFlags = 0;  ///< VM_* bits
  /// Offset of vmStart in the file, in pages (file/shared-anon vmas). For private anonymous
  /// vmas the kernel stores vmStart >> PAGE_SHIFT here; hmmsim does the same.
  std::uint64_t vmPgoff = 0;
  /// Backing file, or null for private anonymous memory. Shared anonymous mappings are backed by
  /// an internal shmem-like file (like the kernel's shmem_zero_setup), so they have a file.
  /// Holds a reference (the kernel's get_file on vm_file).
  std::shared_ptr<File> vmFile;
  /// Operations of the backing: null for private anonymous memory (vma_is_anonymous), the page
  /// cache's operations for files, the driver's for device files (set by FileOperations::mmap).
  /// Not owned; outlives every vma that points at it.
  VmOperations* vmOps = nullptr;
  /// Anonymous identity for private pages (anon_vma). Set at the first anonymous fault or COW
  /// in this vma (anonVmaPrepare) and inherited by splits and by fork's copies. Read freely;
  /// change only through setAnonVma, which keeps the AnonVma's chain of vmas right.
  std::shared_ptr<AnonVma> anonVma;
  /// Driver data (vm_private_data); owned by whoever set it.
  void* vmPrivateData = nullptr;
  /// The address space this vma belongs to (vm_mm).
  Mm* vmMm = nullptr;
  /// hstate_vma(): log2 of the huge page size of a VM_HUGETLB vma (kPmdShift for 2 MiB,
  /// kPudShift for 1 GiB); 0 for other vmas. The kernel finds the hstate through the hugetlbfs
  /// file's inode; hmmsim's MAP_HUGETLB mappings have no file, so the vma carries it.
  std::uint8_t vmHugetlbShift = 0;

  std::uint64_t length() const { return vmEnd - vmStart; }
  std::uint64_t pages() const { return length() >> kPageShift; }
  bool contains(Va a) const { return vmStart <= a && a < vmEnd; }

  /// vma_is_anonymous(): no vm_ops. True for MAP_PRIVATE|MAP_ANONYMOUS only.
  bool isAnonymous() const { return vmOps == nullptr; }
  /// is_cow_mapping(): private and may be written, so writes must copy.
  bool isCowMapping() const { return (vmFlags & (VM_SHARED | VM_MAYWRITE)) == VM_MAYWRITE; }
  bool isShared() const { return (vmFlags & VM_SHARED) != 0; }
  bool isHugetlb() const { return (vmFlags & VM_HUGETLB) != 0; }
  /// vma_kernel_pagesize(): the huge page size of a hugetlb vma, 4 KiB otherwise.
  std::uint64_t kernelPagesize() const { return isHugetlb() ? 1ull << vmHugetlbShift : kPageSize; }
  /// anon_vma_chain_link / unlink_anon_vmas: make `av` (may be null) this vma's anon_vma and
  /// put the vma on its chain (off the old one's).
  void setAnonVma(std::shared_ptr<AnonVma> av);
  /// The file page index that backs `a` (linear_page_index()).
  std::uint64_t linearPageIndex(Va a) const { return ((a - vmStart) >> kPageShift) + vmPgoff; }
};

/// The kernel's anon_vma: the identity shared by a vma and all vmas forked or split from it,
/// and the chain of those vmas that an rmap walk visits (rmap_walk_anon; the kernel chains them
/// through anon_vma_chain entries in an interval tree, hmmsim through one list in the order the
/// vmas joined). An anonymous frame records the AnonVma it was faulted in for (its "mapping").
/// The vmas hold it through std::shared_ptr, and every one the mm creates is also retained by
/// the PhysMem (PhysMem::retainOwner): frames may point at it after its last vma is gone, as a
/// kernel folio may still point at a freed anon_vma (its SLAB_TYPESAFE_BY_RCU cache keeps the
/// memory an anon_vma); an rmap walk then finds an empty chain.
struct AnonVma {
  std::uint64_t id = 0;  ///< unique per Mm family, for traces and assertions
  /// The vmas whose anonVma this is, in any mm of the fork family.
  boost::intrusive::list<Vma, boost::intrusive::base_hook<VmaAnonHook>,
                         boost::intrusive::constant_time_size<false>>
      vmas;
};

inline void Vma::setAnonVma(std::shared_ptr<AnonVma> av) {
  if (VmaAnonHook::is_linked()) VmaAnonHook::unlink();
  anonVma = std::move(av);
  if (anonVma) anonVma->vmas.push_back(*this);
}

/// Ordering of the Mm's vma tree: by vmStart (vmas never overlap).
struct VmaStartKey {
  using type = Va;
  Va operator()(const Vma& v) const { return v.vmStart; }
};

}  // namespace hmmsim
