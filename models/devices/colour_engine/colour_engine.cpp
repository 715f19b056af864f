#include "models/devices/colour_engine/colour_engine.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "models/cpu_mmu/lookahead.h"
#include "sim/assert.h"

namespace hmmsim {

// ---- transform ------------------------------------------------------------------------------

std::array<std::array<std::uint8_t, 256>, 3> ColourTransform::identityLut() {
  std::array<std::array<std::uint8_t, 256>, 3> l{};
  for (auto& c : l)
    for (int v = 0; v < 256; ++v) c[v] = static_cast<std::uint8_t>(v);
  return l;
}

std::string ColourTransform::check() const {
  std::ostringstream os;
  for (int i = 0; i < 9; ++i)
    if (matrix[i] < -kMaxAbs || matrix[i] >= kMaxAbs) {
      os << "matrix[" << i / 3 << "][" << i % 3 << "] = " << matrix[i] << " is outside [" << -kMaxAbs << ", "
         << kMaxAbs << ")";
      break;
    }
  return os.str();
}

ColourPipeline::ColourPipeline(const ColourTransform& t) : m_(t.matrix), lut_(t.lut) {}

namespace {

constexpr std::uint32_t kBlock = 256;  // pixels per pass of the planar kernel

// One output channel of the matrix stage for n planar pixels: v = clamp(floor((mr*r + mg*g + mb*b
// + 2^(F-1)) / 2^F)). acc >= 0 makes the shift a floor division; acc < 0 means the floor is
// negative: 0.
HMMSIM_MULTIVERSION void matrixChannel(std::int32_t mr, std::int32_t mg, std::int32_t mb,
                                       const std::int32_t* __restrict r, const std::int32_t* __restrict g,
                                       const std::int32_t* __restrict b, std::uint8_t* __restrict v,
                                       std::uint32_t n) {
  constexpr std::int32_t kHalf = 1 << (ColourTransform::kFracBits - 1);
  for (std::uint32_t i = 0; i < n; ++i) {
    std::int32_t acc = mr * r[i] + mg * g[i] + mb * b[i] + kHalf;
    acc = acc < 0 ? 0 : acc >> ColourTransform::kFracBits;
    v[i] = static_cast<std::uint8_t>(acc > 255 ? 255 : acc);
  }
}

}  // namespace

template <int kInBytes, int kInR, int kOutBytes, int kOutR>
void ColourPipeline::runFormats(const std::uint8_t* in, std::uint8_t* out, std::uint32_t n) const {
  constexpr int kInB = 2 - kInR, kOutB = 2 - kOutR;  // R and B swap places between the formats
  alignas(64) std::int32_t r[kBlock], g[kBlock], b[kBlock];
  alignas(64) std::uint8_t v0[kBlock], v1[kBlock], v2[kBlock];
  for (std::uint32_t done = 0; done < n; done += kBlock) {
    const std::uint32_t k = std::min(kBlock, n - done);
    for (std::uint32_t i = 0; i < k; ++i, in += kInBytes) {
      r[i] = in[kInR];
      g[i] = in[1];
      b[i] = in[kInB];
    }
    matrixChannel(m_[0], m_[1], m_[2], r, g, b, v0, k);
    matrixChannel(m_[3], m_[4], m_[5], r, g, b, v1, k);
    matrixChannel(m_[6], m_[7], m_[8], r, g, b, v2, k);
    for (std::uint32_t i = 0; i < k; ++i, out += kOutBytes) {
      out[kOutR] = lut_[0][v0[i]];
      out[1] = lut_[1][v1[i]];
      out[kOutB] = lut_[2][v2[i]];
      if (kOutBytes == 4) out[3] = 0;
    }
  }
}

void ColourPipeline::run(const std::uint8_t* in, PixelFormat inF, std::uint8_t* out, PixelFormat outF,
                         std::uint32_t n) const {
  // Byte position of R: 0 in RGB888, 2 in XRGB8888 (pixel_format.h); G is byte 1 in both.
  const bool inRgb = inF == PixelFormat::Rgb888, outRgb = outF == PixelFormat::Rgb888;
  if (inRgb && outRgb)
    runFormats<3, 0, 3, 0>(in, out, n);
  else if (inRgb)
    runFormats<3, 0, 4, 2>(in, out, n);
  else if (outRgb)
    runFormats<4, 2, 3, 0>(in, out, n);
  else
    runFormats<4, 2, 4, 2>(in, out, n);
}

// ---- parameters -----------------------------------------------------------------------------

std::string ColourEngineParams::check() const {
  std::ostringstream os;
  if (!(pixelsPerSecond > 0) || !std::isfinite(pixelsPerSecond))
    os << "pixelsPerSecond must be > 0 (got " << pixelsPerSecond << ")";
  else if (linesPerStrip == 0)
    os << "linesPerStrip must be >= 1";
  else if (deviceMemoryBytes == 0 || deviceMemoryBytes % (2ull << 20))
    os << "deviceMemoryBytes " << deviceMemoryBytes << " must be a non-zero multiple of 2 MiB";
  else if (!(localBandwidthGbps > 0))
    os << "localBandwidthGbps must be > 0 (got " << localBandwidthGbps << ")";
  return os.str();
}

// ---- the engine's own memory ----------------------------------------------------------------

class ColourEngine::LocalPort final : public FrameDmaPort {
 public:
  LocalPort(ColourEngine& e, std::uint64_t offset, std::uint64_t bytes)
      : e_(e), offset_(offset), bytes_(bytes) {}
  DmaIssue write(std::uint64_t off, std::uint64_t len, const std::uint8_t* data,
                 tlm_utils::tlm_quantumkeeper& qk) override {
    if (data) e_.store_.writeBytes(e_.memBase_ + offset_ + off, data, len);
    return charge(off, len, qk);
  }
  DmaIssue read(std::uint64_t off, std::uint64_t len, std::uint8_t* data,
                tlm_utils::tlm_quantumkeeper& qk) override {
    if (data) e_.store_.readBytes(e_.memBase_ + offset_ + off, data, len);
    return charge(off, len, qk);
  }
  std::uint64_t bytes() const override { return bytes_; }

