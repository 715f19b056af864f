// PlatformDesc: defaults, validation, and the parts loaded from YAML. See platform_desc.h.
#include "models/platform/platform_desc.h"

#include <set>
#include <sstream>

namespace hmmsim {

const char* deviceMemoryKindName(DeviceMemoryKind k) {
  switch (k) {
    case DeviceMemoryKind::Raw:
      return "raw";
    case DeviceMemoryKind::Coherent:
      return "coherent";
  }
  return "?";
}

FabricFromTopologyParams PlatformDesc::defaultFabric() {
  FabricFromTopologyParams f;
  f.dma.fidelity = PcieFidelity::PerBurst;
  return f;
}

IommuConfig PlatformDesc::defaultIommu() {
  IommuConfig c;
  c.iommu.mode = IommuMode::Translate;
  return c;
}

namespace {
/// Adds `name` to `seen`; false (and `o` says why) when empty or already there.
bool unique(std::set<std::string>& seen, const std::string& name, const std::string& what,
            std::ostringstream& o) {
  if (name.empty()) {
    o << what << ": a name is required";
    return false;
  }
  if (!seen.insert(name).second) {
    o << what << " \"" << name << "\": the name is used twice";
    return false;
  }
  return true;
}
}  // namespace

const char* mapKindName(MapKind k) {
  switch (k) {
    case MapKind::Anon:
      return "anon";
    case MapKind::SharedAnon:
      return "shared";
    case MapKind::FilePrivate:
      return "file-private";
    case MapKind::FileShared:
      return "file";
    case MapKind::DeviceFile:
      return "device-file";
    case MapKind::Hugetlb:
      return "hugetlb";
  }
  return "?";
}

std::string PlatformDesc::check() const {
  std::ostringstream o;
  if (std::string e = ram.check(); !e.empty()) return "ram: " + e;
  if (std::string e = dram.check(); !e.empty()) return "dram: " + e;
  if (std::string e = interrupts.check(); !e.empty()) return e;
  if (std::string e = msiWindowConflict(); !e.empty()) return e;
  if (quantumPs == 0) return "quantumPs must be > 0";
  std::set<std::string> procs, cpuNames, devs;
  for (const ProcessDesc& p : processes)
    if (!unique(procs, p.name, "processes", o)) return o.str();
  for (const CpuDesc& c : cpus) {
    if (!unique(cpuNames, c.name, "cpus", o)) return o.str();
    if (!procs.count(c.process)) {
      o << "cpus \"" << c.name << "\": process \"" << c.process << "\" is not in processes";
      return o.str();
    }
  }
  for (const DeviceDesc& d : devices) {
    if (!unique(devs, d.name, "devices", o)) return o.str();
    if (d.type.empty()) {
      o << "devices \"" << d.name << "\": a type is required";
      return o.str();
    }
  }
  for (const ProcessDesc& p : processes) {
    std::set<std::string> maps;
    for (const MappingDesc& m : p.memory) {
      if (!unique(maps, m.name, "processes \"" + p.name + "\" memory", o)) return o.str();
      if (m.bytes == 0 || m.bytes % kPageSize != 0) {
        o << "processes \"" << p.name << "\" memory \"" << m.name
          << "\": bytes must be a non-zero multiple of 4 KiB";
        return o.str();
      }
      if (m.kind == MapKind::DeviceFile && !devs.count(m.device)) {
        o << "processes \"" << p.name << "\" memory \"" << m.name << "\": device \"" << m.device
          << "\" is not in devices";
        return o.str();
      }
    }
  }
  std::set<std::string> placed;
  for (const DeviceMemoryDesc& m : deviceMemory)
    if (!placed.insert(m.endpoint).second) {
      o << "deviceMemory: endpoint \"" << m.endpoint << "\" has two device memories";
      return o.str();
    }
  return "";
}

std::string PlatformDesc::msiWindowConflict() const {
  const std::uint64_t lo = interrupts.msiBase, hi = lo + interrupts.msiBytes;
  for (const HostBridgeDesc& hb : topology.hostBridges)
    for (const HostWindow* w : {&hb.params.mem, &hb.params.pref})
      if (w->size && w->cpuBase.value() < hi && lo < w->cpuBase.value() + w->size) {
        std::ostringstream os;
        os << "host bridge '" << hb.params.name << "': its "
           << (w->prefetchable ? "pref_window" : "mem_window") << " covers the MSI window 0x" << std::hex
           << lo << " .. 0x" << hi
           << " (interrupts would be lost); end the window below it, e.g. mem_window: {cpu_base: 0xc0000000, "
              "size: 512MiB}";
        return os.str();
      }
  return "";
}

void loadPlatformParts(const ConfigNode& root, PlatformDesc& desc) {
  if (auto t = root.find("topology")) desc.topology = loadTopologyDesc(*t);
  if (auto i = root.find("iommu")) desc.iommu = loadIommuConfig(*i);
}

}  // namespace hmmsim
