#include "models/pcie/topology_desc.h"

#include <algorithm>
#include <map>
#include <set>
#include <sstream>

#include "models/pcie/enumeration.h"
#include "sim/params.h"
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
// Every element kind is read by its parameter table (sim/params.h; topologyParamTables()), so a
// key, its default, unit, range and description are written once; the tables' defaults are the
// Desc structs' initialisers. Defaults that depend on the element's place (a root port's slot,
// a port number) are filled after the table has read the keys that were given.

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
    auto bits = n.optInt("egress_vector_bits", 0, 32);
    a.egressVectorBits = bits ? unsigned(*bits) : (a.cap & kPciAcsEc) ? 8 : 0;
    if (auto v = n.optInt("egress_vector", 0, 0xffffffffll)) a.egressVector = static_cast<std::uint32_t>(*v);
  }
  if ((a.cap & kPciAcsEc) && a.egressVectorBits == 0) a.egressVectorBits = 8;
  return a;
}

const char* const kAcsDesc =
    "ACS: a list of sv tb rr cr uf ec dt (capability = control), or {cap, ctrl, egress_vector_bits, "
    "egress_vector}";

/// Rows for an `acs:` key of any element whose AcsDesc is `field`.
template <typename T>
void acsRow(ParamTable<T>& t, AcsDesc T::*field) {
  t.custom({"acs", ParamType::Table, "", "absent", kAcsDesc, "list or map"},
           [field](T& d, const ConfigNode& n) { d.*field = loadAcs(n); });
}

const ParamTable<BarDesc>& barTable() {
  static const ParamTable<BarDesc> table = [] {
    ParamTable<BarDesc> t("topology.bar", "a BAR of an endpoint function (bars: list)");
    t.integer("index", &BarDesc::index, "", "BAR slot (a 64-bit BAR also takes index + 1)", 0, 5).required();
    t.bytes("size", &BarDesc::size, "size, a power of two (>= 16 for memory, >= 4 for I/O)", 0, 1ull << 62)
        .required();
    t.custom({"type", ParamType::Choice, "", "mem32", "address type", "mem32, mem64, io"},
             [](BarDesc& d, const ConfigNode& n) {
               const std::string type = n.asChoice({"mem32", "mem64", "io"});
               d.io = type == "io";
               d.is64 = type == "mem64";
             });
    t.boolean("prefetchable", &BarDesc::prefetchable, "prefetchable memory BAR");
    t.custom({"resizable", ParamType::Table, "bytes", "none",
              "Resizable BAR: the supported sizes (must hold size)", "list of sizes"},
             [](BarDesc& d, const ConfigNode& n) {
               for (const ConfigNode& s : n.elements()) d.resizable.push_back(s.asBytes());
             });
    return t;
  }();
  return table;
}

const ParamTable<FunctionDesc>& functionTable() {
  static const ParamTable<FunctionDesc> table = [] {
    ParamTable<FunctionDesc> t("topology.function",
                               "a function of an endpoint (functions: list, or the endpoint itself)");
    t.text("name", &FunctionDesc::name, "unique name (default: <endpoint>.f<function>)", false);
    t.integer("function", &FunctionDesc::function, "", "function number; function 0 is required", 0, 7);
    t.id16("vendor", &FunctionDesc::vendor, "PCI vendor ID");
    t.id16("device", &FunctionDesc::device, "PCI device ID");
    t.integer("class", &FunctionDesc::classCode, "", "24-bit class code", 0, 0xffffff);
    t.custom({"bars", ParamType::Table, "", "none", "the function's BARs", "list of topology.bar"},
             [](FunctionDesc& f, const ConfigNode& n) {
               for (const ConfigNode& b : n.elements()) {
                 BarDesc d;
                 barTable().load(b, d);
                 d.loc = locOf(b);
                 f.bars.push_back(std::move(d));
               }
             });
    acsRow(t, &FunctionDesc::acs);
    return t;
  }();
  return table;
}

