#pragma once
// Camera: an image sensor with a PCIe DMA engine (a capture card / MIPI bridge on a fabric
// endpoint), the producer of the RFC's workload 4 (camera -> colour correction -> memory).
//
// What it models: a progressive sensor with a pixel clock fixed by the frame geometry
// (width + hblank) x (height + vblank) x fps, as in CEA-861 video timing. Line y of frame n has
// been read out of the sensor at
//     start + n * framePeriod + y * lineTime + activeTime,
// lineTime = framePeriod / (height + vblank), activeTime = lineTime * width / (width + hblank),
// and is then written by DMA to the frame's buffer at offset y * stride (the device has a line
// buffer, not a frame buffer). Frames go round a ring of buffers the driver gave (frame n to
// buffer n mod ring size). When the last line of a frame has been stored, the camera signals
// completion: a posted MSI write of (msiAddress, msiData) if the driver programmed one, an
// sc_event, a completion record (frame, time) and the `frames` counter.
// The picture is a deterministic test pattern: pixel (x, y) of frame n is
// cameraPatternPixel(seed, n, x, y), a hash of the four, so any pixel of any frame can be
// recomputed and checked (cameraPatternLine is the device's fast path for a whole line).
// Timing: one sync per line (the device waits for its sensor); once host memory is shared with
// another requester (frames that bounce through system memory, read back by the next device
// while the camera writes the next frame) every burst and MSI is issued at synchronised time
// (PcieDmaEngine::syncOnSharedHostMemory), so the two devices' bookings there do not depend on the
// quantum. A line's bursts are issued at its ready time in order (with linesPerDma > 1, a group of lines at
// its last line's ready time); a line whose DMA cannot start by its ready time (the previous line's bursts
// still queued) is counted in `late_lines` and written anyway (the line buffer is deep enough; lines are
// never dropped). Frame period, line time and blanking are exact to 1 ps per line (the line time is rounded
// to whole picoseconds once). Leaves out: exposure, rolling-shutter skew, Bayer data and demosaicing (the
// sensor delivers RGB), interlace, line-buffer overflow, ISP statistics, V4L2's buffer queue semantics (the
// ring is fixed at start).

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <systemc>
#include <tlm>

#include <tlm_utils/tlm_quantumkeeper.h>

#include "models/devices/common/frame_dma.h"
#include "models/devices/common/msi.h"
#include "models/devices/common/pixel_format.h"
#include "models/pcie/dma_engine.h"
#include "sim/stats.h"

namespace hmmsim {

struct CameraParams {
  /// Active pixels per line. Unit: pixels. Default 1920.
  std::uint32_t width = 1920;
  /// Active lines per frame. Unit: lines. Default 1080.
  std::uint32_t height = 1080;
  /// Memory layout of a pixel in the buffers. Default Rgb888.
  PixelFormat format = PixelFormat::Rgb888;
  /// Frames per second. Unit: 1/s. Default 60.
  double fps = 60.0;
  /// Horizontal blanking: pixel clocks per line besides the active ones. Unit: pixel clocks.
  /// Default 280 (CEA-861 1080p60: 2200 clocks per line).
  std::uint32_t hblankPixels = 280;
  /// Vertical blanking: line times per frame besides the active lines. Unit: lines. Default 45
  /// (CEA-861 1080p60: 1125 lines per frame).
  std::uint32_t vblankLines = 45;
  /// Bytes from one line's start to the next in a buffer; 0 = width * bytes per pixel. Unit:
  /// bytes. Default 0.
  std::uint64_t strideBytes = 0;
  /// Seed of the test pattern. Default 1.
  std::uint64_t seed = 1;
  /// Lines the device collects in its line buffer before it DMAs them as one transfer (the last
  /// transfer of a frame may hold fewer). 1 = every line as soon as it is read out; larger
  /// values trade the lines' landing times (up to linesPerDma - 1 line times later) for fewer,
  /// larger transfers. Unit: lines. Default 1.
  std::uint32_t linesPerDma = 1;
  /// Drop payloads: the DMA carries no pixel data and no pattern is generated (timing-only
  /// runs). Default false.
  bool timingOnly = false;

