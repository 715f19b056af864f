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
// (hmm_range_fault returns -EFAULT when p2p_map is missing, do_fault returns VM_FAULT_SIGBUS when
// fault is missing).

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
  // - The policy and the final decision are the exporter's alone: it may refuse (non-zero).
  // - Predictability: once a range has been mapped successfully for an importer, later maps of
  //   it must keep succeeding while the vma is valid; failures surface at setup time.
  // - After an invalidation the importer may map again; the exporter may have moved things
  //   (e.g. defragmented its BAR space) so the addresses may differ.
  // - THE IMPORTER MUST OBEY MMU-NOTIFIER INVALIDATION AND CALL p2pUnmap() WHEN A NOTIFIER IS
  //   CALLED FOR THE RANGE. THIS CAN HAPPEN AT ANY POINT IN TIME WITH NO LOCK HELD.
  //
  /// True when p2pMap/p2pUnmap are implemented (the kernel's `vm_ops->p2p_map != NULL`).
  /// hmm_range_fault returns -EFAULT for a VM_IO|VM_PFNMAP|VM_MIXEDMAP vma when this is false.
  virtual bool hasP2p() const { return false; }
  /// Map [start, end) of `vma` for `importer`. `pa` has one entry per page
  /// ((end-start)>>PAGE_SHIFT), each filled with the device address the importer must use for
  /// that page. `write`: the importer will write. Returns 0 on success (the RFC's caller treats
  /// 0 as success and anything else as an error that it returns / turns into HMM_PFN_ERROR);
  /// a negative errno (e.g. toKernel(Errno::Fault)) when refused. The default (no p2p support)
  /// returns -EFAULT and touches nothing.
  virtual long p2pMap(Vma& /*vma*/, Device& /*importer*/, Va /*start*/, Va /*end*/,
                      DmaAddr* /*pa*/, bool /*write*/) {
    return toKernel(Errno::Fault);
  }
  /// Undo p2pMap for [start, end) with the addresses it returned in `pa`. Must be called by the
  /// importer on every mmu-notifier invalidation overlapping a mapped range, and when it is done.
  /// Returns 0 on success, a negative errno otherwise. The default returns -EFAULT.
  virtual long p2pUnmap(Vma& /*vma*/, Device& /*importer*/, Va /*start*/, Va /*end*/,
                        DmaAddr* /*pa*/) {
    return toKernel(Errno::Fault);
  }

  /// For traces and error messages ("filemap", "shmem", "dmirror", ...).
  virtual const char* name() const { return "vm_ops"; }
};

}  // namespace hmmsim
