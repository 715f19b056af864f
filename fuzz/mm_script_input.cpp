// Decoding fuzz_mm_script inputs. See mm_script_input.h.
#include "fuzz/mm_script_input.h"

#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>

#include "models/cpu_mmu/vma.h"

namespace hmmsim::fuzz {

using namespace replay;

namespace {

constexpr unsigned kBuffers = 4;    ///< few buffers: operations meet on the same ranges
constexpr unsigned kMaxPages = 40;  ///< beyond the 32-page buffers: ranges cross their ends

Op decode(const std::uint8_t* r) {
  static const OpKind kinds[] = {
      OpKind::Open, OpKind::Mmap, OpKind::Fill, OpKind::Touch, OpKind::CpuWrite, OpKind::CpuHash,
      OpKind::Mprotect, OpKind::Munmap, OpKind::Madvise, OpKind::DRead, OpKind::DWrite, OpKind::Migrate,
      OpKind::MigSys, OpKind::Snap, OpKind::Release,
      // the device commands twice as often: they are the point
      OpKind::DRead, OpKind::DWrite, OpKind::Migrate, OpKind::MigSys, OpKind::Snap};
  static const int prots[] = {PROT_NONE, PROT_READ, PROT_READ | PROT_WRITE};
  static const int advices[] = {MADV_DONTNEED, MADV_FREE, MADV_HUGEPAGE};
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

}  // namespace

std::vector<Op> opsOfInput(const std::uint8_t* data, std::size_t size) {
  std::vector<Op> ops;
  if (size > 0 && data[0] == '#') {
    std::istringstream is(std::string(reinterpret_cast<const char*>(data), size));
    for (std::string line; ops.size() < kMaxTextOps && std::getline(is, line);) {
      std::optional<Op> op;
      try {
        op = parseLine(line);
      } catch (const std::invalid_argument&) {
        continue;
      }
      if (op) ops.push_back(std::move(*op));
    }
    return ops;
  }
  for (std::size_t i = 0; i < kMaxOps && i * 8 < size; ++i) {
    std::uint8_t rec[8] = {};
    for (std::size_t j = 0; j < 8 && i * 8 + j < size; ++j) rec[j] = data[i * 8 + j];
    ops.push_back(decode(rec));
  }
  return ops;
}

ReplayOptions machineOptions() {
  ReplayOptions o;
  o.deviceChunkBytes = 2ull << 20;
  return o;
}

}  // namespace hmmsim::fuzz
