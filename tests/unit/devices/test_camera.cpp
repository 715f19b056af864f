// The camera alone: its test pattern, its timing against its parameters, its bytes in user
// buffers (RAM through the IOMMU), its MSI, and invalidation of a buffer it is writing.
// SystemC cases assert after sc_start().
#include <catch2/catch.hpp>

#include <cstring>

#include "models/cpu_mmu/lookahead.h"
#include "tests/unit/devices/camera_chain_fixture.h"

using namespace hmmsim;
using namespace hmmsim::test;

namespace {

CameraParams smallCamera(PixelFormat f = PixelFormat::Rgb888) {
  CameraParams c;
  c.width = 320;
  c.height = 24;
  c.hblankPixels = 80;
  c.vblankLines = 6;
  c.fps = 240;
  c.format = f;
  c.seed = 7;
  return c;
}

ChainPlatformParams withCamera(const CameraParams& c) {
  ChainPlatformParams p;
  p.camera = c;
  tlm_utils::tlm_quantumkeeper::set_global_quantum(sc_core::sc_time(1, sc_core::SC_US));
  return p;
}

double relErr(double a, double b) {
  return std::abs(a - b) / b;
}

/// The first pixel of `bytes` that differs from frame `frame` of cp's reference pattern, or -1.
long long patternMismatch(const std::vector<std::uint8_t>& bytes, const CameraParams& cp,
                          std::uint64_t frame) {
  return firstMismatch(bytes, cp.format, cp.width, cp.height, [&](std::uint32_t x, std::uint32_t y) {
    return cameraPatternPixel(cp.seed, frame, x, y);
  });
}

// Captures `frames` frames of cam0 into a ring of `ring` user buffers (one per frame when
// ring == frames), checking each frame's bytes against the reference pattern.
void checkFramesExact(PixelFormat f) {
  const CameraParams cp = smallCamera(f);
  ChainPlatform p(withCamera(cp));
  constexpr unsigned kFrames = 3;
  std::vector<Va> bufs;
  for (unsigned i = 0; i < kFrames; ++i) bufs.push_back(p.mapAnon(pageRound(cp.frameBytes())));
  REQUIRE(p.camDriver(0).setUserBuffers(*p.mm, bufs) == Errno::Ok);
  p.camDriver(0).start(kFrames);
  sc_core::sc_start();
  REQUIRE(p.cam(0).completions().size() == kFrames);
  for (unsigned n = 0; n < kFrames; ++n) {
    CHECK(p.cam(0).completions()[n].ok);
    const auto bytes = p.cpu(bufs[n], cp.frameBytes());
    CHECK(patternMismatch(bytes, cp, n) == -1);
  }
  CHECK(p.cam(0).stats().counterValue("bytes") == kFrames * cp.frameBytes());
  CHECK(p.cam(0).stats().counterValue("dma_errors") == 0);
  CHECK(p.cam(0).stats().counterValue("late_lines") == 0);
  CHECK(p.camDriver(0).importerDma()->stats().counterValue("device_faults") == 0);  // prefaulted
  CHECK(p.iommu.stats().counterValue("translations") > 0);                          // RAM through the IOMMU
  CHECK(p.dram.stats().counterValue("bytes_written") == kFrames * cp.frameBytes());
}

}  // namespace

TEST_CASE("the test pattern's line fast path equals the reference pixel function in both formats") {
  for (PixelFormat f : {PixelFormat::Rgb888, PixelFormat::Xrgb8888}) {
    std::vector<std::uint8_t> line(700 * bytesPerPixel(f));
    for (std::uint64_t frame : {0ull, 1ull, 1000ull})
      for (std::uint32_t y : {0u, 5u, 1079u}) {
        cameraPatternLine(3, frame, y, 700, f, line.data());
        for (std::uint32_t x = 0; x < 700; ++x) {
          const std::uint8_t* px = &line[x * bytesPerPixel(f)];
          REQUIRE(loadPixel(f, px) == cameraPatternPixel(3, frame, x, y));
          if (f == PixelFormat::Xrgb8888) REQUIRE(px[3] == 0);
        }
      }
  }
  // Seeds, frames and lines change the picture.
  CHECK(cameraPatternPixel(1, 0, 0, 0) != cameraPatternPixel(2, 0, 0, 0));
  CHECK(cameraPatternPixel(1, 0, 0, 0) != cameraPatternPixel(1, 1, 0, 0));
  CHECK(cameraPatternPixel(1, 0, 0, 0) != cameraPatternPixel(1, 0, 0, 1));
}

