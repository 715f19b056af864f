#pragma once
// Hand-built topologies for the topology, enumeration, routing and p2pdma tests.
//
// The reference platform ("platform()"):
//
//   hb0 (Intel 8086:2020, domain 0, root bus 0)        hb1 (Intel 8086:2020, domain 0, root bus 0x80)
//    ├─ 00.0 host bridge function                        ├─ 00.0 host bridge function
//    ├─ rp0 (01.0) ── sw0                                └─ rp2 (01.0) ── gpu3
//    │     ├─ sw0.dp0 ── gpu0
//    │     ├─ sw0.dp1 ── gpu1
//    │     ├─ sw0.dp2 ── nic0 (functions nic0.f0, nic0.f1)
//    │     └─ sw0.dp3 ── sw1
//    │                    └─ sw1.dp0 ── nvme0
//    └─ rp1 (02.0) ── gpu2
//
// Every GPU: BAR0 16 MiB 32-bit, BAR2 256 MiB 64-bit prefetchable. NIC functions: BAR0 1 MiB
// 64-bit prefetchable. NVMe: BAR0 16 KiB 32-bit. Tests edit the description before building.

#include <algorithm>
#include <string>
#include <vector>

#include "models/pcie/topology_desc.h"

namespace hmmsim::test {

inline constexpr std::uint64_t kMiB = 1ull << 20;
inline constexpr std::uint64_t kGiB = 1ull << 30;

inline BarDesc mem32(int index, std::uint64_t size) {
  BarDesc b;
  b.index = index;
  b.size = size;
  return b;
}

inline BarDesc mem64pref(int index, std::uint64_t size) {
  BarDesc b;
  b.index = index;
  b.size = size;
  b.is64 = true;
  b.prefetchable = true;
  return b;
}

inline FunctionDesc function(const std::string& name, unsigned fn, std::vector<BarDesc> bars) {
  FunctionDesc f;
  f.name = name;
  f.function = fn;
  f.bars = std::move(bars);
  return f;
}

inline EndpointDesc endpoint(const std::string& name, std::vector<BarDesc> bars) {
  EndpointDesc e;
  e.name = name;
  e.functions.push_back(function(name, 0, std::move(bars)));
  return e;
}

inline EndpointDesc gpu(const std::string& name) {
  return endpoint(name, {mem32(0, 16 * kMiB), mem64pref(2, 256 * kMiB)});
}

inline PortDesc port(const std::string& name, unsigned slotOrPort) {
  PortDesc p;
  p.name = name;
  p.slot = slotOrPort;
  p.portNumber = slotOrPort;
  return p;
}

inline SwitchDesc switchOf(const std::string& name, unsigned ports) {
  SwitchDesc s;
  s.name = name;
  for (unsigned i = 0; i < ports; ++i) s.downstream.push_back(port(name + ".dp" + std::to_string(i), i));
  return s;
}

inline LinkDesc link(const std::string& up, const std::string& down, unsigned gen = 4, unsigned width = 16) {
  LinkDesc l;
  l.up = up;
  l.down = down;
  l.gen = gen;
  l.width = width;
  return l;
}

inline HostBridgeDesc hostBridge(const std::string& name, std::uint8_t rootBus, std::uint64_t memCpu,
                                 std::uint64_t prefCpu) {
  HostBridgeDesc h;
  h.params.name = name;
  h.params.rootBus = rootBus;
  h.params.vendor = 0x8086;
  h.params.device = 0x2020;
  h.params.mem = HostWindow{Pa(memCpu), BusAddr(memCpu), 512 * kMiB, false};
  h.params.pref = HostWindow{Pa(prefCpu), BusAddr(prefCpu), 64 * kGiB, true};
  return h;
}

inline TopologyDesc platform() {
  TopologyDesc d;
  HostBridgeDesc hb0 = hostBridge("hb0", 0, 0xc0000000ull, 0x4000000000ull);
  hb0.rootPorts = {port("rp0", 1), port("rp1", 2)};
  HostBridgeDesc hb1 = hostBridge("hb1", 0x80, 0xa0000000ull, 0x5000000000ull);
  hb1.rootPorts = {port("rp2", 1)};
  d.hostBridges = {hb0, hb1};
  d.switches = {switchOf("sw0", 4), switchOf("sw1", 1)};
  EndpointDesc nic;
  nic.name = "nic0";
  nic.functions = {function("nic0.f0", 0, {mem64pref(0, 1 * kMiB)}),
                   function("nic0.f1", 1, {mem64pref(0, 1 * kMiB)})};
  d.endpoints = {gpu("gpu0"), gpu("gpu1"), gpu("gpu2"),
                 gpu("gpu3"), nic,         endpoint("nvme0", {mem32(0, 16 * 1024)})};
  d.links = {link("rp0", "sw0"),      link("sw0.dp0", "gpu0"), link("sw0.dp1", "gpu1"),
             link("sw0.dp2", "nic0"), link("sw0.dp3", "sw1"),  link("sw1.dp0", "nvme0"),
             link("rp1", "gpu2"),     link("rp2", "gpu3")};
  return d;
}

/// The fabric tests' platform: hb0 with rp0 -> sw0 and rp1 -> gpu2; sw0 has one downstream port
/// per name in `belowSwitch` (dp<i> -> belowSwitch[i]); every link gen4 x16. Endpoints are listed
/// by name, so enumeration meets them in name order.
inline TopologyDesc smallPlatform(const std::vector<std::string>& belowSwitch) {
  TopologyDesc d;
  HostBridgeDesc hb = hostBridge("hb0", 0, 0xc0000000ull, 0x4000000000ull);
  hb.rootPorts = {port("rp0", 1), port("rp1", 2)};
  d.hostBridges = {hb};
  d.switches = {switchOf("sw0", static_cast<unsigned>(belowSwitch.size()))};
  std::vector<std::string> gpus = belowSwitch;
  gpus.push_back("gpu2");
  std::sort(gpus.begin(), gpus.end());
  for (const std::string& g : gpus) d.endpoints.push_back(gpu(g));
  d.links = {link("rp0", "sw0")};
  for (std::size_t i = 0; i < belowSwitch.size(); ++i)
    d.links.push_back(link("sw0.dp" + std::to_string(i), belowSwitch[i]));
  d.links.push_back(link("rp1", "gpu2"));
  return d;
}

/// Enables ACS controls `ctrl` (implementing them) on the named root port or switch port.
inline void setPortAcs(TopologyDesc& d, const std::string& name, std::uint16_t ctrl,
                       std::uint32_t egress = 0) {
  auto apply = [&](AcsDesc& a) {
    a.present = true;
    a.cap = kPciAcsAll;
    a.ctrl = ctrl;
    a.egressVectorBits = 8;
    a.egressVector = egress;
  };
  for (auto& hb : d.hostBridges)
    for (auto& p : hb.rootPorts)
      if (p.name == name) return apply(p.acs);
  for (auto& s : d.switches)
    for (auto& p : s.downstream)
      if (p.name == name) return apply(p.acs);
  for (auto& e : d.endpoints)
    for (auto& f : e.functions)
      if (f.name == name) return apply(f.acs);
}

}  // namespace hmmsim::test
