// The RFC's workload 4 end to end: a camera streams frames into the colour engine, which writes
// the corrected frames to process memory. Three ways: peer to peer under one switch (ACS off:
// the writes turn around in the switch), peer to peer through the root complex with the IOMMU
// translating, and bounced through system memory. Every frame is checked pixel by pixel against
// the reference transform of the reference pattern. Assertions after sc_start().
#include <catch2/catch.hpp>

#include "tests/unit/devices/camera_chain_fixture.h"

using namespace hmmsim;
using namespace hmmsim::test;

namespace {

enum class Chain {
  P2pUnderSwitch,         ///< cam0 -> colour0 under sw0: bus addresses, the switch turns them around
  P2pThroughRootComplex,  ///< cam1 (rp1) -> colour0 (rp0, sw0): IOVAs the IOMMU translates to the BAR
  Bounce,                 ///< cam0 -> RAM, colour0 reads RAM
};

struct ChainResult {
  std::unique_ptr<ChainPlatform> p;
  std::vector<Va> out;
  unsigned cam = 0;
  std::uint64_t frameBytes = 0, outBytes = 0;
};

constexpr unsigned kFrames = 4;

CameraParams chainCamera(PixelFormat f) {
  CameraParams c;
  c.width = 640;
  c.height = 48;
  c.hblankPixels = 160;
  c.vblankLines = 12;
  c.fps = 120;
  c.format = f;
  c.seed = 11;
  return c;
}

// Runs kFrames frames through the chain; every frame's output in its own buffer.
ChainResult runChain(Chain mode, PixelFormat camFormat, PixelFormat outFormat) {
  tlm_utils::tlm_quantumkeeper::set_global_quantum(sc_core::sc_time(1, sc_core::SC_US));
  ChainPlatformParams pp;
  pp.camera = chainCamera(camFormat);
  ChainResult r;
  r.p = std::make_unique<ChainPlatform>(pp);
  ChainPlatform& p = *r.p;
  const CameraParams& cp = pp.camera;
  r.cam = mode == Chain::P2pThroughRootComplex ? 1 : 0;
  r.frameBytes = cp.frameBytes();
  r.outBytes = std::uint64_t(cp.width) * cp.height * bytesPerPixel(outFormat);
  const std::uint64_t slot = pageRound(r.frameBytes);
  const bool p2p = mode != Chain::Bounce;
  // Two input buffers: the camera fills one while the engine reads the other.
  const Va in = p2p ? p.mapColourInput(0, 2 * slot) : p.mapAnon(2 * slot);
  for (unsigned n = 0; n < kFrames; ++n) r.out.push_back(p.mapAnon(pageRound(r.outBytes)));
  REQUIRE(p.camDriver(r.cam).setUserBuffers(*p.mm, {in, in + slot}) == Errno::Ok);
  p.colourDriver->setTransform(testTransform());
  // The camera's completion interrupt queues the frame on the engine.
  p.cam(r.cam).onCompletion([&p, in, slot, p2p, cp, outFormat, out = r.out](const CameraCompletion& c) {
    ColourRequest q;
    q.srcLocal = p2p;
    q.srcOffset = c.buffer * slot;
    q.srcVa = in + c.buffer * slot;
    q.dstVa = out[c.frame];
    q.width = cp.width;
    q.height = cp.height;
    q.inFormat = cp.format;
    q.outFormat = outFormat;
    q.tag = c.frame;
    REQUIRE(p.colourDriver->process(q) == Errno::Ok);
  });
  p.camDriver(r.cam).start(kFrames);
  sc_core::sc_start();
  return r;
}

void checkFrames(ChainResult& r, PixelFormat outFormat) {
  ChainPlatform& p = *r.p;
  const CameraParams& cp = p.params.camera;
  const ColourTransform t = testTransform();
  REQUIRE(p.cam(r.cam).completions().size() == kFrames);
  REQUIRE(p.colour->completions().size() == kFrames);
  for (unsigned n = 0; n < kFrames; ++n) {
    INFO("frame " << n);
    CHECK(p.cam(r.cam).completions()[n].ok);
    CHECK(p.colour->completions()[n].ok);
    CHECK(p.colour->completions()[n].tag == n);
    CHECK(firstMismatch(p.cpu(r.out[n], r.outBytes), outFormat, cp.width, cp.height,
                        [&](std::uint32_t x, std::uint32_t y) {
                          return referenceTransform(t, cameraPatternPixel(cp.seed, n, x, y));
                        }) == -1);
  }
  CHECK(p.cam(r.cam).stats().counterValue("dma_errors") == 0);
  CHECK(p.colour->stats().counterValue("dma_errors") == 0);
  std::string reports;
  for (const auto& v : p.violations.violations()) reports += InvariantChecker::format(v) + "\n";
  INFO(reports);
  CHECK(p.violations.ok());  // the checker saw every access and found nothing
}

}  // namespace

TEST_CASE("camera to colour engine to memory peer to peer under one switch: every frame pixel-exact") {
  ChainResult r = runChain(Chain::P2pUnderSwitch, PixelFormat::Rgb888, PixelFormat::Rgb888);
  checkFrames(r, PixelFormat::Rgb888);
  ChainPlatform& p = *r.p;
  // Every camera byte reached the engine's BAR without crossing the root complex.
  CHECK(p.fab.barMemory("colour0").stats().counterValue("bytes_written") == kFrames * r.frameBytes);
  CHECK(p.fab.rootComplex("hb0").stats().counterValue("p2p_transactions") == 0);
  CHECK(p.camDriver(0).importerDma()->mirror().dmaStats().vmaP2pPages.value() > 0);
  CHECK(p.mapper.mapType(p.pci("colour0"), p.pci("cam0")) == P2pMapType::BusAddr);
  CHECK(p.directory.checkedPages() > 0);  // rule 3 checked at the engine's BAR
  CHECK(p.colourDriver->exporter().stats().counterValue("vma_p2p_pages") > 0);
  // RAM saw the corrected frames only.
  CHECK(p.dram.stats().counterValue("bytes_written") == kFrames * r.outBytes);
}

TEST_CASE(
    "camera to colour engine to memory peer to peer through the root complex with the IOMMU on: every frame "
    "pixel-exact") {
  ChainResult r = runChain(Chain::P2pThroughRootComplex, PixelFormat::Xrgb8888, PixelFormat::Rgb888);
  checkFrames(r, PixelFormat::Rgb888);
  ChainPlatform& p = *r.p;
  CHECK(p.mapper.mapType(p.pci("colour0"), p.pci("cam1")) == P2pMapType::ThruHostBridge);
  CHECK(p.fab.barMemory("colour0").stats().counterValue("bytes_written") == kFrames * r.frameBytes);
  CHECK(p.fab.rootComplex("hb0").stats().counterValue("p2p_transactions") > 0);
  CHECK(p.stage.stats().counterValue("aborted") == 0);
  CHECK(p.dram.stats().counterValue("bytes_written") == kFrames * r.outBytes);
}

TEST_CASE("camera to colour engine to memory bounced through system memory: every frame pixel-exact") {
  ChainResult r = runChain(Chain::Bounce, PixelFormat::Rgb888, PixelFormat::Xrgb8888);
  checkFrames(r, PixelFormat::Xrgb8888);
  ChainPlatform& p = *r.p;
  CHECK(p.fab.barMemory("colour0").stats().counterValue("bytes_written") == 0);
  CHECK(p.dram.stats().counterValue("bytes_written") == kFrames * (r.frameBytes + r.outBytes));
  CHECK(p.dram.stats().counterValue("bytes_read") >= kFrames * r.frameBytes);
}
