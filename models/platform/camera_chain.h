#pragma once
// The RFC's camera chain as a platform workload (issue 13's camera_chain scenario): a "camera"
// device streams frames into a "colour_engine" device, which writes the corrected frames to
// process memory. What the tests wired by hand (tests/unit/devices/camera_chain_fixture.h), on a
// Platform: the process's buffers in one anonymous arena, or in named process mappings
// (CameraChainParams::place: THP, hugetlb, file or device-file memory), bound to the engine (its
// address-space window over both buffers), the camera's completion MSI handler queuing the frame on the
// engine, the engine's handler checking the corrected frame pixel by pixel against the reference transform of
// the camera's reference pattern.
//
// Paths:
//  - P2p: the camera writes into the engine's device memory, mapped by the process as the
//    engine's special vma (the p2p map type decides whether the writes turn around in a switch or
//    cross the root complex, translated by the IOMMU);
//  - Bounce: the camera writes into anonymous process memory, the engine reads it from there.
//
// Contract: PlatformWorkload's (workload.h). The chain holds the device file; it must go before
// the Platform.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <systemc>

#include "models/devices/camera/camera_platform.h"
#include "models/devices/colour_engine/colour_engine_platform.h"
#include "models/platform/platform.h"
#include "models/platform/workload.h"
#include "sim/stats.h"
#include "sim/trace.h"

namespace hmmsim {

/// How frames reach the colour engine.
enum class CameraChainPath {
  P2p,     ///< camera -> the engine's device memory (special vma), peer to peer
  Bounce,  ///< camera -> process memory (system RAM) -> the engine reads it
};
const char* cameraChainPathName(CameraChainPath p);

/// What the exporter (the colour engine's driver) does at each injected revoke event.
enum class CameraChainRevoke {
  Revoke,  ///< revoke every importer's hold on its device memory; the BAR windows stay resident
  Move,    ///< move every resident BAR window to a free one (its importers revoked first): the
           ///< pages get new bus addresses
};
const char* cameraChainRevokeName(CameraChainRevoke r);

struct CameraChainParams {
  std::string camera = "cam0";     ///< the "camera" device's name
  std::string engine = "colour0";  ///< the "colour_engine" device's name
  std::string process = "app";     ///< the process (a ProcessDesc) whose memory gets the frames
  /// Frames captured and converted. Unit: frames. Default 8.
  std::uint64_t frames = 8;
  CameraChainPath path = CameraChainPath::P2p;  ///< default P2p
  /// The engine's matrix and LUTs; default identity.
  ColourTransform transform;
  /// Pixel format of the corrected frames in process memory; default Rgb888.
  PixelFormat outFormat = PixelFormat::Rgb888;
  /// Output buffers in process memory (a ring; each frame is checked before its slot is reused).
  /// Unit: buffers. Default 2.
  unsigned outBuffers = 2;
  /// Compare every output pixel with the reference transform. Default true.
  bool check = true;
  /// The exporter revokes its importers' mappings every this much simulated time while frames
  /// stream (MMU_NOTIFY_CLEAR over the special vma: the camera's importer drops its mappings and
  /// re-faults them). Unit: ps. Default 0 (never).
  std::uint64_t revokeEveryPs = 0;
  /// When the camera cannot map the engine's memory (the p2p map declined: map type NOT_SUPPORTED
  /// across a host bridge without p2p support, the exporter's policy), take the bounce path
  /// instead of failing, as an application that honours the decline does. Default false.
  bool p2pFallback = false;
  /// What each revoke event does. Default Revoke.
  CameraChainRevoke revokeKind = CameraChainRevoke::Revoke;
  /// Frames whose DMA fails are expected (the scenario's stats say how many, e.g. software that
  /// ignores the p2p map type): check() does not count them as failures. Frames that did come
  /// through must still be pixel-exact. Default false.
  bool allowFailedFrames = false;
  /// Mappings of `process` (ProcessDesc::memory) holding "frames_in" (bounce: any process
  /// memory; p2p: a device-file mapping of the engine) and "frames_out" (not a device file);
  /// a buffer not placed lives in the chain's own anonymous mmap. Default: none placed.
  WorkloadPlacement place;
};

/// The chain's buffer slots for a camera mode and params (page rounded): "frames_in" is two
/// input slots, "frames_out" outBuffers output slots.
struct CameraChainSlots {
  std::uint64_t in = 0;   ///< one camera frame
  std::uint64_t out = 0;  ///< one corrected frame
  std::uint64_t framesInBytes(const CameraChainParams&) const { return 2 * in; }
  std::uint64_t framesOutBytes(const CameraChainParams& p) const { return p.outBuffers * out; }
};
CameraChainSlots cameraChainSlots(const CameraParams& cp, const CameraChainParams& params);
/// The chain's placeable regions for a camera mode and params: frames_in (p2p: a device-file
/// mapping of the engine; bounce: process memory), frames_out (process memory), both written by
/// one device and read by the other (rw).
std::vector<PlaceableRegion> cameraChainPlaceable(const CameraParams& cp, const CameraChainParams& params);

/// One frame's way through the chain (absolute times, ps).
struct CameraChainFrame {
  std::uint64_t cameraStartPs = 0;  ///< first line started reading out
  std::uint64_t cameraDonePs = 0;   ///< last camera byte stored
  std::uint64_t engineDonePs = 0;   ///< last corrected byte stored
  bool ok = false;                  ///< both devices completed without DMA errors
  bool converted = false;           ///< handed to the engine (a camera DMA error drops the frame)
  bool exact = false;               ///< every pixel equals the reference (false when not checked)
  long long firstMismatch = -1;     ///< first pixel index that differs (-1: none)
};

class CameraChain final : public PlatformWorkload {
 public:
  /// Maps the buffers and wires the handlers. Throws ConfigError (file "<workload>") when a
  /// device is missing or of the wrong type, or a buffer cannot be set up.
  CameraChain(Platform& platform, const CameraChainParams& params);
  ~CameraChain() override;
  CameraChain(const CameraChain&) = delete;
  CameraChain& operator=(const CameraChain&) = delete;

