#include "models/pcie/pci_dev.h"

#include <algorithm>

#include "models/pcie/p2pdma.h"
#include "models/pcie/topology.h"

namespace hmmsim {

const char* pciDevTypeName(PciDevType t) {
  switch (t) {
    case PciDevType::HostBridge:
      return "host bridge";
    case PciDevType::RootPort:
      return "root port";
    case PciDevType::SwitchUpstream:
      return "switch upstream port";
    case PciDevType::SwitchDownstream:
      return "switch downstream port";
    case PciDevType::Endpoint:
      return "endpoint";
  }
  return "?";
}

PciDev::PciDev(PciDevId id, PciDevParams p, Device* parent)
    : Device(std::move(p.name), parent),
      id_(id),
      type_(p.type),
      vendor_(p.vendor),
      device_(p.device),
      classCode_(p.classCode),
      devNo_(p.devNo),
      fn_(p.fn),
      multifunction_(p.multifunction),
      portNumber_(p.portNumber),
      maxLinkWidth_(p.maxLinkWidth),
      maxLinkGen_(p.maxLinkGen),
      bars_(std::move(p.bars)),
      acs_(p.acs) {}

PciDev::~PciDev() = default;

PciDev* PciDev::upstreamBridge() const {
  return bus_ ? bus_->self() : nullptr;
}

Errno PciDev::resizeBar(int bar, std::uint64_t size) {
  if (bar < 0 || bar >= kPciNumBars) return Errno::Inval;
  PciBar& b = bars_[static_cast<std::size_t>(bar)];
  if (!b.isMem() || b.resizableSizes.empty()) return Errno::Inval;
  if (std::find(b.resizableSizes.begin(), b.resizableSizes.end(), size) == b.resizableSizes.end())
    return Errno::Inval;
  if (b.assigned) return Errno::Busy;
  b.size = size;
  return Errno::Ok;
}

Errno PciDev::setAcsCtrl(std::uint16_t ctrl) {
  if (!acs_.present) return Errno::Inval;
  if ((ctrl & ~acs_.cap) != 0) return Errno::Inval;
  acs_.ctrl = ctrl;
  return Errno::Ok;
}

Errno PciDev::setAcsEgressVector(std::uint32_t vector) {
  if (!acs_.present || (acs_.cap & kPciAcsEc) == 0) return Errno::Inval;
  if (acs_.egressVectorBits < 32 && (vector >> acs_.egressVectorBits) != 0) return Errno::Inval;
  acs_.egressVector = vector;
  return Errno::Ok;
}

PciDev* toPciDev(Device* dev) {
  return dynamic_cast<PciDev*>(dev);
}
const PciDev* toPciDev(const Device* dev) {
  return dynamic_cast<const PciDev*>(dev);
}

PciDev* pciFindParentDev(Device* dev) {
  while (dev) {
    if (PciDev* p = toPciDev(dev)) return p;
    dev = dev->parent();
  }
  return nullptr;
}

}  // namespace hmmsim
