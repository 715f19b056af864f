// The fuzz_mm_script machine is reused: after every input its process exits and the machine is
// reset (Replayer::reset). An input's result must not depend on the inputs before it, or a
// finding would not reproduce from its input alone. Every corpus input (seeds and regressions,
// text and binary) is replayed on a new machine and on one reused machine, in the corpus order
// and reversed, and must print the same lines each time. HMMSIM_FUZZ_MM_SCRIPT_CORPUS=<folder>
// in the environment checks another corpus (a fuzzing campaign's) instead.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "fuzz/mm_script_input.h"

using namespace hmmsim;
using namespace hmmsim::replay;

namespace {

struct Input {
  std::string name;
  std::vector<std::uint8_t> bytes;
};

std::vector<Input> corpus() {
  const char* dir = std::getenv("HMMSIM_FUZZ_MM_SCRIPT_CORPUS");
  std::vector<Input> in;
  for (const auto& e : std::filesystem::directory_iterator(dir ? dir : HMMSIM_FUZZ_MM_SCRIPT_CORPUS)) {
    std::ifstream f(e.path(), std::ios::binary);
    in.push_back({e.path().filename().string(), std::vector<std::uint8_t>((std::istreambuf_iterator<char>(f)),
                                                                          std::istreambuf_iterator<char>())});
  }
  std::sort(in.begin(), in.end(), [](const Input& a, const Input& b) { return a.name < b.name; });
  return in;
}

/// The lines the input prints (and any checker report), on `r`.
std::vector<std::string> replayInput(Replayer& r, const Input& in) {
  std::vector<std::string> out;
  for (const Op& op : fuzz::opsOfInput(in.bytes.data(), in.bytes.size())) out.push_back(r.run(op));
  for (const CheckerHit& h : r.checkerHits()) out.push_back("checker: " + h.line + ": " + h.report);
  return out;
}

}  // namespace

TEST_CASE("a fuzz input prints the same lines on a reset machine, after any other inputs, as on a new one",
          "[fuzz]") {
  const std::vector<Input> inputs = corpus();
  REQUIRE(inputs.size() >= 10);
  std::vector<std::vector<std::string>> fresh;
  for (const Input& in : inputs) {
    Replayer r(fuzz::machineOptions());
    fresh.push_back(replayInput(r, in));
  }
  Replayer reused(fuzz::machineOptions());
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    INFO("in corpus order: " << inputs[i].name);
    CHECK(replayInput(reused, inputs[i]) == fresh[i]);
    reused.reset();
  }
  for (std::size_t i = inputs.size(); i-- > 0;) {
    INFO("in reverse order: " << inputs[i].name);
    CHECK(replayInput(reused, inputs[i]) == fresh[i]);
    reused.reset();
  }
}

TEST_CASE("a reset machine starts the next script with no buffers, no open devices and a clean checker",
          "[fuzz]") {
  Replayer r(fuzz::machineOptions());
  for (const char* line : {"open 0", "mmap 0 4 rw anon", "fill 0 5", "migrate 0 0 0 2"})
    r.run(*parseLine(line));
  CHECK(r.run(*parseLine("touch 0 1")) == "touch 0 1 -> 1029");  // migrated back: 5 + 1024
  r.reset();
  // Buffer 0 is gone and dmirror0 is closed; the next mmap is placed where the first one was.
  CHECK(r.run(*parseLine("touch 0 1")) == "touch 0 1 -> SIGSEGV");
  CHECK(r.run(*parseLine("dread 0 0 0 1")) == "dread 0 0 0 1 -> ret=-9");
  CHECK(r.run(*parseLine("mmap 0 4 rw anon")) == "mmap 0 4 rw anon -> ok");
  CHECK(r.run(*parseLine("touch 0 1")) == "touch 0 1 -> 0");
  CHECK(r.checker().ok());
}
