#include "models/pcie/topology_desc.h"

#include <algorithm>
#include <map>
#include <set>
#include <sstream>

#include "models/pcie/enumeration.h"
#include "sim/units.h"

namespace hmmsim {

namespace {

// ---- errors ------------------------------------------------------------------------------

[[noreturn]] void failAt(const DescLoc& loc, const std::string& msg) {
  throw ConfigError(loc.file.empty() ? "<topology>" : loc.file, loc.line, loc.column, loc.key, msg);
}

std::string where(const DescLoc& loc) {
  std::ostringstream os;
  os << (loc.file.empty() ? "<topology>" : loc.file);
  if (loc.line > 0) os << ':' << loc.line;
  return os.str();
}

DescLoc locOf(const ConfigNode& n) {
  DescLoc l;
  l.file = n.file();
  auto mark = n.yaml().Mark();
  if (!mark.is_null() && mark.line >= 0) {
    l.line = mark.line + 1;
    l.column = mark.column + 1;
  }
  l.key = n.keyPath();
  return l;
}

bool isPow2(std::uint64_t v) {
  return v && (v & (v - 1)) == 0;
}

// ---- loading -----------------------------------------------------------------------------

std::uint16_t id16(const ConfigNode& n, const std::string& key, std::uint16_t dflt) {
  auto v = n.optInt(key, 0, 0xffff);
  return v ? static_cast<std::uint16_t>(*v) : dflt;
}
unsigned uintOr(const ConfigNode& n, const std::string& key, std::int64_t min, std::int64_t max,
                unsigned dflt) {
  auto v = n.optInt(key, min, max);
  return v ? static_cast<unsigned>(*v) : dflt;
}

std::uint16_t acsBits(const ConfigNode& list) {
  std::uint16_t bits = 0;
  for (const ConfigNode& e : list.elements()) {
    std::string s = e.asChoice({"sv", "tb", "rr", "cr", "uf", "ec", "dt"});
    if (s == "sv") bits |= kPciAcsSv;
    if (s == "tb") bits |= kPciAcsTb;
    if (s == "rr") bits |= kPciAcsRr;
    if (s == "cr") bits |= kPciAcsCr;
    if (s == "uf") bits |= kPciAcsUf;
    if (s == "ec") bits |= kPciAcsEc;
    if (s == "dt") bits |= kPciAcsDt;
  }
  return bits;
}

AcsDesc loadAcs(const ConfigNode& n) {
  AcsDesc a;
  a.present = true;
  a.loc = locOf(n);
  if (n.isSequence()) {
    a.cap = a.ctrl = acsBits(n);
  } else {
    n.requireKeys({"cap", "ctrl", "egress_vector_bits", "egress_vector"});
    if (auto c = n.find("cap")) a.cap = acsBits(*c);
    if (auto c = n.find("ctrl")) a.ctrl = acsBits(*c);
    if (!n.has("cap")) a.cap = a.ctrl;
    a.egressVectorBits = uintOr(n, "egress_vector_bits", 0, 32, (a.cap & kPciAcsEc) ? 8 : 0);
    if (auto v = n.optInt("egress_vector", 0, 0xffffffffll)) a.egressVector = static_cast<std::uint32_t>(*v);
  }
  if ((a.cap & kPciAcsEc) && a.egressVectorBits == 0) a.egressVectorBits = 8;
  return a;
}

std::vector<BarDesc> loadBars(const ConfigNode& list) {
  std::vector<BarDesc> out;
  for (const ConfigNode& b : list.elements()) {
    b.requireKeys({"index", "size", "type", "prefetchable", "resizable"});
    BarDesc d;
    d.loc = locOf(b);
    d.index = static_cast<int>(b.at("index").asInt(0, 5));
    d.size = b.at("size").asBytes();
    std::string type = b.find("type") ? b.at("type").asChoice({"mem32", "mem64", "io"}) : "mem32";
    d.io = type == "io";
    d.is64 = type == "mem64";
    d.prefetchable = b.optBool("prefetchable").value_or(false);
    if (auto r = b.find("resizable"))
      for (const ConfigNode& s : r->elements()) d.resizable.push_back(s.asBytes());
    out.push_back(std::move(d));
  }
  return out;
}

FunctionDesc loadFunction(const ConfigNode& n, const std::string& dfltName, bool allowName) {
  FunctionDesc f;
  f.loc = locOf(n);
  f.name = allowName ? n.optString("name").value_or(dfltName) : dfltName;
  f.function = uintOr(n, "function", 0, 7, 0);
  f.vendor = id16(n, "vendor", f.vendor);
  f.device = id16(n, "device", f.device);
  if (auto c = n.optInt("class", 0, 0xffffff)) f.classCode = static_cast<std::uint32_t>(*c);
  if (auto b = n.find("bars")) f.bars = loadBars(*b);
  if (auto a = n.find("acs")) f.acs = loadAcs(*a);
  return f;
}

PortDesc loadPort(const ConfigNode& n, bool root, unsigned index) {
  if (root)
    n.requireKeys(
        {"name", "slot", "function", "port_number", "max_width", "max_gen", "vendor", "device", "acs"});
  else
    n.requireKeys({"name", "port_number", "max_width", "max_gen", "vendor", "device", "acs"});
  PortDesc p;
  p.loc = locOf(n);
  p.name = n.at("name").asString();
  if (root) {
    p.slot = uintOr(n, "slot", 0, 31, index + 1);
    p.function = uintOr(n, "function", 0, 7, 0);
  }
  p.portNumber = uintOr(n, "port_number", 0, 255, root ? p.slot : index);
  p.maxWidth = uintOr(n, "max_width", 1, 32, p.maxWidth);
  p.maxGen = uintOr(n, "max_gen", 1, 6, p.maxGen);
  p.vendor = id16(n, "vendor", root ? 0x8086 : 0x10b5);
  p.device = id16(n, "device", root ? 0x2030 : 0x9797);
  if (auto a = n.find("acs")) p.acs = loadAcs(*a);
  return p;
}

HostWindow loadWindow(const ConfigNode& n, bool pref) {
  n.requireKeys({"cpu_base", "bus_base", "size"});
  HostWindow w;
  w.prefetchable = pref;
  std::int64_t cpu = n.at("cpu_base").asInt(0, INT64_MAX);
  w.cpuBase = Pa(static_cast<std::uint64_t>(cpu));
  w.busBase = BusAddr(static_cast<std::uint64_t>(n.optInt("bus_base", 0, INT64_MAX).value_or(cpu)));
  w.size = n.at("size").asBytes();
  return w;
}

}  // namespace

namespace {

HostBridgeDesc loadHostBridge(const ConfigNode& h) {
  h.requireKeys({"name", "domain", "root_bus", "vendor", "device", "host_function", "p2p", "mem_window",
                 "pref_window", "root_ports"});
  HostBridgeDesc hb;
  hb.loc = locOf(h);
  HostBridgeParams& p = hb.params;
  p.name = h.at("name").asString();
  p.domain = static_cast<std::uint16_t>(h.optInt("domain", 0, 0xffff).value_or(0));
  p.rootBus = static_cast<std::uint8_t>(h.optInt("root_bus", 0, 255).value_or(0));
  p.vendor = id16(h, "vendor", p.vendor);
  p.device = id16(h, "device", p.device);
  p.hostFunction = h.optBool("host_function").value_or(true);
  p.p2pSupported = h.optBool("p2p").value_or(true);
  p.mem = HostWindow{Pa(0xc0000000ull), BusAddr(0xc0000000ull), 1ull << 30, false};
  p.pref = HostWindow{Pa(0x4000000000ull), BusAddr(0x4000000000ull), 256ull << 30, true};
  if (auto w = h.find("mem_window")) p.mem = loadWindow(*w, false);
  if (auto w = h.find("pref_window")) p.pref = loadWindow(*w, true);
  if (auto rps = h.find("root_ports")) {
    unsigned i = 0;
    for (const ConfigNode& rp : rps->elements()) hb.rootPorts.push_back(loadPort(rp, true, i++));
  }
  return hb;
}

// `downstream_ports: N` declares N identical ports named <switch>.dp<i>, numbered 0..N-1.
std::vector<PortDesc> uniformDownstreamPorts(const SwitchDesc& sw, const ConfigNode& count) {
  std::vector<PortDesc> out;
  unsigned n = static_cast<unsigned>(count.asInt(1, 32));
  for (unsigned i = 0; i < n; ++i) {
    PortDesc p;
    p.loc = locOf(count);
    p.name = sw.name + ".dp" + std::to_string(i);
    p.portNumber = i;
    p.maxWidth = sw.maxWidth;
    p.maxGen = sw.maxGen;
    p.vendor = sw.vendor;
    p.device = sw.device;
    out.push_back(p);
  }
  return out;
}

SwitchDesc loadSwitch(const ConfigNode& s) {
  s.requireKeys({"name", "vendor", "device", "max_width", "max_gen", "acs", "downstream_ports"});
  SwitchDesc sw;
  sw.loc = locOf(s);
  sw.name = s.at("name").asString();
  sw.vendor = id16(s, "vendor", sw.vendor);
  sw.device = id16(s, "device", sw.device);
  sw.maxWidth = uintOr(s, "max_width", 1, 32, sw.maxWidth);
  sw.maxGen = uintOr(s, "max_gen", 1, 6, sw.maxGen);
  if (auto a = s.find("acs")) sw.upstreamAcs = loadAcs(*a);
  ConfigNode dps = s.at("downstream_ports");
  if (dps.isScalar()) {
    sw.downstream = uniformDownstreamPorts(sw, dps);
  } else {
    unsigned i = 0;
    for (const ConfigNode& p : dps.elements()) sw.downstream.push_back(loadPort(p, false, i++));
  }
  return sw;
}

EndpointDesc loadEndpoint(const ConfigNode& e) {
  e.requireKeys({"name", "max_width", "max_gen", "vendor", "device", "class", "bars", "acs", "functions"});
  EndpointDesc ep;
  ep.loc = locOf(e);
  ep.name = e.at("name").asString();
  ep.maxWidth = uintOr(e, "max_width", 1, 32, ep.maxWidth);
  ep.maxGen = uintOr(e, "max_gen", 1, 6, ep.maxGen);
  if (auto fns = e.find("functions")) {
    for (const char* k : {"vendor", "device", "class", "bars", "acs"})
      if (e.has(k)) e.at(k).fail("give per-function keys inside 'functions' when 'functions' is present");
    for (const ConfigNode& f : fns->elements()) {
      f.requireKeys({"name", "function", "vendor", "device", "class", "bars", "acs"});
      unsigned fnNo = uintOr(f, "function", 0, 7, 0);
      ep.functions.push_back(loadFunction(f, ep.name + ".f" + std::to_string(fnNo), true));
    }
  } else {
    ep.functions.push_back(loadFunction(e, ep.name, false));
  }
  return ep;
}

LinkDesc loadLink(const ConfigNode& l) {
  l.requireKeys({"name", "up", "down", "gen", "width"});
  LinkDesc ld;
  ld.loc = locOf(l);
  ld.up = l.at("up").asString();
  ld.down = l.at("down").asString();
  ld.name = l.optString("name").value_or("");
  ld.gen = uintOr(l, "gen", 1, 6, ld.gen);
  ld.width = uintOr(l, "width", 1, 32, ld.width);
  return ld;
}

}  // namespace

TopologyDesc loadTopologyDesc(const ConfigNode& node) {
  node.requireKeys({"host_bridges", "switches", "endpoints", "links"});
  TopologyDesc d;
  for (const ConfigNode& h : node.at("host_bridges").elements()) d.hostBridges.push_back(loadHostBridge(h));
  if (auto sws = node.find("switches"))
    for (const ConfigNode& s : sws->elements()) d.switches.push_back(loadSwitch(s));
  if (auto eps = node.find("endpoints"))
    for (const ConfigNode& e : eps->elements()) d.endpoints.push_back(loadEndpoint(e));
  if (auto links = node.find("links"))
    for (const ConfigNode& l : links->elements()) d.links.push_back(loadLink(l));
  return d;
}

namespace {

void validateBars(const std::string& owner, const std::vector<BarDesc>& bars) {
  std::vector<const BarDesc*> slot(kPciNumBars, nullptr);
  for (const BarDesc& b : bars) {
    const std::string what = "BAR " + std::to_string(b.index) + " of '" + owner + "'";
    if (b.index < 0 || b.index >= kPciNumBars) failAt(b.loc, what + ": index must be 0..5");
    if (b.io && (b.is64 || b.prefetchable))
      failAt(b.loc, what + ": an I/O BAR is neither 64-bit nor prefetchable");
    if (!isPow2(b.size))
      failAt(b.loc, what + ": size " + std::to_string(b.size) + " B is not a power of two");
    if (!b.io && b.size < 16) failAt(b.loc, what + ": a memory BAR is at least 16 B");
    if (b.io && b.size > 256) failAt(b.loc, what + ": an I/O BAR is at most 256 B");
    if (!b.io && !b.is64 && b.size > (2ull << 30))
      failAt(b.loc,
             what + ": a 32-bit BAR of " + formatBytes(b.size) + " cannot fit below 4 GiB (use type: mem64)");
    if (b.is64 && b.index == kPciNumBars - 1)
      failAt(b.loc, what + ": a 64-bit BAR needs two slots; index 5 has one");
    for (int s = b.index; s <= b.index + (b.is64 ? 1 : 0); ++s) {
      if (slot[std::size_t(s)])
        failAt(b.loc, what + ": slot " + std::to_string(s) + " is already used by the BAR declared at " +
                          where(slot[std::size_t(s)]->loc));
      slot[std::size_t(s)] = &b;
    }
    if (!b.resizable.empty()) {
      for (std::uint64_t s : b.resizable)
        if (!isPow2(s) || s < (1ull << 20))
          failAt(b.loc, what + ": resizable sizes are powers of two of at least 1MiB");
      if (std::find(b.resizable.begin(), b.resizable.end(), b.size) == b.resizable.end())
        failAt(b.loc, what + ": its size " + formatBytes(b.size) + " is not among its resizable sizes");
      if (b.io) failAt(b.loc, what + ": an I/O BAR cannot be resizable");
    }
  }
}

void validateAcs(const std::string& owner, const AcsDesc& a) {
  if (!a.present) return;
  if ((a.ctrl & ~a.cap) != 0)
    failAt(a.loc, "ACS of '" + owner + "': 'ctrl' enables a control that 'cap' does not implement");
  if ((a.cap & ~kPciAcsAll) != 0) failAt(a.loc, "ACS of '" + owner + "': unknown control bits");
  if (a.egressVectorBits > 32)
    failAt(a.loc, "ACS of '" + owner + "': at most 32 egress vector bits are modelled");
  if (a.egressVector && !(a.cap & kPciAcsEc))
    failAt(a.loc, "ACS of '" + owner + "': an egress vector needs 'ec' in 'cap'");
  if (a.egressVectorBits < 32 && (a.egressVector >> a.egressVectorBits) != 0)
    failAt(a.loc, "ACS of '" + owner + "': egress_vector has bits beyond egress_vector_bits");
}

bool validWidth(unsigned w) {
  return w == 1 || w == 2 || w == 4 || w == 8 || w == 12 || w == 16 || w == 32;
}

AcsCap toAcs(const AcsDesc& a) {
  AcsCap c;
  c.present = a.present;
  c.cap = a.cap;
  c.ctrl = a.ctrl;
  c.egressVectorBits = a.egressVectorBits;
  c.egressVector = a.egressVector;
  return c;
}

std::array<PciBar, kPciNumBars> toBars(const std::vector<BarDesc>& bars) {
  std::array<PciBar, kPciNumBars> out{};
  for (const BarDesc& b : bars) {
    PciBar& p = out[std::size_t(b.index)];
    p.size = b.size;
    p.io = b.io;
    p.is64 = b.is64;
    p.prefetchable = b.prefetchable;
    p.resizableSizes = b.resizable;
  }
  return out;
}

std::string linkName(const LinkDesc& l) {
  return l.name.empty() ? l.up + "-" + l.down : l.name;
}

}  // namespace

namespace {

// The checks run in the order enumeration meets the hierarchy: host bridges (their apertures and
// root-bus devfns), switches, endpoints (functions, BARs, ACS), the links between them, and last
// that everything hangs below a root port. The first broken rule is reported.
class TopologyChecker {
 public:
  explicit TopologyChecker(const TopologyDesc& d) : d_(d) {}