const ParamTable<PortDesc>& portTable() {
  static const ParamTable<PortDesc> table = [] {
    ParamTable<PortDesc> t(
        "topology.port",
        "a root port (root_ports: of a host bridge) or a switch downstream port (downstream_ports:)");
    t.text("name", &PortDesc::name, "unique name (links refer to it)", true);
    t.integer("slot", &PortDesc::slot, "",
              "root ports only: device number on the root bus (default: order + 1)", 0, 31);
    t.integer("function", &PortDesc::function, "", "root ports only: function number", 0, 7);
    t.integer("port_number", &PortDesc::portNumber, "",
              "Port Number, the egress control vector bit (default: the slot, or the order)", 0, 255);
    t.integer("max_width", &PortDesc::maxWidth, "lanes", "widest link the port trains to", 1, 32);
    t.integer("max_gen", &PortDesc::maxGen, "", "fastest PCIe generation of the port", 1, 6);
    t.id16("vendor", &PortDesc::vendor, "PCI vendor ID (switch ports default to 0x10b5)");
    t.id16("device", &PortDesc::device, "PCI device ID (switch ports default to 0x9797)");
    acsRow(t, &PortDesc::acs);
    return t;
  }();
  return table;
}

PortDesc loadPort(const ConfigNode& n, bool root, unsigned index) {
  if (!root)
    for (const char* k : {"slot", "function"})
      if (n.has(k))
        n.at(k).fail("only root ports have a slot and a function; a switch port is numbered by its order");
  PortDesc p;
  if (!root) {
    p.vendor = 0x10b5;
    p.device = 0x9797;
  }
  if (root) p.slot = index + 1;
  portTable().load(n, p);
  if (!n.has("port_number")) p.portNumber = root ? p.slot : index;
  p.loc = locOf(n);
  return p;
}

const ParamTable<HostWindow>& windowTable() {
  static const ParamTable<HostWindow> table = [] {
    ParamTable<HostWindow> t("topology.window",
                             "an address window of a host bridge (mem_window:, pref_window:)");
    t.custom(
        {"cpu_base", ParamType::Int, "bytes", "(required)", "CPU physical address of the window", "", true},
        [](HostWindow& w, const ConfigNode& n) {
          w.cpuBase = Pa(static_cast<std::uint64_t>(n.asInt(0, INT64_MAX)));
          w.busBase = BusAddr(w.cpuBase.value());
        });
    t.custom({"bus_base", ParamType::Int, "bytes", "cpu_base",
              "PCI bus address of the window (no translation)", ""},
             [](HostWindow& w, const ConfigNode& n) {
               w.busBase = BusAddr(static_cast<std::uint64_t>(n.asInt(0, INT64_MAX)));
             });
    t.bytes("size", &HostWindow::size, "size of the window", 0, 1ull << 62).required();
    return t;
  }();
  return table;
}

HostWindow loadWindow(const ConfigNode& n, bool pref) {
  HostWindow w;
  windowTable().load(n, w);
  // bus_base defaults to cpu_base whatever the key order in the file
  if (!n.has("bus_base")) w.busBase = BusAddr(w.cpuBase.value());
  w.prefetchable = pref;
  return w;
}

