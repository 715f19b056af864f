// Concurrency on the built platform (issue 12: "CPU threads and device threads fault, migrate,
// invalidate and unmap concurrently without asserts"): two CPU cores, a device importing by DMA
// (ImporterDma on gpu0) and a driver thread migrating pages to a dmirror's device memory and
// back, all on one 64-page range of one process, under the sleeping mmap lock. Every thread's
// operations and gaps come from a seeded Rng. Two copies of the machine run in one simulation
// with the same seed: their logs must be identical (determinism), the checker and lockdep clean,
// and the lock contended. Assertions after sc_start().
//
// Same-time order (models/cpu_mmu/sequencer.h): every thread here waits through the Sequencer, so
// a machine's log depends on the machine and its seed only: copies of seeds 1..kSeeds share one
// simulation with a thread that waits by plain SystemC (changing the timed-event queue), and each
// seed's log equals the log of the same machine simulated alone (in a forked child).
#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <systemc>

#include "models/cpu_mmu/memory.h"
#include "models/cpu_mmu/sequencer.h"
#include "models/devices/common/importer_dma.h"
#include "models/devices/dmirror/dmirror_uapi.h"
#include "models/platform/builtin_devices.h"
#include "models/platform/platform.h"
#include "sim/rng.h"
#include "tests/unit/pcie/fabric_test_util.h"
#include "tests/unit/pcie/topology_fixtures.h"

using namespace hmmsim;
using namespace hmmsim::test;

namespace {

constexpr std::uint64_t kPages = 64, kLen = kPages * kPageSize, kHalf = kLen / 2;
constexpr int kRounds = 100;
constexpr std::uint64_t kSeeds = 40;

/// An SC_THREAD running `body` with a quantum keeper that syncs through the Sequencer.
class SeqThread : public sc_core::sc_module {
 public:
  using Body = std::function<void(tlm_utils::tlm_quantumkeeper&)>;
  SC_HAS_PROCESS(SeqThread);
  SeqThread(sc_core::sc_module_name name, Body body) : sc_module(name), body_(std::move(body)) {
    SC_THREAD(run);
  }

 private:
  void run() {
    SeqQuantumKeeper qk;
    qk.reset();
    body_(qk);
    qk.sync();
  }
  Body body_;
};

/// Unrelated to any machine: wakes every 100 ns by plain SystemC timing, so the timed-event
/// queue holds an event at many of the machines' round-numbered times.
class Noise : public sc_core::sc_module {
 public:
  SC_HAS_PROCESS(Noise);
  explicit Noise(sc_core::sc_module_name name) : sc_module(name) { SC_THREAD(run); }
  std::uint64_t wakes = 0;

