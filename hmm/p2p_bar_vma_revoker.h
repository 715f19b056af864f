#pragma once
// BarVmaRevoker: the BarRevokeHook of an exporter whose device memory is reached through special
// vmas (an mmap of its device file, RFC 3/5), plus the kernel helper it is made of.
//
// What it models
//  - zap_page_range_single() (mm/memory.c): one MMU_NOTIFY_CLEAR round over a range of one vma
//    with its page-table entries zapped inside it. The round is raised whether or not any CPU pte
//    exists there, which is what makes revocation reach importers of a vma the CPU never touched.
//    (zap_vma_ptes() itself is hmm/p2p.h's zapVmaPtes; this one also serves VM_MIXEDMAP vmas.)
//  - unmap_mapping_range() of the device file restricted to the pages being revoked: for every
//    vma of the exporter's file whose pgoff range overlaps the device pages, zap the virtual range
//    that maps them (one CLEAR round per vma part). The vmas are the ones the driver registered in
//    its FileOperations::mmap / VmOperations::open and unregistered in VmOperations::close; the
//    kernel finds them through the inode's i_mmap (models/cpu_mmu/file.h keeps that list private:
//    an Inode::unmapMappingRange there would let this class drop its own list).
//  - Device page <-> file offset: file page pgoffBase + p maps device page p.
// Leaves out: the i_mmap lock (the simulator is cooperative), even_cows (device vmas are zapped
// whole, COW copies included, as zap_vma_ptes does). Timing: none.
// Locking: the mm's mmap lock is not required (unmap_mapping_range takes only i_mmap_rwsem), so
// the hook may run from inside an importer's hmm_range_fault -> p2pMap -> reclaim.

#include <cstdint>
#include <vector>

#include "hmm/p2p_bar_manager.h"
#include "sim/strong_types.h"

namespace hmmsim {

class Vma;

/// zap_page_range_single(vma, address, size, NULL): one MMU_NOTIFY_CLEAR round over
/// [address, address + size) of `vma`'s mm, zapping the vma's entries in it (clamped to the vma).
/// Page aligned; a range outside the vma does nothing.
void zapPageRangeSingle(Vma& vma, Va address, std::uint64_t size);

/// The exporter's revoke hook for special vmas.
class BarVmaRevoker : public BarRevokeHook {
 public:
  /// `pgoffBase`: the file page offset of device page 0 (mmap offset / PAGE_SIZE).
  explicit BarVmaRevoker(std::uint64_t pgoffBase = 0) : pgoffBase_(pgoffBase) {}

  /// The driver's FileOperations::mmap and VmOperations::open call this for each new vma of the
  /// device file; VmOperations::close calls untrack. Tracking a vma twice is a simulator bug.
  void track(Vma& vma);
  void untrack(Vma& vma);
  std::size_t trackedCount() const { return vmas_.size(); }

  /// The device page that virtual address `va` of `vma` maps (vma.linearPageIndex - pgoffBase).
  DevPage devPageOf(const Vma& vma, Va va) const;

  /// For each tracked vma overlapping device pages [first, first + npages): zapPageRangeSingle of
  /// the virtual range mapping them (MMU_NOTIFY_CLEAR). Counts calls and rounds.
  void revoke(DevPage first, std::uint64_t npages, BarEvent why) override;

  std::uint64_t revokeCalls() const { return revokeCalls_; }
  std::uint64_t clearRounds() const { return clearRounds_; }

 private:
  std::uint64_t pgoffBase_;
  std::vector<Vma*> vmas_;
  std::uint64_t revokeCalls_ = 0;
  std::uint64_t clearRounds_ = 0;
};

}  // namespace hmmsim