const ParamTable<HostBridgeDesc>& hostBridgeTable() {
  static const ParamTable<HostBridgeDesc> table = [] {
    ParamTable<HostBridgeDesc> t("topology.host_bridge", "a host bridge: a root complex and its root bus");
    t.custom({"name", ParamType::String, "", "(required)", "unique name", "", true},
             [](HostBridgeDesc& h, const ConfigNode& n) { h.params.name = n.asString(); });
    t.custom(
        {"domain", ParamType::Int, "", "0", "PCI segment (pci_domain_nr)", "0 .. 65535"},
        [](HostBridgeDesc& h, const ConfigNode& n) { h.params.domain = std::uint16_t(n.asInt(0, 0xffff)); });
    t.custom(
        {"root_bus", ParamType::Int, "", "0", "bus number of the root bus", "0 .. 255"},
        [](HostBridgeDesc& h, const ConfigNode& n) { h.params.rootBus = std::uint8_t(n.asInt(0, 255)); });
    t.custom(
        {"vendor", ParamType::Int, "", "0x8086", "vendor ID of the host bridge function 00.0", "0 .. 0xffff"},
        [](HostBridgeDesc& h, const ConfigNode& n) { h.params.vendor = std::uint16_t(n.asInt(0, 0xffff)); });
    t.custom(
        {"device", ParamType::Int, "", "0x2020", "device ID of the host bridge function 00.0", "0 .. 0xffff"},
        [](HostBridgeDesc& h, const ConfigNode& n) { h.params.device = std::uint16_t(n.asInt(0, 0xffff)); });
    t.custom({"host_function", ParamType::Bool, "", "true", "a host bridge function exists at 00.0", ""},
             [](HostBridgeDesc& h, const ConfigNode& n) { h.params.hostFunction = n.asBool(); });
    t.custom(
        {"p2p", ParamType::Bool, "", "true", "the root complex forwards peer-to-peer requests (else UR)", ""},
        [](HostBridgeDesc& h, const ConfigNode& n) { h.params.p2pSupported = n.asBool(); });
    t.custom({"mem_window", ParamType::Table, "", "0xc0000000 + 1GiB", "non-prefetchable window",
              "see topology.window"},
             [](HostBridgeDesc& h, const ConfigNode& n) { h.params.mem = loadWindow(n, false); });
    t.custom({"pref_window", ParamType::Table, "", "0x4000000000 + 256GiB", "64-bit prefetchable window",
              "see topology.window"},
             [](HostBridgeDesc& h, const ConfigNode& n) { h.params.pref = loadWindow(n, true); });
    t.custom({"root_ports", ParamType::Table, "", "none", "the root ports", "list of topology.port"},
             [](HostBridgeDesc& h, const ConfigNode& n) {
               unsigned i = 0;
               for (const ConfigNode& rp : n.elements()) h.rootPorts.push_back(loadPort(rp, true, i++));
             });
    return t;
  }();
  return table;
}

