// hmm_trace_replay: one ctest entry per recorded kernel script (tests/conformance/trace_replay.cmake).
//
//   hmm_trace_replay --traces DIR --script NNNN [--crash-line L]
//   hmm_trace_replay --traces DIR --all                 (every script on one reset machine)
//   hmm_trace_replay --run FILE [--buggy-driver]        (print the replay of any script)
//
// A script with a recorded output (DIR/expected/NNNN.out) must match it line for line, with
// dmirror's buggy-driver switch off and on, and the checker must report nothing either way.
// A script listed in DIR/crashed.txt (the real kernel oopsed) must run to the end without a
// report with the switch off; with it on, the checker's first report must be at script line L
// (the operation where the kernel crashed).
// --all replays every script in order on one machine, reset between scripts as the probe's
// kernel ran each in a new process (Replayer::reset): each recorded script must still match and
// no script may leave a page behind or make the checker report.

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "tests/conformance/trace_replay.h"

using namespace hmmsim::replay;

// This program has its own main(), but libsystemc.so references sc_main, and a link that keeps
// libsystemc.so (the asan preset's does) fails without it. It is never called.
extern "C" int sc_main(int /*argc*/, char* /*argv*/[]) {
  return 0;
}

namespace {

bool readFile(const std::string& path, std::string& out) {
  std::ifstream f(path);
  if (!f) return false;
  std::ostringstream ss;
  ss << f.rdbuf();
  out = ss.str();
  return true;
}

/// Script line number (1-based) of each operation.
std::vector<std::size_t> opLines(const std::string& script) {
  std::vector<std::size_t> lines;
  std::istringstream is(script);
  std::size_t n = 0;
  for (std::string l; std::getline(is, l);) {
    ++n;
    try {
      if (parseLine(l)) lines.push_back(n);
    } catch (const std::invalid_argument&) {
    }
  }
  return lines;
}

int usage() {
  std::cerr << "usage: hmm_trace_replay --traces DIR --script NNNN [--crash-line L]\n"
               "       hmm_trace_replay --traces DIR --all\n"
               "       hmm_trace_replay --run FILE [--buggy-driver]\n";
  return 2;
}

int checkScript(const std::string& dir, const std::string& id, long crashLine) {
  std::string script, expected, crashed;
  if (!readFile(dir + "/scripts/" + id + ".txt", script)) {
    std::cerr << "hmm_trace_replay: kernel traces not found: cannot read " << dir << "/scripts/" << id
              << ".txt\n  The replay expects shared/kernel-traces beside the source tree; configure with\n"
              << "  -DHMMSIM_KERNEL_TRACES_DIR=<path to kernel-traces> if it lives elsewhere.\n";
    return 1;
  }
  const std::string name = "scripts/" + id + ".txt";
  const bool recorded = readFile(dir + "/expected/" + id + ".out", expected);
  if (recorded) {
    for (bool buggy : {false, true}) {
      ReplayOptions o;
      o.buggyDriver = buggy;
      Replayer r(o);
      const CompareResult c = replayAndCompare(r, script, expected, name);
      const char* mode = buggy ? " (buggy-driver switch on)" : "";
      if (!c.match) {
        std::cout << id << ": diverges from the kernel" << mode << " at " << c.firstDivergence << "\n";
        return 1;
      }
      if (!r.checkerHits().empty()) {
        std::cout << id << ": checker report" << mode << " at `" << r.checkerHits()[0].line
                  << "`: " << r.checkerHits()[0].report << " (the kernel ran this script cleanly)\n";
        return 1;
      }
      std::cout << id << ": " << c.lines << " lines match the kernel" << mode << "\n";
    }
    return 0;
  }
  readFile(dir + "/crashed.txt", crashed);
  if (crashed.find(id) == std::string::npos) {
    std::cerr << "hmm_trace_replay: " << id << " has neither expected/" << id
              << ".out nor an entry in crashed.txt\n";
    return 1;
  }
  {
    Replayer r;
    const std::size_t n = replayScript(r, script, name).size();
    if (!r.checkerHits().empty()) {
      std::cout << id << ": checker report with the switch off at `" << r.checkerHits()[0].line
                << "`: " << r.checkerHits()[0].report << "\n";
      return 1;
    }
    std::cout << id << ": crashed the kernel; hmmsim ran all " << n << " operations, no checker report\n";
  }
  ReplayOptions o;
  o.buggyDriver = true;
  Replayer r(o);
  replayScript(r, script, name);
  if (r.checkerHits().empty()) {
    std::cout << id << ": the buggy-driver switch is on but the checker reported nothing\n";
    return 1;
  }
  const std::vector<std::size_t> lines = opLines(script);
  const std::size_t at = lines.at(r.checkerHits()[0].opIndex);
  std::cout << id << ": buggy driver caught at line " << at << " `" << r.checkerHits()[0].line
            << "`: " << r.checkerHits()[0].report << "\n";
  if (crashLine <= 0) {
    std::cout
        << id
        << ": no kernel crash line recorded for this script (tests/conformance/kernel_trace_crashes.txt)\n";
    return 1;
  }
  if (long(at) != crashLine) {
    std::cout << id << ": the kernel crashed at line " << crashLine << ", the checker reported at line " << at
              << "\n";
    return 1;
  }
  return 0;
}

int checkAll(const std::string& dir) {
  std::vector<std::string> ids;
  for (const auto& e : std::filesystem::directory_iterator(dir + "/scripts"))
    if (e.path().extension() == ".txt") ids.push_back(e.path().stem().string());
  std::sort(ids.begin(), ids.end());
  if (ids.empty()) {
    std::cerr << "hmm_trace_replay: no scripts in " << dir << "/scripts\n";
    return 1;
  }
  Replayer r;
  std::size_t matched = 0, ran = 0;
  for (const std::string& id : ids) {
    std::string script, expected;
    readFile(dir + "/scripts/" + id + ".txt", script);
    const std::string name = "scripts/" + id + ".txt";
    if (readFile(dir + "/expected/" + id + ".out", expected)) {
      const CompareResult c = replayAndCompare(r, script, expected, name);
      if (!c.match) {
        std::cout << id << ": diverges from the kernel on the reused machine at " << c.firstDivergence
                  << "\n";
        return 1;
      }
      ++matched;
    } else {
      replayScript(r, script, name);
      ++ran;
    }
    if (!r.checkerHits().empty()) {
      std::cout << id << ": checker report on the reused machine at `" << r.checkerHits()[0].line
                << "`: " << r.checkerHits()[0].report << "\n";
      return 1;
    }
    r.reset();
  }
  std::cout << ids.size() << " scripts on one machine: " << matched << " match the kernel, " << ran
            << " crashed ones ran to the end; nothing leaked between them\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir, id, run;
  long crashLine = 0;
  bool buggy = false, all = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(a + " needs a value");
      return argv[++i];
    };
    try {
      if (a == "--traces")
        dir = next();
      else if (a == "--script")
        id = next();
      else if (a == "--crash-line")
        crashLine = std::stol(next());
      else if (a == "--run")
        run = next();
      else if (a == "--buggy-driver")
        buggy = true;
      else if (a == "--all")
        all = true;
      else
        return usage();
    } catch (const std::exception& e) {
      std::cerr << "hmm_trace_replay: " << e.what() << "\n";
      return usage();
    }
  }
  try {
    if (!run.empty()) {
      std::string script;
      if (!readFile(run, script)) {
        std::cerr << "hmm_trace_replay: cannot read " << run << "\n";
        return 1;
      }
      ReplayOptions o;
      o.buggyDriver = buggy;
      Replayer r(o);
      for (const std::string& l : replayScript(r, script, run)) std::cout << l << "\n";
      for (const CheckerHit& h : r.checkerHits())
        std::cout << "# checker at `" << h.line << "`: " << h.report << "\n";
      return r.checkerHits().empty() ? 0 : 3;
    }
    if (!dir.empty() && all) return checkAll(dir);
    if (dir.empty() || id.empty()) return usage();
    return checkScript(dir, id, crashLine);
  } catch (const std::exception& e) {
    std::cout << "hmm_trace_replay: " << e.what() << "\n";
    return 1;
  }
}
