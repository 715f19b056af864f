#pragma once
// Replay of hmmprobe scripts: the script language of shared/kernel-traces/hmmprobe.c (a user
// program that ran the same lines on a real Linux 6.12 kernel with lib/test_hmm), executed on
// hmmsim's mm and dmirror, printing the probe's result line for every operation. The recorded
// kernel output is a differential oracle: the lines must match exactly.
//
// The machine: one process (one Mm, 1 GiB of RAM) and the kernel module's two device-private
// dmirror devices (open 0, open 1). After every operation the whole-system audit
// (tests/unit/cpu_mmu/mm_audit.h) checks page tables against frames, rss counters and anon_vma
// chains; a problem ends the replay with an error naming the operation.
//
// Buffer layout (the probe did not record its addresses): the k-th mmap of a script is placed at
// kBufferBase + k * kBufferStride, so every buffer starts 2 MiB aligned (hence 64 KiB aligned:
// the fault-around window of a file or shared-anonymous read fault starts at the buffer), no two
// buffers are adjacent (no vma merges between them) and no buffer crosses a 2 MiB boundary. The
// ioctl's bounce buffer (the probe's calloc) is a separate private anonymous mapping, zeroed
// before each command.
//
// Beyond the probe (for fuzzing and hand-written scripts): a CPU access the probe would have
// died on (SIGSEGV/SIGBUS) prints "SIGSEGV" and the replay goes on; malformed lines, buffer
// indices >= 16, buffers over kMaxBufferPages and ranges over kMaxOpPages are parse errors.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sim/checker.h"
#include "sim/strong_types.h"

namespace hmmsim {

class DmirrorDevice;
class File;
class Mm;
class PhysMem;

namespace test {
class MmAuditor;
}

namespace replay {

inline constexpr unsigned kMaxBuffers = 16;            ///< the probe's MAXB
inline constexpr unsigned kMaxDevices = 2;             ///< dmirror0/1 (device private)
inline constexpr std::uint64_t kMaxBufferPages = 512;  ///< one 2 MiB slot
inline constexpr std::uint64_t kMaxOpPages = 1024;     ///< the bounce buffer's size
inline constexpr std::uint64_t kBufferBase = 0x7e0000000000ull;
inline constexpr std::uint64_t kBufferStride = 4ull << 20;
inline constexpr std::uint64_t kBounceBase = 0x7d0000000000ull;

enum class OpKind {
  Open,      ///< open D
  Mmap,      ///< mmap B NPAGES PROT anon|shared|filep|files
  Fill,      ///< fill B V: int word i = V + i over the whole buffer
  Touch,     ///< touch B P: CPU read of the first int of page P
  CpuWrite,  ///< cpuwrite B P V: CPU store of V at page P
  CpuHash,   ///< cpuhash B P N: FNV-1a 64 of N pages read by the CPU
  Mprotect,  ///< mprotect B P N none|r|rw
  Munmap,    ///< munmap B P N
  Madvise,   ///< madvise B P N dontneed|free|hugepage
  DRead,     ///< dread D B P N          (HMM_DMIRROR_READ)
  DWrite,    ///< dwrite D B P N V       (HMM_DMIRROR_WRITE, int word i = V + i)
  Migrate,   ///< migrate D B P N        (HMM_DMIRROR_MIGRATE_TO_DEV)
  MigSys,    ///< migsys D B P N         (HMM_DMIRROR_MIGRATE_TO_SYS)
  Snap,      ///< snap D B P N           (HMM_DMIRROR_SNAPSHOT)
  Release,   ///< release D B P N        (HMM_DMIRROR_RELEASE)
};

enum class MapKind { Anon, Shared, FilePrivate, FileShared };

/// One parsed script line.
struct Op {
  OpKind kind = OpKind::Open;
  std::string text;          ///< the line as printed before " ->"
  unsigned dev = 0;          ///< D
  unsigned buf = 0;          ///< B
  std::uint64_t page = 0;    ///< P (NPAGES for mmap)
  std::uint64_t npages = 0;  ///< N
  int prot = 0;              ///< PROT_* (mmap, mprotect)
  MapKind map = MapKind::Anon;
  int advice = 0;  ///< MADV_* (madvise)
  int value = 0;   ///< V
};

/// Parse one line. Returns nullopt for a comment or blank line; throws std::invalid_argument
/// with what is wrong (the caller adds file:line) for a malformed one.
std::optional<Op> parseLine(const std::string& line);
/// The canonical text of `op` (what parseLine would read back as the same operation).
std::string formatOp(const Op& op);

/// Where a rule-2 report of the checker happened during a replay.
struct CheckerHit {
  std::size_t opIndex;  ///< 0-based index of the operation among the script's operations
  std::string line;     ///< its text
  std::string report;   ///< InvariantChecker::format of the first report of that operation
};

struct ReplayOptions {
  /// dmirror reproduces 6.12's dmirror_do_fault mistake (DmirrorParams::faultStoresDevicePage).
  bool buggyDriver = false;
  /// Run the whole-system audit after every operation.
  bool audit = true;
  /// Device memory chunk of each dmirror (DmirrorParams::chunkBytes). Unit: bytes. Default
  /// 256 MiB, the kernel's DEVMEM_CHUNK_SIZE; the fuzzer uses less (faster set-up).
  std::uint64_t deviceChunkBytes = 256ull << 20;
};

/// The replay machine. Operations run in order through run().
class Replayer {
 public:
  explicit Replayer(const ReplayOptions& opts = {});
  ~Replayer();
  Replayer(const Replayer&) = delete;
  Replayer& operator=(const Replayer&) = delete;

