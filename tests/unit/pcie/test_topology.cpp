#include <catch2/catch.hpp>

#include "models/pcie/topology_desc.h"
#include "tests/unit/pcie/topology_fixtures.h"

using namespace hmmsim;
using namespace hmmsim::test;

namespace {

const char* kYaml = R"(topology:
  host_bridges:
    - name: hb0
      vendor: 0x8086
      device: 0x2020
      mem_window: {cpu_base: 0xc0000000, size: 512MiB}
      pref_window: {cpu_base: 0x4000000000, size: 64GiB}
      root_ports:
        - {name: rp0, slot: 1, max_width: 16, acs: [sv, rr, cr, uf]}
        - {name: rp1, slot: 2, max_width: 8}
  switches:
    - name: sw0
      downstream_ports: 2
  endpoints:
    - name: gpu0
      vendor: 0x10de
      device: 0x2330
      class: 0x030200
      bars:
        - {index: 0, size: 16MiB}
        - {index: 2, size: 8GiB, type: mem64, prefetchable: true}
    - name: nic0
      functions:
        - {name: nic0.f0, function: 0, bars: [{index: 0, size: 1MiB, type: mem64, prefetchable: true}]}
        - {name: nic0.f1, function: 1, acs: {cap: [rr, ec], ctrl: [rr], egress_vector: 0x1}}
    - name: nvme0
      max_width: 4
      bars: [{index: 0, size: 16KiB}]
  links:
    - {name: l0, up: rp0, down: sw0, gen: 4, width: 16}
    - {name: l1, up: sw0.dp0, down: gpu0, gen: 4, width: 16}
    - {name: l2, up: sw0.dp1, down: nic0, gen: 3, width: 8}
    - {name: l3, up: rp1, down: nvme0, gen: 3, width: 4}
)";

