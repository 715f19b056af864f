#pragma once
// Migration of anonymous memory between system RAM and device memory (mm/migrate_device.c,
// include/linux/migrate.h): migrate_vma_setup / migrate_vma_pages / migrate_vma_finalize for a
// range of a vma, migrate_device_range / migrate_device_pfns / migrate_device_pages /
// migrate_device_finalize for evicting device pages by pfn, and the copy step drivers perform
// between setup and pages (with its simulated cost).
//
// Models: the MMU_NOTIFY_MIGRATE round with owner = pgmap_owner over the collected range (and over
// the inserted part in migrate_vma_pages); collection rules (pte_none and the zero pfn in anonymous
// vmas -> MIGRATE without a page; device-private entries only with SELECT_DEVICE_PRIVATE and a
// matching owner; device-coherent pages only with SELECT_DEVICE_COHERENT and a matching owner;
// system pages only with SELECT_SYSTEM; other swap-style entries, special ptes and non-anonymous
// holes skipped); folio lock (trylock, the fault page is already locked by the fault path),
// migration entries in place of the mappings (writable / readable-exclusive / readable, dirty and
// soft-dirty carried), try_to_migrate of the other mappings (found through the anon_vma chain:
// every vma of the fork family, in any mm), migrate_vma_check_page's pin test (extra references -> restored
// and not migrated); THPs: with SELECT_COMPOUND a PMD-mapped THP (or device-private PMD entry, or an empty
// aligned PMD, or with SELECT_SYSTEM an aligned PMD mapping the huge zero page, which
// migrate_vma_collect_huge_pmd treats as a hole) is one compound entry (MIGRATE_PFN_COMPOUND on the first of
// its 512 slots, the rest 0) that stays whole when the driver supplies a compound destination and is split
// otherwise (an empty / huge-zero PMD then takes 512 4 KiB destinations); without it, THPs are split first
// (split_huge_pmd + split_folio) and the huge zero page is split into zero ptes (hmmsim splits it
// at collection; mainline defers that split to migrate_vma_insert_page, same src entries);
// migrate_vma_pages: only anonymous source folios migrate to device memory (page-cache folios,
// e.g. shared anonymous memory, lose MIGRATE), pte_none destinations are inserted like
// migrate_vma_insert_page (device-private entry, writable iff VM_WRITE; present pte for
// coherent/system memory) and lose MIGRATE if the pte is no longer none (a CPU fault raced);
// a compound destination replaces a pmd_none or huge zero PMD (migrate_vma_insert_huge_pmd_page),
// a 4 KiB destination under a huge zero PMD splits it first (split_huge_pmd, CLEAR round);
// migrate_vma_finalize: remove_migration_ptes(src, dst or src) in every mapping, the source freed
// when migrated, folios unlocked, migration-entry waiters woken.
//
// Leaves out: swap cache, file-backed (page-cache) migration to system memory (no hmmsim driver
// does it: such sources lose MIGRATE), mlock, userfaultfd, memcg charges, the LRU (isolation is the
// folio lock here).
// Timing: none in the mm part. The copy step (MigrateCopier) moves the bytes through PhysMem and
// accumulates a simulated cost (bytes/s + per-page latency) that a SystemC shell charges; the PCIe
// model will replace it when DMA engines do the copy.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "sim/errno.h"
#include "sim/stats.h"
#include "sim/strong_types.h"

