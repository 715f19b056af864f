#pragma once
// VmOperations: the kernel's struct vm_operations_struct (include/linux/mm.h), the interface a
// vma's backing implements and the mm core calls upward. Declared here, in the lower layer, and
// implemented above it: by the page cache (filemap.cpp, for files and shared anonymous memory),
// by device drivers (models/devices) through their FileOperations::mmap.
//
// Includes the RFC "mm/vma: add support for peer to peer to device vma" members p2p_map/p2p_unmap
// (lore: 20190129174728.6430-4-jglisse@redhat.com).
//
// What it leaves out: huge_fault, page_mkwrite/pfn_mkwrite, access
// (ptrace), name, find_special_page, set/get_policy. Callbacks take no time here; the SystemC
// shell charges a fault's cost.
//
// "Absent" callbacks: the kernel tests a function pointer for NULL. In hmmsim a derived class
// says which optional callbacks it provides through hasFault()/hasP2p(); the core tests those
// (do_fault returns VM_FAULT_SIGBUS when fault is missing; hmm_range_fault calls p2p_map only for
// a device vma that has it and only when an importer asked, see hasP2p()).

#include <cstdint>

#include "sim/errno.h"
#include "sim/strong_types.h"

namespace hmmsim {

class Device;
class Vma;
struct VmFault;                            // models/cpu_mmu/vm_fault.h (helper "fault")
enum class VmFaultResult : std::uint32_t;  // models/cpu_mmu/vm_fault.h: vm_fault_t bit set

class VmOperations {
 public:
  VmOperations() = default;
  VmOperations(const VmOperations&) = delete;
  VmOperations& operator=(const VmOperations&) = delete;
  virtual ~VmOperations() = default;

  /// vm_ops->open: a new vma now shares this backing (split_vma, fork's copy, mremap's copy).
  /// Not called for the vma created by mmap (the kernel does not either; FileOperations::mmap
  /// runs instead).
  virtual void open(Vma& /*vma*/) {}
  /// vm_ops->close: `vma` is being removed (munmap, exit, mremap's move). Called before the
  /// vma is freed, after its page-table entries are zapped.
  virtual void close(Vma& /*vma*/) {}
  /// vm_ops->may_split: may `vma` be split at `addr`? Errno::Ok, or the error that munmap /
  /// mprotect / mremap then return unchanged (hugetlb: Errno::Inval off its huge page boundaries).
  virtual Errno maySplit(Vma& /*vma*/, Va /*addr*/) { return Errno::Ok; }

  /// True when fault() is implemented (the kernel's `vm_ops->fault != NULL`). When false, a CPU
  /// fault in the vma ends in VM_FAULT_SIGBUS without calling fault().
  virtual bool hasFault() const { return true; }
  /// vm_ops->fault: provide the page for vmf.pgoff of vmf.vma (filemap_fault: find or read the
  /// page-cache page and return it in vmf.page with a reference the fault path consumes; drivers:
  /// the same, or insert PFNs themselves and return VM_FAULT_NOPAGE).
  /// Returns 0 (page provided), VM_FAULT_NOPAGE (the callee installed the PTE), VM_FAULT_SIGBUS
  /// (beyond EOF, or no such page), VM_FAULT_OOM (no memory). The default, for a vma whose
  /// backing has no fault, returns VM_FAULT_SIGBUS (models/cpu_mmu/vm_operations.cpp).
  virtual VmFaultResult fault(VmFault& vmf);
  /// True when mapPages() is implemented (the kernel's `vm_ops->map_pages != NULL`): a read
  /// fault on an empty pte then tries fault-around first (do_read_fault).
  virtual bool hasMapPages() const { return false; }
  /// vm_ops->map_pages (filemap_map_pages): map the pages of backing offsets [startPgoff,
  /// endPgoff] (inclusive, inside vmf.vma and inside the PTE table of vmf.address, which exists)
  /// that are already cached and ready into the ptes that are empty, taking a reference and a
  /// mapcount each; never allocates or reads a page. Returns NoPage when the page of
  /// vmf.address was mapped (the fault is done), else None. The default maps nothing.
  virtual VmFaultResult mapPages(VmFault& vmf, std::uint64_t startPgoff, std::uint64_t endPgoff);