TEST_CASE(
    "camera timing follows fps and blanking: CEA-861 1080p60 has a 14.815 us line and a 148.5 MHz pixel "
    "clock") {
  CameraParams c;
  CHECK(c.check().empty());
  CHECK(c.linePs() == 14'814'815);  // 1 / (60 * 1125)
  CHECK(c.framePeriodPs() == 14'814'815ull * 1125);
  CHECK(relErr(double(c.framePeriodPs()), 1e12 / 60) < 1e-6);
  CHECK(c.activePs() == (14'814'815ull * 1920 + 1100) / 2200);  // 1920 of 2200 pixel clocks
  CHECK(c.frameBytes() == 1920ull * 1080 * 3);
  c.format = PixelFormat::Xrgb8888;
  CHECK(c.frameBytes() == 1920ull * 1080 * 4);
  c.strideBytes = 100;
  CHECK(c.check().find("strideBytes") != std::string::npos);
  c = CameraParams{};
  c.fps = 0;
  CHECK(c.check().find("fps") != std::string::npos);
}

TEST_CASE("the camera writes every RGB888 frame byte-exact into user buffers in RAM through the IOMMU") {
  checkFramesExact(PixelFormat::Rgb888);
}

TEST_CASE("the camera writes every XRGB8888 frame byte-exact into user buffers in RAM through the IOMMU") {
  checkFramesExact(PixelFormat::Xrgb8888);
}

TEST_CASE("the camera's frame period and line time are within 1% of its parameters") {
  const CameraParams cp = smallCamera();
  ChainPlatform p(withCamera(cp));
  constexpr unsigned kFrames = 4;
  const Va buf = p.mapAnon(pageRound(cp.frameBytes()));
  REQUIRE(p.camDriver(0).setUserBuffers(*p.mm, {buf}) == Errno::Ok);
  p.camDriver(0).start(kFrames, 1'000'000);
  sc_core::sc_start();
  const auto& c = p.cam(0).completions();
  REQUIRE(c.size() == kFrames);
  CHECK(c[0].startPs == 1'000'000);
  for (unsigned n = 1; n < kFrames; ++n) {
    CHECK(relErr(double(c[n].donePs - c[n - 1].donePs), double(cp.framePeriodPs())) < 0.01);
    CHECK(c[n].startPs - c[n - 1].startPs == cp.framePeriodPs());
  }
  // The frame's last byte lands just after its last line was read out (a line's DMA is short).
  const std::uint64_t lastReady = c[0].startPs + (cp.height - 1) * cp.linePs() + cp.activePs();
  CHECK(c[0].donePs > lastReady);
  CHECK(c[0].donePs - lastReady < cp.linePs() / 10);
  // Lines: stored one line time apart.
  const auto& lines = p.cam(0).lastFrameLineDone();
  REQUIRE(lines.size() == cp.height);
  for (std::uint32_t y = 1; y < cp.height; ++y)
    CHECK(relErr(double(lines[y] - lines[y - 1]), double(cp.linePs())) < 0.01);
  // Over the whole run: (frames - 1) periods plus one frame's active read-out.
  const double expect =
      double((kFrames - 1) * cp.framePeriodPs() + (cp.height - 1) * cp.linePs() + cp.activePs());
  CHECK(relErr(double(c.back().donePs - c[0].startPs), expect) < 0.01);
}

// Lookahead (models/cpu_mmu/lookahead.h): two cameras, the second made to look ahead, capture
// the same frames one after the other (the first is idle, waiting for nothing timed, while the
// second runs). Alone, the second skips its per-line syncs, so it wakes a fraction as often, yet
// every frame and every line is stored at the same time relative to its start.
TEST_CASE("a camera that looks ahead stores every line at the same time with a fraction of the wake-ups") {
  const CameraParams cp = smallCamera();
  constexpr unsigned kFrames = 3;
  const std::uint64_t phase = (kFrames + 1) * cp.framePeriodPs();
  ChainPlatformParams pa = withCamera(cp), pb = withCamera(cp);
  pa.name = "plain";
  pb.name = "ahead";
  ChainPlatform a(pa);
  std::unique_ptr<ChainPlatform> b;
  {
    const LookaheadScope lookahead(true);
    b = std::make_unique<ChainPlatform>(pb);
  }
  for (ChainPlatform* p : {&a, b.get()})
    REQUIRE(p->camDriver(0).setUserBuffers(*p->mm, {p->mapAnon(pageRound(cp.frameBytes()))}) == Errno::Ok);
  a.camDriver(0).start(kFrames, 0);
  b->camDriver(0).start(kFrames, phase);
  const std::uint64_t w0 = Sequencer::instance().released();
  sc_core::sc_start(sc_core::sc_time::from_value(phase));
  const std::uint64_t wakeA = Sequencer::instance().released() - w0;
  sc_core::sc_start(sc_core::sc_time::from_value(phase));
  const std::uint64_t wakeB = Sequencer::instance().released() - w0 - wakeA;
  const auto& ca = a.cam(0).completions();
  const auto& cb = b->cam(0).completions();
  REQUIRE(ca.size() == kFrames);
  REQUIRE(cb.size() == kFrames);
  for (unsigned n = 0; n < kFrames; ++n) {
    CHECK(cb[n].startPs - phase == ca[n].startPs);
    CHECK(cb[n].donePs - phase == ca[n].donePs);
  }
  const auto& la = a.cam(0).lastFrameLineDone();
  const auto& lb = b->cam(0).lastFrameLineDone();
  REQUIRE(la.size() == cp.height);
  REQUIRE(lb.size() == cp.height);
  for (std::uint32_t y = 0; y < cp.height; ++y) CHECK(lb[y] - phase == la[y]);
  CHECK(b->cam(0).stats().counterValue("lines") == a.cam(0).stats().counterValue("lines"));
  // At least a line's wake-up per line without lookahead; a few per frame with it.
  CHECK(wakeA >= kFrames * cp.height);
  CHECK(wakeB * 4 < wakeA);
}

