#pragma once
// A fixed pool of slots (read tags, posted-write buffer space), each free from some time on.
// acquire(k) takes the k slots that free earliest and says when all k are free; release(t, k)
// returns k slots free from time t. A fixed-capacity min-heap: the hot path does not allocate.
// Pure: no SystemC; times are absolute picoseconds.

#include <algorithm>
#include <cstdint>
#include <functional>
#include <vector>

#include "sim/assert.h"

namespace hmmsim {

class SlotPool {
 public:
  /// `capacity` > 0 slots, all free at time 0.
  explicit SlotPool(std::uint32_t capacity) : heap_(capacity, 0) {
    HMMSIM_ASSERT(capacity > 0, "slot pool needs at least one slot");
  }
  std::uint32_t capacity() const { return static_cast<std::uint32_t>(heap_.capacity()); }
  std::uint32_t freeSlots() const { return static_cast<std::uint32_t>(heap_.size()); }

  /// Time at which the earliest slot is free (without taking it).
  std::uint64_t earliest() const { return heap_.front(); }

  /// Takes k (1 <= k <= free slots) slots; returns the time by which all k are free.
  std::uint64_t acquire(std::uint32_t k) {
    HMMSIM_ASSERT(k >= 1 && k <= heap_.size(), "acquire " << k << " of " << heap_.size());
    std::uint64_t t = 0;
    for (std::uint32_t i = 0; i < k; ++i) {
      std::pop_heap(heap_.begin(), heap_.end(), std::greater<>());
      t = std::max(t, heap_.back());
      heap_.pop_back();
    }
    return t;
  }
  /// Returns k slots that are free from time t on.
  void release(std::uint64_t t, std::uint32_t k) {
    for (std::uint32_t i = 0; i < k; ++i) {
      HMMSIM_ASSERT(heap_.size() < heap_.capacity(), "slot pool over-release");
      heap_.push_back(t);
      std::push_heap(heap_.begin(), heap_.end(), std::greater<>());
    }
  }

 private:
  std::vector<std::uint64_t> heap_;  // capacity fixed at construction
};

}  // namespace hmmsim
