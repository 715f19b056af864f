#pragma once
// IoPageTable: one IOMMU domain's I/O page table, a 4-level radix tree in the format spirit of
// Intel VT-d second-stage tables and AMD-Vi v1 tables (x86-64 layout).
//
// Models: 48-bit input addresses (IOVAs), 9 index bits per level, tables of 512 64-bit entries
// (one 4 KiB page each). Leaves sit at level 1 (4 KiB page) or level 2 (2 MiB superpage, the
// PS bit). An entry holds read/write permission bits and an output address; a non-leaf entry
// points at the next table by its (simulated) physical address, so a walk knows which memory it
// touches. walk() reports how many table entries a hardware walker reads (4 for a 4 KiB leaf,
// 3 for a 2 MiB leaf): the timing layer charges that many memory accesses.
//
// Leaves out: 1 GiB leaves, 5-level tables, paging-structure caches (a walk always starts at the
// root; hmmsim's calibrated walk latency absorbs them), access/dirty bits, snoop/cache control.
// Tables emptied by unmap are kept (as VT-d's unmap path keeps partially used tables) until a
// superpage mapping replaces an empty one.
//
// Timing: none here; pure logic.

#include <array>
#include <cstdint>
#include <vector>

#include "sim/errno.h"
#include "sim/strong_types.h"

namespace hmmsim {

/// IOMMU_READ / IOMMU_WRITE of include/linux/iommu.h: what a mapping lets a device do.
using IommuProt = std::uint8_t;
inline constexpr IommuProt kIommuRead = 1;   ///< the device may read memory through the mapping
inline constexpr IommuProt kIommuWrite = 2;  ///< the device may write memory through the mapping
inline constexpr IommuProt kIommuMmio = 4;   ///< the target is MMIO (a peer BAR), not RAM

/// Result of a software or hardware walk of one IOVA.
struct IoWalk {
  bool present = false;             ///< a leaf maps the IOVA
  Pa pa{};                          ///< translated address of the IOVA itself (valid if present)
  Pa pageBase{};                    ///< physical base of the leaf page (valid if present)
  Iova iovaBase{};                  ///< IOVA base of the leaf page (valid if present)
  std::uint64_t pageSize = 0;       ///< kPageSize or kPmdSize (valid if present)
  IommuProt prot = 0;               ///< kIommuRead | kIommuWrite (| kIommuMmio) of the leaf
  unsigned accesses = 0;            ///< table entries read by a hardware walker (1..4)
  std::array<Pa, 4> accessAddrs{};  ///< physical address of each entry read, root first
};

class IoPageTable {
 public:
  static constexpr unsigned kLevels = 4;
  static constexpr unsigned kInputBits = 48;
  static constexpr unsigned kEntriesPerTable = 512;

  /// `tableBase`: simulated physical address of the region the tables live in (each table
  /// occupies 4 KiB at tableBase + index * 4 KiB); it only names the memory a walk touches.
  explicit IoPageTable(Pa tableBase = Pa(0));

  /// Installs one leaf: `pageSize` is kPageSize or kPmdSize; iova and pa aligned to it; prot
  /// non-zero. Returns Ok; Inval for a bad size, misalignment, zero prot or an IOVA beyond
  /// 48 bits; Exist if any part of the page is already mapped (a 2 MiB leaf may replace an
  /// empty 4 KiB table, never a populated one).
  Errno mapPage(Iova iova, Pa pa, std::uint64_t pageSize, IommuProt prot);

  /// Removes the leaf covering `iova`, if any, and returns its size in bytes (0 if nothing is
  /// mapped there). A 2 MiB leaf is removed whole even when only part of it is asked for, as
  /// the kernel's VT-d driver does ("unmap more than the size argument if it happens to be a
  /// large-page mapping").
  std::uint64_t unmapPage(Iova iova);

  /// What a hardware walker finds for `iova` (no side effects).
  IoWalk walk(Iova iova) const;

  /// Number of tables allocated (the root included).
  std::size_t tableCount() const { return tables_.size() - freeTables_.size(); }
  /// Bytes currently mapped by leaves.
  std::uint64_t mappedBytes() const { return mappedBytes_; }

 private:
  using Table = std::array<std::uint64_t, kEntriesPerTable>;
  static unsigned indexAt(Iova iova, unsigned level);  // level 4 = root .. 1 = 4 KiB leaves
  std::uint32_t allocTable();
  void freeTable(std::uint32_t t);
  bool tableEmpty(std::uint32_t t) const;
  Pa tableAddr(std::uint32_t t) const { return tableBase_ + std::uint64_t(t) * kPageSize; }
  std::uint32_t tableOf(std::uint64_t entry) const;

  Pa tableBase_;
  std::vector<Table> tables_;              // index 0 is the root
  std::vector<std::uint32_t> freeTables_;  // recycled table indices
  std::uint64_t mappedBytes_ = 0;
  // walk()'s memo of the last 2 MiB region whose walk reached a 4 KiB table: that table and the
  // addresses of the three entries above it. Upper entries change only when freeTable drops a
  // table (a 2 MiB leaf replacing an empty table), which forgets the memo.
  static constexpr std::uint64_t kNoRegion = ~0ull;
  mutable std::uint64_t memoRegion_ = kNoRegion;
  mutable std::uint32_t memoTable_ = 0;
  mutable std::array<Pa, kLevels - 1> memoAddrs_{};
};

}  // namespace hmmsim
