#pragma once
// make_device_exclusive() (mm/rmap.c, kernel >= 6.15; make_device_exclusive_range before):
// give a device exclusive (atomic) access to one anonymous page by replacing its CPU pte with a
// device-exclusive entry. A later CPU access faults and restores the pte with an
// MMU_NOTIFY_EXCLUSIVE round (owner NULL) — that restore is the fault path's
// (models/cpu_mmu/memory.cpp, remove_device_exclusive_entry).
//
// Models: fault the page in writable first (get_user_page_vma_remote with FOLL_WRITE |
// FOLL_SPLIT_PMD: a PMD-mapped THP is split to ptes, a read-only/COW page is broken, an existing
// device-exclusive entry is restored by that fault), refuse non-anonymous and hugetlb folios
// (-EOPNOTSUPP), lock the folio (sleeping while a migration holds it), raise
// MMU_NOTIFY_EXCLUSIVE with the caller's owner over the page (callers that filter their own
// events skip it), re-check that the same page is still mapped writable (else start over),
// replace the pte (dirty moved to the folio, soft-dirty kept). The entry keeps the page's
// reference and mapcount (the fault path's convention). The folio is returned locked and with
// one reference: exclusivity holds until the caller unlocks and puts it.
// Leaves out: FOLL_* corner cases of GUP beyond the above (FOLL_FORCE, longterm), killable waits.
// Timing: none (pure core).

#include <optional>

#include "sim/errno.h"
#include "sim/strong_types.h"

namespace hmmsim {

class Mm;

/// The result of makeDeviceExclusive: the page (pfn) on success, or the error.
struct DeviceExclusiveResult {
  Errno err = Errno::Ok;  ///< Ok, or an error listed at makeDeviceExclusive
  Pfn page;               ///< the exclusive page (valid when err == Ok)
  Pfn folio;              ///< its folio head, locked and referenced (valid when err == Ok)
  bool ok() const { return err == Errno::Ok; }
};

/// make_device_exclusive(mm, addr, owner, &folio). The mmap lock is held by the caller.
/// Returns Ok with the page and folio (locked, one reference: release with
/// deviceExclusiveRelease or PhysMem unlock + putPage), or:
///   Fault      no vma at addr, a vma GUP refuses (VM_IO/VM_PFNMAP, or no VM_WRITE:
///              check_vma_flags), or the write fault failed (VM_FAULT_SIGSEGV/SIGBUS);
///   NoMem      the write fault ran out of memory (VM_FAULT_OOM);
///   OpNotSupp  the page is not anonymous (page cache, shared memory) or is hugetlb.
DeviceExclusiveResult makeDeviceExclusive(Mm& mm, Va addr, const void* owner);

/// folio_unlock + folio_put of the folio makeDeviceExclusive returned.
void deviceExclusiveRelease(Mm& mm, Pfn folio);

}  // namespace hmmsim
