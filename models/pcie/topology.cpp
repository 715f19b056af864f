#include "models/pcie/topology.h"

#include <algorithm>
#include <cstdio>
#include <sstream>

#include "sim/assert.h"
#include "sim/units.h"

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

PcieLink& Topology::connect(const std::string& linkName, PciDev& port, const std::string& below, unsigned gen,
                            unsigned width) {
  HMMSIM_ASSERT(port.isDownstreamPort(),
                linkName << ": " << port.name() << " is not a downstream-facing port");
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
  const auto live = [&bdf](const PciDev& d) { return d.bus_ && d.bus_->host_ && d.bdf_ == bdf; };
  if (auto it = byBdf_.find(bdf.key()); it != byBdf_.end() && live(*it->second)) return it->second;
  for (auto& d : devs_)
    if (live(*d)) {
      byBdf_[bdf.key()] = d.get();
      return d.get();
    }
  return nullptr;
}

std::vector<PciDev*> Topology::functionsInBdfOrder() const {
  std::vector<PciDev*> out;
  for (auto& d : devs_)
    if (d->bus_ && d->bus_->host_) out.push_back(d.get());
  std::stable_sort(out.begin(), out.end(),
                   [](const PciDev* a, const PciDev* b) { return a->bdf() < b->bdf(); });
  return out;
}

const PciHostBridge* Topology::hostBridgeForCpu(Pa pa) const {
  for (auto& h : hosts_)
    if (h.windowForCpu(pa)) return &h;
  return nullptr;
}

namespace {

std::string hex(std::uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%llx", static_cast<unsigned long long>(v));
  return buf;
}

void describeBus(const Topology& topo, const PciBus& bus, int depth, std::ostringstream& os) {
  for (const PciDev* d : bus.devices()) {
    os << std::string(std::size_t(depth) * 2, ' ');
    char bdf[24];
    std::snprintf(bdf, sizeof bdf, "%04x:%02x:%02x.%x", d->bdf().domain, d->bdf().bus, d->bdf().dev,
                  d->bdf().fn);
    char ids[16];
    std::snprintf(ids, sizeof ids, "[%04x:%04x]", d->vendor(), d->device());
    os << bdf << ' ' << d->name() << ' ' << ids << ' ' << pciDevTypeName(d->type());
    if (d->upstreamLink() != kNoLink && d->fn() == 0) {
      const PcieLink& l = topo.link(d->upstreamLink());
      os << ", link gen" << l.gen << " x" << l.width;
    }
    if (d->isBridge()) {
      char buses[16];
      std::snprintf(buses, sizeof buses, "%02x-%02x", d->secondaryBus(), d->subordinateBus());
      os << ", bus " << buses;
      if (d->memWindow().enabled)
        os << ", mem " << hex(d->memWindow().base.value()) << '-' << hex(d->memWindow().end().value() - 1);
      if (d->prefWindow().enabled)
        os << ", pref " << hex(d->prefWindow().base.value()) << '-' << hex(d->prefWindow().end().value() - 1);
    }
    for (int i = 0; i < kPciNumBars; ++i) {
      const PciBar& b = d->bar(i);
      if (!b.implemented()) continue;
      os << ", BAR" << i << ' ' << (b.assigned ? hex(b.bus.value()) : std::string("unassigned")) << ' '
         << formatBytes(b.size)
         << (b.io     ? " io"
             : b.is64 ? " 64-bit"
                      : "")
         << (b.prefetchable ? " pref" : "");
    }
    if (d->acs().present && d->acs().ctrl) {
      static const char* const kNames[] = {"sv", "tb", "rr", "cr", "uf", "ec", "dt"};
      os << ", ACS ";
      bool first = true;
      for (int bit = 0; bit < 7; ++bit)
        if (d->acs().ctrl & (1u << bit)) {
          os << (first ? "" : ",") << kNames[bit];
          first = false;
        }
      if (d->acs().ctrl & kPciAcsEc) os << " egress 0x" << hex(d->acs().egressVector);
    }
    os << '\n';
    if (d->subordinate()) describeBus(topo, *d->subordinate(), depth + 1, os);
  }
}

}  // namespace

std::string describeTopology(const Topology& topo) {
  std::ostringstream os;
  for (const PciHostBridge& hb : topo.hostBridges()) {
    os << "host bridge " << hb.name() << ": domain " << hb.domain() << ", root bus "
       << hex(hb.rootBus().number()) << (hb.p2pSupported() ? "" : ", no p2p");
    for (const HostWindow* w : {&hb.mem(), &hb.pref()}) {
      if (!w->size) continue;
      os << ", " << (w->prefetchable ? "pref" : "mem") << " cpu " << hex(w->cpuBase.value()) << " bus "
         << hex(w->busBase.value()) << ' ' << formatBytes(w->size);
    }
    os << '\n';
    describeBus(topo, hb.rootBus(), 1, os);
  }
  return os.str();
}

}  // namespace hmmsim
