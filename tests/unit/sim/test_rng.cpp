#include <catch2/catch.hpp>

#include "sim/rng.h"

using namespace hmmsim;

TEST_CASE("the same seed gives the same sequence, and streams are independent and stable") {
  Rng a(42), b(42), c(43);
  for (int i = 0; i < 100; ++i) CHECK(a.next() == b.next());
  CHECK(Rng(42).next() != c.next());
  CHECK(Rng(7).stream("p2p").next() == Rng(7).stream("p2p").next());
  CHECK(Rng(7).stream("p2p").next() != Rng(7).stream("workload").next());
}

TEST_CASE("below(n) stays in range and covers it") {
  Rng r(1);
  std::vector<int> seen(5, 0);
  for (int i = 0; i < 1000; ++i) {
    auto v = r.below(5);
    REQUIRE(v < 5);
    ++seen[v];
  }
  for (int s : seen) CHECK(s > 100);
}
