#pragma once
// PageTable: one mm's CPU page table (pgd_t *mm->pgd and everything under it), x86-64 4-level
// paging: PGD -> PUD -> PMD -> PTE tables of 512 entries, leaves at PTE (4 KiB), PMD (2 MiB) and
// PUD (1 GiB) level. Covers a 48-bit virtual address space (256 TiB).
//
// Models: the walk (lookup), the allocate-on-demand slot accessors of the kernel's
// pgd_offset/pud_alloc/pmd_alloc/pte_alloc, huge-leaf splits (__split_huge_pmd_locked and the
// PUD equivalent) for present and non-present (migration, device-private) leaves, a range walker
// in the spirit of mm/pagewalk.c that skips empty upper-level entries in O(1) each, and
// free_pgtables. Entry kinds and bits: pte.h.
// A table-pointer entry holds the host address of the next table in its address field (bits
// 12..51) instead of a physical address, so a walk is four dependent loads and no lookups.
// When constructed with a PhysMem, every table page is also backed by an allocated order-0
// frame (kFramePageTable), so page tables consume simulated RAM and can fail with NoMem like
// pte_alloc; tablePfn() gives the frame for DRAM timing. Without PhysMem they cost host memory
// only (unit tests, benchmarks).
// Leaves out: 5-level paging (P4D), the split page-table locks (callers stand for the mmap and
// PTL locks: one operation at a time), PTE-table sharing (hugetlb PMD sharing), the kernel's
// deferred RCU freeing of tables, TLB flushing (the CPU model's business), and the accessed/dirty
// updates the MMU makes (done by the CPU model through the returned slot).
// Timing: none here; PtWalk::levelsTouched tells the CPU model how many entries a walk read.

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <type_traits>
#include <vector>

#include "models/cpu_mmu/pte.h"
#include "sim/assert.h"
#include "sim/errno.h"
#include "sim/strong_types.h"

namespace hmmsim {

class PhysMem;

/// Result of PageTable::lookup.
struct PtWalk {
  /// Level of the leaf found (Pte, Pmd or Pud), or None for a hole.
  PtLevel level = PtLevel::None;
  /// The leaf entry (present or swap-style); a none entry for a hole.
  Pte pte;
  /// The leaf's slot; for a hole, the empty slot where the walk stopped (at level slotLevel).
  Pte* slot = nullptr;
  /// Level of `slot`.
  PtLevel slotLevel = PtLevel::None;
  /// Table entries read: 1 (stopped at the PGD) .. 4 (reached a PTE). For walk timing.
  unsigned levelsTouched = 0;
};

/// One visit of PageTable::walkRange.
struct PtRangeEntry {
  /// The part of the walked range this visit covers: for a leaf, the leaf's span clipped to the
  /// walked range; for a hole, a maximal run of unmapped addresses (clipped).
  Va start, end;
  /// Leaf level (Pte, Pmd, Pud) or None for a hole.
  PtLevel level = PtLevel::None;
  /// The leaf slot (the visitor may read or overwrite it); nullptr for a hole.
  Pte* slot = nullptr;
  /// First address mapped by the leaf (aligned to its size); equals `start` for holes.
  Va leafStart() const { return level == PtLevel::None ? start : start.alignDown(ptLevelSize(level)); }
};

/// What the walker does after a visit.
enum class WalkAction {
  Continue,  ///< go on with the next entry
  Stop,      ///< end the walk now (walkRange returns false)
  Retry,     ///< look at the same slot again (after the visitor split a huge leaf, say)
};

class PageTable {
 public:
  static constexpr unsigned kEntries = 512;
  static constexpr unsigned kVaBits = 48;
  static constexpr std::uint64_t kVaLimit = 1ull << kVaBits;

  /// A table page: 512 entries, 4 KiB, 4 KiB aligned.
  struct alignas(4096) Table {
    Pte e[kEntries];
  };

  /// `physMem` (optional, non-owning, must outlive the PageTable): back every table page by an
  /// order-0 frame. The PGD is allocated here; with PhysMem, failing to get a frame for it is a
  /// simulator bug (HMMSIM_ASSERT): an mm cannot exist without its pgd.
  explicit PageTable(PhysMem* physMem = nullptr);
  ~PageTable();
  PageTable(const PageTable&) = delete;
  PageTable& operator=(const PageTable&) = delete;

  /// Walk for `va` (< kVaLimit): the leaf mapping it, or where the walk stopped.
  PtWalk lookup(Va va) const;

