// libFuzzer target, structure-aware: bytes become a sequence of hmmprobe operations (mm system
// calls, CPU accesses and dmirror commands; format in fuzz/mm_script_input.h) replayed on one
// process and two device-private dmirrors with the whole-system audit after every operation.
// Findings: an audit inconsistency, a checker report (the correct driver never accesses a
// device-private frame's address), a page the process leaves behind when it exits (the machine's
// reset), an assertion, or a sanitizer report.
//
// The machine (RAM, the two dmirrors) is built once per fuzzer process; after every input its
// process exits and the machine is reset (Replayer::reset: leak audit, used dmirrors set up
// afresh), so an input's result does not depend on the inputs before it
// (test_fuzz_mm_script checks it on the corpus) and an input costs no machine set-up.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

#include "fuzz/mm_script_input.h"

using namespace hmmsim::replay;

namespace {

[[noreturn]] void finding(const std::string& what, const std::string& log) {
  std::fprintf(stderr, "fuzz_mm_script: %s\nreplayed:\n%s", what.c_str(), log.c_str());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static Replayer machine(hmmsim::fuzz::machineOptions());
  std::string log;
  for (const Op& op : hmmsim::fuzz::opsOfInput(data, size)) {
    log += op.text + "\n";
    try {
      machine.run(op);
    } catch (const std::exception& e) {
      finding(e.what(), log);
    }
    if (!machine.checker().ok())
      finding(hmmsim::InvariantChecker::format(machine.checker().violations()[0]), log);
  }
  try {
    machine.reset();
  } catch (const std::exception& e) {
    finding(e.what(), log);
  }
  return 0;
}