  void check() {
    if (d_.hostBridges.empty()) failAt(DescLoc{}, "a topology needs at least one host bridge");
    for (const HostBridgeDesc& hb : d_.hostBridges) checkHostBridge(hb);
    for (const SwitchDesc& sw : d_.switches) checkSwitch(sw);
    for (const EndpointDesc& ep : d_.endpoints) checkEndpoint(ep);
    for (const LinkDesc& l : d_.links) checkLink(l);
    for (const SwitchDesc& sw : d_.switches) checkReachesRoot(sw.name, sw.loc, "switch");
    for (const EndpointDesc& ep : d_.endpoints) checkReachesRoot(ep.name, ep.loc, "endpoint");
  }

 private:
  enum class Kind { RootPort, DownstreamPort, Switch, Endpoint };
  struct Info {
    Kind kind = Kind::Endpoint;
    unsigned maxWidth = 0, maxGen = 0;
    const DescLoc* loc = nullptr;
    std::string owner;  // switch of a downstream port
  };
  using Linkable = std::map<std::string, Info>::const_iterator;

  // Names: one namespace for everything the description declares.
  void declare(const std::string& name, const DescLoc& loc, const std::string& kind) {
    if (name.empty()) failAt(loc, kind + " without a name");
    auto [it, fresh] = names_.emplace(name, loc);
    if (!fresh)
      failAt(loc, "duplicate name '" + name + "' (" + kind + "); first declared at " + where(it->second));
  }

