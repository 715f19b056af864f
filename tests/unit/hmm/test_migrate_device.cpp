// migrate_vma_* / migrate_device_* and device memory, one behaviour per case.

#include <catch2/catch.hpp>

#include "hmm/memremap.h"
#include "hmm/migrate_device.h"
#include "models/cpu_mmu/task_mmu.h"
#include "tests/unit/hmm/hmm_test_support.h"

using namespace hmmsim;
using namespace hmmsim::test;

namespace {
constexpr std::uint64_t kP = kPageSize;
}

TEST_CASE("migrate to device-private memory and back keeps the data") {
  HmmFixture f;
  const Va a = f.mapAnon(16 * kP);
  f.fillPattern(a, 16, 1000);
  const std::uint64_t freeBefore = f.pm.freePages();
  auto src = f.migrateToDevice(a, a + 16 * kP);
  for (int i = 0; i < 16; ++i) {
    REQUIRE((src[i] & MIGRATE_PFN_MIGRATE) != 0);
    const Pte e = f.pteAt(a + i * kP);
    REQUIRE(e.isDevicePrivateEntry());
    REQUIRE(e.isWritableDevicePrivateEntry());
    REQUIRE(f.frameWord(e.swpPfn()) == 1000u + i);
  }
  REQUIRE(f.pm.freePages() == freeBefore + 16);  // the system sources were freed
  REQUIRE(f.mm->mmCounter(MmCounter::AnonPages) == 16);
  f.migrateToSystem(a, a + 16 * kP);
  for (int i = 0; i < 16; ++i) {
    REQUIRE(f.pteAt(a + i * kP).isPresent());
    REQUIRE(f.load(a + i * kP) == 1000u + i);
  }
  REQUIRE(f.dev->allocatedPages() == 0);
}

TEST_CASE("migrate_vma_setup raises MMU_NOTIFY_MIGRATE over the range with owner = pgmap_owner") {
  HmmFixture f;
  const Va a = f.mapAnon(8 * kP);
  f.fillPattern(a, 8);
  f.rec.events.clear();
  f.migrateToDevice(a + kP, a + 5 * kP);
  REQUIRE(f.rec.count(MmuNotifierEvent::Migrate) == 1);
  const Event& e = f.rec.events.front();
  REQUIRE(e.event == MmuNotifierEvent::Migrate);
  REQUIRE(e.start == a + kP);
  REQUIRE(e.end == a + 5 * kP);
  REQUIRE(e.owner == f.owner());
}

TEST_CASE("pte_none and zero-page sources are selected without a page and get zeroed device pages") {
  HmmFixture f;
  const Va a = f.mapAnon(3 * kP);
  (void)f.load(a + kP);  // zero page
  f.store(a + 2 * kP, 42);
  auto src = f.migrateToDevice(a, a + 3 * kP);
  REQUIRE(f.lastCpages == 3);
  REQUIRE(src[0] == MIGRATE_PFN_MIGRATE);  // empty: MIGRATE, no pfn (the insert rewrote it)
  REQUIRE(src[1] == MIGRATE_PFN_MIGRATE);  // zero page: same
  REQUIRE(migratePfnToPfn(src[2]));        // a real page
  for (int i = 0; i < 3; ++i) REQUIRE(f.pteAt(a + i * kP).isDevicePrivateEntry());
  REQUIRE(f.frameWord(f.pteAt(a).swpPfn()) == 0);
  REQUIRE(f.load(a + 2 * kP) == 42);  // CPU fault migrates it back
}

TEST_CASE("shared anonymous memory is not migrated to device memory") {
  HmmFixture f;
  const Va a = f.mapAnon(2 * kP, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS);
  f.fillPattern(a, 2, 7);
  auto src = f.migrateToDevice(a, a + 2 * kP);
  for (int i = 0; i < 2; ++i) {
    REQUIRE((src[i] & MIGRATE_PFN_MIGRATE) == 0);
    REQUIRE(f.pteAt(a + i * kP).isPresent());
    REQUIRE(f.load(a + i * kP) == 7u + i);
  }
  REQUIRE(f.dev->allocatedPages() == 0);
}

TEST_CASE("a CPU access to a migrated page calls migrate_to_ram and gets the data back") {
  HmmFixture f;
  const Va a = f.mapAnon(4 * kP);
  f.fillPattern(a, 4, 50);
  f.migrateToDevice(a, a + 4 * kP);
  REQUIRE(f.load(a + 2 * kP) == 52);
  REQUIRE(f.migrateToRamCalls == 1);
  REQUIRE(f.pteAt(a + 2 * kP).isPresent());
  REQUIRE(f.pteAt(a + 3 * kP).isDevicePrivateEntry());  // only the faulting page moved
  REQUIRE(f.mm->vmEvents().devicePrivateFault.value() == 1);
}