 private:
  void run() {
    for (int i = 0; i < 5'000; ++i, ++wakes) sc_core::wait(sc_core::sc_time(100, sc_core::SC_NS));
  }
};

PlatformDesc machine() {
  PlatformDesc d;
  d.ram.ramSize = 256ull << 20;
  d.topology = smallPlatform({"gpu0", "gpu1"});
  d.processes = {ProcessDesc{"proc0", {}}};
  for (const char* c : {"cpu0", "cpu1"}) {
    CpuDesc cpu;
    cpu.name = c;
    cpu.process = "proc0";
    d.cpus.push_back(cpu);
  }
  DmirrorDeviceParams dp;
  dp.dmirror.chunkBytes = 16ull << 20;
  dp.dmirror.capacityBytes = 32ull << 20;
  d.devices = {DeviceDesc{"dmirror", "mirror0", "", dp}};
  return d;
}

std::uint64_t gapPs(Rng& r) {
  return 100'000 + r.below(2'000'000);  // 0.1 .. 2.1 us
}

/// cpu0 owns the first half (loads, stores, mprotect read-only and back); cpu1 the second half
/// (stores, madvise DONTNEED, munmap and mmap MAP_FIXED again). Neither touches an address that
/// could be unmapped or read-only when it does (a correct program; the checker is about the rest).
CpuProgram program(int cpu, Va base, Rng& r) {
  CpuProgram p;
  const std::uint64_t half = base.value() + (cpu == 0 ? 0 : kHalf);
  for (int i = 0; i < kRounds; ++i) {
    p.push_back(CpuOp::compute(gapPs(r)));
    const std::uint64_t page = half + r.below(kPages / 2 - 4) * kPageSize;
    const std::uint64_t n = (1 + r.below(4)) * kPageSize;
    p.push_back(CpuOp::store(-1, page, 64, static_cast<std::uint8_t>(i)));
    if (cpu == 0) {
      p.push_back(CpuOp::mprotect(-1, page, n, PROT_READ));
      p.push_back(CpuOp::load(-1, page + 8, 32));
      p.push_back(CpuOp::mprotect(-1, page, n, PROT_READ | PROT_WRITE));
    } else if (r.below(2) == 0) {
      p.push_back(CpuOp::madvise(-1, page, n, MADV_DONTNEED));
    } else {
      p.push_back(CpuOp::munmap(-1, page, n));
      p.push_back(CpuOp::mmap(-1, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, page));
    }
  }
  return p;
}

/// One machine and its threads; `log` records every operation's time and outcome.
struct Run {
  Run(const std::string& name, std::uint64_t seed) : p(name, machine(), builtinDevices()), rng(seed) {
    Mm& mm = p.process("proc0");
    base = mm.mmap(Va(0), kLen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS).addr;
    REQUIRE(base.value() != 0);
    for (int c = 0; c < 2; ++c) {
      Rng r(seed * 10 + c);
      p.startCpu("cpu" + std::to_string(c), program(c, base, r));
    }
    HmmDmaImporter imp;
    imp.device = &p.pci("gpu0");
    imp.dma = &p.dma();
    ImporterDmaParams ip;
    ip.faultPs = 2'000'000;
    dma = std::make_unique<ImporterDma>(name + ".gpu0.dma", mm, imp, p.fabric().engine("gpu0"), base, kPages,
                                        ip, &p.checker(), &p.directory());
    DmirrorDevice& mirror = p.deviceAs<DmirrorPlatformDevice>("mirror0").dmirror();
    file = mirror.open(mm);
    device = std::make_unique<SeqThread>((name + "_dev").c_str(), [this](tlm_utils::tlm_quantumkeeper& qk) {
      Rng r(rng.below(1u << 30));
      std::vector<std::uint8_t> buf(32 * kPageSize);
      for (int i = 0; i < kRounds; ++i) {
        qk.inc(psTime(gapPs(r) / 4));
        qk.sync();
        const std::uint64_t pages = 8 + r.below(24);  // long transfers: invalidations wait for them
        const Va at = base + r.below(kPages - pages) * kPageSize;
        const std::uint64_t len = pages * kPageSize;
        const ImporterDmaResult res =
            r.below(2) ? dma->write(at, len, buf.data(), qk) : dma->read(at, len, buf.data(), qk);
        log.push_back("dev " + std::to_string(nowPs(qk)) + " " + importerDmaStatusName(res.status));
      }
    });
    migrator =
        std::make_unique<SeqThread>((name + "_mig").c_str(), [this, &mirror](tlm_utils::tlm_quantumkeeper&) {
          Rng r(rng.below(1u << 30) + 7);
          for (int i = 0; i < kRounds; ++i) {
            seqWait(psTime(gapPs(r)));
            HmmDmirrorCmd c;
            c.addr = (base + r.below(kPages - 8) * kPageSize).value();
            c.npages = 1 + r.below(8);
            const unsigned cmd = r.below(2) ? HMM_DMIRROR_MIGRATE_TO_DEV : HMM_DMIRROR_MIGRATE_TO_SYS;
            const Errno e = mirror.ioctl(*file, cmd, c);
            log.push_back("mig " + std::to_string(sc_core::sc_time_stamp().value()) + " " + errnoName(e));
          }
        });
  }
  ~Run() {
    dma.reset();
    file.reset();
  }
  static std::uint64_t nowPs(const tlm_utils::tlm_quantumkeeper& qk) {
    return sc_core::sc_time_stamp().value() + qk.get_local_time().value();
  }
  /// Every log line plus every CPU op's times and result.
  std::vector<std::string> all() {
    std::vector<std::string> out = log;
    for (const char* c : {"cpu0", "cpu1"})
      for (const CpuOpResult& r : p.cpu(c).results())
        out.push_back(std::string(c) + " " + std::to_string(r.start.value()) + "-" +
                      std::to_string(r.end.value()) + " " + errnoName(r.err));
    return out;
  }

