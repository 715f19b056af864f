#include <catch2/catch.hpp>

#include "sim/stats.h"

#include <nlohmann/json.hpp>

using namespace hmmsim;

TEST_CASE("stats carry unit and description into JSON under the hierarchical name") {
  StatsGroup g("top.rc0.sw0");
  auto& tx = g.counter("tx_bytes", "B", "bytes sent upstream");
  auto& lat = g.distribution("latency", "ps", "request latency");
  tx += 100;
  ++tx;
  lat.sample(0);
  lat.sample(5);
  lat.sample(8);
  nlohmann::json root;
  g.mergeInto(root);
  CHECK(root["top"]["rc0"]["sw0"]["tx_bytes"]["value"] == 101);
  CHECK(root["top"]["rc0"]["sw0"]["tx_bytes"]["unit"] == "B");
  CHECK(root["top"]["rc0"]["sw0"]["latency"]["count"] == 3);
  CHECK(root["top"]["rc0"]["sw0"]["latency"]["max"] == 8);
  CHECK(lat.buckets() == std::vector<std::uint64_t>{1, 0, 0, 1, 1});
  CHECK(g.counterValue("tx_bytes") == 101);
  g.resetAll();
  CHECK(tx.value() == 0);
}