TEST_CASE("SELECT_COMPOUND migrates a THP whole: one compound src entry and a PMD device entry") {
  HmmFixture f;
  const Va m = f.mapAnon(2 * kPmdSize);
  REQUIRE(f.mm->madvise(m, 2 * kPmdSize, MADV_HUGEPAGE) == Errno::Ok);
  const Va thp = m.alignUp(kPmdSize);
  f.store(thp, 11);
  f.store(thp + 300 * kP, 22);
  REQUIRE(f.levelAt(thp) == PtLevel::Pmd);
  const Pfn head = f.pteAt(thp).pfn();
  auto src = f.migrateToDevice(thp, thp + kPmdSize, /*compound=*/true);
  REQUIRE((src[0] & MIGRATE_PFN_COMPOUND) != 0);
  REQUIRE((src[0] & MIGRATE_PFN_MIGRATE) != 0);
  REQUIRE(*migratePfnToPfn(src[0]) == head);
  for (std::uint64_t i = 1; i < kPagesPerPmd; ++i) REQUIRE(src[i] == 0);
  REQUIRE(f.levelAt(thp) == PtLevel::Pmd);
  REQUIRE(f.pteAt(thp).isDevicePrivateEntry());
  const Pfn dhead = f.pteAt(thp).swpPfn();
  REQUIRE(f.pm.folioOrder(dhead) == PhysMem::kPmdOrder);
  REQUIRE(f.frameWord(dhead + 300) == 22);
  std::vector<unsigned long> pfns;
  REQUIRE(f.rangeFault(thp, thp + kPmdSize, pfns, 0, f.owner()) == HmmStatus::Ok);
  REQUIRE(hmmPfnToMapOrder(pfns[5]) == 9);
  f.migrateToSystem(thp, thp + kPmdSize);
  REQUIRE(f.levelAt(thp) == PtLevel::Pmd);
  REQUIRE(f.load(thp) == 11);
  REQUIRE(f.load(thp + 300 * kP) == 22);
}

TEST_CASE("without SELECT_COMPOUND a THP is split and migrated page by page") {
  HmmFixture f;
  const Va m = f.mapAnon(2 * kPmdSize);
  REQUIRE(f.mm->madvise(m, 2 * kPmdSize, MADV_HUGEPAGE) == Errno::Ok);
  const Va thp = m.alignUp(kPmdSize);
  f.store(thp + kP, 5);
  auto src = f.migrateToDevice(thp, thp + 4 * kP);
  for (int i = 0; i < 4; ++i) REQUIRE((src[i] & MIGRATE_PFN_MIGRATE) != 0);
  REQUIRE(f.levelAt(thp) == PtLevel::Pte);
  REQUIRE(f.pteAt(thp + kP).isDevicePrivateEntry());
  REQUIRE(f.pteAt(thp + 4 * kP).isPresent());
  REQUIRE(f.load(thp + kP) == 5);
}

TEST_CASE("a compound source falls back to 4 KiB destinations when no device folio is available") {
  HmmFixture f;
  f.failCompound = true;
  const Va m = f.mapAnon(2 * kPmdSize);
  REQUIRE(f.mm->madvise(m, 2 * kPmdSize, MADV_HUGEPAGE) == Errno::Ok);
  const Va thp = m.alignUp(kPmdSize);
  f.store(thp + 2048 * 8, 2048);
  auto src = f.migrateToDevice(thp, thp + kPmdSize, /*compound=*/true);
  for (std::uint64_t i = 0; i < kPagesPerPmd; ++i) REQUIRE((src[i] & MIGRATE_PFN_MIGRATE) != 0);
  REQUIRE(f.levelAt(thp) == PtLevel::Pte);
  REQUIRE(f.pteAt(thp + 4 * kP).isDevicePrivateEntry());
  REQUIRE(f.load(thp + 2048 * 8) == 2048);
}

TEST_CASE("a page with an extra reference (pinned) is restored and not migrated") {
  HmmFixture f;
  const Va a = f.mapAnon(2 * kP);
  f.fillPattern(a, 2, 3);
  const Pfn pinned = f.pteAt(a).pfn();
  f.pm.getPage(pinned);
  auto src = f.migrateToDevice(a, a + 2 * kP);
  REQUIRE(src[0] == 0);
  REQUIRE((src[1] & MIGRATE_PFN_MIGRATE) != 0);
  REQUIRE(f.pteAt(a).isPresent());
  REQUIRE(f.pteAt(a).pfn() == pinned);
  REQUIRE(f.pteAt(a).isWrite());
  REQUIRE(f.load(a) == 3);
  f.pm.putPage(pinned);
}

