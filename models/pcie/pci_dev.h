#pragma once
// A PCI function: the kernel's `struct pci_dev`, reduced to what topology, enumeration, routing
// and p2pdma need.
//
// Models: the type-0/type-1 header identity (vendor, device, class code, header type with its
// multifunction bit), the PCIe port type (host bridge function, Root Port, switch upstream and
// downstream ports, endpoint), six BARs (I/O or memory, 32/64-bit, prefetchable, power-of-two
// size, optional Resizable BAR capability), the ACS extended capability (capability bits, control
// bits SV/TB/RR/CR/UF/EC/DT, egress control vector) and, for bridges, the bus numbers and the two
// memory windows (non-prefetchable, 64-bit prefetchable) that enumeration programs.
// Leaves out: I/O windows (I/O BARs are recorded but never assigned: no modelled traffic uses
// port I/O), expansion ROMs, SR-IOV, power management, MSI. Configuration accesses take no time.
//
// A PciDev is a hmmsim::Device, so the RFC's find_parent_pci_dev() works on it: walking
// Device::parent() from any device until a PciDev is found (pciFindParentDev below).

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sim/device.h"
#include "sim/errno.h"
#include "sim/strong_types.h"

namespace hmmsim {

class PciBus;
struct PciP2pdma;
struct EnumAccess;

/// Dense id of a function inside one Topology (its creation order).
using PciDevId = Index<struct PciDevIdTag>;
/// Dense id of a PCIe link inside one Topology (its creation order).
using LinkId = Index<struct LinkIdTag>;
/// "no link" marker for LinkId fields.
inline constexpr LinkId kNoLink{~0ull};

/// PCIe port type (PCI_EXP_FLAGS_TYPE) plus the host bridge function.
enum class PciDevType {
  HostBridge,        ///< class 0x0600 function on a root bus (usually 00.0); not a port
  RootPort,          ///< PCI_EXP_TYPE_ROOT_PORT: type-1 header on a root bus
  SwitchUpstream,    ///< PCI_EXP_TYPE_UPSTREAM: type-1 header, the switch's upstream port
  SwitchDownstream,  ///< PCI_EXP_TYPE_DOWNSTREAM: type-1 header on the switch's internal bus
  Endpoint,          ///< PCI_EXP_TYPE_ENDPOINT: type-0 header
};
const char* pciDevTypeName(PciDevType t);

// ACS capability and control bits, as in include/uapi/linux/pci_regs.h (PCI_ACS_*).
inline constexpr std::uint16_t kPciAcsSv = 0x0001;  ///< Source Validation
inline constexpr std::uint16_t kPciAcsTb = 0x0002;  ///< Translation Blocking
inline constexpr std::uint16_t kPciAcsRr = 0x0004;  ///< P2P Request Redirect
inline constexpr std::uint16_t kPciAcsCr = 0x0008;  ///< P2P Completion Redirect
inline constexpr std::uint16_t kPciAcsUf = 0x0010;  ///< Upstream Forwarding
inline constexpr std::uint16_t kPciAcsEc = 0x0020;  ///< P2P Egress Control
inline constexpr std::uint16_t kPciAcsDt = 0x0040;  ///< Direct Translated P2P
inline constexpr std::uint16_t kPciAcsAll = 0x007f;

/// The ACS extended capability of one port or function.
struct AcsCap {
  bool present = false;            ///< capability implemented
  std::uint16_t cap = 0;           ///< PCI_ACS_CAP: which controls are implemented (kPciAcs* bits)
  std::uint16_t ctrl = 0;          ///< PCI_ACS_CTRL: which controls are enabled (subset of cap)
  unsigned egressVectorBits = 0;   ///< Egress Control Vector Size (0 when EC not implemented)
  std::uint32_t egressVector = 0;  ///< bit N set: peer requests towards port/function N are
                                   ///< blocked (or redirected when RR is also enabled)

