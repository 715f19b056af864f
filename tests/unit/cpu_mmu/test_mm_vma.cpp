// Address-space bookkeeping without data: vmas, address selection, errors, and the exact
// mmu-notifier rounds each mm operation raises on never-touched mappings.
#include <catch2/catch.hpp>

#include "models/cpu_mmu/vm_operations.h"
#include "sim/device.h"
#include "tests/unit/cpu_mmu/mm_test_support.h"

using namespace hmmsim;
using namespace hmmsim::test;

namespace {
constexpr std::uint64_t kMiB = 1ull << 20;
constexpr int kRW = PROT_READ | PROT_WRITE;
constexpr int kAnon = MAP_PRIVATE | MAP_ANONYMOUS;
}  // namespace

TEST_CASE("mmap of anonymous memory creates one page-aligned vma below mmap_base", "[mm][mmap]") {
  MmFixture f;
  VaResult r = f.mm->mmap(Va(0), 3 * kPageSize, kRW, kAnon);
  REQUIRE(r.ok());
  CHECK(r.addr.isAligned(kPageSize));
  CHECK(r.addr + 3 * kPageSize <= f.mm->params().mmapBase);
  REQUIRE(f.mm->mapCount() == 1);
  Vma* v = f.mm->vmaLookup(r.addr);
  REQUIRE(v != nullptr);
  CHECK(v->vmStart == r.addr);
  CHECK(v->vmEnd == r.addr + 3 * kPageSize);
  CHECK((v->vmFlags & (VM_READ | VM_WRITE | VM_EXEC | VM_SHARED)) == (VM_READ | VM_WRITE));
  CHECK(v->isAnonymous());
  CHECK(f.mm->mmStats().mmapCalls.value() == 1);
  CHECK(f.ops.rounds.empty());
}

TEST_CASE("mmap rounds the length up to whole pages", "[mm][mmap]") {
  MmFixture f;
  Va a = f.mapAnon(kPageSize + 1);
  CHECK(f.mm->vmaLookup(a)->length() == 2 * kPageSize);
}

TEST_CASE("consecutive anonymous mmaps with equal flags merge into one vma", "[mm][mmap]") {
  MmFixture f;
  Va a = f.mapAnon(4 * kPageSize);
  Va b = f.mapAnon(4 * kPageSize);
  CHECK(b + 4 * kPageSize == a);  // top-down: the second sits right below the first
  REQUIRE(f.mm->mapCount() == 1);
  CHECK(f.mm->vmaLookup(a)->vmStart == b);
  CHECK(f.mm->mmStats().vmaMerges.value() == 1);
}

TEST_CASE("mmaps with different protections stay separate vmas", "[mm][mmap]") {
  MmFixture f;
  f.mapAnon(4 * kPageSize, PROT_READ);
  f.mapAnon(4 * kPageSize, kRW);
  CHECK(f.mm->mapCount() == 2);
}

TEST_CASE("mmap honours a free hint address", "[mm][mmap]") {
  MmFixture f;
  Va hint(0x10000000);
  Va a = f.mapAnon(8 * kPageSize, kRW, kAnon, hint);
  CHECK(a == hint);
}

TEST_CASE("mmap ignores a hint that overlaps a mapping and picks another address", "[mm][mmap]") {
  MmFixture f;
  Va hint(0x10000000);
  f.mapAnon(8 * kPageSize, kRW, kAnon, hint);
  Va b = f.mapAnon(8 * kPageSize, PROT_READ, kAnon, hint);
  CHECK(b != hint);
  CHECK(f.mm->mapCount() == 2);
}

TEST_CASE("address selection is deterministic across identical address spaces", "[mm][mmap]") {
  MmFixture f1, f2;
  for (int i = 0; i < 5; ++i) {
    Va a = f1.mapAnon((i + 1) * kPageSize, i % 2 ? PROT_READ : kRW);
    Va b = f2.mapAnon((i + 1) * kPageSize, i % 2 ? PROT_READ : kRW);
    CHECK(a == b);
  }
}

TEST_CASE("anonymous mappings of 2 MiB or more are 2 MiB aligned for THP", "[mm][mmap]") {
  MmFixture f;
  f.mapAnon(kPageSize);  // disturb the alignment of the top of the area
  Va a = f.mapAnon(4 * kMiB);
  CHECK(a.isAligned(kPmdSize));
}

TEST_CASE("mmap with length 0 fails with EINVAL and changes nothing", "[mm][mmap][errors]") {
  MmFixture f;
  f.mapAnon(kPageSize);
  auto before = f.shape();
  VaResult r = f.mm->mmap(Va(0), 0, kRW, kAnon);
  CHECK(r.err == Errno::Inval);
  CHECK(f.shape() == before);
  CHECK(f.mm->mmStats().failedCalls.value() == 1);
}

