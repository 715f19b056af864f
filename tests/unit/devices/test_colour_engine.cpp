// The colour-correction engine alone: its data path against an independent reference transform
// (pure), then on the platform: a frame from RAM to RAM byte-exact at its pixel rate, and a frame
// from its own device memory. SystemC cases assert after sc_start().
#include <catch2/catch.hpp>

#include "sim/rng.h"
#include "tests/unit/devices/camera_chain_fixture.h"

using namespace hmmsim;
using namespace hmmsim::test;

namespace {

double relErr(double a, double b) {
  return std::abs(a - b) / b;
}

std::vector<std::uint8_t> randomFrame(std::uint64_t pixels, PixelFormat f, std::uint64_t seed) {
  Rng rng(seed);
  std::vector<std::uint8_t> b(pixels * bytesPerPixel(f));
  for (std::uint64_t i = 0; i < pixels; ++i)
    storePixel(f, &b[i * bytesPerPixel(f)],
               Rgb{std::uint8_t(rng.below(256)), std::uint8_t(rng.below(256)), std::uint8_t(rng.below(256))});
  return b;
}

ChainPlatformParams quantum() {
  tlm_utils::tlm_quantumkeeper::set_global_quantum(sc_core::sc_time(1, sc_core::SC_US));
  return ChainPlatformParams{};
}

// Converts a random `w` x `h` frame from RAM to RAM; checks every pixel and the throughput.
void convertRamToRam(PixelFormat in, PixelFormat out, std::uint32_t w, std::uint32_t h,
                     std::uint32_t strip = 1) {
  ChainPlatformParams pp = quantum();
  pp.colour.linesPerStrip = strip;
  ChainPlatform p(pp);
  const ColourTransform t = testTransform();
  p.colourDriver->setTransform(t);
  const std::vector<std::uint8_t> src = randomFrame(std::uint64_t(w) * h, in, 5);
  const Va srcVa = p.mapAnon(pageRound(src.size()));
  const std::uint64_t outBytes = std::uint64_t(w) * h * bytesPerPixel(out);
  const Va dstVa = p.mapAnon(pageRound(outBytes));
  REQUIRE(copyToUser(*p.mm, srcVa, src.data(), src.size()) == Errno::Ok);
  ColourRequest r;
  r.srcVa = srcVa;
  r.dstVa = dstVa;
  r.width = w;
  r.height = h;
  r.inFormat = in;
  r.outFormat = out;
  r.tag = 42;
  REQUIRE(p.colourDriver->process(r) == Errno::Ok);
  sc_core::sc_start();
  REQUIRE(p.colour->completions().size() == 1);
  const ColourCompletion& c = p.colour->completions()[0];
  CHECK(c.ok);
  CHECK(c.tag == 42);
  const auto got = p.cpu(dstVa, outBytes);
  CHECK(firstMismatch(got, out, w, h, [&](std::uint32_t x, std::uint32_t y) {
          return referenceTransform(t, loadPixel(in, &src[(std::uint64_t(y) * w + x) * bytesPerPixel(in)]));
        }) == -1);
  // Compute-bound (300 Mpx/s against a Gen4 x8 link): the frame takes its pixels at the pixel rate.
  const double expectPs = double(w) * h * 1e12 / p.colour->params().pixelsPerSecond;
  CHECK(relErr(double(c.donePs - c.startPs), expectPs) < 0.01);
  CHECK(p.colour->stats().counterValue("pixels") == std::uint64_t(w) * h);
  CHECK(p.colour->stats().counterValue("dma_errors") == 0);
}

}  // namespace

