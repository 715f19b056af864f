#pragma once
// The procfs views of an address space that memory tools use (fs/proc/task_mmu.c):
// /proc/pid/clear_refs (soft-dirty tracking and accessed bits) and /proc/pid/pagemap.
//
// Models: clear_refs 1-4: clear the accessed (young) bits of all / anonymous / file-backed
// mappings; 4 (soft-dirty) clears VM_SOFTDIRTY on every vma, then write-protects every present
// pte and PMD leaf and clears its soft-dirty bit (swap-style entries lose theirs) inside one
// MMU_NOTIFY_SOFT_DIRTY round over the whole address space, so the next write faults and
// marks the page soft-dirty again. pagemap: one 64-bit entry per page with the kernel's bits.
// Leaves out: clear_refs 5 (hiwater rss is not tracked; accepted, nothing to reset), the
// secondary-MMU clear_young callbacks of types 1-3, PM_UFFD_WP and PM_MMAP_EXCLUSIVE's
// per-subpage THP rules (a THP page is exclusive when its folio is mapped once), the
// PAGEMAP_SCAN ioctl.
// Timing: none.

#include <cstddef>
#include <cstdint>

#include "sim/errno.h"
#include "sim/strong_types.h"

namespace hmmsim {

class Mm;

// clear_refs types.
inline constexpr int CLEAR_REFS_ALL = 1;
inline constexpr int CLEAR_REFS_ANON = 2;
inline constexpr int CLEAR_REFS_MAPPED = 3;
inline constexpr int CLEAR_REFS_SOFT_DIRTY = 4;
inline constexpr int CLEAR_REFS_MM_HIWATER_RSS = 5;

// pagemap entry bits (Documentation/admin-guide/mm/pagemap.rst).
inline constexpr std::uint64_t PM_PFRAME_MASK = (1ull << 55) - 1;  ///< pfn, or swap type | offset << 5
inline constexpr std::uint64_t PM_SOFT_DIRTY = 1ull << 55;
inline constexpr std::uint64_t PM_MMAP_EXCLUSIVE = 1ull << 56;
inline constexpr std::uint64_t PM_FILE = 1ull << 61;  ///< file page or shared anonymous
inline constexpr std::uint64_t PM_SWAP = 1ull << 62;  ///< swap-style entry (migration, device)
inline constexpr std::uint64_t PM_PRESENT = 1ull << 63;

/// write(2) of `type` to /proc/pid/clear_refs. Returns Ok, or Inval for an unknown type.
/// Takes the mmap lock for writing.
Errno clearRefs(Mm& mm, int type);

/// read(2) of /proc/pid/pagemap: the entries of the `n` pages from `start` (page aligned) into
/// `out`. Present: PM_PRESENT | pfn; swap-style (migration, device-private, device-exclusive):
/// PM_SWAP | type | offset << 5; holes 0. PM_SOFT_DIRTY from the entry or the vma's
/// VM_SOFTDIRTY, PM_FILE for page-cache pages, PM_MMAP_EXCLUSIVE for a page mapped once.
/// `showPfn` false gives the unprivileged view (no CAP_SYS_ADMIN): frame numbers read 0.
/// Takes the mmap lock for reading.
void pagemapRead(Mm& mm, Va start, std::size_t n, std::uint64_t* out, bool showPfn = true);

}  // namespace hmmsim