TEST_CASE("mmap rejects an unaligned offset, a bad map type, and a missing file with EINVAL",
          "[mm][mmap][errors]") {
  MmFixture f;
  auto file = tmpfile(f.pm, 4 * kPageSize);
  CHECK(f.mm->mmap(Va(0), kPageSize, PROT_READ, MAP_PRIVATE, file, 100).err == Errno::Inval);
  CHECK(f.mm->mmap(Va(0), kPageSize, PROT_READ, MAP_ANONYMOUS).err == Errno::Inval);
  CHECK(f.mm->mmap(Va(0), kPageSize, PROT_READ, MAP_PRIVATE).err == Errno::Inval);
  CHECK(f.mm->mmap(Va(0x10000001), kPageSize, PROT_READ, kAnon | MAP_FIXED).err == Errno::Inval);
  CHECK(f.mm->mapCount() == 0);
  CHECK(f.mm->mmStats().failedCalls.value() == 4);
}

TEST_CASE("MAP_FIXED below mmap_min_addr fails with EPERM and beyond TASK_SIZE with ENOMEM",
          "[mm][mmap][errors]") {
  MmFixture f;
  CHECK(f.mm->mmap(Va(0x1000), kPageSize, kRW, kAnon | MAP_FIXED).err == Errno::Perm);
  CHECK(f.mm->mmap(f.mm->params().taskSize, kPageSize, kRW, kAnon | MAP_FIXED).err == Errno::NoMem);
  CHECK(f.mm->mmap(Va(0), ~0ull - 10, kRW, kAnon).err == Errno::NoMem);
  CHECK(f.mm->mapCount() == 0);
}

TEST_CASE("MAP_FIXED_NOREPLACE over a mapping fails with EEXIST and leaves it alone", "[mm][mmap][errors]") {
  MmFixture f;
  Va a = f.mapAnon(4 * kPageSize);
  auto before = f.shape();
  CHECK(f.mm->mmap(a + kPageSize, kPageSize, PROT_READ, kAnon | MAP_FIXED_NOREPLACE).err == Errno::Exist);
  CHECK(f.shape() == before);
  CHECK(f.ops.rounds.empty());
}

TEST_CASE("MAP_FIXED over a mapping unmaps the covered part with one UNMAP round", "[mm][mmap][events]") {
  MmFixture f;
  Va a = f.mapAnon(4 * kPageSize);
  VaResult r = f.mm->mmap(a + kPageSize, 2 * kPageSize, PROT_READ, kAnon | MAP_FIXED);
  REQUIRE(r.ok());
  CHECK(r.addr == a + kPageSize);
  REQUIRE(f.ops.rounds.size() == 1);
  CHECK(f.ops.rounds[0] == Round{MmuNotifierEvent::Unmap, a + kPageSize, a + 3 * kPageSize});
  REQUIRE(f.mm->mapCount() == 3);
  CHECK((f.mm->vmaLookup(a + kPageSize)->vmFlags & VM_WRITE) == 0);
  CHECK((f.mm->vmaLookup(a)->vmFlags & VM_WRITE) != 0);
  CHECK((f.mm->vmaLookup(a + 3 * kPageSize)->vmFlags & VM_WRITE) != 0);
}

TEST_CASE("munmap of a whole mapping raises one UNMAP round over it and removes the vma",
          "[mm][munmap][events]") {
  MmFixture f;
  Va a = f.mapAnon(4 * kPageSize);
  REQUIRE(f.mm->munmap(a, 4 * kPageSize) == Errno::Ok);
  CHECK(f.mm->mapCount() == 0);
  REQUIRE(f.ops.rounds.size() == 1);
  CHECK(f.ops.rounds[0] == Round{MmuNotifierEvent::Unmap, a, a + 4 * kPageSize});
  CHECK(f.mm->mmStats().notifyEvents[unsigned(MmuNotifierEvent::Unmap)]->value() == 1);
}

TEST_CASE("munmap of the middle of a vma splits it in two", "[mm][munmap]") {
  MmFixture f;
  Va a = f.mapAnon(4 * kPageSize);
  REQUIRE(f.mm->munmap(a + kPageSize, 2 * kPageSize) == Errno::Ok);
  REQUIRE(f.mm->mapCount() == 2);
  CHECK(f.mm->vmaLookup(a)->vmEnd == a + kPageSize);
  CHECK(f.mm->vmaLookup(a + 3 * kPageSize)->vmStart == a + 3 * kPageSize);
  CHECK(f.mm->vmaLookup(a + kPageSize) == nullptr);
  CHECK(f.mm->vmaLookup(a + 3 * kPageSize)->vmPgoff == ((a + 3 * kPageSize).value() >> kPageShift));
  REQUIRE(f.ops.rounds.size() == 1);
  CHECK(f.ops.rounds[0] == Round{MmuNotifierEvent::Unmap, a + kPageSize, a + 3 * kPageSize});
}