TEST_CASE("migrate_vma_setup refuses bad arguments with EINVAL and changes nothing") {
  HmmFixture f;
  const Va a = f.mapAnon(4 * kP);
  f.fillPattern(a, 4);
  std::vector<unsigned long> src(8), dst(8);
  MmapReadLock l(*f.mm);
  MigrateVma m;
  m.vma = f.mm->vmaLookup(a);
  m.src = src.data();
  m.dst = dst.data();
  m.flags = MIGRATE_VMA_SELECT_SYSTEM;
  m.start = a + 8;  // unaligned
  m.end = a + kP;
  REQUIRE(migrateVmaSetup(m) == Errno::Inval);
  m.start = a + kP;  // start >= end
  m.end = a + kP;
  REQUIRE(migrateVmaSetup(m) == Errno::Inval);
  m.start = a;  // beyond the vma
  m.end = a + 8 * kP;
  REQUIRE(migrateVmaSetup(m) == Errno::Inval);
  m.end = a + kP;
  m.vma = nullptr;
  REQUIRE(migrateVmaSetup(m) == Errno::Inval);
  for (int i = 0; i < 4; ++i) REQUIRE(f.pteAt(a + i * kP).isPresent());
}

TEST_CASE("migrateDeviceRange evicts a whole chunk back to system memory with the data") {
  HmmFixture f;
  const Va a = f.mapAnon(8 * kP);
  f.fillPattern(a, 8, 600);
  f.migrateToDevice(a, a + 8 * kP);
  DeviceMemory::Chunk& chunk = f.dev->chunk(0);
  const unsigned long n = chunk.pgmap.nrPages;
  std::vector<unsigned long> src(n), dst(n);
  f.dev->beginRemove(0);
  REQUIRE(migrateDeviceRange(f.pm, src.data(), chunk.pgmap.pfnFirst, n) == Errno::Ok);
  unsigned long selected = 0;
  for (unsigned long i = 0; i < n; ++i) {
    if (!(src[i] & MIGRATE_PFN_MIGRATE)) continue;
    ++selected;
    const auto d = migrateAllocSystemFolio(f.pm);
    REQUIRE(d);
    f.copier.copyFolio(*d, *migratePfnToPfn(src[i]));
    dst[i] = migratePfn(*d);
  }
  REQUIRE(selected == 8);
  for (int i = 0; i < 8; ++i) REQUIRE(f.pteAt(a + i * kP).isMigrationEntry());
  migrateDevicePages(f.pm, src.data(), dst.data(), n);
  migrateDeviceFinalize(f.pm, src.data(), dst.data(), n);
  for (int i = 0; i < 8; ++i) {
    REQUIRE(f.pteAt(a + i * kP).isPresent());
    REQUIRE(f.load(a + i * kP) == 600u + i);
  }
  REQUIRE(f.dev->removeChunk(0) == Errno::Ok);
}

TEST_CASE("a page shared with a forked child migrates in both address spaces through the anon_vma chain") {
  HmmFixture f;
  const Va a = f.mapAnon(kP);
  f.store(a, 31);
  ForkResult child = f.mm->fork("child");
  REQUIRE(child.ok());
  auto src = f.migrateToDevice(a, a + kP, false);
  REQUIRE((src[0] & MIGRATE_PFN_MIGRATE) != 0);
  const Pte p = f.pteAt(a);
  const Pte c = child.child->pageTable().lookup(a).pte;
  REQUIRE(p.isDevicePrivateEntry());
  REQUIRE(c.isDevicePrivateEntry());
  REQUIRE(p.swpPfn() == c.swpPfn());
  REQUIRE_FALSE(p.isWritableDevicePrivateEntry());  // still COW-shared
  REQUIRE(f.pm.frame(p.swpPfn()).mapcount == 2);
  REQUIRE(HmmFixture::loadIn(*child.child, a) == 31);
  child.child->exitMmap();
}

