// LinkDirection reservations (link.h) and SlotPool (slot_pool.h).
#include <catch2/catch.hpp>

#include "models/pcie/link.h"
#include "models/pcie/slot_pool.h"

using namespace hmmsim;

TEST_CASE("serializing 1000 B at 8 Gb/s takes 1000 ns plus the link latency") {
  LinkDirection d(8.0, 20'000);
  const HeadTail out = d.transmit({0, 0}, 1000);
  CHECK(out.headPs == 20'000);
  CHECK(out.tailPs == 1'000'000 + 20'000);
}

TEST_CASE("a transmission waits until the direction is free") {
  LinkDirection d(8.0, 0);
  d.transmit({0, 0}, 1000);  // busy until 1 us
  const HeadTail second = d.transmit({500'000, 500'000}, 1000);
  CHECK(second.headPs == 1'000'000);
  CHECK(second.tailPs == 2'000'000);
  CHECK(d.waitPs() == 500'000);
  CHECK(d.busyUntilPs() == 2'000'000);
}

TEST_CASE("cut-through: a TLP cannot finish before its last byte arrived") {
  LinkDirection d(8.0, 0);
  // First byte ready at 0, last byte only at 5 us (slow upstream link): ends at 5 us.
  const HeadTail out = d.transmit({0, 5'000'000}, 1000);
  CHECK(out.headPs == 0);
  CHECK(out.tailPs == 5'000'000);
}

TEST_CASE("an idle direction does not delay a later transmission") {
  LinkDirection d(8.0, 0);
  d.transmit({0, 0}, 1000);
  const HeadTail out = d.transmit({3'000'000, 3'000'000}, 1000);
  CHECK(out.headPs == 3'000'000);
  CHECK(d.waitPs() == 0);
}

TEST_CASE("a slot pool hands out the earliest-free slots and reports when k are free") {
  SlotPool p(2);
  CHECK(p.acquire(1) == 0);
  p.release(100, 1);
  CHECK(p.acquire(2) == 100);  // slots free at 0 and 100
  p.release(300, 1);
  p.release(200, 1);
  CHECK(p.earliest() == 200);
  CHECK(p.acquire(1) == 200);
}
