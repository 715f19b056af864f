#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <vector>

#include "models/cpu_mmu/page_table.h"
#include "models/cpu_mmu/phys_mem.h"

using namespace hmmsim;

namespace {

constexpr std::uint64_t kGiB = 1ull << 30;
constexpr std::uint64_t kMiB = 1ull << 20;

struct Visit {
  std::uint64_t start, end;
  PtLevel level;
  Pte pte;
  bool operator==(const Visit& o) const {
    return start == o.start && end == o.end && level == o.level && pte == o.pte;
  }
};

std::ostream& operator<<(std::ostream& os, const Visit& v) {
  return os << "{" << std::hex << v.start << "-" << v.end << std::dec << " L" << int(v.level) << " "
            << std::hex << v.pte.raw() << std::dec << "}";
}

std::vector<Visit> collect(PageTable& pt, Va s, Va e) {
  std::vector<Visit> out;
  pt.walkRange(s, e, [&](const PtRangeEntry& r) {
    out.push_back({r.start.value(), r.end.value(), r.level, r.slot ? *r.slot : Pte()});
    return WalkAction::Continue;
  });
  return out;
}

}  // namespace

// ------------------------------------------------------------------------------------------
// Entry encoding
// ------------------------------------------------------------------------------------------

TEST_CASE("pte_none is the all-zero entry and nothing else is none") {
  CHECK(Pte().isNone());
  CHECK_FALSE(Pte().isPresent());
  CHECK_FALSE(Pte().isSwap());
  CHECK_FALSE(Pte::mkSwap(0, 0).isNone());
  CHECK(Pte::mkSwap(0, 0).isSwap());
  CHECK_FALSE(Pte::mkPresent(Pfn(0), false, false).isNone());
}

TEST_CASE("present entries round-trip pfn and permission bits") {
  const Pfn pfn((1ull << 40) - 1);  // the largest encodable pfn
  const Pte e = Pte::mkPresent(pfn, true);
  CHECK(e.isPresent());
  CHECK(e.isHwPresent());
  CHECK_FALSE(e.isSwap());
  CHECK(e.pfn() == pfn);
  CHECK(e.isWrite());
  CHECK(e.isUser());
  CHECK_FALSE(e.isHuge());
  CHECK(e.isExec());
  const Pte ro = Pte::mkPresent(Pfn(42), false);
  CHECK_FALSE(ro.isWrite());
  CHECK(ro.pfn() == Pfn(42));
  CHECK(ro.anyPfn() == Pfn(42));
  CHECK(ro.withPfn(Pfn(7)).pfn() == Pfn(7));
  CHECK_FALSE(ro.withPfn(Pfn(7)).isWrite());
}

TEST_CASE("pte modifiers set and clear exactly their bit") {
  const Pte e = Pte::mkPresent(Pfn(0x1234), false);
  CHECK(e.mkWrite().isWrite());
  CHECK_FALSE(e.mkWrite().wrprotect().isWrite());
  CHECK(e.mkDirty().isDirty());
  CHECK(e.mkDirty().isSoftDirty());  // x86 pte_mkdirty also marks soft-dirty
  CHECK_FALSE(e.mkDirty().mkClean().isDirty());
  CHECK(e.mkYoung().isYoung());
  CHECK_FALSE(e.mkYoung().mkOld().isYoung());
  CHECK(e.mkSpecial().isSpecial());
  CHECK_FALSE(e.isSpecial());
  CHECK(e.mkDevmap().isDevmap());
  CHECK(e.mkSoftDirty().isSoftDirty());
  CHECK_FALSE(e.mkSoftDirty().clearSoftDirty().isSoftDirty());
  CHECK(e.mkUffdWp().isUffdWp());
  CHECK(e.mkHuge().isHuge());
  CHECK_FALSE(e.mkHuge().clearHuge().isHuge());
  CHECK_FALSE(e.mkNoExec().isExec());
  for (Pte m : {e.mkWrite(), e.mkDirty(), e.mkYoung(), e.mkSpecial(), e.mkHuge(), e.mkSoftDirty()})
    CHECK(m.pfn() == Pfn(0x1234));
}

TEST_CASE("PROT_NONE entries are present to the kernel but not to the MMU") {
  const Pte e = Pte::mkPresent(Pfn(9), true).mkProtNone();
  CHECK(e.isPresent());
  CHECK_FALSE(e.isHwPresent());
  CHECK(e.isProtNone());
  CHECK_FALSE(e.isSwap());
  CHECK(e.pfn() == Pfn(9));
  CHECK(e.clearProtNone().isHwPresent());
  CHECK_FALSE(e.isTable());
}