 private:
  DmaIssue charge(std::uint64_t off, std::uint64_t len, tlm_utils::tlm_quantumkeeper& qk) {
    HMMSIM_ASSERT(off <= bytes_ && len <= bytes_ - off, "local access outside its buffer");
    const std::uint64_t start = std::max(localNowPs(qk), e_.localBusyPs_);
    e_.localBusyPs_ = start + static_cast<std::uint64_t>(
                                  std::llround(double(len) * 8000.0 / e_.params_.localBandwidthGbps));
    DmaIssue r;
    r.donePs = e_.localBusyPs_ + e_.params_.localLatencyPs;
    return r;
  }
  ColourEngine& e_;
  std::uint64_t offset_, bytes_;
};

// ---- the device -----------------------------------------------------------------------------

ColourEngine::ColourEngine(sc_core::sc_module_name name, const ColourEngineParams& params,
                           PcieDmaEngine& engine, PcieMemoryTarget* bar, ByteStore& store,
                           std::uint64_t memBase)
    : sc_module(name),
      params_(params),
      engine_(engine),
      bar_(bar),
      store_(store),
      memBase_(memBase),
      lookahead_(LookaheadQuantumKeeper::enabledByDefault()),
      pipeline_(std::make_unique<ColourPipeline>(transform_)),
      stats_(std::string(this->name())),
      jobs_(stats_.counter("jobs", "jobs", "frames converted")),
      pixels_(stats_.counter("pixels", "pixels", "pixels transformed")),
      bytesRead_(stats_.counter("bytes_read", "bytes", "input bytes read")),
      bytesWritten_(stats_.counter("bytes_written", "bytes", "output bytes written")),
      errors_(stats_.counter("dma_errors", "lines", "lines with a burst that did not complete successfully")),
      msis_(stats_.counter("msi_writes", "writes", "MSI writes sent")) {
  const std::string err = params_.check();
  HMMSIM_ASSERT(err.empty(), "colour engine " << this->name() << ": " << err);
  if (bar) bar->setBacking(&store, memBase, params_.deviceMemoryBytes);
  // Input frames in system memory are written there by their producer while the engine reads the
  // previous one (colour_engine.h, Timing).
  engine_.syncOnSharedHostMemory(true);
  SC_THREAD(run);
}

void ColourEngine::setTransform(const ColourTransform& t) {
  const std::string err = t.check();
  HMMSIM_ASSERT(err.empty(), name() << ": " << err);
  transform_ = t;
  pipeline_ = std::make_unique<ColourPipeline>(t);
}

void ColourEngine::setMsi(std::uint64_t addr, std::uint32_t data) {
  msi_.address = addr;
  msi_.data = data;
}

void ColourEngine::submit(const ColourJob& job) {
  HMMSIM_ASSERT(job.src && job.dst && job.width && job.height, name() << ": incomplete job " << job.tag);
  queue_.push_back(job);
  doorbell_.notify(sc_core::SC_ZERO_TIME);
}

std::unique_ptr<FrameDmaPort> ColourEngine::localPort(std::uint64_t offset, std::uint64_t bytes) {
  HMMSIM_ASSERT(offset <= params_.deviceMemoryBytes && bytes <= params_.deviceMemoryBytes - offset,
                name() << ": local buffer outside device memory");
  return std::make_unique<LocalPort>(*this, offset, bytes);
}

std::uint64_t ColourEngine::linePs(std::uint32_t width) const {
  return static_cast<std::uint64_t>(std::llround(double(width) * 1e12 / params_.pixelsPerSecond));
}

void ColourEngine::run() {
  LookaheadQuantumKeeper qk(lookahead_);
  qk.reset();
  for (;;) {
    while (queue_.empty()) sc_core::wait(doorbell_);
    const ColourJob job = queue_.front();
    queue_.pop_front();
    ColourCompletion c = process(job, qk);
    advanceLocalTo(c.donePs, qk);
    job.src->drain(qk);
    job.dst->drain(qk);
    if (msi_.programmed()) {
      sendMsi(engine_, msi_, qk);
      ++msis_;
    }
    qk.sync();
    ++jobs_;
    completions_.push_back(c);
    jobDone_.notify(sc_core::SC_ZERO_TIME);
    if (callback_) callback_(c);
  }
}

ColourCompletion ColourEngine::process(const ColourJob& job, tlm_utils::tlm_quantumkeeper& qk) {
  qk.sync();
  ColourCompletion c;
  c.tag = job.tag;
  c.startPs = localNowPs(qk);
  c.donePs = c.startPs;
  const std::uint64_t inLine = std::uint64_t(job.width) * bytesPerPixel(job.inFormat);
  const std::uint64_t outLine = std::uint64_t(job.width) * bytesPerPixel(job.outFormat);
  const std::uint64_t srcStride = job.srcStride ? job.srcStride : inLine;
  const std::uint64_t dstStride = job.dstStride ? job.dstStride : outLine;
  // The job in strips of K lines: strip s is lines [s*K, min((s+1)*K, height)).
  const std::uint32_t k = params_.linesPerStrip;
  const std::uint32_t strips = (job.height + k - 1) / k;
  const std::uint32_t slots = params_.stripsAhead + 1;
  if (!params_.timingOnly) {
    in_.resize(std::uint64_t(slots) * k * srcStride);
    out_.resize(std::uint64_t(k) * dstStride);
  }
  auto linesOf = [&](std::uint32_t s) { return std::min(k, job.height - s * k); };
  std::vector<std::uint64_t> readDone(slots, 0);
  auto slot = [&](std::uint32_t s) {
    return params_.timingOnly ? nullptr : in_.data() + std::uint64_t(s % slots) * k * srcStride;
  };
  std::uint32_t next = 0;  // next strip to read
  std::uint64_t computeFree = c.startPs;
  const std::uint64_t transformPs = linePs(job.width);
  for (std::uint32_t s = 0; s < strips; ++s) {
    syncAhead(qk);  // one sync per strip: its translations at synchronised time (lookahead.h)
    for (; next < strips && next <= s + params_.stripsAhead; ++next) {
      const std::uint32_t n = linesOf(next);
      const DmaIssue r =
          job.src->read(std::uint64_t(next) * k * srcStride, (n - 1) * srcStride + inLine, slot(next), qk);
      readDone[next % slots] = r.donePs;
      if (r.status != CplStatus::SuccessfulCompletion) {
        errors_ += n;
        c.ok = false;
      }
      bytesRead_ += n * inLine;
    }
    const std::uint32_t n = linesOf(s);
    computeFree = std::max(readDone[s % slots], computeFree) + n * transformPs;
    if (!params_.timingOnly)
      for (std::uint32_t i = 0; i < n; ++i)
        pipeline_->run(slot(s) + i * srcStride, job.inFormat, out_.data() + i * dstStride, job.outFormat,
                       job.width);
    advanceLocalTo(computeFree, qk);
    const DmaIssue w = job.dst->write(std::uint64_t(s) * k * dstStride, (n - 1) * dstStride + outLine,
                                      params_.timingOnly ? nullptr : out_.data(), qk);
    if (w.status != CplStatus::SuccessfulCompletion) {
      errors_ += n;
      c.ok = false;
    }
    c.donePs = std::max(c.donePs, w.donePs);
    bytesWritten_ += n * outLine;
    pixels_ += std::uint64_t(n) * job.width;
  }
  return c;
}

Rgb colourReferencePixel(const ColourTransform& t, Rgb in) {
  const std::int64_t x[3] = {in.r, in.g, in.b};
  std::uint8_t out[3];
  for (int c = 0; c < 3; ++c) {
    std::int64_t acc = 0;
    for (int j = 0; j < 3; ++j) acc += std::int64_t(t.matrix[c * 3 + j]) * x[j];
    const std::int64_t num = acc + (std::int64_t(1) << (ColourTransform::kFracBits - 1));
    const std::int64_t den = std::int64_t(1) << ColourTransform::kFracBits;
    std::int64_t v = num / den;
    if (num % den != 0 && num < 0) --v;  // floor, not truncation
    v = std::min<std::int64_t>(255, std::max<std::int64_t>(0, v));
    out[c] = t.lut[c][static_cast<std::size_t>(v)];
  }
  return Rgb{out[0], out[1], out[2]};
}

std::vector<std::string> colourLutCurveNames() {
  return {"identity", "invert", "gamma2", "limited"};
}

std::optional<std::array<std::uint8_t, 256>> colourLutCurve(const std::string& name) {
  std::array<std::uint8_t, 256> l{};
  for (int v = 0; v < 256; ++v) {
    if (name == "identity")
      l[v] = static_cast<std::uint8_t>(v);
    else if (name == "invert")
      l[v] = static_cast<std::uint8_t>(255 - v);
    else if (name == "gamma2")
      l[v] = static_cast<std::uint8_t>((v * v + 127) / 255);
    else if (name == "limited")
      l[v] = static_cast<std::uint8_t>(v < 16 ? 16 : (v > 235 ? 235 : v));
    else
      return std::nullopt;
  }
  return l;
}

std::vector<std::string> colourTransformPresetNames() {
  return {"identity", "vivid"};
}

std::optional<ColourTransform> colourTransformPreset(const std::string& name) {
  ColourTransform t;
  if (name == "identity") return t;
  if (name != "vivid") return std::nullopt;
  t.matrix = {5120, -1229, 205, -614, 4915, -205, 102, -1638, 5632};
  t.lut = {*colourLutCurve("invert"), *colourLutCurve("gamma2"), *colourLutCurve("limited")};
  return t;
}

}  // namespace hmmsim