TEST_CASE("munmap across two vmas and a hole unmaps both parts in one round", "[mm][munmap][events]") {
  MmFixture f;
  Va a = f.mapAnon(2 * kPageSize, kRW, kAnon, Va(0x20000000));
  Va b = f.mapAnon(2 * kPageSize, kRW, kAnon, Va(0x20004000));
  REQUIRE(f.mm->munmap(a + kPageSize, (b + kPageSize) - (a + kPageSize)) == Errno::Ok);
  CHECK(f.mm->mapCount() == 2);
  REQUIRE(f.ops.rounds.size() == 1);
  CHECK(f.ops.rounds[0] == Round{MmuNotifierEvent::Unmap, a + kPageSize, b + kPageSize});
}

TEST_CASE("munmap of an unmapped range succeeds and raises nothing", "[mm][munmap][events]") {
  MmFixture f;
  CHECK(f.mm->munmap(Va(0x30000000), 16 * kPageSize) == Errno::Ok);
  CHECK(f.ops.rounds.empty());
}

TEST_CASE("munmap with an unaligned address or zero length fails with EINVAL and changes nothing",
          "[mm][munmap][errors]") {
  MmFixture f;
  Va a = f.mapAnon(4 * kPageSize);
  auto before = f.shape();
  CHECK(f.mm->munmap(a + 1, kPageSize) == Errno::Inval);
  CHECK(f.mm->munmap(a, 0) == Errno::Inval);
  CHECK(f.mm->munmap(f.mm->params().taskSize, kPageSize) == Errno::Inval);
  CHECK(f.shape() == before);
  CHECK(f.ops.rounds.empty());
}

TEST_CASE("mprotect of part of a vma splits it into three with the new flags in the middle",
          "[mm][mprotect]") {
  MmFixture f;
  Va a = f.mapAnon(4 * kPageSize);
  REQUIRE(f.mm->mprotect(a + kPageSize, 2 * kPageSize, PROT_READ) == Errno::Ok);
  REQUIRE(f.mm->mapCount() == 3);
  CHECK((f.mm->vmaLookup(a + kPageSize)->vmFlags & (VM_READ | VM_WRITE | VM_EXEC)) == VM_READ);
  CHECK(f.mm->vmaLookup(a + kPageSize)->vmEnd == a + 3 * kPageSize);
  CHECK((f.mm->vmaLookup(a)->vmFlags & (VM_READ | VM_WRITE)) == (VM_READ | VM_WRITE));
}

TEST_CASE("mprotect back to the original protection merges the vmas again", "[mm][mprotect]") {
  MmFixture f;
  Va a = f.mapAnon(4 * kPageSize);
  REQUIRE(f.mm->mprotect(a + kPageSize, 2 * kPageSize, PROT_READ) == Errno::Ok);
  REQUIRE(f.mm->mprotect(a + kPageSize, 2 * kPageSize, kRW) == Errno::Ok);
  CHECK(f.mm->mapCount() == 1);
}

TEST_CASE("mprotect of a never-touched mapping raises no notifier round (no page tables)",
          "[mm][mprotect][events]") {
  MmFixture f;
  Va a = f.mapAnon(4 * kPageSize);
  REQUIRE(f.mm->mprotect(a, 4 * kPageSize, PROT_READ) == Errno::Ok);
  CHECK(f.ops.rounds.empty());
}

TEST_CASE("mprotect over a hole fails with ENOMEM and changes nothing", "[mm][mprotect][errors]") {
  MmFixture f;
  Va a = f.mapAnon(2 * kPageSize, kRW, kAnon, Va(0x20000000));
  f.mapAnon(2 * kPageSize, kRW, kAnon, Va(0x20004000));
  auto before = f.shape();
  CHECK(f.mm->mprotect(a, 6 * kPageSize, PROT_READ) == Errno::NoMem);
  CHECK(f.mm->mprotect(a - kPageSize, 2 * kPageSize, PROT_READ) == Errno::NoMem);
  CHECK(f.shape() == before);
  CHECK(f.ops.rounds.empty());
}

TEST_CASE("mprotect with an unaligned address or unknown bits fails with EINVAL", "[mm][mprotect][errors]") {
  MmFixture f;
  Va a = f.mapAnon(2 * kPageSize);
  auto before = f.shape();
  CHECK(f.mm->mprotect(a + 8, kPageSize, PROT_READ) == Errno::Inval);
  CHECK(f.mm->mprotect(a, kPageSize, 0x100) == Errno::Inval);
  CHECK(f.shape() == before);
}

