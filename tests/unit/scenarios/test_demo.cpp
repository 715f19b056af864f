#include <catch2/catch.hpp>

#include "scenarios/demo.h"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <fstream>
#include <sstream>

using namespace hmmsim;

namespace {
std::string lineOf(const std::string& text, const std::string& key) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.find(key) != std::string::npos) return line;
  }
  return "";
}
}  // namespace

TEST_CASE("the demo's fork copies on write only what the child wrote and all checks pass") {
  DemoOptions opt;
  opt.mapBytes = 8ull << 20;  // 4 MiB of 4 KiB pages, 4 MiB of THP
  std::ostringstream out;
  REQUIRE(runDemo(opt, out) == 0);
  const std::string text = out.str();
  CHECK(lineOf(text, "data checks").find("passed") != std::string::npos);
  // The child writes half of the 4 KiB half: 512 pages copied.
  CHECK(lineOf(text, "copy-on-write copies").find(" 512") != std::string::npos);
  CHECK(lineOf(text, "THP faults").find(" 2") != std::string::npos);
  CHECK(lineOf(text, "THP PMD splits").find(" 1") != std::string::npos);
  CHECK(lineOf(text, "RAM pages after exit").find(" 0") != std::string::npos);
  // A mirror sees fork's write-protection and munmap's unmap.
  CHECK(lineOf(text, "protection_page") != "");
  CHECK(lineOf(text, "unmap") != "");
}

TEST_CASE("the demo writes its stats as JSON with units") {
  DemoOptions opt;
  opt.mapBytes = 4ull << 20;
  opt.statsJson = "demo-stats-test.json";
  std::ostringstream out;
  REQUIRE(runDemo(opt, out) == 0);
  std::ifstream f(opt.statsJson);
  REQUIRE(f.good());
  auto j = nlohmann::json::parse(f);
  CHECK(j["top"]["phys_mem"].is_object());
  CHECK(j["top"]["proc0"]["mm"].is_object());
  std::remove(opt.statsJson.c_str());
}

TEST_CASE("two demo runs write byte-identical stats (determinism)") {
  auto run = [](const std::string& path) {
    DemoOptions opt;
    opt.mapBytes = 4ull << 20;
    opt.statsJson = path;
    std::ostringstream out;
    REQUIRE(runDemo(opt, out) == 0);
    std::ifstream f(path);
    std::stringstream text;
    text << f.rdbuf();
    std::remove(path.c_str());
    return std::make_pair(out.str(), text.str());
  };
  const auto first = run("demo-determinism-a.json");
  const auto second = run("demo-determinism-b.json");
  REQUIRE_FALSE(first.second.empty());
  CHECK(first.second == second.second);
  // The summaries differ only in the stats file name they mention.
  CHECK(first.first.substr(0, first.first.find("stats written")) ==
        second.first.substr(0, second.first.find("stats written")));
}

TEST_CASE("a stats path that cannot be written fails the demo with the reason") {
  DemoOptions opt;
  opt.mapBytes = 4ull << 20;
  opt.statsJson = "no-such-directory-for-hmmsim/stats.json";
  std::ostringstream out;
  CHECK(runDemo(opt, out) == 1);
  const std::string line = lineOf(out.str(), "stats NOT written");
  CHECK(line.find("no-such-directory-for-hmmsim/stats.json") != std::string::npos);
  CHECK(line.find("No such file or directory") != std::string::npos);
}
