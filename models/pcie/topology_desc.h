#pragma once
// Declarative description of a PCIe topology: plain structs a scenario file (or a test) fills,
// a loader from YAML, and buildTopology(), which validates the description, builds the
// Topology and enumerates it (bus numbers, BARs, bridge windows).
//
// Every user mistake is a ConfigError that names the file, line and key of the offending element
// and what is wrong: a duplicate name, a link whose end names nothing linkable ("dangling"), a
// link wider or faster than a port, a port or device linked twice or never, a BAR that is not a
// power of two or cannot fit in its host bridge window. Descriptions built in C++ (tests) have
// no file position; their errors name the element and "<topology>".
//
// YAML format (every key optional unless marked; sizes take units, ids take 0x hex):
//
//   host_bridges:                       # required, at least one
//     - name: hb0                       # required, unique among all names
//       domain: 0                       # PCI segment                          [0]
//       root_bus: 0                     # root bus number                      [0]
//       vendor: 0x8086                  # host bridge function identity        [0x8086]
//       device: 0x2020                  #                                      [0x2020]
//       host_function: true             # a host bridge function at 00.0       [true]
//       p2p: true                       # RC forwards peer requests            [true]
//       mem_window:  {cpu_base: 0xc0000000, bus_base: 0xc0000000, size: 1GiB}   # [0xc0000000, 1GiB]
//       pref_window: {cpu_base: 0x4000000000, size: 256GiB}  # bus_base defaults to cpu_base
//       root_ports:
//         - {name: rp0, slot: 1, function: 0, port_number: 1, max_width: 16, max_gen: 5,
//            vendor: 0x8086, device: 0x2030, acs: [sv, rr, cr, uf]}
//   switches:
//     - name: sw0                       # required
//       vendor: 0x10b5, device: 0x9797, max_width: 16, max_gen: 4, acs: [...]   # upstream port
//       downstream_ports: 4             # or a list: [{name, port_number, max_width, max_gen, acs}]
//                                       # (a count names them sw0.dp0, sw0.dp1, ...)
//   endpoints:
//     - name: gpu0                      # required
//       max_width: 16, max_gen: 5
//       vendor: 0x10de, device: 0x2330, class: 0x030200       # single-function shorthand, or:
//       bars: [{index: 0, size: 16MiB, type: mem32}, {index: 2, size: 32GiB, type: mem64,
//               prefetchable: true, resizable: [256MiB, 32GiB]}]
//       acs: [rr]
//       functions: [{name: nic0.f0, function: 0, vendor: ..., bars: [...], acs: ...}, ...]
//   links:
//     - {name: l0, up: rp0, down: sw0, gen: 4, width: 16}   # up: root port or switch downstream
//                                                           # port; down: switch or endpoint
//
// acs: a list of enabled controls (sv tb rr cr uf ec dt: implemented = enabled), or a map
// {cap: [...], ctrl: [...], egress_vector_bits: 8, egress_vector: 0x2}.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "models/pcie/topology.h"
#include "sim/config.h"
#include "sim/params.h"

namespace hmmsim {

/// Where an element was declared (for error messages).
struct DescLoc {
  std::string file;  ///< empty for descriptions built in code
  int line = 0;
  int column = 0;
  std::string key;  ///< dotted key path ("topology.endpoints[1].bars[0]")
};

struct BarDesc {
  int index = 0;           ///< BAR slot 0..5 (a 64-bit BAR also occupies index + 1)
  std::uint64_t size = 0;  ///< bytes, power of two (>= 16 for memory, >= 4 for I/O)
  bool io = false;         ///< I/O BAR
  bool is64 = false;       ///< 64-bit memory BAR
  bool prefetchable = false;
  std::vector<std::uint64_t> resizable;  ///< Resizable BAR supported sizes; must contain size
  DescLoc loc;
};

struct AcsDesc {
  bool present = false;
  std::uint16_t cap = 0;   ///< implemented controls (kPciAcs*)
  std::uint16_t ctrl = 0;  ///< enabled controls, subset of cap
  unsigned egressVectorBits = 0;
  std::uint32_t egressVector = 0;
  DescLoc loc;
};

struct FunctionDesc {
  std::string name;
  unsigned function = 0;  ///< 0..7
  std::uint16_t vendor = 0x1af4;
  std::uint16_t device = 0x0001;
  std::uint32_t classCode = 0xff0000;  ///< 24-bit class code
  std::vector<BarDesc> bars;
  AcsDesc acs;
  DescLoc loc;
};

/// A root port or a switch downstream port.
struct PortDesc {
  std::string name;
  unsigned slot = 0;        ///< root ports: device number on the root bus (switch ports: by order)
  unsigned function = 0;    ///< root ports: function number
  unsigned portNumber = 0;  ///< Port Number (egress control vector bit)
  unsigned maxWidth = 16;   ///< lanes
  unsigned maxGen = 5;
  std::uint16_t vendor = 0x8086;
  std::uint16_t device = 0x2030;
  AcsDesc acs;
  DescLoc loc;
};

struct HostBridgeDesc {
  HostBridgeParams params;
  std::vector<PortDesc> rootPorts;
  DescLoc loc;
};

struct SwitchDesc {
  std::string name;
  std::uint16_t vendor = 0x10b5;
  std::uint16_t device = 0x9797;
  unsigned maxWidth = 16;  ///< upstream port lanes
  unsigned maxGen = 5;
  AcsDesc upstreamAcs;
  std::vector<PortDesc> downstream;
  DescLoc loc;
};

struct EndpointDesc {
  std::string name;
  unsigned maxWidth = 16;
  unsigned maxGen = 5;
  std::vector<FunctionDesc> functions;  ///< at least one; function 0 required
  DescLoc loc;
};

struct LinkDesc {
  std::string name;  ///< empty: "<up>-<down>"
  std::string up;    ///< root port or switch downstream port
  std::string down;  ///< switch or endpoint
  unsigned gen = 3;
  unsigned width = 16;
  DescLoc loc;
};

struct TopologyDesc {
  std::vector<HostBridgeDesc> hostBridges;
  std::vector<SwitchDesc> switches;
  std::vector<EndpointDesc> endpoints;
  std::vector<LinkDesc> links;
};

/// Reads a description from the YAML map `node` (format in the header). Throws ConfigError on
/// unknown keys and malformed values.
TopologyDesc loadTopologyDesc(const ConfigNode& node);
/// The parameter tables (sim/params.h) the loader reads each element kind with: host bridge,
/// window, port, switch, endpoint, function, BAR, link (`hmmsim describe topology.link`).
std::vector<const ParamTableBase*> topologyParamTables();

/// Checks names, links, widths, generations and BAR shapes; throws ConfigError naming the element.
void validateTopologyDesc(const TopologyDesc& desc);

/// validateTopologyDesc(), then builds the topology and enumerates it. A BAR that cannot be
/// placed in its host bridge window is a ConfigError located at that BAR.
std::unique_ptr<Topology> buildTopology(const TopologyDesc& desc);

}  // namespace hmmsim