  /// Starts the capture (before or during the simulation), and the exporter's revoke events when
  /// revokeEveryPs is set (a SystemC thread that ends with the last frame).
  void start() override;
  /// Records, per frame, a slice on the camera's track (first line read out -> last byte
  /// stored), one on the engine's (job start -> last corrected byte), and the interrupt handlers
  /// as instants on track "cpu.irq" (category dma). `trace` (may be null) outlives the chain.
  void setTrace(TraceSink* trace) override { trace_ = trace; }
  /// Every frame came through (the workload is over).
  bool done() const override { return frames_.size() >= params_.frames; }
  /// Frames handled, in order: converted ones, and those the camera's DMA error dropped.
  const std::vector<CameraChainFrame>& frames() const { return frames_; }
  /// Stats: frames (handled: converted or dropped), frames_exact, frames_mismatched (of the
  /// converted ones), frames_failed (a DMA failed, dropped ones included), out_bytes, latency and
  /// convert_latency (ps), and after finish(): fps, throughput, latency_p50/p99,
  /// convert_latency_p50/p99, camera_faults; p2p_fallbacks; revokes, revoked_pages, window_moves (the
  /// injected events); jobs_refused (frames the engine's driver refused: dropped, counted failed).
  StatsGroup& stats() { return stats_; }
  /// Computes the summary scalars (call after the simulation).
  void finish() override;
  /// Every frame came through, none failed (unless allowFailedFrames), each converted one
  /// pixel-exact when checked.
  void check(const std::string& at, std::vector<std::string>& failures) const override;
  /// "workload" (stats()), "device.<camera>", "device.<engine>", the camera's importer
  /// ("device.<camera>.dma", "device.<camera>.mirror"), the engine's importer over the buffers
  /// ("device.<engine>.dma", "device.<engine>.mirror") and the engine's exporter
  /// ("device.<engine>.p2p", "device.<engine>.bar").
  void addStats(Platform& p, StatsRegistry& r) override;
  /// "frames_in": the camera's two input buffers (the engine's memory, its special vma, on the
  /// p2p path; process memory on bounce); "frames_out": the output ring (process memory), both in
  /// params().process, each at the start of its placed mapping when placed.
  std::vector<WorkloadRegion> regions() const override;
  const CameraChainParams& params() const { return params_; }
  const CameraParams& cameraParams() const;
  /// The path the frames take: params().path, or Bounce after a p2p fallback.
  CameraChainPath path() const { return path_; }

 private:
  void onFrame(const CameraCompletion& c);
  void onJob(const ColourCompletion& c);
  void checkFrame(CameraChainFrame& f, std::uint64_t frame, Va out);
  /// Moves dropped frames that are next in order into frames_ (and signals the last one).
  void settle();
  /// Hands the input buffers to the camera (mapping the engine's memory on the p2p path); on a
  /// refusal with p2pFallback, replaces the special vma by anonymous memory and takes Bounce.
  void giveCameraBuffers();
  /// Places or maps the buffers (params().place), binds the engine's window over them and maps
  /// the engine's memory over frames_in on the p2p path (unless placed there already).
  void mapBuffers(const Platform& platform);
  /// The revoke events' thread: one event every revokeEveryPs until the last frame.
  void revokeLoop();
  /// One revoke event (revokeKind) by the engine's exporter.
  void revokeNow();

  CameraChainParams params_;
  CameraChainPath path_;
  CameraPlatformDevice* camera_ = nullptr;
  ColourEnginePlatformDevice* engine_ = nullptr;
  Mm* mm_ = nullptr;
  std::shared_ptr<File> file_;
  Va in_, out_;
  std::uint64_t inSlot_ = 0, outSlot_ = 0;
  std::vector<CameraChainFrame> frames_;
  std::map<std::uint64_t, CameraChainFrame> dropped_;  // by frame number, until their turn
  std::vector<std::uint8_t> scratch_;
  TraceSink* trace_ = nullptr;
  sc_core::sc_event allDone_;  // the last frame was handled
  StatsGroup stats_;
  Counter& count_;
  Counter& exact_;
  Counter& mismatched_;
  Counter& failed_;
  Counter& outBytes_;
  Distribution& latency_;
  Distribution& convert_;
  Counter& revokes_;
  Counter& revokedPages_;
  Counter& windowMoves_;
  Counter& fallbacks_;
  Counter& refusedJobs_;
};

}  // namespace hmmsim
