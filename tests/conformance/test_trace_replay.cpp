// The three behaviours the kernel traces showed hmmsim getting wrong, and the buggy-driver
// switch, as short hmmprobe scripts (tests/conformance/trace_replay.h). Expected lines are what
// Linux 6.12 prints for the same sequence (the example and the traces' rules).
#include <catch2/catch.hpp>

#include <stdexcept>
#include <string>
#include <vector>

#include "tests/conformance/trace_replay.h"

using namespace hmmsim::replay;

namespace {

std::vector<std::string> replay(const std::string& script, bool buggy = false) {
  ReplayOptions o;
  o.buggyDriver = buggy;
  Replayer r(o);
  return replayScript(r, script, "inline");
}

const char* kOwnPrivateCrash =
    "open 0\nopen 1\nmmap 0 4 rw anon\nfill 0 1\n"
    "migrate 0 0 2 2\n"  // pages 2-3 become dmirror0's private pages
    "migsys 1 0 2 1\n"   // dmirror1's migration invalidates dmirror0's PTEs of pages 2 and 3
    "dread 0 0 3 1\n";   // dmirror0 faults page 3: its own private page

}  // namespace

TEST_CASE(
    "a device fault on an empty pte faults the rest of the walk chunk, own device-private pages included",
    "[replay]") {
  const auto out =
      replay("open 0\nopen 1\nmmap 1 4 rw anon\nmigrate 1 1 3 1\ndwrite 1 1 2 2 5\nsnap 0 1 0 4\n");
  REQUIRE(out.size() == 6);
  CHECK(out[4] == "dwrite 1 1 2 2 5 -> ret=0 cpages=2 faults=1");
  // Page 3 migrated back to RAM and is mapped writable: the kernel prints 00000202.
  CHECK(out[5] == "snap 0 1 0 4 -> ret=0 cpages=4 faults=0 bytes=00000202");
}

TEST_CASE(
    "an invalidation also drops the device PTE of the page just past its range, so that page faults again",
    "[replay]") {
  const auto out = replay(
      "open 0\nmmap 0 8 rw anon\nfill 0 1\ndread 0 0 0 8\nmprotect 0 2 1 r\n"
      "dread 0 0 3 1\ndread 0 0 4 1\n");
  REQUIRE(out.size() == 7);
  CHECK(out[5].find("faults=1") != std::string::npos);  // page 3: erased by [2, 3)'s inclusive end
  CHECK(out[6].find("faults=0") != std::string::npos);  // page 4: kept
}

TEST_CASE(
    "a snapshot after a read fault on a shared mapping sees the cached neighbours mapped by fault-around",
    "[replay]") {
  const auto out = replay(
      "open 0\nmmap 0 32 rw shared\nfill 0 7\nmadvise 0 0 32 dontneed\n"
      "touch 0 20\nsnap 0 0 0 32\n");
  REQUIRE(out.size() == 6);
  // Pages 16-31 (the 64 KiB window of page 20) are mapped; pages 0-15 are not.
  CHECK(out[5] == "snap 0 0 0 32 -> ret=0 cpages=32 faults=0 bytes=" + std::string(32, '0') +
                      "02020202020202020202020202020202");
}

TEST_CASE(
    "the buggy-driver switch is caught by the checker exactly where the kernel's copy oopses, and only with "
    "it on",
    "[replay]") {
  ReplayOptions on;
  on.buggyDriver = true;
  Replayer buggy(on);
  const auto withBug = replayScript(buggy, kOwnPrivateCrash, "inline");
  REQUIRE(buggy.checkerHits().size() == 1);
  CHECK(buggy.checkerHits()[0].opIndex == 6);
  CHECK(buggy.checkerHits()[0].line == "dread 0 0 3 1");
  CHECK(buggy.checkerHits()[0].report.find("freed-frame") != std::string::npos);
  CHECK(buggy.checker().count(hmmsim::CheckRule::FreedFrame) == 1);
  Replayer correct;
  const auto withoutBug = replayScript(correct, kOwnPrivateCrash, "inline");
  CHECK(correct.checkerHits().empty());
  CHECK(correct.checker().ok());
  CHECK(withBug == withoutBug);  // hmmsim's device frame holds the bytes: the data is the same
}

TEST_CASE("a malformed script line is an error naming the file, the line and what is wrong", "[replay]") {
  Replayer r;
  try {
    replayScript(r, "open 0\n# comment\nmmap 16 4 rw anon\n", "bad.txt");
    FAIL("no error");
  } catch (const std::runtime_error& e) {
    CHECK(std::string(e.what()) == "bad.txt:3: buffer 16 is larger than 15");
  }
  CHECK_THROWS_WITH(replayScript(r, "frob 1\n", "x.txt"),
                    Catch::Contains("x.txt:1: unknown operation `frob`"));
  CHECK_THROWS_WITH(replayScript(r, "mmap 0 4 rwx anon\n", "x.txt"), Catch::Contains("protection `rwx`"));
}

TEST_CASE("CPU accesses the probe would have died on print SIGSEGV and the replay goes on", "[replay]") {
  const auto out = replay("mmap 0 4 none anon\ntouch 0 1\ncpuwrite 3 0 1\nopen 0\n");
  REQUIRE(out.size() == 4);
  CHECK(out[1] == "touch 0 1 -> SIGSEGV");
  CHECK(out[2] == "cpuwrite 3 0 1 -> SIGSEGV");
  CHECK(out[3] == "open 0 -> ok");
}
