// libFuzzer target, structure-aware: bytes become a sequence of hmmprobe operations (mm system
// calls, CPU accesses and dmirror commands: tests/conformance/trace_replay.h) replayed on one
// process and two device-private dmirrors with the whole-system audit after every operation.
// Findings: an audit inconsistency, a checker report (the correct driver never accesses a
// device-private frame's address), an assertion, or a sanitizer report.
//
// Input format: a text script when the input starts with '#' (lines that do not parse are
// skipped: the seed corpus holds kernel trace scripts), else binary records of 8 bytes each
// (missing bytes read as zero), at most kMaxOps operations:
//   [0] operation  [1] device  [2] buffer  [3] page  [4] npages  [5] prot/kind/advice  [6..7] value
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <optional>
#include <sstream>
#include <string>

#include "models/cpu_mmu/vma.h"
#include "tests/conformance/trace_replay.h"

using namespace hmmsim::replay;

namespace {

constexpr std::size_t kMaxOps = 64;
constexpr unsigned kBuffers = 4;    ///< few buffers: operations meet on the same ranges
constexpr unsigned kMaxPages = 40;  ///< beyond the 32-page buffers: ranges cross their ends

Op decode(const std::uint8_t* r) {
  static const OpKind kinds[] = {
      OpKind::Open, OpKind::Mmap, OpKind::Fill, OpKind::Touch, OpKind::CpuWrite, OpKind::CpuHash,
      OpKind::Mprotect, OpKind::Munmap, OpKind::Madvise, OpKind::DRead, OpKind::DWrite, OpKind::Migrate,
      OpKind::MigSys, OpKind::Snap, OpKind::Release,
      // the device commands twice as often: they are the point
      OpKind::DRead, OpKind::DWrite, OpKind::Migrate, OpKind::MigSys, OpKind::Snap};
  static const int prots[] = {hmmsim::PROT_NONE, hmmsim::PROT_READ, hmmsim::PROT_READ | hmmsim::PROT_WRITE};
  static const int advices[] = {hmmsim::MADV_DONTNEED, hmmsim::MADV_FREE, hmmsim::MADV_HUGEPAGE};
  Op op;
  op.kind = kinds[r[0] % (sizeof kinds / sizeof kinds[0])];
  op.dev = r[1] % kMaxDevices;
  op.buf = r[2] % kBuffers;
  op.page = r[3] % (kMaxPages + 1);
  op.npages = r[4] % (kMaxPages + 1);
  op.prot = prots[r[5] % 3];
  op.map = static_cast<MapKind>((r[5] >> 2) % 4);
  op.advice = advices[(r[5] >> 4) % 3];
  op.value = static_cast<std::int16_t>(r[6] | (r[7] << 8));
  if (op.kind == OpKind::Mmap && op.page == 0) op.page = 1 + r[4] % 32;
  op.text = formatOp(op);
  return op;
}

[[noreturn]] void finding(const std::string& what, const std::string& log) {
  std::fprintf(stderr, "fuzz_mm_script: %s\nreplayed:\n%s", what.c_str(), log.c_str());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  ReplayOptions opts;
  opts.deviceChunkBytes = 16ull << 20;  // small device memory: faster set-up, and it can run out
  Replayer r(opts);
  std::string log;
  auto run = [&](const Op& op) {
    log += op.text + "\n";
    try {
      r.run(op);
    } catch (const std::exception& e) {
      finding(e.what(), log);
    }
    if (!r.checker().ok()) finding(hmmsim::InvariantChecker::format(r.checker().violations()[0]), log);
  };
  if (size > 0 && data[0] == '#') {
    std::istringstream is(std::string(reinterpret_cast<const char*>(data), size));
    std::size_t n = 0;
    for (std::string line; std::getline(is, line) && n < 4 * kMaxOps;) {
      std::optional<Op> op;
      try {
        op = parseLine(line);
      } catch (const std::invalid_argument&) {
        continue;
      }
      if (!op) continue;
      ++n;
      run(*op);
    }
    return 0;
  }
  for (std::size_t i = 0; i < kMaxOps && i * 8 < size; ++i) {
    std::uint8_t rec[8] = {};
    for (std::size_t j = 0; j < 8 && i * 8 + j < size; ++j) rec[j] = data[i * 8 + j];
    run(decode(rec));
  }
  return 0;
}
