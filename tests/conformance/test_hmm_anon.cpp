// hmm-tests.c, fixture `hmm`: open_close and the anonymous/file read and write cases
// (anon_read, anon_read_prot, anon_write, anon_write_prot, anon_write_child, anon_write_huge,
// anon_write_hugetlbfs, file_read), each for the private and the coherent device.

#include "tests/conformance/hmm_conformance.h"

namespace hmmsim::conformance {
namespace {

// Open and close the device.
HMM_TEST(open_close) {
  REQUIRE(self.fd);
  REQUIRE(self.dev().openHandles() == 1);
  self.fd.reset();
  REQUIRE(self.dev().openHandles() == 0);
}

// Read private anonymous memory.
HMM_TEST(anon_read) {
  Process& p = self.p();
  const std::uint64_t npages = HMM_BUFFER_SIZE >> kPageShift;
  const std::uint64_t size = npages << kPageShift;
  const std::uint64_t nints = size / sizeof(int);
  HmmBuffer buffer = p.buffer(size);
  // Leave the first two pages zero (pte_none and, after the CPU read below, the zero pfn).
  {
    std::vector<int> v(nints);
    for (std::uint64_t i = 0; i < nints; ++i) v[i] = static_cast<int>(i);
    const std::uint64_t skip = 2 * kPage / sizeof(int);
    REQUIRE(copyToUser(p.mm(), buffer.ptr + skip * sizeof(int), v.data() + skip,
                       (nints - skip) * sizeof(int)) == Errno::Ok);
  }
  REQUIRE(p.mm().mprotect(buffer.ptr, size, PROT_READ) == Errno::Ok);
  // Populate the CPU page table with the zero page.
  REQUIRE(p.loadInt(buffer.ptr + kPage) == 0);

  REQUIRE(hmmDmirrorCmd(*self.fd, HMM_DMIRROR_READ, buffer, npages) == 0);
  REQUIRE(buffer.cpages == npages);
  REQUIRE(buffer.faults == 1);

  const std::vector<int> m = p.loadInts(buffer.mirror, nints);
  std::uint64_t i = 0;
  for (; i < 2 * kPage / sizeof(int); ++i) REQUIRE(m[i] == 0);
  for (; i < nints; ++i)
    if (m[i] != static_cast<int>(i)) FAIL("mirror[" << i << "] = " << m[i]);
}

// Read private anonymous memory which has been protected with mprotect() PROT_NONE.
HMM_TEST(anon_read_prot) {
  Process& p = self.p();
  const std::uint64_t npages = HMM_BUFFER_SIZE >> kPageShift;
  const std::uint64_t size = npages << kPageShift;
  const std::uint64_t nints = size / sizeof(int);
  HmmBuffer buffer = p.buffer(size);
  p.fillInts(buffer.ptr, nints);
  p.fillInts(buffer.mirror, nints, 0, -1);  // so we can verify it isn't written
  REQUIRE(p.mm().mprotect(buffer.ptr, size, PROT_NONE) == Errno::Ok);

  REQUIRE(hmmDmirrorCmd(*self.fd, HMM_DMIRROR_READ, buffer, npages) == kEFAULT);

  REQUIRE(p.mm().mprotect(buffer.ptr, size, PROT_READ) == Errno::Ok);
  REQUIRE(p.firstMismatch(buffer.ptr, nints) == -1);
  REQUIRE(p.firstMismatch(buffer.mirror, nints, 0, -1) == -1);
}

// Write private anonymous memory.
HMM_TEST(anon_write) {
  Process& p = self.p();
  const std::uint64_t npages = HMM_BUFFER_SIZE >> kPageShift;
  const std::uint64_t size = npages << kPageShift;
  const std::uint64_t nints = size / sizeof(int);
  HmmBuffer buffer = p.buffer(size);
  p.fillInts(buffer.mirror, nints);

  REQUIRE(hmmDmirrorCmd(*self.fd, HMM_DMIRROR_WRITE, buffer, npages) == 0);
  REQUIRE(buffer.cpages == npages);
  REQUIRE(buffer.faults == 1);
  REQUIRE(p.firstMismatch(buffer.ptr, nints) == -1);
}

// Write private anonymous memory which has been protected with mprotect() PROT_READ.
HMM_TEST(anon_write_prot) {
  Process& p = self.p();
  const std::uint64_t npages = HMM_BUFFER_SIZE >> kPageShift;
  const std::uint64_t size = npages << kPageShift;
  const std::uint64_t nints = size / sizeof(int);
  HmmBuffer buffer = p.buffer(size, PROT_READ);

  // Simulate a device reading a zero page of memory.
  REQUIRE(hmmDmirrorCmd(*self.fd, HMM_DMIRROR_READ, buffer, 1) == 0);
  REQUIRE(buffer.cpages == 1);
  REQUIRE(buffer.faults == 1);

  p.fillInts(buffer.mirror, nints);
  REQUIRE(hmmDmirrorCmd(*self.fd, HMM_DMIRROR_WRITE, buffer, npages) == kEPERM);
  REQUIRE(p.firstMismatch(buffer.ptr, nints, 0, 0) == -1);  // still all zero

  // Now allow writing and see that the zero page is replaced.
  REQUIRE(p.mm().mprotect(buffer.ptr, size, PROT_WRITE | PROT_READ) == Errno::Ok);
  REQUIRE(hmmDmirrorCmd(*self.fd, HMM_DMIRROR_WRITE, buffer, npages) == 0);
  REQUIRE(buffer.cpages == npages);
  REQUIRE(buffer.faults == 1);
  REQUIRE(p.firstMismatch(buffer.ptr, nints) == -1);
}

// Check that a device writing an anonymous private mapping will copy-on-write if a child process
// inherits the mapping. Loops over {no migration, migration to the device} x {4 KiB, THP}.
HMM_TEST(anon_write_child) {
  Process& p = self.p();
  for (int migrate = 0; migrate < 2; ++migrate) {
    for (int useThp = 0; useThp < 2; ++useThp) {
      CAPTURE(migrate, useThp);
      const std::uint64_t npages = (useThp ? TWOMEG : HMM_BUFFER_SIZE) >> kPageShift;
      const std::uint64_t size = npages << kPageShift;
      const std::uint64_t nints = size / sizeof(int);
      const Va mapping =
          p.mmap(useThp ? 2 * size : size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
      HmmBuffer buffer = p.bufferAt(useThp ? mapping.alignUp(TWOMEG) : mapping, size);
      if (useThp) REQUIRE(p.mm().madvise(buffer.ptr, size, MADV_HUGEPAGE) == Errno::Ok);

      p.fillInts(buffer.mirror, nints, 0, -1);  // what the child's device will write
      p.fillInts(buffer.ptr, nints);            // so we can tell if it is written

      if (migrate) {
        REQUIRE(hmmDmirrorCmd(*self.fd, HMM_DMIRROR_MIGRATE_TO_DEV, buffer, npages) == 0);
        REQUIRE(buffer.cpages == npages);
      }

      {
        std::unique_ptr<Process> child = p.fork();
        // Child: check the parent's data, then write through its own device handle (dmirror0).
        REQUIRE(child->firstMismatch(buffer.ptr, nints) == -1);
        // MIGRATE_TO_DEV copied the migrated data into the mirror, so the -i pattern is only
        // there (and only written) without migration, as in the kernel test.
        if (!migrate) REQUIRE(child->firstMismatch(buffer.mirror, nints, 0, -1) == -1);
        {
          std::shared_ptr<File> childFd = child->open(0);
          HmmBuffer cb = buffer;
          REQUIRE(hmmDmirrorCmd(*childFd, HMM_DMIRROR_WRITE, cb, npages) == 0);
          REQUIRE(cb.cpages == npages);
          REQUIRE(cb.faults == 1);
          if (!migrate) REQUIRE(child->firstMismatch(buffer.ptr, nints, 0, -1) == -1);
        }  // close(child_fd)
      }    // the child exits; waitpid()
      // Parent: its data is unchanged (copy-on-write).
      REQUIRE(p.firstMismatch(buffer.ptr, nints) == -1);
      REQUIRE(p.mm().munmap(mapping, useThp ? 2 * size : size) == Errno::Ok);
    }
  }
}

// Write huge page with MADV_HUGEPAGE.
HMM_TEST(anon_write_huge) {
  Process& p = self.p();
  const Va mapping = p.mmap(2 * TWOMEG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  const std::uint64_t size = TWOMEG;
  const std::uint64_t npages = size >> kPageShift;
  const std::uint64_t nints = size / sizeof(int);
  HmmBuffer buffer = p.bufferAt(mapping.alignUp(size), size);
  REQUIRE(p.mm().madvise(buffer.ptr, size, MADV_HUGEPAGE) == Errno::Ok);
  p.fillInts(buffer.mirror, nints);

  REQUIRE(hmmDmirrorCmd(*self.fd, HMM_DMIRROR_WRITE, buffer, npages) == 0);
  REQUIRE(buffer.cpages == npages);
  REQUIRE(buffer.faults == 1);
  REQUIRE(p.firstMismatch(buffer.ptr, nints) == -1);
  // The write fault populated a THP (hmmsim check: the leaf is a PMD).
  REQUIRE(p.mm().pageTable().lookup(buffer.ptr).level == PtLevel::Pmd);
}

// Write huge page with hugetlbfs (MAP_HUGETLB). The kernel test skips without free huge pages;
// hmmsim configures a pool (processParams) so it runs.
HMM_TEST(anon_write_hugetlbfs) {
  Process& p = self.p();
  const std::uint64_t size = TWOMEG;
  const std::uint64_t npages = size >> kPageShift;
  const std::uint64_t nints = size / sizeof(int);
  const Va ptr = p.mmap(size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB);
  HmmBuffer buffer = p.bufferAt(ptr, size);
  p.fillInts(buffer.mirror, nints);

  REQUIRE(hmmDmirrorCmd(*self.fd, HMM_DMIRROR_WRITE, buffer, npages) == 0);
  REQUIRE(buffer.cpages == npages);
  REQUIRE(buffer.faults == 1);
  REQUIRE(p.firstMismatch(buffer.ptr, nints) == -1);
}

// Read mmap'ed file memory.
HMM_TEST(file_read) {
  Process& p = self.p();
  const std::uint64_t npages = HMM_BUFFER_SIZE >> kPageShift;
  const std::uint64_t size = npages << kPageShift;
  const std::uint64_t nints = size / sizeof(int);
  std::shared_ptr<File> file = tmpfile(self.machine.pm, size);  // hmm_create_file()
  {
    std::vector<int> v(nints);
    for (std::uint64_t i = 0; i < nints; ++i) v[i] = static_cast<int>(i);
    const IoResult r = file->pwrite(v.data(), size, 0);
    REQUIRE(r.ok());
    REQUIRE(r.bytes == size);
  }
  HmmBuffer buffer;
  buffer.size = size;
  buffer.mirror = p.malloc(size);  // zeroed
  buffer.ptr = p.mmap(size, PROT_READ, MAP_SHARED, file, 0);

  REQUIRE(hmmDmirrorCmd(*self.fd, HMM_DMIRROR_READ, buffer, npages) == 0);
  REQUIRE(buffer.cpages == npages);
  REQUIRE(buffer.faults == 1);
  REQUIRE(p.firstMismatch(buffer.mirror, nints) == -1);
}

}  // namespace
}  // namespace hmmsim::conformance
