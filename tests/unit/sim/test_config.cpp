#include <catch2/catch.hpp>

#include "sim/config.h"

using namespace hmmsim;

namespace {
std::string errorOf(const std::function<void()>& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST_CASE("an unknown key names file, line, column and the nearest valid key") {
  auto root = ConfigNode::loadString("platform:\n  bar_size: 256MiB\n  link_sped: 3\n", "scen.yaml");
  auto platform = root.at("platform");
  std::string msg = errorOf([&] { platform.requireKeys({"bar_size", "link_speed", "lanes"}); });
  CHECK(msg == "scen.yaml:3:3: key 'platform.link_sped': unknown key; did you mean 'link_speed'?");
}

TEST_CASE("an unknown key far from every valid key lists the valid keys") {
  auto root = ConfigNode::loadString("zzzzzzzz: 1\n", "a.yaml");
  std::string msg = errorOf([&] { root.requireKeys({"seed", "platform"}); });
  CHECK(msg.find("valid keys here are: seed platform") != std::string::npos);
}

TEST_CASE("values with units are checked and located") {
  auto root =
      ConfigNode::loadString("bar_size: 256MiB\nlatency: 150ns\nbw: 8GB/s\nbad: 12 apples\n", "u.yaml");
  CHECK(root.at("bar_size").asBytes() == 256ull << 20);
  CHECK(root.at("latency").asDurationPs() == 150000u);
  CHECK(root.at("bw").asBitsPerSecond() == Approx(64e9));
  std::string msg = errorOf([&] { root.at("bad").asBytes(); });
  CHECK(msg.rfind("u.yaml:4:6: key 'bad': expected a byte size", 0) == 0);
  CHECK(msg.find("got '12 apples'") != std::string::npos);
}

TEST_CASE("integers are range-checked and choices suggest the nearest") {
  auto root = ConfigNode::loadString("lanes: 64\nmode: strcit\nn: x1\n", "c.yaml");
  CHECK(errorOf([&] { root.at("lanes").asInt(1, 32); }) ==
        "c.yaml:1:8: key 'lanes': expected an integer from 1 to 32, got 64");
  CHECK(errorOf([&] { root.at("n").asInt(0, 3); }).find("got 'x1'") != std::string::npos);
  CHECK(errorOf([&] {
          root.at("mode").asChoice({"strict", "lazy", "off"});
        }).find("did you mean 'strict'?") != std::string::npos);
  CHECK(root.optInt("missing", 0, 1) == std::nullopt);
}

TEST_CASE("a missing required key and a YAML syntax error are located") {
  auto root = ConfigNode::loadString("a: 1\n", "m.yaml");
  CHECK(errorOf([&] { root.at("seed"); }).find("missing required key 'seed'") != std::string::npos);
  std::string msg = errorOf([&] { ConfigNode::loadString("a: [1, 2\n", "s.yaml"); });
  CHECK(msg.rfind("s.yaml:", 0) == 0);
  CHECK(msg.find("YAML syntax error") != std::string::npos);
  CHECK(errorOf([&] { ConfigNode::loadFile("/nonexistent/x.yaml"); }).find("cannot open the file") !=
        std::string::npos);
}

TEST_CASE("list elements carry their index in the key path") {
  auto root = ConfigNode::loadString("devs:\n  - {name: a}\n  - {nmae: b}\n", "l.yaml");
  auto devs = root.at("devs").elements();
  REQUIRE(devs.size() == 2);
  CHECK(errorOf([&] { devs[1].requireKeys({"name"}); }).find("key 'devs[1].nmae'") != std::string::npos);
}