TEST_CASE(
    "a migration reaches every mm of the fork family, and a fault in a grandchild brings the page back in "
    "all") {
  HmmFixture f;
  const Va a = f.mapAnon(kP);
  f.store(a, 77);
  ForkResult child = f.mm->fork("child");
  REQUIRE(child.ok());
  ForkResult grandchild = child.child->fork("grandchild");
  REQUIRE(grandchild.ok());
  auto src = f.migrateToDevice(a, a + kP, false);
  REQUIRE((src[0] & MIGRATE_PFN_MIGRATE) != 0);
  const Pfn dpage = f.pteAt(a).swpPfn();
  for (Mm* m : {child.child.get(), grandchild.child.get()}) {
    INFO(m->name());
    const Pte e = m->pageTable().lookup(a).pte;
    REQUIRE(e.isDevicePrivateEntry());
    REQUIRE(e.swpPfn() == dpage);
  }
  REQUIRE(f.pm.frame(dpage).mapcount == 3);
  // migrate_to_ram from the grandchild: try_to_migrate finds the other two mappings.
  REQUIRE(HmmFixture::loadIn(*grandchild.child, a) == 77);
  const Pte g = grandchild.child->pageTable().lookup(a).pte;
  REQUIRE(g.isPresent());
  REQUIRE(f.pteAt(a).isPresent());
  REQUIRE(child.child->pageTable().lookup(a).pte.isPresent());
  REQUIRE(f.pteAt(a).pfn() == g.pfn());
  REQUIRE(f.pm.frame(g.pfn()).mapcount == 3);
  REQUIRE(f.load(a) == 77);
  grandchild.child->exitMmap();
  child.child->exitMmap();
}

TEST_CASE("after a forked child exits, its vmas leave the anon_vma chain and only the parent is migrated") {
  HmmFixture f;
  const Va a = f.mapAnon(kP);
  f.store(a, 5);
  {
    ForkResult child = f.mm->fork("child");
    REQUIRE(child.ok());
    REQUIRE(f.mm->vmaLookup(a)->anonVma->vmas.size() == 2);
    child.child->exitMmap();
  }
  REQUIRE(f.mm->vmaLookup(a)->anonVma->vmas.size() == 1);
  auto src = f.migrateToDevice(a, a + kP, false);
  REQUIRE((src[0] & MIGRATE_PFN_MIGRATE) != 0);
  REQUIRE(f.pteAt(a).isDevicePrivateEntry());
  REQUIRE(f.load(a) == 5);
}

TEST_CASE("pagemap shows a page migrated to device-private memory as a swap entry, exclusive, not present") {
  HmmFixture f;
  const Va a = f.mapAnon(2 * kP);
  f.store(a, 1);
  f.store(a + kP, 2);
  auto src = f.migrateToDevice(a, a + kP, false);
  REQUIRE((src[0] & MIGRATE_PFN_MIGRATE) != 0);
  const Pte dev = f.pteAt(a);
  REQUIRE(dev.isDevicePrivateEntry());
  std::uint64_t e[2];
  pagemapRead(*f.mm, a, 2, e);
  CHECK((e[0] & PM_PRESENT) == 0);
  CHECK((e[0] & PM_SWAP) != 0);
  CHECK((e[0] & PM_PFRAME_MASK) == (dev.swpType() | (dev.swpOffset() << 5)));
  CHECK((e[0] & PM_MMAP_EXCLUSIVE) != 0);
  CHECK((e[0] & PM_FILE) == 0);
  CHECK((e[1] & PM_PRESENT) != 0);
  CHECK((e[1] & PM_SWAP) == 0);
  // The unprivileged view hides the device pfn inside the swap offset too.
  pagemapRead(*f.mm, a, 1, e, /*showPfn=*/false);
  CHECK((e[0] & PM_PFRAME_MASK) == 0);
  CHECK((e[0] & PM_SWAP) != 0);
}

TEST_CASE("DeviceMemory adds chunks on demand up to its capacity") {
  HmmFixture f;
  REQUIRE(f.dev->chunkCount() == 1);
  const std::uint64_t perChunk = (16ull << 20) >> kPageShift;
  std::vector<Pfn> pages;
  for (std::uint64_t i = 0; i < perChunk + 1; ++i) pages.push_back(*f.dev->allocPage());
  REQUIRE(f.dev->chunkCount() == 2);
  while (auto p = f.dev->allocFolio()) pages.push_back(*p);
  while (auto p = f.dev->allocPage()) pages.push_back(*p);
  REQUIRE(f.dev->chunkCount() == 4);  // 64 MiB capacity / 16 MiB chunks
  REQUIRE(f.dev->allocatedPages() == 4 * perChunk);
  REQUIRE(f.dev->stats().counterValue("alloc_failures") == 2);
  for (Pfn p : pages) {
    f.pm.frame(p).clear(kFrameLocked);
    f.pm.putPage(p);
  }
  REQUIRE(f.dev->allocatedPages() == 0);
}

TEST_CASE("folio_free returns a device page to the allocator's free list") {
  HmmFixture f;
  const std::uint64_t before = f.dev->freePages();
  const Pfn p = *f.dev->allocPage();
  REQUIRE(f.dev->freePages() == before - 1);
  REQUIRE(f.pm.frame(p).isLocked());
  f.pm.frame(p).clear(kFrameLocked);
  f.pm.putPage(p);
  REQUIRE(f.dev->freePages() == before);
  REQUIRE(*f.dev->allocPage() == p);  // LIFO: handed out again first
}