TEST_CASE("every swap-style entry kind round-trips its type, pfn and predicates") {
  struct Kind {
    Pte e;
    bool devPriv, migration, devExcl, writable;
  };
  const Pfn pfn((1ull << 40) + 12345);  // device pfns may exceed RAM's range
  const std::vector<Kind> kinds = {
      {Pte::mkDevicePrivate(pfn, false), true, false, false, false},
      {Pte::mkDevicePrivate(pfn, true), true, false, false, true},
      {Pte::mkMigration(pfn, false), false, true, false, false},
      {Pte::mkMigration(pfn, false, true), false, true, false, false},
      {Pte::mkMigration(pfn, true), false, true, false, true},
      {Pte::mkDeviceExclusive(pfn, false), false, false, true, false},
      {Pte::mkDeviceExclusive(pfn, true), false, false, true, true},
  };
  for (const Kind& k : kinds) {
    INFO("type " << k.e.swpType());
    CHECK(k.e.isSwap());
    CHECK_FALSE(k.e.isPresent());
    CHECK_FALSE(k.e.isNone());
    CHECK_FALSE(k.e.isHuge());
    CHECK_FALSE(k.e.isTable());
    CHECK(k.e.isNonSwapEntry());
    CHECK(k.e.isPfnSwapEntry());
    CHECK(k.e.swpPfn() == pfn);
    CHECK(k.e.anyPfn() == pfn);
    CHECK(k.e.isDevicePrivateEntry() == k.devPriv);
    CHECK(k.e.isMigrationEntry() == k.migration);
    CHECK(k.e.isDeviceExclusiveEntry() == k.devExcl);
    CHECK(k.e.isWritableSwapEntry() == k.writable);
    CHECK(k.e.plusPfn(3).swpPfn() == pfn + 3);
    CHECK(k.e.plusPfn(3).swpType() == k.e.swpType());
    CHECK(k.e.mkSoftDirty().isSoftDirty());
    CHECK(k.e.mkSoftDirty().swpPfn() == pfn);
    CHECK(k.e.mkSoftDirty().swpType() == k.e.swpType());
    CHECK(k.e.mkSwpExclusive().isSwpExclusive());
    CHECK(k.e.mkUffdWp().isUffdWp());
  }
  CHECK(Pte::mkMigration(pfn, false, true).isReadableExclusiveMigrationEntry());
  CHECK(Pte::mkHwPoison(pfn).isHwPoisonEntry());
  CHECK(Pte::mkHwPoison(pfn).swpPfn() == pfn);
  const Pte slot = Pte::mkSwap(3, 0xabcdef);
  CHECK(slot.isSwapSlot());
  CHECK_FALSE(slot.isNonSwapEntry());
  CHECK_FALSE(slot.isPfnSwapEntry());
  CHECK(slot.swpType() == 3);
  CHECK(slot.swpOffset() == 0xabcdef);
}

TEST_CASE("mkSwpReadable turns writable pfn-swap entries into their readable kind") {
  const Pfn pfn(4321);
  const Pte mw = Pte::mkMigration(pfn, true).mkSoftDirty();
  CHECK(mw.mkSwpReadable() == Pte::mkMigration(pfn, false).mkSoftDirty());
  CHECK(Pte::mkMigration(pfn, false, true).mkSwpReadable() == Pte::mkMigration(pfn, false));
  CHECK(Pte::mkDevicePrivate(pfn, true).mkSwpReadable() == Pte::mkDevicePrivate(pfn, false));
  CHECK(Pte::mkDeviceExclusive(pfn, true).mkSwpReadable() == Pte::mkDeviceExclusive(pfn, false));
  CHECK(Pte::mkDevicePrivate(pfn, false).mkSwpReadable() == Pte::mkDevicePrivate(pfn, false));
  CHECK(Pte::mkPresent(pfn, true).mkSwpReadable() == Pte::mkPresent(pfn, true));
}

