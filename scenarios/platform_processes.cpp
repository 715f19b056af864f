// A platform scenario's `processes:` (their mm and named mappings) and a workload's `place:`
// (its buffers in those mappings). The mapping entries are the dmirror machine's region entries
// (parseRegion), with `device:` naming the platform device whose file a device-file mapping maps.

#include <algorithm>

#include "models/cpu_mmu/cpu_mmu_params.h"
#include "models/platform/device_params.h"
#include "scenarios/param_tables.h"
#include "scenarios/scenario.h"
#include "scenarios/workloads.h"

namespace hmmsim::scenario {

namespace detail {
RegionSpec parseRegionOf(const ConfigNode& n, const std::string& nameKey, const std::string& deviceKey);
}  // namespace detail

namespace {

/// Device types whose PlatformDevice::openDeviceFile gives a file to map (deviceFileSpan).
const std::vector<std::string> kDeviceFileTypes = {"colour_engine", "gpu", "nvme"};

const std::vector<std::string> kMappingKeys = {"name", "size",      "prot",   "kind",
                                               "thp",  "page_size", "device", "offset"};

/// What a device's file lets a process map: file offsets [first, first + bytes), as the device's
/// mmap checks them (P2pExporter::mmapSpecial against the memory it exports), and what they are.
struct DeviceFileSpan {
  std::uint64_t first = 0;
  std::uint64_t bytes = 0;
  std::string what;
};

/// The file of device `x` (one of kDeviceFileTypes) on platform `d`.
DeviceFileSpan deviceFileSpan(const DeviceDesc& x, const PlatformDesc& d) {
  if (x.type == "colour_engine")
    return {0, deviceParams<ColourEngineDeviceParams>(x).engine.deviceMemoryBytes, "its device memory"};
  if (x.type == "gpu") {
    const GpuDeviceParams p = deviceParams<GpuDeviceParams>(x);
    return {p.driver.vramMmapOffset, p.gpu.vramBytes, "its VRAM"};
  }
  // nvme: BAR 0 of its endpoint (checkNvme made sure it has one)
  return {0, endpointBarBytes(d, x.endpoint, 0), "its BAR 0: registers, doorbells and CMB"};
}

/// A device-file mapping's device exists and has a device file; returns it.
const DeviceDesc& checkDeviceFile(const ConfigNode& at, const PlatformDesc& d, const std::string& device) {
  std::vector<std::string> names;
  for (const DeviceDesc& x : d.devices)
    if (std::find(kDeviceFileTypes.begin(), kDeviceFileTypes.end(), x.type) != kDeviceFileTypes.end()) {
      if (x.name == device) return x;
      names.push_back(x.name);
    }
  at.fail("no device with a device file named '" + device + "' in platform.devices (devices of type " +
          joinedWords(kDeviceFileTypes) + " have one" + (names.empty() ? "" : ": " + joinedWords(names)) +
          ")" + didYouMean(device, names));
}

/// `offset:` of mapping `n` (a device-file mapping's mmap offset) into m.offset, and the mapping
/// within its device's file: a multiple of 4 KiB, [offset, offset + size) inside the file.
void parseOffset(const ConfigNode& n, const PlatformDesc& d, MappingDesc& m) {
  const std::optional<ConfigNode> o = n.find("offset");
  if (m.kind != MapKind::DeviceFile) {
    if (o)
      o->fail(std::string("offset is where a device-file mapping starts in its device's file; kind ") +
              mapKindName(m.kind) + " has none: remove offset (or take kind: device-file with a device:)");
    return;
  }
  const DeviceFileSpan f = deviceFileSpan(checkDeviceFile(n.at("device"), d, m.device), d);
  const std::uint64_t end = f.first + f.bytes;
  const std::string file = m.device + "'s device file, which maps " + sizeText(f.bytes) + " (" + f.what +
                           (f.first ? ") from offset " + sizeText(f.first) : std::string(")"));
  if (o) {
    m.offset = o->asBytes();
    if (m.offset % kPageSize != 0)
      o->fail("offset " + std::to_string(m.offset) +
              " is not a multiple of 4KiB (mmap's offset counts pages): give e.g. " +
              sizeText(m.offset / kPageSize * kPageSize));
    if (m.offset < f.first || m.offset >= end)
      o->fail("offset " + sizeText(m.offset) + " is " +
              (m.offset < f.first ? "before the start" : "past the end") + " of " + file +
              ": give an offset " + (f.first ? "from " + sizeText(f.first) + " " : "") + "below " +
              sizeText(end));
  } else {
    m.offset = f.first;
  }
  if (m.bytes > end - m.offset) {
    std::string fix = "make size at most " + sizeText(end - m.offset);
    if (o && m.bytes <= f.bytes) fix += " or offset at most " + sizeText(end - m.bytes);
    (o ? *o : n.at("size"))
        .fail("offset " + sizeText(m.offset) + " + size " + sizeText(m.bytes) + " reach past the end of " +
              file + ": " + fix);
  }
}

MappingDesc parseMapping(const ConfigNode& n, const PlatformDesc& d) {
  n.requireKeys(kMappingKeys);
  const RegionSpec r = detail::parseRegionOf(n, "name", "device");
  MappingDesc m;
  m.name = r.name;
  m.kind = r.kind;
  m.bytes = r.size;
  m.prot = r.prot;
  m.thp = r.thp;
  m.hugePageBytes = r.hugePageBytes;
  m.device = r.device;
  parseOffset(n, d, m);
  return m;
}

/// The mm's hugetlb pools hold the process's hugetlb mappings (mmap would fail with ENOMEM).
void checkHugetlbPools(const ConfigNode& n, const ProcessDesc& p, std::size_t index) {
  std::uint64_t need2m = 0, need1g = 0;
  if (p.memory.empty()) return;
  const std::vector<ConfigNode> mem = n.at("memory").elements();
  for (std::size_t i = 0; i < p.memory.size(); ++i) {
    const MappingDesc& m = p.memory[i];
    if (m.kind != MapKind::Hugetlb) continue;
    const bool big = m.hugePageBytes == (1ull << 30);
    std::uint64_t& need = big ? need1g : need2m;
    need += m.bytes / m.hugePageBytes;
    const std::uint64_t pool = big ? p.mm.hugetlbPages1G : p.mm.hugetlbPages;
    if (need > pool)
      mem[i].at("size").fail("process '" + p.name + "' has " + std::to_string(pool) + " hugetlb page(s) of " +
                             sizeText(m.hugePageBytes) + " and its hugetlb mappings need " +
                             std::to_string(need) + ": set processes[" + std::to_string(index) + "].mm." +
                             (big ? "hugetlb_pages_1g" : "hugetlb_pages") + ": " + std::to_string(need));
  }
}

}  // namespace

void parsePlatformProcesses(const std::vector<ConfigNode>& processes, Scenario& s) {
  PlatformDesc& d = *s.platform.desc;
  for (const ConfigNode& n : processes) {
    n.requireKeys({"name", "mm", "memory"});
    ProcessDesc p;
    p.name = n.at("name").asString();
    for (const ProcessDesc& q : d.processes)
      if (q.name == p.name) n.at("name").fail("process '" + p.name + "' is declared twice");
    if (auto mm = n.find("mm")) mmParamTable().load(*mm, p.mm);
    if (auto mem = n.find("memory"))
      for (const ConfigNode& e : mem->elements()) {
        p.memory.push_back(parseMapping(e, d));
        const std::string& name = p.memory.back().name;
        for (std::size_t i = 0; i + 1 < p.memory.size(); ++i)
          if (p.memory[i].name == name)
            e.at("name").fail("mapping '" + name + "' is declared twice in process '" + p.name + "'");
        for (const ProcessDesc& q : d.processes)
          for (const MappingDesc& m : q.memory)
            if (m.name == name)
              e.at("name").fail("'" + name + "' is already a mapping of process '" + q.name +
                                "' (scripts name mappings alone: names are unique across processes)");
      }
    checkHugetlbPools(n, p, d.processes.size());
    d.processes.push_back(std::move(p));
  }
}

WorkloadPlacement parsePlacement(const ConfigNode& n, const PlatformDesc& d,
                                 const std::vector<PlaceableRegion>& regions) {
  std::vector<std::string> names;
  names.reserve(regions.size());
  for (const PlaceableRegion& r : regions) names.push_back(r.name);
  n.requireKeys(names);
  WorkloadPlacement place;
  for (const auto& entry : n.entries()) {
    const std::string& region = entry.first;
    const ConfigNode& value = entry.second;
    const PlaceableRegion& r = *std::find_if(regions.begin(), regions.end(),
                                             [&](const PlaceableRegion& x) { return x.name == region; });
    const std::string mapping = value.asString();
    auto p = std::find_if(d.processes.begin(), d.processes.end(),
                          [&](const ProcessDesc& x) { return x.name == r.process; });
    std::vector<std::string> maps;
    if (p != d.processes.end())
      for (const MappingDesc& m : p->memory) maps.push_back(m.name);
    if (maps.empty())
      value.fail(region + " is in process '" + r.process +
                 "', which has no mappings: declare it under processes: with a memory: list");
    auto m = std::find_if(p->memory.begin(), p->memory.end(),
                          [&](const MappingDesc& x) { return x.name == mapping; });
    if (m == p->memory.end())
      value.fail("process '" + r.process + "' has no mapping '" + mapping +
                 "' (its mappings: " + joinedWords(maps) + ")" + didYouMean(mapping, maps));
    if (const std::string why = placementRefusal(r, m->kind, m->prot, m->device, m->offset); !why.empty())
      value.fail(why);
    if (r.bytes > m->bytes) {
      std::string msg = region;
      msg.append(" needs ").append(std::to_string(r.bytes)).append(" bytes and mapping '").append(mapping);
      msg.append("' has ").append(sizeText(m->bytes)).append(": make its size at least ");
      msg.append(std::to_string(r.bytes)).append(" (e.g. ");
      msg.append(sizeText(((r.bytes + (1ull << 20) - 1) >> 20) << 20)).append(")");
      value.fail(msg);
    }
    place[region] = mapping;
  }
  return place;
}

}  // namespace hmmsim::scenario