  void checkHostBridge(const HostBridgeDesc& hb) {
    declare(hb.params.name, hb.loc, "host bridge");
    if (hb.params.hostFunction) declare(hb.params.name + ".host", hb.loc, "host bridge function");
    checkWindows(hb);
    checkRootPorts(hb);
  }

  void checkWindows(const HostBridgeDesc& hb) const {
    const HostWindow& mem = hb.params.mem;
    if (mem.size && (mem.busBase.value() + mem.size > (4ull << 30)))
      failAt(hb.loc, "host bridge '" + hb.params.name +
                         "': the non-prefetchable window must end below 4 GiB on the bus");
    for (const HostWindow* w : {&hb.params.mem, &hb.params.pref})
      if (w->size % kBridgeWindowAlign != 0)
        failAt(hb.loc, "host bridge '" + hb.params.name + "': window sizes are multiples of 1MiB");
    // CPU apertures must be disjoint across all host bridges (and within one): the root complex
    // decodes a CPU physical address to exactly one of them.
    for (const HostBridgeDesc& other : d_.hostBridges) {
      for (int i = 0; i < 2; ++i) {
        for (int j = 0; j < 2; ++j) {
          if (&other == &hb && i >= j) continue;
          const HostWindow& a = i ? hb.params.pref : hb.params.mem;
          const HostWindow& b = j ? other.params.pref : other.params.mem;
          if (!a.size || !b.size) continue;
          if (a.cpuBase < b.cpuBase + b.size && b.cpuBase < a.cpuBase + a.size)
            failAt(hb.loc, std::string("host bridge '") + hb.params.name + "': its " +
                               (i ? "prefetchable" : "non-prefetchable") + " window overlaps the " +
                               (j ? "prefetchable" : "non-prefetchable") + " window of '" +
                               other.params.name + "' in CPU physical addresses");
        }
      }
      if (&other == &hb) break;
    }
  }

