#pragma once
// The PCIe tree of a platform: host bridges (each with its root bus, its vendor/device identity
// carried by the host bridge function, and its CPU→bus memory windows), root ports, switches
// (an upstream port, an internal bus, downstream ports), endpoints with one or more functions,
// and the links between ports with their generation and width.
//
// Models: the structure the kernel sees after a scan (struct pci_bus / pci_host_bridge / pci_dev
// lists, bus->self, dev->bus, dev->subordinate) and the physical links. Bus numbers, BAR
// addresses and bridge windows are assigned by Enumerator (enumeration.h). Routing decisions
// are in routing.h, link timing in link_timing.h ("link" helper).
// Leaves out: hot-plug, bus-number reservation for hot-plug slots, I/O windows, multiple
// segments per host bridge, legacy PCI (non-express) bridges. Building takes no simulated time.
//
// Ownership: the Topology owns every bus, function, host bridge and link; references it hands
// out stay valid for its lifetime (storage is stable; nothing is ever removed).

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "models/pcie/pci_dev.h"

namespace hmmsim {

class PciHostBridge;
struct EnumAccess;

/// struct pci_bus: one bus number's worth of functions.
class PciBus {
 public:
  std::uint8_t number() const { return number_; }
  /// The bridge that produces this bus (bus->self); nullptr for a root bus.
  PciDev* self() const { return self_; }
  PciBus* parent() const { return parent_; }
  PciHostBridge& hostBridge() const { return *host_; }
  /// Functions on this bus in devfn order (bus->devices).
  const std::vector<PciDev*>& devices() const { return devices_; }
  /// Buses directly below this one, in the order their bridges appear in devices().
  const std::vector<PciBus*>& children() const { return children_; }
  bool isRoot() const { return self_ == nullptr; }
  /// False for a switch's buses until the switch is linked below a host bridge's hierarchy.
  bool hasHost() const { return host_ != nullptr; }

 private:
  friend class Topology;
  friend struct EnumAccess;
  std::uint8_t number_ = 0;
  PciDev* self_ = nullptr;
  PciBus* parent_ = nullptr;
  PciHostBridge* host_ = nullptr;
  std::vector<PciDev*> devices_;
  std::vector<PciBus*> children_;
};

/// A CPU→bus memory aperture of a host bridge (an entry of bridge->windows): CPU physical
/// [cpuBase, cpuBase+size) decodes to bus [busBase, busBase+size). bus_offset of a BAR inside
/// it = busBase - cpuBase (pci_bus_address − pci_resource_start).
struct HostWindow {
  Pa cpuBase;
  BusAddr busBase;
  std::uint64_t size = 0;  ///< bytes; 0 = window absent
  bool prefetchable = false;

  bool containsBus(BusAddr a) const { return size && a >= busBase && a - busBase < size; }
  bool containsCpu(Pa a) const { return size && a >= cpuBase && a - cpuBase < size; }
  BusAddr toBus(Pa a) const { return busBase + (a - cpuBase); }
  Pa toCpu(BusAddr a) const { return cpuBase + (a - busBase); }
};

struct HostBridgeParams {
  std::string name;               ///< unique ("hb0")
  std::uint16_t domain = 0;       ///< PCI segment (pci_domain_nr)
  std::uint8_t rootBus = 0;       ///< bus number of the root bus
  std::uint16_t vendor = 0x8086;  ///< identity of the host bridge function (00.0)
  std::uint16_t device = 0x2020;  ///< identity of the host bridge function (00.0)
  /// Whether a host bridge function exists at 00.0 on the root bus. If not, the kernel's
  /// pci_host_bridge_dev() falls back to the first function if it is a Root Port.
  bool hostFunction = true;
  /// Whether the root complex forwards peer-to-peer requests between its root ports and to
  /// other host bridges. If false, a peer request reaching it is answered with Unsupported Request.
  /// This is the hardware; the kernel's belief is the allow-list in p2pdma.h, which looks only at
  /// vendor/device. A platform where the two disagree shows what the kernel would get wrong.
  bool p2pSupported = true;
  HostWindow mem;   ///< non-prefetchable window, below 4 GiB on the bus side
  HostWindow pref;  ///< 64-bit prefetchable window
};

/// struct pci_host_bridge: a root bus and the apertures through which the CPU reaches it.
class PciHostBridge {
 public:
  const std::string& name() const { return params_.name; }
  std::uint16_t domain() const { return params_.domain; }
  PciBus& rootBus() const { return *bus_; }
  const HostWindow& mem() const { return params_.mem; }
  const HostWindow& pref() const { return params_.pref; }
  bool p2pSupported() const { return params_.p2pSupported; }
  const HostBridgeParams& params() const { return params_; }
  /// The host bridge function at 00.0 if one was declared, else nullptr.
  PciDev* hostFunction() const { return hostFunction_; }
  /// The window (mem or pref) holding bus address `a`, or nullptr.
  const HostWindow* windowForBus(BusAddr a) const;
  /// The window holding CPU physical address `a`, or nullptr.
  const HostWindow* windowForCpu(Pa a) const;

