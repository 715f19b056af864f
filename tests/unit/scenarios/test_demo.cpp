#include <catch2/catch.hpp>

#include "scenarios/demo.h"

#include <nlohmann/json.hpp>

#include <cctype>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <optional>
#include <sstream>
#include <vector>

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

/// The whole number a summary row "  <key>   <value>" ends with; nullopt when no row starts with
/// `key` or the rest of the row is not blanks followed by digits only (so 10 never reads as 1).
std::optional<std::uint64_t> rowValue(const std::string& text, const std::string& key) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    const std::size_t first = line.find_first_not_of(' ');
    if (first == std::string::npos || line.compare(first, key.size(), key) != 0) continue;
    const std::string rest = line.substr(first + key.size());
    const std::size_t digits = rest.find_first_not_of(' ');
    if (digits == 0 || digits == std::string::npos) return std::nullopt;
    for (std::size_t i = digits; i < rest.size(); ++i) {
      if (!std::isdigit(static_cast<unsigned char>(rest[i]))) return std::nullopt;
    }
    return std::stoull(rest.substr(digits));
  }
  return std::nullopt;
}
}  // namespace

TEST_CASE("the demo's fork copies on write only what the child wrote and all checks pass") {
  DemoOptions opt;
  opt.mapBytes = 8ull << 20;  // 4 MiB of 4 KiB pages, 4 MiB of THP
  std::ostringstream out;
  REQUIRE(runDemo(opt, out) == 0);
  const std::string text = out.str();
  CHECK(lineOf(text, "data checks").find("passed") != std::string::npos);
  // 8 MiB: 4 MiB of 4 KiB pages (1024 pages) and two 2 MiB THPs (1024 pages).
  CHECK(rowValue(text, "anonymous 4 KiB pages allocated") == 1024u);
  CHECK(rowValue(text, "THP faults (2 MiB allocated)") == 2u);
  // The child writes half of the 4 KiB half: 512 pages copied.
  CHECK(rowValue(text, "copy-on-write copies") == 512u);
  // Unmapping half of one THP splits its PMD once.
  CHECK(rowValue(text, "THP PMD splits") == 1u);
  // In pages of 4 KiB: the parent lost half a THP (256 pages), the child maps everything.
  CHECK(rowValue(text, "parent rss before exit (pages)") == 1024u + 1024u - 256u);
  CHECK(rowValue(text, "child rss before exit (pages)") == 2048u);
  // Every byte mapped, plus the child's copies; the unmapped half-THP stays with its folio.
  CHECK(rowValue(text, "RAM pages holding data") == 2048u + 512u);
  CHECK(rowValue(text, "RAM pages after exit") == 0u);
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
  // Every stat carries a unit and a description; a few with the unit they must have.
  std::size_t stats = 0;
  for (const char* group : {"phys_mem", "proc0", "proc1"}) {
    std::vector<const nlohmann::json*> todo{&j["top"][group]};
    while (!todo.empty()) {
      const nlohmann::json* node = todo.back();
      todo.pop_back();
      if (node->contains("unit")) {
        ++stats;
        CHECK(node->at("unit").is_string());
        CHECK_FALSE(node->at("unit").get<std::string>().empty());
        CHECK_FALSE(node->at("desc").get<std::string>().empty());
        continue;
      }
      for (const auto& child : node->items()) todo.push_back(&child.value());
    }
  }
  CHECK(stats > 20);
  CHECK(j["top"]["proc0"]["mm"]["anon_fault_alloc"]["unit"] == "pages");
  CHECK(j["top"]["proc0"]["mm"]["anon_fault_alloc"]["value"] == 512);  // 2 MiB of 4 KiB pages
  CHECK(j["top"]["phys_mem"]["data_pages"]["unit"] == "frames");
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