  // Root ports are functions on the root bus: one devfn each, and 0 is the host function's.
  void checkRootPorts(const HostBridgeDesc& hb) {
    std::set<unsigned> devfns;
    if (hb.params.hostFunction) devfns.insert(0);
    for (const PortDesc& rp : hb.rootPorts) {
      declare(rp.name, rp.loc, "root port");
      if (!devfns.insert(rp.slot * 8 + rp.function).second)
        failAt(rp.loc, "root port '" + rp.name + "': slot " + std::to_string(rp.slot) + " function " +
                           std::to_string(rp.function) + " is already taken on the root bus of '" +
                           hb.params.name + "'");
      validateAcs(rp.name, rp.acs);
      linkable_[rp.name] = Info{Kind::RootPort, rp.maxWidth, rp.maxGen, &rp.loc, ""};
    }
  }

  void checkSwitch(const SwitchDesc& sw) {
    declare(sw.name, sw.loc, "switch");
    validateAcs(sw.name, sw.upstreamAcs);
    if (sw.downstream.empty() || sw.downstream.size() > 32)
      failAt(sw.loc, "switch '" + sw.name + "' needs 1 to 32 downstream ports");
    for (const PortDesc& p : sw.downstream) {
      declare(p.name, p.loc, "switch downstream port");
      validateAcs(p.name, p.acs);
      linkable_[p.name] = Info{Kind::DownstreamPort, p.maxWidth, p.maxGen, &p.loc, sw.name};
    }
    linkable_[sw.name] = Info{Kind::Switch, sw.maxWidth, sw.maxGen, &sw.loc, ""};
  }

