#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "sim/params.h"
#include "sim/stats.h"
#include "sim/stats_registry.h"

using namespace hmmsim;

namespace {

struct ToyParams {
  std::uint64_t sizeBytes = 64ull << 20;
  unsigned lanes = 16;
  std::uint64_t latencyPs = 150'000;
  bool fast = false;
  int mode = 1;
};

const ParamTable<ToyParams>& toyTable() {
  static const ParamTable<ToyParams> table = [] {
    ParamTable<ToyParams> t("toy", "a toy model");
    t.bytes("size", &ToyParams::sizeBytes, "its memory", 4096, 1ull << 30);
    t.integer("lanes", &ToyParams::lanes, "lanes", "link width", 1, 32);
    t.duration("latency", &ToyParams::latencyPs, "one access", 0, 1'000'000'000);
    t.boolean("fast", &ToyParams::fast, "go faster");
    t.choice("mode", &ToyParams::mode, "how", {{"off", 0}, {"on", 1}, {"auto", 2}});
    t.check(
        [](const ToyParams& p) { return p.fast && p.lanes < 4 ? std::string("fast needs 4 lanes") : ""; });
    return t;
  }();
  return table;
}

std::string loadError(const std::string& yaml) {
  ToyParams p;
  try {
    toyTable().load(ConfigNode::loadString(yaml, "toy.yaml").at("toy"), p);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("a parameter table loads every kind of row and keeps absent keys at their defaults") {
  ToyParams p;
  toyTable().load(ConfigNode::loadString("toy: {size: 1MiB, latency: 2us, mode: auto}", "toy.yaml").at("toy"),
                  p);
  CHECK(p.sizeBytes == (1u << 20));
  CHECK(p.latencyPs == 2'000'000);
  CHECK(p.mode == 2);
  CHECK(p.lanes == 16);
  CHECK_FALSE(p.fast);
}

TEST_CASE("a parameter table's defaults come from the struct and are printed with their units") {
  const std::vector<ParamRow>& rows = toyTable().rows();
  REQUIRE(rows.size() == 5);
  CHECK(rows[0].defaultText == "64MiB");
  CHECK(rows[0].range == "4KiB .. 1GiB");
  CHECK(rows[1].defaultText == "16");
  CHECK(rows[1].unit == "lanes");
  CHECK(rows[2].defaultText == "150ns");
  CHECK(rows[4].defaultText == "on");
  CHECK(rows[4].range == "off, on, auto");
  const std::string d = toyTable().describe();
  CHECK(d.rfind("toy: a toy model\n", 0) == 0);
  CHECK(d.find("  lanes    int     lanes  16       link width [1 .. 32]\n") != std::string::npos);
  CHECK(toyTable().markdown().find("| `size` | size | bytes | 64MiB | 4KiB .. 1GiB | its memory |") !=
        std::string::npos);
}

TEST_CASE("a parameter table refuses unknown keys, out-of-range values and broken cross-field rules") {
  CHECK(loadError("toy: {lane: 4}") == "toy.yaml:1:7: key 'toy.lane': unknown key; did you mean 'lanes'?");
  CHECK(loadError("toy: {lanes: 64}") ==
        "toy.yaml:1:14: key 'toy.lanes': expected an integer from 1 to 32, got 64");
  CHECK(loadError("toy: {size: 2GiB}").find("expected a value from 4096 to 1073741824") != std::string::npos);
  CHECK(loadError("toy: {mode: of}") ==
        "toy.yaml:1:13: key 'toy.mode': expected one of: off, on, auto; got 'of' (did "
        "you mean 'off'?)");
  CHECK(loadError("toy: {fast: true, lanes: 2}") == "toy.yaml:1:6: key 'toy': fast needs 4 lanes");
}

TEST_CASE("a parameter table's text, PCI id and required rows load, document and refuse") {
  struct Named {
    std::string name;
    std::string peer = "none";
    std::uint16_t vendor = 0x10de;
  };
  ParamTable<Named> t("named", "a named element");
  t.text("name", &Named::name, "its name", true);
  t.text("peer", &Named::peer, "another element", false);
  t.id16("vendor", &Named::vendor, "PCI vendor ID");
  REQUIRE(t.rows().size() == 3);
  CHECK(t.rows()[0].defaultText == "(required)");
  CHECK(t.rows()[0].required);
  CHECK(t.rows()[1].defaultText == "\"none\"");
  CHECK(t.rows()[2].defaultText == "0x10de");
  Named n;
  t.load(ConfigNode::loadString("n: {name: gpu0, vendor: 0x8086}", "n.yaml").at("n"), n);
  CHECK(n.name == "gpu0");
  CHECK(n.peer == "none");
  CHECK(n.vendor == 0x8086);
  std::string why;
  try {
    t.load(ConfigNode::loadString("n: {peer: gpu1}", "n.yaml").at("n"), n);
  } catch (const ConfigError& e) {
    why = e.what();
  }
  CHECK(why.find("n.yaml:1:4") == 0);
  CHECK(why.find("name") != std::string::npos);
}

TEST_CASE("the stats registry nests groups by hierarchical name with units, in name order") {
  StatsGroup a("ignored"), b("ignored");
  a.counter("faults", "faults", "page faults") += 3;
  b.counter("bytes", "B", "bytes moved") += 4096;
  b.distribution("latency", "ps", "per access").sample(8);
  StatsRegistry r;
  r.add("process.main.mm", a);
  r.add("device.nic0", b);
  r.addValue("run.ops", 5, "operations", "ops");
  CHECK(r.value("process.main.mm.faults") == 3);
  CHECK(r.value("device.nic0.latency.max") == 8);
  CHECK_FALSE(r.value("device.nic0.latency.unit"));
  CHECK(r.nearestName("device.nic0.byte") == "device.nic0.bytes");
  const nlohmann::json j = r.toJson();
  CHECK(j["device"]["nic0"]["bytes"]["unit"] == "B");
  CHECK(j["process"]["main"]["mm"]["faults"]["value"] == 3);
  const auto flat = r.flat();
  REQUIRE(flat.size() == 8);  // bytes, latency x5, faults, run.ops
  CHECK(flat.front().first == "device.nic0.bytes");
  CHECK(flat.back().first == "run.ops");
}