std::string errorOf(const std::string& yaml) {
  try {
    auto root = ConfigNode::loadString(yaml, "scen.yaml");
    buildTopology(loadTopologyDesc(root.at("topology")));
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

std::string errorOf(const TopologyDesc& d) {
  try {
    buildTopology(d);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

std::string replace(std::string s, const std::string& from, const std::string& to) {
  auto at = s.find(from);
  REQUIRE(at != std::string::npos);
  return s.replace(at, from.size(), to);
}

}  // namespace

TEST_CASE("a YAML description builds the tree it describes") {
  auto root = ConfigNode::loadString(kYaml, "scen.yaml");
  auto topo = buildTopology(loadTopologyDesc(root.at("topology")));
  const PciDev& gpu = *topo->findDev("gpu0");
  CHECK(gpu.vendor() == 0x10de);
  CHECK(gpu.classCode() == 0x030200);
  CHECK(gpu.bar(2).is64);
  CHECK(gpu.bar(2).size == 8 * kGiB);
  CHECK(gpu.upstreamBridge() == topo->findDev("sw0.dp0"));
  CHECK(topo->findDev("sw0.dp0")->upstreamBridge() == topo->findDev("sw0"));
  CHECK(topo->findDev("sw0")->upstreamBridge() == topo->findDev("rp0"));
  CHECK(topo->findDev("rp0")->upstreamBridge() == nullptr);
  CHECK(topo->findDev("rp0")->acs().enabled(kPciAcsRr));
  const PcieLink& l2 = topo->link(topo->findDev("nic0.f1")->upstreamLink());
  CHECK(l2.name == "l2");
  CHECK(l2.gen == 3);
  CHECK(l2.width == 8);
  CHECK(l2.down == topo->findDev("nic0.f0"));
  CHECK(topo->findDev("nic0.f1")->acs().egressVector == 0x1);
}

TEST_CASE("functions of one device share its link and function 0 is multifunction") {
  auto root = ConfigNode::loadString(kYaml, "scen.yaml");
  auto topo = buildTopology(loadTopologyDesc(root.at("topology")));
  const PciDev& f0 = *topo->findDev("nic0.f0");
  const PciDev& f1 = *topo->findDev("nic0.f1");
  CHECK(f0.multifunction());
  CHECK_FALSE(topo->findDev("gpu0")->multifunction());
  CHECK(f0.upstreamLink() == f1.upstreamLink());
  CHECK(f0.bus() == f1.bus());
  CHECK(f0.devNo() == f1.devNo());
}

TEST_CASE("PCI functions hang below their upstream bridge as Device parents") {
  auto topo = buildTopology(platform());
  PciDev& nvme = *topo->findDev("nvme0");
  CHECK(nvme.parent() == topo->findDev("sw1.dp0"));
  CHECK(pciFindParentDev(&nvme) == &nvme);
  Device queue("nvme0q1", &nvme);
  CHECK(pciFindParentDev(&queue) == &nvme);
  Device loose("loose");
  CHECK(pciFindParentDev(&loose) == nullptr);
  CHECK(toPciDev(&queue) == nullptr);
}

TEST_CASE("ACS control writes are limited to the implemented controls") {
  auto topo = buildTopology(platform());
  PciDev& dp = *topo->findDev("sw0.dp0");
  CHECK(dp.setAcsCtrl(kPciAcsRr) == Errno::Inval);  // no ACS capability
  TopologyDesc d = platform();
  for (auto& p : d.switches[0].downstream)
    if (p.name == "sw0.dp0") p.acs = AcsDesc{true, kPciAcsSv | kPciAcsRr, 0, 0, 0, {}};
  auto t2 = buildTopology(d);
  PciDev& dp2 = *t2->findDev("sw0.dp0");
  CHECK(dp2.setAcsCtrl(kPciAcsRr | kPciAcsCr) == Errno::Inval);
  CHECK(dp2.acs().ctrl == 0);
  CHECK(dp2.setAcsCtrl(kPciAcsRr) == Errno::Ok);
  CHECK(dp2.hasAcsRedir());
  CHECK(dp2.setAcsEgressVector(1) == Errno::Inval);  // EC not implemented
}

TEST_CASE("a duplicate name is an error naming the element and both places") {
  std::string msg = errorOf(replace(kYaml, "name: nvme0", "name: gpu0"));
  CHECK_THAT(msg, Catch::StartsWith("scen.yaml:26:7: key 'topology.endpoints[2]': duplicate name 'gpu0'"));
  CHECK_THAT(msg, Catch::Contains("first declared at scen.yaml:15"));
}

TEST_CASE("a link to an undeclared element is a dangling link error") {
  std::string msg = errorOf(replace(kYaml, "up: sw0.dp1, down: nic0", "up: sw0.dp1, down: nic9"));
  CHECK_THAT(msg, Catch::StartsWith(
                      "scen.yaml:32:7: key 'topology.links[2]': dangling link 'l2': 'down' names 'nic9', "
                      "which is not declared"));
}

TEST_CASE("a link whose upper end is not a downstream-facing port is an error") {
  std::string msg = errorOf(replace(kYaml, "up: sw0.dp1, down: nic0", "up: gpu0, down: nic0"));
  CHECK_THAT(
      msg, Catch::Contains(
               "dangling link 'l2': 'up' names 'gpu0', which is not a root port or switch downstream port"));
}

TEST_CASE("a link wider than a port is an error naming the link and the port") {
  std::string msg = errorOf(
      replace(kYaml, "up: rp1, down: nvme0, gen: 3, width: 4", "up: rp1, down: nvme0, gen: 3, width: 8"));
  CHECK_THAT(
      msg,
      Catch::StartsWith(
          "scen.yaml:33:7: key 'topology.links[3]': link 'l3' is x8 but port 'nvme0' supports at most x4"));
  std::string msg2 = errorOf(
      replace(kYaml, "up: rp1, down: nvme0, gen: 3, width: 4", "up: rp1, down: nvme0, gen: 3, width: 16"));
  CHECK_THAT(msg2, Catch::Contains("link 'l3' is x16 but port 'rp1' supports at most x8"));
}

TEST_CASE("a link faster than a port is an error") {
  TopologyDesc d = platform();
  d.endpoints[0].maxGen = 3;
  CHECK_THAT(errorOf(d),
             Catch::Contains("link 'sw0.dp0-gpu0' is gen 4 but port 'gpu0' supports at most gen 3"));
}

TEST_CASE("a BAR that cannot fit is an error located at the BAR") {
  std::string msg = errorOf(replace(kYaml, "size: 8GiB", "size: 128GiB"));
  CHECK_THAT(msg, Catch::StartsWith("scen.yaml:21:11: key 'topology.endpoints[0].bars[1]': BAR 2 of gpu0"));
  CHECK_THAT(msg, Catch::Contains("does not fit: host bridge hb0 prefetchable window is 64GiB"));
}

TEST_CASE("a BAR whose size is not a power of two is an error naming the BAR") {
  std::string msg = errorOf(replace(kYaml, "{index: 0, size: 16MiB}", "{index: 0, size: 12MiB}"));
  CHECK_THAT(
      msg, Catch::StartsWith("scen.yaml:20:11: key 'topology.endpoints[0].bars[0]': BAR 0 of 'gpu0': size"));
  CHECK_THAT(msg, Catch::Contains("is not a power of two"));
}

TEST_CASE("a 32-bit BAR larger than 2 GiB is an error") {
  TopologyDesc d = platform();
  d.endpoints[0].functions[0].bars[0].size = 4 * kGiB;
  CHECK_THAT(errorOf(d), Catch::Contains("BAR 0 of 'gpu0': a 32-bit BAR of 4GiB cannot fit below 4 GiB"));
}

TEST_CASE("a 64-bit BAR overlapping the next BAR slot is an error") {
  TopologyDesc d = platform();
  d.endpoints[0].functions[0].bars.push_back(mem32(3, 1 * kMiB));  // BAR 2 is 64-bit: slots 2 and 3
  CHECK_THAT(errorOf(d), Catch::Contains("BAR 3 of 'gpu0': slot 3 is already used"));
}

TEST_CASE("an endpoint without a link is an error") {
  TopologyDesc d = platform();
  d.links.pop_back();  // rp2-gpu3
  CHECK_THAT(errorOf(d), Catch::Contains("endpoint 'gpu3' is not connected: no link names it as 'down'"));
}

TEST_CASE("a port linked twice is an error") {
  TopologyDesc d = platform();
  d.links.push_back(link("rp1", "gpu3"));
  CHECK_THAT(errorOf(d), Catch::Contains("port 'rp1' already has link 'rp1-gpu2'"));
}

TEST_CASE("a switch linked below itself is an error") {
  TopologyDesc d = platform();
  d.switches.push_back(switchOf("sw2", 2));
  d.links.push_back(link("sw2.dp0", "sw2"));
  CHECK_THAT(errorOf(d), Catch::Contains("switch 'sw2' is part of a loop of links"));
}

TEST_CASE("ACS control enabling an unimplemented control is an error") {
  std::string msg = errorOf(replace(kYaml, "cap: [rr, ec], ctrl: [rr]", "cap: [rr, ec], ctrl: [rr, cr]"));
  CHECK_THAT(msg,
             Catch::Contains("ACS of 'nic0.f1': 'ctrl' enables a control that 'cap' does not implement"));
}

TEST_CASE("an unknown key in a description suggests the nearest valid key") {
  std::string msg = errorOf(replace(kYaml, "max_width: 4", "max_widht: 4"));
  CHECK_THAT(msg, Catch::Contains("did you mean 'max_width'?"));
}

TEST_CASE("host bridge windows that overlap in CPU addresses are an error") {
  TopologyDesc d = platform();
  d.hostBridges[1].params.pref.cpuBase = Pa(0x4000000000ull + 32 * kGiB);  // inside hb0's pref window
  CHECK_THAT(errorOf(d),
             Catch::Contains("host bridge 'hb1': its prefetchable window overlaps the prefetchable "
                             "window of 'hb0' in CPU physical addresses"));
}

TEST_CASE("switch downstream ports can be listed with their own port numbers and ACS") {
  std::string yaml = replace(
      kYaml, "      downstream_ports: 2\n",
      "      downstream_ports:\n"
      "        - {name: down-a, port_number: 4, acs: {cap: [sv, rr, ec], ctrl: [ec], egress_vector: 0x20}}\n"
      "        - {name: down-b, port_number: 5}\n");
  yaml = replace(yaml, "up: sw0.dp0", "up: down-a");
  yaml = replace(yaml, "up: sw0.dp1", "up: down-b");
  auto root = ConfigNode::loadString(yaml, "scen.yaml");
  auto topo = buildTopology(loadTopologyDesc(root.at("topology")));
  const PciDev& a = *topo->findDev("down-a");
  CHECK(a.portNumber() == 4);
  CHECK(a.acs().cap == (kPciAcsSv | kPciAcsRr | kPciAcsEc));
  CHECK(a.acs().ctrl == kPciAcsEc);
  CHECK(a.acs().egressVector == 0x20);
  CHECK(topo->findDev("gpu0")->upstreamBridge() == &a);
  CHECK(topo->findSwitch("sw0")->downstream.size() == 2);
}

TEST_CASE("an endpoint mixing 'functions' with single-function keys is an error") {
  std::string msg = errorOf(replace(kYaml, "    - name: nic0\n      functions:",
                                    "    - name: nic0\n      vendor: 0x15b3\n      functions:"));
  CHECK_THAT(
      msg, Catch::Contains("key 'topology.endpoints[1].vendor': give per-function keys inside 'functions'"));
}

TEST_CASE("describeTopology lists every function with its bus range, windows, BARs and ACS") {
  TopologyDesc d = platform();
  setPortAcs(d, "sw0.dp0", kPciAcsRr | kPciAcsUf);
  auto topo = buildTopology(d);
  std::string text = describeTopology(*topo);
  INFO(text);
  CHECK_THAT(text,
             Catch::Contains("host bridge hb0: domain 0, root bus 0, mem cpu c0000000 bus c0000000 512MiB"));
  CHECK_THAT(text, Catch::Contains("  0000:00:01.0 rp0 [8086:2030] root port, bus 01-08, mem "));
  CHECK_THAT(text, Catch::Contains("    0000:02:00.0 sw0.dp0 [8086:2030] switch downstream port"));
  CHECK_THAT(text, Catch::Contains(", ACS rr,uf\n"));
  CHECK_THAT(text, Catch::Contains("      0000:03:00.0 gpu0 [1af4:0001] endpoint, link gen4 x16, BAR0 "));
  CHECK_THAT(text, Catch::Contains("BAR2 4000000000 256MiB 64-bit pref"));
}
