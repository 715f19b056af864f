#pragma once
// Tlb: a CPU data TLB (x86-64 style), pure C++ (the CPU core module charges its time).
//
// What it models
//  - One array per page size (4 KiB, 2 MiB, 1 GiB), each set-associative with LRU replacement
//    (ways == entries makes it fully associative), looked up in parallel like a real L1 dTLB.
//  - What an entry caches: the page's first pfn, the page size and the pte's write permission.
//    A write that hits a read-only entry is reported as such; the core then walks and faults,
//    as hardware rechecks permissions on the page-table entry.
//  - Invalidation as the kernel drives it: invlpg (flushPage: every entry, of any size, that
//    translates the address), flush_tlb_mm_range (flushRange: invlpg per 4 KiB page, or a full
//    flush when the range exceeds tlb_single_page_flush_ceiling pages, 33 by default), and
//    flush_tlb_mm / CR3 reload (flushAll).
// What it leaves out: the second-level STLB, PCID/ASIDs (a flushAll models a context switch),
//   global pages, accessed/dirty-bit write-back walks, paging-structure caches, ITLB.
// Timing: none here; CpuCoreParams holds the miss cost.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "sim/stats.h"
#include "sim/strong_types.h"

namespace hmmsim {

enum class TlbPageSize : unsigned {
  Size4K = 0,  ///< PTE leaf
  Size2M = 1,  ///< PMD leaf (THP, hugetlb)
  Size1G = 2,  ///< PUD leaf
};
inline constexpr unsigned kTlbPageSizes = 3;
/// log2 of the page size in bytes (12, 21, 30).
constexpr unsigned tlbPageShift(TlbPageSize s) {
  return s == TlbPageSize::Size4K ? kPageShift : s == TlbPageSize::Size2M ? kPmdShift : kPudShift;
}

/// Parameters of a TLB. Defaults: a recent x86 L1 dTLB.
struct TlbParams {
  /// 4 KiB entries. Default 64.
  unsigned entries4K = 64;
  /// Associativity of the 4 KiB array (ways per set). Default 4.
  unsigned ways4K = 4;
  /// 2 MiB entries. Default 32.
  unsigned entries2M = 32;
  /// Associativity of the 2 MiB array. Default 4.
  unsigned ways2M = 4;
  /// 1 GiB entries. Default 4 (fully associative).
  unsigned entries1G = 4;
  /// Associativity of the 1 GiB array. Default 4.
  unsigned ways1G = 4;
  /// tlb_single_page_flush_ceiling (pages): flushRange of more pages flushes everything.
  /// Default 33 (arch/x86/mm/tlb.c).
  unsigned singlePageFlushCeiling = 33;

  /// "" when valid: for each size, ways >= 1, entries a multiple of ways, entries/ways a power of
  /// two (set index = low bits of the virtual page number). Otherwise names the parameter.
  std::string check() const;
};

/// A TLB hit.
struct TlbTranslation {
  Pa pa;                                   ///< physical address of the looked-up byte
  TlbPageSize size = TlbPageSize::Size4K;  ///< size of the page that translated it
  bool writable = false;                   ///< the cached pte allows writes
};

class Tlb {
 public:
  /// `params` must satisfy check() == "" (asserted). `statsName`: e.g. "top.cpu0.dtlb".
  explicit Tlb(const TlbParams& params, std::string statsName = "tlb");

  /// Looks `va` up in every size array. A hit refreshes the entry's LRU age and counts "hits"
  /// (and "hits_<size>"); a miss counts "misses". Returns nullopt on a miss.
  std::optional<TlbTranslation> lookup(Va va);
  /// Caches the translation of the page of `size` containing `va`: `pfn` is the frame number of
  /// the page's first byte (aligned to the page size). Replaces an entry of the same page, else
  /// fills an invalid way, else evicts the set's least recently used entry ("evictions").
  void insert(Va va, Pfn pfn, TlbPageSize size, bool writable);

  /// invlpg: drops every entry, of any size, that translates `va`. Returns entries dropped.
  std::size_t flushPage(Va va);
  /// flush_tlb_mm_range(start, end) (end exclusive, page-aligned or not): invlpg per 4 KiB page,
  /// or flushAll() when the range covers more than singlePageFlushCeiling pages.
  /// Returns entries dropped.
  std::size_t flushRange(Va start, Va end);
  /// flush_tlb_mm / CR3 write: drops everything. Returns entries dropped.
  std::size_t flushAll();

  /// Valid entries currently cached (all sizes).
  std::size_t validEntries() const;
  const TlbParams& params() const { return params_; }
  /// Stats: "hits", "misses", "hits_4k", "hits_2m", "hits_1g", "inserts", "evictions",
  /// "flush_page", "flush_range", "flush_range_full", "flush_all", "entries_flushed".
  StatsGroup& stats() { return stats_; }
  const StatsGroup& stats() const { return stats_; }

 private:
  struct Entry {
    std::uint64_t vpn = 0;      ///< va >> page shift
    std::uint64_t pfn = 0;      ///< first 4 KiB frame of the page
    std::uint64_t lastUse = 0;  ///< LRU stamp
    bool valid = false;
    bool writable = false;
  };
  struct Array {
    unsigned ways = 0;
    std::uint64_t setMask = 0;
    std::vector<Entry> entries;  ///< set s occupies [s * ways, (s + 1) * ways)
    Entry* set(std::uint64_t vpn) { return &entries[(vpn & setMask) * ways]; }
  };
  Entry* find(Array& a, std::uint64_t vpn);

  TlbParams params_;
  std::array<Array, kTlbPageSizes> arrays_;
  std::uint64_t clock_ = 0;
  StatsGroup stats_;
  Counter& hits_;
  Counter& misses_;
  std::array<Counter*, kTlbPageSizes> hitsBySize_{};
  Counter& inserts_;
  Counter& evictions_;
  Counter& flushPage_;
  Counter& flushRange_;
  Counter& flushRangeFull_;
  Counter& flushAll_;
  Counter& entriesFlushed_;
};

}  // namespace hmmsim
