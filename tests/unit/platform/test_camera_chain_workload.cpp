// The camera chain workload on a Platform: every frame checked against the reference transform,
// a wrong transform in the engine caught frame by frame, and the latency/fps stats measured
// from the devices' completions. Assertions after sc_start().
#include <catch2/catch.hpp>

#include "models/platform/builtin_devices.h"
#include "models/platform/camera_chain.h"
#include "models/platform/platform.h"
#include "tests/unit/platform/camera_chain_desc.h"

using namespace hmmsim;
using namespace hmmsim::test;

namespace {

PlatformDesc chainDesc() {
  CameraParams sensor;
  sensor.width = 256;
  sensor.height = 32;
  sensor.hblankPixels = 64;
  sensor.vblankLines = 8;
  sensor.fps = 240;
  sensor.seed = 3;
  return cameraChainDesc(sensor, "app");
}

}  // namespace

TEST_CASE("the camera chain workload catches an engine whose transform differs from the reference") {
  constexpr unsigned kFrames = 3;
  Platform p("m", chainDesc(), builtinDevices());
  CameraChainParams c;
  c.frames = kFrames;
  c.transform = *colourTransformPreset("vivid");
  CameraChain chain(p, c);
  // The engine runs the identity instead: every frame must be reported, at its first pixel.
  p.deviceAs<ColourEnginePlatformDevice>("colour0").driver().setTransform(ColourTransform{});
  chain.start();
  sc_core::sc_start();
  chain.finish();
  REQUIRE(chain.frames().size() == kFrames);
  for (const CameraChainFrame& f : chain.frames()) {
    CHECK(f.ok);
    CHECK_FALSE(f.exact);
    CHECK(f.firstMismatch >= 0);
  }
  CHECK(chain.stats().counterValue("frames_mismatched") == kFrames);
  CHECK(chain.stats().counterValue("frames_exact") == 0);
}

TEST_CASE("the camera chain workload bounced through RAM is pixel-exact and measures its frames") {
  constexpr unsigned kFrames = 4;
  Platform p("m", chainDesc(), builtinDevices());
  CameraChainParams c;
  c.frames = kFrames;
  c.path = CameraChainPath::Bounce;
  c.outFormat = PixelFormat::Xrgb8888;
  c.transform = *colourTransformPreset("vivid");
  CameraChain chain(p, c);
  chain.start();
  sc_core::sc_start();
  chain.finish();
  REQUIRE(chain.frames().size() == kFrames);
  const auto& cam = p.deviceAs<CameraPlatformDevice>("cam0").hardware();
  for (unsigned n = 0; n < kFrames; ++n) {
    INFO("frame " << n);
    const CameraChainFrame& f = chain.frames()[n];
    CHECK(f.exact);
    CHECK(f.cameraStartPs == cam.completions()[n].startPs);
    CHECK(f.engineDonePs > f.cameraDonePs);
  }
  CHECK(chain.stats().counterValue("frames_exact") == kFrames);
  CHECK(chain.stats().counterValue("out_bytes") == kFrames * 256ull * 32 * 4);
  CHECK(p.mapper().stats().counterValue("maps") == 0);  // no p2p on the bounce path
  CHECK(p.violations().ok());
}

TEST_CASE("the camera chain workload traces each frame on its devices' tracks and the interrupts") {
  constexpr unsigned kFrames = 2;
  Platform p("m", chainDesc(), builtinDevices());
  CameraChainParams c;
  c.frames = kFrames;
  CameraChain chain(p, c);
  TraceSink trace;
  trace.enable(TraceCategory::Dma);
  chain.setTrace(&trace);
  chain.start();
  sc_core::sc_start();
  REQUIRE(chain.done());
  CHECK(trace.eventCount() == 4 * kFrames);  // camera frame, engine job, two handler instants
  const std::string json = trace.toJson();
  CHECK(json.find("\"device.cam0\"") != std::string::npos);
  CHECK(json.find("\"convert frame 1\"") != std::string::npos);
}