HostBridgeDesc loadHostBridge(const ConfigNode& h) {
  HostBridgeDesc hb;
  hb.params.mem = HostWindow{Pa(0xc0000000ull), BusAddr(0xc0000000ull), 1ull << 30, false};
  hb.params.pref = HostWindow{Pa(0x4000000000ull), BusAddr(0x4000000000ull), 256ull << 30, true};
  hostBridgeTable().load(h, hb);
  hb.loc = locOf(h);
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

const ParamTable<SwitchDesc>& switchTable() {
  static const ParamTable<SwitchDesc> table = [] {
    ParamTable<SwitchDesc> t("topology.switch", "a PCIe switch: an upstream port and its downstream ports");
    t.text("name", &SwitchDesc::name, "unique name (links refer to it)", true);
    t.id16("vendor", &SwitchDesc::vendor, "PCI vendor ID of its ports");
    t.id16("device", &SwitchDesc::device, "PCI device ID of its ports");
    t.integer("max_width", &SwitchDesc::maxWidth, "lanes", "upstream port lanes", 1, 32);
    t.integer("max_gen", &SwitchDesc::maxGen, "", "fastest PCIe generation", 1, 6);
    acsRow(t, &SwitchDesc::upstreamAcs);
    // Read in loadSwitch, after the other keys (a count inherits them).
    t.custom(
        {"downstream_ports", ParamType::Table, "", "(required)",
         "N identical ports named <switch>.dp<i>, or a list of topology.port", "1 .. 32 or a list", true},
        [](SwitchDesc&, const ConfigNode&) {});
    return t;
  }();
  return table;
}

SwitchDesc loadSwitch(const ConfigNode& s) {
  SwitchDesc sw;
  switchTable().load(s, sw);
  sw.loc = locOf(s);
  ConfigNode dps = s.at("downstream_ports");
  if (dps.isScalar()) {
    sw.downstream = uniformDownstreamPorts(sw, dps);
  } else {
    unsigned i = 0;
    for (const ConfigNode& p : dps.elements()) sw.downstream.push_back(loadPort(p, false, i++));
  }
  return sw;
}

const ParamTable<EndpointDesc>& endpointTable() {
  static const ParamTable<EndpointDesc> table = [] {
    ParamTable<EndpointDesc> t(
        "topology.endpoint",
        "a PCIe endpoint; a single-function endpoint also takes the topology.function keys "
        "(but name and function)");
    t.text("name", &EndpointDesc::name, "unique name (links refer to it)", true);
    t.integer("max_width", &EndpointDesc::maxWidth, "lanes", "widest link it trains to", 1, 32);
    t.integer("max_gen", &EndpointDesc::maxGen, "", "fastest PCIe generation", 1, 6);
    t.custom({"functions", ParamType::Table, "", "one function 0", "a multi-function endpoint's functions",
              "list of topology.function"},
             [](EndpointDesc& ep, const ConfigNode& n) {
               for (const ConfigNode& f : n.elements()) {
                 FunctionDesc fd;
                 functionTable().load(f, fd);
                 if (!f.has("name")) fd.name = ep.name + ".f" + std::to_string(fd.function);
                 fd.loc = locOf(f);
                 ep.functions.push_back(std::move(fd));
               }
             });
    return t;
  }();
  return table;
}

EndpointDesc loadEndpoint(const ConfigNode& e) {
  e.requireMap();
  EndpointDesc ep;
  ep.loc = locOf(e);
  ep.name = e.at("name").asString();
  // The endpoint's own keys go to its table, a single function's keys to the function table.
  std::vector<std::string> own = endpointTable().keys(), fn = functionTable().keys();
  std::vector<std::string> allowed = own;
  for (const std::string& k : fn)
    if (k != "name" && k != "function") allowed.push_back(k);
  e.requireKeys(allowed);
  const bool multi = e.has("functions");
  if (multi)
    for (const char* k : {"vendor", "device", "class", "bars", "acs"})
      if (e.has(k)) e.at(k).fail("give per-function keys inside 'functions' when 'functions' is present");
  YAML::Node epKeys(YAML::NodeType::Map), fnKeys(YAML::NodeType::Map);
  for (const auto& [k, v] : e.entries())
    (std::find(own.begin(), own.end(), k) != own.end() ? epKeys : fnKeys)[k] = v.yaml();
  auto file = std::make_shared<const std::string>(e.file());
  endpointTable().load(ConfigNode(epKeys, file, e.keyPath()), ep);
  if (!multi) {
    FunctionDesc f;
    functionTable().load(ConfigNode(fnKeys, file, e.keyPath()), f);
    f.name = ep.name;
    f.loc = locOf(e);
    ep.functions.push_back(std::move(f));
  }
  return ep;
}

const ParamTable<LinkDesc>& linkTable() {
  static const ParamTable<LinkDesc> table = [] {
    ParamTable<LinkDesc> t("topology.link", "a link between a port and the switch or endpoint below it");
    t.text("name", &LinkDesc::name, "its name (default: <up>-<down>)", false);
    t.text("up", &LinkDesc::up, "the root port or switch downstream port above", true);
    t.text("down", &LinkDesc::down, "the switch or endpoint below", true);
    t.integer("gen", &LinkDesc::gen, "", "PCIe generation the link trains to", 1, 6);
    t.integer("width", &LinkDesc::width, "lanes", "link width", 1, 32);
    return t;
  }();
  return table;
}

LinkDesc loadLink(const ConfigNode& l) {
  LinkDesc ld;
  linkTable().load(l, ld);
  ld.loc = locOf(l);
  return ld;
}

}  // namespace

std::vector<const ParamTableBase*> topologyParamTables() {
  return {&hostBridgeTable(), &windowTable(),   &portTable(), &switchTable(),
          &endpointTable(),   &functionTable(), &barTable(),  &linkTable()};
}

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
