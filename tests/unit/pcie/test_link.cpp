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

TEST_CASE("a booking made for a later time does not delay an earlier transmission") {
  LinkDirection d(8.0, 0);
  d.transmit({5'000'000, 5'000'000}, 1000);  // a completion booked for 5..6 us
  const HeadTail early = d.transmit({0, 0}, 1000);
  CHECK(early.headPs == 0);  // a single busy-until time would have started it at 6 us
  CHECK(early.tailPs == 1'000'000);
  CHECK(d.waitPs() == 0);
}

TEST_CASE("an out-of-order transmission fills the first gap it fits in") {
  LinkDirection d(8.0, 0);
  d.transmit({0, 0}, 1000);                                  // 0..1 us
  d.transmit({1'500'000, 1'500'000}, 1000);                  // 1.5..2.5 us
  d.transmit({3'000'000, 3'000'000}, 1000);                  // 3..4 us
  const HeadTail big = d.transmit({500'000, 500'000}, 600);  // 0.6 us
  CHECK(big.headPs == 4'000'000);                            // neither 1..1.5 nor 2.5..3 holds 0.6 us
  const HeadTail small = d.transmit({500'000, 500'000}, 400);
  CHECK(small.headPs == 1'000'000);  // the first gap after its arrival
  CHECK(small.tailPs == 1'400'000);
}

TEST_CASE("back-to-back transmissions in time order are held as one interval") {
  LinkDirection d(8.0, 0);
  for (std::uint64_t i = 0; i < 1000; ++i) d.transmit({i * 1'000'000, i * 1'000'000}, 1000);
  CHECK(d.bookedIntervals() == 1);
  CHECK(d.busyUntilPs() == 1'000'000'000);
}

TEST_CASE("bookings that ended before the floor are forgotten") {
  LinkDirection d(8.0, 0);
  for (std::uint64_t i = 0; i < 1000; ++i)
    d.transmit({i * 2'000'000, i * 2'000'000}, 1000, 1, nullptr, i * 2'000'000);
  CHECK(d.bookedIntervals() <= 2);
}

TEST_CASE("a non-posted request does not queue behind completions but takes their bandwidth") {
  LinkDirection d(8.0, 0);
  d.transmit({0, 0}, 10'000);  // completions 0..10 us
  const HeadTail mrd = d.transmitNonPosted({1'000'000, 1'000'000}, 24);
  CHECK(mrd.headPs == 1'000'000);
  CHECK(mrd.tailPs == 1'024'000);
  const HeadTail next = d.transmit({2'000'000, 2'000'000}, 1000);
  CHECK(next.headPs == 10'024'000);  // the request's 24 ns were taken from the shared timeline
}

TEST_CASE("a divisible stream takes the free time around a booking made ahead of it") {
  LinkDirection d(8.0, 0);
  d.transmit({1'000'000, 1'000'000}, 100);  // a peer's small access booked for 1..1.1 us
  // 1000 B (1 us) ready at 0: whole, it would start after the access (at 1.1 us); spread, it
  // takes 0..1 us and ends at once.
  const HeadTail s = d.transmitSpread(0, 1000);
  CHECK(s.headPs == 0);
  CHECK(s.tailPs == 1'000'000);
  // 1500 B more, ready at 0: the rest of the time around the access, ending 0.1 us later than
  // back to back would (the access's own time, no hole lost).
  const HeadTail t = d.transmitSpread(0, 1500);
  CHECK(t.headPs == 1'100'000);
  CHECK(t.tailPs == 2'600'000);
  CHECK(d.busyPs() == 2'600'000);
}

TEST_CASE("a divisible stream in time order books as transmit() does") {
  LinkDirection a(8.0, 20'000), b(8.0, 20'000);
  for (std::uint64_t i = 0; i < 100; ++i) {
    const HeadTail x = a.transmit({i * 500'000, i * 500'000}, 1000, 1, nullptr, i * 500'000);
    const HeadTail y = b.transmitSpread(i * 500'000, 1000, i * 500'000);
    CHECK(x.headPs == y.headPs);
    CHECK(x.tailPs == y.tailPs);
  }
  CHECK(a.bookedIntervals() == b.bookedIntervals());
}