  void checkEndpoint(const EndpointDesc& ep) {
    declare(ep.name, ep.loc, "endpoint");
    if (ep.functions.empty()) failAt(ep.loc, "endpoint '" + ep.name + "' has no function");
    std::set<unsigned> fns;
    for (const FunctionDesc& f : ep.functions) {
      if (f.name != ep.name) declare(f.name, f.loc, "function");
      if (f.function > 7) failAt(f.loc, "function '" + f.name + "': function number must be 0..7");
      if (!fns.insert(f.function).second)
        failAt(f.loc, "function '" + f.name + "': function number " + std::to_string(f.function) +
                          " is used twice in endpoint '" + ep.name + "'");
      validateBars(f.name, f.bars);
      validateAcs(f.name, f.acs);
    }
    if (!fns.count(0)) failAt(ep.loc, "endpoint '" + ep.name + "' has no function 0");
    linkable_[ep.name] = Info{Kind::Endpoint, ep.maxWidth, ep.maxGen, &ep.loc, ""};
  }

  void checkLink(const LinkDesc& l) {
    const std::string ln = linkName(l);
    declare(ln, l.loc, "link");
    Linkable up = linkEnd(l, ln, l.up, /*upstream=*/true);
    Linkable down = linkEnd(l, ln, l.down, /*upstream=*/false);
    if (auto it = upUsed_.find(l.up); it != upUsed_.end())
      failAt(l.loc,
             "link '" + ln + "': port '" + l.up + "' already has link '" + linkName(*it->second) + "'");
    if (auto it = downUsed_.find(l.down); it != downUsed_.end())
      failAt(l.loc,
             "link '" + ln + "': '" + l.down + "' is already linked by '" + linkName(*it->second) + "'");
    upUsed_[l.up] = &l;
    downUsed_[l.down] = &l;
    checkLinkWidthAndSpeed(l, ln, {up, down});
    parentOf_[l.down] = l.up;
  }

