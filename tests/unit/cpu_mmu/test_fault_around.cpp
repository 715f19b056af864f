// Fault-around (mm/memory.c do_fault_around + mm/filemap.c filemap_map_pages): a read fault on
// an empty pte of a file or shared-anonymous vma maps the page-cache pages already present in
// the fault_around_bytes window around it.
#include <catch2/catch.hpp>

#include "models/cpu_mmu/file.h"
#include "models/cpu_mmu/memory.h"
#include "tests/unit/cpu_mmu/fault_test_support.h"

using namespace hmmsim;
using namespace hmmsim::faulttest;

namespace {

const Va kAt(0x7e0000000000ull);  // 2 MiB aligned

/// A file of `pages` pages with the pages in `cached` in its page cache.
std::shared_ptr<File> fileWith(PhysMem& pm, std::uint64_t pages,
                               std::initializer_list<std::uint64_t> cached) {
  auto file = tmpfile(pm, pages * kPageSize);
  for (std::uint64_t i : cached) {
    const std::uint64_t v = 0xF11E0000 + i;
    REQUIRE(file->pwrite(&v, sizeof v, i * kPageSize).ok());
  }
  return file;
}

std::shared_ptr<File> fullFile(PhysMem& pm, std::uint64_t pages) {
  auto file = tmpfile(pm, pages * kPageSize);
  for (std::uint64_t i = 0; i < pages; ++i) REQUIRE(file->pwrite(&i, sizeof i, i * kPageSize).ok());
  return file;
}

bool mapped(Fixture& f, Va va) {
  return f.walk(va).pte.isPresent();
}

}  // namespace

TEST_CASE("a read fault on a file mapping maps the cached pages of its 64 KiB-aligned window") {
  Fixture f;
  auto file = fullFile(f.pm, 40);
  const VaResult r = f.mm->mmap(kAt, 40 * kPageSize, PROT_READ, MAP_PRIVATE | MAP_FIXED, file);
  REQUIRE(r.ok());
  std::uint64_t v = 0;
  REQUIRE(copyFromUser(*f.mm, &v, kAt + 20 * kPageSize, sizeof v) == Errno::Ok);
  CHECK(v == 20);
  for (std::uint64_t i = 16; i < 32; ++i) CHECK(mapped(f, kAt + i * kPageSize));
  CHECK_FALSE(mapped(f, kAt + 15 * kPageSize));
  CHECK_FALSE(mapped(f, kAt + 32 * kPageSize));
  CHECK(f.mm->mmCounter(MmCounter::ShmemPages) == 16);
  const auto page17 = file->inode().findPage(17);
  REQUIRE(page17);
  CHECK(f.pm.frame(*page17).mapcount == 1);
  CHECK(f.walk(kAt + 17 * kPageSize).pte.pfn() == *page17);
  CHECK_FALSE(f.walk(kAt + 17 * kPageSize).pte.isWrite());  // private: read-only until COW
  f.mm->exitMmap();
}

TEST_CASE(
    "fault-around maps only pages already in the page cache, and a shared writable mapping maps them "
    "writable") {
  Fixture f;
  auto file = fileWith(f.pm, 16, {0, 2, 9});
  const VaResult r = f.mm->mmap(kAt, 16 * kPageSize, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, file);
  REQUIRE(r.ok());
  std::uint64_t v = 0;
  REQUIRE(copyFromUser(*f.mm, &v, kAt + kPageSize, sizeof v) == Errno::Ok);  // page 1: ->fault creates it
  CHECK(mapped(f, kAt));
  CHECK(mapped(f, kAt + kPageSize));
  CHECK(mapped(f, kAt + 2 * kPageSize));
  CHECK(mapped(f, kAt + 9 * kPageSize));
  CHECK_FALSE(mapped(f, kAt + 3 * kPageSize));
  CHECK(f.walk(kAt + 9 * kPageSize).pte.isWrite());
  CHECK(file->inode().nrPages() == 4);  // nothing was allocated for the window
  f.mm->exitMmap();
}

TEST_CASE("fault-around is clipped to the vma and skipped for write faults") {
  Fixture f;
  auto file = fullFile(f.pm, 32);
  // The vma starts 4 pages into a 64 KiB window (file offset 4 pages).
  const VaResult r = f.mm->mmap(kAt + 4 * kPageSize, 8 * kPageSize, PROT_READ | PROT_WRITE,
                                MAP_SHARED | MAP_FIXED, file, 4 * kPageSize);
  REQUIRE(r.ok());
  std::uint64_t v = 0;
  REQUIRE(copyFromUser(*f.mm, &v, kAt + 5 * kPageSize, sizeof v) == Errno::Ok);
  CHECK(v == 5);
  for (std::uint64_t i = 4; i < 12; ++i) CHECK(mapped(f, kAt + i * kPageSize));
  CHECK(f.mm->mmCounter(MmCounter::ShmemPages) == 8);
  REQUIRE(f.mm->munmap(r.addr, 8 * kPageSize) == Errno::Ok);
  // A write fault (do_shared_fault) maps only its page.
  const VaResult w = f.mm->mmap(kAt, 16 * kPageSize, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, file);
  REQUIRE(w.ok());
  REQUIRE(copyToUser(*f.mm, kAt + 3 * kPageSize, &v, sizeof v) == Errno::Ok);
  CHECK(f.mm->mmCounter(MmCounter::ShmemPages) == 1);
  f.mm->exitMmap();
}

TEST_CASE(
    "fault_around_bytes of one page disables fault-around, and other sizes round down to a power of two "
    "pages") {
  for (std::uint64_t bytes : {std::uint64_t(4096), std::uint64_t(40960)}) {
    MmParams p;
    p.faultAroundBytes = bytes;
    Fixture f(64ull << 20, p);
    auto file = fullFile(f.pm, 32);
    REQUIRE(f.mm->mmap(kAt, 32 * kPageSize, PROT_READ, MAP_SHARED | MAP_FIXED, file).ok());
    std::uint64_t v = 0;
    REQUIRE(copyFromUser(*f.mm, &v, kAt + 9 * kPageSize, sizeof v) == Errno::Ok);
    // 4096: just the page; 40960 (10 pages) -> 8 pages: [8, 16).
    CHECK(f.mm->mmCounter(MmCounter::ShmemPages) == (bytes == 4096 ? 1 : 8));
    CHECK(mapped(f, kAt + 8 * kPageSize) == (bytes != 4096));
    f.mm->exitMmap();
  }
}