  /// True if the capability is present and `bit` is enabled in the control register.
  bool enabled(std::uint16_t bit) const { return present && (ctrl & bit) != 0; }
};

/// One Base Address Register. Addresses are valid only when `assigned`.
struct PciBar {
  std::uint64_t size = 0;     ///< bytes; power of two; 0 = BAR not implemented
  bool io = false;            ///< I/O space BAR (IORESOURCE_IO); never assigned, see header
  bool is64 = false;          ///< 64-bit memory BAR (occupies this and the next BAR slot)
  bool prefetchable = false;  ///< prefetchable memory (IORESOURCE_PREFETCH)
  /// Resizable BAR capability: the sizes the function supports (powers of two, >= 1 MiB); empty
  /// when the BAR is not resizable.
  std::vector<std::uint64_t> resizableSizes;

  bool assigned = false;  ///< set by enumeration
  BusAddr bus;            ///< PCI bus address of the BAR (pci_bus_address)
  Pa cpu;                 ///< CPU physical address of the BAR (pci_resource_start)

  bool implemented() const { return size != 0; }
  /// IORESOURCE_MEM in the kernel's resource flags.
  bool isMem() const { return implemented() && !io; }
};

inline constexpr int kPciNumBars = 6;

/// A bridge memory window as programmed in a type-1 header: [base, base + size) in bus addresses.
struct BridgeWindow {
  bool enabled = false;  ///< false: base > limit in the header (window closed)
  BusAddr base;
  std::uint64_t size = 0;  ///< bytes, multiple of 1 MiB

  bool contains(BusAddr a) const { return enabled && a >= base && a - base < size; }
  BusAddr end() const { return base + size; }
};

/// Construction parameters of one function.
struct PciDevParams {
  std::string name;  ///< unique in the topology ("gpu0", "sw0.dp1")
  PciDevType type = PciDevType::Endpoint;
  std::uint16_t vendor = 0xffff;  ///< PCI vendor id
  std::uint16_t device = 0xffff;  ///< PCI device id
  std::uint32_t classCode = 0;    ///< 24-bit class code (base << 16 | sub << 8 | prog-if)
  std::uint8_t devNo = 0;         ///< device number on its bus, 0..31
  std::uint8_t fn = 0;            ///< function number, 0..7
  bool multifunction = false;     ///< header type bit 7 (set on function 0 of a multi-function device)
  unsigned portNumber = 0;        ///< Link Capabilities Port Number (egress-vector bit index for ports)
  unsigned maxLinkWidth = 16;     ///< lanes the port supports (Link Capabilities)
  unsigned maxLinkGen = 5;        ///< highest generation the port supports
  std::array<PciBar, kPciNumBars> bars{};
  AcsCap acs;
};

class PciDev : public Device {
 public:
  explicit PciDev(PciDevId id, PciDevParams params, Device* parent = nullptr);
  ~PciDev() override;

  PciDevId id() const { return id_; }
  PciDevType type() const { return type_; }
  std::uint16_t vendor() const { return vendor_; }
  std::uint16_t device() const { return device_; }
  std::uint32_t classCode() const { return classCode_; }
  bool multifunction() const { return multifunction_; }
  unsigned portNumber() const { return portNumber_; }
  unsigned maxLinkWidth() const { return maxLinkWidth_; }
  unsigned maxLinkGen() const { return maxLinkGen_; }
  /// Bridges have a type-1 header: Root Ports and switch ports.
  bool isBridge() const {
    return type_ == PciDevType::RootPort || type_ == PciDevType::SwitchUpstream ||
           type_ == PciDevType::SwitchDownstream;
  }
  /// Downstream-facing ports (Root Port, switch downstream port): they own the link below them.
  bool isDownstreamPort() const {
    return type_ == PciDevType::RootPort || type_ == PciDevType::SwitchDownstream;
  }

  /// Requester id; valid after enumeration.
  const Bdf& bdf() const { return bdf_; }
  std::uint8_t devfn() const { return static_cast<std::uint8_t>((devNo_ << 3) | fn_); }
  std::uint8_t devNo() const { return devNo_; }
  std::uint8_t fn() const { return fn_; }
  /// pci_dev_id(): bus << 8 | devfn.
  std::uint16_t pciDevId() const { return bdf_.rid(); }

