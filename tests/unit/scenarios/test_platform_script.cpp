// A platform scenario's script (scenarios/platform_script.h) on the camera chain: operations
// parsed and checked before anything runs, process operations started at their times on the
// script's CPU core, injected events reaching the exporter and the camera's importer, and every
// failed expectation reported with the entry's file:line:column. Assertions after sc_start().
#include <catch2/catch.hpp>

#include "tests/unit/scenarios/scripted_chain_run.h"

using namespace hmmsim;
using namespace hmmsim::scenario;
using namespace hmmsim::test;

namespace {

/// The chain with `script` for `frames` frames.
struct Run : ScriptedChainRun {
  Run(const std::string& script, std::uint64_t frames) : ScriptedChainRun(script, framesOf(frames)) {}
  static CameraChainParams framesOf(std::uint64_t n) {
    CameraChainParams c;
    c.frames = n;
    return c;
  }
};

std::uint64_t ms(double v) {
  return static_cast<std::uint64_t>(v * 1e9);
}

}  // namespace

TEST_CASE("platform script process operations start at their times and reads see the writes") {
  Run r(R"(
- {op: mmap, region: scratch, size: 16KiB, at: 1ms}
- {op: write, region: scratch, length: 8KiB, value: 0xa5, at: 2500us}
- {op: read, region: scratch, length: 8KiB, value: 0xa5, at: 3ms}
- {op: read, region: scratch, offset: 8KiB, bytes: [0, 0], at: 3ms}
)",
        2);
  CHECK(r.failures.empty());
  const CpuCore& core = r.p->cpu("script_app");
  REQUIRE(core.results().size() == 8);  // until + op, four times
  CHECK(core.results()[1].start.value() == ms(1));
  CHECK(core.results()[3].start.value() == ms(2.5));
  CHECK(core.results()[5].start.value() == ms(3));
  CHECK(core.results()[5].data == std::vector<std::uint8_t>(8192, 0xa5));
  CHECK(core.results()[7].start.value() > ms(3));  // after the first read, in file order
  CHECK(r.runner->stats().counterValue("ops") == 4);
}

TEST_CASE("platform script revokes reach the camera's importer and every frame stays exact") {
  Run r(R"(
- {op: revoke, device: colour0, at: 1ms, every: 1ms, count: 8}
- {op: invalidation_storm, region: frames_in, times: 5, at: 5500us}
)",
        3);
  CHECK(r.failures.empty());
  CHECK(r.chain->stats().counterValue("frames_exact") == 3);
  CHECK(r.runner->stats().counterValue("revokes") == 8);
  CHECK(r.runner->stats().counterValue("invalidations") == 5);
  CHECK(r.runner->stats().counterValue("revoked_pages") > 0);
  ImporterDma* cam = r.p->device("cam0").importerDma();
  REQUIRE(cam != nullptr);
  // Each revoke that found pages held and each storm round made the camera zap.
  CHECK(cam->mirror().stats().counterValue("invalidations") >= 5);
  CHECK(cam->stats().counterValue("device_faults") > 0);
  CHECK(r.p->violations().violations().empty());
}

TEST_CASE("platform script failed expectations name the entry and ops after a fatal fault") {
  Run r(R"(
- {op: mmap, region: scratch, size: 16KiB, at: 1ms}
- {op: mprotect, region: scratch, prot: none, at: 2ms, expect: EINVAL}
- {op: read, region: scratch, length: 4KiB, value: 0, at: 3ms}
- {op: write, region: scratch, length: 4KiB, value: 1, at: 4ms}
- {op: move_windows, device: colour0, at: 2ms, expect: EBUSY}
)",
        1);
  REQUIRE(r.failures.size() == 4);
  CHECK(r.failures[0] == "s.yaml:6:3: move_windows at 2ms: returned ok, expected EBUSY");
  CHECK(r.failures[1] == "s.yaml:3:3: mprotect at 2ms: returned ok, expected EINVAL");
  CHECK(r.failures[2] ==
        "s.yaml:4:3: read at 3ms: the access faulted (EFAULT: the process was killed), expected ok");
  CHECK(r.failures[3].find("s.yaml:5:3: write at 4ms: did not run") == 0);
  CHECK(r.runner->stats().counterValue("expect_failed") == 4);
}

TEST_CASE("platform script misbehave switches the camera's driver on and off mid-run") {
  Run r(R"(
- {op: misbehave, device: cam0, mode: ignore_invalidations, at: 1ms}
- {op: revoke, device: colour0, at: 2ms}
- {op: misbehave, device: cam0, mode: none, at: 3ms}
)",
        2);
  CHECK(r.failures.empty());
  CHECK(r.runner->stats().counterValue("misbehave_switches") == 2);
  CHECK(r.p->device("cam0").importerDma()->mirror().misbehaviour() == ImporterMisbehaviour::None);
  // The revoke found the camera's mappings; ignoring it left them in use: the checker saw it.
  CHECK_FALSE(r.p->violations().violations().empty());
}

TEST_CASE("platform script entries are checked before anything runs") {
  PlatformDesc d = smallChainDesc();
  auto refused = [&](const std::string& yaml, const std::string& what) {
    try {
      parseChainScript(yaml, d);
      FAIL("accepted: " << yaml);
    } catch (const ConfigError& e) {
      CHECK_THAT(std::string(e.what()), Catch::Contains(what));
    }
  };
  refused("- {op: revok, device: colour0, at: 1ms}", "did you mean 'revoke'");
  refused("- {op: revoke, device: cam0, at: 1ms}", "revoke needs one of type colour_engine, gpu, nvme");
  refused("- {op: madvise, region: frame_out, advice: dontneed, at: 1ms}", "did you mean 'frames_out'");
  refused(
      "- {op: read, region: scratch, value: 0, at: 1ms}\n- {op: mmap, region: scratch, size: 4KiB, at: 2ms}",
      "first mapped by the script later");
  refused("- {op: revoke, device: colour0, at: 1ms, every: 1ms}", "needs count: N or until: TIME");
  refused("- {op: revoke, device: colour0, at: 3ms, every: 1ms, until: 2ms}", "until is before at");
  refused("- {op: revoke, device: colour0, at: 1ms, windows: 3}", "windows");
  const std::vector<PlatformOp> ops = parseChainScript(
      "- {op: revoke, device: colour0, at: 3ms, every: 1ms, until: 5ms}\n"
      "- {op: mprotect, region: frames_out, prot: r, at: 3ms}",
      d);
  const std::vector<PlatformStep> steps = platformSchedule(ops);
  REQUIRE(steps.size() == 4);
  CHECK(steps[0].op == 0);  // same time: file order
  CHECK(steps[1].op == 1);
  CHECK(steps[3].atPs == ms(5));
  CHECK(d.cpus.size() == 1);
  CHECK(d.cpus[0].name == "script_app");
}
