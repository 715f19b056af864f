#pragma once
// Colour-correction engine: the middle of the RFC's workload 4 (camera -> colour correction ->
// memory). A fabric endpoint with a DMA engine and device memory behind its BAR (where a
// producer can DMA its input frames peer to peer).
//
// What it models: per job, the engine reads a frame line by line (from its own device memory,
// or by DMA from a buffer its driver programmed), transforms every pixel, and DMA-writes the
// result line by line. The transform is real (the bytes are exact):
//     acc_c = sum_j M[c][j] * in_j                     (c, j over R, G, B; exact integers)
//     v_c   = floor((acc_c + 2^(F-1)) / 2^F)           (round half up, F = kFracBits = 12)
//     v_c   = min(max(v_c, 0), 255)                    (clamp)
//     out_c = LUT_c[v_c]                               (one 256-entry table per channel)
// with M a 3x3 matrix of signed fixed-point numbers with F fractional bits (4096 = 1.0), each
// entry in [-2^17, 2^17) (so |acc| < 2^27). Formats: RGB888 and XRGB8888 in and out
// (pixel_format.h); X is written 0.
// Timing: a pipeline of read, transform and write. The unit is a strip of `linesPerStrip` lines
// (default 1). Up to `stripsAhead` strip reads are in flight ahead of the strip being
// transformed; the transform takes width / pixelsPerSecond per line (rounded to 1 ps once) and
// starts when the strip's data arrived and the previous strip is done; the strip's write is
// issued when its transform ends. Throughput is therefore
// min(pixelsPerSecond, what the DMA paths deliver). One sync per strip (its translations at
// synchronised time); once host memory is shared with another requester (input frames a
// producer writes to system memory while the engine reads the previous one) every burst and MSI
// is issued at synchronised time (PcieDmaEngine::syncOnSharedHostMemory), so the bookings there
// do not depend on the quantum. Completion: a posted MSI write (if programmed) after the last byte is
// stored, an sc_event, a completion record and the `jobs` counter.
// The engine's own memory (localPort) is modelled as one latency plus a bandwidth with a
// busy-until time, shared by the engine's reads and writes of it; PCIe writes arriving through
// the BAR book the BAR target's own channels instead (the two are not one resource: a
// simplification, see docs/fidelity.md).
// Leaves out: 3D LUTs, gamma/degamma stages, chroma formats (YUV), scaling, tiling, a command
// ring in memory (jobs are submitted through a register stand-in), error recovery.

#include <array>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <systemc>
#include <tlm>

#include <tlm_utils/tlm_quantumkeeper.h>

#include "models/devices/common/frame_dma.h"
#include "models/devices/common/msi.h"
#include "models/devices/common/pixel_format.h"
#include "models/pcie/dma_engine.h"
#include "models/pcie/memory_target.h"
#include "sim/byte_store.h"
#include "sim/stats.h"

namespace hmmsim {

/// The engine's transform registers: a 3x3 fixed-point matrix, then a LUT per channel.
struct ColourTransform {
  static constexpr int kFracBits = 12;                  ///< F: fractional bits of M
  static constexpr std::int32_t kOne = 1 << kFracBits;  ///< 1.0 in M
  static constexpr std::int32_t kMaxAbs = 1 << 17;      ///< entries lie in [-kMaxAbs, kMaxAbs)
  /// M, row-major: row c gives output channel c (R, G, B) from inputs (R, G, B). Default identity.
  std::array<std::int32_t, 9> matrix{kOne, 0, 0, 0, kOne, 0, 0, 0, kOne};
  /// LUT per output channel (R, G, B), indexed by the clamped matrix output. Default identity.
  std::array<std::array<std::uint8_t, 256>, 3> lut = identityLut();

  static std::array<std::array<std::uint8_t, 256>, 3> identityLut();
  /// "" when valid; otherwise which entry is out of range.
  std::string check() const;
};

struct ColourEngineParams {
  /// Transform throughput. Unit: pixels/s. Default 300e6 (one pixel per clock at 300 MHz).
  double pixelsPerSecond = 300e6;
  /// Lines the engine reads, transforms and writes as one unit (a strip: one read and one write
  /// transfer). 1 = line by line; larger values trade pipeline granularity for fewer, larger
  /// transfers. Unit: lines. Default 1.
  std::uint32_t linesPerStrip = 1;
  /// Strip reads in flight ahead of the strip being transformed (0: read, then transform).
  /// Unit: strips. Default 2.
  std::uint32_t stripsAhead = 2;
  /// Device memory behind the BAR (input frame buffers). Unit: bytes. Default 64 MiB; a
  /// multiple of 2 MiB, at least the BAR aperture.
  std::uint64_t deviceMemoryBytes = 64ull << 20;
  /// Latency of an access to the engine's own memory. Unit: ps. Default 100 ns.
  std::uint64_t localLatencyPs = 100'000;
  /// Bandwidth of the engine's own memory. Unit: Gb/s. Default 409.6 (GDDR6, 32 bits at 12.8 Gb/s).
  double localBandwidthGbps = 409.6;
  /// Drop payloads: no bytes are read, transformed or written (timing-only runs). Default false.
  bool timingOnly = false;