  /// The bus this function sits on (dev->bus).
  PciBus* bus() const { return bus_; }
  /// For bridges: the bus behind the bridge (dev->subordinate); nullptr otherwise.
  PciBus* subordinate() const { return subordinate_; }
  /// pci_upstream_bridge(): the bridge whose secondary bus this function is on; nullptr on a
  /// root bus (root ports and the host bridge function have none).
  PciDev* upstreamBridge() const;

  const PciBar& bar(int i) const { return bars_.at(static_cast<std::size_t>(i)); }
  PciBar& bar(int i) { return bars_.at(static_cast<std::size_t>(i)); }
  const std::array<PciBar, kPciNumBars>& bars() const { return bars_; }

  /// pci_resize_resource() with the Resizable BAR capability.
  /// Returns Errno::Ok; Errno::Inval if `bar` is out of range, not resizable or `size` is not
  /// one of its supported sizes; Errno::Busy if the BAR is currently assigned (the kernel
  /// requires the resource to be released first: run Enumerator::releaseAll, resize, assign).
  Errno resizeBar(int bar, std::uint64_t size);

  const AcsCap& acs() const { return acs_; }
  /// Writes PCI_ACS_CTRL. Returns Errno::Inval (and changes nothing) if the capability is
  /// absent or `ctrl` enables a control that PCI_ACS_CAP does not implement.
  Errno setAcsCtrl(std::uint16_t ctrl);
  /// Writes the egress control vector; Errno::Inval if EC is not implemented or bits beyond the
  /// vector size are set.
  Errno setAcsEgressVector(std::uint32_t vector);
  /// pci_bridge_has_acs_redir(): ACS present and any of RR, CR, EC enabled.
  bool hasAcsRedir() const { return acs_.enabled(kPciAcsRr | kPciAcsCr | kPciAcsEc); }

  // Bridge state programmed by enumeration (type-1 header fields).
  std::uint8_t primaryBus() const { return primaryBus_; }
  std::uint8_t secondaryBus() const { return secondaryBus_; }
  std::uint8_t subordinateBus() const { return subordinateBus_; }
  const BridgeWindow& memWindow() const { return memWindow_; }
  const BridgeWindow& prefWindow() const { return prefWindow_; }

  /// Link on the upstream side of this function (a switch upstream port's or an endpoint's
  /// link; all functions of one device share function 0's link); kNoLink for functions on a
  /// root bus.
  LinkId upstreamLink() const { return upstreamLink_; }
  /// Link below a downstream-facing port; kNoLink if the slot is empty.
  LinkId downstreamLink() const { return downstreamLink_; }

  /// p2pdma state (pdev->p2pdma); nullptr until pciP2pdmaAddResource succeeds.
  PciP2pdma* p2pdma() const { return p2pdma_.get(); }

 private:
  friend class Topology;
  friend struct EnumAccess;
  friend class P2pdma;

  PciDevId id_;
  PciDevType type_;
  std::uint16_t vendor_, device_;
  std::uint32_t classCode_;
  std::uint8_t devNo_, fn_;
  bool multifunction_;
  unsigned portNumber_, maxLinkWidth_, maxLinkGen_;
  std::array<PciBar, kPciNumBars> bars_;
  AcsCap acs_;

  Bdf bdf_;
  PciBus* bus_ = nullptr;
  PciBus* subordinate_ = nullptr;
  std::uint8_t primaryBus_ = 0, secondaryBus_ = 0, subordinateBus_ = 0;
  BridgeWindow memWindow_, prefWindow_;
  LinkId upstreamLink_ = kNoLink, downstreamLink_ = kNoLink;
  std::unique_ptr<PciP2pdma> p2pdma_;
};

/// dev_is_pci() + to_pci_dev(): the device as a PciDev, or nullptr.
PciDev* toPciDev(Device* dev);
const PciDev* toPciDev(const Device* dev);

/// find_parent_pci_dev(): `dev` itself if it is a PCI function, else the nearest ancestor
/// (Device::parent()) that is; nullptr if none. (No reference counting: hmmsim devices are
/// owned by their model and outlive these calls.)
PciDev* pciFindParentDev(Device* dev);

}  // namespace hmmsim
