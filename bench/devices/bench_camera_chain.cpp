// Simulation speed of the RFC's workload 4: camera -> colour engine -> memory at 1080p60
// (CEA-861 timing, RGB888, 300 Mpx/s engine), peer to peer under one switch (the camera DMAs into
// the engine's BAR through its special vma; the engine writes RAM through the IOMMU), on the
// hand-wired platform of tests/unit/devices/camera_chain_fixture.h, per-burst fidelity, 1 us
// quantum, the devices looking ahead as on a Platform (models/cpu_mmu/lookahead.h).
//
// Two platforms are elaborated in one process and run one after the other, each timed around its
// own sc_start() in process CPU time (one core):
//  1. pixel-exact: every pixel is generated, moved by DMA, transformed and stored; every output
//     frame is compared pixel by pixel with the reference transform of the reference pattern at
//     its completion. The comparison is the benchmark's own checking, not the simulation: its CPU
//     time is measured and reported apart (figures with and without it).
//  2. timing-only: the same platform with payloads dropped (no pattern, no transform, DMA without
//     bytes, DRAM and BAR keep nothing).
// Target (issue 12): >= 1 simulated second per CPU second pixel-exact, >= 50 timing-only.
// Usage: bench_camera_chain [data-seconds=1] [timing-seconds=10] [lines-per-dma=1] [link|page|pt]
// lines-per-dma sets CameraParams::linesPerDma and ColourEngineParams::linesPerStrip of both runs.
// The fourth argument picks the DMA mapping: "link" (the default, as the platform's): the IOMMU
// translates and the importers link their windows into one IOVA range each
// (ImporterMirrorParams::iovaLink, the 6.16 hmm_dma_map path): bursts span pages and the root
// complex scatters them over the frames; "page": translating, every page its own dma_map_page
// (6.12, the RFC: a burst per page); "pt": the IOMMU in passthrough (DMA addresses are physical:
// runs of physically contiguous pages coalesce into bursts up to ImporterDmaParams::maxBurstBytes).

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <memory>
#include <string>

#define CHAIN_REQUIRE(x)    \
  do {                      \
    if (!(x)) std::abort(); \
  } while (0)
#include "models/cpu_mmu/lookahead.h"
#include "tests/unit/devices/camera_chain_fixture.h"

using namespace hmmsim;
using namespace hmmsim::test;

namespace {

double cpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}

struct Run {
  std::unique_ptr<ChainPlatform> p;
  std::vector<Va> out;
  std::uint64_t frames = 0;
  std::uint64_t checked = 0, mismatches = 0;
  double checkSeconds = 0;
};

// Builds one chain; the camera starts at `startPs` and captures `frames` frames.
void build(Run& r, const std::string& name, bool timingOnly, std::uint64_t frames, std::uint64_t startPs,
           std::uint32_t linesPerDma, IommuMode iommu, bool iovaLink) {
  ChainPlatformParams pp;
  pp.name = name;
  pp.camera.timingOnly = timingOnly;
  pp.colour.timingOnly = timingOnly;
  pp.storeData = !timingOnly;
  pp.camera.linesPerDma = linesPerDma;
  pp.iommu = iommu;
  pp.iovaLink = iovaLink;
  pp.colour.linesPerStrip = linesPerDma;
  r.frames = frames;
  {
    // As Platform makes them: the devices look ahead (each phase's sc_start ends a frame period
    // after its last frame, so no thread looks ahead past it).
    const LookaheadScope lookahead(true);
    r.p = std::make_unique<ChainPlatform>(pp);
  }
  ChainPlatform& p = *r.p;
  const CameraParams& cp = p.params.camera;
  const std::uint64_t slot = pageRound(cp.frameBytes());
  const Va in = p.mapColourInput(0, 2 * slot);
  for (int i = 0; i < 3; ++i) r.out.push_back(p.mapAnon(slot));
  if (p.camDriver(0).setUserBuffers(*p.mm, {in, in + slot}) != Errno::Ok) std::abort();
  p.colourDriver->setTransform(testTransform());
  p.cam(0).onCompletion([&p, &r, slot](const CameraCompletion& c) {
    ColourRequest q;
    q.srcLocal = true;
    q.srcOffset = c.buffer * slot;
    q.dstVa = r.out[c.frame % r.out.size()];
    q.width = p.params.camera.width;
    q.height = p.params.camera.height;
    q.tag = c.frame;
    if (p.colourDriver->process(q) != Errno::Ok) std::abort();
  });
  if (!timingOnly)
    p.colour->onCompletion([&p, &r](const ColourCompletion& c) {
      const double t0 = cpuSeconds();
      const CameraParams& c2 = p.params.camera;
      const ColourTransform t = testTransform();
      std::vector<std::uint8_t> got(c2.frameBytes());
      if (copyFromUser(*p.mm, got.data(), r.out[c.tag % r.out.size()], got.size()) != Errno::Ok) std::abort();
      ++r.checked;
      if (firstMismatch(got, c2.format, c2.width, c2.height, [&](std::uint32_t x, std::uint32_t y) {
            return referenceTransform(t, cameraPatternPixel(c2.seed, c.tag, x, y));
          }) != -1)
        ++r.mismatches;
      r.checkSeconds += cpuSeconds() - t0;
    });
  p.camDriver(0).start(frames, startPs);
}

}  // namespace

