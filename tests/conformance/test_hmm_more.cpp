// hmm-tests.c, further `hmm` fixture cases over the same features: teardown, shared anonymous
// memory with a child, device memory release, partial munmap and mremap of migrated THPs,
// copy-on-write of device pages, MADV_FREE and MADV_COLLAPSE around migrated memory.

#include "tests/conformance/hmm_conformance.h"

namespace hmmsim::conformance {
namespace {

constexpr std::uint64_t ONEMEG = 1ull << 20;

int migrateSysToDev(File& fd, HmmBuffer& b, std::uint64_t npages) {
  return hmmDmirrorCmd(fd, HMM_DMIRROR_MIGRATE_TO_DEV, b, npages);
}

HmmBuffer hugeBuffer(Process& p, Va* mapping) {
  *mapping = p.mmap(2 * TWOMEG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  HmmBuffer b = p.bufferAt(mapping->alignUp(TWOMEG), TWOMEG);
  REQUIRE(p.mm().madvise(b.ptr, TWOMEG, MADV_HUGEPAGE) == Errno::Ok);
  return b;
}

// Basic teardown: mirror a buffer, free it, NTIMES (the device page table must follow the
// munmap of mirrored pages each time).
HMM_TEST(anon_teardown) {
  Process& p = self.p();
  const std::uint64_t npages = HMM_BUFFER_SIZE >> kPageShift;
  const std::uint64_t size = npages << kPageShift;
  const std::uint64_t nints = size / sizeof(int);
  Dmirror& d = *self.dev().handleOf(*self.fd);
  for (int c = 0; c < NTIMES; ++c) {
    CAPTURE(c);
    HmmBuffer buffer = p.buffer(size);
    p.fillInts(buffer.ptr, nints, c);
    REQUIRE(hmmDmirrorCmd(*self.fd, HMM_DMIRROR_READ, buffer, npages) == 0);
    REQUIRE(buffer.cpages == npages);
    REQUIRE(buffer.faults == 1);
    REQUIRE(p.firstMismatch(buffer.mirror, nints, c) == -1);
    REQUIRE(p.mm().munmap(buffer.ptr, size) == Errno::Ok);
    REQUIRE(p.mm().munmap(buffer.mirror, size) == Errno::Ok);
    REQUIRE(d.pteCount() == 0);
  }
}

// A device write by a child into MAP_SHARED anonymous memory is seen by the parent.
HMM_TEST(anon_write_child_shared) {
  Process& p = self.p();
  const std::uint64_t npages = HMM_BUFFER_SIZE >> kPageShift;
  const std::uint64_t size = npages << kPageShift;
  const std::uint64_t nints = size / sizeof(int);
  HmmBuffer buffer = p.buffer(size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS);
  p.fillInts(buffer.mirror, nints, 0, -1);
  p.fillInts(buffer.ptr, nints);
  {
    std::unique_ptr<Process> child = p.fork();
    REQUIRE(child->firstMismatch(buffer.ptr, nints) == -1);
    REQUIRE(child->firstMismatch(buffer.mirror, nints, 0, -1) == -1);
    std::shared_ptr<File> childFd = child->open(0);
    HmmBuffer cb = buffer;
    REQUIRE(hmmDmirrorCmd(*childFd, HMM_DMIRROR_WRITE, cb, npages) == 0);
    REQUIRE(cb.cpages == npages);
    REQUIRE(cb.faults == 1);
    REQUIRE(child->firstMismatch(buffer.ptr, nints, 0, -1) == -1);
  }
  REQUIRE(p.firstMismatch(buffer.ptr, nints, 0, -1) == -1);
}

// Migrate to the device, then release the device memory (RELEASE evicts it); the data is back
// in system memory.
HMM_TEST(migrate_release) {
  Process& p = self.p();
  const std::uint64_t npages = HMM_BUFFER_SIZE >> kPageShift;
  const std::uint64_t size = npages << kPageShift;
  const std::uint64_t nints = size / sizeof(int);
  HmmBuffer buffer = p.buffer(size);
  p.fillInts(buffer.ptr, nints);
  REQUIRE(migrateSysToDev(*self.fd, buffer, npages) == 0);
  REQUIRE(buffer.cpages == npages);
  REQUIRE(p.firstMismatch(buffer.mirror, nints) == -1);

  REQUIRE(hmmDmirrorCmd(*self.fd, HMM_DMIRROR_RELEASE, buffer, npages) == 0);
  REQUIRE(self.dev().devmem().allocatedPages() == 0);
  REQUIRE(p.firstMismatch(buffer.ptr, nints) == -1);
}

// Migrate a THP, fault it all back with CPU reads.
HMM_TEST(migrate_anon_huge_fault) {
  Process& p = self.p();
  Va mapping;
  HmmBuffer buffer = hugeBuffer(p, &mapping);
  const std::uint64_t npages = TWOMEG >> kPageShift;
  const std::uint64_t nints = TWOMEG / sizeof(int);
  p.fillInts(buffer.ptr, nints);
  REQUIRE(migrateSysToDev(*self.fd, buffer, npages) == 0);
  REQUIRE(buffer.cpages == npages);
  REQUIRE(p.firstMismatch(buffer.mirror, nints) == -1);
  REQUIRE(p.firstMismatch(buffer.ptr, nints) == -1);
}

// Migrate a THP, munmap 1 MiB of it at offsets 0, 512 KiB and 1 MiB, fault the rest back.
HMM_TEST(migrate_partial_unmap_fault) {
  Process& p = self.p();
  const std::uint64_t npages = TWOMEG >> kPageShift;
  const std::uint64_t nints = TWOMEG / sizeof(int);
  for (std::uint64_t offset : {std::uint64_t{0}, ONEMEG / 2, ONEMEG}) {
    CAPTURE(offset);
    Va mapping;
    HmmBuffer buffer = hugeBuffer(p, &mapping);
    p.fillInts(buffer.ptr, nints);
    REQUIRE(migrateSysToDev(*self.fd, buffer, npages) == 0);
    REQUIRE(buffer.cpages == npages);
    REQUIRE(p.firstMismatch(buffer.mirror, nints) == -1);

    REQUIRE(p.mm().munmap(buffer.ptr + offset, ONEMEG) == Errno::Ok);

    // Fault pages back to system memory and check them (outside the hole).
    for (std::uint64_t part = 0; part < TWOMEG; part += ONEMEG / 2) {
      if (part >= offset && part < offset + ONEMEG) continue;
      const std::uint64_t first = part / sizeof(int);
      const std::vector<int> v = p.loadInts(buffer.ptr + part, ONEMEG / 2 / sizeof(int));
      for (std::uint64_t i = 0; i < v.size(); ++i)
        if (v[i] != static_cast<int>(first + i)) FAIL("ptr[" << first + i << "] = " << v[i]);
    }
    REQUIRE(p.mm().munmap(mapping, 2 * TWOMEG) == Errno::Ok);
  }
}

// Migrate a THP, mremap it to a new 2 MiB-aligned place, fault it back there.
HMM_TEST(migrate_remap_fault) {
  Process& p = self.p();
  const std::uint64_t npages = TWOMEG >> kPageShift;
  const std::uint64_t nints = TWOMEG / sizeof(int);
  Va mapping;
  HmmBuffer buffer = hugeBuffer(p, &mapping);
  p.fillInts(buffer.ptr, nints);
  REQUIRE(migrateSysToDev(*self.fd, buffer, npages) == 0);
  REQUIRE(buffer.cpages == npages);

  const Va target = p.mmap(2 * TWOMEG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS).alignUp(TWOMEG);
  VaResult r = p.mm().mremap(buffer.ptr, TWOMEG, TWOMEG, MREMAP_MAYMOVE | MREMAP_FIXED, target);
  REQUIRE(r.ok());
  REQUIRE(r.addr == target);
  REQUIRE(p.firstMismatch(target, nints) == -1);
}

// Copy-on-write of device pages: after fork, a CPU write by the parent does not reach the child.
HMM_TEST(migrate_cow) {
  Process& p = self.p();
  const std::uint64_t npages = HMM_BUFFER_SIZE >> kPageShift;
  const std::uint64_t size = npages << kPageShift;
  const std::uint64_t nints = size / sizeof(int);
  HmmBuffer buffer = p.buffer(size);
  p.fillInts(buffer.ptr, nints);
  REQUIRE(migrateSysToDev(*self.fd, buffer, npages) == 0);
  REQUIRE(buffer.cpages == npages);

  std::unique_ptr<Process> child = p.fork();
  p.fillInts(buffer.ptr, nints, 0, -1);
  REQUIRE(child->firstMismatch(buffer.ptr, nints) == -1);
  REQUIRE(p.firstMismatch(buffer.ptr, nints, 0, -1) == -1);
  // The parent's device mirror refaults and sees its own copy.
  REQUIRE(hmmDmirrorCmd(*self.fd, HMM_DMIRROR_READ, buffer, npages) == 0);
  REQUIRE(p.firstMismatch(buffer.mirror, nints, 0, -1) == -1);
}

// MADV_FREE on a THP that lives in device memory: the device pages are not lazily freeable
// (only present, clean anonymous pages are), so the data survives a reclaim pass.
HMM_TEST(migrate_anon_huge_madv_free) {
  Process& p = self.p();
  const std::uint64_t npages = TWOMEG >> kPageShift;
  const std::uint64_t nints = TWOMEG / sizeof(int);
  Va mapping;
  HmmBuffer buffer = hugeBuffer(p, &mapping);
  p.fillInts(buffer.ptr, nints);
  REQUIRE(migrateSysToDev(*self.fd, buffer, npages) == 0);
  REQUIRE(buffer.cpages == npages);
  REQUIRE(p.mm().madvise(buffer.ptr, TWOMEG, MADV_FREE) == Errno::Ok);
  // Coherent pages are present ptes, but they are not on the LRU, so lazyfree reclaim does not
  // drop them either.
  p.mm().reclaimLazyfree();
  REQUIRE(p.firstMismatch(buffer.ptr, nints) == -1);
}

// MADV_COLLAPSE after pages came back from the device: 4 KiB pages migrated back to RAM are
// collapsed into a THP again and keep their data.
HMM_TEST(migrate_then_collapse) {
  Process& p = self.p();
  const std::uint64_t npages = TWOMEG >> kPageShift;
  const std::uint64_t nints = TWOMEG / sizeof(int);
  const Va mapping = p.mmap(2 * TWOMEG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  HmmBuffer buffer = p.bufferAt(mapping.alignUp(TWOMEG), TWOMEG);
  REQUIRE(p.mm().madvise(buffer.ptr, TWOMEG, MADV_NOHUGEPAGE) == Errno::Ok);
  p.fillInts(buffer.ptr, nints);
  REQUIRE(migrateSysToDev(*self.fd, buffer, npages) == 0);
  REQUIRE(buffer.cpages == npages);
  REQUIRE(hmmDmirrorCmd(*self.fd, HMM_DMIRROR_MIGRATE_TO_SYS, buffer, npages) == 0);
  REQUIRE(buffer.cpages == npages);
  REQUIRE(p.mm().pageTable().lookup(buffer.ptr).level == PtLevel::Pte);
  // MADV_COLLAPSE respects VM_NOHUGEPAGE (-EINVAL), so allow huge pages first.
  REQUIRE(p.mm().madvise(buffer.ptr, TWOMEG, MADV_COLLAPSE) == Errno::Inval);
  REQUIRE(p.mm().madvise(buffer.ptr, TWOMEG, MADV_HUGEPAGE) == Errno::Ok);
  REQUIRE(p.mm().madvise(buffer.ptr, TWOMEG, MADV_COLLAPSE) == Errno::Ok);
  REQUIRE(p.mm().pageTable().lookup(buffer.ptr).level == PtLevel::Pmd);
  REQUIRE(p.firstMismatch(buffer.ptr, nints) == -1);
}

}  // namespace
}  // namespace hmmsim::conformance

namespace hmmsim::conformance {
namespace {

// Write mmap'ed file memory through the device; the file sees it.
HMM_TEST(file_write) {
  Process& p = self.p();
  const std::uint64_t npages = HMM_BUFFER_SIZE >> kPageShift;
  const std::uint64_t size = npages << kPageShift;
  const std::uint64_t nints = size / sizeof(int);
  std::shared_ptr<File> file = tmpfile(self.machine.pm, size);
  HmmBuffer buffer;
  buffer.size = size;
  buffer.mirror = p.malloc(size);
  buffer.ptr = p.mmap(size, PROT_READ | PROT_WRITE, MAP_SHARED, file, 0);
  p.fillInts(buffer.mirror, nints);

  REQUIRE(hmmDmirrorCmd(*self.fd, HMM_DMIRROR_WRITE, buffer, npages) == 0);
  REQUIRE(buffer.cpages == npages);
  REQUIRE(buffer.faults == 1);
  REQUIRE(p.firstMismatch(buffer.ptr, nints) == -1);
  // The device also wrote the file.
  std::vector<int> v(nints);
  const IoResult r = file->pread(v.data(), size, 0);
  REQUIRE(r.ok());
  REQUIRE(r.bytes == size);
  for (std::uint64_t i = 0; i < nints; ++i)
    if (v[i] != static_cast<int>(i)) FAIL("file[" << i << "] = " << v[i]);
}

// Read anonymous memory NTIMES with fresh buffers.
HMM_TEST(anon_read_multiple) {
  Process& p = self.p();
  const std::uint64_t npages = HMM_BUFFER_SIZE >> kPageShift;
  const std::uint64_t size = npages << kPageShift;
  const std::uint64_t nints = size / sizeof(int);
  for (int c = 0; c < NTIMES; ++c) {
    CAPTURE(c);
    HmmBuffer buffer = p.buffer(size);
    p.fillInts(buffer.ptr, nints, c);
    REQUIRE(hmmDmirrorCmd(*self.fd, HMM_DMIRROR_READ, buffer, npages) == 0);
    REQUIRE(buffer.cpages == npages);
    REQUIRE(buffer.faults == 1);
    REQUIRE(p.firstMismatch(buffer.mirror, nints, c) == -1);
    REQUIRE(p.mm().munmap(buffer.ptr, size) == Errno::Ok);
    REQUIRE(p.mm().munmap(buffer.mirror, size) == Errno::Ok);
  }
}

// hmm_range_fault reports the PMD map order of hugetlb pages (snapshot PMD bit), writable and
// then read-only.
HMM_TEST(compound) {
  Process& p = self.p();
  const std::uint64_t size = TWOMEG;
  const std::uint64_t npages = size >> kPageShift;
  const Va ptr = p.mmap(size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB);
  HmmBuffer buffer = p.bufferAt(ptr, size);
  p.fillInts(buffer.ptr, size / sizeof(int));

  REQUIRE(hmmDmirrorCmd(*self.fd, HMM_DMIRROR_SNAPSHOT, buffer, npages) == 0);
  REQUIRE(buffer.cpages == npages);
  std::vector<std::uint8_t> m = p.loadBytes(buffer.mirror, npages);
  for (std::uint64_t i = 0; i < npages; ++i) REQUIRE(m[i] == (HMM_DMIRROR_PROT_WRITE | HMM_DMIRROR_PROT_PMD));

  REQUIRE(p.mm().mprotect(buffer.ptr, size, PROT_READ) == Errno::Ok);
  REQUIRE(hmmDmirrorCmd(*self.fd, HMM_DMIRROR_SNAPSHOT, buffer, npages) == 0);
  REQUIRE(buffer.cpages == npages);
  m = p.loadBytes(buffer.mirror, npages);
  for (std::uint64_t i = 0; i < npages; ++i) REQUIRE(m[i] == (HMM_DMIRROR_PROT_READ | HMM_DMIRROR_PROT_PMD));
}

// COW of pages that live in the device: the parent writes while a child is alive and gets a new
// system page (private pages are migrated back first).
HMM_TEST(hmm_cow_in_device) {
  Process& p = self.p();
  const std::uint64_t npages = 4;
  const std::uint64_t size = npages << kPageShift;
  const std::uint64_t nints = size / sizeof(int);
  HmmBuffer buffer = p.buffer(size);
  p.fillInts(buffer.ptr, nints);
  REQUIRE(migrateSysToDev(*self.fd, buffer, npages) == 0);
  REQUIRE(buffer.cpages == npages);
  {
    std::unique_ptr<Process> child = p.fork();  // waits for SIGTERM in the kernel test
    p.fillInts(buffer.ptr, nints);
  }  // kill + waitpid
  REQUIRE(hmmDmirrorCmd(*self.fd, HMM_DMIRROR_SNAPSHOT, buffer, npages) == 0);
  REQUIRE(buffer.cpages == npages);
  const std::vector<std::uint8_t> m = p.loadBytes(buffer.mirror, npages);
  for (std::uint64_t i = 0; i < npages; ++i) REQUIRE(m[i] == HMM_DMIRROR_PROT_WRITE);
}

// Migrate a THP and MADV_FREE it.
HMM_TEST(migrate_anon_huge_free) {
  Process& p = self.p();
  const std::uint64_t npages = TWOMEG >> kPageShift;
  const std::uint64_t nints = TWOMEG / sizeof(int);
  Va mapping;
  HmmBuffer buffer = hugeBuffer(p, &mapping);
  p.fillInts(buffer.ptr, nints);
  REQUIRE(migrateSysToDev(*self.fd, buffer, npages) == 0);
  REQUIRE(buffer.cpages == npages);
  REQUIRE(p.firstMismatch(buffer.mirror, nints) == -1);
  REQUIRE(p.mm().madvise(buffer.ptr, TWOMEG, MADV_FREE) == Errno::Ok);
}

// Huge zero page migration with forced allocation errors in both directions. Relies on
// migrate_vma_setup collecting a huge zero PMD as one compound hole (SELECT_COMPOUND), so the
// forced THP allocation failure falls back to 512 4 KiB pages.
HMM_TEST(migrate_anon_huge_zero_err) {
  Process& p = self.p();
  const std::uint64_t npages = TWOMEG >> kPageShift;
  const std::uint64_t nints = TWOMEG / sizeof(int);
  for (int round = 0; round < 2; ++round) {
    CAPTURE(round);
    const Va mapping = p.mmap(2 * TWOMEG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS);
    HmmBuffer buffer = p.bufferAt(mapping.alignUp(TWOMEG), TWOMEG);
    REQUIRE(p.mm().madvise(buffer.ptr, TWOMEG, MADV_HUGEPAGE) == Errno::Ok);
    REQUIRE(p.loadInt(buffer.ptr) == 0);  // map the huge zero page
    if (round == 0)
      REQUIRE(hmmDmirrorCmd(*self.fd, HMM_DMIRROR_FLAGS, buffer, HMM_DMIRROR_FLAG_FAIL_ALLOC) == 0);
    REQUIRE(migrateSysToDev(*self.fd, buffer, npages) == 0);
    REQUIRE(buffer.cpages == npages);
    REQUIRE(p.firstMismatch(buffer.mirror, nints, 0, 0) == -1);
    if (round == 1) {
      REQUIRE(hmmDmirrorCmd(*self.fd, HMM_DMIRROR_FLAGS, buffer, HMM_DMIRROR_FLAG_FAIL_ALLOC) == 0);
      REQUIRE(hmmDmirrorCmd(*self.fd, HMM_DMIRROR_MIGRATE_TO_SYS, buffer, npages) == 0);
    }
    REQUIRE(p.loadInt(buffer.ptr + 2048 * sizeof(int)) == 0);
    REQUIRE(p.mm().munmap(mapping, 2 * TWOMEG) == Errno::Ok);
  }
}

}  // namespace
}  // namespace hmmsim::conformance
