#pragma once
// A timeline of booked, non-overlapping busy intervals of one resource (a link direction, a
// memory port, a root complex's forwarding engine).
//
// Why: under temporal decoupling (docs/architecture.md "Time") reservations arrive out of
// time order: a read's completions are booked on a direction before a later-issued but
// earlier-timed request reaches it. A single "busy until" time would make that request queue
// behind a booking in its future. Here a request books the earliest interval at or after its
// arrival that fits between earlier bookings, so a booking in the future never delays an
// earlier one.
//
// Contract: book(head, ser, tail) returns the earliest start s >= head such that
// [s, max(s + ser, tail)) overlaps no earlier booking, and books that interval. Touching
// intervals are merged, so a saturated resource holds a handful of intervals. bookSpread(head,
// ser) is the divisible variant: `ser` of occupancy taken from the free time at or after head in
// time order (the gaps between earlier bookings, then after the last one), for a stream of small
// independent accesses that the resource serves around other requesters'. The in-order case
// (head at or after the last booking's end) costs O(1); an out-of-order booking costs a binary
// search plus the gaps it skips. prune(floor) forgets intervals that end at or before `floor`;
// the caller guarantees no later booking has head < floor (the SystemC time of the call: no
// initiator's local time is ever behind it). No allocation once the vector reached its peak size.
// Pure: no SystemC; times are absolute picoseconds.

#include <algorithm>
#include <cstdint>
#include <vector>

namespace hmmsim {

class IntervalBook {
 public:
  struct Booking {
    std::uint64_t startPs;
    std::uint64_t endPs;
  };

  /// Books `serPs` of occupancy at the earliest start >= headPs; the interval cannot end before
  /// tailPs (the last byte of a cut-through train has not arrived earlier). tailPs may be < headPs.
  /// `floorPs`: as for prune(), which runs only when an interval is added (extending the last
  /// one, the in-order saturated case, leaves nothing to forget).
  __attribute__((always_inline)) Booking book(std::uint64_t headPs, std::uint64_t serPs, std::uint64_t tailPs,
                                              std::uint64_t floorPs = 0) {
    const std::size_t n = v_.size();
    // Fast path: at or after everything booked so far.
    if (first_ == n || headPs >= v_.back().end) {
      const std::uint64_t end = std::max(headPs + serPs, tailPs);
      if (end > headPs) {
        if (first_ != n && v_.back().end == headPs) {
          v_.back().end = end;
        } else {
          pruneIfLater(floorPs);
          // Field by field: a temporary copied as one 16-byte load right after its two 8-byte
          // stores stalls store forwarding, on every per-TLP booking of a new interval.
          Span& s = v_.emplace_back();
          s.start = headPs;
          s.end = end;
        }
      }
      return Booking{headPs, end};
    }
    pruneIfLater(floorPs);
    return bookSlow(headPs, serPs, tailPs);
  }

  /// Books `serPs` of occupancy spread over the free time at or after headPs: each gap between
  /// earlier bookings in time order takes what it holds, the rest goes after the last booking.
  /// Returns the first piece's start and the last piece's end ({headPs, headPs} for serPs 0).
  /// `floorPs`: as for book(). Costs one book() per gap used.
  Booking bookSpread(std::uint64_t headPs, std::uint64_t serPs, std::uint64_t floorPs = 0) {
    if (first_ == v_.size() || headPs >= v_.back().end) return book(headPs, serPs, 0, floorPs);
    Booking out{headPs, headPs};
    bool first = true;
    for (std::uint64_t s = headPs, left = serPs; left > 0;) {
      const Booking gap = freeFrom(s);
      const std::uint64_t take = std::min(left, gap.endPs - gap.startPs);
      const Booking b = book(gap.startPs, take, 0, floorPs);  // fits exactly: the gap is free
      if (first) out.startPs = b.startPs;
      first = false;
      out.endPs = b.endPs;
      left -= take;
      s = b.endPs;
    }
    return out;
  }

  /// prune(floorPs) unless the last prune had the same floor: then nothing more can go (every
  /// interval booked since starts at or after that floor and is not empty), so the per-TLP path
  /// skips the call while SystemC time stands still.
  void pruneIfLater(std::uint64_t floorPs) {
    if (floorPs == prunedFloorPs_) return;
    prunedFloorPs_ = floorPs;
    prune(floorPs);
  }

  /// Forgets every interval that ends at or before floorPs. Out of line: it runs only when an
  /// interval is added, and keeping it out of book() lets the in-order path inline.
  __attribute__((noinline)) void prune(std::uint64_t floorPs) {
    while (first_ < v_.size() && v_[first_].end <= floorPs) lastPruned_ = v_[first_++].end;
    if (first_ >= 64 && first_ * 2 >= v_.size()) {
      v_.erase(v_.begin(), v_.begin() + static_cast<std::ptrdiff_t>(first_));
      first_ = 0;
    }
  }

  /// End of the latest booking (0 if none is held).
  std::uint64_t lastEndPs() const { return first_ == v_.size() ? lastPruned_ : v_.back().end; }
  /// Intervals currently held (merged); for tests and the in-order cost claim.
  std::size_t intervals() const { return v_.size() - first_; }

 private:
  struct Span {
    std::uint64_t start, end;
  };
  /// The first free interval at or after `ps` (its end is ~0 after the last booking).
  Booking freeFrom(std::uint64_t ps) const {
    auto it = std::upper_bound(v_.begin() + static_cast<std::ptrdiff_t>(first_), v_.end(), ps,
                               [](std::uint64_t t, const Span& x) { return t < x.end; });
    for (; it != v_.end() && it->start <= ps; ++it) ps = it->end;  // inside (or touching) a booking
    return Booking{ps, it == v_.end() ? ~0ull : it->start};
  }
  __attribute__((noinline)) Booking bookSlow(std::uint64_t headPs, std::uint64_t serPs,
                                             std::uint64_t tailPs) {
    // First interval that ends after head (ends are sorted: intervals do not overlap).
    auto it = std::upper_bound(v_.begin() + static_cast<std::ptrdiff_t>(first_), v_.end(), headPs,
                               [](std::uint64_t t, const Span& s) { return t < s.end; });
    std::uint64_t s = headPs;
    for (;; ++it) {
      const std::uint64_t e = std::max(s + serPs, tailPs);
      if (it == v_.end() || e <= it->start) {
        if (e == s) return Booking{s, e};  // nothing to occupy
        // Insert [s, e) before `it`, merging with touching neighbours.
        const bool joinPrev = it != v_.begin() + static_cast<std::ptrdiff_t>(first_) && (it - 1)->end == s;
        const bool joinNext = it != v_.end() && it->start == e;
        if (joinPrev && joinNext) {
          (it - 1)->end = it->end;
          v_.erase(it);
        } else if (joinPrev) {
          (it - 1)->end = e;
        } else if (joinNext) {
          it->start = s;
        } else {
          v_.insert(it, Span{s, e});
        }
        return Booking{s, e};
      }
      s = std::max(s, it->end);
    }
  }

  std::vector<Span> v_;  // sorted, disjoint; live from index first_
  std::size_t first_ = 0;
  std::uint64_t lastPruned_ = 0;
  std::uint64_t prunedFloorPs_ = 0;  // floor of the last prune (pruneIfLater)
};

}  // namespace hmmsim