int sc_main(int argc, char** argv) {
  const double dataSeconds = argc > 1 ? std::atof(argv[1]) : 1.0;
  const double timingSeconds = argc > 2 ? std::atof(argv[2]) : 10.0;
  const auto linesPerDma = static_cast<std::uint32_t>(argc > 3 ? std::atoi(argv[3]) : 1);
  const std::string mapping = argc > 4 ? argv[4] : "link";
  if (mapping != "link" && mapping != "page" && mapping != "pt") {
    std::fprintf(stderr, "bench_camera_chain: the fourth argument is link, page or pt, not \"%s\"\n",
                 mapping.c_str());
    return 2;
  }
  const bool passthrough = mapping == "pt";
  const bool iovaLink = mapping == "link";
  const IommuMode iommu = passthrough ? IommuMode::Passthrough : IommuMode::Translate;
  tlm_utils::tlm_quantumkeeper::set_global_quantum(sc_core::sc_time(1, sc_core::SC_US));
  const CameraParams cam;
  const std::uint64_t dataFrames = std::uint64_t(dataSeconds * cam.fps + 0.5);
  const std::uint64_t timingFrames = std::uint64_t(timingSeconds * cam.fps + 0.5);
  // Phase 1 ends one frame period after its last frame; phase 2 starts then.
  const std::uint64_t phase1Ps = (dataFrames + 1) * cam.framePeriodPs();
  const std::uint64_t phase2Ps = (timingFrames + 1) * cam.framePeriodPs();
  Run data, timing;
  build(data, "data", false, dataFrames, 0, linesPerDma, iommu, iovaLink);
  build(timing, "timing", true, timingFrames, phase1Ps, linesPerDma, iommu, iovaLink);

  double t0 = cpuSeconds();
  sc_core::sc_start(sc_core::sc_time::from_value(phase1Ps));
  const double dataCpu = cpuSeconds() - t0;
  t0 = cpuSeconds();
  sc_core::sc_start(sc_core::sc_time::from_value(phase2Ps));
  const double timingCpu = cpuSeconds() - t0;

  const double simData = double(phase1Ps) * 1e-12, simTiming = double(phase2Ps) * 1e-12;
  const auto& dc = data.p->colour->completions();
  const auto& tc = timing.p->colour->completions();
  std::printf("lines per DMA (camera) and per strip (engine): %u; IOMMU %s\n", linesPerDma,
              passthrough ? "passthrough"
              : iovaLink  ? "translating, windows linked into IOVA ranges"
                          : "translating, dma_map_page per page");
  std::printf(
      "pixel-exact: %llu frames 1920x1080 RGB888 at 60 fps, %llu checked, %llu mismatching; "
      "%.3f sim s in %.3f CPU s (%.3f of it checking)\n",
      (unsigned long long)dc.size(), (unsigned long long)data.checked, (unsigned long long)data.mismatches,
      simData, dataCpu, data.checkSeconds);
  std::printf("timing-only: %llu frames; %.3f sim s in %.3f CPU s\n", (unsigned long long)tc.size(),
              simTiming, timingCpu);
  std::printf(
      "summary (simulated s per CPU s, one core): pixel-exact %.2f (target >= 1; %.2f with the "
      "benchmark's own pixel checks), timing-only %.1f (target >= 50); timing-only / pixel-exact = %.1fx\n",
      simData / (dataCpu - data.checkSeconds), simData / dataCpu, simTiming / timingCpu,
      (simTiming / timingCpu) / (simData / (dataCpu - data.checkSeconds)));
  const bool ok = dc.size() == dataFrames && tc.size() == timingFrames && data.checked == dataFrames &&
                  data.mismatches == 0;
  if (!ok) std::printf("FAILED: frames or pixels wrong\n");
  sc_core::sc_stop();
  return ok ? 0 : 1;
}
