#include "models/devices/colour_engine/colour_engine.h"

#include <algorithm>
#include <cmath>
#include <sstream>

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

ColourPipeline::ColourPipeline(const ColourTransform& t) : lut_(t.lut) {
  for (int c = 0; c < 3; ++c)
    for (int j = 0; j < 3; ++j)
      for (int v = 0; v < 256; ++v) prod_[c][j][v] = t.matrix[c * 3 + j] * v;
}

void ColourPipeline::run(const std::uint8_t* in, PixelFormat inF, std::uint8_t* out, PixelFormat outF,
                         std::uint32_t n) const {
  constexpr std::int32_t kHalf = 1 << (ColourTransform::kFracBits - 1);
  const std::uint32_t ib = bytesPerPixel(inF), ob = bytesPerPixel(outF);
  // Byte positions of R, G, B in each format (pixel_format.h).
  const int ir = inF == PixelFormat::Rgb888 ? 0 : 2, ibb = inF == PixelFormat::Rgb888 ? 2 : 0;
  const int orr = outF == PixelFormat::Rgb888 ? 0 : 2, obb = outF == PixelFormat::Rgb888 ? 2 : 0;
  for (std::uint32_t i = 0; i < n; ++i, in += ib, out += ob) {
    const std::uint8_t r = in[ir], g = in[1], b = in[ibb];
    std::uint8_t o[3];
    for (int c = 0; c < 3; ++c) {
      // acc >= 0 here, so the shift is floor division; acc < 0 means floor < 0: clamp to 0.
      const std::int32_t acc = prod_[c][0][r] + prod_[c][1][g] + prod_[c][2][b] + kHalf;
      const std::int32_t v = acc < 0 ? 0 : std::min<std::int32_t>(acc >> ColourTransform::kFracBits, 255);
      o[c] = lut_[c][v];
    }
    out[orr] = o[0];
    out[1] = o[1];
    out[obb] = o[2];
    if (ob == 4) out[3] = 0;
  }
}

// ---- parameters -----------------------------------------------------------------------------

std::string ColourEngineParams::check() const {
  std::ostringstream os;
  if (!(pixelsPerSecond > 0) || !std::isfinite(pixelsPerSecond))
    os << "pixelsPerSecond must be > 0 (got " << pixelsPerSecond << ")";
  else if (linesAhead == 0)
    os << "linesAhead must be >= 1";
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
      store_(store),
      memBase_(memBase),
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
  SC_THREAD(run);
}

void ColourEngine::setTransform(const ColourTransform& t) {
  const std::string err = t.check();
  HMMSIM_ASSERT(err.empty(), name() << ": " << err);
  transform_ = t;
  pipeline_ = std::make_unique<ColourPipeline>(t);
}

void ColourEngine::setMsi(std::uint64_t addr, std::uint32_t data) {
  msiAddr_ = addr;
  msiData_ = data;
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
  tlm_utils::tlm_quantumkeeper qk;
  qk.reset();
  for (;;) {
    while (queue_.empty()) sc_core::wait(doorbell_);
    const ColourJob job = queue_.front();
    queue_.pop_front();
    ColourCompletion c = process(job, qk);
    advanceLocalTo(c.donePs, qk);
    if (msiAddr_) {
      std::uint8_t msi[4];
      for (int i = 0; i < 4; ++i) msi[i] = static_cast<std::uint8_t>(msiData_ >> (8 * i));
      engine_.issueWrite(msiAddr_, 4, msi, qk);
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
  c.startPs = sc_core::sc_time_stamp().value();
  c.donePs = c.startPs;
  const std::uint64_t inLine = std::uint64_t(job.width) * bytesPerPixel(job.inFormat);
  const std::uint64_t outLine = std::uint64_t(job.width) * bytesPerPixel(job.outFormat);
  const std::uint64_t srcStride = job.srcStride ? job.srcStride : inLine;
  const std::uint64_t dstStride = job.dstStride ? job.dstStride : outLine;
  const std::uint32_t slots = params_.linesAhead + 1;
  if (!params_.timingOnly) {
    in_.resize(slots * inLine);
    out_.resize(outLine);
  }
  std::vector<std::uint64_t> readDone(slots, 0);
  auto slot = [&](std::uint32_t y) {
    return params_.timingOnly ? nullptr : in_.data() + (y % slots) * inLine;
  };
  std::uint32_t next = 0;  // next line to read
  std::uint64_t computeFree = c.startPs;
  const std::uint64_t transformPs = linePs(job.width);
  for (std::uint32_t y = 0; y < job.height; ++y) {
    qk.sync();  // one sync per line: the line's translations at synchronised time
    for (; next < job.height && next <= y + params_.linesAhead; ++next) {
      const DmaIssue r = job.src->read(next * srcStride, inLine, slot(next), qk);
      readDone[next % slots] = r.donePs;
      if (r.status != CplStatus::SuccessfulCompletion) {
        ++errors_;
        c.ok = false;
      }
      bytesRead_ += inLine;
    }
    computeFree = std::max(readDone[y % slots], computeFree) + transformPs;
    if (!params_.timingOnly) pipeline_->run(slot(y), job.inFormat, out_.data(), job.outFormat, job.width);
    advanceLocalTo(computeFree, qk);
    const DmaIssue w = job.dst->write(y * dstStride, outLine, params_.timingOnly ? nullptr : out_.data(), qk);
    if (w.status != CplStatus::SuccessfulCompletion) {
      ++errors_;
      c.ok = false;
    }
    c.donePs = std::max(c.donePs, w.donePs);
    bytesWritten_ += outLine;
    pixels_ += job.width;
  }
  return c;
}

}  // namespace hmmsim