TEST_CASE("mprotect PROT_WRITE on a shared mapping of a read-only file fails with EACCES",
          "[mm][mprotect][errors]") {
  MmFixture f;
  auto rw = tmpfile(f.pm, 4 * kPageSize);
  auto ro = File::open(rw->inodePtr(), FMODE_READ);
  VaResult r = f.mm->mmap(Va(0), 4 * kPageSize, PROT_READ, MAP_SHARED, ro, 0);
  REQUIRE(r.ok());
  auto before = f.shape();
  CHECK(f.mm->mprotect(r.addr, kPageSize, kRW) == Errno::Acces);
  CHECK(f.shape() == before);
  CHECK(f.mm->mmap(Va(0), kPageSize, kRW, MAP_SHARED, ro, 0).err == Errno::Acces);
}

TEST_CASE("madvise(DONTNEED) raises one CLEAR round per vma part", "[mm][madvise][events]") {
  MmFixture f;
  Va a = f.mapAnon(4 * kPageSize);
  REQUIRE(f.mm->mprotect(a + 2 * kPageSize, 2 * kPageSize, PROT_READ) == Errno::Ok);
  REQUIRE(f.mm->madvise(a + kPageSize, 2 * kPageSize, MADV_DONTNEED) == Errno::Ok);
  REQUIRE(f.ops.rounds.size() == 2);
  CHECK(f.ops.rounds[0] == Round{MmuNotifierEvent::Clear, a + kPageSize, a + 2 * kPageSize});
  CHECK(f.ops.rounds[1] == Round{MmuNotifierEvent::Clear, a + 2 * kPageSize, a + 3 * kPageSize});
  CHECK(f.mm->mapCount() == 2);  // DONTNEED does not split vmas
}

TEST_CASE("madvise(HUGEPAGE) on part of a vma splits it and sets VM_HUGEPAGE there", "[mm][madvise]") {
  MmFixture f;
  Va a = f.mapAnon(8 * kMiB);
  REQUIRE(f.mm->madvise(a + 2 * kMiB, 2 * kMiB, MADV_HUGEPAGE) == Errno::Ok);
  REQUIRE(f.mm->mapCount() == 3);
  Vma* v = f.mm->vmaLookup(a + 2 * kMiB);
  CHECK(v->vmStart == a + 2 * kMiB);
  CHECK(v->vmEnd == a + 4 * kMiB);
  CHECK((v->vmFlags & VM_HUGEPAGE) != 0);
  CHECK((f.mm->vmaLookup(a)->vmFlags & VM_HUGEPAGE) == 0);
  CHECK(f.ops.rounds.empty());
}

TEST_CASE("madvise(NOHUGEPAGE) replaces VM_HUGEPAGE by VM_NOHUGEPAGE", "[mm][madvise]") {
  MmFixture f;
  Va a = f.mapAnon(4 * kMiB);
  REQUIRE(f.mm->madvise(a, 4 * kMiB, MADV_HUGEPAGE) == Errno::Ok);
  REQUIRE(f.mm->madvise(a, 4 * kMiB, MADV_NOHUGEPAGE) == Errno::Ok);
  VmFlags fl = f.mm->vmaLookup(a)->vmFlags;
  CHECK((fl & VM_HUGEPAGE) == 0);
  CHECK((fl & VM_NOHUGEPAGE) != 0);
}

TEST_CASE("madvise with unknown advice fails with EINVAL and over a hole with ENOMEM",
          "[mm][madvise][errors]") {
  MmFixture f;
  Va a = f.mapAnon(4 * kPageSize);
  auto before = f.shape();
  CHECK(f.mm->madvise(a, kPageSize, 12345) == Errno::Inval);
  CHECK(f.mm->madvise(a + 1, kPageSize, MADV_DONTNEED) == Errno::Inval);
  CHECK(f.mm->madvise(a, 8 * kPageSize, MADV_HUGEPAGE) == Errno::NoMem);
  CHECK(f.shape() == before);
  CHECK(f.ops.rounds.empty());
}

TEST_CASE("madvise(FREE) on a shared mapping fails with EINVAL", "[mm][madvise][errors]") {
  MmFixture f;
  Va a = f.mapAnon(4 * kPageSize, kRW, MAP_SHARED | MAP_ANONYMOUS);
  CHECK(f.mm->madvise(a, 4 * kPageSize, MADV_FREE) == Errno::Inval);
  CHECK(f.ops.rounds.empty());
}