  // A link's upstream end is a root port or a switch downstream port; its downstream end is a
  // switch (upstream port) or an endpoint.
  Linkable linkEnd(const LinkDesc& l, const std::string& ln, const std::string& name, bool upstream) const {
    auto end = linkable_.find(name);
    bool fits = end != linkable_.end() &&
                (upstream ? end->second.kind == Kind::RootPort || end->second.kind == Kind::DownstreamPort
                          : end->second.kind == Kind::Switch || end->second.kind == Kind::Endpoint);
    if (!fits) {
      const char* notA = upstream ? "which is not a root port or switch downstream port"
                                  : "which is not a switch or endpoint";
      failAt(l.loc, "dangling link '" + ln + "': '" + (upstream ? "up" : "down") + "' names '" + name +
                        "', " + (names_.count(name) ? notA : "which is not declared"));
    }
    return end;
  }

  // The link trains to a width and speed both of its ports support.
  static void checkLinkWidthAndSpeed(const LinkDesc& l, const std::string& ln,
                                     std::initializer_list<Linkable> ends) {
    if (!validWidth(l.width))
      failAt(l.loc, "link '" + ln + "': width x" + std::to_string(l.width) +
                        " is not one of x1 x2 x4 x8 x12 x16 x32");
    if (l.gen < 1 || l.gen > 6) failAt(l.loc, "link '" + ln + "': gen must be 1..6");
    for (Linkable end : ends) {
      if (l.width > end->second.maxWidth)
        failAt(l.loc, "link '" + ln + "' is x" + std::to_string(l.width) + " but port '" + end->first +
                          "' supports at most x" + std::to_string(end->second.maxWidth));
      if (l.gen > end->second.maxGen)
        failAt(l.loc, "link '" + ln + "' is gen " + std::to_string(l.gen) + " but port '" + end->first +
                          "' supports at most gen " + std::to_string(end->second.maxGen));
    }
  }

  [[noreturn]] static void failUnconnected(const std::string& start, const std::string& top,
                                           const DescLoc& loc, const std::string& kind) {
    if (top == start) failAt(loc, kind + " '" + start + "' is not connected: no link names it as 'down'");
    failAt(loc, kind + " '" + start + "' is not connected to a host bridge: switch '" + top +
                    "' has no link above it");
  }