TEST_CASE("a present-entry modifier applied to a swap entry keeps its type and pfn") {
  for (const Pte e : {Pte::mkMigration(Pfn(77), true), Pte::mkDevicePrivate(Pfn(77), false),
                      Pte::mkDeviceExclusive(Pfn(77), true), Pte::mkSwap(0, 0)}) {
    for (const Pte m : {e.mkYoung(), e.mkOld(), e.mkDirty(), e.mkClean(), e.wrprotect(), e.mkWrite(),
                        e.mkSpecial(), e.mkDevmap()}) {
      REQUIRE(m.isSwap());
      REQUIRE(m.swpType() == e.swpType());
      REQUIRE(m.swpOffset() == e.swpOffset());
    }
  }
}

// ------------------------------------------------------------------------------------------
// Lookup and slots
// ------------------------------------------------------------------------------------------

TEST_CASE("an empty page table has only the pgd and every lookup is a hole at the pgd") {
  PageTable pt;
  CHECK(pt.tablePages() == 1);
  CHECK(pt.tablePages(PtLevel::Pgd) == 1);
  const PtWalk w = pt.lookup(Va(0x7fff'0000'0000));
  CHECK(w.level == PtLevel::None);
  CHECK(w.slotLevel == PtLevel::Pgd);
  CHECK(w.levelsTouched == 1);
  CHECK(w.pte.isNone());
  Errno err = Errno::Ok;
  CHECK(pt.ptePtr(Va(0x1000), false, &err) == nullptr);
  CHECK(err == Errno::NoEnt);
  CHECK(pt.tablePages() == 1);
}

TEST_CASE("a 4 KiB leaf set through ptePtr is found by a four-level lookup") {
  PageTable pt;
  const Va va(0x7f12'3456'7000);
  Pte* slot = pt.ptePtr(va, true);
  REQUIRE(slot);
  CHECK(pt.tablePages() == 4);
  CHECK(pt.tablePages(PtLevel::Pte) == 1);
  *slot = Pte::mkPresent(Pfn(777), true);
  const PtWalk w = pt.lookup(va + 0xabc);
  CHECK(w.level == PtLevel::Pte);
  CHECK(w.levelsTouched == 4);
  CHECK(w.slot == slot);
  CHECK(w.pte.pfn() == Pfn(777));
  const PtWalk hole = pt.lookup(va + kPageSize);
  CHECK(hole.level == PtLevel::None);
  CHECK(hole.slotLevel == PtLevel::Pte);
  CHECK(hole.levelsTouched == 4);
  CHECK(pt.ptePtr(va, false) == slot);
}

TEST_CASE("a 2 MiB leaf at pmd level is found by a three-level lookup") {
  PageTable pt;
  const Va va(3 * kGiB + 4 * kMiB);
  Pte* pmd = pt.pmdPtr(va, true);
  REQUIRE(pmd);
  *pmd = Pte::mkPresent(Pfn(512 * 9), false).mkHuge();
  CHECK(pt.tablePages() == 3);
  const PtWalk w = pt.lookup(va + 0x12345);
  CHECK(w.level == PtLevel::Pmd);
  CHECK(w.levelsTouched == 3);
  CHECK(w.slot == pmd);
  CHECK(w.pte.pfn() == Pfn(512 * 9));
  CHECK(w.pte.isHuge());
  Errno err = Errno::Ok;
  CHECK(pt.ptePtr(va, true, &err) == nullptr);
  CHECK(err == Errno::Exist);
  CHECK(pt.tablePages() == 3);
}

TEST_CASE("a 1 GiB leaf at pud level is found by a two-level lookup") {
  PageTable pt;
  const Va va(5 * kGiB);
  Pte* pud = pt.pudPtr(va, true);
  REQUIRE(pud);
  *pud = Pte::mkPresent(Pfn(1u << 18), true).mkHuge();
  const PtWalk w = pt.lookup(va + kGiB - 1);
  CHECK(w.level == PtLevel::Pud);
  CHECK(w.levelsTouched == 2);
  CHECK(w.pte.pfn() == Pfn(1u << 18));
  Errno err = Errno::Ok;
  CHECK(pt.pmdPtr(va, true, &err) == nullptr);
  CHECK(err == Errno::Exist);
  CHECK(pt.lookup(va + kGiB).level == PtLevel::None);
}

TEST_CASE("a non-present pmd entry is a pmd leaf, not a table") {
  PageTable pt;
  const Va va(2 * kMiB);
  *pt.pmdPtr(va, true) = Pte::mkMigration(Pfn(1024), true);
  const PtWalk w = pt.lookup(va + 5 * kPageSize);
  CHECK(w.level == PtLevel::Pmd);
  CHECK(w.pte.isMigrationEntry());
  CHECK(pt.ptePtr(va, true) == nullptr);
}