  // ---- RFC 3/5: peer to peer through a device vma -----------------------------------------
  //
  // Contract (include/linux/mm.h as patched by the RFC, paraphrased):
  // - `importer` is the device that wants to access the range; the vma (the exporter's) belongs
  //   to a device file whose driver set these ops in its FileOperations::mmap.
  // - The vma may have no CPU mapping at all (pure device memory, never faulted by the CPU).
  // - The policy and the final decision are the exporter's alone: it may refuse.
  // - Predictability: once a range has been mapped successfully for an importer, later maps of
  //   it must keep succeeding while the vma is valid; failures surface at setup time.
  // - After an invalidation the importer may map again; the exporter may have moved things
  //   (e.g. defragmented its BAR space) so the addresses may differ.
  // - THE IMPORTER MUST OBEY MMU-NOTIFIER INVALIDATION AND CALL p2pUnmap() WHEN A NOTIFIER IS
  //   CALLED FOR THE RANGE. THIS CAN HAPPEN AT ANY POINT IN TIME WITH NO LOCK HELD: p2pUnmap
  //   must not assume the mmap lock or any importer lock is held, and must not take a lock the
  //   exporter also holds while it raises invalidations.
  // - The vma passed to p2pUnmap may be another Vma object than the one p2pMap saw (a split by
  //   mprotect/munmap in between), and [start, end) may be any page-aligned sub-range of what was
  //   mapped: exporters key their state by (importer, address or file offset), not by Vma.
  //
  // Return convention (hmmsim's, one for the whole API; the RFC returned a raw long that its
  // caller read as 0 = success): an Errno. Ok = done; anything else = refused, and hmm_range_fault
  // returns -EFAULT for the range (HmmRange::p2pError keeps the exporter's Errno).
  //
  /// True when p2pMap/p2pUnmap are implemented (the kernel's `vm_ops->p2p_map != NULL`).
  /// hmm_range_fault given an importer and an address array calls p2pMap for a VM_IO, VM_PFNMAP
  /// or VM_MIXEDMAP vma only when this is true; otherwise such a vma keeps the rules it has
  /// without an importer (VM_IO/VM_PFNMAP: HMM_PFN_ERROR, or -EFAULT when a fault was requested;
  /// VM_MIXEDMAP: walked like any vma, as in current mainline).
  virtual bool hasP2p() const { return false; }
  /// Map [start, end) of `vma` for `importer`. `pa` has one entry per page
  /// ((end-start)>>PAGE_SHIFT), each filled with the device address the importer must use for
  /// that page (a bus address, an IOVA or a CPU physical address, per the p2pdma map type between
  /// the two devices). `write`: the importer will write. Returns Ok, or the refusal (Fault: not
  /// mappable for this importer, e.g. map type NOT_SUPPORTED; NoSpc: no BAR window; Perm: write to
  /// a read-only export; NoDev: the device is gone). On refusal nothing stays mapped.
  /// The default (no p2p support) returns Fault and touches nothing.
  virtual Errno p2pMap(Vma& /*vma*/, Device& /*importer*/, Va /*start*/, Va /*end*/, DmaAddr* /*pa*/,
                       bool /*write*/) {
    return Errno::Fault;
  }
  /// Undo p2pMap for [start, end) with the addresses it returned in `pa` (one per page). Called
  /// by the importer on every mmu-notifier invalidation overlapping a mapped range, and when it is
  /// done with the mapping. Returns Ok; Inval when [start, end) was not mapped for `importer`
  /// (nothing changes). The default returns Fault.
  virtual Errno p2pUnmap(Vma& /*vma*/, Device& /*importer*/, Va /*start*/, Va /*end*/,
                         const DmaAddr* /*pa*/) {
    return Errno::Fault;
  }

  /// For traces and error messages ("filemap", "shmem", "dmirror", ...).
  virtual const char* name() const { return "vm_ops"; }
};

}  // namespace hmmsim
