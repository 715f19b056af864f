#pragma once
// Support for the port of tools/testing/selftests/mm/hmm-tests.c onto the dmirror model.
//
// The kernel harness opens /dev/hmm_dmirror<N> in the test process, mmaps buffers, and talks to
// the device with ioctl(HMM_DMIRROR_*, struct hmm_dmirror_cmd). Here a Machine holds the
// physical memory and the four dmirror devices (0/1 device private, 2/3 device coherent, so the
// coherent variants run instead of being skipped), a Process holds an Mm, and HmmBuffer holds the
// two user buffers of the kernel's struct hmm_buffer (`ptr`, the mirrored range, and `mirror`,
// the ioctl's bounce buffer, which malloc places in the same address space). Data moves through
// copyToUser/copyFromUser, i.e. through the CPU page tables, as the test's loads and stores do.
//
// Test names follow the kernel's: "hmm.hmm_device_private.anon_read" etc. HMM_TEST(name) defines
// one body run for both variants of the `hmm` fixture, HMM2_TEST(name) for the `hmm2` fixture.

#include <catch2/catch.hpp>

#include <array>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "models/cpu_mmu/file.h"
#include "models/cpu_mmu/memory.h"
#include "models/cpu_mmu/mm.h"
#include "models/cpu_mmu/page_table.h"
#include "models/cpu_mmu/phys_mem.h"
#include "models/devices/dmirror/dmirror.h"

namespace hmmsim::conformance {

inline constexpr std::uint64_t kPage = kPageSize;
inline constexpr std::uint64_t TWOMEG = 1ull << 21;
inline constexpr std::uint64_t HMM_BUFFER_SIZE = 1024ull << 12;
inline constexpr int NTIMES = 10;

enum class Variant { Private, Coherent };

inline PhysMemParams conformanceMachine() {
  PhysMemParams p;
  p.ramSize = 512ull << 20;
  return p;
}

/// The kernel module's four devices on one machine.
struct Machine {
  explicit Machine(const DmirrorParams& dp = {}) : pm(conformanceMachine()) {
    devs[0] = std::make_unique<DmirrorDevice>(pm, 0, MemoryType::DevicePrivate, dp);
    devs[1] = std::make_unique<DmirrorDevice>(pm, 1, MemoryType::DevicePrivate, dp);
    devs[2] = std::make_unique<DmirrorDevice>(pm, 2, MemoryType::DeviceCoherent, dp);
    devs[3] = std::make_unique<DmirrorDevice>(pm, 3, MemoryType::DeviceCoherent, dp);
  }
  PhysMem pm;
  std::array<std::unique_ptr<DmirrorDevice>, 4> devs;
};

/// MmParams of the test process: THP on madvise (the selftests madvise MADV_HUGEPAGE) and a
/// hugetlb pool so that anon_write_hugetlbfs runs instead of skipping.
inline MmParams processParams() {
  MmParams p;
  p.hugetlbPages = 8;
  return p;
}

/// struct hmm_buffer.
struct HmmBuffer {
  Va ptr;                    ///< the mirrored range
  Va mirror;                 ///< the ioctl's `ptr` (malloc'ed bounce buffer)
  std::uint64_t size = 0;    ///< bytes
  std::uint64_t cpages = 0;  ///< from the last command
  std::uint64_t faults = 0;  ///< from the last command
};

/// One process: an Mm and the files it opened.
class Process {
 public:
  Process(Machine& m, const std::string& name = "proc")
      : Process(m, std::make_unique<Mm>(m.pm, name, processParams())) {}
  Process(Machine& m, std::unique_ptr<Mm> mm) : m_(m), mm_(std::move(mm)) {}
  ~Process() { exit(); }
  /// fork(): the child process.
  std::unique_ptr<Process> fork(const std::string& name = "child") {
    ForkResult r = mm_->fork(name);
    REQUIRE(r.ok());
    return std::make_unique<Process>(m_, std::move(r.child));
  }
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  Mm& mm() { return *mm_; }
  Machine& machine() { return m_; }

