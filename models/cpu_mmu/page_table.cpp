#include "models/cpu_mmu/page_table.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <optional>

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
  for (Table* s : slabs_) std::free(s);
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
    if (slabs_.empty() || slabUsed_ == kSlabTables) {
      void* mem = std::aligned_alloc(alignof(Table), kSlabTables * sizeof(Table));
      HMMSIM_ASSERT(mem, "PageTable: host out of memory");
      slabs_.push_back(static_cast<Table*>(mem));
      slabUsed_ = 0;
    }
    t = slabs_.back() + slabUsed_++;
  }
  std::memset(static_cast<void*>(t), 0, sizeof(Table));
  if (pfn) tableFrames_.emplace(t, *pfn);
  ++tablesLive_;
  ++tablesAt_[static_cast<unsigned>(level)];
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

PtWalk PageTable::lookup(Va va) const {
  HMMSIM_ASSERT(va.value() < kVaLimit, "PageTable::lookup: va " << va << " beyond 48 bits");
  PtWalk w;
  const std::uint64_t v = va.value();
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
  slot = &tableOf(e)->e[(v >> 12) & 511];
  e = *slot;
  w.levelsTouched = 4;
  w.slot = slot;
  w.slotLevel = PtLevel::Pte;
  w.pte = e;
  w.level = e.isNone() ? PtLevel::None : PtLevel::Pte;
  return w;
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

std::uint64_t PageTable::freeLevel(Table* t, PtLevel level, std::uint64_t base,
                                   std::uint64_t start, std::uint64_t end) {
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

std::uint64_t PageTable::freePgtables(Va start, Va end) {
  HMMSIM_ASSERT(start < end && end.value() <= kVaLimit,
                "freePgtables: bad range [" << start << ", " << end << ")");
  return freeLevel(pgd_, PtLevel::Pgd, 0, start.value(), end.value());
}

}  // namespace hmmsim
