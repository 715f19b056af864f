#include "models/devices/camera/camera.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "models/cpu_mmu/lookahead.h"
#include "sim/assert.h"

namespace hmmsim {

const char* pixelFormatName(PixelFormat f) {
  switch (f) {
    case PixelFormat::Rgb888:
      return "RGB888";
    case PixelFormat::Xrgb8888:
      return "XRGB8888";
  }
  return "?";
}

// ---- parameters -----------------------------------------------------------------------------

std::string CameraParams::check() const {
  std::ostringstream os;
  if (width == 0 || height == 0)
    os << "width and height must be > 0 (got " << width << "x" << height << ")";
  else if (!(fps > 0) || !std::isfinite(fps))
    os << "fps must be > 0 (got " << fps << ")";
  else if (strideBytes && strideBytes < std::uint64_t(width) * bytesPerPixel(format))
    os << "strideBytes " << strideBytes << " is less than a line ("
       << std::uint64_t(width) * bytesPerPixel(format) << " bytes)";
  else if (linesPerDma == 0)
    os << "linesPerDma must be >= 1";
  else if (linePs() == 0)
    os << "fps " << fps << " with " << height + vblankLines << " lines leaves no time per line";
  return os.str();
}

std::uint64_t CameraParams::linePs() const {
  return static_cast<std::uint64_t>(std::llround(1e12 / (fps * double(height + vblankLines))));
}

std::uint64_t CameraParams::activePs() const {
  const std::uint64_t total = std::uint64_t(width) + hblankPixels;
  return (linePs() * width + total / 2) / total;
}

// ---- the test pattern -----------------------------------------------------------------------

namespace {
// A line's hash seed: everything but x (splitmix64's finaliser over seed, frame and y).
std::uint32_t lineHash(std::uint64_t seed, std::uint64_t frame, std::uint32_t y) {
  std::uint64_t z = seed * 0x9E3779B97F4A7C15ull + frame * 0xBF58476D1CE4E5B9ull + y * 0x94D049BB133111EBull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return static_cast<std::uint32_t>(z ^ (z >> 31));
}
// One pixel from the line hash and x (a 32-bit integer hash; bytes 0, 1, 2 are R, G, B).
inline std::uint32_t pixelHash(std::uint32_t h, std::uint32_t x) {
  std::uint32_t v = (x * 0x9E3779B1u) ^ h;
  v ^= v >> 15;
  v *= 0x2C1B3C6Du;
  v ^= v >> 12;
  return v;
}
}  // namespace

Rgb cameraPatternPixel(std::uint64_t seed, std::uint64_t frame, std::uint32_t x, std::uint32_t y) {
  const std::uint32_t v = pixelHash(lineHash(seed, frame, y), x);
  return Rgb{static_cast<std::uint8_t>(v), static_cast<std::uint8_t>(v >> 8),
             static_cast<std::uint8_t>(v >> 16)};
}

namespace {
// Hashes of pixels [x0, x0 + n) of a line (vectorisable).
HMMSIM_MULTIVERSION void patternHashes(std::uint32_t h, std::uint32_t x0, std::uint32_t n,
                                       std::uint32_t* __restrict v) {
  for (std::uint32_t i = 0; i < n; ++i) v[i] = pixelHash(h, x0 + i);
}
}  // namespace

void cameraPatternLine(std::uint64_t seed, std::uint64_t frame, std::uint32_t y, std::uint32_t width,
                       PixelFormat f, std::uint8_t* out) {
  constexpr std::uint32_t kBlock = 256;
  alignas(64) std::uint32_t v[kBlock];
  const std::uint32_t h = lineHash(seed, frame, y);
  const bool rgb = f == PixelFormat::Rgb888;
  for (std::uint32_t x0 = 0; x0 < width; x0 += kBlock) {
    const std::uint32_t n = std::min(kBlock, width - x0);
    patternHashes(h, x0, n, v);
    if (rgb) {
      for (std::uint32_t i = 0; i < n; ++i, out += 3) {
        out[0] = static_cast<std::uint8_t>(v[i]);
        out[1] = static_cast<std::uint8_t>(v[i] >> 8);
        out[2] = static_cast<std::uint8_t>(v[i] >> 16);
      }
    } else {
      for (std::uint32_t i = 0; i < n; ++i, out += 4) {
        out[0] = static_cast<std::uint8_t>(v[i] >> 16);  // B
        out[1] = static_cast<std::uint8_t>(v[i] >> 8);   // G
        out[2] = static_cast<std::uint8_t>(v[i]);        // R
        out[3] = 0;                                      // X
      }
    }
  }
}

// ---- the device -----------------------------------------------------------------------------

Camera::Camera(sc_core::sc_module_name name, const CameraParams& params, PcieDmaEngine& engine)
    : sc_module(name),
      params_(params),
      engine_(engine),
      lookahead_(LookaheadQuantumKeeper::enabledByDefault()),
      stats_(std::string(this->name())),
      framesDone_(stats_.counter("frames", "frames", "frames whose last byte was stored")),
      lines_(stats_.counter("lines", "lines", "lines written by DMA")),
      bytes_(stats_.counter("bytes", "bytes", "pixel bytes written by DMA")),
      late_(stats_.counter("late_lines", "lines", "lines whose DMA started after their ready time")),
      errors_(stats_.counter("dma_errors", "lines", "lines with a burst that did not complete successfully")),
      msis_(stats_.counter("msi_writes", "writes", "MSI writes sent")) {
  const std::string err = params_.check();
  HMMSIM_ASSERT(err.empty(), "camera " << this->name() << ": " << err);
  if (!params_.timingOnly) line_.resize(params_.stride() * params_.linesPerDma);
  lineDone_.resize(params_.height);
  // Frames that bounce through system memory are read back from there by another device while
  // the next frame is written (camera.h, Timing).
  engine_.syncOnSharedHostMemory(true);
  SC_THREAD(run);
}

void Camera::setBuffers(std::vector<FrameDmaPort*> ring) {
  for (FrameDmaPort* p : ring)
    HMMSIM_ASSERT(p && p->bytes() >= params_.frameBytes(),
                  name() << ": a buffer smaller than a frame (" << params_.frameBytes() << " bytes)");
  ring_ = std::move(ring);
}

void Camera::setMsi(std::uint64_t addr, std::uint32_t data) {
  msi_.address = addr;
  msi_.data = data;
}

void Camera::start(std::uint64_t frames, std::uint64_t startPs) {
  HMMSIM_ASSERT(!started_, name() << ": started twice");
  HMMSIM_ASSERT(!ring_.empty(), name() << ": no buffers");
  started_ = true;
  frames_ = frames;
  startPs_ = startPs;
  startEvent_.notify(sc_core::SC_ZERO_TIME);
}

void Camera::run() {
  if (!started_) sc_core::wait(startEvent_);
  LookaheadQuantumKeeper qk(lookahead_);
  qk.reset();
  const std::uint64_t now = sc_core::sc_time_stamp().value();
  const std::uint64_t t0 = std::max(now, startPs_);
  for (std::uint64_t n = 0; n < frames_; ++n) {
    CameraCompletion c = captureFrame(n, t0 + n * params_.framePeriodPs(), qk);
    // Completion: after the last byte is stored (posted writes to other targets are not ordered
    // behind the data by the fabric, so the device waits for its own writes first).
    advanceLocalTo(c.donePs, qk);
    ring_[c.buffer]->drain(qk);
    if (msi_.programmed()) {
      sendMsi(engine_, msi_, qk);
      ++msis_;
    }
    qk.sync();
    ++framesDone_;
    completions_.push_back(c);
    lastLineDone_ = lineDone_;
    frameDone_.notify(sc_core::SC_ZERO_TIME);
    if (callback_) callback_(c);
  }
}

CameraCompletion Camera::captureFrame(std::uint64_t n, std::uint64_t frameStart,
                                      tlm_utils::tlm_quantumkeeper& qk) {
  CameraCompletion c;
  c.frame = n;
  c.buffer = static_cast<std::uint32_t>(n % ring_.size());
  c.startPs = frameStart;
  FrameDmaPort& buf = *ring_[c.buffer];
  const std::uint64_t lineBytes = std::uint64_t(params_.width) * bytesPerPixel(params_.format);
  const std::uint64_t stride = params_.stride();
  for (std::uint32_t y0 = 0; y0 < params_.height; y0 += params_.linesPerDma) {
    const std::uint32_t k = std::min(params_.linesPerDma, params_.height - y0);
    const std::uint64_t ready = frameStart + (y0 + k - 1) * params_.linePs() + params_.activePs();
    // Wait for the sensor: one sync per DMA, so its translations are made at synchronised time
    // (or at a time no other process acts before: lookahead.h).
    const std::uint64_t now = localNowPs(qk);
    if (now < ready)
      qk.inc(sc_core::sc_time::from_value(ready - now));
    else if (now > ready)
      late_ += k;
    syncAhead(qk);
    if (!params_.timingOnly)
      for (std::uint32_t i = 0; i < k; ++i)
        cameraPatternLine(params_.seed, n, y0 + i, params_.width, params_.format, line_.data() + i * stride);
    // The lines are contiguous in the buffer: one transfer (the last line's padding is not written).
    const std::uint8_t* data = params_.timingOnly ? nullptr : line_.data();
    const DmaIssue r = buf.write(y0 * stride, (k - 1) * stride + lineBytes, data, qk);
    if (r.status != CplStatus::SuccessfulCompletion) {
      errors_ += k;
      c.ok = false;
    }
    for (std::uint32_t i = 0; i < k; ++i) lineDone_[y0 + i] = r.donePs;
    c.donePs = std::max(c.donePs, r.donePs);
    lines_ += k;
    bytes_ += k * lineBytes;
  }
  return c;
}

}  // namespace hmmsim