TEST_CASE("the engine's data path equals the reference transform on random pixels in every format pair") {
  const ColourTransform t = testTransform();
  REQUIRE(t.check().empty());
  const ColourPipeline pipe(t);
  for (PixelFormat in : {PixelFormat::Rgb888, PixelFormat::Xrgb8888})
    for (PixelFormat out : {PixelFormat::Rgb888, PixelFormat::Xrgb8888}) {
      const std::vector<std::uint8_t> src = randomFrame(20'000, in, 9);
      std::vector<std::uint8_t> dst(20'000 * bytesPerPixel(out), 0xee);
      pipe.run(src.data(), in, dst.data(), out, 20'000);
      CHECK(firstMismatch(dst, out, 20'000, 1, [&](std::uint32_t x, std::uint32_t) {
              return referenceTransform(t, loadPixel(in, &src[x * bytesPerPixel(in)]));
            }) == -1);
    }
}

TEST_CASE("the transform rounds half up, clamps both ends and then applies the LUT") {
  ColourTransform t;
  t.matrix = {2048, 0, 0, 0, -4096, 0, 0, 0, 2 * 4096};  // R/2, -G, 2B
  t.lut[0][3] = 200;
  const ColourPipeline pipe(t);
  auto run = [&](Rgb in) {
    std::uint8_t i[3], o[3];
    storePixel(PixelFormat::Rgb888, i, in);
    pipe.run(i, PixelFormat::Rgb888, o, PixelFormat::Rgb888, 1);
    return loadPixel(PixelFormat::Rgb888, o);
  };
  CHECK(run(Rgb{5, 10, 200}) == Rgb{200, 0, 255});  // 2.5 -> 3 -> LUT 200; -10 -> 0; 400 -> 255
  CHECK(run(Rgb{4, 0, 100}) == Rgb{2, 0, 200});
  CHECK(referenceTransform(t, Rgb{5, 10, 200}) == Rgb{200, 0, 255});
  t.matrix[4] = ColourTransform::kMaxAbs;
  CHECK(t.check().find("matrix[1][1]") != std::string::npos);
}

TEST_CASE("the engine converts an RGB888 frame from RAM to RAM pixel-exact at its pixel rate within 1%") {
  convertRamToRam(PixelFormat::Rgb888, PixelFormat::Rgb888, 1920, 540);
}

TEST_CASE("the engine converts XRGB8888 to RGB888 from RAM to RAM pixel-exact at its pixel rate within 1%") {
  convertRamToRam(PixelFormat::Xrgb8888, PixelFormat::Rgb888, 1920, 540);
}

TEST_CASE("an engine working in strips of 7 lines converts pixel-exact at the same pixel rate within 1%") {
  convertRamToRam(PixelFormat::Rgb888, PixelFormat::Xrgb8888, 1920, 540, 7);
}

TEST_CASE("the engine converts a frame held in its own device memory and signals its MSI") {
  ChainPlatformParams pp = quantum();
  pp.iommu = IommuMode::Off;  // the MSI address is a RAM physical address
  ChainPlatform p(pp);
  const ColourTransform t = testTransform();
  p.colourDriver->setTransform(t);
  constexpr std::uint32_t w = 640, h = 32;
  const std::vector<std::uint8_t> src = randomFrame(w * h, PixelFormat::Rgb888, 3);
  const Pa barPa = p.pci("colour0").bar(2).cpu;
  p.pm.write(barPa + 0x20'0000, src.data(), src.size());  // as if a producer had written it
  const Va dstVa = p.mapAnon(pageRound(w * h * 3));
  p.colour->setMsi(0x300'0000, 0x1234'5678);
  ColourRequest r;
  r.srcLocal = true;
  r.srcOffset = 0x20'0000;
  r.dstVa = dstVa;
  r.width = w;
  r.height = h;
  REQUIRE(p.colourDriver->process(r) == Errno::Ok);
  r.srcOffset = p.colour->params().deviceMemoryBytes - 100;
  CHECK(p.colourDriver->process(r) == Errno::Inval);
  sc_core::sc_start();
  REQUIRE(p.colour->completions().size() == 1);
  CHECK(firstMismatch(p.cpu(dstVa, w * h * 3), PixelFormat::Rgb888, w, h,
                      [&](std::uint32_t x, std::uint32_t y) {
                        return referenceTransform(t, loadPixel(PixelFormat::Rgb888, &src[(y * w + x) * 3]));
                      }) == -1);
  std::uint32_t msi = 0;
  p.pm.read(Pa(0x300'0000), &msi, 4);
  CHECK(msi == 0x1234'5678);
  CHECK(p.colour->stats().counterValue("msi_writes") == 1);
  CHECK(p.fab.barMemory("colour0").stats().counterValue("bytes_read") == 0);  // local reads, not PCIe
}

namespace {

/// Jobs converting one 320 x 24 RGB888 frame (6 pages) from RAM to RAM, `jobs` times into the
/// same buffers, the engine mapping no buffer ahead (prefault off) and its importer's fault_around
/// `around`. Returns the engine importer's device faults; every frame must be pixel-exact.
std::uint64_t engineFaults(std::uint64_t around, unsigned jobs) {
  ChainPlatformParams pp = quantum();
  pp.colourPrefault = false;
  pp.colourDma.faultAroundPages = around;
  ChainPlatform p(pp);
  const ColourTransform t = testTransform();
  p.colourDriver->setTransform(t);
  constexpr std::uint32_t w = 320, h = 24;
  const std::vector<std::uint8_t> src = randomFrame(w * h, PixelFormat::Rgb888, 9);
  const Va srcVa = p.mapAnon(pageRound(src.size()));
  const Va dstVa = p.mapAnon(pageRound(src.size()));
  REQUIRE(pageRound(src.size()) == 6 * kPageSize);
  REQUIRE(copyToUser(*p.mm, srcVa, src.data(), src.size()) == Errno::Ok);
  ColourRequest r;
  r.srcVa = srcVa;
  r.dstVa = dstVa;
  r.width = w;
  r.height = h;
  bool submitted = true;
  ScThread cpu("cpu", [&](tlm_utils::tlm_quantumkeeper&) {
    for (unsigned j = 0; j < jobs; ++j) {
      r.tag = j;
      submitted = p.colourDriver->process(r) == Errno::Ok && submitted;
      while (p.colour->completions().size() <= j) sc_core::wait(sc_core::sc_time(1, sc_core::SC_US));
    }
  });
  sc_core::sc_start();
  REQUIRE(submitted);
  REQUIRE(p.colour->completions().size() == jobs);
  for (const ColourCompletion& c : p.colour->completions()) CHECK(c.ok);
  CHECK(firstMismatch(p.cpu(dstVa, src.size()), PixelFormat::Rgb888, w, h,
                      [&](std::uint32_t x, std::uint32_t y) {
                        return referenceTransform(t, loadPixel(PixelFormat::Rgb888, &src[(y * w + x) * 3]));
                      }) == -1);
  CHECK(p.violations.ok());
  return p.colourDriver->importerDma()->stats().counterValue("device_faults");
}

}  // namespace

TEST_CASE("an engine that maps nothing ahead faults each buffer of a job once, not a page per strip") {
  CHECK(ColourEngineDriverParams{}.dma.faultAroundPages == ImporterDmaParams::kKernelFaultAroundPages);
  // The first strip read faults the whole input (its buffer's end: dmaEnd), the first strip
  // written the whole output. Without dmaEnd: a fault for every page the 960-byte lines enter.
  CHECK(engineFaults(ImporterDmaParams::kKernelFaultAroundPages, 2) == 2);  // the second job: none
}
