#pragma once
// A fixed pool of slots (read tags), each free from some time on.
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

/// A window of `capacity` slots handed out in FIFO order: slot i + capacity is free when slot i
/// was released. Used for posted-write buffer space, where requests leave the requester in
/// order. Runs of slots released at the same time are stored once, so acquiring or releasing k
/// slots costs O(1) amortised. Times are absolute picoseconds.
class SlidingWindow {
 public:
  explicit SlidingWindow(std::uint32_t capacity) : capacity_(capacity), ring_(capacity) {
    HMMSIM_ASSERT(capacity > 0, "window needs at least one slot");
    ring_[0] = Run{0, capacity};
    size_ = 1;
  }
  std::uint32_t capacity() const { return capacity_; }
  /// Time at which the oldest slot is free.
  std::uint64_t earliest() const { return ring_[head_].time; }
  /// Takes the k (1 <= k <= capacity) oldest slots; returns when all k are free. Every acquire
  /// must be followed by release(k) before the next acquire.
  std::uint64_t acquire(std::uint32_t k) {
    if (k == 1) {  // one TLP at per-TLP fidelity: the oldest run gives one slot
      Run& r = ring_[head_];
      if (--r.count == 0) {
        head_ = wrap(head_ + 1);
        --size_;
      }
      return r.time;
    }
    HMMSIM_ASSERT(k >= 1 && k <= capacity_, "acquire " << k << " of " << capacity_);
    std::uint64_t t = 0;
    while (k > 0) {
      Run& r = ring_[head_];
      t = std::max(t, r.time);
      const std::uint32_t n = std::min(k, r.count);
      r.count -= n;
      k -= n;
      if (r.count == 0) {
        head_ = wrap(head_ + 1);
        --size_;
      }
    }
    return t;
  }
  /// Moves every slot's free time `deltaPs` later (a periodic stream's state, one period on).
  void shift(std::uint64_t deltaPs) {
    for (std::uint32_t i = 0; i < size_; ++i) ring_[(head_ + i) % capacity_].time += deltaPs;
  }
  /// Returns k slots, free from time t on (they become the newest).
  void release(std::uint64_t t, std::uint32_t k) {
    if (size_ > 0) {
      Run& last = ring_[wrap(head_ + size_ - 1)];
      if (last.time == t) {
        last.count += k;
        return;
      }
    }
    HMMSIM_ASSERT(size_ < capacity_, "window over-release");
    Run& r = ring_[wrap(head_ + size_)];  // field by field: see IntervalBook::book
    r.time = t;
    r.count = k;
    ++size_;
  }

 private:
  /// i mod capacity for i < 2 x capacity (no division on the per-TLP path).
  std::uint32_t wrap(std::uint32_t i) const { return i >= capacity_ ? i - capacity_ : i; }
  struct Run {
    std::uint64_t time = 0;
    std::uint32_t count = 0;
  };
  std::uint32_t capacity_;
  std::vector<Run> ring_;  // at most `capacity` runs (each holds >= 1 slot)
  std::uint32_t head_ = 0, size_ = 0;
};

}  // namespace hmmsim

namespace hmmsim {

/// A pool of `capacity` slots (read tags at per-burst fidelity) whose release times are kept as
/// arithmetic runs: a burst that used k tags returns them as k slots freeing at first, first +
/// step, ..., as its requests' completions arrive one after another. Acquiring k slots takes the
/// oldest runs first (bursts of one engine complete in issue order) and reports when the first
/// and the k-th of them are free, so a burst can start as soon as one tag is free and is paced by
/// the rest — O(1) amortised per burst instead of one heap operation per tag. Times are absolute
/// picoseconds.
class LinearSlotPool {
 public:
  struct Span {
    std::uint64_t firstPs;  ///< when the first slot taken is free
    std::uint64_t lastPs;   ///< when the last slot taken is free
  };
  explicit LinearSlotPool(std::uint32_t capacity) : capacity_(capacity), ring_(capacity) {
    HMMSIM_ASSERT(capacity > 0, "slot pool needs at least one slot");
    ring_[0] = Run{0, 0, capacity};
    size_ = 1;
  }
  std::uint32_t capacity() const { return capacity_; }
  /// Takes the k (1 <= k <= capacity) oldest slots. Must be followed by release(k) before the
  /// next acquire.
  Span acquire(std::uint32_t k) {
    HMMSIM_ASSERT(k >= 1 && k <= capacity_, "acquire " << k << " of " << capacity_);
    Span s{~0ull, 0};
    while (k > 0) {
      Run& r = ring_[head_];
      const std::uint32_t n = std::min(k, r.count);
      s.firstPs = std::min(s.firstPs, r.firstPs);
      s.lastPs = std::max(s.lastPs, r.firstPs + (n - 1) * r.stepPs);
      r.firstPs += n * r.stepPs;
      r.count -= n;
      k -= n;
      if (r.count == 0) {
        head_ = (head_ + 1) % capacity_;
        --size_;
      }
    }
    return s;
  }
  /// Moves every slot's free time `deltaPs` later (a periodic stream's state, one period on).
  void shift(std::uint64_t deltaPs) {
    for (std::uint32_t i = 0; i < size_; ++i) ring_[(head_ + i) % capacity_].firstPs += deltaPs;
  }
  /// Returns k slots freeing at firstPs, firstPs + stepPs, ... (they become the newest).
  void release(std::uint64_t firstPs, std::uint64_t stepPs, std::uint32_t k) {
    HMMSIM_ASSERT(size_ < capacity_, "slot pool over-release");
    ring_[(head_ + size_) % capacity_] = Run{firstPs, k > 1 ? stepPs : 0, k};
    ++size_;
  }

 private:
  struct Run {
    std::uint64_t firstPs = 0, stepPs = 0;
    std::uint32_t count = 0;
  };
  std::uint32_t capacity_;
  std::vector<Run> ring_;  // at most `capacity` runs (each holds >= 1 slot)
  std::uint32_t head_ = 0, size_ = 0;
};

}  // namespace hmmsim