  /// hmm_open(unit).
  std::shared_ptr<File> open(unsigned unit) {
    auto f = m_.devs[unit]->open(*mm_);
    REQUIRE(f);
    return f;
  }
  /// Process exit: its files are closed (the caller drops its references first), then exit_mmap.
  void exit() {
    if (mm_ && !mm_->exited()) mm_->exitMmap();
  }

  /// mmap(NULL, len, prot, flags, -1, 0); REQUIREs success.
  Va mmap(std::uint64_t len, int prot, int flags, const std::shared_ptr<File>& file = nullptr,
          std::uint64_t off = 0) {
    VaResult r = mm_->mmap(Va(0), len, prot, flags, file, off);
    REQUIRE(r.ok());
    return r.addr;
  }
  /// malloc(len): an anonymous read-write mapping.
  Va malloc(std::uint64_t len) { return mmap(len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS); }

  /// A new HmmBuffer with `ptr` mapped as given and a malloc'ed mirror.
  HmmBuffer buffer(std::uint64_t size, int prot = PROT_READ | PROT_WRITE,
                   int flags = MAP_PRIVATE | MAP_ANONYMOUS) {
    HmmBuffer b;
    b.size = size;
    b.ptr = mmap(size, prot, flags);
    b.mirror = malloc(size);
    return b;
  }
  /// A buffer whose ptr is supplied by the caller.
  HmmBuffer bufferAt(Va ptr, std::uint64_t size) {
    HmmBuffer b;
    b.size = size;
    b.ptr = ptr;
    b.mirror = malloc(size);
    return b;
  }

  /// The test's `int *ptr` loads and stores (the CPU path, faults included).
  void storeInts(Va at, const std::vector<int>& v) {
    REQUIRE(copyToUser(*mm_, at, v.data(), v.size() * sizeof(int)) == Errno::Ok);
  }
  std::vector<int> loadInts(Va at, std::uint64_t n) {
    std::vector<int> v(n);
    REQUIRE(copyFromUser(*mm_, v.data(), at, n * sizeof(int)) == Errno::Ok);
    return v;
  }
  int loadInt(Va at) { return loadInts(at, 1)[0]; }
  void storeInt(Va at, int x) { storeInts(at, {x}); }
  std::vector<std::uint8_t> loadBytes(Va at, std::uint64_t n) {
    std::vector<std::uint8_t> v(n);
    REQUIRE(copyFromUser(*mm_, v.data(), at, n) == Errno::Ok);
    return v;
  }
  /// for (i = 0; i < n; ++i) ptr[i] = base + sign * i;
  void fillInts(Va at, std::uint64_t n, int base = 0, int sign = 1) {
    std::vector<int> v(n);
    for (std::uint64_t i = 0; i < n; ++i) v[i] = base + sign * static_cast<int>(i);
    storeInts(at, v);
  }
  /// Index of the first ptr[i] != base + sign * i in [from, n), or -1 (after loading them).
  long firstMismatch(Va at, std::uint64_t n, int base = 0, int sign = 1, std::uint64_t from = 0) {
    const std::vector<int> v = loadInts(at, n);
    for (std::uint64_t i = from; i < n; ++i)
      if (v[i] != base + sign * static_cast<int>(i)) return static_cast<long>(i);
    return -1;
  }