TEST_CASE("memremapPages refuses a device-private pgmap without ops or owner") {
  PhysMem pm(machine(64ull << 20));
  DevPagemap pg;
  pg.type = MemoryType::DevicePrivate;
  REQUIRE(memremapPages(pm, pg, 512) == Errno::Inval);
  DevPagemap p2p;
  p2p.type = MemoryType::PciP2pdma;
  REQUIRE(memremapPages(pm, p2p, 512) == Errno::Ok);
  REQUIRE(pm.isDevicePfn(p2p.pfnFirst));
  REQUIRE(memunmapPages(pm, p2p) == Errno::Ok);
}

TEST_CASE("MigrateCopier moves the bytes and accumulates bytes/s plus per-page latency") {
  PhysMem pm(machine(64ull << 20));
  MigrateCopyParams cp;
  cp.bytesPerSecond = 4096e6;  // 1 us per page
  cp.perPageLatencyPs = 500000;
  MigrateCopier c(pm, cp);
  const Pfn s = *pm.allocFrame(0), d = *pm.allocFrame(0);
  const std::uint64_t v = 0xabcdef;
  pm.write(paOf(s), &v, sizeof v);
  c.copyFolio(d, s);
  std::uint64_t got = 0;
  pm.read(paOf(d), &got, sizeof got);
  REQUIRE(got == v);
  REQUIRE(c.pendingPs() == 1500000);
  REQUIRE(c.takePendingPs() == 1500000);
  REQUIRE(c.pendingPs() == 0);
  REQUIRE(c.totalPs() == 1500000);
}

TEST_CASE("migrate_vma_pages clears MIGRATE when a CPU fault populated an empty slot after setup") {
  HmmFixture f;
  const Va a = f.mapAnon(kP);
  std::vector<unsigned long> src(1), dst(1);
  MigrateVma m;
  mmapReadLock(*f.mm);
  m.vma = f.mm->vmaLookup(a);
  m.src = src.data();
  m.dst = dst.data();
  m.start = a;
  m.end = a + kP;
  m.pgmapOwner = f.owner();
  m.flags = MIGRATE_VMA_SELECT_SYSTEM;
  REQUIRE(migrateVmaSetup(m) == Errno::Ok);
  REQUIRE(src[0] == MIGRATE_PFN_MIGRATE);
  mmapReadUnlock(*f.mm);
  f.store(a, 99);  // the CPU wins the race for the empty slot
  mmapReadLock(*f.mm);
  f.allocAndCopy(m, src, dst, true);
  migrateVmaPages(m);
  REQUIRE((src[0] & MIGRATE_PFN_MIGRATE) == 0);
  migrateVmaFinalize(m);
  mmapReadUnlock(*f.mm);
  REQUIRE(f.pteAt(a).isPresent());
  REQUIRE(f.load(a) == 99);
  REQUIRE(f.dev->allocatedPages() == 0);  // the unused destination went back to the device
}

TEST_CASE("migration to device-coherent memory installs present ptes the CPU uses directly") {
  HmmFixture f(512ull << 20, MmParams{}, MemoryType::DeviceCoherent);
  const Va a = f.mapAnon(2 * kP);
  f.fillPattern(a, 2, 70);
  f.migrateToDevice(a, a + 2 * kP);
  const Pte e = f.pteAt(a + kP);
  REQUIRE(e.isPresent());
  REQUIRE(f.dev->owns(e.pfn()));
  REQUIRE(f.load(a + kP) == 71);  // no fault, no migration back
  REQUIRE(f.migrateToRamCalls == 0);
  REQUIRE(f.pteAt(a + kP).pfn() == e.pfn());
  std::vector<unsigned long> pfns;
  REQUIRE(f.rangeFault(a, a + 2 * kP, pfns, 0) == HmmStatus::Ok);
  REQUIRE(hmmPfnToPfn(pfns[1]) == e.pfn());
  f.migrateToSystem(a, a + 2 * kP);
  REQUIRE(f.pm.isRam(f.pteAt(a + kP).pfn()));
  REQUIRE(f.load(a) == 70);
}

