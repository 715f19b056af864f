// File-backed faults: page-cache pages for shared and private mappings, COW away from the cache.
#include <catch2/catch.hpp>

#include "models/cpu_mmu/file.h"
#include "models/cpu_mmu/memory.h"
#include "models/cpu_mmu/vm_operations.h"
#include "tests/unit/cpu_mmu/fault_test_support.h"

using namespace hmmsim;
using namespace hmmsim::faulttest;

namespace {

std::shared_ptr<File> fileWith(PhysMem& pm, std::uint64_t pages) {
  auto file = tmpfile(pm, pages * kPageSize);
  for (std::uint64_t i = 0; i < pages; ++i) {
    const std::uint64_t v = 0xF11E0000 + i;
    REQUIRE(file->pwrite(&v, sizeof v, i * kPageSize).ok());
  }
  return file;
}

std::uint64_t fileWord(File& file, std::uint64_t off) {
  std::uint64_t v = 0;
  REQUIRE(file.pread(&v, sizeof v, off).ok());
  return v;
}

}  // namespace

TEST_CASE("read fault on a private file mapping maps the page-cache page read-only") {
  Fixture f;
  auto file = fileWith(f.pm, 2);
  const VaResult r = f.mm->mmap(Va(0), 2 * kPageSize, PROT_READ | PROT_WRITE, MAP_PRIVATE, file);
  REQUIRE(r.ok());
  CHECK(f.load(r.addr + kPageSize) == 0xF11E0001);
  const auto cached = file->inode().findPage(1);
  REQUIRE(cached);
  const PtWalk w = f.walk(r.addr + kPageSize);
  CHECK(w.pte.pfn() == *cached);
  CHECK_FALSE(w.pte.isWrite());
  CHECK(f.pm.frame(*cached).mapcount == 1);
  f.mm->exitMmap();
}

TEST_CASE("write to a private file mapping COWs away from the page cache") {
  Fixture f;
  auto file = fileWith(f.pm, 1);
  const VaResult r = f.mm->mmap(Va(0), kPageSize, PROT_READ | PROT_WRITE, MAP_PRIVATE, file);
  REQUIRE(r.ok());
  CHECK(f.load(r.addr) == 0xF11E0000);  // maps the cache page first
  f.rec.rounds.clear();
  f.store(r.addr + 8, 0xBEEF);
  const auto cached = file->inode().findPage(0);
  REQUIRE(cached);
  const PtWalk w = f.walk(r.addr);
  CHECK(w.pte.pfn() != *cached);
  CHECK(w.pte.isWrite());
  CHECK(f.pm.frame(w.pte.pfn()).isAnon());
  CHECK(f.load(r.addr) == 0xF11E0000);  // the copy carries the file data
  CHECK(f.load(r.addr + 8) == 0xBEEF);
  CHECK(fileWord(*file, 8) == 0);  // the file is unchanged
  CHECK(f.pm.frame(*cached).mapcount == 0);
  REQUIRE(f.rec.rounds.size() == 1);
  CHECK(f.rec.rounds[0] == Round{MmuNotifierEvent::Clear, r.addr, r.addr + kPageSize});
  f.mm->exitMmap();
}

TEST_CASE("first-touch write to a private file mapping copies the file page (do_cow_fault)") {
  Fixture f;
  auto file = fileWith(f.pm, 1);
  const VaResult r = f.mm->mmap(Va(0), kPageSize, PROT_READ | PROT_WRITE, MAP_PRIVATE, file);
  REQUIRE(r.ok());
  f.store(r.addr + 16, 3);
  CHECK(f.load(r.addr) == 0xF11E0000);
  CHECK(fileWord(*file, 16) == 0);
  CHECK(f.mm->mmCounter(MmCounter::AnonPages) == 1);
  f.mm->exitMmap();
}

TEST_CASE("write to a shared file mapping lands in the page cache") {
  Fixture f;
  auto file = fileWith(f.pm, 1);
  const VaResult r = f.mm->mmap(Va(0), kPageSize, PROT_READ | PROT_WRITE, MAP_SHARED, file);
  REQUIRE(r.ok());
  f.store(r.addr + 24, 0xCAFE);
  CHECK(fileWord(*file, 24) == 0xCAFE);
  const auto cached = file->inode().findPage(0);
  REQUIRE(cached);
  CHECK(f.walk(r.addr).pte.pfn() == *cached);
  f.mm->exitMmap();
}

TEST_CASE("a read fault on a shared writable file mapping maps the page writable") {
  Fixture f;
  auto file = fileWith(f.pm, 1);
  const VaResult r = f.mm->mmap(Va(0), kPageSize, PROT_READ | PROT_WRITE, MAP_SHARED, file);
  REQUIRE(r.ok());
  CHECK(f.load(r.addr) == 0xF11E0000);
  CHECK(f.walk(r.addr).pte.isWrite());
  f.mm->exitMmap();
}