 private:
  Machine& m_;
  std::unique_ptr<Mm> mm_;
};

/// hmm_dmirror_cmd(fd, request, buffer, npages): returns 0 or -errno; on success copies cpages
/// and faults into the buffer (the kernel's helper retries on EINTR, which hmmsim never returns).
inline int hmmDmirrorCmd(File& fd, unsigned request, HmmBuffer& buffer, std::uint64_t npages) {
  HmmDmirrorCmd cmd;
  cmd.addr = buffer.ptr.value();
  cmd.ptr = buffer.mirror.value();
  cmd.npages = npages;
  DmirrorDevice* dev = nullptr;
  // The file's operations are the device (openDeviceFile).
  dev = dynamic_cast<DmirrorDevice*>(&fd.fOp());
  REQUIRE(dev != nullptr);
  const Errno e = dev->ioctl(fd, request, cmd);
  if (e != Errno::Ok) return toKernel(e);
  buffer.cpages = cmd.cpages;
  buffer.faults = cmd.faults;
  return 0;
}

/// Kernel errno values for REQUIRE(ret == -EFAULT) style checks.
inline constexpr int kEINVAL = toKernel(Errno::Inval);
inline constexpr int kEFAULT = toKernel(Errno::Fault);
inline constexpr int kEPERM = toKernel(Errno::Perm);
inline constexpr int kENOENT = toKernel(Errno::NoEnt);
inline constexpr int kEBUSY = toKernel(Errno::Busy);
inline constexpr int kENOMEM = toKernel(Errno::NoMem);

/// FIXTURE(hmm): one device of the variant opened by the test process.
struct HmmFixture {
  explicit HmmFixture(Variant v)
      : variant(v), proc(std::make_unique<Process>(machine)), fd(proc->open(deviceNumber())) {}
  ~HmmFixture() {
    fd.reset();    // close(fd)
    proc.reset();  // the process exits
  }
  unsigned deviceNumber() const { return variant == Variant::Private ? 0 : 2; }
  bool coherent() const { return variant == Variant::Coherent; }
  Process& p() { return *proc; }
  DmirrorDevice& dev() { return *machine.devs[deviceNumber()]; }

  Variant variant;
  Machine machine;
  std::unique_ptr<Process> proc;
  std::shared_ptr<File> fd;
};

/// FIXTURE(hmm2): two devices of the variant.
struct Hmm2Fixture {
  explicit Hmm2Fixture(Variant v)
      : variant(v),
        proc(std::make_unique<Process>(machine)),
        fd0(proc->open(deviceNumber0())),
        fd1(proc->open(deviceNumber0() + 1)) {}
  ~Hmm2Fixture() {
    fd0.reset();
    fd1.reset();
    proc.reset();
  }
  unsigned deviceNumber0() const { return variant == Variant::Private ? 0 : 2; }
  bool coherent() const { return variant == Variant::Coherent; }
  Process& p() { return *proc; }

  Variant variant;
  Machine machine;
  std::unique_ptr<Process> proc;
  std::shared_ptr<File> fd0;
  std::shared_ptr<File> fd1;
};

#define HMMSIM_CONF_TEST2(fixture, prefix, privName, cohName, name, tags) \
  static void prefix##_##name(fixture& self);                             \
  TEST_CASE(privName "." #name, tags) {                                   \
    fixture f(::hmmsim::conformance::Variant::Private);                   \
    prefix##_##name(f);                                                   \
  }                                                                       \
  TEST_CASE(cohName "." #name, tags) {                                    \
    fixture f(::hmmsim::conformance::Variant::Coherent);                  \
    prefix##_##name(f);                                                   \
  }                                                                       \
  static void prefix##_##name(fixture& self)

#define HMM_TEST(name)                                                                          \
  HMMSIM_CONF_TEST2(HmmFixture, hmm, "hmm.hmm_device_private", "hmm.hmm_device_coherent", name, \
                    "[conformance]")
#define HMM_TEST_TAGS(name, tags) \
  HMMSIM_CONF_TEST2(HmmFixture, hmm, "hmm.hmm_device_private", "hmm.hmm_device_coherent", name, tags)
#define HMM2_TEST(name)                                                                               \
  HMMSIM_CONF_TEST2(Hmm2Fixture, hmm2, "hmm2.hmm2_device_private", "hmm2.hmm2_device_coherent", name, \
                    "[conformance]")

}  // namespace hmmsim::conformance