// ------------------------------------------------------------------------------------------
// Splits
// ------------------------------------------------------------------------------------------

TEST_CASE("splitting a huge pmd keeps every subpage's pfn and flags") {
  PageTable pt;
  const Va va(6 * kMiB);
  const Pte huge = Pte::mkPresent(Pfn(512 * 5), true).mkHuge().mkDirty().mkYoung().mkSoftDirty();
  *pt.pmdPtr(va, true) = huge;
  REQUIRE(pt.splitHugePmd(va + kPageSize) == Errno::Ok);
  CHECK(pt.tablePages(PtLevel::Pte) == 1);
  for (unsigned i = 0; i < 512; ++i) {
    const PtWalk w = pt.lookup(va + i * kPageSize);
    REQUIRE(w.level == PtLevel::Pte);
    REQUIRE(w.pte.pfn() == Pfn(512 * 5 + i));
    REQUIRE(w.pte.isWrite());
    REQUIRE(w.pte.isDirty());
    REQUIRE(w.pte.isYoung());
    REQUIRE(w.pte.isSoftDirty());
    REQUIRE(w.pte.isUser());
    REQUIRE_FALSE(w.pte.isHuge());
  }
}

TEST_CASE("splitting a pmd migration entry gives 512 migration entries with consecutive pfns") {
  PageTable pt;
  const Va va(10 * kMiB);
  *pt.pmdPtr(va, true) = Pte::mkMigration(Pfn(512 * 3), false, true).mkSoftDirty();
  REQUIRE(pt.splitHugePmd(va) == Errno::Ok);
  for (unsigned i = 0; i < 512; ++i) {
    const Pte e = pt.lookup(va + i * kPageSize).pte;
    REQUIRE(e.isMigrationEntry());
    REQUIRE(e.isReadableExclusiveMigrationEntry());
    REQUIRE(e.swpPfn() == Pfn(512 * 3 + i));
    REQUIRE(e.isSoftDirty());
  }
}

TEST_CASE("splitting a device-private pmd entry keeps the write permission on every subpage") {
  PageTable pt;
  const Va va(12 * kMiB);
  const Pfn dev((1ull << 30) + 512 * 7);
  *pt.pmdPtr(va, true) = Pte::mkDevicePrivate(dev, true);
  REQUIRE(pt.splitHugePmd(va) == Errno::Ok);
  for (unsigned i = 0; i < 512; ++i) {
    const Pte e = pt.lookup(va + i * kPageSize).pte;
    REQUIRE(e.isWritableDevicePrivateEntry());
    REQUIRE(e.swpPfn() == dev + i);
  }
}

TEST_CASE("splitHugePmd of anything but a pmd leaf returns Inval and changes nothing") {
  PageTable pt;
  CHECK(pt.splitHugePmd(Va(0)) == Errno::Inval);  // no tables at all
  *pt.ptePtr(Va(0), true) = Pte::mkPresent(Pfn(1), true);
  const std::uint64_t tables = pt.tablePages();
  CHECK(pt.splitHugePmd(Va(0)) == Errno::Inval);         // a pte table
  CHECK(pt.splitHugePmd(Va(2 * kMiB)) == Errno::Inval);  // a none pmd
  CHECK(pt.tablePages() == tables);
  CHECK(pt.lookup(Va(0)).pte.pfn() == Pfn(1));
}

TEST_CASE("splitting a huge pud gives 512 huge pmd leaves with the same flags") {
  PageTable pt;
  const Va va(kGiB);
  *pt.pudPtr(va, true) = Pte::mkPresent(Pfn(2u << 18), false).mkHuge().mkSpecial();
  REQUIRE(pt.splitHugePud(va) == Errno::Ok);
  for (unsigned i = 0; i < 512; ++i) {
    const PtWalk w = pt.lookup(va + i * kPmdSize + 17 * kPageSize);
    REQUIRE(w.level == PtLevel::Pmd);
    REQUIRE(w.pte.isHuge());
    REQUIRE(w.pte.isSpecial());
    REQUIRE_FALSE(w.pte.isWrite());
    REQUIRE(w.pte.pfn() == Pfn((2u << 18) + i * 512));
  }
  // And one of those can be split further.
  REQUIRE(pt.splitHugePmd(va + 3 * kPmdSize) == Errno::Ok);
  CHECK(pt.lookup(va + 3 * kPmdSize + 5 * kPageSize).pte.pfn() == Pfn((2u << 18) + 3 * 512 + 5));
}