TEST_CASE("madvise(DONTFORK) keeps a vma out of the child", "[mm][madvise][fork]") {
  MmFixture f;
  Va a = f.mapAnon(4 * kPageSize);
  Va b = f.mapAnon(4 * kPageSize, PROT_READ);
  REQUIRE(f.mm->madvise(a, 4 * kPageSize, MADV_DONTFORK) == Errno::Ok);
  ForkResult fr = f.mm->fork("child");
  REQUIRE(fr.ok());
  CHECK(fr.child->mapCount() == 1);
  CHECK(fr.child->vmaLookup(b) != nullptr);
  CHECK(fr.child->vmaLookup(a) == nullptr);
}

TEST_CASE("mremap shrinking unmaps the tail with one UNMAP round", "[mm][mremap][events]") {
  MmFixture f;
  Va a = f.mapAnon(4 * kPageSize);
  VaResult r = f.mm->mremap(a, 4 * kPageSize, kPageSize, 0);
  REQUIRE(r.ok());
  CHECK(r.addr == a);
  CHECK(f.mm->vmaLookup(a)->vmEnd == a + kPageSize);
  REQUIRE(f.ops.rounds.size() == 1);
  CHECK(f.ops.rounds[0] == Round{MmuNotifierEvent::Unmap, a + kPageSize, a + 4 * kPageSize});
}

TEST_CASE("mremap grows in place when the space above is free, without a round", "[mm][mremap]") {
  MmFixture f;
  Va a = f.mapAnon(2 * kPageSize, kRW, kAnon, Va(0x20000000));
  VaResult r = f.mm->mremap(a, 2 * kPageSize, 4 * kPageSize, 0);
  REQUIRE(r.ok());
  CHECK(r.addr == a);
  CHECK(f.mm->vmaLookup(a)->vmEnd == a + 4 * kPageSize);
  CHECK(f.ops.rounds.empty());
}

TEST_CASE("mremap that cannot grow in place fails with ENOMEM without MAYMOVE and moves with it",
          "[mm][mremap][events]") {
  MmFixture f;
  Va a = f.mapAnon(2 * kPageSize, kRW, kAnon, Va(0x20000000));
  f.mapAnon(2 * kPageSize, PROT_READ, kAnon, Va(0x20002000));  // blocks growth
  auto before = f.shape();
  CHECK(f.mm->mremap(a, 2 * kPageSize, 4 * kPageSize, 0).err == Errno::NoMem);
  CHECK(f.shape() == before);
  VaResult r = f.mm->mremap(a, 2 * kPageSize, 4 * kPageSize, MREMAP_MAYMOVE);
  REQUIRE(r.ok());
  CHECK(r.addr != a);
  CHECK(f.mm->vmaLookup(a) == nullptr);
  CHECK(f.mm->vmaLookup(r.addr)->vmEnd == r.addr + 4 * kPageSize);
  // move_page_tables' round, then the old range's munmap round (both UNMAP on the old range).
  REQUIRE(f.ops.rounds.size() == 2);
  CHECK(f.ops.rounds[0] == Round{MmuNotifierEvent::Unmap, a, a + 2 * kPageSize});
  CHECK(f.ops.rounds[1] == Round{MmuNotifierEvent::Unmap, a, a + 2 * kPageSize});
}

TEST_CASE("mremap with MREMAP_FIXED moves to the given address and unmaps what was there",
          "[mm][mremap][events]") {
  MmFixture f;
  Va a = f.mapAnon(2 * kPageSize, kRW, kAnon, Va(0x20000000));
  Va t = f.mapAnon(2 * kPageSize, PROT_READ, kAnon, Va(0x30000000));
  VaResult r = f.mm->mremap(a, 2 * kPageSize, 2 * kPageSize, MREMAP_MAYMOVE | MREMAP_FIXED, t);
  REQUIRE(r.ok());
  CHECK(r.addr == t);
  CHECK((f.mm->vmaLookup(t)->vmFlags & VM_WRITE) != 0);
  CHECK(f.mm->vmaLookup(a) == nullptr);
  REQUIRE(f.ops.rounds.size() == 3);
  CHECK(f.ops.rounds[0] == Round{MmuNotifierEvent::Unmap, t, t + 2 * kPageSize});
  CHECK(f.ops.rounds[1] == Round{MmuNotifierEvent::Unmap, a, a + 2 * kPageSize});
  CHECK(f.ops.rounds[2] == Round{MmuNotifierEvent::Unmap, a, a + 2 * kPageSize});
}

