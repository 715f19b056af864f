// Files and the page cache without mappings: read/write/pread/pwrite, sizes, holes, truncate,
// open modes and device files.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstring>
#include <vector>

#include "models/cpu_mmu/file.h"
#include "models/cpu_mmu/phys_mem.h"

using namespace hmmsim;

namespace {
PhysMemParams machine() {
  PhysMemParams p;
  p.ramSize = 64ull << 20;
  return p;
}
}  // namespace

TEST_CASE("pwrite then pread returns the bytes, across a page boundary", "[file]") {
  PhysMem pm(machine());
  auto f = tmpfile(pm);
  std::vector<std::uint8_t> in(6000), out(6000);
  for (std::size_t i = 0; i < in.size(); ++i) in[i] = std::uint8_t(i * 7);
  REQUIRE(f->pwrite(in.data(), in.size(), 3000).bytes == in.size());
  CHECK(f->inode().size() == 9000);
  REQUIRE(f->pread(out.data(), out.size(), 3000).bytes == out.size());
  CHECK(in == out);
  CHECK(f->inode().nrPages() == 3);  // bytes 3000..8999 touch pages 0, 1 and 2
}

TEST_CASE("read and write advance the file position, pread and pwrite do not", "[file]") {
  PhysMem pm(machine());
  auto f = tmpfile(pm);
  const char msg[] = "hello";
  REQUIRE(f->write(msg, 5).bytes == 5);
  REQUIRE(f->write(msg, 5).bytes == 5);
  CHECK(f->pos() == 10);
  char buf[4] = {};
  REQUIRE(f->pread(buf, 4, 5).bytes == 4);
  CHECK(std::memcmp(buf, "hell", 4) == 0);
  CHECK(f->pos() == 10);
  CHECK(f->read(buf, 4).bytes == 0);  // at EOF
}

TEST_CASE("a hole in a file reads as zeros and a read past EOF is clamped", "[file]") {
  PhysMem pm(machine());
  auto f = tmpfile(pm, 3 * kPageSize);
  std::uint64_t v = 1;
  REQUIRE(f->pwrite(&v, sizeof v, 2 * kPageSize).ok());
  std::vector<std::uint8_t> buf(kPageSize, 0xff);
  REQUIRE(f->pread(buf.data(), buf.size(), kPageSize).bytes == kPageSize);
  CHECK(std::all_of(buf.begin(), buf.end(), [](std::uint8_t b) { return b == 0; }));
  CHECK(f->pread(buf.data(), buf.size(), 3 * kPageSize - 10).bytes == 10);
  CHECK(f->inode().nrPages() == 1);
}

TEST_CASE("truncate drops the pages beyond EOF and zeroes the tail of the last page", "[file]") {
  PhysMem pm(machine());
  auto f = tmpfile(pm);
  std::vector<std::uint8_t> ones(3 * kPageSize, 1);
  REQUIRE(f->pwrite(ones.data(), ones.size(), 0).ok());
  const auto freeBefore = pm.freePages();
  REQUIRE(f->ftruncate(kPageSize + 100) == Errno::Ok);
  CHECK(f->inode().nrPages() == 2);
  CHECK(pm.freePages() == freeBefore + 1);
  REQUIRE(f->ftruncate(3 * kPageSize) == Errno::Ok);
  std::uint8_t b = 9;
  REQUIRE(f->pread(&b, 1, kPageSize + 100).ok());
  CHECK(b == 0);
  REQUIRE(f->pread(&b, 1, kPageSize + 99).ok());
  CHECK(b == 1);
}

TEST_CASE("the last file reference frees the page cache", "[file]") {
  PhysMem pm(machine());
  const auto freeBefore = pm.freePages();
  auto f = tmpfile(pm);
  std::vector<std::uint8_t> data(5 * kPageSize, 3);
  REQUIRE(f->pwrite(data.data(), data.size(), 0).ok());
  CHECK(pm.freePages() == freeBefore - 5);
  f.reset();
  CHECK(pm.freePages() == freeBefore);
}

TEST_CASE("open modes are enforced: reads need FMODE_READ, writes FMODE_WRITE", "[file][errors]") {
  PhysMem pm(machine());
  auto rw = tmpfile(pm, kPageSize);
  auto ro = File::open(rw->inodePtr(), FMODE_READ);
  auto wo = File::open(rw->inodePtr(), FMODE_WRITE);
  std::uint64_t v = 1;
  CHECK(ro->pwrite(&v, sizeof v, 0).err == Errno::Acces);
  CHECK(wo->pread(&v, sizeof v, 0).err == Errno::Acces);
  CHECK(ro->ftruncate(0) == Errno::Inval);
  CHECK(rw->pwrite(nullptr, 8, 0).err == Errno::Fault);
  CHECK(rw->inode().nrPages() == 0);
}

TEST_CASE("files opened on one inode share its page cache", "[file]") {
  PhysMem pm(machine());
  auto a = tmpfile(pm, kPageSize);
  auto b = File::open(a->inodePtr(), FMODE_READ | FMODE_WRITE);
  std::uint64_t v = 99, w = 0;
  REQUIRE(a->pwrite(&v, sizeof v, 16).ok());
  REQUIRE(b->pread(&w, sizeof w, 16).ok());
  CHECK(w == 99);
}

TEST_CASE("a device file has no page cache: read and write fail with EINVAL", "[file][device]") {
  struct Fops : FileOperations {
    Errno mmap(File&, Vma&) override { return Errno::Ok; }
    void release(File&) override { ++released; }
    int released = 0;
  } fops;
  PhysMem pm(machine());
  {
    auto d = openDeviceFile(pm, fops, FMODE_READ | FMODE_WRITE, "dev0");
    std::uint64_t v = 0;
    CHECK(d->pread(&v, sizeof v, 0).err == Errno::Inval);
    CHECK(d->pwrite(&v, sizeof v, 0).err == Errno::Inval);
    CHECK(&d->fOp() == &fops);
  }
  CHECK(fops.released == 1);
}