  /// The entries a hardware walk for `va` reads, top level first: path[0] is the PGD entry,
  /// then PUD, PMD and PTE entries as far as the walk goes (it stops at a leaf or a none
  /// entry). Returns how many (1..4, equal to lookup(va).levelsTouched). For walk timing: the
  /// CPU model turns each into a memory read at tablePfn(entry).
  unsigned walkPath(Va va, const Pte* path[4]) const;

  /// pgd_offset: the PGD slot for `va` (always exists).
  Pte* pgdPtr(Va va);
  /// Slot contract (all three accessors): the caller may write leaves (present or swap-style)
  /// and none into a slot; a slot that holds a table pointer must not be overwritten (that
  /// would orphan the table; freePgtables removes empty tables, splitHugePmd/Pud create them).
  /// pud_offset / pud_alloc: the PUD slot for `va`. With allocate, missing tables are created.
  /// Returns nullptr: missing table and !allocate (err = NoEnt), or table allocation failed
  /// (err = NoMem). `err` (optional) gets Ok on success.
  Pte* pudPtr(Va va, bool allocate, Errno* err = nullptr);
  /// pmd_offset / pmd_alloc: the PMD slot for `va`. Also returns nullptr (err = Exist) when the
  /// PUD slot holds a leaf (a 1 GiB mapping or a swap-style PUD entry): split it first.
  Pte* pmdPtr(Va va, bool allocate, Errno* err = nullptr);
  /// pte_offset_map / pte_alloc: the PTE slot for `va`. nullptr as pmdPtr, and also when the
  /// PMD slot holds a leaf (err = Exist).
  Pte* ptePtr(Va va, bool allocate, Errno* err = nullptr);

  /// __split_huge_pmd_locked's page-table part: the PMD leaf mapping `va` (present huge entry or
  /// non-present PMD entry) becomes a PTE table of 512 entries with consecutive pfns (swap
  /// offsets for non-present kinds) and the same bits, PS cleared. Refcounts/mapcounts are the
  /// mm's business. Returns Ok; Inval if the PMD slot is not a leaf (none, table, or missing
  /// upper tables); NoMem if a table page could not be allocated (nothing changes).
  Errno splitHugePmd(Va va);
  /// The same one level up: a PUD leaf becomes a PMD table of 512 huge PMD entries (pfn +
  /// i*512). Returns Ok / Inval / NoMem as splitHugePmd.
  Errno splitHugePud(Va va);

  /// Walk [start, end) (page aligned, start < end <= kVaLimit) in address order. The visitor,
  /// `WalkAction visitor(const PtRangeEntry&)`, sees every leaf (present or swap-style) once,
  /// clipped to the range, and every maximal hole once (none entries at any level, adjacent
  /// holes coalesced; an empty upper-level entry costs O(1)). The visitor may overwrite the
  /// visited slot (clear it, write-protect it, ...) and may split the visited huge leaf and
  /// return Retry to have its new table walked. It must not free tables (freePgtables) or
  /// create entries elsewhere in the range during the walk.
  /// Returns false if the visitor stopped the walk, true otherwise.
  template <class Visitor>
  bool walkRange(Va start, Va end, Visitor&& visitor);

  /// free_pgtables: free every table (except the PGD) that intersects [start, end) and is empty
  /// (all 512 entries none), bottom-up, clearing the entry that pointed to it. Slot pointers
  /// into freed tables become invalid. Returns the number of table pages freed.
  std::uint64_t freePgtables(Va start, Va end);

  /// Live table pages, PGD included (mm_pgtables_bytes / 4096 + 1).
  std::uint64_t tablePages() const { return tablesLive_; }
  /// Live table pages whose entries are at `level` (Pgd: 1, Pud, Pmd, Pte tables).
  std::uint64_t tablePages(PtLevel level) const { return tablesAt_[static_cast<unsigned>(level)]; }
  /// Host bytes of live tables (tablePages() * 4096).
  std::uint64_t tableBytes() const { return tablesLive_ * sizeof(Table); }
  /// The frame backing the table that contains `slot` (PhysMem-backed tables only).
  /// HMMSIM_ASSERT if the table is not live or the PageTable has no PhysMem.
  Pfn tablePfn(const Pte* slot) const;