  Platform p;
  Rng rng;
  Va base;
  std::unique_ptr<ImporterDma> dma;
  std::shared_ptr<File> file;
  std::unique_ptr<SeqThread> device, migrator;
  std::vector<std::string> log;
};

/// The log of seed `seed`'s machine simulated alone, from a forked child (SystemC elaborates once
/// per process); empty if the child failed.
std::vector<std::string> aloneLog(std::uint64_t seed) {
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    close(fds[0]);
    std::string out;
    {
      Run r("s" + std::to_string(seed) + "a", seed);
      sc_core::sc_start();
      for (const std::string& l : r.all()) out += l + "\n";
    }
    for (std::size_t off = 0; off < out.size();) {
      const ssize_t n = write(fds[1], out.data() + off, out.size() - off);
      if (n <= 0) _exit(1);
      off += std::size_t(n);
    }
    _exit(0);
  }
  close(fds[1]);
  std::string in;
  char buf[4096];
  for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;) in.append(buf, std::size_t(n));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  std::vector<std::string> lines;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return lines;
  for (std::size_t at = 0; at < in.size();) {
    const std::size_t nl = in.find('\n', at);
    lines.push_back(in.substr(at, nl - at));
    at = nl + 1;
  }
  return lines;
}

}  // namespace

TEST_CASE("CPUs, a DMA device and a migrating driver share a range: clean and deterministic") {
  // Every seed's machine twice in one simulation with a plain-SystemC noise thread, and alone in
  // another process: the three logs agree. Before the Sequencer, 6 of seeds 1..40 made two threads
  // of one machine meet at the mmap lock at the same picosecond, which SystemC ordered differently
  // in the two copies (docs/fidelity.md, "Same-time events"); 10 of 1..12 with iovaLink on.
  std::vector<std::vector<std::string>> alone;
  for (std::uint64_t seed = 1; seed <= kSeeds; ++seed) alone.push_back(aloneLog(seed));  // before elaborating
  std::vector<std::unique_ptr<Run>> a, b;
  for (std::uint64_t seed = 1; seed <= kSeeds; ++seed) {
    a.push_back(std::make_unique<Run>("s" + std::to_string(seed) + "a", seed));
    b.push_back(std::make_unique<Run>("s" + std::to_string(seed) + "b", seed));
  }
  Noise noise("noise");
  sc_core::sc_start();
  CHECK(noise.wakes > 0);
  std::uint64_t contended = 0, faulted = 0, invalidated = 0, migrated = 0, diverging = 0;
  for (std::uint64_t i = 0; i < kSeeds; ++i) {
    INFO("seed " << i + 1);
    for (Run* r : {a[i].get(), b[i].get()}) {
      CHECK_FALSE(r->p.cpu("cpu0").killed());
      CHECK_FALSE(r->p.cpu("cpu1").killed());
      for (const Violation& v : r->p.violations().violations()) INFO(InvariantChecker::format(v));
      CHECK(r->p.violations().ok());
    }
    const std::vector<std::string> la = a[i]->all(), lb = b[i]->all();
    CHECK(la.size() ==
          2 * kRounds + a[i]->p.cpu("cpu0").results().size() + a[i]->p.cpu("cpu1").results().size());
    for (std::size_t j = 0; j < std::min(la.size(), lb.size()); ++j)
      if (la[j] != lb[j]) {
        FAIL_CHECK("first difference at " << j << ": " << la[j] << " vs " << lb[j]);
        break;
      }
    diverging += la != lb || la != alone[i];
    CHECK(la == lb);
    CHECK(la == alone[i]);
    Mm& mm = a[i]->p.process("proc0");
    contended += mm.mmapLock().contendedReads() + mm.mmapLock().contendedWrites();
    faulted += a[i]->dma->stats().counterValue("device_faults");
    invalidated += a[i]->dma->mirror().stats().counterValue("invalidations");
    for (const std::string& l : la) migrated += l.rfind("mig ", 0) == 0 && l.find(" OK") != std::string::npos;
  }
  CHECK(diverging == 0);
  // It was concurrent: the lock was contended, the devices faulted, invalidations hit them, and
  // pages went to the dmirror's memory and back.
  INFO("contended " << contended << " faults " << faulted << " invalidations " << invalidated << " migrated "
                    << migrated);
  CHECK(contended > kSeeds);
  CHECK(faulted > kSeeds);
  CHECK(invalidated > 0);
  CHECK(migrated > 0);
}
