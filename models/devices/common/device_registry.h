#pragma once
// DeviceRegistry: how the platform builder (models/platform/) creates devices by type name.
//
// A device folder provides one explicit registration function, e.g.
//   void registerCamera(DeviceRegistry& r);   // models/devices/camera/camera.h
// that adds a factory under its type name ("camera"). The platform's builtin registry
// (models/platform/builtin_devices.cpp) calls every such function; there is no static
// self-registration (it vanishes from static libraries, STYLE.md).
// A factory receives a DeviceContext: the platform's shared pieces (memory, the PCI function and
// its DMA engine and BAR target, the DMA API, the p2p mapper, the checker, the interrupt
// controller, processes by name) and the device's typed parameters as a std::any holding the
// device's own params struct (empty: the defaults). Lifecycle: factories run in PlatformDesc
// order after the fabric and processes exist and before sc_start; at teardown every device's
// beforeProcessExit() runs, then the processes exit, then the devices are destroyed (reverse
// order), so a device may keep device memory that process pages still reference.

#include <any>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace hmmsim {

class DmaMapping;
class File;
class ImporterDma;
class ImporterDmaDirectory;
class InterruptController;
class Iommu;
class Mm;
class P2pChecker;
class P2pDmaMapper;
class P2pExporter;
class PciDev;
class PcieDmaEngine;
class PcieMemoryTarget;
class PhysMem;
class Topology;
class TraceSink;

/// A device instance the platform owns.
class PlatformDevice {
 public:
  explicit PlatformDevice(std::string name) : name_(std::move(name)) {}
  virtual ~PlatformDevice() = default;
  PlatformDevice(const PlatformDevice&) = delete;
  PlatformDevice& operator=(const PlatformDevice&) = delete;
  const std::string& name() const { return name_; }
  /// Teardown, first step: give back what the device holds in process address spaces (close
  /// handles, destroy importers) before the processes exit. Default: nothing.
  virtual void beforeProcessExit() {}
  /// The exporter half of its driver (its BAR windows onto device memory), or nullptr: what a
  /// scenario script's exporter events (revoke, move_windows, bar_pressure, device_reset) act on.
  virtual P2pExporter* p2pExporter() { return nullptr; }
  /// Its importer data path (device MMU over a process range) once it exists, or nullptr: what a
  /// scenario script's `misbehave` switches.
  virtual ImporterDma* importerDma() { return nullptr; }
  /// Opens its device file (what a process mmaps: a special vma onto device memory at offset 0),
  /// or nullptr when it has none: what a scenario's `device-file` process mapping maps.
  virtual std::shared_ptr<File> openDeviceFile() { return nullptr; }

 private:
  std::string name_;
};

/// What a factory gets from the platform. References stay valid for the platform's lifetime.
struct DeviceContext {
  std::string name;                                ///< the instance name ("cam0")
  const std::any* params;                          ///< the device's params struct, or an empty any (defaults)
  PhysMem& physMem;                                ///< the one byte store
  Topology& topology;                              ///< the enumerated PCIe topology
  PciDev* pci;                                     ///< the endpoint's function 0 (nullptr: not on PCIe)
  PcieDmaEngine* engine;                           ///< its DMA engine (nullptr: not on PCIe)
  PcieMemoryTarget* bar;                           ///< its BAR target (nullptr: none)
  Iommu& iommu;                                    ///< the IOMMU
  DmaMapping& dma;                                 ///< the DMA API (the device is attached to it)
  P2pDmaMapper& mapper;                            ///< pci_p2pdma_map_type + dma_map_resource
  P2pChecker& checker;                             ///< the RFC checker
  ImporterDmaDirectory& directory;                 ///< rule 3 at BAR targets (ImporterDma)
  InterruptController* irq;                        ///< MSI delivery to CPU driver threads (nullptr: none)
  std::function<Mm&(const std::string&)> process;  ///< a process by name (asserts it exists)
  /// The run's timeline trace (nullptr: not traced): a device hands it to the parts that record
  /// events (its exporter's BAR manager; importers find it on their DMA engine, engine->timelineTrace()).
  TraceSink* trace = nullptr;
  /// The SystemC basename for the device's hardware module ("<platform>_<name>", no '.'): unique
  /// per device instance among the platforms of one simulation, as SystemC names must be (a
  /// second "gpu0" module would draw W505 "object already exists" and be renamed). Stats and
  /// messages keep `name`, and so does each driver: it is given `name` for what the user sees
  /// (its exporter, its importer "<name>.dma", its device file "/dev/<name>"). Every hardware
  /// module of a device type (GPU, NIC, NVMe, camera, colour engine) takes this name.
  std::string moduleName;
  /// The device's params of type P, or P{} when none were given. A params of another type is a
  /// caller bug (asserted with the device's name).
  template <class P>
  P paramsAs() const;
};

using DeviceFactory = std::function<std::unique_ptr<PlatformDevice>(DeviceContext& ctx)>;

class DeviceRegistry {
 public:
  /// Adds type `type` (unique; a duplicate is a simulator bug) with a one-line description.
  void add(const std::string& type, const std::string& doc, DeviceFactory factory);
  /// add() for a device class constructed from its DeviceContext alone (what most types are).
  template <class Device>
  void add(const std::string& type, const std::string& doc) {
    add(type, doc,
        [](DeviceContext& ctx) -> std::unique_ptr<PlatformDevice> { return std::make_unique<Device>(ctx); });
  }
  bool has(const std::string& type) const { return entries_.count(type) != 0; }
  /// Creates a device of `type`; nullptr when the type is unknown (the builder reports it).
  std::unique_ptr<PlatformDevice> create(const std::string& type, DeviceContext& ctx) const;
  /// Known types, sorted, for messages and `describe`.
  std::vector<std::string> types() const;
  const std::string& doc(const std::string& type) const;

 private:
  struct Entry {
    std::string doc;
    DeviceFactory factory;
  };
  std::map<std::string, Entry> entries_;
};

/// Asserts with `device` and `type` names (out of line: no sim/assert.h in this header).
[[noreturn]] void badDeviceParams(const std::string& device, const char* type);

template <class P>
P DeviceContext::paramsAs() const {
  if (params == nullptr || !params->has_value()) return P{};
  if (const P* p = std::any_cast<P>(params)) return *p;
  badDeviceParams(name, params->type().name());
}

}  // namespace hmmsim