TEST_CASE("mremap errors: no vma EFAULT, bad flag combinations EINVAL, range across vmas EFAULT",
          "[mm][mremap][errors]") {
  MmFixture f;
  Va a = f.mapAnon(2 * kPageSize, kRW, kAnon, Va(0x20000000));
  f.mapAnon(2 * kPageSize, PROT_READ, kAnon, Va(0x20002000));
  auto before = f.shape();
  CHECK(f.mm->mremap(Va(0x40000000), kPageSize, kPageSize, MREMAP_MAYMOVE).err == Errno::Fault);
  CHECK(f.mm->mremap(a, kPageSize, 2 * kPageSize, MREMAP_MAYMOVE | MREMAP_DONTUNMAP).err == Errno::Inval);
  CHECK(f.mm->mremap(a, kPageSize, kPageSize, MREMAP_FIXED, Va(0x50000000)).err == Errno::Inval);
  CHECK(f.mm->mremap(a, kPageSize, kPageSize, 0x80).err == Errno::Inval);
  CHECK(f.mm->mremap(a + 1, kPageSize, kPageSize, MREMAP_MAYMOVE).err == Errno::Inval);
  CHECK(f.mm->mremap(a, 4 * kPageSize, 8 * kPageSize, MREMAP_MAYMOVE).err == Errno::Fault);
  CHECK(f.mm->mremap(a, 2 * kPageSize, 0, MREMAP_MAYMOVE).err == Errno::Inval);
  CHECK(f.mm->mremap(a, 2 * kPageSize, 2 * kPageSize, MREMAP_MAYMOVE | MREMAP_FIXED, a + kPageSize).err ==
        Errno::Inval);  // overlapping
  CHECK(f.shape() == before);
  CHECK(f.ops.rounds.empty());
  CHECK(f.mm->mmStats().failedCalls.value() == 8);
}

TEST_CASE("fork copies every vma and gives the child its own notifier subscriptions", "[mm][fork]") {
  MmFixture f;
  Va a = f.mapAnon(4 * kPageSize);
  Va b = f.mapAnon(4 * kPageSize, PROT_READ, MAP_SHARED | MAP_ANONYMOUS);
  ForkResult fr = f.mm->fork("child");
  REQUIRE(fr.ok());
  CHECK(fr.child->mapCount() == f.mm->mapCount());
  CHECK(fr.child->vmaLookup(a)->vmEnd == a + 4 * kPageSize);
  CHECK(fr.child->vmaLookup(b)->vmFile == f.mm->vmaLookup(b)->vmFile);
  CHECK(fr.child->notifierSubscriptions().intervalCount() == 0);
  CHECK(&fr.child->notifierSubscriptions() != &f.mm->notifierSubscriptions());
  CHECK(f.mm->mmStats().forkCalls.value() == 1);
}

TEST_CASE("fork of never-touched private memory raises no PROTECTION_PAGE round (no anon_vma)",
          "[mm][fork][events]") {
  MmFixture f;
  f.mapAnon(4 * kPageSize);
  ForkResult fr = f.mm->fork("child");
  REQUIRE(fr.ok());
  CHECK(f.ops.rounds.empty());
}

TEST_CASE("exit raises RELEASE over everything first, then one UNMAP round over all of 0..ULONG_MAX",
          "[mm][exit][events]") {
  MmFixture f;
  f.mapAnon(4 * kPageSize);
  f.mm->exitMmap();
  REQUIRE(f.ops.rounds.size() == 2);
  CHECK(f.ops.rounds[0].event == MmuNotifierEvent::Release);
  CHECK(f.ops.rounds[0].start == Va(0));
  CHECK(f.ops.rounds[1] == Round{MmuNotifierEvent::Unmap, Va(0), Va(~0ull)});
  CHECK(f.mm->mapCount() == 0);
  CHECK(f.mm->pageTable().tablePages() == 1);  // only the pgd is left
}

TEST_CASE("exit of an empty address space raises only RELEASE", "[mm][exit][events]") {
  MmFixture f;
  f.mm->exitMmap();
  REQUIRE(f.ops.rounds.size() == 1);
  CHECK(f.ops.rounds[0].event == MmuNotifierEvent::Release);
}

TEST_CASE("MAP_HUGETLB needs free huge pages: ENOMEM with an empty pool", "[mm][mmap][hugetlb]") {
  MmFixture f;
  CHECK(f.mm->mmap(Va(0), kPmdSize, kRW, kAnon | MAP_HUGETLB).err == Errno::NoMem);
  CHECK(f.mm->mapCount() == 0);
}

