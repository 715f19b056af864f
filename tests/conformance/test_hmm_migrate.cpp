// hmm-tests.c, fixture `hmm`: migration, mixed map, exclusive access, GUP and THP migration
// cases, each for the private and the coherent device.

#include "models/cpu_mmu/gup.h"
#include "tests/conformance/hmm_conformance.h"

namespace hmmsim::conformance {
namespace {

int migrateSysToDev(File& fd, HmmBuffer& b, std::uint64_t npages) {
  return hmmDmirrorCmd(fd, HMM_DMIRROR_MIGRATE_TO_DEV, b, npages);
}
int migrateDevToSys(File& fd, HmmBuffer& b, std::uint64_t npages) {
  return hmmDmirrorCmd(fd, HMM_DMIRROR_MIGRATE_TO_SYS, b, npages);
}

/// A 2 MiB-aligned THP candidate (the kernel tests map 2 * TWOMEG and align inside it).
HmmBuffer hugeBuffer(Process& p, int prot, Va* mapping) {
  *mapping = p.mmap(2 * TWOMEG, prot, MAP_PRIVATE | MAP_ANONYMOUS);
  HmmBuffer b = p.bufferAt(mapping->alignUp(TWOMEG), TWOMEG);
  REQUIRE(p.mm().madvise(b.ptr, TWOMEG, MADV_HUGEPAGE) == Errno::Ok);
  return b;
}

// Migrate anonymous memory to device private memory.
HMM_TEST(migrate) {
  Process& p = self.p();
  const std::uint64_t npages = HMM_BUFFER_SIZE >> kPageShift;
  const std::uint64_t size = npages << kPageShift;
  const std::uint64_t nints = size / sizeof(int);
  HmmBuffer buffer = p.buffer(size);
  p.fillInts(buffer.ptr, nints);

  REQUIRE(migrateSysToDev(*self.fd, buffer, npages) == 0);
  REQUIRE(buffer.cpages == npages);
  REQUIRE(p.firstMismatch(buffer.mirror, nints) == -1);
}

// Migrate anonymous memory to device private memory and fault some of it back to system memory,
// then try migrating the resulting mix of system and device private memory to the device.
HMM_TEST(migrate_fault) {
  Process& p = self.p();
  const std::uint64_t npages = HMM_BUFFER_SIZE >> kPageShift;
  const std::uint64_t size = npages << kPageShift;
  const std::uint64_t nints = size / sizeof(int);
  HmmBuffer buffer = p.buffer(size);
  p.fillInts(buffer.ptr, nints);

  REQUIRE(migrateSysToDev(*self.fd, buffer, npages) == 0);
  REQUIRE(buffer.cpages == npages);
  REQUIRE(p.firstMismatch(buffer.mirror, nints) == -1);

  // Fault half the pages back to system memory and check them.
  REQUIRE(p.firstMismatch(buffer.ptr, nints / 2) == -1);

  // Migrate memory to the device again.
  REQUIRE(migrateSysToDev(*self.fd, buffer, npages) == 0);
  REQUIRE(buffer.cpages == npages);
  REQUIRE(p.firstMismatch(buffer.mirror, nints) == -1);
}

// Migrate anonymous shared memory to device private memory: shared anonymous pages are page
// cache (shmem) pages and do not migrate, so the read-back misses.
HMM_TEST(migrate_shared) {
  Process& p = self.p();
  const std::uint64_t npages = HMM_BUFFER_SIZE >> kPageShift;
  const std::uint64_t size = npages << kPageShift;
  HmmBuffer buffer = p.buffer(size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS);

  REQUIRE(migrateSysToDev(*self.fd, buffer, npages) == kENOENT);
}

// Migrate memory to the device and back, NTIMES.
HMM_TEST(migrate_multiple) {
  Process& p = self.p();
  const std::uint64_t npages = HMM_BUFFER_SIZE >> kPageShift;
  const std::uint64_t size = npages << kPageShift;
  const std::uint64_t nints = size / sizeof(int);
  for (int i = 0; i < NTIMES; ++i) {
    CAPTURE(i);
    HmmBuffer buffer = p.buffer(size);
    p.fillInts(buffer.ptr, nints);

    REQUIRE(migrateSysToDev(*self.fd, buffer, npages) == 0);
    REQUIRE(buffer.cpages == npages);
    REQUIRE(p.firstMismatch(buffer.mirror, nints) == -1);

    // Migrate back to system memory: explicitly for coherent memory (the CPU can access it in
    // place), by CPU faults for private memory.
    if (self.coherent()) {
      REQUIRE(migrateDevToSys(*self.fd, buffer, npages) == 0);
      REQUIRE(buffer.cpages == npages);
    }
    REQUIRE(p.firstMismatch(buffer.ptr, nints) == -1);

    REQUIRE(p.mm().munmap(buffer.ptr, size) == Errno::Ok);
    REQUIRE(p.mm().munmap(buffer.mirror, size) == Errno::Ok);
  }
}

// Mapping of the device file itself (VM_MIXEDMAP): hmm_range_fault reports the inserted page.
HMM_TEST(mixedmap) {
  Process& p = self.p();
  const std::uint64_t npages = 1;
  const std::uint64_t size = npages << kPageShift;
  HmmBuffer buffer;
  buffer.size = size;
  buffer.mirror = p.malloc(npages);
  buffer.ptr = p.mmap(size, PROT_READ | PROT_WRITE, MAP_PRIVATE, self.fd, 0);
  REQUIRE((p.mm().vmaLookup(buffer.ptr)->vmFlags & VM_MIXEDMAP) != 0);

  REQUIRE(hmmDmirrorCmd(*self.fd, HMM_DMIRROR_SNAPSHOT, buffer, npages) == 0);
  REQUIRE(buffer.cpages == npages);
  REQUIRE(p.loadBytes(buffer.mirror, 1)[0] == HMM_DMIRROR_PROT_READ);
}

// Device-exclusive access, revoked by a CPU write.
HMM_TEST(exclusive) {
  Process& p = self.p();
  const std::uint64_t npages = HMM_BUFFER_SIZE >> kPageShift;
  const std::uint64_t size = npages << kPageShift;
  const std::uint64_t nints = size / sizeof(int);
  HmmBuffer buffer = p.buffer(size);
  p.fillInts(buffer.ptr, nints);

  REQUIRE(hmmDmirrorCmd(*self.fd, HMM_DMIRROR_EXCLUSIVE, buffer, npages) == 0);
  REQUIRE(buffer.cpages == npages);
  REQUIRE(p.firstMismatch(buffer.mirror, nints) == -1);

  // Map the pages in the CPU: ASSERT_EQ(ptr[i]++, i).
  std::vector<int> v = p.loadInts(buffer.ptr, nints);
  for (std::uint64_t i = 0; i < nints; ++i) {
    REQUIRE(v[i] == static_cast<int>(i));
    ++v[i];
  }
  p.storeInts(buffer.ptr, v);
  REQUIRE(p.firstMismatch(buffer.ptr, nints, 1) == -1);

  // Check atomic access revoked.
  REQUIRE(hmmDmirrorCmd(*self.fd, HMM_DMIRROR_CHECK_EXCLUSIVE, buffer, 0 + npages) == 0);
}

// Device-exclusive access, then mprotect(PROT_READ): a device write is refused.
HMM_TEST(exclusive_mprotect) {
  Process& p = self.p();
  const std::uint64_t npages = HMM_BUFFER_SIZE >> kPageShift;
  const std::uint64_t size = npages << kPageShift;
  const std::uint64_t nints = size / sizeof(int);
  HmmBuffer buffer = p.buffer(size);
  p.fillInts(buffer.ptr, nints);

  REQUIRE(hmmDmirrorCmd(*self.fd, HMM_DMIRROR_EXCLUSIVE, buffer, npages) == 0);
  REQUIRE(buffer.cpages == npages);
  REQUIRE(p.firstMismatch(buffer.mirror, nints) == -1);

  REQUIRE(p.mm().mprotect(buffer.ptr, size, PROT_READ) == Errno::Ok);
  REQUIRE(hmmDmirrorCmd(*self.fd, HMM_DMIRROR_WRITE, buffer, npages) == kEPERM);
}

// Device-exclusive access, then fork: copy-on-write still works.
HMM_TEST(exclusive_cow) {
  Process& p = self.p();
  const std::uint64_t npages = HMM_BUFFER_SIZE >> kPageShift;
  const std::uint64_t size = npages << kPageShift;
  const std::uint64_t nints = size / sizeof(int);
  HmmBuffer buffer = p.buffer(size);
  p.fillInts(buffer.ptr, nints);

  REQUIRE(hmmDmirrorCmd(*self.fd, HMM_DMIRROR_EXCLUSIVE, buffer, npages) == 0);
  REQUIRE(buffer.cpages == npages);

  { std::unique_ptr<Process> child = p.fork(); }  // the child exits at once; waitpid()

  std::vector<int> v = p.loadInts(buffer.ptr, nints);
  for (std::uint64_t i = 0; i < nints; ++i) {
    REQUIRE(v[i] == static_cast<int>(i));
    ++v[i];
  }
  p.storeInts(buffer.ptr, v);
  REQUIRE(p.firstMismatch(buffer.ptr, nints, 1) == -1);
}

// GUP of migrated pages. The kernel test drives /sys/kernel/debug/gup_test; hmmsim calls the
// GUP functions (gup.h) directly: GUP_BASIC (get_user_pages), GUP_FAST (get_user_pages_fast),
// PIN_FAST with FOLL_LONGTERM (pin_user_pages_fast), PIN_LONGTERM (pin_user_pages with
// FOLL_LONGTERM), each on one page and released afterwards as gup_test does.
HMM_TEST(hmm_gup_test) {
  Process& p = self.p();
  const std::uint64_t npages = 4;
  const std::uint64_t size = npages << kPageShift;
  const std::uint64_t nints = size / sizeof(int);
  HmmBuffer buffer = p.buffer(size);
  p.fillInts(buffer.ptr, nints);

  REQUIRE(migrateSysToDev(*self.fd, buffer, npages) == 0);
  REQUIRE(buffer.cpages == npages);
  REQUIRE(p.firstMismatch(buffer.mirror, nints) == -1);

  Mm& mm = p.mm();
  Pfn page;
  GupResult r;
  {
    MmapReadLock lock(mm);
    r = getUserPages(mm, buffer.ptr, 1, 0, &page);
  }
  REQUIRE(r.nrPages == 1);
  putUserPage(mm, page);
  r = getUserPagesFast(mm, buffer.ptr + kPage, 1, 0, &page);
  REQUIRE(r.nrPages == 1);
  putUserPage(mm, page);
  r = pinUserPagesFast(mm, buffer.ptr + 2 * kPage, 1, kFollLongterm, &page);
  REQUIRE(r.nrPages == 1);
  unpinUserPage(mm, page);
  {
    MmapReadLock lock(mm);
    r = pinUserPages(mm, buffer.ptr + 3 * kPage, 1, kFollLongterm, &page);
  }
  REQUIRE(r.nrPages == 1);
  unpinUserPage(mm, page);

  // Take a snapshot of the CPU page tables.
  REQUIRE(hmmDmirrorCmd(*self.fd, HMM_DMIRROR_SNAPSHOT, buffer, npages) == 0);
  REQUIRE(buffer.cpages == npages);
  const std::vector<std::uint8_t> m = p.loadBytes(buffer.mirror, npages);
  if (self.coherent()) {
    // Plain GUP leaves coherent pages in place.
    REQUIRE(m[0] == (HMM_DMIRROR_PROT_DEV_COHERENT_LOCAL | HMM_DMIRROR_PROT_WRITE));
    REQUIRE(m[1] == (HMM_DMIRROR_PROT_DEV_COHERENT_LOCAL | HMM_DMIRROR_PROT_WRITE));
  } else {
    // GUP faults device-private pages back to system memory.
    REQUIRE(m[0] == HMM_DMIRROR_PROT_WRITE);
    REQUIRE(m[1] == HMM_DMIRROR_PROT_WRITE);
  }
  // FOLL_LONGTERM migrates coherent pages out too.
  REQUIRE(m[2] == HMM_DMIRROR_PROT_WRITE);
  REQUIRE(m[3] == HMM_DMIRROR_PROT_WRITE);
  // No corrupted data.
  REQUIRE(p.firstMismatch(buffer.ptr, nints) == -1);
}

// Migrate an untouched (empty) THP-aligned read-only region.
HMM_TEST(migrate_anon_huge_empty) {
  Process& p = self.p();
  Va mapping;
  HmmBuffer buffer = hugeBuffer(p, PROT_READ, &mapping);
  const std::uint64_t npages = TWOMEG >> kPageShift;
  const std::uint64_t nints = TWOMEG / sizeof(int);

  REQUIRE(migrateSysToDev(*self.fd, buffer, npages) == 0);
  REQUIRE(buffer.cpages == npages);
  REQUIRE(p.firstMismatch(buffer.mirror, nints, 0, 0) == -1);
}

// Migrate a region mapping the huge zero page.
HMM_TEST(migrate_anon_huge_zero) {
  Process& p = self.p();
  Va mapping;
  HmmBuffer buffer = hugeBuffer(p, PROT_READ, &mapping);
  const std::uint64_t npages = TWOMEG >> kPageShift;
  const std::uint64_t nints = TWOMEG / sizeof(int);

  // Initialize a read-only zero huge page.
  REQUIRE(p.loadInt(buffer.ptr) == 0);

  REQUIRE(migrateSysToDev(*self.fd, buffer, npages) == 0);
  REQUIRE(buffer.cpages == npages);
  REQUIRE(p.firstMismatch(buffer.mirror, nints, 0, 0) == -1);
  // Fault pages back to system memory and check them.
  REQUIRE(p.firstMismatch(buffer.ptr, nints, 0, 0) == -1);
}

// THP migration with a forced device allocation error (falls back to 4 KiB pages), and a THP
// migrated back with a forced system allocation error.
HMM_TEST(migrate_anon_huge_err) {
  Process& p = self.p();
  const std::uint64_t npages = TWOMEG >> kPageShift;
  const std::uint64_t nints = TWOMEG / sizeof(int);
  {
    Va mapping;
    HmmBuffer buffer = hugeBuffer(p, PROT_READ | PROT_WRITE, &mapping);
    p.fillInts(buffer.ptr, nints);

    // Migrate memory to the device but force a THP allocation error.
    REQUIRE(hmmDmirrorCmd(*self.fd, HMM_DMIRROR_FLAGS, buffer, HMM_DMIRROR_FLAG_FAIL_ALLOC) == 0);
    REQUIRE(migrateSysToDev(*self.fd, buffer, npages) == 0);
    REQUIRE(buffer.cpages == npages);
    REQUIRE(p.firstMismatch(buffer.mirror, nints) == -1);

    // Try faulting back a single (PAGE_SIZE) page.
    REQUIRE(p.loadInt(buffer.ptr + 2048 * sizeof(int)) == 2048);
    REQUIRE(p.mm().munmap(mapping, 2 * TWOMEG) == Errno::Ok);
  }
  {
    Va mapping;
    HmmBuffer buffer = hugeBuffer(p, PROT_READ | PROT_WRITE, &mapping);
    p.fillInts(buffer.ptr, nints);

    // Migrate the THP to the device.
    REQUIRE(migrateSysToDev(*self.fd, buffer, npages) == 0);
    REQUIRE(buffer.cpages == npages);
    REQUIRE(p.firstMismatch(buffer.mirror, nints) == -1);

    // Force an allocation error when migrating the THP back.
    REQUIRE(hmmDmirrorCmd(*self.fd, HMM_DMIRROR_FLAGS, buffer, HMM_DMIRROR_FLAG_FAIL_ALLOC) == 0);
    REQUIRE(migrateDevToSys(*self.fd, buffer, npages) == 0);
    REQUIRE(p.loadInt(buffer.ptr + 2048 * sizeof(int)) == 2048);
    REQUIRE(p.firstMismatch(buffer.ptr, nints) == -1);
  }
}

}  // namespace
}  // namespace hmmsim::conformance
