#pragma once
// The small camera chain (tests/unit/platform/camera_chain_desc.h: 256x32 frames every 4.17 ms,
// process "app") run with a platform script (scenarios/platform_script.h): what the platform
// script tests share. Header-only, for tests.

#include <memory>
#include <string>
#include <vector>

#include "models/platform/builtin_devices.h"
#include "models/platform/camera_chain.h"
#include "models/platform/platform.h"
#include "scenarios/platform_script_run.h"
#include "tests/unit/platform/camera_chain_desc.h"

namespace hmmsim::test {

/// The camera chain's regions, both in process "app".
inline const scenario::RegionNames& chainRegions() {
  static const scenario::RegionNames r = {{"frames_in", "app"}, {"frames_out", "app"}};
  return r;
}

/// Parses a script against `d` (the chain's regions); throws ConfigError.
inline std::vector<scenario::PlatformOp> parseChainScript(const std::string& yaml, PlatformDesc& d) {
  return scenario::parsePlatformScript(ConfigNode::loadString(yaml, "s.yaml").elements(), chainRegions(), d);
}

/// The chain (with a dmirror "dm0" when `dmirror`) running `script` to its end; `failures` holds
/// the chain's and the script's failed checks.
struct ScriptedChainRun {
  PlatformDesc desc = smallChainDesc();
  std::vector<scenario::PlatformOp> ops;
  std::unique_ptr<Platform> p;
  std::unique_ptr<CameraChain> chain;
  std::unique_ptr<scenario::PlatformScriptRunner> runner;
  std::vector<std::string> failures;

  ScriptedChainRun(const std::string& script, const CameraChainParams& c, bool dmirror = false) {
    if (dmirror) desc.devices.push_back(DeviceDesc{"dmirror", "dm0", "", DmirrorDeviceParams{}});
    ops = parseChainScript(script, desc);
    p = std::make_unique<Platform>("m", desc, builtinDevices());
    chain = std::make_unique<CameraChain>(*p, c);
    runner = std::make_unique<scenario::PlatformScriptRunner>(*p, chain.get(), ops);
    chain->start();
    runner->start();
    sc_core::sc_start();
    chain->finish();
    chain->check("", failures);
    runner->finish();
    runner->check(failures);
  }
};

}  // namespace hmmsim::test
