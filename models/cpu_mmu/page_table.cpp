#include "models/cpu_mmu/page_table.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <optional>

#include <sys/mman.h>

#include "models/cpu_mmu/phys_mem.h"

namespace hmmsim {

namespace {
// Bits of a table-pointer entry besides the address (x86: _PAGE_TABLE).
constexpr std::uint64_t kTableBits = Pte::kPresent | Pte::kRw | Pte::kUser | Pte::kAccessed;

Pte mkTableEntry(const PageTable::Table* t) {
  const auto a = reinterpret_cast<std::uintptr_t>(t);
  HMMSIM_ASSERT((a & ~Pte::kPfnMask) == 0, "PageTable: table address not encodable");
  return Pte(kTableBits | a);
}
}  // namespace

PageTable::PageTable(PhysMem* physMem) : physMem_(physMem) {
  Errno err = Errno::Ok;
  pgd_ = allocTable(PtLevel::Pgd, &err);
  HMMSIM_ASSERT(pgd_, "PageTable: no memory for the pgd (" << errnoName(err) << ")");
}

PageTable::~PageTable() {
  // Frames are returned in ascending pfn order, independent of host addresses, so PhysMem's
  // free lists end up the same on every run.
  if (physMem_) {
    std::vector<Pfn> pfns;
    pfns.reserve(tableFrames_.size());
    for (const auto& kv : tableFrames_) pfns.push_back(kv.second);
    std::sort(pfns.begin(), pfns.end());
    for (Pfn p : pfns) {
      physMem_->frame(p).clear(kFramePageTable);
      physMem_->putPage(p);
    }
  }
  for (const Slab& s : slabs_) {
    if (s.mapped)
      munmap(s.base, s.tables * sizeof(Table));
    else
      std::free(s.base);
  }
}

void PageTable::newSlab() {
  // Small page tables stay small (64 KiB, then 256 KiB slabs); once a table has grown past
  // that, slabs are 2 MiB and backed by a host huge page where the host allows it, so that
  // random walks over millions of PTEs do not miss the host TLB on every table.
  const std::size_t n = slabs_.size() < 1 ? 16 : (slabs_.size() < 4 ? 64 : kHugeSlabTables);
  Slab s{nullptr, n, false};
  if (n == kHugeSlabTables) {
    const std::size_t bytes = n * sizeof(Table);
    void* raw = mmap(nullptr, 2 * bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw != MAP_FAILED) {
      const auto a = reinterpret_cast<std::uintptr_t>(raw);
      const std::uintptr_t aligned = (a + bytes - 1) & ~std::uintptr_t(bytes - 1);
      if (aligned > a) munmap(raw, aligned - a);
      if (aligned + bytes < a + 2 * bytes)
        munmap(reinterpret_cast<void*>(aligned + bytes), a + 2 * bytes - aligned - bytes);
#ifdef MADV_HUGEPAGE
      madvise(reinterpret_cast<void*>(aligned), bytes, MADV_HUGEPAGE);
#endif
      s.base = reinterpret_cast<Table*>(aligned);
      s.mapped = true;
    }
  }
  if (!s.base) {
    s.base = static_cast<Table*>(std::aligned_alloc(alignof(Table), n * sizeof(Table)));
    HMMSIM_ASSERT(s.base, "PageTable: host out of memory");
  }
  slabs_.push_back(s);
  slabUsed_ = 0;
}

PageTable::Table* PageTable::allocTable(PtLevel level, Errno* err) {
  std::optional<Pfn> pfn;
  if (physMem_) {
    pfn = physMem_->allocFrame(0);
    if (!pfn) {
      if (err) *err = Errno::NoMem;
      return nullptr;
    }
    physMem_->frame(*pfn).set(kFramePageTable);
  }
  Table* t;
  if (!freeTables_.empty()) {
    t = freeTables_.back();
    freeTables_.pop_back();
  } else {
    if (slabs_.empty() || slabUsed_ == slabs_.back().tables) newSlab();
    t = slabs_.back().base + slabUsed_++;
  }
  std::memset(static_cast<void*>(t), 0, sizeof(Table));
  if (pfn) tableFrames_.emplace(t, *pfn);
  ++tablesLive_;
  ++tablesAt_[static_cast<unsigned>(level)];
  if (level == PtLevel::Pte) sizePdeCache();
  if (err) *err = Errno::Ok;
  return t;
}

void PageTable::freeTable(Table* t, PtLevel level) {
  if (physMem_) {
    auto it = tableFrames_.find(t);
    HMMSIM_ASSERT(it != tableFrames_.end(), "PageTable: freeing an unknown table");
    physMem_->frame(it->second).clear(kFramePageTable);
    physMem_->putPage(it->second);
    tableFrames_.erase(it);
  }
  freeTables_.push_back(t);
  --tablesLive_;
  --tablesAt_[static_cast<unsigned>(level)];
}

Pfn PageTable::tablePfn(const Pte* slot) const {
  HMMSIM_ASSERT(physMem_, "tablePfn: PageTable has no PhysMem");
  const auto a = reinterpret_cast<std::uintptr_t>(slot) & ~std::uintptr_t(sizeof(Table) - 1);
  auto it = tableFrames_.find(reinterpret_cast<const Table*>(a));
  HMMSIM_ASSERT(it != tableFrames_.end(), "tablePfn: slot is not in a live table");
  return it->second;
}

bool PageTable::tableEmpty(const Table* t) {
  std::uint64_t any = 0;
  for (unsigned i = 0; i < kEntries; ++i) any |= t->e[i].raw();
  return any == 0;
}

unsigned PageTable::walkPath(Va va, const Pte* path[4]) const {
  HMMSIM_ASSERT(va.value() < kVaLimit, "PageTable::walkPath: va " << va << " beyond 48 bits");
  const Table* t = pgd_;
  unsigned n = 0;
  for (PtLevel level = PtLevel::Pgd;; level = PtLevel(unsigned(level) - 1u)) {
    const Pte* slot = &t->e[index(va, level)];
    path[n++] = slot;
    const Pte e = *slot;
    if (level == PtLevel::Pte || e.isNone() || (level != PtLevel::Pgd && !e.isTable())) return n;
    t = tableOf(e);
  }
}

Pte* PageTable::pgdPtr(Va va) {
  HMMSIM_ASSERT(va.value() < kVaLimit, "PageTable: va " << va << " beyond 48 bits");
  return &pgd_->e[index(va, PtLevel::Pgd)];
}

Pte* PageTable::slotAt(Va va, PtLevel want, bool allocate, Errno* err) {
  Pte* slot = pgdPtr(va);
  for (PtLevel level = PtLevel::Pgd; level != want;) {
    const PtLevel below = PtLevel(unsigned(level) - 1u);
    Pte e = *slot;
    if (e.isNone()) {
      if (!allocate) {
        if (err) *err = Errno::NoEnt;
        return nullptr;
      }
      Table* t = allocTable(below, err);
      if (!t) return nullptr;
      e = mkTableEntry(t);
      *slot = e;
    } else if (level != PtLevel::Pgd && !e.isTable()) {
      if (err) *err = Errno::Exist;  // a leaf (huge or swap-style) sits above `want`
      return nullptr;
    }
    slot = &tableOf(e)->e[index(va, below)];
    level = below;
  }
  if (err) *err = Errno::Ok;
  return slot;
}

Pte* PageTable::pudPtr(Va va, bool allocate, Errno* err) {
  return slotAt(va, PtLevel::Pud, allocate, err);
}
Pte* PageTable::pmdPtr(Va va, bool allocate, Errno* err) {
  return slotAt(va, PtLevel::Pmd, allocate, err);
}
Pte* PageTable::ptePtr(Va va, bool allocate, Errno* err) {
  return slotAt(va, PtLevel::Pte, allocate, err);
}

Errno PageTable::splitHugePmd(Va va) {
  Pte* slot = slotAt(va, PtLevel::Pmd, false, nullptr);
  if (!slot) return Errno::Inval;
  const Pte e = *slot;
  if (e.isNone() || e.isTable()) return Errno::Inval;
  HMMSIM_ASSERT(!e.isSwapSlot(), "splitHugePmd: swap-slot PMD entry at " << va);
  HMMSIM_ASSERT(e.anyPfn().value() % kPagesPerPmd == 0,
                "splitHugePmd: PMD leaf with unaligned pfn " << e.anyPfn() << " at " << va);
  Errno err = Errno::Ok;
  Table* t = allocTable(PtLevel::Pte, &err);
  if (!t) return err;
  const Pte base = e.isPresent() ? e.clearHuge() : e;
  for (unsigned i = 0; i < kEntries; ++i) t->e[i] = base.plusPfn(i);
  *slot = mkTableEntry(t);
  return Errno::Ok;
}

Errno PageTable::splitHugePud(Va va) {
  Pte* slot = slotAt(va, PtLevel::Pud, false, nullptr);
  if (!slot) return Errno::Inval;
  const Pte e = *slot;
  if (e.isNone() || e.isTable()) return Errno::Inval;
  HMMSIM_ASSERT(!e.isSwapSlot(), "splitHugePud: swap-slot PUD entry at " << va);
  HMMSIM_ASSERT(e.anyPfn().value() % (kPagesPerPmd * kEntries) == 0,
                "splitHugePud: PUD leaf with unaligned pfn " << e.anyPfn() << " at " << va);
  Errno err = Errno::Ok;
  Table* t = allocTable(PtLevel::Pmd, &err);
  if (!t) return err;
  for (unsigned i = 0; i < kEntries; ++i) t->e[i] = e.plusPfn(std::uint64_t(i) * kPagesPerPmd);
  *slot = mkTableEntry(t);
  return Errno::Ok;
}

std::uint64_t PageTable::freeLevel(Table* t, PtLevel level, std::uint64_t base, std::uint64_t start,
                                   std::uint64_t end) {
  // `t` holds entries of `level` and covers [base, base + 512 * size).
  if (level == PtLevel::Pte) return 0;
  const unsigned shift = kPageShift + 9u * (unsigned(level) - 1u);
  const std::uint64_t size = 1ull << shift;
  const PtLevel below = PtLevel(unsigned(level) - 1u);
  std::uint64_t freed = 0;
  const unsigned i0 = unsigned((std::max(start, base) - base) >> shift);
  const std::uint64_t lastAddr = std::min(end, base + kEntries * size) - 1;
  const unsigned i1 = unsigned((lastAddr - base) >> shift);
  for (unsigned i = i0; i <= i1; ++i) {
    Pte& e = t->e[i];
    if (e.isNone() || (level != PtLevel::Pgd && !e.isTable())) continue;
    Table* child = tableOf(e);
    freed += freeLevel(child, below, base + i * size, start, end);
    if (tableEmpty(child)) {
      e = Pte();
      freeTable(child, below);
      ++freed;
    }
  }
  return freed;
}

void PageTable::sizePdeCache() {
  const std::uint64_t pteTables = tablesAt_[unsigned(PtLevel::Pte)];
  const std::size_t entries = pdeCache_ ? pdeCacheMask_ + 1 : 0;
  std::size_t want = entries;
  if (!pdeCache_ && pteTables >= kPdeCacheMinTables) want = kPdeCacheMinEntries;
  if (pdeCache_ && pteTables > entries && entries < kPdeCacheMaxEntries) want = entries * 2;
  if (want == entries) return;
  pdeCache_.reset(new PdeCacheEntry[want]);
  pdeCacheMask_ = want - 1;
  clearPdeCache();
}

void PageTable::clearPdeCache() {
  if (!pdeCache_) return;
  for (std::size_t i = 0; i <= pdeCacheMask_; ++i) pdeCache_[i] = PdeCacheEntry{~0ull, nullptr};
}

std::uint64_t PageTable::freePgtables(Va start, Va end) {
  HMMSIM_ASSERT(start < end && end.value() <= kVaLimit,
                "freePgtables: bad range [" << start << ", " << end << ")");
  const std::uint64_t freed = freeLevel(pgd_, PtLevel::Pgd, 0, start.value(), end.value());
  if (freed) clearPdeCache();
  return freed;
}

}  // namespace hmmsim
