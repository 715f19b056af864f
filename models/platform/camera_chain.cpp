// The camera chain on a Platform. See camera_chain.h.
#include "models/platform/camera_chain.h"

#include <algorithm>
#include <sstream>

#include "models/cpu_mmu/memory.h"
#include "models/cpu_mmu/sequencer.h"
#include "models/platform/exporter_events.h"
#include "sim/assert.h"
#include "sim/config.h"
#include "sim/errno.h"

namespace hmmsim {

namespace {
[[noreturn]] void fail(const std::string& key, const std::string& msg) {
  throw ConfigError("<workload>", 0, 0, key, msg);
}
std::uint64_t pageUp(std::uint64_t b) {
  return (b + kPageSize - 1) & ~(kPageSize - 1);
}
}  // namespace

const char* cameraChainPathName(CameraChainPath p) {
  switch (p) {
    case CameraChainPath::P2p:
      return "p2p";
    case CameraChainPath::Bounce:
      return "bounce";
  }
  return "?";
}

const char* cameraChainRevokeName(CameraChainRevoke r) {
  switch (r) {
    case CameraChainRevoke::Revoke:
      return "revoke";
    case CameraChainRevoke::Move:
      return "move";
  }
  return "?";
}

CameraChainSlots cameraChainSlots(const CameraParams& cp, const CameraChainParams& params) {
  return {pageUp(cp.frameBytes()),
          pageUp(std::uint64_t(cp.width) * cp.height * bytesPerPixel(params.outFormat))};
}

std::vector<PlaceableRegion> cameraChainPlaceable(const CameraParams& cp, const CameraChainParams& params) {
  const CameraChainSlots slots = cameraChainSlots(cp, params);
  PlaceableRegion in{"frames_in", params.process, slots.framesInBytes(params), {}};
  in.rule.users = "the camera writes it, the engine reads it";
  if (params.path == CameraChainPath::P2p) {
    in.rule.memory = PlacementRule::Memory::DeviceFile;
    in.rule.device = params.engine;
    in.rule.what = "on the p2p path frames_in is the colour engine's memory";
    in.rule.alternative = "or take path: bounce";
  } else {
    in.rule.what = "on the bounce path frames_in is process memory";
    in.rule.alternative = "or take path: p2p";
  }
  PlaceableRegion out{"frames_out", params.process, slots.framesOutBytes(params), {}};
  out.rule.what = "frames_out is process memory the engine writes";
  out.rule.users = "the engine writes it, the chain checks it";
  return {in, out};
}

CameraChain::CameraChain(Platform& platform, const CameraChainParams& params)
    : params_(params),
      path_(params.path),
      stats_("workload"),
      count_(stats_.counter("frames", "frames", "frames converted and handled")),
      exact_(stats_.counter("frames_exact", "frames",
                            "frames equal to the reference transform, pixel for pixel")),
      mismatched_(stats_.counter("frames_mismatched", "frames", "frames with a pixel off the reference")),
      failed_(stats_.counter("frames_failed", "frames", "frames whose camera or engine DMA failed")),
      outBytes_(stats_.counter("out_bytes", "B", "corrected bytes stored in process memory")),
      latency_(stats_.distribution("latency", "ps", "first pixel read out -> last corrected byte stored")),
      convert_(stats_.distribution("convert_latency", "ps",
                                   "last camera byte stored -> last corrected byte stored")),
      revokes_(stats_.counter("revokes", "events", "revoke events injected at the exporter")),
      revokedPages_(stats_.counter("revoked_pages", "pages", "importer-held pages the revoke events took")),
      windowMoves_(stats_.counter("window_moves", "windows", "BAR windows moved by the revoke events")),
      fallbacks_(stats_.counter("p2p_fallbacks", "runs", "p2p declined, the frames took the bounce path")),
      refusedJobs_(
          stats_.counter("jobs_refused", "frames",
                         "frames the engine's driver refused (the output buffer could not be mapped)")) {
  camera_ = dynamic_cast<CameraPlatformDevice*>(&platform.device(params.camera));
  engine_ = dynamic_cast<ColourEnginePlatformDevice*>(&platform.device(params.engine));
  if (!camera_) fail("camera", "device \"" + params.camera + "\" is not a camera");
  if (!engine_) fail("engine", "device \"" + params.engine + "\" is not a colour_engine");
  if (params.outBuffers == 0) fail("out_buffers", "at least one output buffer");
  mm_ = &platform.process(params.process);
  const CameraParams& cp = cameraParams();
  const CameraChainSlots slots = cameraChainSlots(cp, params);
  inSlot_ = slots.in;
  outSlot_ = slots.out;
  mapBuffers(platform);
  giveCameraBuffers();
  engine_->driver().setTransform(params.transform);
  scratch_.resize(outSlot_);
  camera_->onFrame([this](const CameraCompletion& c) { onFrame(c); });
  engine_->onJob([this](const ColourCompletion& c) { onJob(c); });
}

void CameraChain::mapBuffers(const Platform& platform) {
  const std::uint64_t inBytes = 2 * inSlot_, outBytes = params_.outBuffers * outSlot_;
  // Two input buffers (the camera fills one while the engine reads the other) and the output
  // ring: each in its placed mapping, the others in one anonymous arena of their own.
  const std::vector<PlaceableRegion> regions = cameraChainPlaceable(cameraParams(), params_);
  checkPlacement(platform, params_.place, regions);
  const std::optional<Va> inAt = placedRegion(platform, params_.place, regions[0]);
  const std::optional<Va> outAt = placedRegion(platform, params_.place, regions[1]);
  const bool p2p = params_.path == CameraChainPath::P2p;
  if (p2p && inBytes > engine_->hardware().params().deviceMemoryBytes)
    fail("path", "two camera frames do not fit in the colour engine's device memory");
  const std::uint64_t arena = (inAt ? 0 : inBytes) + (outAt ? 0 : outBytes);
  Va a;
  if (arena > 0) {
    const VaResult r = mm_->mmap(Va(0), arena, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    if (!r.ok()) fail("process", "cannot map the buffers' arena");
    a = r.addr;
  }
  in_ = inAt ? *inAt : a;
  out_ = outAt ? *outAt : inAt ? a : a + inBytes;
  // The engine's address-space window covers both.
  const Va lo = std::min(in_, out_);
  const Va hi = std::max(in_ + inBytes, out_ + outBytes);
  if (engine_->driver().bindAddressSpace(*mm_, lo, std::uint64_t(hi - lo)) != Errno::Ok)
    fail("engine", "the colour engine refused the process's buffers");
  if (!p2p || inAt) return;  // bounce: process memory; p2p placed: the engine's file already
  file_ = engine_->driver().openFile();
  const VaResult in =
      mm_->mmap(in_, inBytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, file_, 0);  // special vma
  if (!in.ok()) fail("path", "mmap of the colour engine's memory failed");
}

void CameraChain::giveCameraBuffers() {
  if (camera_->driver().setUserBuffers(*mm_, {in_, in_ + inSlot_}) == Errno::Ok) return;
  if (path_ != CameraChainPath::P2p || !params_.p2pFallback)
    fail("camera", path_ == CameraChainPath::P2p
                       ? "the camera cannot map the colour engine's memory (p2p declined; p2p_fallback: true "
                         "takes the bounce path instead)"
                       : "the camera refused the input buffers");
  // The decline honoured: the input buffers become anonymous memory, the engine reads them there.
  const std::uint64_t bytes = 2 * inSlot_;
  if (mm_->munmap(in_, bytes) != Errno::Ok ||
      !mm_->mmap(in_, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED).ok())
    fail("path", "cannot replace the colour engine's memory by process memory");
  file_.reset();
  path_ = CameraChainPath::Bounce;
  ++fallbacks_;
  if (camera_->driver().setUserBuffers(*mm_, {in_, in_ + inSlot_}) != Errno::Ok)
    fail("camera", "the camera refused the input buffers");
}

CameraChain::~CameraChain() {
  camera_->onFrame(nullptr);
  engine_->onJob(nullptr);
}

const CameraParams& CameraChain::cameraParams() const {
  return camera_->hardware().params();
}

void CameraChain::start() {
  camera_->driver().start(params_.frames);
  if (params_.revokeEveryPs > 0)
    sc_core::sc_spawn(
        [this] { revokeLoop(); },
        (std::string(engine_->hardware().basename()) + "_revoker").c_str());  // "<platform>_<engine>_revoker"
}

void CameraChain::revokeLoop() {
  const sc_core::sc_time every(double(params_.revokeEveryPs), sc_core::SC_PS);
  while (!done()) {
    seqWait(every, allDone_);
    if (!done()) revokeNow();
  }
}

void CameraChain::revokeNow() {
  P2pExporter& x = engine_->driver().exporter();
  ++revokes_;
  if (trace_)
    trace_->instant(TraceCategory::Dma, "device." + params_.engine,
                    std::string("exporter ") + cameraChainRevokeName(params_.revokeKind),
                    sc_core::sc_time_stamp().value());
  const ExporterEventResult r =
      params_.revokeKind == CameraChainRevoke::Revoke ? revokeImporters(x) : moveResidentWindows(x);
  revokedPages_ += r.pagesRevoked;
  windowMoves_ += r.windowsMoved;
}

std::vector<WorkloadRegion> CameraChain::regions() const {
  return {{"frames_in", params_.process, in_, 2 * inSlot_},
          {"frames_out", params_.process, out_, params_.outBuffers * outSlot_}};
}

void CameraChain::onFrame(const CameraCompletion& c) {
  const CameraParams& cp = cameraParams();
  if (trace_)
    trace_->instant(TraceCategory::Dma, "cpu.irq", params_.camera + " frame " + std::to_string(c.frame),
                    sc_core::sc_time_stamp().value());
  if (!c.ok) {
    // The camera's driver returns the buffer marked as errored (a DMA failed: V4L2's
    // VB2_BUF_STATE_ERROR); the application drops the frame instead of converting it.
    CameraChainFrame f;
    f.cameraStartPs = c.startPs;
    f.cameraDonePs = c.donePs;
    dropped_.emplace(c.frame, f);
    settle();
    return;
  }
  ColourRequest q;
  q.srcLocal = path_ == CameraChainPath::P2p;
  q.srcOffset = c.buffer * inSlot_;
  q.srcVa = in_ + c.buffer * inSlot_;
  q.dstVa = out_ + (c.frame % params_.outBuffers) * outSlot_;
  q.width = cp.width;
  q.height = cp.height;
  q.inFormat = cp.format;
  q.outFormat = params_.outFormat;
  q.tag = c.frame;
  if (engine_->driver().process(q) == Errno::Ok) return;
  // The engine's driver refused the job (its prefault of the output buffer failed: the process
  // write-protected or unmapped it, as an ioctl would return EFAULT): the frame is dropped.
  CameraChainFrame f;
  f.cameraStartPs = c.startPs;
  f.cameraDonePs = c.donePs;
  dropped_.emplace(c.frame, f);
  ++refusedJobs_;
  settle();
}

void CameraChain::onJob(const ColourCompletion& c) {
  const std::uint64_t n = c.tag;
  HMMSIM_ASSERT(n == frames_.size(), "colour engine jobs completed out of order");
  const CameraCompletion& cam = camera_->hardware().completions().at(n);
  CameraChainFrame f;
  f.cameraStartPs = cam.startPs;
  f.cameraDonePs = cam.donePs;
  f.engineDonePs = c.donePs;
  f.ok = cam.ok && c.ok;
  f.converted = true;
  if (params_.check) checkFrame(f, n, out_ + (n % params_.outBuffers) * outSlot_);
  if (trace_) {
    const std::string frame = "frame " + std::to_string(n);
    trace_->slice(TraceCategory::Dma, "device." + params_.camera, frame, cam.startPs,
                  cam.donePs - cam.startPs);
    trace_->slice(TraceCategory::Dma, "device." + params_.engine, "convert " + frame, c.startPs,
                  c.donePs - c.startPs, f.exact ? "pixel-exact" : "");
    trace_->instant(TraceCategory::Dma, "cpu.irq", params_.engine + " " + frame,
                    sc_core::sc_time_stamp().value());
  }
  const CameraParams& cp = cameraParams();
  ++count_;
  if (params_.check) ++(f.exact ? exact_ : mismatched_);
  if (!f.ok) ++failed_;
  outBytes_ += std::uint64_t(cp.width) * cp.height * bytesPerPixel(params_.outFormat);
  latency_.sample(f.engineDonePs - f.cameraStartPs);
  convert_.sample(f.engineDonePs - f.cameraDonePs);
  frames_.push_back(f);
  settle();
}

void CameraChain::settle() {
  // A dropped frame is handled once every earlier frame is (the engine completes in order).
  for (auto it = dropped_.begin(); it != dropped_.end() && it->first == frames_.size();
       it = dropped_.erase(it)) {
    ++count_;
    ++failed_;
    frames_.push_back(it->second);
  }
  if (done()) allDone_.notify();
}

void CameraChain::checkFrame(CameraChainFrame& f, std::uint64_t frame, Va out) {
  const CameraParams& cp = cameraParams();
  const PixelFormat of = params_.outFormat;
  const std::uint32_t bpp = bytesPerPixel(of);
  const std::uint64_t bytes = std::uint64_t(cp.width) * cp.height * bpp;
  if (copyFromUser(*mm_, scratch_.data(), out, bytes) != Errno::Ok) {
    f.firstMismatch = 0;
    return;
  }
  for (std::uint32_t y = 0; y < cp.height; ++y)
    for (std::uint32_t x = 0; x < cp.width; ++x) {
      const std::uint8_t* p = &scratch_[(std::uint64_t(y) * cp.width + x) * bpp];
      const Rgb want = colourReferencePixel(params_.transform, cameraPatternPixel(cp.seed, frame, x, y));
      if (loadPixel(of, p) != want || (bpp == 4 && p[3] != 0)) {
        f.firstMismatch = (long long)y * cp.width + x;
        return;
      }
    }
  f.exact = true;
}

void CameraChain::finish() {
  std::vector<std::uint64_t> lat, conv;
  std::vector<const CameraChainFrame*> converted;
  for (const CameraChainFrame& f : frames_) {
    if (!f.converted) continue;
    converted.push_back(&f);
    lat.push_back(f.engineDonePs - f.cameraStartPs);
    conv.push_back(f.engineDonePs - f.cameraDonePs);
  }
  stats_.scalar("latency_p50", "ps", "median frame latency").set(double(percentile(lat, 0.50)));
  stats_.scalar("latency_p99", "ps", "99th percentile frame latency").set(double(percentile(lat, 0.99)));
  stats_.scalar("convert_latency_p50", "ps", "median conversion latency").set(double(percentile(conv, 0.50)));
  stats_.scalar("convert_latency_p99", "ps", "99th percentile conversion latency")
      .set(double(percentile(conv, 0.99)));
  double fps = 0;
  if (converted.size() >= 2) {  // corrected frames only: a dropped frame has no output
    const double span = double(converted.back()->engineDonePs - converted.front()->engineDonePs) * 1e-12;
    fps = double(converted.size() - 1) / span;
  }
  const CameraParams& cp = cameraParams();
  const double frameBytes = double(cp.width) * cp.height * bytesPerPixel(params_.outFormat);
  stats_.scalar("fps", "frames/s", "corrected frames per second (first to last completion)").set(fps);
  stats_.scalar("throughput", "B/s", "corrected bytes per second into process memory").set(fps * frameBytes);
  ImporterDma* d = camera_->driver().importerDma();
  stats_
      .scalar("camera_faults", "faults",
              "device page faults the camera's importer took (re-faults after revokes)")
      .set(d ? double(d->stats().counterValue("device_faults")) : 0.0);
}

void CameraChain::check(const std::string& at, std::vector<std::string>& failures) const {
  if (frames_.size() != params_.frames)
    failures.push_back(at + std::to_string(frames_.size()) + " of " + std::to_string(params_.frames) +
                       " frames came through");
  for (std::size_t n = 0; n < frames_.size(); ++n) {
    const CameraChainFrame& f = frames_[n];
    if (!f.ok) {
      if (params_.allowFailedFrames) continue;  // expected; its output (if any) is not the frame's
      failures.push_back(at + "frame " + std::to_string(n) + ": a DMA failed" +
                         (f.converted ? "" : " (the camera's: the frame was dropped)"));
      if (!f.converted) continue;  // no output to compare
    }
    if (params_.check && !f.exact) {
      const std::uint32_t w = cameraParams().width;
      std::ostringstream os;
      os << at << "frame " << n << " differs from the reference transform at pixel (" << f.firstMismatch % w
         << ", " << f.firstMismatch / w << ")";
      failures.push_back(os.str());
    }
  }
}

void CameraChain::addStats(Platform& /*p*/, StatsRegistry& r) {
  r.add("workload", stats_);
  r.add("device." + params_.camera, camera_->hardware().stats());
  r.add("device." + params_.engine, engine_->hardware().stats());
  if (ImporterDma* d = camera_->driver().importerDma()) {
    r.add("device." + params_.camera + ".dma", d->stats());
    r.add("device." + params_.camera + ".mirror", d->mirror().stats());
  }
  if (ImporterDma* d = engine_->driver().importerDma()) {  // the engine's window over the buffers
    r.add("device." + params_.engine + ".dma", d->stats());
    r.add("device." + params_.engine + ".mirror", d->mirror().stats());
  }
  P2pExporter& x = engine_->driver().exporter();
  r.add("device." + params_.engine + ".p2p", x.stats());
  r.add("device." + params_.engine + ".bar", x.bar().stats());
}

}  // namespace hmmsim