 private:
  friend class Topology;
  HostBridgeParams params_;
  PciBus* bus_ = nullptr;
  PciDev* hostFunction_ = nullptr;
};

/// A PCIe link between a downstream-facing port (Root Port or switch downstream port) and the
/// upstream-facing side below it (a switch upstream port, or function 0 of an endpoint device
/// whose other functions share the link).
struct PcieLink {
  LinkId id;
  std::string name;        ///< unique ("rp0-gpu0" or as declared)
  PciDev* up = nullptr;    ///< downstream-facing port (towards the root)
  PciDev* down = nullptr;  ///< upstream-facing function 0 (away from the root)
  unsigned gen = 3;        ///< negotiated generation, 1..6
  unsigned width = 16;     ///< negotiated lanes: 1, 2, 4, 8, 12, 16 or 32
};

/// A switch: its upstream port and downstream ports (in port-number order).
struct PcieSwitch {
  std::string name;
  PciDev* upstream = nullptr;
  std::vector<PciDev*> downstream;
};

class Topology {
 public:
  Topology() = default;
  Topology(const Topology&) = delete;
  Topology& operator=(const Topology&) = delete;
  ~Topology();

  // ---- building (HMMSIM_ASSERTs on structural misuse; user-facing validation is done by the
  // ---- description loader, topology_desc.h, before these are called)

  /// A host bridge with its root bus; adds the host bridge function at 00.0 if hostFunction.
  PciHostBridge& addHostBridge(const HostBridgeParams& p);
  /// A function on a root bus: a Root Port or a root-complex integrated endpoint.
  PciDev& addRootBusFunction(PciHostBridge& hb, PciDevParams p);
  /// A switch whose upstream port will be linked below `parentPort` by connect().
  /// Downstream ports get device numbers 0..n-1 on the internal bus in the given order.
  PcieSwitch& addSwitch(const std::string& name, PciDevParams upstream, std::vector<PciDevParams> downstream);
  /// A function of an endpoint device that will be linked by connect(); all functions passed
  /// with the same `device` key (name of the device) share the device's link.
  PciDev& addEndpointFunction(const std::string& deviceName, PciDevParams p);
  /// Links downstream-facing `port` to `below`: a switch (by its upstream port) or an endpoint
  /// device (by its name). Sets the bus structure: `below`'s functions join port's secondary bus.
  PcieLink& connect(const std::string& linkName, PciDev& port, const std::string& below, unsigned gen,
                    unsigned width);

  // ---- queries

  const std::deque<std::unique_ptr<PciDev>>& functions() const { return devs_; }
  const std::deque<PciHostBridge>& hostBridges() const { return hosts_; }
  const std::deque<PcieLink>& links() const { return links_; }
  const std::deque<PcieSwitch>& switches() const { return switches_; }
  const std::deque<PciBus>& buses() const { return buses_; }

  PciDev& dev(PciDevId id) const { return *devs_.at(id.value()); }
  const PcieLink& link(LinkId id) const { return links_.at(id.value()); }
  /// By name; nullptr if absent.
  PciDev* findDev(const std::string& name) const;
  PciHostBridge* findHostBridge(const std::string& name) const;
  const PcieSwitch* findSwitch(const std::string& name) const;
  /// The switch a switch port belongs to, or nullptr.
  const PcieSwitch* switchOf(const PciDev& port) const;
  /// Functions of the endpoint device `deviceName` in function order; empty if unknown.
  std::vector<PciDev*> endpointFunctions(const std::string& deviceName) const;
  /// pci_find_host_bridge(dev->bus).
  PciHostBridge& hostBridgeOf(const PciDev& d) const;
  /// The function with requester id `bdf`, or nullptr (valid after enumeration).
  PciDev* findByBdf(const Bdf& bdf) const;
  /// All functions in (domain, bus, devfn) order: the kernel's for_each_pci_dev order.
  std::vector<PciDev*> functionsInBdfOrder() const;
  /// The host bridge whose window holds CPU physical address `pa`, or nullptr.
  const PciHostBridge* hostBridgeForCpu(Pa pa) const;

 private:
  PciBus& newBus(PciHostBridge* hb, PciBus* parent, PciDev* self);
  void setHost(PciBus& bus, PciHostBridge* hb);
  PciDev& newDev(PciDevParams p);
  void attach(PciBus& bus, PciDev& d);

  std::deque<std::unique_ptr<PciDev>> devs_;
  std::deque<PciBus> buses_;
  std::deque<PciHostBridge> hosts_;
  std::deque<PcieLink> links_;
  std::deque<PcieSwitch> switches_;
  struct EndpointDevice {
    std::string name;
    std::vector<PciDev*> functions;
  };
  std::deque<EndpointDevice> endpoints_;
  // findByBdf's answers by Bdf::key(), checked on use: every TLP looks its requester up, bus
  // numbers change only at enumeration, and no function is ever removed.
  mutable std::unordered_map<std::uint32_t, PciDev*> byBdf_;
};

/// A readable tree of the enumerated topology, one function per line, indented by depth, like
/// `lspci -tv` merged with `lspci -v`:
///   "0000:00:01.0 rp0 [8086:2030] root port, bus 01-08, mem c0000000-c27fffff, pref ..."
///   "  0000:01:00.0 sw0 [10b5:9797] switch upstream port, ..."
///   "        0000:03:00.0 gpu0 [1af4:0001] endpoint, link gen4 x16, BAR0 c0000000 16MiB, ..."
/// ACS controls that are enabled are listed ("ACS rr,cr,uf").
std::string describeTopology(const Topology& topo);

/// pci_bus_address(dev, bar): the BAR's bus address (valid once assigned).
inline BusAddr pciBusAddress(const PciDev& d, int bar) {
  return d.bar(bar).bus;
}
/// pci_resource_start(dev, bar): the BAR's CPU physical address (valid once assigned).
inline Pa pciResourceStart(const PciDev& d, int bar) {
  return d.bar(bar).cpu;
}
/// pci_resource_len(dev, bar).
inline std::uint64_t pciResourceLen(const PciDev& d, int bar) {
  return d.bar(bar).size;
}

}  // namespace hmmsim