TEST_CASE("a CPU fault on one page of a device-private THP splits it and migrates that page back") {
  HmmFixture f;
  const Va m = f.mapAnon(2 * kPmdSize);
  REQUIRE(f.mm->madvise(m, 2 * kPmdSize, MADV_HUGEPAGE) == Errno::Ok);
  const Va thp = m.alignUp(kPmdSize);
  f.store(thp + 7 * kP, 707);
  f.store(thp + 8 * kP, 808);
  f.migrateToDevice(thp, thp + kPmdSize, /*compound=*/true);
  REQUIRE(f.levelAt(thp) == PtLevel::Pmd);
  const Pfn dhead = f.pteAt(thp).swpPfn();
  REQUIRE(f.load(thp + 7 * kP) == 707);
  REQUIRE(f.migrateToRamCalls == 1);
  REQUIRE(f.pteAt(thp + 7 * kP).isPresent());
  REQUIRE(f.pteAt(thp + 8 * kP).isDevicePrivateEntry());
  REQUIRE(f.pm.folioOrder(dhead) == 0);             // the device folio was split
  REQUIRE_FALSE(f.pm.frame(dhead + 8).isLocked());  // and nothing stays locked
  REQUIRE_FALSE(f.pm.frame(dhead).isLocked());
  REQUIRE(f.load(thp + 8 * kP) == 808);
  REQUIRE(f.migrateToRamCalls == 2);
}

TEST_CASE("a compound device source is split when the driver supplies 4 KiB system destinations") {
  HmmFixture f;
  const Va m = f.mapAnon(2 * kPmdSize);
  REQUIRE(f.mm->madvise(m, 2 * kPmdSize, MADV_HUGEPAGE) == Errno::Ok);
  const Va thp = m.alignUp(kPmdSize);
  f.store(thp + 2048 * 8, 2048);
  f.migrateToDevice(thp, thp + kPmdSize, /*compound=*/true);
  REQUIRE(f.levelAt(thp) == PtLevel::Pmd);
  f.failCompound = true;
  auto src = f.migrateToSystem(thp, thp + kPmdSize);
  for (std::uint64_t i = 0; i < kPagesPerPmd; ++i) REQUIRE((src[i] & MIGRATE_PFN_MIGRATE) != 0);
  REQUIRE(f.levelAt(thp) == PtLevel::Pte);
  REQUIRE(f.pteAt(thp + 9 * kP).isPresent());
  REQUIRE(f.pm.isRam(f.pteAt(thp + 9 * kP).pfn()));
  REQUIRE(f.dev->allocatedPages() == 0);
  REQUIRE(f.load(thp + 2048 * 8) == 2048);
}

TEST_CASE("migrateDeviceRange evicts a device THP whole through its PMD mapping") {
  HmmFixture f;
  const Va m = f.mapAnon(2 * kPmdSize);
  REQUIRE(f.mm->madvise(m, 2 * kPmdSize, MADV_HUGEPAGE) == Errno::Ok);
  const Va thp = m.alignUp(kPmdSize);
  f.store(thp + 100 * kP, 100);
  f.migrateToDevice(thp, thp + kPmdSize, /*compound=*/true);
  const Pfn dhead = f.pteAt(thp).swpPfn();
  DeviceMemory::Chunk& chunk = f.dev->chunk(0);
  REQUIRE(chunk.pgmap.contains(dhead));
  const unsigned long n = chunk.pgmap.nrPages;
  std::vector<unsigned long> src(n), dst(n);
  f.dev->beginRemove(0);
  REQUIRE(migrateDeviceRange(f.pm, src.data(), chunk.pgmap.pfnFirst, n) == Errno::Ok);
  const unsigned long i = dhead - chunk.pgmap.pfnFirst;
  REQUIRE((src[i] & MIGRATE_PFN_COMPOUND) != 0);
  REQUIRE((src[i] & MIGRATE_PFN_MIGRATE) != 0);
  REQUIRE(f.levelAt(thp) == PtLevel::Pmd);
  REQUIRE(f.pteAt(thp).isMigrationEntry());
  const auto d = migrateAllocSystemFolio(f.pm, PhysMem::kPmdOrder);
  REQUIRE(d);
  f.copier.copyFolio(*d, dhead, PhysMem::kPmdOrder);
  dst[i] = migratePfn(*d) | MIGRATE_PFN_COMPOUND;
  migrateDevicePages(f.pm, src.data(), dst.data(), n);
  migrateDeviceFinalize(f.pm, src.data(), dst.data(), n);
  REQUIRE(f.levelAt(thp) == PtLevel::Pmd);
  REQUIRE(f.pteAt(thp).isPresent());
  REQUIRE(f.pteAt(thp).pfn() == *d);
  REQUIRE(f.load(thp + 100 * kP) == 100);
  REQUIRE(f.dev->removeChunk(0) == Errno::Ok);
}

// ---- the huge zero page under migrate_vma (migrate_vma_collect_huge_pmd treats it as a hole) ----

