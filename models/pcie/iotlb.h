#pragma once
// Iotlb: the IOMMU's translation cache (VT-d IOTLB / AMD-Vi TLB).
//
// Models: two set-associative arrays, one for 4 KiB translations and one for 2 MiB
// translations (hardware keeps superpage entries apart so a 2 MiB entry covers 512 small pages
// with one tag). Entries are tagged with the domain id (VT-d's DID) and the IOVA page number;
// the set index is the page number modulo the number of sets. Replacement is LRU within a set
// (an invalid way is used first). Invalidation comes in the three VT-d granularities: global,
// domain-selective and page-selective (an IOVA range within one domain).
//
// Leaves out: the context cache and paging-structure caches, PASID tagging, prefetching.
// Timing: none here (the Iommu charges the hit latency); pure logic.

#include <cstdint>
#include <optional>
#include <vector>

#include "models/pcie/io_page_table.h"
#include "sim/strong_types.h"

namespace hmmsim {

struct IotlbParams {
  unsigned entries4k = 64;  ///< count; 4 KiB-page entries (default 64: reach 256 KiB, the pcie-bench anchor)
  unsigned ways4k = 8;      ///< count; associativity of the 4 KiB array (entries4k / ways4k sets)
  unsigned entries2m = 32;  ///< count; 2 MiB-page entries (default 32: reach 64 MiB)
  unsigned ways2m = 32;     ///< count; associativity of the 2 MiB array (default: fully associative)
};

/// A cached translation as the IOTLB returns it.
struct IotlbHit {
  Pa pageBase{};               ///< physical base of the cached page
  std::uint64_t pageSize = 0;  ///< kPageSize or kPmdSize
  IommuProt prot = 0;          ///< permissions cached with the entry
};

class Iotlb {
 public:
  /// Parameters must have ways dividing entries (both non-zero); a violation is a simulator
  /// bug (the config layer validates user input first).
  explicit Iotlb(const IotlbParams& params);

  /// Looks `iova` up for domain `did` in both arrays; a hit refreshes the entry's LRU age and
  /// fills `hit`. Returns whether it hit (`hit` is untouched on a miss).
  bool lookup(std::uint16_t did, Iova iova, IotlbHit& hit);
  /// The same, returning the hit (tests and cold paths; the translation path uses the above: an
  /// optional returned from an out-of-line call is reloaded whole after narrow stores, a stall).
  std::optional<IotlbHit> lookup(std::uint16_t did, Iova iova) {
    IotlbHit h;
    return lookup(did, iova, h) ? std::optional<IotlbHit>(h) : std::nullopt;
  }

  /// Fills the entry for the page containing `iova` (pageSize kPageSize or kPmdSize), evicting
  /// the set's LRU entry if no way is free (an entry already there for the page is refilled in
  /// place). Returns true if a valid entry was evicted.
  bool insert(std::uint16_t did, Iova iova, Pa pageBase, std::uint64_t pageSize, IommuProt prot);

  /// Page-selective invalidation: drops every entry of `did` overlapping [iova, iova+size).
  /// Returns the number of entries dropped.
  unsigned invalidateRange(std::uint16_t did, Iova iova, std::uint64_t size);
  /// Domain-selective invalidation. Returns the number of entries dropped.
  unsigned invalidateDomain(std::uint16_t did);
  /// Global invalidation. Returns the number of entries dropped.
  unsigned invalidateAll();

  /// Number of valid entries (both arrays).
  unsigned validEntries() const;
  const IotlbParams& params() const { return params_; }

 private:
  // Each array keeps its ways' fields side by side (set-major), so a lookup compares one tag
  // word per way. A tag is vpn << 16 | did (vpn = iova >> the array's page shift, below 2^36);
  // a free way holds kFree and LRU age 0, so "the first free way, else the least recently used"
  // is the first way of least age.
  static constexpr std::uint64_t kFree = ~0ull;
  static std::uint64_t tagOf(std::uint16_t did, std::uint64_t vpn) { return vpn << 16 | did; }
  struct Array {
    unsigned shift = 0;
    unsigned sets = 0;
    unsigned ways = 0;
    std::uint64_t setMask = 0;        // sets - 1 when sets is a power of two (no division per lookup)
    unsigned valid = 0;               // valid entries: a lookup skips an empty array
    std::vector<std::uint64_t> tags;  // sets * ways: tagOf(did, vpn), kFree when free
    std::vector<std::uint64_t> ages;  // LRU age stamps (0 when free)
    std::vector<std::uint64_t> pfns;  // pa >> shift
    std::vector<IommuProt> prots;
    std::size_t setOf(std::uint64_t vpn) const {
      return (setMask != 0 || sets == 1 ? vpn & setMask : vpn % sets) * ways;
    }
    void clear(std::size_t i) {
      tags[i] = kFree;
      ages[i] = 0;
    }
  };
  static void initArray(Array& a, unsigned shift, unsigned entries, unsigned ways);
  /// Index of the entry of `did`'s page `vpn` in `a`, or -1.
  static std::ptrdiff_t find(const Array& a, std::uint16_t did, std::uint64_t vpn);
  /// Drops every valid entry of `a` whose (did, vpn) `drop` holds for; the number dropped.
  template <typename Pred>
  static unsigned dropIf(Array& a, Pred drop);

  IotlbParams params_;
  Array small_;
  Array large_;
  std::uint64_t useClock_ = 0;
};

}  // namespace hmmsim
