// The replay's whole-system audit after every operation, in a file of its own: the fuzz preset
// builds it without the fuzzer's coverage instrumentation (tests/conformance/trace_replay_lib.cmake).
// The audit is the fuzzer's oracle, not what it explores: instrumented, its walk over the whole
// page table took a sixth of fuzz_mm_script's time and fed libFuzzer features that steer nothing.
#include <stdexcept>
#include <string>
#include <vector>

#include "tests/conformance/trace_replay.h"
#include "tests/unit/cpu_mmu/mm_audit.h"

namespace hmmsim::replay {

void Replayer::audit(const Op& op) {
  const std::vector<std::string> problems = auditor_->audit(*pm_, {mm_.get()});
  if (problems.empty()) return;
  std::string msg = "audit after `" + op.text + "`:";
  for (const std::string& p : problems) msg += "\n  " + p;
  throw std::runtime_error(msg);
}

}  // namespace hmmsim::replay
