// hmm-tests.c, fixture `hmm2` (two devices of one kind): migrate_mixed, snapshot, double_map.

#include "tests/conformance/hmm_conformance.h"

namespace hmmsim::conformance {
namespace {

// Migrate a range with holes and mixed protections between two devices.
HMM2_TEST(migrate_mixed) {
  Process& p = self.p();
  const std::uint64_t npages = 6;
  const std::uint64_t size = npages << kPageShift;
  // Reserve a range of addresses.
  const Va px = p.mmap(size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS);
  HmmBuffer buffer = p.bufferAt(px, size);

  // Migrating a protected area is an error.
  REQUIRE(hmmDmirrorCmd(*self.fd1, HMM_DMIRROR_MIGRATE_TO_DEV, buffer, npages) == kEINVAL);

  // Punch a hole after the first page address; a range the vma does not cover is an error.
  REQUIRE(p.mm().munmap(px + kPage, kPage) == Errno::Ok);
  REQUIRE(hmmDmirrorCmd(*self.fd1, HMM_DMIRROR_MIGRATE_TO_DEV, buffer, 3) == kEINVAL);

  // Page 2 will be a read-only zero page.
  REQUIRE(p.mm().mprotect(px + 2 * kPage, kPage, PROT_READ) == Errno::Ok);
  const int val = p.loadInt(px + 2 * kPage) + 3;
  REQUIRE(val == 3);
  // Page 3 will be read-only.
  REQUIRE(p.mm().mprotect(px + 3 * kPage, kPage, PROT_READ | PROT_WRITE) == Errno::Ok);
  p.storeInt(px + 3 * kPage, val);
  REQUIRE(p.mm().mprotect(px + 3 * kPage, kPage, PROT_READ) == Errno::Ok);
  // Pages 4-5 will be read-write.
  REQUIRE(p.mm().mprotect(px + 4 * kPage, 2 * kPage, PROT_READ | PROT_WRITE) == Errno::Ok);
  p.storeInt(px + 4 * kPage, val);
  p.storeInt(px + 5 * kPage, val);

  // Now migrate pages 2-5 to device 1.
  buffer.ptr = px + 2 * kPage;
  REQUIRE(hmmDmirrorCmd(*self.fd1, HMM_DMIRROR_MIGRATE_TO_DEV, buffer, 4) == 0);
  REQUIRE(buffer.cpages == 4);

  // Page 5 won't be migrated to device 0 because it's on device 1.
  buffer.ptr = px + 5 * kPage;
  REQUIRE(hmmDmirrorCmd(*self.fd0, HMM_DMIRROR_MIGRATE_TO_DEV, buffer, 1) == kENOENT);
}

// Snapshot of a range with every kind of entry.
HMM2_TEST(snapshot) {
  Process& p = self.p();
  const std::uint64_t npages = 7;
  const std::uint64_t size = npages << kPageShift;
  const Va px = p.mmap(size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS);
  HmmBuffer buffer = p.bufferAt(px, size);

  // Punch a hole after the first page address.
  REQUIRE(p.mm().munmap(px + kPage, kPage) == Errno::Ok);
  // Page 2 will be a read-only zero page.
  REQUIRE(p.mm().mprotect(px + 2 * kPage, kPage, PROT_READ) == Errno::Ok);
  const int val = p.loadInt(px + 2 * kPage) + 3;
  REQUIRE(val == 3);
  // Page 3 will be read-only.
  REQUIRE(p.mm().mprotect(px + 3 * kPage, kPage, PROT_READ | PROT_WRITE) == Errno::Ok);
  p.storeInt(px + 3 * kPage, val);
  REQUIRE(p.mm().mprotect(px + 3 * kPage, kPage, PROT_READ) == Errno::Ok);
  // Pages 4-6 will be read-write.
  REQUIRE(p.mm().mprotect(px + 4 * kPage, 3 * kPage, PROT_READ | PROT_WRITE) == Errno::Ok);
  p.storeInt(px + 4 * kPage, val);

  // Page 5 will be migrated to device 0.
  buffer.ptr = px + 5 * kPage;
  REQUIRE(hmmDmirrorCmd(*self.fd0, HMM_DMIRROR_MIGRATE_TO_DEV, buffer, 1) == 0);
  REQUIRE(buffer.cpages == 1);
  // Page 6 will be migrated to device 1.
  buffer.ptr = px + 6 * kPage;
  REQUIRE(hmmDmirrorCmd(*self.fd1, HMM_DMIRROR_MIGRATE_TO_DEV, buffer, 1) == 0);
  REQUIRE(buffer.cpages == 1);

  // Simulate a device snapshotting the CPU page tables.
  buffer.ptr = px;
  REQUIRE(hmmDmirrorCmd(*self.fd0, HMM_DMIRROR_SNAPSHOT, buffer, npages) == 0);
  REQUIRE(buffer.cpages == npages);

  const std::vector<std::uint8_t> m = p.loadBytes(buffer.mirror, npages);
  REQUIRE(m[0] == HMM_DMIRROR_PROT_ERROR);
  REQUIRE(m[1] == HMM_DMIRROR_PROT_ERROR);
  REQUIRE(m[2] == (HMM_DMIRROR_PROT_ZERO | HMM_DMIRROR_PROT_READ));
  REQUIRE(m[3] == HMM_DMIRROR_PROT_READ);
  REQUIRE(m[4] == HMM_DMIRROR_PROT_WRITE);
  if (!self.coherent()) {
    REQUIRE(m[5] == (HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL | HMM_DMIRROR_PROT_WRITE));
    REQUIRE(m[6] == HMM_DMIRROR_PROT_NONE);  // a foreign private page is not reported
  } else {
    REQUIRE(m[5] == (HMM_DMIRROR_PROT_DEV_COHERENT_LOCAL | HMM_DMIRROR_PROT_WRITE));
    REQUIRE(m[6] == (HMM_DMIRROR_PROT_DEV_COHERENT_REMOTE | HMM_DMIRROR_PROT_WRITE));
  }
}

// Two devices mirror the same pages; a migration to one of them does not break the other.
HMM2_TEST(double_map) {
  Process& p = self.p();
  const std::uint64_t npages = 6;
  const std::uint64_t size = npages << kPageShift;
  const std::uint64_t nints = size / sizeof(int);
  HmmBuffer buffer = p.buffer(size);
  p.fillInts(buffer.ptr, nints);
  // Make the region read-only.
  REQUIRE(p.mm().mprotect(buffer.ptr, size, PROT_READ) == Errno::Ok);

  // Simulate device 0 reading system memory.
  REQUIRE(hmmDmirrorCmd(*self.fd0, HMM_DMIRROR_READ, buffer, npages) == 0);
  REQUIRE(buffer.cpages == npages);
  REQUIRE(buffer.faults == 1);
  REQUIRE(p.firstMismatch(buffer.mirror, nints) == -1);

  // Simulate device 1 reading system memory.
  REQUIRE(hmmDmirrorCmd(*self.fd1, HMM_DMIRROR_READ, buffer, npages) == 0);
  REQUIRE(buffer.cpages == npages);
  REQUIRE(buffer.faults == 1);
  REQUIRE(p.firstMismatch(buffer.mirror, nints) == -1);

  // Migrate pages to device 1 and try to read from device 0.
  REQUIRE(hmmDmirrorCmd(*self.fd1, HMM_DMIRROR_MIGRATE_TO_DEV, buffer, npages) == 0);
  REQUIRE(buffer.cpages == npages);

  REQUIRE(hmmDmirrorCmd(*self.fd0, HMM_DMIRROR_READ, buffer, npages) == 0);
  REQUIRE(buffer.cpages == npages);
  REQUIRE(buffer.faults == 1);
  REQUIRE(p.firstMismatch(buffer.mirror, nints) == -1);
}

}  // namespace
}  // namespace hmmsim::conformance