  // Every switch and endpoint hangs below a root port, without cycles.
  void checkReachesRoot(const std::string& start, const DescLoc& loc, const std::string& kind) const {
    std::string cur = start;
    for (std::size_t steps = 0; steps <= d_.switches.size() + 1; ++steps) {
      auto p = parentOf_.find(cur);
      if (p == parentOf_.end()) failUnconnected(start, cur, loc, kind);
      const Info& port = linkable_.at(p->second);
      if (port.kind == Kind::RootPort) return;
      cur = port.owner;  // the switch of that downstream port
    }
    failAt(loc, kind + " '" + start + "' is part of a loop of links");
  }

  const TopologyDesc& d_;
  std::map<std::string, DescLoc> names_;
  std::map<std::string, Info> linkable_;
  std::map<std::string, const LinkDesc*> upUsed_, downUsed_;
  std::map<std::string, std::string> parentOf_;  // switch/endpoint -> port above it
};

}  // namespace

void validateTopologyDesc(const TopologyDesc& d) {
  TopologyChecker(d).check();
}

std::unique_ptr<Topology> buildTopology(const TopologyDesc& d) {
  validateTopologyDesc(d);
  auto topo = std::make_unique<Topology>();
  std::map<std::string, std::pair<const std::vector<BarDesc>*, const DescLoc*>> barsOf;
  for (const HostBridgeDesc& hbd : d.hostBridges) {
    PciHostBridge& hb = topo->addHostBridge(hbd.params);
    for (const PortDesc& rp : hbd.rootPorts) {
      PciDevParams p;
      p.name = rp.name;
      p.type = PciDevType::RootPort;
      p.vendor = rp.vendor;
      p.device = rp.device;
      p.classCode = 0x060400;
      p.devNo = static_cast<std::uint8_t>(rp.slot);
      p.fn = static_cast<std::uint8_t>(rp.function);
      p.portNumber = rp.portNumber;
      p.maxLinkWidth = rp.maxWidth;
      p.maxLinkGen = rp.maxGen;
      p.acs = toAcs(rp.acs);
      topo->addRootBusFunction(hb, std::move(p));
    }
  }
  for (const SwitchDesc& sw : d.switches) {
    PciDevParams up;
    up.name = sw.name;
    up.vendor = sw.vendor;
    up.device = sw.device;
    up.classCode = 0x060400;
    up.maxLinkWidth = sw.maxWidth;
    up.maxLinkGen = sw.maxGen;
    up.acs = toAcs(sw.upstreamAcs);
    std::vector<PciDevParams> dps;
    for (const PortDesc& pd : sw.downstream) {
      PciDevParams p;
      p.name = pd.name;
      p.vendor = pd.vendor;
      p.device = pd.device;
      p.classCode = 0x060400;
      p.portNumber = pd.portNumber;
      p.maxLinkWidth = pd.maxWidth;
      p.maxLinkGen = pd.maxGen;
      p.acs = toAcs(pd.acs);
      dps.push_back(std::move(p));
    }
    topo->addSwitch(sw.name, std::move(up), std::move(dps));
  }
  for (const EndpointDesc& ep : d.endpoints) {
    for (const FunctionDesc& f : ep.functions) {
      PciDevParams p;
      p.name = f.name;
      p.vendor = f.vendor;
      p.device = f.device;
      p.classCode = f.classCode;
      p.fn = static_cast<std::uint8_t>(f.function);
      p.maxLinkWidth = ep.maxWidth;
      p.maxLinkGen = ep.maxGen;
      p.bars = toBars(f.bars);
      p.acs = toAcs(f.acs);
      topo->addEndpointFunction(ep.name, std::move(p));
      barsOf[f.name] = {&f.bars, &f.loc};
    }
  }
  for (const LinkDesc& l : d.links) {
    topo->connect(linkName(l), *topo->findDev(l.up), l.down, l.gen, l.width);
  }
  Enumerator e(*topo);
  if (auto err = e.assignBusNumbers()) failAt(d.hostBridges.front().loc, *err);
  if (auto err = e.assignResources()) {
    const DescLoc* loc = &d.hostBridges.front().loc;
    auto it = barsOf.find(err->device);
    if (it != barsOf.end()) {
      loc = it->second.second;
      for (const BarDesc& b : *it->second.first)
        if (b.index == err->bar) loc = &b.loc;
    }
    failAt(*loc, err->message);
  }
  return topo;
}

}  // namespace hmmsim
