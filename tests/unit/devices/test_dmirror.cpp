// dmirror device model (models/devices/dmirror): behaviours beyond the kernel selftests —
// argument checks, the device page table under invalidations, eviction, one-shot allocation
// failures, THP mappings, the device file mmap, exclusive access bookkeeping.

#include <catch2/catch.hpp>

#include "models/cpu_mmu/mmu_notifier.h"
#include "models/cpu_mmu/pte.h"
#include "tests/conformance/hmm_conformance.h"

namespace hmmsim::conformance {
namespace {

HmmDmirrorCmd cmdFor(const HmmBuffer& b, std::uint64_t npages) {
  HmmDmirrorCmd c;
  c.addr = b.ptr.value();
  c.ptr = b.mirror.value();
  c.npages = npages;
  c.cpages = 77;
  c.faults = 88;
  return c;
}

TEST_CASE(
    "dmirror ioctl rejects an unaligned address, npages 0, an overflowing range and unknown commands without "
    "writing the struct",
    "[dmirror]") {
  HmmFixture f(Variant::Private);
  HmmBuffer b = f.p().buffer(4 * kPage);
  HmmDmirrorCmd c = cmdFor(b, 4);
  c.addr += 8;
  REQUIRE(f.dev().ioctl(*f.fd, HMM_DMIRROR_READ, c) == Errno::Inval);
  REQUIRE(c.cpages == 77);
  REQUIRE(c.faults == 88);
  c = cmdFor(b, 0);
  REQUIRE(f.dev().ioctl(*f.fd, HMM_DMIRROR_READ, c) == Errno::Inval);
  c = cmdFor(b, ~0ull >> 12);
  REQUIRE(f.dev().ioctl(*f.fd, HMM_DMIRROR_WRITE, c) == Errno::Inval);
  c = cmdFor(b, 4);
  REQUIRE(f.dev().ioctl(*f.fd, 42, c) == Errno::Inval);
  REQUIRE(c.cpages == 77);
  // A failing command (READ of a PROT_NONE range) does not copy the struct back either.
  REQUIRE(f.p().mm().mprotect(b.ptr, 4 * kPage, PROT_NONE) == Errno::Ok);
  c = cmdFor(b, 4);
  REQUIRE(f.dev().ioctl(*f.fd, HMM_DMIRROR_READ, c) == Errno::Fault);
  REQUIRE(c.cpages == 77);
  REQUIRE(c.faults == 88);
}

TEST_CASE(
    "dmirror munmap of part of a mirrored range erases those device PTEs and the one just past the range, as "
    "xa_for_each_range does",
    "[dmirror]") {
  HmmFixture f(Variant::Private);
  HmmBuffer b = f.p().buffer(8 * kPage);
  f.p().fillInts(b.ptr, 8 * kPage / sizeof(int));
  REQUIRE(hmmDmirrorCmd(*f.fd, HMM_DMIRROR_READ, b, 8) == 0);
  Dmirror& d = *f.dev().handleOf(*f.fd);
  REQUIRE(d.pteCount() == 8);
  REQUIRE(f.p().mm().munmap(b.ptr + 2 * kPage, 3 * kPage) == Errno::Ok);
  REQUIRE(d.pteCount() == 4);
  REQUIRE(d.pte(b.ptr + kPage));
  REQUIRE_FALSE(d.pte(b.ptr + 2 * kPage));
  REQUIRE_FALSE(d.pte(b.ptr + 4 * kPage));
  REQUIRE_FALSE(d.pte(b.ptr + 5 * kPage));  // dmirror_do_update's inclusive last index
  REQUIRE(d.pte(b.ptr + 6 * kPage));
  // The kernel's device faults that page again on the next READ of it.
  HmmDmirrorCmd c = cmdFor(b, 3);
  c.addr = (b.ptr + 5 * kPage).value();
  REQUIRE(f.dev().ioctl(*f.fd, HMM_DMIRROR_READ, c) == Errno::Ok);
  REQUIRE(c.faults == 1);
  REQUIRE(c.cpages == 3);
}

TEST_CASE("dmirror read maps read-only entries and write maps WRITE-tagged entries", "[dmirror]") {
  HmmFixture f(Variant::Private);
  HmmBuffer b = f.p().buffer(2 * kPage);
  f.p().fillInts(b.ptr, 2 * kPage / sizeof(int));
  Dmirror& d = *f.dev().handleOf(*f.fd);
  REQUIRE(hmmDmirrorCmd(*f.fd, HMM_DMIRROR_READ, b, 2) == 0);
  // The pages were faulted writable by the CPU stores; a read fault still reports them writable
  // (hmm_range_fault returns the CPU's permission), so the tag follows the CPU pte.
  REQUIRE(d.pte(b.ptr)->tag == DmirrorPte::Tag::Write);
  REQUIRE(f.p().mm().mprotect(b.ptr, 2 * kPage, PROT_READ) == Errno::Ok);
  REQUIRE(d.pteCount() == 0);  // PROTECTION_VMA invalidation
  REQUIRE(hmmDmirrorCmd(*f.fd, HMM_DMIRROR_READ, b, 2) == 0);
  REQUIRE(d.pte(b.ptr)->tag == DmirrorPte::Tag::Read);
}

TEST_CASE("dmirror keeps its device PTEs across its own migration and loses them on another device's",
          "[dmirror]") {
  HmmFixture f(Variant::Private);
  Process& p = f.p();
  std::shared_ptr<File> fd1 = p.open(1);
  HmmBuffer b = p.buffer(4 * kPage);
  p.fillInts(b.ptr, 4 * kPage / sizeof(int));
  REQUIRE(hmmDmirrorCmd(*f.fd, HMM_DMIRROR_MIGRATE_TO_DEV, b, 4) == 0);
  Dmirror& d0 = *f.dev().handleOf(*f.fd);
  REQUIRE(d0.pteCount() == 4);
  const Pfn devPfn = d0.pte(b.ptr)->pfn;
  REQUIRE(f.machine.pm.isDevicePfn(devPfn));
  // Device 1 migrates the pages away: device 0's migrate_to_ram + device 1's migration raise
  // events device 0 does not own, so its entries go.
  REQUIRE(hmmDmirrorCmd(*fd1, HMM_DMIRROR_READ, b, 4) == 0);
  REQUIRE(d0.pteCount() == 0);
  REQUIRE(p.firstMismatch(b.mirror, 4 * kPage / sizeof(int)) == -1);
}

TEST_CASE("dmirror RELEASE evicts every device page to RAM and keeps the data", "[dmirror]") {
  HmmFixture f(Variant::Private);
  Process& p = f.p();
  const std::uint64_t n = 64;
  HmmBuffer b = p.buffer(n * kPage);
  p.fillInts(b.ptr, n * kPage / sizeof(int));
  REQUIRE(hmmDmirrorCmd(*f.fd, HMM_DMIRROR_MIGRATE_TO_DEV, b, n) == 0);
  REQUIRE(p.mm().pageTable().lookup(b.ptr).pte.isDevicePrivateEntry());
  REQUIRE(f.dev().devmem().allocatedPages() == n);
  REQUIRE(hmmDmirrorCmd(*f.fd, HMM_DMIRROR_RELEASE, b, 1) == 0);
  REQUIRE(f.dev().devmem().allocatedPages() == 0);
  const Pte pte = p.mm().pageTable().lookup(b.ptr).pte;
  REQUIRE(pte.isPresent());
  REQUIRE(f.machine.pm.isRam(pte.pfn()));
  REQUIRE(p.firstMismatch(b.ptr, n * kPage / sizeof(int)) == -1);
  // The device allocates a new chunk on the next migration.
  REQUIRE(hmmDmirrorCmd(*f.fd, HMM_DMIRROR_MIGRATE_TO_DEV, b, n) == 0);
  REQUIRE(b.cpages == n);
}

TEST_CASE("dmirror close removes the handle's notifier and evicts the device memory", "[dmirror]") {
  HmmFixture f(Variant::Coherent);
  Process& p = f.p();
  HmmBuffer b = p.buffer(8 * kPage);
  p.fillInts(b.ptr, 8 * kPage / sizeof(int));
  const std::size_t before = p.mm().notifierSubscriptions().intervalCount();
  REQUIRE(hmmDmirrorCmd(*f.fd, HMM_DMIRROR_MIGRATE_TO_DEV, b, 8) == 0);
  REQUIRE(f.machine.pm.isDevicePfn(p.mm().pageTable().lookup(b.ptr).pte.pfn()));
  f.fd.reset();
  REQUIRE(p.mm().notifierSubscriptions().intervalCount() == before - 1);
  REQUIRE(f.machine.pm.isRam(p.mm().pageTable().lookup(b.ptr).pte.pfn()));
  REQUIRE(p.firstMismatch(b.ptr, 8 * kPage / sizeof(int)) == -1);
}

TEST_CASE("dmirror FAIL_ALLOC fails exactly one 4 KiB device allocation", "[dmirror]") {
  HmmFixture f(Variant::Private);
  Process& p = f.p();
  HmmBuffer b = p.buffer(4 * kPage);
  p.fillInts(b.ptr, 4 * kPage / sizeof(int));
  REQUIRE(hmmDmirrorCmd(*f.fd, HMM_DMIRROR_FLAGS, b, HMM_DMIRROR_FLAG_FAIL_ALLOC) == 0);
  // The first page stays in RAM, so the read-back misses it.
  REQUIRE(hmmDmirrorCmd(*f.fd, HMM_DMIRROR_MIGRATE_TO_DEV, b, 4) == kENOENT);
  REQUIRE_FALSE(p.mm().pageTable().lookup(b.ptr).pte.isDevicePrivateEntry());
  REQUIRE(p.mm().pageTable().lookup(b.ptr + kPage).pte.isDevicePrivateEntry());
  REQUIRE(hmmDmirrorCmd(*f.fd, HMM_DMIRROR_MIGRATE_TO_DEV, b, 4) == 0);
  REQUIRE(b.cpages == 4);
}

TEST_CASE("dmirror migrates a THP as one PMD folio and snapshot reports it PMD-mapped", "[dmirror]") {
  HmmFixture f(Variant::Private);
  Process& p = f.p();
  const Va mapping = p.mmap(2 * TWOMEG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  HmmBuffer b = p.bufferAt(mapping.alignUp(TWOMEG), TWOMEG);
  REQUIRE(p.mm().madvise(b.ptr, TWOMEG, MADV_HUGEPAGE) == Errno::Ok);
  p.fillInts(b.ptr, TWOMEG / sizeof(int));
  REQUIRE(p.mm().pageTable().lookup(b.ptr).level == PtLevel::Pmd);
  const std::uint64_t before = f.dev().calloc();
  REQUIRE(hmmDmirrorCmd(*f.fd, HMM_DMIRROR_MIGRATE_TO_DEV, b, 512) == 0);
  REQUIRE(f.dev().calloc() - before == 512);
  Dmirror& d = *f.dev().handleOf(*f.fd);
  REQUIRE(f.machine.pm.folioOrder(d.pte(b.ptr)->pfn) == PhysMem::kPmdOrder);
  REQUIRE(hmmDmirrorCmd(*f.fd, HMM_DMIRROR_SNAPSHOT, b, 512) == 0);
  const std::uint8_t m0 = p.loadBytes(b.mirror, 1)[0];
  CAPTURE(int(m0));
  REQUIRE((m0 & HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL) == HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL);
  REQUIRE((m0 & HMM_DMIRROR_PROT_WRITE) != 0);
  REQUIRE((m0 & HMM_DMIRROR_PROT_PMD) != 0);
  // A CPU touch migrates the whole folio back (migrate_to_ram of a PMD-mapped page).
  REQUIRE(p.loadInt(b.ptr + 4 * kPage) == 4 * int(kPage / sizeof(int)));
  REQUIRE(f.dev().devmem().allocatedPages() == 0);
  REQUIRE(p.firstMismatch(b.ptr, TWOMEG / sizeof(int)) == -1);
}

TEST_CASE("dmirror device file mmap inserts zeroed pages into a VM_MIXEDMAP vma", "[dmirror]") {
  HmmFixture f(Variant::Private);
  Process& p = f.p();
  const Va a = p.mmap(3 * kPage, PROT_READ | PROT_WRITE, MAP_SHARED, f.fd, 0);
  const Vma* vma = p.mm().vmaLookup(a);
  REQUIRE((vma->vmFlags & VM_MIXEDMAP) != 0);
  for (int i = 0; i < 3; ++i) REQUIRE(p.mm().pageTable().lookup(a + i * kPage).pte.isPresent());
  REQUIRE(p.firstMismatch(a, 3 * kPage / sizeof(int), 0, 0) == -1);
}

TEST_CASE("dmirror CHECK_EXCLUSIVE reports -EPERM while device-exclusive entries remain", "[dmirror]") {
  HmmFixture f(Variant::Private);
  Process& p = f.p();
  HmmBuffer b = p.buffer(4 * kPage);
  p.fillInts(b.ptr, 4 * kPage / sizeof(int));
  REQUIRE(hmmDmirrorCmd(*f.fd, HMM_DMIRROR_EXCLUSIVE, b, 4) == 0);
  REQUIRE(hmmDmirrorCmd(*f.fd, HMM_DMIRROR_CHECK_EXCLUSIVE, b, 4) == kEPERM);
  // A CPU access to one page revokes that page only.
  p.storeInt(b.ptr + kPage, 5);
  HmmBuffer one = b;
  one.ptr = b.ptr + kPage;
  REQUIRE(hmmDmirrorCmd(*f.fd, HMM_DMIRROR_CHECK_EXCLUSIVE, one, 1) == 0);
  REQUIRE(hmmDmirrorCmd(*f.fd, HMM_DMIRROR_CHECK_EXCLUSIVE, b, 4) == kEPERM);
}

TEST_CASE(
    "dmirror write to its own read-only device-private page fails with -EFAULT (dmirror_do_fault WARN path)",
    "[dmirror]") {
  HmmFixture f(Variant::Private);
  Process& p = f.p();
  HmmBuffer b = p.buffer(2 * kPage);
  p.fillInts(b.ptr, 2 * kPage / sizeof(int));
  REQUIRE(hmmDmirrorCmd(*f.fd, HMM_DMIRROR_MIGRATE_TO_DEV, b, 2) == 0);
  // fork makes the device-private entries read-only in the parent and erases the device PTEs.
  std::unique_ptr<Process> child = p.fork();
  REQUIRE_FALSE(p.mm().pageTable().lookup(b.ptr).pte.isWritableDevicePrivateEntry());
  // hmm_range_fault reports owner-matched device-private pages as they are (read-only), never
  // faulting them writable; dmirror refuses a read-only entry for a write.
  REQUIRE(hmmDmirrorCmd(*f.fd, HMM_DMIRROR_WRITE, b, 2) == kEFAULT);
}

TEST_CASE("dmirror refuses a non-blockable invalidation while its update lock is held and keeps its PTEs",
          "[dmirror]") {
  HmmFixture f(Variant::Private);
  Process& p = f.p();
  HmmBuffer b = p.buffer(4 * kPage);
  p.fillInts(b.ptr, 4 * kPage / sizeof(int));
  REQUIRE(hmmDmirrorCmd(*f.fd, HMM_DMIRROR_READ, b, 4) == 0);
  Dmirror& d = *f.dev().handleOf(*f.fd);
  REQUIRE(d.pteCount() == 4);
  MmuNotifierRange r;
  mmuNotifierRangeInit(r, MmuNotifierEvent::Clear, 0, &p.mm(), b.ptr, b.ptr + 4 * kPage);
  d.mirror().updateLock().lock();
  REQUIRE(p.mm().notifierSubscriptions().invalidateRangeStartNonblock(r) == Errno::Again);
  d.mirror().updateLock().unlock();
  REQUIRE(d.pteCount() == 4);
  // Unlocked, the same non-blockable invalidation succeeds and erases the range.
  MmuNotifierRange r2;
  mmuNotifierRangeInit(r2, MmuNotifierEvent::Clear, 0, &p.mm(), b.ptr, b.ptr + 4 * kPage);
  REQUIRE(p.mm().notifierSubscriptions().invalidateRangeStartNonblock(r2) == Errno::Ok);
  p.mm().notifierSubscriptions().invalidateRangeEnd(r2);
  REQUIRE(d.pteCount() == 0);
}

TEST_CASE("dmirror snapshot of a present THP reports WRITE|PMD on every subpage", "[dmirror]") {
  HmmFixture f(Variant::Coherent);
  Process& p = f.p();
  const Va mapping = p.mmap(2 * TWOMEG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  HmmBuffer b = p.bufferAt(mapping.alignUp(TWOMEG), TWOMEG);
  REQUIRE(p.mm().madvise(b.ptr, TWOMEG, MADV_HUGEPAGE) == Errno::Ok);
  p.storeInt(b.ptr, 1);
  REQUIRE(hmmDmirrorCmd(*f.fd, HMM_DMIRROR_SNAPSHOT, b, 512) == 0);
  REQUIRE(b.cpages == 512);
  const std::vector<std::uint8_t> m = p.loadBytes(b.mirror, 512);
  for (std::uint8_t x : m) REQUIRE(x == (HMM_DMIRROR_PROT_WRITE | HMM_DMIRROR_PROT_PMD));
}

TEST_CASE("dmirror gives up with -EBUSY when every attempt is invalidated and the restart budget is spent",
          "[dmirror]") {
  // HMM_RANGE_DEFAULT_TIMEOUT is a restart budget (DmirrorParams::maxRetries). The device write
  // fault of a page that maps the zero page breaks COW inside hmm_range_fault, and that COW
  // raises MMU_NOTIFY_CLEAR on the mirrored range: the attempt must start over. With a budget of
  // zero restarts the command fails with -EBUSY; with the default budget it succeeds.
  for (unsigned budget : {0u, 1000u}) {
    CAPTURE(budget);
    DmirrorParams dp;
    dp.maxRetries = budget;
    Machine m(dp);
    auto proc = std::make_unique<Process>(m);
    auto fd = proc->open(0);
    HmmBuffer b = proc->buffer(4 * kPage);
    REQUIRE(proc->loadInt(b.ptr) == 0);  // map the zero page at page 0
    proc->fillInts(b.mirror, 4 * kPage / sizeof(int));
    const int ret = hmmDmirrorCmd(*fd, HMM_DMIRROR_WRITE, b, 4);
    if (budget == 0) {
      REQUIRE(ret == kEBUSY);
      // Without an invalidation, a zero budget is enough: a read fault (zero page, no round).
      HmmBuffer rest = b;
      rest.ptr = b.ptr + 2 * kPage;
      REQUIRE(hmmDmirrorCmd(*fd, HMM_DMIRROR_READ, rest, 2) == 0);
      REQUIRE(rest.faults == 1);
    } else {
      REQUIRE(ret == 0);
      REQUIRE(proc->firstMismatch(b.ptr, 4 * kPage / sizeof(int)) == -1);
    }
    fd.reset();
    proc.reset();
  }
}

TEST_CASE("dmirror device pages return to the device free lists when their mapping goes away", "[dmirror]") {
  HmmFixture f(Variant::Private);
  Process& p = f.p();
  const std::uint64_t n = 32;
  HmmBuffer b = p.buffer(n * kPage);
  p.fillInts(b.ptr, n * kPage / sizeof(int));
  const std::uint64_t freeBefore = f.dev().devmem().freePages();
  REQUIRE(hmmDmirrorCmd(*f.fd, HMM_DMIRROR_MIGRATE_TO_DEV, b, n) == 0);
  REQUIRE(f.dev().devmem().allocatedPages() == n);
  REQUIRE(p.mm().munmap(b.ptr, n * kPage) == Errno::Ok);  // folio_free for each page
  REQUIRE(f.dev().devmem().allocatedPages() == 0);
  REQUIRE(f.dev().devmem().freePages() == freeBefore);
  REQUIRE(f.dev().handleOf(*f.fd)->pte(b.ptr) == std::nullopt);
}

TEST_CASE("dmirror a second handle of the same device on the same mm drops pages the first migrates",
          "[dmirror]") {
  HmmFixture f(Variant::Private);
  Process& p = f.p();
  std::shared_ptr<File> fd2 = p.open(0);
  HmmBuffer b = p.buffer(4 * kPage);
  p.fillInts(b.ptr, 4 * kPage / sizeof(int));
  REQUIRE(hmmDmirrorCmd(*fd2, HMM_DMIRROR_READ, b, 4) == 0);
  Dmirror& h2 = *f.dev().handleOf(*fd2);
  const Pfn sys = h2.pte(b.ptr)->pfn;
  REQUIRE(f.machine.pm.isRam(sys));
  // Handle 1 migrates: the MIGRATE event is the device's own, so handle 2 skips it; hmmsim
  // erases the moved pages there explicitly (the system pages are freed by the migration).
  REQUIRE(hmmDmirrorCmd(*f.fd, HMM_DMIRROR_MIGRATE_TO_DEV, b, 4) == 0);
  REQUIRE(h2.pteCount() == 0);
  REQUIRE(hmmDmirrorCmd(*fd2, HMM_DMIRROR_READ, b, 4) == 0);
  REQUIRE(f.machine.pm.isDevicePfn(h2.pte(b.ptr)->pfn));
  REQUIRE(p.firstMismatch(b.mirror, 4 * kPage / sizeof(int)) == -1);
  fd2.reset();
}

}  // namespace
}  // namespace hmmsim::conformance