TEST_CASE("MAP_HUGETLB maps a 2 MiB aligned vma of whole huge pages and munmap must be huge-aligned",
          "[mm][mmap][hugetlb]") {
  MmParams p;
  p.hugetlbPages = 4;
  MmFixture f(256ull << 20, p);
  VaResult r = f.mm->mmap(Va(0), kPmdSize + kPageSize, kRW, kAnon | MAP_HUGETLB);
  REQUIRE(r.ok());
  CHECK(r.addr.isAligned(kPmdSize));
  Vma* v = f.mm->vmaLookup(r.addr);
  CHECK(v->length() == 2 * kPmdSize);
  CHECK(v->isHugetlb());
  CHECK(f.mm->munmap(r.addr + kPageSize, kPmdSize) == Errno::Inval);
  CHECK(f.mm->munmap(r.addr + kPmdSize, kPmdSize) == Errno::Ok);
  CHECK(f.mm->vmaLookup(r.addr)->length() == kPmdSize);
}

TEST_CASE("a device file's mmap installs the driver's vm_ops, flags and private data", "[mm][mmap][device]") {
  struct DriverVmOps : VmOperations {
    bool hasP2p() const override { return true; }
    Errno p2pMap(Vma&, Device&, Va, Va, DmaAddr*, bool) override { return Errno::Ok; }
    Errno p2pUnmap(Vma&, Device&, Va, Va, const DmaAddr*) override { return Errno::Ok; }
  } vmOps;
  struct DriverFops : FileOperations {
    explicit DriverFops(VmOperations& o) : ops(o) {}
    Errno mmap(File&, Vma& vma) override {
      if (vma.vmPgoff != 0) return Errno::Inval;
      vma.vmOps = &ops;
      vma.vmFlags |= VM_IO | VM_PFNMAP | VM_DONTEXPAND;
      vma.vmPrivateData = this;
      return Errno::Ok;
    }
    VmOperations& ops;
  } fops(vmOps);
  MmFixture f;
  auto dev = openDeviceFile(f.pm, fops, FMODE_READ | FMODE_WRITE, "gpu0");
  VaResult r = f.mm->mmap(Va(0), 16 * kPageSize, kRW, MAP_SHARED, dev, 0);
  REQUIRE(r.ok());
  Vma* v = f.mm->vmaLookup(r.addr);
  CHECK(v->vmOps == &vmOps);
  CHECK(v->vmOps->hasP2p());
  CHECK((v->vmFlags & (VM_IO | VM_PFNMAP)) == (VM_IO | VM_PFNMAP));
  CHECK(v->vmPrivateData == &fops);
  CHECK(!v->isAnonymous());
  // The driver's refusal is returned unchanged and nothing is mapped.
  CHECK(f.mm->mmap(Va(0), kPageSize, kRW, MAP_SHARED, dev, kPageSize).err == Errno::Inval);
  CHECK(f.mm->mapCount() == 1);
}

TEST_CASE("vm_operations without p2p report it and return -EFAULT", "[mm][vm_ops]") {
  struct Plain : VmOperations {
  } ops;
  Vma v;
  Device d("importer");
  DmaAddr pa[1];
  CHECK_FALSE(ops.hasP2p());
  CHECK(ops.p2pMap(v, d, Va(0), Va(kPageSize), pa, false) == Errno::Fault);
  CHECK(ops.p2pUnmap(v, d, Va(0), Va(kPageSize), pa) == Errno::Fault);
}

TEST_CASE("findVma returns the next vma above a hole and vmaLookup returns none there", "[mm][lookup]") {
  MmFixture f;
  Va a = f.mapAnon(2 * kPageSize, kRW, kAnon, Va(0x20000000));
  Va b = f.mapAnon(2 * kPageSize, PROT_READ, kAnon, Va(0x20010000));
  CHECK(f.mm->findVma(a + 3 * kPageSize)->vmStart == b);
  CHECK(f.mm->vmaLookup(a + 3 * kPageSize) == nullptr);
  CHECK(f.mm->findVma(b + 2 * kPageSize) == nullptr);
  CHECK(f.mm->findVmaIntersection(a + 2 * kPageSize, b) == nullptr);
  CHECK(f.mm->findVmaIntersection(a + kPageSize, b + kPageSize)->vmStart == a);
}

TEST_CASE("a driver mmap that inserted a page and then failed leaves nothing mapped", "[mm][mmap][device]") {
  MmFixture f;
  auto page = f.pm.allocFrame(0);
  REQUIRE(page.has_value());
  struct Fops : FileOperations {
    explicit Fops(Pfn p) : pfn(p) {}
    Errno mmap(File&, Vma& vma) override {
      REQUIRE(vmInsertPage(vma, vma.vmStart, pfn) == Errno::Ok);
      return Errno::NoDev;
    }
    Pfn pfn;
  } fops(*page);
  auto dev = openDeviceFile(f.pm, fops, FMODE_READ | FMODE_WRITE, "bad0");
  VaResult r = f.mm->mmap(Va(0x20000000), 4 * kPageSize, kRW, MAP_SHARED | MAP_FIXED, dev, 0);
  CHECK(r.err == Errno::NoDev);
  CHECK(f.mm->mapCount() == 0);
  CHECK(f.mm->pageTable().lookup(Va(0x20000000)).pte.isNone());
  CHECK(f.pm.frame(*page).refcount() == 1);  // only our allocation's reference is left
  CHECK(f.pm.frame(*page).mapcount == 0);
  REQUIRE(f.ops.rounds.size() == 1);
  CHECK(f.ops.rounds[0] == Round{MmuNotifierEvent::Unmap, Va(0x20000000), Va(0x20000000 + 4 * kPageSize)});
  f.pm.putPage(*page);
}