// ------------------------------------------------------------------------------------------
// walkRange
// ------------------------------------------------------------------------------------------

TEST_CASE("walkRange visits exactly the populated leaves and the holes between them") {
  PageTable pt;
  *pt.ptePtr(Va(0x1000), true) = Pte::mkPresent(Pfn(1), true);
  *pt.ptePtr(Va(0x2000), true) = Pte::mkMigration(Pfn(2), true);
  *pt.ptePtr(Va(0x5000), true) = Pte::mkPresent(Pfn(5), false);
  *pt.pmdPtr(Va(4 * kMiB), true) = Pte::mkPresent(Pfn(512), true).mkHuge();
  *pt.pudPtr(Va(3 * kGiB), true) = Pte::mkPresent(Pfn(1u << 18), true).mkHuge();
  const auto v = collect(pt, Va(0), Va(4 * kGiB));
  const std::vector<Visit> want = {
      {0x0, 0x1000, PtLevel::None, Pte()},
      {0x1000, 0x2000, PtLevel::Pte, Pte::mkPresent(Pfn(1), true)},
      {0x2000, 0x3000, PtLevel::Pte, Pte::mkMigration(Pfn(2), true)},
      {0x3000, 0x5000, PtLevel::None, Pte()},
      {0x5000, 0x6000, PtLevel::Pte, Pte::mkPresent(Pfn(5), false)},
      {0x6000, 4 * kMiB, PtLevel::None, Pte()},
      {4 * kMiB, 6 * kMiB, PtLevel::Pmd, Pte::mkPresent(Pfn(512), true).mkHuge()},
      {6 * kMiB, 3 * kGiB, PtLevel::None, Pte()},
      {3 * kGiB, 4 * kGiB, PtLevel::Pud, Pte::mkPresent(Pfn(1u << 18), true).mkHuge()},
  };
  CHECK(v == want);
}

TEST_CASE("walkRange clips leaves to the walked range and reports one hole for empty space") {
  PageTable pt;
  *pt.pmdPtr(Va(2 * kMiB), true) = Pte::mkPresent(Pfn(512), true).mkHuge();
  const auto v = collect(pt, Va(3 * kMiB), Va(100 * kGiB));
  REQUIRE(v.size() == 2);
  CHECK(v[0] == Visit{3 * kMiB, 4 * kMiB, PtLevel::Pmd, Pte::mkPresent(Pfn(512), true).mkHuge()});
  CHECK(v[1] == Visit{4 * kMiB, 100 * kGiB, PtLevel::None, Pte()});
  // The whole 48-bit space of an empty table is one hole.
  PageTable empty;
  const auto all = collect(empty, Va(0), Va(PageTable::kVaLimit));
  REQUIRE(all.size() == 1);
  CHECK(all[0].end == PageTable::kVaLimit);
}

TEST_CASE("walkRange lets the visitor split a huge leaf and walk the new table") {
  PageTable pt;
  *pt.pmdPtr(Va(2 * kMiB), true) = Pte::mkPresent(Pfn(512), true).mkHuge();
  // Zap [2 MiB + 8 KiB, 3 MiB): the visitor splits the partially covered PMD, then clears PTEs.
  const Va s(2 * kMiB + 2 * kPageSize), e(3 * kMiB);
  unsigned cleared = 0;
  pt.walkRange(s, e, [&](const PtRangeEntry& r) {
    if (r.level == PtLevel::Pmd) {
      REQUIRE(pt.splitHugePmd(r.start) == Errno::Ok);
      return WalkAction::Retry;
    }
    if (r.level == PtLevel::Pte) {
      *r.slot = Pte();
      ++cleared;
    }
    return WalkAction::Continue;
  });
  CHECK(cleared == 256 - 2);
  CHECK(pt.lookup(Va(2 * kMiB + kPageSize)).pte.pfn() == Pfn(513));
  CHECK(pt.lookup(Va(2 * kMiB + 2 * kPageSize)).level == PtLevel::None);
  CHECK(pt.lookup(Va(3 * kMiB)).pte.pfn() == Pfn(512 + 256));
}