  /// Execute `op` and return the probe's line ("<text> -> <result>"). Throws std::runtime_error
  /// when the audit finds an inconsistency after it.
  std::string run(const Op& op);

  /// The script's process exits and a new one starts on the same machine, as the probe ran every
  /// script in a new process on one booted kernel: the device files are closed (dmirror evicts its
  /// memory), exit_mmap frees the address space and the page cache of the script's files goes.
  /// The machine must then hold nothing of the old process: every RAM page it used is free again
  /// and each dmirror that was opened holds no device page; otherwise std::runtime_error names the
  /// leak (the Replayer is unusable after that). A dmirror that was opened is then set up afresh
  /// (module reload: one preallocated chunk, as the constructor leaves it), the checker and the
  /// buffer numbering restart, and the new process gets its bounce buffer. What a script prints
  /// after reset() is what it prints on a new Replayer (tests/conformance: every kernel trace on
  /// one machine; fuzz/: the corpus in two orders); only the physical pages it gets may differ.
  /// The fuzzer resets instead of rebuilding the machine for every input.
  void reset();

  const InvariantChecker& checker() const { return checker_; }
  const std::vector<CheckerHit>& checkerHits() const { return hits_; }

 private:
  struct Buffer {
    Va addr;
    std::uint64_t npages = 0;
    bool used = false;
  };
  std::string exec(const Op& op);
  std::string dmirrorOp(const Op& op);
  Va pageAddr(const Op& op) const;
  void makeDevice(unsigned d);
  void startProcess();
  void endProcess();
  /// The whole-system audit after `op` (tests/conformance/replay_audit.cpp). Throws
  /// std::runtime_error naming `op` and the problems.
  void audit(const Op& op);

  ReplayOptions opts_;
  InvariantChecker checker_;
  std::unique_ptr<PhysMem> pm_;
  std::uint64_t idleFreePages_ = 0;  ///< free RAM pages of the machine without a process
  std::unique_ptr<DmirrorDevice> devs_[kMaxDevices];
  bool devOpened_[kMaxDevices] = {};  ///< opened by the current process
  std::unique_ptr<Mm> mm_;
  std::shared_ptr<File> fds_[kMaxDevices];
  std::vector<std::shared_ptr<File>> devFiles_;  ///< descriptors a second `open D` replaced (still open)
  std::vector<std::shared_ptr<File>> files_;     ///< the probe's mkstemp files (kept open, as it does)
  Buffer bufs_[kMaxBuffers];
  unsigned mmaps_ = 0;
  std::size_t opIndex_ = 0;
  std::vector<CheckerHit> hits_;
  std::vector<std::uint8_t> scratch_;  ///< host bytes of a fill, cpuhash or ioctl (reused)
  std::unique_ptr<test::MmAuditor> auditor_;
};

/// FNV-1a 64 (the probe's fnv()).
std::uint64_t fnv1a64(const std::uint8_t* p, std::size_t n);

/// Result of comparing a replay with the recorded kernel output.
struct CompareResult {
  bool match = true;
  std::size_t lines = 0;        ///< lines compared
  std::string firstDivergence;  ///< "line 12: kernel `...`\n             hmmsim `...`"
};

/// Replay every operation of `script` (text of a script file) and compare with `expected` (the
/// kernel's output, one line per operation). `scriptName` names the file in messages. Throws
/// std::runtime_error for a parse error or an audit failure (with the file and line).
CompareResult replayAndCompare(Replayer& r, const std::string& script, const std::string& expected,
                               const std::string& scriptName);

/// Replay every operation of `script`, returning the output lines. Throws as replayAndCompare.
std::vector<std::string> replayScript(Replayer& r, const std::string& script, const std::string& scriptName);

}  // namespace replay
}  // namespace hmmsim
