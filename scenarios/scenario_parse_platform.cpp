// The `platform:` and `workload:` sections of a scenario file → PlatformDesc and WorkloadSpec.

#include <algorithm>
#include <cmath>
#include <sstream>

#include "models/cpu_mmu/cpu_mmu_params.h"
#include "models/devices/gpu/gpu_device.h"
#include "models/devices/nvme/nvme.h"
#include "models/platform/builtin_devices.h"
#include "models/platform/device_params.h"
#include "scenarios/param_tables.h"
#include "scenarios/scenario.h"
#include "scenarios/workloads.h"

namespace hmmsim::scenario {

namespace {

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

const BarDesc* findBar(const EndpointDesc& ep, int index) {
  if (ep.functions.empty()) return nullptr;
  for (const BarDesc& b : ep.functions.front().bars)
    if (b.index == index) return &b;
  return nullptr;
}

/// A GPU exposes its VRAM through one BAR: at most its VRAM, exactly it with resizable BAR.
void checkGpu(const ConfigNode& n, const DeviceDesc& d, const EndpointDesc& ep) {
  const GpuDeviceParams p =
      d.params.has_value() ? std::any_cast<GpuDeviceParams>(d.params) : GpuDeviceParams{};
  const std::string who = "gpu '" + d.name + "' on endpoint '" + ep.name + "'";
  const BarDesc* bar = findBar(ep, int(p.driver.bar));
  if (!bar)
    n.fail(who + ": no BAR " + std::to_string(p.driver.bar) + " to expose its VRAM; add one to the endpoint");
  if (p.gpu.resizableBar ? bar->size != p.gpu.vramBytes : bar->size > p.gpu.vramBytes)
    n.fail(who + ": its BAR " + std::to_string(p.driver.bar) + " (" + std::to_string(bar->size) +
           " bytes) must be " + (p.gpu.resizableBar ? "exactly" : "at most") + " its vram (" +
           std::to_string(p.gpu.vramBytes) + " bytes); change one of them");
  if (p.driver.barApertureOffset >= bar->size)
    n.fail(who + ": bar_aperture_offset (" + std::to_string(p.driver.barApertureOffset) +
           " bytes) must be below the size of its BAR " + std::to_string(p.driver.bar) + " (" +
           std::to_string(bar->size) + " bytes); lower it or enlarge the BAR");
}

/// An NVMe controller's registers, MSI-X table and CMB sit in BAR 0 (NvmeController::validate).
void checkNvme(const ConfigNode& n, const DeviceDesc& d, const EndpointDesc& ep) {
  NvmeParams p = d.params.has_value() ? std::any_cast<NvmeParams>(d.params) : NvmeParams{};
  const BarDesc* bar = findBar(ep, 0);
  if (!bar) n.fail("nvme '" + d.name + "' on endpoint '" + ep.name + "': no BAR 0 for its registers and CMB");
  p.barBytes = bar->size;
  if (const std::string why = NvmeController::validate(p); !why.empty())
    n.fail("nvme '" + d.name + "' on endpoint '" + ep.name + "' (BAR 0 of " + std::to_string(bar->size) +
           " bytes): " + why);
}

DeviceDesc parseDevice(const ConfigNode& e, const PlatformDesc& d, const DeviceRegistry& reg) {
  e.requireKeys({"name", "type", "endpoint", "params"});
  DeviceDesc dev;
  dev.name = e.at("name").asString();
  if (dev.name.empty() || dev.name.find('.') != std::string::npos)
    e.at("name").fail(
        "a device's name names its SystemC module and its stats (device.<name>.*): give one without '.'");
  for (const DeviceDesc& o : d.devices)
    if (o.name == dev.name) e.at("name").fail("device '" + dev.name + "' is declared twice");
  const ConfigNode type = e.at("type");
  dev.type = type.asString();
  if (!reg.has(dev.type))
    type.fail("unknown device type '" + dev.type + "' (known: " + joinedWords(reg.types()) + ")" +
              didYouMean(dev.type, reg.types()));
  const EndpointDesc* ep = nullptr;
  if (dev.type != "dmirror") {  // every other type is a PCIe endpoint
    const ConfigNode at = e.at("endpoint");
    dev.endpoint = at.asString();
    ep = findEndpoint(d.topology, dev.endpoint);
    std::vector<std::string> names;
    for (const EndpointDesc& x : d.topology.endpoints) names.push_back(x.name);
    if (!ep)
      at.fail("no endpoint '" + dev.endpoint + "' in platform.topology" + didYouMean(dev.endpoint, names));
  }
  if (auto p = e.find("params")) {
    auto it = deviceParamTables().find(dev.type);
    if (it == deviceParamTables().end())
      p->fail("device type '" + dev.type +
              "' has no parameter table yet (it runs with its defaults); remove params");
    dev.params = it->second.load(*p);
  }
  if (dev.type == "colour_engine") checkColourEngine(e, dev, *ep);
  if (dev.type == "gpu") checkGpu(e, dev, *ep);
  if (dev.type == "nvme") checkNvme(e, dev, *ep);
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
  n.requireKeys({"topology", "iommu", "phys_mem", "dram", "quantum", "lookahead", "timing_only", "devices"});
  PlatformDesc d;
  loadPlatformParts(n, d);
  if (auto pm = n.find("phys_mem")) physMemParamTable().load(*pm, d.ram);
  if (auto dr = n.find("dram")) dramParamTable().load(*dr, d.dram);
  if (auto q = n.find("quantum")) {
    d.quantumPs = q->asDurationPs();
    if (d.quantumPs == 0) q->fail("expected a quantum above 0, e.g. 1us");
  }
  d.lookahead = n.optBool("lookahead").value_or(true);
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

/// `workload:` → WorkloadSpec: exactly one of the kinds (workloads.h), parsed by its kind.
void parseWorkload(const ConfigNode& n, Scenario& s) {
  if (!s.platform.desc) n.fail("a workload runs on the SystemC platform: give a platform: section");
  std::vector<std::string> keys;
  for (const WorkloadKind& k : workloadKinds()) keys.push_back(k.key);
  n.requireKeys(keys);
  for (const WorkloadKind& k : workloadKinds())
    if (auto w = n.find(k.key)) {
      if (!s.workload.kind.empty())
        w->fail("one workload per scenario: this file already runs workload." + s.workload.kind +
                " (compare workloads with variants:)");
      s.workload.params = k.parse(*w, s);
      s.workload.kind = k.key;
    }
  if (s.workload.kind.empty()) n.fail("expected one workload: " + joinedWords(keys));
}

}  // namespace hmmsim::scenario
