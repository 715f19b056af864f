#include "models/pcie/topology.h"

#include <algorithm>

#include "sim/assert.h"

namespace hmmsim {

const HostWindow* PciHostBridge::windowForBus(BusAddr a) const {
  if (params_.mem.containsBus(a)) return &params_.mem;
  if (params_.pref.containsBus(a)) return &params_.pref;
  return nullptr;
}

const HostWindow* PciHostBridge::windowForCpu(Pa a) const {
  if (params_.mem.containsCpu(a)) return &params_.mem;
  if (params_.pref.containsCpu(a)) return &params_.pref;
  return nullptr;
}

Topology::~Topology() = default;

PciBus& Topology::newBus(PciHostBridge* hb, PciBus* parent, PciDev* self) {
  PciBus& b = buses_.emplace_back();
  b.host_ = hb;
  b.parent_ = parent;
  b.self_ = self;
  return b;
}

PciDev& Topology::newDev(PciDevParams p) {
  HMMSIM_ASSERT(findDev(p.name) == nullptr, "duplicate PCI function name '" << p.name << "'");
  devs_.push_back(std::make_unique<PciDev>(PciDevId(devs_.size()), std::move(p)));
  return *devs_.back();
}

void Topology::attach(PciBus& bus, PciDev& d) {
  HMMSIM_ASSERT(d.bus_ == nullptr, d.name() << " is already on a bus");
  for (PciDev* o : bus.devices_)
    HMMSIM_ASSERT(o->devfn() != d.devfn(), "devfn " << int(d.devNo()) << "." << int(d.fn()) << " of "
                                                      << d.name() << " already used by " << o->name());
  d.bus_ = &bus;
  auto byDevfn = [](const PciDev* x, const PciDev* y) { return x->devfn() < y->devfn(); };
  bus.devices_.insert(std::upper_bound(bus.devices_.begin(), bus.devices_.end(), &d, byDevfn), &d);
  bus.children_.clear();
  for (PciDev* o : bus.devices_)
    if (o->subordinate_) bus.children_.push_back(o->subordinate_);
  if (d.subordinate_) d.subordinate_->parent_ = &bus;
  d.setParent(bus.self_);
}

void Topology::setHost(PciBus& bus, PciHostBridge* hb) {
  bus.host_ = hb;
  for (PciDev* d : bus.devices_)
    if (d->subordinate_) setHost(*d->subordinate_, hb);
}

PciHostBridge& Topology::addHostBridge(const HostBridgeParams& p) {
  HMMSIM_ASSERT(findHostBridge(p.name) == nullptr, "duplicate host bridge name '" << p.name << "'");
  PciHostBridge& hb = hosts_.emplace_back();
  hb.params_ = p;
  hb.bus_ = &newBus(&hb, nullptr, nullptr);
  hb.bus_->number_ = p.rootBus;
  if (p.hostFunction) {
    PciDevParams f;
    f.name = p.name + ".host";
    f.type = PciDevType::HostBridge;
    f.vendor = p.vendor;
    f.device = p.device;
    f.classCode = 0x060000;
    f.devNo = 0;
    f.fn = 0;
    PciDev& d = newDev(std::move(f));
    attach(*hb.bus_, d);
    hb.hostFunction_ = &d;
  }
  return hb;
}

PciDev& Topology::addRootBusFunction(PciHostBridge& hb, PciDevParams p) {
  HMMSIM_ASSERT(p.type == PciDevType::RootPort || p.type == PciDevType::Endpoint,
                p.name << ": only root ports and integrated endpoints sit on a root bus");
  PciDev& d = newDev(std::move(p));
  if (d.type_ == PciDevType::RootPort) d.subordinate_ = &newBus(&hb, hb.bus_, &d);
  attach(*hb.bus_, d);
  return d;
}

PcieSwitch& Topology::addSwitch(const std::string& name, PciDevParams upstream,
                                std::vector<PciDevParams> downstream) {
  HMMSIM_ASSERT(findSwitch(name) == nullptr, "duplicate switch name '" << name << "'");
  upstream.type = PciDevType::SwitchUpstream;
  PciDev& up = newDev(std::move(upstream));
  PcieSwitch& sw = switches_.emplace_back();
  sw.name = name;
  sw.upstream = &up;
  PciBus& internal = newBus(nullptr, nullptr, &up);
  up.subordinate_ = &internal;
  std::uint8_t devNo = 0;
  for (auto& dp : downstream) {
    dp.type = PciDevType::SwitchDownstream;
    dp.devNo = devNo++;
    dp.fn = 0;
    PciDev& d = newDev(std::move(dp));
    d.subordinate_ = &newBus(nullptr, &internal, &d);
    attach(internal, d);
    sw.downstream.push_back(&d);
  }
  return sw;
}

PciDev& Topology::addEndpointFunction(const std::string& deviceName, PciDevParams p) {
  p.type = PciDevType::Endpoint;
  EndpointDevice* ep = nullptr;
  for (auto& e : endpoints_)
    if (e.name == deviceName) ep = &e;
  if (!ep) {
    ep = &endpoints_.emplace_back();
    ep->name = deviceName;
  }
  PciDev& d = newDev(std::move(p));
  auto byFn = [](const PciDev* x, const PciDev* y) { return x->fn() < y->fn(); };
  ep->functions.insert(std::upper_bound(ep->functions.begin(), ep->functions.end(), &d, byFn), &d);
  return d;
}

PcieLink& Topology::connect(const std::string& linkName, PciDev& port, const std::string& below,
                            unsigned gen, unsigned width) {
  HMMSIM_ASSERT(port.isDownstreamPort(), linkName << ": " << port.name() << " is not a downstream-facing port");
  HMMSIM_ASSERT(port.downstreamLink_ == kNoLink, linkName << ": " << port.name() << " already has a link");
  std::vector<PciDev*> fns;
  if (const PcieSwitch* sw = findSwitch(below)) {
    fns.push_back(sw->upstream);
  } else {
    fns = endpointFunctions(below);
  }
  HMMSIM_ASSERT(!fns.empty(), linkName << ": nothing named '" << below << "' to link below " << port.name());
  PcieLink& l = links_.emplace_back();
  l.id = LinkId(links_.size() - 1);
  l.name = linkName;
  l.up = &port;
  l.down = fns.front();
  l.gen = gen;
  l.width = width;
  port.downstreamLink_ = l.id;
  const bool multi = fns.size() > 1;
  for (PciDev* f : fns) {
    f->devNo_ = 0;  // a link carries exactly one device: device 0 on the secondary bus
    if (multi && f->fn() == 0) f->multifunction_ = true;
    f->upstreamLink_ = l.id;
    attach(*port.subordinate_, *f);
  }
  if (port.bus_ && port.bus_->host_) setHost(*port.subordinate_, port.bus_->host_);
  return l;
}

PciDev* Topology::findDev(const std::string& name) const {
  for (auto& d : devs_)
    if (d->name() == name) return d.get();
  return nullptr;
}

PciHostBridge* Topology::findHostBridge(const std::string& name) const {
  for (auto& h : hosts_)
    if (h.name() == name) return const_cast<PciHostBridge*>(&h);
  return nullptr;
}

const PcieSwitch* Topology::findSwitch(const std::string& name) const {
  for (auto& s : switches_)
    if (s.name == name) return &s;
  return nullptr;
}

const PcieSwitch* Topology::switchOf(const PciDev& port) const {
  for (auto& s : switches_) {
    if (s.upstream == &port) return &s;
    for (PciDev* d : s.downstream)
      if (d == &port) return &s;
  }
  return nullptr;
}

std::vector<PciDev*> Topology::endpointFunctions(const std::string& deviceName) const {
  for (auto& e : endpoints_)
    if (e.name == deviceName) return e.functions;
  return {};
}

PciHostBridge& Topology::hostBridgeOf(const PciDev& d) const {
  HMMSIM_ASSERT(d.bus_ && d.bus_->host_, d.name() << " is not connected to a host bridge");
  return *d.bus_->host_;
}

PciDev* Topology::findByBdf(const Bdf& bdf) const {
  for (auto& d : devs_)
    if (d->bus_ && d->bus_->host_ && d->bdf_ == bdf) return d.get();
  return nullptr;
}

std::vector<PciDev*> Topology::functionsInBdfOrder() const {
  std::vector<PciDev*> out;
  for (auto& d : devs_)
    if (d->bus_ && d->bus_->host_) out.push_back(d.get());
  std::stable_sort(out.begin(), out.end(), [](const PciDev* a, const PciDev* b) { return a->bdf() < b->bdf(); });
  return out;
}

const PciHostBridge* Topology::hostBridgeForCpu(Pa pa) const {
  for (auto& h : hosts_)
    if (h.windowForCpu(pa)) return &h;
  return nullptr;
}

}  // namespace hmmsim