TEST_CASE("a camera that DMAs 5 lines at a time writes every frame byte-exact with the same frame period") {
  CameraParams cp = smallCamera(PixelFormat::Xrgb8888);
  cp.linesPerDma = 5;  // 24 lines: four groups of 5 and one of 4
  ChainPlatform p(withCamera(cp));
  std::vector<Va> bufs = {p.mapAnon(pageRound(cp.frameBytes())), p.mapAnon(pageRound(cp.frameBytes()))};
  REQUIRE(p.camDriver(0).setUserBuffers(*p.mm, bufs) == Errno::Ok);
  p.camDriver(0).start(2);
  sc_core::sc_start();
  const auto& c = p.cam(0).completions();
  REQUIRE(c.size() == 2);
  for (unsigned n = 0; n < 2; ++n) CHECK(patternMismatch(p.cpu(bufs[n], cp.frameBytes()), cp, n) == -1);
  CHECK(relErr(double(c[1].donePs - c[0].donePs), double(cp.framePeriodPs())) < 0.01);
  // Lines 0-4 land together, after line 4 was read out.
  const auto& lines = p.cam(0).lastFrameLineDone();
  CHECK(lines[0] == lines[4]);
  CHECK(lines[5] > lines[4]);
  CHECK(lines[4] > c[1].startPs + 4 * cp.linePs() + cp.activePs());
  CHECK(p.cam(0).stats().counterValue("lines") == 2 * cp.height);
}