  /// "" when valid; otherwise what is wrong, naming the field.
  std::string check() const;
};

/// One frame to convert (what the driver writes into the engine's job registers).
struct ColourJob {
  FrameDmaPort* src = nullptr;  ///< input buffer (not owned; outlives the job)
  FrameDmaPort* dst = nullptr;  ///< output buffer (not owned; outlives the job)
  std::uint32_t width = 0;      ///< pixels per line
  std::uint32_t height = 0;     ///< lines
  PixelFormat inFormat = PixelFormat::Rgb888;
  PixelFormat outFormat = PixelFormat::Rgb888;
  std::uint64_t srcStride = 0;  ///< bytes per input line; 0 = width * input bytes per pixel
  std::uint64_t dstStride = 0;  ///< bytes per output line; 0 = width * output bytes per pixel
  std::uint64_t tag = 0;        ///< returned in the completion
};

/// One finished job.
struct ColourCompletion {
  std::uint64_t tag = 0;
  std::uint64_t startPs = 0;  ///< absolute time the engine started the job
  std::uint64_t donePs = 0;   ///< absolute time the last output byte was stored
  bool ok = true;             ///< every burst completed successfully
};

/// The engine's arithmetic for one pixel written plainly (64-bit integers, explicit floor
/// division), independently of ColourPipeline's data path: the reference a converted frame is
/// checked against.
Rgb colourReferencePixel(const ColourTransform& t, Rgb in);
/// LUT curves by name: "identity", "invert" (255 - v), "gamma2" ((v^2 + 127) / 255), "limited"
/// (clamped to 16 .. 235). nullopt for another name.
std::optional<std::array<std::uint8_t, 256>> colourLutCurve(const std::string& name);
std::vector<std::string> colourLutCurveNames();
/// Named transforms: "identity"; "vivid" (a saturation boost with negative, above-one and
/// rounding-edge coefficients, row sums 1.0; LUTs R invert, G gamma2, B limited). nullopt for
/// another name.
std::optional<ColourTransform> colourTransformPreset(const std::string& name);
std::vector<std::string> colourTransformPresetNames();

/// Transforms `n` pixels from `in` (format `inF`) to `out` (format `outF`) with `t`: the engine's
/// data path (the arithmetic of the header comment, one loop per format pair).
class ColourPipeline {
 public:
  explicit ColourPipeline(const ColourTransform& t);
  void run(const std::uint8_t* in, PixelFormat inF, std::uint8_t* out, PixelFormat outF,
           std::uint32_t n) const;

 private:
  /// The loop for one (input, output) format pair: byte positions are constants.
  template <int kInBytes, int kInR, int kOutBytes, int kOutR>
  void runFormats(const std::uint8_t* in, std::uint8_t* out, std::uint32_t n) const;
  std::array<std::int32_t, 9> m_;
  std::array<std::array<std::uint8_t, 256>, 3> lut_;
};

class ColourEngine : public sc_core::sc_module {
 public:
  SC_HAS_PROCESS(ColourEngine);
  /// The hardware on a fabric endpoint: DMA engine `engine`; `bar` (may be null) is its BAR
  /// target, backed by device memory at `store` address `memBase` (deviceMemoryBytes bytes).
  ColourEngine(sc_core::sc_module_name name, const ColourEngineParams& params, PcieDmaEngine& engine,
               PcieMemoryTarget* bar, ByteStore& store, std::uint64_t memBase);

  // ---- registers --------------------------------------------------------------------------
  void setTransform(const ColourTransform& t);
  /// MSI after each job (address 0 disables it).
  void setMsi(std::uint64_t addr, std::uint32_t data);
  /// Queue a job (the doorbell). Jobs run in order.
  void submit(const ColourJob& job);
  void onCompletion(std::function<void(const ColourCompletion&)> cb) { callback_ = std::move(cb); }

  /// A port onto the engine's own memory [offset, offset + bytes) (device-local accesses).
  std::unique_ptr<FrameDmaPort> localPort(std::uint64_t offset, std::uint64_t bytes);

  const sc_core::sc_event& jobDone() const { return jobDone_; }
  const std::vector<ColourCompletion>& completions() const { return completions_; }
  const ColourEngineParams& params() const { return params_; }
  PcieDmaEngine& engine() { return engine_; }
  /// Its BAR target (nullptr if it was built without one).
  PcieMemoryTarget* bar() { return bar_; }
  ByteStore& store() { return store_; }
  std::uint64_t memBase() const { return memBase_; }
  /// Transform time of one line of `width` pixels, ps.
  std::uint64_t linePs(std::uint32_t width) const;
  /// Stats: jobs, pixels, bytes_read, bytes_written, dma_errors, msi_writes.
  StatsGroup& stats() { return stats_; }

 private:
  class LocalPort;
  void run();
  ColourCompletion process(const ColourJob& job, tlm_utils::tlm_quantumkeeper& qk);

  ColourEngineParams params_;
  PcieDmaEngine& engine_;
  PcieMemoryTarget* bar_;
  ByteStore& store_;
  std::uint64_t memBase_;
  std::uint64_t localBusyPs_ = 0;  // the own memory's busy-until time
  /// Its thread skips syncs nothing could observe (lookahead.h): as made (LookaheadScope).
  const bool lookahead_;
  ColourTransform transform_;
  std::unique_ptr<ColourPipeline> pipeline_;
  MsiMessage msi_;  ///< programmed by setMsi; not programmed: no MSI
  std::deque<ColourJob> queue_;
  sc_core::sc_event doorbell_, jobDone_;
  std::function<void(const ColourCompletion&)> callback_;
  std::vector<ColourCompletion> completions_;
  std::vector<std::uint8_t> in_, out_;
  StatsGroup stats_;
  Counter& jobs_;
  Counter& pixels_;
  Counter& bytesRead_;
  Counter& bytesWritten_;
  Counter& errors_;
  Counter& msis_;
};

}  // namespace hmmsim
