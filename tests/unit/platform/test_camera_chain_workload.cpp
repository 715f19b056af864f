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

TEST_CASE("the camera chain workload catches an engine whose transform differs from the reference") {
  constexpr unsigned kFrames = 3;
  Platform p("m", smallChainDesc(), builtinDevices());
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
  Platform p("m", smallChainDesc(), builtinDevices());
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
  Platform p("m", smallChainDesc(), builtinDevices());
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

namespace {

/// The chain's machine with ACS RR/CR on sw0's downstream ports, UF on rp0 (as Linux enables it),
/// and hb0 neither allow-listed nor forwarding p2p: the p2pdma map type cam0 -> colour0 is
/// NOT_SUPPORTED. `ignore`: the engine's exporter hands out its bus address anyway.
PlatformDesc redirectedDesc(bool ignore, IommuMode iommu) {
  PlatformDesc d = smallChainDesc();
  setPortAcs(d.topology, "sw0.dp0", kPciAcsRr | kPciAcsCr);
  setPortAcs(d.topology, "sw0.dp1", kPciAcsRr | kPciAcsCr);
  setPortAcs(d.topology, "rp0", kPciAcsSv | kPciAcsRr | kPciAcsCr | kPciAcsUf);
  d.topology.hostBridges[0].params.device = 0x1234;
  d.topology.hostBridges[0].params.p2pSupported = false;
  d.iommu.iommu.mode = iommu;
  ColourEngineDeviceParams e;
  e.driver.exporter.ignoreMapType = ignore;
  d.devices[1].params = e;
  return d;
}

}  // namespace

TEST_CASE("an exporter ignoring the map type gets the camera Unsupported Requests, checker rule 7") {
  constexpr unsigned kFrames = 2;
  Platform p("m", redirectedDesc(true, IommuMode::Passthrough), builtinDevices());
  CameraChainParams c;
  c.frames = kFrames;
  c.allowFailedFrames = true;
  CameraChain chain(p, c);
  chain.start();
  sc_core::sc_start();
  chain.finish();
  // Every burst of the camera was refused at hb0: each frame errored and was dropped, not converted.
  REQUIRE(chain.frames().size() == kFrames);
  for (const CameraChainFrame& f : chain.frames()) {
    CHECK_FALSE(f.ok);
    CHECK_FALSE(f.converted);
  }
  CHECK(chain.stats().counterValue("frames_failed") == kFrames);
  CHECK(p.deviceAs<ColourEnginePlatformDevice>("colour0").hardware().stats().counterValue("jobs") == 0);
  std::vector<std::string> failures;
  chain.check("", failures);
  CHECK(failures.empty());  // expected by allowFailedFrames
  ImporterDma* dma = p.deviceAs<CameraPlatformDevice>("cam0").driver().importerDma();
  REQUIRE(dma != nullptr);
  const std::uint64_t bursts = dma->stats().counterValue("io_errors");
  CHECK(bursts == dma->stats().counterValue("bursts"));
  CHECK(p.violations().count(CheckRule::UnsupportedRequest) == bursts);
  CHECK(p.violations().violations().size() == bursts);  // nothing else
  CHECK(p.mapper().stats().counterValue("map_type_ignored") > 0);
  const Violation& v = p.violations().violations().front();
  const PciBar& bar = p.topology().findDev("colour0")->bar(2);
  CHECK(v.address >= bar.bus.value());
  CHECK(v.address < bar.bus.value() + bar.size);
  const std::string line = InvariantChecker::format(v);
  INFO(line);
  CHECK(line.find("unsupported-request: Unsupported Request from host bridge hb0: p2p not allowed") !=
        std::string::npos);
  CHECK(line.find("colour0 BAR 2's bus address, p2pdma map type NotSupported ignored") != std::string::npos);
}

TEST_CASE("without allow_failed_frames the camera's Unsupported Requests fail every frame") {
  Platform p("m", redirectedDesc(true, IommuMode::Translate), builtinDevices());
  CameraChainParams c;
  c.frames = 2;
  CameraChain chain(p, c);
  chain.start();
  sc_core::sc_start();
  chain.finish();
  std::vector<std::string> failures;
  chain.check("chain: ", failures);
  REQUIRE(failures.size() == 2);
  CHECK(failures[0] == "chain: frame 0: a DMA failed (the camera's: the frame was dropped)");
  // With the IOMMU translating, the bus address is no IOVA of the camera's: the IOMMU refuses it.
  REQUIRE(p.violations().count(CheckRule::UnsupportedRequest) > 0);
  CHECK(InvariantChecker::format(p.violations().violations().front())
            .find("its IOMMU has no translation for the address") != std::string::npos);
}

TEST_CASE("an exporter honouring the map type declines the camera's map across the ACS redirect") {
  Platform p("m", redirectedDesc(false, IommuMode::Passthrough), builtinDevices());
  CameraChainParams c;
  c.frames = 1;
  CHECK_THROWS_AS(CameraChain(p, c), ConfigError);  // declined, and no p2p_fallback
  CHECK(p.mapper().stats().counterValue("refused") == 1);
  CHECK(p.mapper().stats().counterValue("map_type_ignored") == 0);
  CHECK(p.violations().ok());
}

TEST_CASE("a camera keeping old addresses across a window move writes another page: rule 3 says so") {
  // misbehaving_importer's keep_old_address variant with revoke_kind move: the exporter moves
  // each resident window to the lowest free one every 20 ms (windows 0, 1, 2 -> 3, 0, 1), the
  // camera's driver gives its mappings back but keeps its device TLB.
  CameraParams sensor;
  sensor.width = 1280;
  sensor.height = 720;
  sensor.hblankPixels = 370;
  sensor.vblankLines = 30;
  sensor.fps = 60;
  sensor.seed = 11;
  PlatformDesc d = cameraChainDesc(sensor, "app");
  CameraDeviceParams cam = std::any_cast<CameraDeviceParams>(d.devices[0].params);
  cam.driver.dma.mirror.misbehave = ImporterMisbehaviour::KeepOldAddress;
  d.devices[0].params = cam;
  Platform p("m", d, builtinDevices());
  CameraChainParams c;
  c.frames = 6;
  c.transform = *colourTransformPreset("vivid");
  c.revokeEveryPs = 20'000'000'000ull;
  c.revokeKind = CameraChainRevoke::Move;
  CameraChain chain(p, c);
  chain.start();
  sc_core::sc_start();
  chain.finish();
  // What really happens: the lines written through the kept entries reach the old window, which
  // now maps another chunk (a live window: the address alone is legal), so they land in another
  // device page and frame 1 comes out wrong. The camera's faults map the rest of the frame's
  // buffer ahead, so each of the 4 moves covers the page being written (only the 20 ms one did
  // when a fault mapped the line's pages): 3 of the 6 frames stay exact (5 before).
  REQUIRE(chain.frames().size() == 6);
  CHECK_FALSE(chain.frames()[1].exact);
  CHECK(chain.stats().counterValue("frames_exact") == 3);
  CHECK(chain.stats().counterValue("window_moves") > 0);
  // Rule 1 sees the translation used after its invalidation (at the line's issue and again at its
  // completion) at each move; rule 3 sees the page it reached: at 20 ms window 1 now maps device
  // page 0x52f, the special vma's page the camera meant is 0x32f (the first 1536 bytes of line
  // 150 of frame 1).
  CHECK(p.violations().count(CheckRule::StaleTranslation) == 8);
  REQUIRE(p.violations().count(CheckRule::OutsideBarWindow) == 4);
  CHECK(p.violations().violations().size() == 12);
  const Violation* first = nullptr;
  for (const Violation& v : p.violations().violations())
    if (v.rule == CheckRule::OutsideBarWindow && first == nullptr) first = &v;
  REQUIRE(first != nullptr);
  INFO(InvariantChecker::format(*first));
  CHECK(first->device == "cam0");
  CHECK(first->cause ==
        "peer access of 1536 bytes at bus address 0x400032fa00 of colour0: window 1 maps page 0x52f, "
        "not 0x32f since it was moved at 20000000000ps (bar event #6)");
}