namespace {
/// A PMD-aligned 2 MiB region of a 4 MiB anonymous `prot` mapping with MADV_HUGEPAGE, mapped by
/// the huge zero page after one CPU read.
Va hugeZeroRegion(HmmFixture& f, int prot = PROT_READ) {
  const Va m = f.mapAnon(2 * kPmdSize, prot);
  const Va zp = m.alignUp(kPmdSize);
  REQUIRE(f.mm->madvise(zp, kPmdSize, MADV_HUGEPAGE) == Errno::Ok);
  REQUIRE(f.load(zp) == 0);
  REQUIRE(f.levelAt(zp) == PtLevel::Pmd);
  REQUIRE(f.pm.isHugeZeroPfn(f.pteAt(zp).pfn()));
  return zp;
}

MigrateVma migrateArgs(HmmFixture& f, Va start, Va end, std::vector<unsigned long>& src,
                       std::vector<unsigned long>& dst, unsigned long flags) {
  src.assign((end - start) >> kPageShift, 0);
  dst.assign(src.size(), 0);
  MigrateVma m;
  m.vma = f.mm->vmaLookup(start);
  m.src = src.data();
  m.dst = dst.data();
  m.start = start;
  m.end = end;
  m.pgmapOwner = f.owner();
  m.flags = flags;
  return m;
}
}  // namespace

TEST_CASE("SELECT_COMPOUND collects a huge zero PMD as one compound MIGRATE entry without a page") {
  HmmFixture f;
  const Va zp = hugeZeroRegion(f);
  f.rec.events.clear();
  std::vector<unsigned long> src, dst;
  MigrateVma m =
      migrateArgs(f, zp, zp + kPmdSize, src, dst, MIGRATE_VMA_SELECT_SYSTEM | MIGRATE_VMA_SELECT_COMPOUND);
  {  // mmap read lock held from setup to finalize (released if a REQUIRE throws)
    MmapReadLock lock(*f.mm);
    REQUIRE(migrateVmaSetup(m) == Errno::Ok);
    REQUIRE(src[0] == (MIGRATE_PFN_MIGRATE | MIGRATE_PFN_COMPOUND));
    for (std::uint64_t i = 1; i < kPagesPerPmd; ++i) REQUIRE(src[i] == 0);
    REQUIRE(m.npages == kPagesPerPmd);
    REQUIRE(m.cpages == kPagesPerPmd);
    // Not split: the huge zero PMD stays mapped until migrate_vma_pages replaces it.
    REQUIRE(f.levelAt(zp) == PtLevel::Pmd);
    REQUIRE(f.pm.isHugeZeroPfn(f.pteAt(zp).pfn()));
    REQUIRE(f.rec.count(MmuNotifierEvent::Migrate) == 1);
    REQUIRE(f.rec.count(MmuNotifierEvent::Clear) == 0);
    // The driver supplies no destination: nothing migrates and the mapping is untouched.
    migrateVmaPages(m);
    REQUIRE((src[0] & MIGRATE_PFN_MIGRATE) == 0);
    migrateVmaFinalize(m);
  }
  REQUIRE(f.levelAt(zp) == PtLevel::Pmd);
  REQUIRE(f.pm.isHugeZeroPfn(f.pteAt(zp).pfn()));
  REQUIRE(f.load(zp + 5 * kP) == 0);
}

TEST_CASE("a compound device destination replaces the still-mapped huge zero PMD") {
  HmmFixture f;
  const Va zp = hugeZeroRegion(f);
  REQUIRE(f.load(zp + 7 * kP) == 0);  // zeros before
  const std::int64_t anonBefore = f.mm->mmCounter(MmCounter::AnonPages);
  f.rec.events.clear();
  auto src = f.migrateToDevice(zp, zp + kPmdSize, /*compound=*/true);
  REQUIRE(f.lastCpages == kPagesPerPmd);
  REQUIRE(src[0] == (MIGRATE_PFN_MIGRATE | MIGRATE_PFN_COMPOUND));
  REQUIRE(f.levelAt(zp) == PtLevel::Pmd);
  const Pte e = f.pteAt(zp);
  REQUIRE(e.isDevicePrivateEntry());
  REQUIRE(!e.isWritableDevicePrivateEntry());  // PROT_READ vma
  const Pfn dhead = e.swpPfn();
  REQUIRE(f.pm.folioOrder(dhead) == PhysMem::kPmdOrder);
  REQUIRE(f.frameWord(dhead + 7) == 0);  // the driver cleared the destination
  REQUIRE(f.mm->mmCounter(MmCounter::AnonPages) == anonBefore + std::int64_t(kPagesPerPmd));
  REQUIRE(f.rec.count(MmuNotifierEvent::Migrate) == 2);  // setup, then the insertion
  REQUIRE(f.rec.count(MmuNotifierEvent::Clear) == 0);    // replaced, never split
  // The device writes; a CPU read migrates the folio back and sees the device's data.
  const std::uint64_t v = 0xfeed;
  f.pm.write(paOf(dhead + 7), &v, sizeof v);
  REQUIRE(f.load(zp + 7 * kP) == 0xfeed);
  REQUIRE(f.migrateToRamCalls == 1);
  REQUIRE(f.pteAt(zp + 7 * kP).isPresent());
  REQUIRE(f.load(zp + 8 * kP) == 0);
}