TEST_CASE("the camera signals each frame with the MSI its driver programmed, after the frame's last byte") {
  // IOMMU off: the driver's DMA buffers and the MSI address are physical addresses in RAM.
  ChainPlatformParams pp = withCamera(smallCamera());
  pp.iommu = IommuMode::Off;
  ChainPlatform p(pp);
  const CameraParams& cp = pp.camera;
  const std::uint64_t frameAt = 0x100'0000, msiAt = 0x200'0000;
  REQUIRE(p.camDriver(1).setDmaBuffers({{DmaSegment{frameAt, cp.frameBytes()}}}) == Errno::Ok);
  p.camDriver(1).setMsi(msiAt, 0xfee1'dead);
  p.camDriver(1).start(2);
  std::vector<std::uint64_t> seen;
  ScThread waiter("waiter", [&](tlm_utils::tlm_quantumkeeper&) {
    while (seen.size() < 2) {
      sc_core::wait(p.cam(1).frameDone());
      seen.push_back(sc_core::sc_time_stamp().value());
    }
  });
  sc_core::sc_start();
  CHECK(p.cam(1).stats().counterValue("msi_writes") == 2);
  std::uint32_t msi = 0;
  p.pm.read(Pa(msiAt), &msi, 4);
  CHECK(msi == 0xfee1'dead);
  REQUIRE(seen.size() == 2);
  const auto& c = p.cam(1).completions();
  CHECK(seen[0] >= c[0].donePs);
  CHECK(seen[1] >= c[1].donePs);
  std::vector<std::uint8_t> frame(cp.frameBytes());
  p.pm.read(Pa(frameAt), frame.data(), frame.size());
  CHECK(patternMismatch(frame, cp, 1) == -1);
}

TEST_CASE(
    "an madvise(DONTNEED) of a buffer mid-line waits for the camera's in-flight bursts and the camera "
    "refaults it") {
  const CameraParams cp = smallCamera();
  ChainPlatformParams pp = withCamera(cp);
  // The camera's device TLB invalidation (before the wait for DMA) must end while the line's
  // bursts are still in flight: 100 ns instead of the 1 us default, which outlasts them.
  pp.cameraDma.mirror.tlbInvalidationPs = 100'000;
  ChainPlatform p(pp);
  const Va buf = p.mapAnon(pageRound(cp.frameBytes()));
  REQUIRE(p.camDriver(0).setUserBuffers(*p.mm, {buf}) == Errno::Ok);
  p.camDriver(0).start(3);
  // Line 10 of frame 1 is read out at this time and its bursts take ~1 us: zap 50 ns later.
  const std::uint64_t at = cp.framePeriodPs() + 10 * cp.linePs() + cp.activePs() + 50'000;
  std::uint64_t zapDone = 0;
  Errno rc = Errno::Inval;
  ScThread cpu("cpu", [&](tlm_utils::tlm_quantumkeeper&) {
    sc_core::wait(sc_core::sc_time::from_value(at));
    rc = p.mm->madvise(buf, pageRound(cp.frameBytes()), MADV_DONTNEED);
    zapDone = sc_core::sc_time_stamp().value();
  });
  sc_core::sc_start();
  CHECK(rc == Errno::Ok);
  ImporterDma& port = *p.camDriver(0).importerDma();
  CHECK(port.stats().counterValue("invalidation_waits") == 1);
  CHECK(port.stats().counterValue("tlb_invalidation_ps") >= 100'000);
  // The invalidation returned only after the TLB invalidation and then the bursts completed.
  CHECK(zapDone >= at + 100'000 + port.stats().counterValue("invalidation_wait_ps"));
  CHECK(port.mirror().stats().counterValue("invalidations") >= 1);
  CHECK(port.stats().counterValue("device_faults") >= 1);  // line 11 refaulted the buffer
  CHECK(p.cam(0).stats().counterValue("dma_errors") == 0);
  CHECK(p.violations.ok());
  // Frame 2 went entirely into the new pages.
  const auto bytes = p.cpu(buf, cp.frameBytes());
  CHECK(patternMismatch(bytes, cp, 2) == -1);
}

namespace {

/// One buffer of 6 pages, 3 frames; an madvise(DONTNEED) of the buffer while line 10 of frame 1
/// is written. The camera's importer has fault_around `around`; returns its device faults.
std::uint64_t faultsAfterZapMidFrame(std::uint64_t around) {
  const CameraParams cp = smallCamera();
  ChainPlatformParams pp = withCamera(cp);
  pp.cameraDma.faultAroundPages = around;
  ChainPlatform p(pp);
  const Va buf = p.mapAnon(pageRound(cp.frameBytes()));
  REQUIRE(pageRound(cp.frameBytes()) == 6 * kPageSize);
  REQUIRE(p.camDriver(0).setUserBuffers(*p.mm, {buf}) == Errno::Ok);
  p.camDriver(0).start(3);
  const std::uint64_t at = cp.framePeriodPs() + 10 * cp.linePs() + cp.activePs() + 50'000;
  Errno rc = Errno::Inval;
  ScThread cpu("cpu", [&](tlm_utils::tlm_quantumkeeper&) {
    sc_core::wait(sc_core::sc_time::from_value(at));
    rc = p.mm->madvise(buf, pageRound(cp.frameBytes()), MADV_DONTNEED);
  });
  sc_core::sc_start();
  CHECK(rc == Errno::Ok);
  CHECK(p.cam(0).stats().counterValue("dma_errors") == 0);
  CHECK(p.violations.ok());
  const auto bytes = p.cpu(buf, cp.frameBytes());
  CHECK(patternMismatch(bytes, cp, 2) == -1);
  return p.camDriver(0).importerDma()->stats().counterValue("device_faults");
}

}  // namespace

TEST_CASE("a camera refaulting a zapped buffer mid-frame maps all of it in one fault (fault-around 64 KiB)") {
  CHECK(CameraDriverParams{}.dma.faultAroundPages == ImporterDmaParams::kKernelFaultAroundPages);
  // Line 11's fault maps the rest of the frame (the buffer's end: dmaEnd) and the block behind it.
  CHECK(faultsAfterZapMidFrame(ImporterDmaParams::kKernelFaultAroundPages) == 1);
}

TEST_CASE("a camera with fault_around 1 refaults a zapped buffer's rest of frame, then its start") {
  // Line 11's fault maps the rest of frame 1 in one (dmaEnd); frame 2's first line faults the pages
  // before it. One fault per page the lines cross without dmaEnd.
  CHECK(faultsAfterZapMidFrame(1) == 2);
}