  /// Index of `va`'s entry in the table of `level`.
  static constexpr unsigned index(Va va, PtLevel level) {
    return unsigned((va.value() >> (kPageShift + 9u * (unsigned(level) - 1u))) & (kEntries - 1));
  }
  /// The table a table-pointer entry points to.
  static Table* tableOf(Pte e) { return reinterpret_cast<Table*>(e.raw() & Pte::kPfnMask); }

 private:
  Table* allocTable(PtLevel level, Errno* err);
  void freeTable(Table* t, PtLevel level);
  static bool tableEmpty(const Table* t);
  std::uint64_t freeLevel(Table* t, PtLevel level, std::uint64_t base, std::uint64_t start,
                          std::uint64_t end);
  Pte* slotAt(Va va, PtLevel want, bool allocate, Errno* err);

  // Range walker (template, header-defined so the visitor inlines).
  struct HoleRun {
    std::uint64_t start = 0, end = 0;
    bool open = false;
  };
  template <class Visitor>
  bool walkLevel(Table* t, PtLevel level, std::uint64_t start, std::uint64_t end, Visitor& visitor,
                 HoleRun& hole);
  template <class Visitor>
  static bool flushHole(Visitor& visitor, HoleRun& hole);

  PhysMem* physMem_;
  Table* pgd_ = nullptr;
  std::uint64_t tablesLive_ = 0;
  std::uint64_t tablesAt_[5] = {0, 0, 0, 0, 0};
  // Host storage: slabs of tables, freed tables reused LIFO (deterministic, no per-table malloc).
  struct Slab {
    Table* base;
    std::size_t tables;
    bool mapped;  // mmap'ed (huge-page slab) rather than malloc'ed
  };
  void newSlab();
  std::vector<Slab> slabs_;
  std::vector<Table*> freeTables_;
  std::size_t slabUsed_ = 0;                           // tables handed out from the newest slab
  static constexpr std::size_t kHugeSlabTables = 512;  // 2 MiB
  // PhysMem-backed tables: table -> frame. Looked up only on alloc/free/tablePfn.
  std::map<const Table*, Pfn> tableFrames_;
  // Host-speed shortcut for lookup (not a model of the MMU's paging-structure caches: results
  // and levelsTouched are those of the full walk). Direct-mapped by 2 MiB region: the PTE table
  // the region's PMD slot pointed to when last walked. A PMD slot's table pointer changes only
  // inside PageTable (the slot contract forbids callers to overwrite a table pointer; tables
  // appear by allocation or split and disappear only in freePgtables), so a hit needs no
  // re-validation and freePgtables clears the cache (a freed table's memory may be reused).
  // Debug builds re-walk on every hit to check that. Created once the table has
  // kPdeCacheMinTables PTE tables, so small page tables pay nothing; it then grows (cleared) to
  // the next power of two >= the number of PTE tables, up to kPdeCacheMaxEntries (1 MiB).
  struct PdeCacheEntry {
    std::uint64_t tag;  // va >> 21; ~0 = empty
    Table* pte;         // the PTE table
  };
  static constexpr std::size_t kPdeCacheMinEntries = 2048;
  static constexpr std::size_t kPdeCacheMaxEntries = 65536;
  static constexpr std::uint64_t kPdeCacheMinTables = 64;
  std::unique_ptr<PdeCacheEntry[]> pdeCache_;
  std::size_t pdeCacheMask_ = 0;  // entries - 1
  void sizePdeCache();            // create or double the cache as the PTE tables grow (see above)
  void clearPdeCache();
};

// ---------------------------------------------------------------------------------------------
// lookup implementation
// ---------------------------------------------------------------------------------------------

// Inline: the hot path of every CPU access that misses the TLB and of hmm_range_fault.
inline __attribute__((always_inline)) PtWalk PageTable::lookup(Va va) const {
  HMMSIM_ASSERT(va.value() < kVaLimit, "PageTable::lookup: va " << va << " beyond 48 bits");
  PtWalk w;
  const std::uint64_t v = va.value();
  PdeCacheEntry* pc = nullptr;
  if (pdeCache_) {
    pc = &pdeCache_[(v >> 21) & pdeCacheMask_];
    if (pc->tag == (v >> 21)) {
      Pte* s = &pc->pte->e[(v >> 12) & 511];
#ifndef NDEBUG
      const Pte* pmd = &tableOf(tableOf(pgd_->e[(v >> 39) & 511])->e[(v >> 30) & 511])->e[(v >> 21) & 511];
      HMMSIM_ASSERT(pmd->isTable() && tableOf(*pmd) == pc->pte,
                    "PageTable: a PMD slot's table pointer was overwritten outside PageTable at " << va);
#endif
      w.pte = *s;
      w.levelsTouched = 4;
      w.slot = s;
      w.slotLevel = PtLevel::Pte;
      w.level = w.pte.isNone() ? PtLevel::None : PtLevel::Pte;
      return w;
    }
  }
  Pte* slot = &pgd_->e[(v >> 39) & 511];
  Pte e = *slot;
  w.levelsTouched = 1;
  if (e.isNone()) {
    w.slot = slot;
    w.slotLevel = PtLevel::Pgd;
    return w;
  }
  slot = &tableOf(e)->e[(v >> 30) & 511];
  e = *slot;
  w.levelsTouched = 2;
  if (!e.isTable()) {
    w.slot = slot;
    w.slotLevel = PtLevel::Pud;
    w.pte = e;
    w.level = e.isNone() ? PtLevel::None : PtLevel::Pud;
    return w;
  }
  slot = &tableOf(e)->e[(v >> 21) & 511];
  e = *slot;
  w.levelsTouched = 3;
  if (!e.isTable()) {
    w.slot = slot;
    w.slotLevel = PtLevel::Pmd;
    w.pte = e;
    w.level = e.isNone() ? PtLevel::None : PtLevel::Pmd;
    return w;
  }
  if (pc) *pc = PdeCacheEntry{v >> 21, tableOf(e)};
  slot = &tableOf(e)->e[(v >> 12) & 511];
  e = *slot;
  w.levelsTouched = 4;
  w.slot = slot;
  w.slotLevel = PtLevel::Pte;
  w.pte = e;
  w.level = e.isNone() ? PtLevel::None : PtLevel::Pte;
  return w;
}

// ---------------------------------------------------------------------------------------------
// walkRange implementation
// ---------------------------------------------------------------------------------------------

template <class Visitor>
bool PageTable::flushHole(Visitor& visitor, HoleRun& hole) {
  if (!hole.open) return true;
  hole.open = false;
  PtRangeEntry r{Va(hole.start), Va(hole.end), PtLevel::None, nullptr};
  return visitor(static_cast<const PtRangeEntry&>(r)) != WalkAction::Stop;
}

template <class Visitor>
bool PageTable::walkLevel(Table* t, PtLevel level, std::uint64_t start, std::uint64_t end, Visitor& visitor,
                          HoleRun& hole) {
  const unsigned shift = kPageShift + 9u * (unsigned(level) - 1u);
  const std::uint64_t size = 1ull << shift;
  std::uint64_t addr = start;
  while (addr < end) {
    const std::uint64_t entryStart = addr & ~(size - 1);
    const std::uint64_t next = entryStart + size;
    const std::uint64_t clipEnd = next < end ? next : end;
    Pte* slot = &t->e[(addr >> shift) & (kEntries - 1)];
    const Pte e = *slot;
    if (e.isNone()) {
      if (hole.open && hole.end == addr) {
        hole.end = clipEnd;
      } else {
        if (!flushHole(visitor, hole)) return false;
        hole = HoleRun{addr, clipEnd, true};
      }
      addr = next;
      continue;
    }
    if (level != PtLevel::Pte && (level == PtLevel::Pgd || e.isTable())) {
      if (!walkLevel(tableOf(e), PtLevel(unsigned(level) - 1u), addr, clipEnd, visitor, hole)) return false;
      addr = next;
      continue;
    }
    // A leaf at this level.
    if (!flushHole(visitor, hole)) return false;
    PtRangeEntry r{Va(addr), Va(clipEnd), level, slot};
    const WalkAction a = visitor(static_cast<const PtRangeEntry&>(r));
    if (a == WalkAction::Stop) return false;
    if (a == WalkAction::Retry) continue;  // re-read the same slot
    addr = next;
  }
  return true;
}

template <class Visitor>
bool PageTable::walkRange(Va start, Va end, Visitor&& visitor) {
  HMMSIM_ASSERT(
      start < end && end.value() <= kVaLimit && start.isAligned(kPageSize) && end.isAligned(kPageSize),
      "walkRange: bad range [" << start << ", " << end << ")");
  HoleRun hole;
  if (!walkLevel(pgd_, PtLevel::Pgd, start.value(), end.value(), visitor, hole)) return false;
  return flushHole(visitor, hole);
}

}  // namespace hmmsim
