// The `platform:` and `workload:` sections of a scenario file → PlatformDesc and WorkloadSpec.

#include <algorithm>
#include <cmath>
#include <sstream>

#include "models/cpu_mmu/cpu_mmu_params.h"
#include "models/platform/builtin_devices.h"
#include "models/platform/device_params.h"
#include "scenarios/param_tables.h"
#include "scenarios/scenario.h"

namespace hmmsim::scenario {

namespace {

std::string joined(const std::vector<std::string>& words) {
  std::string s;
  for (const std::string& w : words) s += (s.empty() ? "" : ", ") + w;
  return s;
}

/// "...; did you mean 'x'?" or "".
std::string suggestion(const std::string& got, const std::vector<std::string>& known) {
  const std::string near = nearestWord(got, known);
  return near.empty() ? "" : "; did you mean '" + near + "'?";
}

const EndpointDesc* findEndpoint(const TopologyDesc& t, const std::string& name) {
  for (const EndpointDesc& e : t.endpoints)
    if (e.name == name) return &e;
  return nullptr;
}

/// A colour engine's device memory sits behind its exporter BAR: the BAR must exist and fit.
void checkColourEngine(const ConfigNode& n, const DeviceDesc& d, const EndpointDesc& ep) {
  const ColourEngineDeviceParams p =
      d.params.has_value() ? std::any_cast<ColourEngineDeviceParams>(d.params) : ColourEngineDeviceParams{};
  for (const BarDesc& b : ep.functions.front().bars)
    if (b.index == p.driver.exporter.bar) {
      if (b.size > p.engine.deviceMemoryBytes)
        n.fail("BAR " + std::to_string(b.index) + " of endpoint '" + ep.name +
               "' is larger than the engine's device_memory");
      return;
    }
  n.fail("a colour_engine exports its memory through BAR " + std::to_string(p.driver.exporter.bar) +
         ", which endpoint '" + ep.name + "' does not have");
}

DeviceDesc parseDevice(const ConfigNode& e, const PlatformDesc& d, const DeviceRegistry& reg) {
  e.requireKeys({"name", "type", "endpoint", "params"});
  DeviceDesc dev;
  dev.name = e.at("name").asString();
  for (const DeviceDesc& o : d.devices)
    if (o.name == dev.name) e.at("name").fail("device '" + dev.name + "' is declared twice");
  const ConfigNode type = e.at("type");
  dev.type = type.asString();
  if (!reg.has(dev.type))
    type.fail("unknown device type '" + dev.type + "' (known: " + joined(reg.types()) + ")" +
              suggestion(dev.type, reg.types()));
  const EndpointDesc* ep = nullptr;
  if (dev.type != "dmirror") {  // every other type is a PCIe endpoint
    const ConfigNode at = e.at("endpoint");
    dev.endpoint = at.asString();
    ep = findEndpoint(d.topology, dev.endpoint);
    std::vector<std::string> names;
    for (const EndpointDesc& x : d.topology.endpoints) names.push_back(x.name);
    if (!ep)
      at.fail("no endpoint '" + dev.endpoint + "' in platform.topology" + suggestion(dev.endpoint, names));
  }
  if (auto p = e.find("params")) {
    auto it = deviceParamTables().find(dev.type);
    if (it == deviceParamTables().end())
      p->fail("device type '" + dev.type +
              "' has no parameter table yet (it runs with its defaults); remove params");
    dev.params = it->second.load(*p);
  }
  if (dev.type == "colour_engine") checkColourEngine(e, dev, *ep);
  return dev;
}

/// Interrupt messages are writes to the MSI window: the platform refuses a host bridge window
/// over it (PlatformDesc::msiWindowConflict); said here at the topology's line.
void checkMsiWindow(const ConfigNode& topology, const PlatformDesc& d) {
  if (std::string e = d.msiWindowConflict(); !e.empty()) topology.fail(e);
}

}  // namespace

/// `platform:` → PlatformDesc: topology and iommu by their loaders (loadPlatformParts), RAM
/// and DRAM by their tables, devices by their types' tables; then the platform's own checks.
void parsePlatform(const ConfigNode& n, Scenario& s) {
  n.requireKeys({"topology", "iommu", "phys_mem", "dram", "quantum", "timing_only", "devices"});
  PlatformDesc d;
  loadPlatformParts(n, d);
  if (auto pm = n.find("phys_mem")) physMemParamTable().load(*pm, d.ram);
  if (auto dr = n.find("dram")) dramParamTable().load(*dr, d.dram);
  if (auto q = n.find("quantum")) {
    d.quantumPs = q->asDurationPs();
    if (d.quantumPs == 0) q->fail("expected a quantum above 0, e.g. 1us");
  }
  d.timingOnly = n.optBool("timing_only").value_or(false);
  d.seed = s.seed;
  if (n.has("topology")) {
    validateTopologyDesc(d.topology);
    checkMsiWindow(n.at("topology"), d);
  }
  if (auto devs = n.find("devices")) {
    const DeviceRegistry reg = builtinDevices();
    for (const ConfigNode& e : devs->elements()) d.devices.push_back(parseDevice(e, d, reg));
  }
  if (const std::string why = d.check(); !why.empty()) n.fail(why);
  s.platform.desc = std::move(d);
}

namespace {

std::array<std::uint8_t, 256> parseLut(const ConfigNode& n) {
  if (n.isScalar()) {
    const std::string name = n.asString();
    if (auto l = colourLutCurve(name)) return *l;
    n.fail("expected a curve (" + joined(colourLutCurveNames()) + ") or a list of 256 values; got '" + name +
           "'" + suggestion(name, colourLutCurveNames()));
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
  n.fail("expected a preset (" + joined(colourTransformPresetNames()) +
         ") or a map {preset, matrix, lut}; got '" + name + "'" +
         suggestion(name, colourTransformPresetNames()));
}

}  // namespace

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

/// `workload:` → WorkloadSpec, its device and process references checked against the platform.
void parseWorkload(const ConfigNode& n, Scenario& s) {
  if (!s.platform.desc) n.fail("a workload runs on the SystemC platform: give a platform: section");
  n.requireKeys({"camera_chain"});
  PlatformDesc& d = *s.platform.desc;
  if (auto cc = n.find("camera_chain")) {
    CameraChainParams c;
    cameraChainParamTable().load(*cc, c);
    for (const auto& [key, type] :
         {std::pair<std::string, std::string>{"camera", "camera"}, {"engine", "colour_engine"}}) {
      const std::string& name = key == "camera" ? c.camera : c.engine;
      std::vector<std::string> names;
      const DeviceDesc* found = nullptr;
      for (const DeviceDesc& x : d.devices) {
        if (x.type == type) names.push_back(x.name);
        if (x.name == name) found = &x;
      }
      const ConfigNode at = cc->has(key) ? cc->at(key) : *cc;
      if (!found || found->type != type) {
        std::string msg = "no ";
        msg.append(type).append(" device '").append(name).append("' in platform.devices");
        msg += suggestion(name, names);
        at.fail(msg);
      }
    }
    if (auto sensor = cc->find("sensor")) {  // the camera's sensor mode, by the camera's own table
      DeviceDesc& cam = *std::find_if(d.devices.begin(), d.devices.end(),
                                      [&](const DeviceDesc& x) { return x.name == c.camera; });
      CameraDeviceParams p =
          cam.params.has_value() ? std::any_cast<CameraDeviceParams>(cam.params) : CameraDeviceParams{};
      cameraSensorParamTable().load(*sensor, p.camera);
      if (const std::string why = p.camera.check(); !why.empty()) sensor->fail(why);
      cam.params = p;
    }
    if (std::none_of(d.processes.begin(), d.processes.end(),
                     [&](const ProcessDesc& p) { return p.name == c.process; }))
      d.processes.push_back(ProcessDesc{c.process, {}});
    s.workload.cameraChain = c;
  }
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
             [](CameraChainParams&, const ConfigNode&) {});  // applied to the camera in parseWorkload
    t.custom({"transform", ParamType::Table, "", "identity",
              "the engine's transform: a preset or {preset, matrix: 9 weights, lut: {r, g, b}}",
              "identity, vivid, or a map"},
             [](CameraChainParams& c, const ConfigNode& n) { c.transform = parseTransform(n); });
    t.choice("out_format", &CameraChainParams::outFormat, "pixel format of the corrected frames",
             {{"rgb888", PixelFormat::Rgb888}, {"xrgb8888", PixelFormat::Xrgb8888}});
    t.integer("out_buffers", &CameraChainParams::outBuffers, "buffers", "output ring in process memory", 1,
              64);
    t.boolean("check", &CameraChainParams::check, "compare every output pixel with the reference transform");
    return t;
  }();
  return table;
}

}  // namespace hmmsim::scenario