TEST_CASE("the anon_vma chain holds exactly the vmas of the fork family that share it", "[mm][rmap]") {
  MmFixture f;
  VaResult r = f.mm->mmap(Va(0), 4 * kPageSize, kRW, kAnon);
  REQUIRE(r.ok());
  const Va a = r.addr;
  REQUIRE(copyToUser(*f.mm, a, "x", 1) == Errno::Ok);  // first fault: anon_vma_prepare
  AnonVma* av = f.mm->vmaLookup(a)->anonVma.get();
  REQUIRE(av != nullptr);
  auto chain = [&] {
    std::vector<std::pair<const Mm*, Va>> v;
    for (const Vma& x : av->vmas) v.emplace_back(x.vmMm, x.vmStart);
    return v;
  };
  CHECK(chain() == std::vector<std::pair<const Mm*, Va>>{{f.mm.get(), a}});
  // A split puts both halves on the chain.
  REQUIRE(f.mm->mprotect(a + 2 * kPageSize, 2 * kPageSize, PROT_READ) == Errno::Ok);
  CHECK(chain() == std::vector<std::pair<const Mm*, Va>>{{f.mm.get(), a}, {f.mm.get(), a + 2 * kPageSize}});
  // Merging back drops the absorbed vma.
  REQUIRE(f.mm->mprotect(a + 2 * kPageSize, 2 * kPageSize, kRW) == Errno::Ok);
  CHECK(chain() == std::vector<std::pair<const Mm*, Va>>{{f.mm.get(), a}});
  // fork adds the child's copy; MADV_WIPEONFORK keeps a second child off the chain.
  ForkResult c1 = f.mm->fork("c1");
  REQUIRE(c1.ok());
  CHECK(chain() == std::vector<std::pair<const Mm*, Va>>{{f.mm.get(), a}, {c1.child.get(), a}});
  REQUIRE(f.mm->madvise(a, 4 * kPageSize, MADV_WIPEONFORK) == Errno::Ok);
  ForkResult c2 = f.mm->fork("c2");
  REQUIRE(c2.ok());
  CHECK(c2.child->vmaLookup(a)->anonVma == nullptr);
  CHECK(chain().size() == 2);
  // munmap and exit take vmas off.
  REQUIRE(f.mm->munmap(a, 4 * kPageSize) == Errno::Ok);
  CHECK(chain() == std::vector<std::pair<const Mm*, Va>>{{c1.child.get(), a}});
  c1.child->exitMmap();
  CHECK(chain().empty());
  c2.child->exitMmap();
}

TEST_CASE("a vma without an anon_vma that absorbs its neighbour joins the neighbour's chain", "[mm][rmap]") {
  MmFixture f;
  VaResult r = f.mm->mmap(Va(0), 4 * kPageSize, kRW, kAnon);
  REQUIRE(r.ok());
  const Va a = r.addr;
  REQUIRE(f.mm->mprotect(a, 2 * kPageSize, PROT_READ) == Errno::Ok);   // lower R, upper RW
  REQUIRE(copyToUser(*f.mm, a + 2 * kPageSize, "x", 1) == Errno::Ok);  // upper gets an anon_vma
  REQUIRE(f.mm->vmaLookup(a)->anonVma == nullptr);
  REQUIRE(f.mm->vmaLookup(a + 2 * kPageSize)->anonVma != nullptr);
  // Upper read-only too: the lower vma (no anon_vma) absorbs it and takes its anon_vma.
  REQUIRE(f.mm->mprotect(a + 2 * kPageSize, 2 * kPageSize, PROT_READ) == Errno::Ok);
  Vma* merged = f.mm->vmaLookup(a);
  REQUIRE(merged->vmEnd == a + 4 * kPageSize);
  REQUIRE(merged->anonVma != nullptr);
  std::size_t onChain = 0, total = 0;
  for (const Vma& v : merged->anonVma->vmas) {
    onChain += &v == merged;
    ++total;
  }
  CHECK(onChain == 1);
  CHECK(total == 1);
}
