#pragma once
// What an input of the fuzz_mm_script target stands for: a sequence of hmmprobe operations (mm
// system calls, CPU accesses and dmirror commands: tests/conformance/trace_replay.h), and the
// machine they run on. Shared by the libFuzzer target and the test that replays its corpus.
//
// Input format: a text script when the input starts with '#' (lines that do not parse are
// skipped: the seed corpus holds kernel trace scripts), at most kMaxTextOps operations; else
// binary records of 8 bytes each (missing bytes read as zero), at most kMaxOps operations:
//   [0] operation  [1] device  [2] buffer  [3] page  [4] npages  [5] prot/kind/advice  [6..7] value

#include <cstddef>
#include <cstdint>
#include <vector>

#include "tests/conformance/trace_replay.h"

namespace hmmsim::fuzz {

inline constexpr std::size_t kMaxOps = 64;
inline constexpr std::size_t kMaxTextOps = 4 * kMaxOps;

/// The operations `data` stands for (the format above).
std::vector<replay::Op> opsOfInput(const std::uint8_t* data, std::size_t size);

/// The fuzzer's machine: the replay's (audit after every operation, the correct driver) with
/// 2 MiB device memory chunks (one PMD folio each) instead of the kernel's 256 MiB: chunks are
/// added (and evicted) often, and setting a device up afresh costs little.
replay::ReplayOptions machineOptions();

}  // namespace hmmsim::fuzz
