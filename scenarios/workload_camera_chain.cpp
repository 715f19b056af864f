// workload.camera_chain: the RFC's camera -> colour correction -> memory chain
// (models/platform/camera_chain.h) as a scenario workload.

#include <algorithm>
#include <cmath>

#include "models/platform/camera_chain.h"
#include "models/platform/device_params.h"
#include "scenarios/param_tables.h"
#include "scenarios/workloads.h"

namespace hmmsim::scenario {

namespace {

std::array<std::uint8_t, 256> parseLut(const ConfigNode& n) {
  if (n.isScalar()) {
    const std::string name = n.asString();
    if (auto l = colourLutCurve(name)) return *l;
    n.fail("expected a curve (" + joinedWords(colourLutCurveNames()) + ") or a list of 256 values; got '" +
           name + "'" + didYouMean(name, colourLutCurveNames()));
  }
  const std::vector<ConfigNode> v = n.elements();
  if (v.size() != 256) n.fail("expected 256 values (0 .. 255), got " + std::to_string(v.size()));
  std::array<std::uint8_t, 256> l{};
  for (std::size_t i = 0; i < 256; ++i) l[i] = static_cast<std::uint8_t>(v[i].asInt(0, 255));
  return l;
}

ColourTransform parsePreset(const ConfigNode& n) {
  const std::string name = n.asString();
  if (auto t = colourTransformPreset(name)) return *t;
  n.fail("expected a preset (" + joinedWords(colourTransformPresetNames()) +
         ") or a map {preset, matrix, lut}; got '" + name + "'" +
         didYouMean(name, colourTransformPresetNames()));
}

/// A colour transform: a preset's name, or {preset, matrix: 9 weights, lut: {r, g, b}}. Matrix
/// weights are real numbers stored in the engine's 12 fractional bits (round(w * 4096)).
ColourTransform parseTransform(const ConfigNode& n) {
  if (n.isScalar()) return parsePreset(n);
  n.requireKeys({"preset", "matrix", "lut"});
  ColourTransform t = n.has("preset") ? parsePreset(n.at("preset")) : ColourTransform{};
  if (auto m = n.find("matrix")) {
    const std::vector<ConfigNode> w = m->elements();
    if (w.size() != 9) m->fail("expected 9 weights: the R, G and B rows, each of R, G, B inputs");
    for (std::size_t i = 0; i < 9; ++i) {
      const double q = std::round(w[i].asDouble() * ColourTransform::kOne);
      if (q < -ColourTransform::kMaxAbs || q >= ColourTransform::kMaxAbs)
        w[i].fail("expected a weight in [-32, 32)");
      t.matrix[i] = static_cast<std::int32_t>(q);
    }
  }
  if (auto l = n.find("lut")) {
    l->requireKeys({"r", "g", "b"});
    const char* channels[] = {"r", "g", "b"};
    for (int c = 0; c < 3; ++c)
      if (auto x = l->find(channels[c])) t.lut[std::size_t(c)] = parseLut(*x);
  }
  return t;
}

const ParamTable<CameraChainParams>& cameraChainParamTable() {
  static const ParamTable<CameraChainParams> table = [] {
    ParamTable<CameraChainParams> t(
        "workload.camera_chain",
        "camera -> colour engine -> process memory, every frame checked pixel by pixel");
    t.text("camera", &CameraChainParams::camera, "the camera device (platform.devices)", false);
    t.text("engine", &CameraChainParams::engine, "the colour_engine device (platform.devices)", false);
    t.text("process", &CameraChainParams::process,
           "the process whose memory gets the frames (made if absent)", false);
    t.integer("frames", &CameraChainParams::frames, "frames", "frames captured and converted", 1, 1'000'000);
    t.choice("path", &CameraChainParams::path,
             "p2p: the camera writes into the engine's memory (its special vma); bounce: through RAM",
             {{"p2p", CameraChainPath::P2p}, {"bounce", CameraChainPath::Bounce}});
    t.custom({"sensor", ParamType::Table, "", "the camera's", "the camera's sensor mode for this run",
              "see camera.sensor"},
             [](CameraChainParams&, const ConfigNode&) {});  // applied to the camera in parseCameraChain
    t.custom({"transform", ParamType::Table, "", "identity",
              "the engine's transform: a preset or {preset, matrix: 9 weights, lut: {r, g, b}}",
              "identity, vivid, or a map"},
             [](CameraChainParams& c, const ConfigNode& n) { c.transform = parseTransform(n); });
    t.choice("out_format", &CameraChainParams::outFormat, "pixel format of the corrected frames",
             {{"rgb888", PixelFormat::Rgb888}, {"xrgb8888", PixelFormat::Xrgb8888}});
    t.integer("out_buffers", &CameraChainParams::outBuffers, "buffers", "output ring in process memory", 1,
              64);
    t.boolean("check", &CameraChainParams::check, "compare every output pixel with the reference transform");
    t.boolean("p2p_fallback", &CameraChainParams::p2pFallback,
              "when the p2p map of the engine's memory is declined, take the bounce path instead of failing");
    t.duration(
        "revoke_every", &CameraChainParams::revokeEveryPs,
        "the engine's exporter revokes its importers' p2p mappings this often while frames stream (0: never)",
        0, 1'000'000'000'000ull);
    t.choice("revoke_kind", &CameraChainParams::revokeKind,
             "revoke: importers drop their mappings, windows stay; move: each resident BAR window moves to a "
             "free one (new bus addresses)",
             {{"revoke", CameraChainRevoke::Revoke}, {"move", CameraChainRevoke::Move}});
    t.boolean("allow_failed_frames", &CameraChainParams::allowFailedFrames,
              "frames whose DMA fails are expected (say how many with expect stats workload.frames_failed); "
              "the frames that come through must still be exact");
    addPlaceParam(t,
                  "frames_in (bounce: process memory; p2p: a device-file mapping of the engine), frames_out");
    return t;
  }();
  return table;
}

/// The camera and engine exist with their types; the sensor mode goes to the camera's params;
/// the process is added.
std::any parseCameraChain(const ConfigNode& n, Scenario& s) {
  PlatformDesc& d = *s.platform.desc;
  CameraChainParams c;
  cameraChainParamTable().load(n, c);
  DeviceDesc& cam = requireDevice(n.has("camera") ? n.at("camera") : n, d, c.camera, "camera");
  requireDevice(n.has("engine") ? n.at("engine") : n, d, c.engine, "colour_engine");
  if (auto sensor = n.find("sensor")) {  // the camera's sensor mode, by the camera's own table
    CameraDeviceParams p =
        cam.params.has_value() ? std::any_cast<CameraDeviceParams>(cam.params) : CameraDeviceParams{};
    cameraSensorParamTable().load(*sensor, p.camera);
    if (const std::string why = p.camera.check(); !why.empty()) sensor->fail(why);
    cam.params = p;
  }
  ensureProcess(d, c.process);
  if (auto place = n.find("place")) {  // sizes from the camera's mode, kinds from the path
    const CameraDeviceParams mode =
        cam.params.has_value() ? std::any_cast<CameraDeviceParams>(cam.params) : CameraDeviceParams{};
    c.place = parsePlacement(*place, d, cameraChainPlaceable(mode.camera, c));
  }
  return c;
}

std::vector<ComparisonRow> cameraChainRows() {
  ComparisonRow revokes = statRow("revoke events", "workload.revokes", 1, 0);
  ComparisonRow faults = statRow("camera device faults", "workload.camera_faults", 1, 0);
  ComparisonRow fallbacks = statRow("p2p fallbacks to bounce", "workload.p2p_fallbacks", 1, 0);
  revokes.onlyIfNonzero = faults.onlyIfNonzero = fallbacks.onlyIfNonzero = true;
  return {{"frames pixel-exact",
           [](const RunResult& r) {
             return fixedText(statOf(r, "workload.frames_exact"), 0) + "/" +
                    fixedText(statOf(r, "workload.frames"), 0);
           }},
          statRow("fps", "workload.fps", 1, 2),
          statRow("throughput (MB/s)", "workload.throughput", 1e6, 1),
          statRow("frame latency p50 (us)", "workload.latency_p50", 1e6, 1),
          statRow("frame latency p99 (us)", "workload.latency_p99", 1e6, 1),
          statRow("convert latency p50 (us)", "workload.convert_latency_p50", 1e6, 1),
          revokes,
          faults,
          fallbacks};
}

}  // namespace

WorkloadKind cameraChainWorkloadKind() {
  WorkloadKind k;
  k.key = "camera_chain";
  k.table = &cameraChainParamTable();
  k.parse = parseCameraChain;
  k.make = [](Platform& p, const std::any& params) -> std::unique_ptr<PlatformWorkload> {
    return std::make_unique<CameraChain>(p, std::any_cast<const CameraChainParams&>(params));
  };
  k.summary = [](const std::any& params) {
    const auto& c = std::any_cast<const CameraChainParams&>(params);
    return "camera_chain " + c.camera + " -> " + c.engine + " -> " + c.process + ", " +
           std::to_string(c.frames) + " frame(s), " + cameraChainPathName(c.path);
  };
  k.regions = [](const std::any& params) {
    const auto& c = std::any_cast<const CameraChainParams&>(params);
    return RegionNames{{"frames_in", c.process}, {"frames_out", c.process}};
  };
  k.rows = cameraChainRows();
  return k;
}

}  // namespace hmmsim::scenario