namespace hmmsim {

class Mm;
class PhysMem;
class Vma;

// ---- include/linux/migrate.h ----
inline constexpr unsigned long MIGRATE_PFN_VALID = 1UL << 0;     ///< the entry holds a pfn
inline constexpr unsigned long MIGRATE_PFN_MIGRATE = 1UL << 1;   ///< src: selected (still) to migrate
inline constexpr unsigned long MIGRATE_PFN_WRITE = 1UL << 3;     ///< the CPU mapping was writable
inline constexpr unsigned long MIGRATE_PFN_COMPOUND = 1UL << 4;  ///< a PMD-order folio (512 slots)
inline constexpr unsigned MIGRATE_PFN_SHIFT = 6;

/// migrate_pfn(): (pfn << MIGRATE_PFN_SHIFT) | MIGRATE_PFN_VALID.
inline unsigned long migratePfn(Pfn pfn) {
  return (static_cast<unsigned long>(pfn.value()) << MIGRATE_PFN_SHIFT) | MIGRATE_PFN_VALID;
}
/// migrate_pfn_to_page()'s pfn: the pfn of a VALID entry, std::nullopt otherwise.
inline std::optional<Pfn> migratePfnToPfn(unsigned long mpfn) {
  if (!(mpfn & MIGRATE_PFN_VALID)) return std::nullopt;
  return Pfn(mpfn >> MIGRATE_PFN_SHIFT);
}

/// enum migrate_vma_direction.
inline constexpr unsigned long MIGRATE_VMA_SELECT_SYSTEM = 1UL << 0;
inline constexpr unsigned long MIGRATE_VMA_SELECT_DEVICE_PRIVATE = 1UL << 1;
inline constexpr unsigned long MIGRATE_VMA_SELECT_DEVICE_COHERENT = 1UL << 2;
inline constexpr unsigned long MIGRATE_VMA_SELECT_COMPOUND = 1UL << 3;

/// struct migrate_vma. src/dst have (end - start) / 4 KiB entries.
struct MigrateVma {
  Vma* vma = nullptr;
  unsigned long* dst = nullptr;  ///< destinations: migrate_pfn(dpfn) [| WRITE] [| COMPOUND], or 0
  unsigned long* src = nullptr;  ///< sources, filled by migrateVmaSetup
  /// Pages selected for migration (MIGRATE set) after setup; a compound entry counts its 512
  /// pages (hmmsim counts pages, so cpages compares with npages in the selftests).
  unsigned long cpages = 0;
  unsigned long npages = 0;  ///< entries filled by setup
  Va start;
  Va end;
  const void* pgmapOwner = nullptr;  ///< device pages of this owner are selected; MIGRATE event owner
  unsigned long flags = 0;           ///< MIGRATE_VMA_SELECT_*
  /// The locked device-private page a CPU fault is migrating back (migrate_to_ram), or none.
  std::optional<Pfn> faultPage;
};

/// migrate_vma_setup(): collect and unmap the pages of [start, end) (mmap lock held by the caller).
/// On return src[i] is migrate_pfn(pfn) | MIGRATE [| WRITE] [| COMPOUND] for a locked, unmapped
/// source page (a migration entry is in the page table), MIGRATE alone for an empty or zero-page
/// slot of an anonymous vma, MIGRATE | COMPOUND (no pfn; the other 511 slots 0) for a whole
/// aligned empty PMD or (with SELECT_SYSTEM) a huge zero PMD under SELECT_COMPOUND, 0 for anything
/// not migrating; dst[] is cleared; cpages counts the selected pages.
/// Returns Ok, or Inval (changing nothing): no vma; hugetlb, VM_IO/VM_PFNMAP/VM_MIXEDMAP/
/// VM_DONTEXPAND vma; start/end unaligned (the kernel masks them; hmmsim refuses), start >= end,
/// range not inside the vma; no src/dst; a faultPage that is not a locked device-private page.
Errno migrateVmaSetup(MigrateVma& args);

/// migrate_vma_pages(): commit. For each src with MIGRATE and a VALID dst: a source page hands its
/// identity (anon mapping, index) to the destination; an empty source gets the destination
/// inserted into the page table now (device-private entry or present pte). MIGRATE is cleared where
/// that is impossible: no dst; a page-cache source going to device memory; extra references taken
/// since setup; an empty slot that is no longer empty. A compound source with a non-compound dst is
/// split first (its remaining 511 slots take their own dst entries).
void migrateVmaPages(MigrateVma& args);

/// migrate_vma_finalize(): every migration entry is replaced by the destination (migrated) or the
/// source again (not migrated); migrated sources lose the migration's reference (and are freed,
/// device ones through folio_free); destinations and sources are unlocked (except the fault page)
/// and the driver's destination reference dropped; waiters on migration entries are woken.
void migrateVmaFinalize(MigrateVma& args);

/// migrate_device_range(): select device pages [startPfn, startPfn + npages) for migration by pfn:
/// each allocated (refcount > 0, not a tail) page is referenced, locked (trylock) and unmapped from
/// every mapping (try_to_migrate through the anon_vma chain: migration entries); pinned pages
/// are restored and dropped. src[i] gets
/// migrate_pfn | MIGRATE (| COMPOUND on a PMD folio's head, 0 on its tails), 0 for free pages.
/// Returns Ok.
Errno migrateDeviceRange(PhysMem& pm, unsigned long* src, Pfn startPfn, unsigned long npages);
/// migrate_device_pfns(): the same for an array of pfns already in src[] (as plain pfn values).
Errno migrateDevicePfns(PhysMem& pm, unsigned long* src, unsigned long npages);
/// migrate_device_pages(): migrate_vma_pages without a vma (no insertions).
void migrateDevicePages(PhysMem& pm, unsigned long* src, unsigned long* dst, unsigned long npages);
/// migrate_device_finalize().
void migrateDeviceFinalize(PhysMem& pm, unsigned long* src, unsigned long* dst, unsigned long npages);

/// Allocate a system-RAM destination folio for migration (alloc_pages + lock_page): refcount 1,
/// locked. std::nullopt when RAM is exhausted.
std::optional<Pfn> migrateAllocSystemFolio(PhysMem& pm, unsigned order = 0);

/// Cost of the copy step until the PCIe model performs it.
struct MigrateCopyParams {
  /// Copy bandwidth. Unit: bytes/s. Default 16e9 (a PCIe Gen4 x16 DMA engine, roughly).
  double bytesPerSecond = 16e9;
  /// Fixed cost per copied or cleared folio (descriptor setup). Unit: ps. Default 1000000 (1 us).
  std::uint64_t perPageLatencyPs = 1000000;
};

/// The driver's copy step: moves the bytes (copy_highpage / clear_highpage through PhysMem) and
/// accumulates the simulated time it would take. Not thread-aware; one per device.
class MigrateCopier {
 public:
  explicit MigrateCopier(PhysMem& pm, const MigrateCopyParams& params = {},
                         const std::string& statsName = "migrate_copy");
  /// dst := src for a folio of 2^order pages. Charges bytes + one latency.
  void copyFolio(Pfn dst, Pfn src, unsigned order = 0);
  /// dst := zeros (destination of an empty source). Charges like a copy (the engine writes it).
  void clearFolio(Pfn dst, unsigned order = 0);
  /// Simulated time accumulated since the last take. Unit: ps.
  std::uint64_t pendingPs() const { return pendingPs_; }
  /// Returns pendingPs() and resets it (a SystemC shell calls this and waits that long).
  std::uint64_t takePendingPs() {
    const std::uint64_t t = pendingPs_;
    pendingPs_ = 0;
    return t;
  }
  /// Total simulated time ever charged. Unit: ps.
  std::uint64_t totalPs() const { return totalPs_; }
  StatsGroup& stats() { return stats_; }

 private:
  void charge(std::uint64_t bytes);

  PhysMem& pm_;
  MigrateCopyParams params_;
  std::uint64_t pendingPs_ = 0;
  std::uint64_t totalPs_ = 0;
  StatsGroup stats_;
  Counter& bytesCopied_;
  Counter& bytesCleared_;
  Counter& folios_;
};

}  // namespace hmmsim
