#pragma once
// Seeded random numbers. Every random choice in hmmsim (the kernel's random pick among equally
// close p2p providers, workload addresses, fault injection) draws from an Rng derived from the
// run's seed, so the same scenario and seed give bit-identical outputs. No global generator.
//
// xoshiro256** seeded through splitmix64; stream(name) derives an independent generator per
// named consumer so adding a consumer does not shift the numbers others see.

#include <cstdint>
#include <string_view>

namespace hmmsim {

class Rng {
 public:
  explicit Rng(std::uint64_t seed);

  std::uint64_t next();
  /// Uniform in [0, n); n > 0.
  std::uint64_t below(std::uint64_t n);
  /// Uniform in [0, 1).
  double unit();
  /// An independent generator for the named consumer, derived from this one's seed.
  Rng stream(std::string_view name) const;

  std::uint64_t seed() const { return seed_; }

 private:
  std::uint64_t seed_;
  std::uint64_t s_[4]{};
};

}  // namespace hmmsim