TEST_CASE("walkRange stops when the visitor says Stop") {
  PageTable pt;
  for (unsigned i = 0; i < 8; ++i) *pt.ptePtr(Va(i * kPageSize), true) = Pte::mkPresent(Pfn(i), true);
  unsigned seen = 0;
  const bool done = pt.walkRange(Va(0), Va(8 * kPageSize), [&](const PtRangeEntry&) {
    return ++seen == 3 ? WalkAction::Stop : WalkAction::Continue;
  });
  CHECK_FALSE(done);
  CHECK(seen == 3);
}

// ------------------------------------------------------------------------------------------
// freePgtables and accounting
// ------------------------------------------------------------------------------------------

TEST_CASE("freePgtables frees empty tables and keeps the ones still in use") {
  PageTable pt;
  *pt.ptePtr(Va(0x1000), true) = Pte::mkPresent(Pfn(1), true);
  *pt.ptePtr(Va(4 * kMiB), true) = Pte::mkPresent(Pfn(2), true);
  *pt.ptePtr(Va(600 * kGiB), true) = Pte::mkPresent(Pfn(3), true);
  CHECK(pt.tablePages() == 1 + 2 + 2 + 3);  // pgd; 2 pud, 2 pmd, 3 pte tables
  // Nothing is empty yet.
  CHECK(pt.freePgtables(Va(0), Va(PageTable::kVaLimit)) == 0);
  // Zap the 4 MiB page: only its PTE table becomes free.
  *pt.ptePtr(Va(4 * kMiB), false) = Pte();
  CHECK(pt.freePgtables(Va(4 * kMiB), Va(6 * kMiB)) == 1);
  CHECK(pt.tablePages(PtLevel::Pte) == 2);
  CHECK(pt.lookup(Va(0x1000)).pte.pfn() == Pfn(1));
  // Zap the far page: its PTE, PMD and PUD tables go.
  *pt.ptePtr(Va(600 * kGiB), false) = Pte();
  CHECK(pt.freePgtables(Va(512 * kGiB), Va(1024 * kGiB)) == 3);
  CHECK(pt.tablePages() == 4);
  CHECK(pt.lookup(Va(600 * kGiB)).slotLevel == PtLevel::Pgd);
  // Tables are reused after being freed.
  REQUIRE(pt.ptePtr(Va(600 * kGiB), true));
  CHECK(pt.tablePages() == 7);
}

TEST_CASE("a zap through walkRange followed by freePgtables leaves only the pgd") {
  PageTable pt;
  for (unsigned i = 0; i < 2000; ++i)
    *pt.ptePtr(Va(kGiB + i * 3 * kPageSize), true) = Pte::mkPresent(Pfn(i), true);
  const Va s(kGiB), e(kGiB + 6000 * kPageSize);
  std::uint64_t zapped = 0;
  pt.walkRange(s, e, [&](const PtRangeEntry& r) {
    if (r.slot) {
      *r.slot = Pte();
      ++zapped;
    }
    return WalkAction::Continue;
  });
  CHECK(zapped == 2000);
  CHECK(pt.freePgtables(s, e) == pt.tablePages() - 1);
  CHECK(pt.tablePages() == 1);
}

TEST_CASE("page tables backed by PhysMem use one frame per table and fail with NoMem") {
  PhysMemParams p;
  p.ramSize = 2ull << 20;
  PhysMem pm(p);
  const std::uint64_t free0 = pm.freePages();
  {
    PageTable pt(&pm);
    CHECK(pm.freePages() == free0 - 1);
    Pte* slot = pt.ptePtr(Va(0x1000), true);
    REQUIRE(slot);
    CHECK(pm.freePages() == free0 - 4);
    CHECK(pm.frame(pt.tablePfn(slot)).test(kFramePageTable));
    // Exhaust RAM, then ask for a new PTE table.
    std::vector<Pfn> hog;
    while (auto f = pm.allocFrame(0)) hog.push_back(*f);
    Errno err = Errno::Ok;
    CHECK(pt.ptePtr(Va(4 * kMiB), true, &err) == nullptr);
    CHECK(err == Errno::NoMem);
    CHECK(pt.tablePages() == 4);
    *pt.pmdPtr(Va(8 * kMiB), false) = Pte::mkPresent(Pfn(0), true).mkHuge();
    CHECK(pt.splitHugePmd(Va(8 * kMiB)) == Errno::NoMem);
    CHECK(pt.lookup(Va(8 * kMiB)).level == PtLevel::Pmd);
    for (Pfn f : hog) pm.putPage(f);
    *pt.pmdPtr(Va(8 * kMiB), false) = Pte();
  }
  CHECK(pm.freePages() == free0);
}