TEST_CASE("a file fault beyond the end of the file is SIGBUS") {
  Fixture f;
  auto file = fileWith(f.pm, 1);
  const VaResult r = f.mm->mmap(Va(0), 2 * kPageSize, PROT_READ, MAP_SHARED, file);
  REQUIRE(r.ok());
  Vma* v = f.mm->vmaLookup(r.addr + kPageSize);
  REQUIRE(v);
  CHECK(handleMmFault(*v, r.addr + kPageSize, 0) == VmFaultResult::Sigbus);
  std::uint64_t x;
  CHECK(copyFromUser(*f.mm, &x, r.addr + kPageSize, sizeof x) == Errno::Fault);
  f.mm->exitMmap();
}

namespace {

/// A device driver whose mmap makes a VM_PFNMAP (or VM_MIXEDMAP) vma and whose fault inserts the
/// pfns of a "BAR" (here: RAM frames it owns) with vmf_insert_pfn / vm_insert_page.
class BarDriver final : public FileOperations, public VmOperations {
 public:
  BarDriver(PhysMem& pm, bool mixed, bool withFault) : mixed_(mixed), withFault_(withFault) {
    base = *pm.allocFrame(2);
    const std::uint64_t v = 0xBA5E;
    pm.write(paOf(base), &v, sizeof v);
  }
  Errno mmap(File&, Vma& vma) override {
    vma.vmOps = this;
    vma.vmFlags |= mixed_ ? VM_MIXEDMAP : (VM_IO | VM_PFNMAP | VM_DONTEXPAND);
    return Errno::Ok;
  }
  bool hasFault() const override { return withFault_; }
  VmFaultResult fault(VmFault& vmf) override {
    ++faults;
    if (mixed_) {
      const Errno e = vmInsertPage(*vmf.vma, vmf.address, base + vmf.pgoff);
      return e == Errno::Ok ? VmFaultResult::NoPage : VmFaultResult::Sigbus;
    }
    return vmfInsertPfn(*vmf.vma, vmf.address, base + vmf.pgoff);
  }
  const char* name() const override { return "bar"; }
  Pfn base;
  int faults = 0;

 private:
  bool mixed_, withFault_;
};

}  // namespace

TEST_CASE("a fault in a VM_PFNMAP vma calls vm_ops->fault, which inserts a special pfn pte") {
  Fixture f;
  BarDriver drv(f.pm, false, true);
  auto file = openDeviceFile(f.pm, drv, FMODE_READ | FMODE_WRITE, "bar0");
  const VaResult r = f.mm->mmap(Va(0), 4 * kPageSize, PROT_READ | PROT_WRITE, MAP_SHARED, file);
  REQUIRE(r.ok());
  CHECK(f.load(r.addr) == 0xBA5E);
  CHECK(drv.faults == 1);
  const PtWalk w = f.walk(r.addr);
  CHECK(w.pte.isSpecial());
  CHECK(w.pte.pfn() == drv.base);
  CHECK(w.pte.isWrite());  // shared writable mapping: vm_page_prot allows writes
  CHECK(f.pm.frame(drv.base).mapcount == 0);
  f.mm->exitMmap();
  f.pm.putPage(drv.base);
}

TEST_CASE("a fault in a special vma without vm_ops->fault is SIGBUS") {
  Fixture f;
  BarDriver drv(f.pm, false, false);
  auto file = openDeviceFile(f.pm, drv, FMODE_READ | FMODE_WRITE, "bar0");
  const VaResult r = f.mm->mmap(Va(0), kPageSize, PROT_READ, MAP_SHARED, file);
  REQUIRE(r.ok());
  Vma* v = f.mm->vmaLookup(r.addr);
  CHECK(handleMmFault(*v, r.addr, 0) == VmFaultResult::Sigbus);
  CHECK(drv.faults == 0);
  f.mm->exitMmap();
  f.pm.putPage(drv.base);
}

TEST_CASE("vm_insert_page from a VM_MIXEDMAP fault maps a refcounted page") {
  Fixture f;
  BarDriver drv(f.pm, true, true);
  auto file = openDeviceFile(f.pm, drv, FMODE_READ | FMODE_WRITE, "dmirror");
  const VaResult r = f.mm->mmap(Va(0), kPageSize, PROT_READ, MAP_PRIVATE, file);
  REQUIRE(r.ok());
  CHECK(f.load(r.addr) == 0xBA5E);
  const PtWalk w = f.walk(r.addr);
  CHECK_FALSE(w.pte.isSpecial());
  CHECK(f.pm.frame(drv.base).mapcount == 1);
  CHECK(f.pm.frame(drv.base).refcount() == 2);
  f.mm->exitMmap();
  CHECK(f.pm.frame(drv.base).refcount() == 1);
  f.pm.putPage(drv.base);
}
