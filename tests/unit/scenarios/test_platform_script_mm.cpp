// A platform script's address-space operations on the camera chain (scenarios/platform_script.h):
// fork (COW write-protection: the engine's importer drops the output ring and breaks COW on its
// next write), mremap (a buffer moved away and back: an unmap round each way, the importer
// re-faults; a region that follows its memory; an expected EFAULT), migrate by a dmirror (the
// importer's fault brings device-private pages back) and their checks before anything runs.
// Every frame stays pixel-exact. Assertions after sc_start().
#include <catch2/catch.hpp>

#include "tests/unit/scenarios/scripted_chain_run.h"

using namespace hmmsim;
using namespace hmmsim::scenario;
using namespace hmmsim::test;

namespace {

/// The small chain with `script`, and what the tests read of it.
struct Run : ScriptedChainRun {
  using ScriptedChainRun::ScriptedChainRun;
  Mm& mm() { return p->process("app"); }
  const StatsGroup& engineMirror() { return p->device("colour0").importerDma()->mirror().stats(); }
  std::uint64_t exact() { return chain->stats().counterValue("frames_exact"); }
};

CameraChainParams frames(std::uint64_t n) {
  CameraChainParams c;
  c.frames = n;
  c.transform = *colourTransformPreset("vivid");
  return c;
}

std::string parseError(const std::string& script, bool dmirror = false) {
  PlatformDesc d = smallChainDesc();
  if (dmirror) d.devices.push_back(DeviceDesc{"dmirror", "dm0", "", DmirrorDeviceParams{}});
  try {
    parseChainScript(script, d);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

// Without a script the small chain (4 frames, p2p) takes no COW fault, the engine's importer one
// invalidation (the p2p input's mmap over the arena) and no device fault (the driver's prefault
// maps each job's buffers); the mm raises one MMU_NOTIFY_UNMAP round (that mmap).

TEST_CASE("a platform script fork write-protects the ring: the engine re-faults and breaks COW") {
  Run r("[{op: fork, at: 6ms}]", frames(4));
  CHECK(r.failures.empty());
  CHECK(r.exact() == 4);
  CHECK(r.mm().mmStats().forkCalls.value() == 1);
  CHECK(r.mm().mmStats().notifyEvents[std::size_t(MmuNotifierEvent::ProtectionPage)]->value() == 1);
  // The fork's round reached the engine's importer, which faulted the ring again for writing and
  // broke COW on the pages written before the fork.
  CHECK(r.engineMirror().counterValue("invalidations") ==
        8);  // 1 + the fork's round + 6 COW copies' clear rounds
  // One fault: it maps the slot's rest of the frame and the 64 KiB block around it (6 before,
  // one per page).
  CHECK(r.engineMirror().counterValue("device_faults") == 1);
  CHECK(r.mm().vmEvents().cowFault.value() == 6);  // the 6 pages of ring slot 0, written before the fork
}

TEST_CASE("a platform script mremap moves the ring away and back and the engine re-faults it") {
  Run r(R"(
- {op: mmap, region: park, size: 48KiB, at: 1ms}
- {op: mremap, region: frames_out, to: park, at: 6ms}
- {op: mremap, region: frames_out, back: true, at: 6ms}
- {op: mremap, region: frames_in, size: 1MiB, at: 7ms, expect: EFAULT}
- {op: mmap, region: scratch, size: 16KiB, at: 1ms}
- {op: write, region: scratch, value: 7, at: 2ms}
- {op: mremap, region: scratch, size: 64KiB, at: 8ms}
- {op: write, region: scratch, offset: 16KiB, value: 9, at: 9ms}
- {op: read, region: scratch, length: 16KiB, value: 7, at: 10ms}
- {op: read, region: scratch, offset: 16KiB, value: 9, at: 10ms}
)",
        frames(4));
  CHECK(r.failures.empty());  // the reads after the grow saw both writes
  CHECK(r.exact() == 4);
  CHECK(r.mm().mmStats().mremapCalls.value() == 4);
  CHECK(r.mm().mmStats().failedCalls.value() == 1);  // the special vma cannot grow
  CHECK(r.mm().mmStats().notifyEvents[std::size_t(MmuNotifierEvent::Unmap)]->value() == 6);
  CHECK(r.engineMirror().counterValue("invalidations") == 3);  // 1 + away + back
  // The slot written next, at its address again, in one fault (its frame and the 64 KiB block
  // around it; 6 before, one per page).
  CHECK(r.engineMirror().counterValue("device_faults") == 1);
}

TEST_CASE("a platform script dmirror migrates the ring to device memory and the engine faults it back") {
  CameraChainParams c = frames(4);
  c.path = CameraChainPath::Bounce;
  Run r(R"(
- {op: migrate, region: frames_out, device: dm0, at: 6ms}
- {op: migrate, region: frames_in, device: dm0, at: 7ms}
- {op: migrate, region: frames_in, device: dm0, to: ram, at: 7100us}
)",
        c, true);
  CHECK(r.failures.empty());
  CHECK(r.exact() == 4);
  CHECK(r.runner->stats().counterValue("migrations") == 3);
  // 12 + 12 to dm0, none back by to: ram: the camera's first fault after the 7 ms migration maps
  // its frame and the 64 KiB block around it, the whole 12-page ring, so hmm_range_fault brought
  // all of it back first (one page before, when a fault mapped the line's pages).
  CHECK(r.runner->stats().counterValue("migrated_pages") == 24);
  CHECK(r.mm().mmStats().notifyEvents[std::size_t(MmuNotifierEvent::Migrate)]->value() == 28);
  // The engine's writes to the ring found device-private entries, and so did the camera's fault:
  // migrate_to_ram brought 12 + 12 back.
  CHECK(r.mm().vmEvents().devicePrivateFault.value() == 24);
}

TEST_CASE("platform script fork mremap and migrate entries are checked before anything runs") {
  CHECK_THAT(parseError("[{op: fork, process: ap, at: 1ms}]"),
             Catch::Contains("no process 'ap'; did you mean 'app'"));
  CHECK_THAT(
      parseError("[{op: mremap, region: frames_out, to: frames_ot, at: 1ms}]"),
      Catch::Contains("no other region 'frames_ot' in process 'app' to move to; did you mean 'frames_in'"));
  CHECK_THAT(parseError("[{op: mremap, region: frames_out, to: frames_in, back: true, at: 1ms}]"),
             Catch::Contains("give to or back: true, not both"));
  CHECK_THAT(
      parseError(
          "[{op: mmap, region: s, size: 4KiB, at: 1ms}, {op: mremap, region: s, back: true, at: 2ms}]"),
      Catch::Contains("'s' is a script mmap"));
  CHECK_THAT(parseError("[{op: migrate, region: frames_out, device: colour0, at: 1ms}]"),
             Catch::Contains("device 'colour0' is a colour_engine; migrate needs one of type gpu, dmirror"));
  CHECK_THAT(parseError("[{op: migrate, region: frames_out, device: dm0, to: vram, at: 1ms}]", true),
             Catch::Contains("to"));
}