TEST_CASE("a page table with hundreds of table pages keeps every entry and frees them all") {
  PageTable pt;
  // One page per 2 MiB: one PTE table each (600 tables: past the small slabs into 2 MiB ones).
  for (unsigned i = 0; i < 600; ++i)
    *pt.ptePtr(Va(i * kPmdSize + (i % 512) * kPageSize), true) = Pte::mkPresent(Pfn(i), true);
  CHECK(pt.tablePages(PtLevel::Pte) == 600);
  for (unsigned i = 0; i < 600; ++i) {
    const PtWalk w = pt.lookup(Va(i * kPmdSize + (i % 512) * kPageSize));
    REQUIRE(w.level == PtLevel::Pte);
    REQUIRE(w.pte.pfn() == Pfn(i));
  }
  pt.walkRange(Va(0), Va(600 * kPmdSize), [](const PtRangeEntry& r) {
    if (r.slot) *r.slot = Pte();
    return WalkAction::Continue;
  });
  CHECK(pt.freePgtables(Va(0), Va(600 * kPmdSize)) == 600 + 2 + 1);
  CHECK(pt.tablePages() == 1);
}

TEST_CASE("random sets, clears, splits and frees agree with a reference map of leaves") {
  PageTable pt;
  // Reference: leaf start -> (level, entry), for VAs in [0, 8 GiB).
  std::map<std::uint64_t, std::pair<PtLevel, Pte>> ref;
  std::uint64_t x = 0x2545f4914f6cdd1dull;
  auto next = [&x] {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
  };
  auto covering = [&ref](std::uint64_t va) -> const std::pair<const std::uint64_t, std::pair<PtLevel, Pte>>* {
    auto it = ref.upper_bound(va);
    if (it == ref.begin()) return nullptr;
    --it;
    return it->first + ptLevelSize(it->second.first) > va ? &*it : nullptr;
  };
  const std::uint64_t kSpan = 8 * kGiB;
  for (int step = 0; step < 3000; ++step) {
    const std::uint64_t op = next() % 8;
    // Keep most activity in the first 64 MiB so that tables fill up and empty out again.
    const std::uint64_t va = (next() % 4 == 0 ? next() % kSpan : next() % (64 * kMiB)) & ~(kPageSize - 1);
    if (op < 3) {
      Errno err = Errno::Ok;
      Pte* slot = pt.ptePtr(Va(va), true, &err);
      const auto* c = covering(va);
      if (c && c->second.first != PtLevel::Pte) {
        REQUIRE(slot == nullptr);
        REQUIRE(err == Errno::Exist);
        continue;
      }
      REQUIRE(slot);
      const Pte e =
          (op == 0) ? Pte::mkMigration(Pfn(va >> 12), true) : Pte::mkPresent(Pfn(va >> 12), op == 1);
      *slot = e;
      ref[va] = {PtLevel::Pte, e};
    } else if (op == 3) {
      const std::uint64_t hva = va & ~(kPmdSize - 1);
      Pte* slot = pt.pmdPtr(Va(hva), true);
      if (!slot || !slot->isNone()) continue;  // a table or leaf is there already
      const Pte e = Pte::mkPresent(Pfn(hva >> 12), true).mkHuge();
      *slot = e;
      ref[hva] = {PtLevel::Pmd, e};
    } else if (op == 4 && !ref.empty()) {
      auto it = ref.begin();
      std::advance(it, long(next() % ref.size()));
      const PtWalk w = pt.lookup(Va(it->first));
      REQUIRE(w.level == it->second.first);
      REQUIRE(w.pte == it->second.second);
      *w.slot = Pte();
      ref.erase(it);
    } else if (op == 5 && !ref.empty()) {
      auto it = ref.lower_bound(va);
      if (it == ref.end() || it->second.first != PtLevel::Pmd) continue;
      const std::uint64_t hva = it->first;
      const Pte e = it->second.second;
      REQUIRE(pt.splitHugePmd(Va(hva)) == Errno::Ok);
      ref.erase(it);
      for (unsigned i = 0; i < 512; ++i) ref[hva + i * kPageSize] = {PtLevel::Pte, e.clearHuge().plusPfn(i)};
    } else if (op == 6) {
      const std::uint64_t a = va & ~(kPmdSize - 1);
      pt.freePgtables(Va(a), Va(a + (1 + next() % 64) * kPmdSize));
    } else {
      // Compare a walk of a random window with the reference.
      const std::uint64_t s = va, e = std::min(kSpan, s + (1 + next() % 4096) * kPageSize);
      std::vector<std::pair<std::uint64_t, Pte>> got, want;
      pt.walkRange(Va(s), Va(e), [&](const PtRangeEntry& r) {
        if (r.slot) got.emplace_back(r.leafStart().value(), *r.slot);
        return WalkAction::Continue;
      });
      // Only PTE and PMD leaves exist: a leaf overlapping [s, e) starts at or after s - 2 MiB.
      for (auto it = ref.lower_bound(s >= kPmdSize ? s - kPmdSize : 0); it != ref.end() && it->first < e;
           ++it) {
        const std::uint64_t end = it->first + ptLevelSize(it->second.first);
        if (end > s && it->first < e) want.emplace_back(it->first, it->second.second);
      }
      REQUIRE(got == want);
    }
  }
  // Clear everything; then every table but the pgd can go.
  for (const auto& [va, le] : ref) *pt.lookup(Va(va)).slot = Pte();
  pt.freePgtables(Va(0), Va(PageTable::kVaLimit));
  CHECK(pt.tablePages() == 1);
}