TEST_CASE("a huge zero PMD falls back to 512 4 KiB device pages when the device THP allocation fails") {
  HmmFixture f;
  f.failCompound = true;
  const Va zp = hugeZeroRegion(f);
  f.rec.events.clear();
  auto src = f.migrateToDevice(zp, zp + kPmdSize, /*compound=*/true);
  REQUIRE(f.lastCpages == kPagesPerPmd);
  for (std::uint64_t i = 0; i < kPagesPerPmd; ++i) REQUIRE(src[i] == MIGRATE_PFN_MIGRATE);
  REQUIRE(f.levelAt(zp) == PtLevel::Pte);
  for (std::uint64_t i = 0; i < kPagesPerPmd; ++i) REQUIRE(f.pteAt(zp + i * kP).isDevicePrivateEntry());
  REQUIRE(f.dev->allocatedPages() == kPagesPerPmd);
  // migrate_vma_insert_page split the huge zero PMD (one CLEAR round) inside its MIGRATE round.
  REQUIRE(f.rec.count(MmuNotifierEvent::Clear) == 1);
  REQUIRE(f.rec.count(MmuNotifierEvent::Migrate) == 2);
  REQUIRE(f.load(zp + 300 * kP) == 0);
}

TEST_CASE("without SELECT_COMPOUND a huge zero PMD is split into zero ptes and collected page by page") {
  HmmFixture f;
  const Va zp = hugeZeroRegion(f);
  f.rec.events.clear();
  std::vector<unsigned long> src, dst;
  MigrateVma m = migrateArgs(f, zp, zp + kPmdSize, src, dst, MIGRATE_VMA_SELECT_SYSTEM);
  {  // mmap read lock held from setup to finalize (released if a REQUIRE throws)
    MmapReadLock lock(*f.mm);
    REQUIRE(migrateVmaSetup(m) == Errno::Ok);
    for (std::uint64_t i = 0; i < kPagesPerPmd; ++i) REQUIRE(src[i] == MIGRATE_PFN_MIGRATE);
    REQUIRE(m.cpages == kPagesPerPmd);
    REQUIRE(f.levelAt(zp) == PtLevel::Pte);
    REQUIRE(f.pm.isZeroPfn(f.pteAt(zp + 9 * kP).pfn()));
    REQUIRE(f.rec.count(MmuNotifierEvent::Clear) == 1);  // the split, inside the MIGRATE round
    f.allocAndCopy(m, src, dst, /*toDevice=*/true);
    migrateVmaPages(m);
    migrateVmaFinalize(m);
  }
  for (std::uint64_t i = 0; i < kPagesPerPmd; ++i) {
    REQUIRE(src[i] == MIGRATE_PFN_MIGRATE);
    REQUIRE(f.pteAt(zp + i * kP).isDevicePrivateEntry());
  }
  REQUIRE(f.load(zp + 9 * kP) == 0);
}

TEST_CASE("a CPU write to a collected huge zero PMD before migrate_vma_pages keeps the CPU's page") {
  HmmFixture f;
  const Va zp = hugeZeroRegion(f, PROT_READ | PROT_WRITE);
  std::vector<unsigned long> src, dst;
  MigrateVma m =
      migrateArgs(f, zp, zp + kPmdSize, src, dst, MIGRATE_VMA_SELECT_SYSTEM | MIGRATE_VMA_SELECT_COMPOUND);
  {  // setup under the mmap read lock, then the CPU runs between setup and pages
    MmapReadLock lock(*f.mm);
    REQUIRE(migrateVmaSetup(m) == Errno::Ok);
    REQUIRE(src[0] == (MIGRATE_PFN_MIGRATE | MIGRATE_PFN_COMPOUND));
  }
  f.store(zp + 3 * kP, 77);  // the CPU wins: the huge zero PMD is gone
  {                          // pages and finalize under the mmap read lock again
    MmapReadLock lock(*f.mm);
    f.allocAndCopy(m, src, dst, /*toDevice=*/true);
    REQUIRE((dst[0] & MIGRATE_PFN_COMPOUND) != 0);
    migrateVmaPages(m);
    REQUIRE((src[0] & MIGRATE_PFN_MIGRATE) == 0);
    migrateVmaFinalize(m);
  }
  REQUIRE(!f.pteAt(zp + 3 * kP).isDevicePrivateEntry());
  REQUIRE(f.load(zp + 3 * kP) == 77);
  REQUIRE(f.dev->allocatedPages() == 0);  // the unused destination went back to the device
}