  /// "" when valid; otherwise what is wrong, naming the field.
  std::string check() const;
  /// Bytes per line in a buffer (strideBytes, or width * bytes per pixel).
  std::uint64_t stride() const {
    return strideBytes ? strideBytes : std::uint64_t(width) * bytesPerPixel(format);
  }
  /// Bytes of one frame buffer: stride * height.
  std::uint64_t frameBytes() const { return stride() * height; }
  /// Line time, ps: 1e12 / (fps * (height + vblank)), rounded to the nearest picosecond.
  std::uint64_t linePs() const;
  /// Frame period, ps: linePs() * (height + vblank).
  std::uint64_t framePeriodPs() const { return linePs() * (height + vblankLines); }
  /// Read-out time of a line's active pixels, ps: linePs() * width / (width + hblank).
  std::uint64_t activePs() const;
};

/// The test pattern: pixel (x, y) of frame `frame` for `seed` (the reference function).
Rgb cameraPatternPixel(std::uint64_t seed, std::uint64_t frame, std::uint32_t x, std::uint32_t y);
/// Line y of frame `frame`, `width` pixels in format `f`, into `out` (width * bytesPerPixel(f)
/// bytes): the device's fast path, equal to storing cameraPatternPixel for every x.
void cameraPatternLine(std::uint64_t seed, std::uint64_t frame, std::uint32_t y, std::uint32_t width,
                       PixelFormat f, std::uint8_t* out);

/// One completed frame.
struct CameraCompletion {
  std::uint64_t frame = 0;    ///< frame number, from 0
  std::uint32_t buffer = 0;   ///< ring index of the buffer it went to
  std::uint64_t startPs = 0;  ///< absolute time the frame's first line started reading out
  std::uint64_t donePs = 0;   ///< absolute time its last byte was stored
  bool ok = true;             ///< every burst completed successfully
};

class Camera : public sc_core::sc_module {
 public:
  SC_HAS_PROCESS(Camera);
  /// The camera's hardware on a fabric endpoint whose DMA engine is `engine` (not owned).
  Camera(sc_core::sc_module_name name, const CameraParams& params, PcieDmaEngine& engine);

  // ---- registers the driver programs ----------------------------------------------------
  /// The ring of frame buffers (not owned; each at least frameBytes()). Before start().
  void setBuffers(std::vector<FrameDmaPort*> ring);
  /// MSI: after a frame's last byte is stored, a posted 4-byte write of `data` to bus address
  /// `addr` (0 = MSI disabled, the default).
  void setMsi(std::uint64_t addr, std::uint32_t data);
  /// Capture `frames` frames, the first one starting to read out at absolute time `startPs`
  /// (or now, if later). Call once, before or during the simulation.
  void start(std::uint64_t frames, std::uint64_t startPs = 0);
  /// Called at each completion, in the camera's thread at the completion's time (driver's
  /// interrupt handler stand-in until the platform delivers MSIs to a CPU). Optional.
  void onCompletion(std::function<void(const CameraCompletion&)> cb) { callback_ = std::move(cb); }

  // ---- what tests and drivers observe -----------------------------------------------------
  /// Notified at each frame completion's time.
  const sc_core::sc_event& frameDone() const { return frameDone_; }
  const std::vector<CameraCompletion>& completions() const { return completions_; }
  /// Absolute time each line of the last completed frame was stored, ps (height entries).
  const std::vector<std::uint64_t>& lastFrameLineDone() const { return lastLineDone_; }
  const CameraParams& params() const { return params_; }
  PcieDmaEngine& engine() { return engine_; }
  /// Stats: frames, lines, bytes, late_lines, dma_errors, msi_writes.
  StatsGroup& stats() { return stats_; }

 private:
  void run();
  /// Read out and DMA one frame; returns its completion.
  CameraCompletion captureFrame(std::uint64_t n, std::uint64_t frameStart, tlm_utils::tlm_quantumkeeper& qk);

  CameraParams params_;
  PcieDmaEngine& engine_;
  std::vector<FrameDmaPort*> ring_;
  MsiMessage msi_;  ///< programmed by setMsi; not programmed: no MSI
  std::uint64_t frames_ = 0, startPs_ = 0;
  bool started_ = false;
  /// Its thread skips syncs nothing could observe (lookahead.h): as made (LookaheadScope).
  const bool lookahead_;
  sc_core::sc_event startEvent_, frameDone_;
  std::function<void(const CameraCompletion&)> callback_;
  std::vector<CameraCompletion> completions_;
  std::vector<std::uint64_t> lastLineDone_, lineDone_;
  std::vector<std::uint8_t> line_;
  StatsGroup stats_;
  Counter& framesDone_;
  Counter& lines_;
  Counter& bytes_;
  Counter& late_;
  Counter& errors_;
  Counter& msis_;
};

}  // namespace hmmsim