TEST_CASE("lookups stay exact in a large page table across splits, rewrites and frees") {
  PageTable pt;
  // 200 PTE tables (enough for the lookup shortcut to be active).
  for (unsigned t = 0; t < 200; ++t)
    for (unsigned i = 0; i < 4; ++i)
      *pt.ptePtr(Va(t * kPmdSize + i * kPageSize), true) = Pte::mkPresent(Pfn(t * 1000 + i), true);
  for (int round = 0; round < 2; ++round)
    for (unsigned t = 0; t < 200; ++t)
      REQUIRE(pt.lookup(Va(t * kPmdSize + 3 * kPageSize)).pte.pfn() == Pfn(t * 1000 + 3));
  // Empty table 7 and free it; map a huge leaf there instead.
  for (unsigned i = 0; i < 4; ++i) *pt.ptePtr(Va(7 * kPmdSize + i * kPageSize), false) = Pte();
  REQUIRE(pt.freePgtables(Va(7 * kPmdSize), Va(8 * kPmdSize)) == 1);
  *pt.pmdPtr(Va(7 * kPmdSize), false) = Pte::mkPresent(Pfn(512 * 50), true).mkHuge();
  PtWalk w = pt.lookup(Va(7 * kPmdSize + 3 * kPageSize));
  CHECK(w.level == PtLevel::Pmd);
  CHECK(w.pte.pfn() == Pfn(512 * 50));
  // Split it again: the new PTE table is what lookups see.
  REQUIRE(pt.splitHugePmd(Va(7 * kPmdSize)) == Errno::Ok);
  w = pt.lookup(Va(7 * kPmdSize + 3 * kPageSize));
  CHECK(w.level == PtLevel::Pte);
  CHECK(w.pte.pfn() == Pfn(512 * 50 + 3));
  CHECK(w.levelsTouched == 4);
  // A hole inside a cached table is a hole at PTE level.
  w = pt.lookup(Va(9 * kPmdSize + 100 * kPageSize));
  CHECK(w.level == PtLevel::None);
  CHECK(w.slotLevel == PtLevel::Pte);
  // Free everything in the first 100 tables, then rebuild them with other pfns.
  pt.walkRange(Va(0), Va(100 * kPmdSize), [](const PtRangeEntry& r) {
    if (r.slot) *r.slot = Pte();
    return WalkAction::Continue;
  });
  pt.freePgtables(Va(0), Va(100 * kPmdSize));
  CHECK(pt.lookup(Va(3 * kPmdSize)).level == PtLevel::None);
  for (unsigned t = 0; t < 100; ++t) *pt.ptePtr(Va(t * kPmdSize), true) = Pte::mkPresent(Pfn(t + 7), false);
  for (unsigned t = 0; t < 200; ++t) {
    const PtWalk x = pt.lookup(Va(t * kPmdSize));
    REQUIRE(x.level == PtLevel::Pte);
    REQUIRE(x.pte.pfn() == (t < 100 ? Pfn(t + 7) : Pfn(t * 1000)));
  }
}
