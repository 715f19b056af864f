#include "models/pcie/io_page_table.h"

#include "sim/assert.h"

namespace hmmsim {

namespace {
// Entry bits, VT-d second-stage style: an entry is present when R or W is set (VT-d has no
// separate present bit). Bit 2 is hmmsim's MMIO marker (VT-d would use its memory-type bits).
constexpr std::uint64_t kPteRead = 1ull << 0;
constexpr std::uint64_t kPteWrite = 1ull << 1;
constexpr std::uint64_t kPteMmio = 1ull << 2;
constexpr std::uint64_t kPtePageSize = 1ull << 7;
constexpr std::uint64_t kPteAddrMask = ((1ull << 52) - 1) & ~(kPageSize - 1);

bool present(std::uint64_t e) {
  return (e & (kPteRead | kPteWrite)) != 0;
}
bool leafAt(std::uint64_t e, unsigned level) {
  return level == 1 || (e & kPtePageSize) != 0;
}

std::uint64_t protBits(IommuProt prot) {
  return ((prot & kIommuRead) ? kPteRead : 0) | ((prot & kIommuWrite) ? kPteWrite : 0) |
         ((prot & kIommuMmio) ? kPteMmio : 0);
}
IommuProt protOf(std::uint64_t e) {
  return static_cast<IommuProt>(((e & kPteRead) ? kIommuRead : 0) | ((e & kPteWrite) ? kIommuWrite : 0) |
                                ((e & kPteMmio) ? kIommuMmio : 0));
}
std::uint64_t levelShift(unsigned level) {
  return kPageShift + 9 * (level - 1);
}
}  // namespace

IoPageTable::IoPageTable(Pa tableBase) : tableBase_(tableBase) {
  tables_.reserve(64);
  tables_.emplace_back();
  tables_[0].fill(0);
}

unsigned IoPageTable::indexAt(Iova iova, unsigned level) {
  return static_cast<unsigned>((iova.value() >> levelShift(level)) & (kEntriesPerTable - 1));
}

std::uint32_t IoPageTable::allocTable() {
  if (!freeTables_.empty()) {
    std::uint32_t t = freeTables_.back();
    freeTables_.pop_back();
    tables_[t].fill(0);
    return t;
  }
  tables_.emplace_back();
  tables_.back().fill(0);
  return static_cast<std::uint32_t>(tables_.size() - 1);
}

void IoPageTable::freeTable(std::uint32_t t) {
  HMMSIM_ASSERT(t != 0, "the root table is never freed");
  freeTables_.push_back(t);
  memoRegion_ = kNoRegion;  // the only way an upper entry of a walked path changes
}

bool IoPageTable::tableEmpty(std::uint32_t t) const {
  for (std::uint64_t e : tables_[t])
    if (present(e)) return false;
  return true;
}

std::uint32_t IoPageTable::tableOf(std::uint64_t entry) const {
  std::uint64_t addr = entry & kPteAddrMask;
  HMMSIM_ASSERT(addr >= tableBase_.value(), "non-leaf entry points below the table region");
  std::uint64_t t = (addr - tableBase_.value()) >> kPageShift;
  HMMSIM_ASSERT(t < tables_.size(), "non-leaf entry points past the last table");
  return static_cast<std::uint32_t>(t);
}

Errno IoPageTable::mapPage(Iova iova, Pa pa, std::uint64_t pageSize, IommuProt prot) {
  if (pageSize != kPageSize && pageSize != kPmdSize) return Errno::Inval;
  if (!iova.isAligned(pageSize) || !pa.isAligned(pageSize)) return Errno::Inval;
  if ((prot & (kIommuRead | kIommuWrite)) == 0) return Errno::Inval;
  if ((iova.value() >> kInputBits) != 0) return Errno::Inval;
  const unsigned leafLevel = pageSize == kPmdSize ? 2 : 1;

  // Descend, creating tables as needed; check for conflicts before changing anything that
  // would need undoing (a freshly created empty table is harmless if we bail out later).
  std::uint32_t t = 0;
  for (unsigned level = kLevels; level > leafLevel; --level) {
    std::uint64_t& e = tables_[t][indexAt(iova, level)];
    if (present(e)) {
      if (leafAt(e, level)) return Errno::Exist;  // covered by a larger leaf
      t = tableOf(e);
      continue;
    }
    std::uint32_t child = allocTable();
    // allocTable may grow tables_: take the reference again.
    std::uint64_t& slot = tables_[t][indexAt(iova, level)];
    slot = (tableAddr(child).value() & kPteAddrMask) | kPteRead | kPteWrite;
    t = child;
  }
  std::uint64_t& leaf = tables_[t][indexAt(iova, leafLevel)];
  if (present(leaf)) {
    if (leafLevel == 1 || leafAt(leaf, leafLevel)) return Errno::Exist;
    // A 2 MiB leaf over a 4 KiB table: allowed only if that table maps nothing.
    std::uint32_t child = tableOf(leaf);
    if (!tableEmpty(child)) return Errno::Exist;
    freeTable(child);
  }
  leaf = (pa.value() & kPteAddrMask) | protBits(prot) | (leafLevel == 2 ? kPtePageSize : 0);
  mappedBytes_ += pageSize;
  return Errno::Ok;
}

std::uint64_t IoPageTable::unmapPage(Iova iova) {
  if ((iova.value() >> kInputBits) != 0) return 0;
  std::uint32_t t = 0;
  for (unsigned level = kLevels; level >= 1; --level) {
    std::uint64_t& e = tables_[t][indexAt(iova, level)];
    if (!present(e)) return 0;
    if (leafAt(e, level)) {
      e = 0;
      std::uint64_t size = 1ull << levelShift(level);
      mappedBytes_ -= size;
      return size;
    }
    t = tableOf(e);
  }
  return 0;
}

IoWalk IoPageTable::walk(Iova iova) const {
  IoWalk w;
  if ((iova.value() >> kInputBits) != 0) return w;
  std::uint32_t t = 0;
  unsigned level = kLevels;
  // A walk of the 2 MiB region the last walk ended in reads the same three upper entries: they
  // are taken from the memo (the same answer, the same accesses charged; a simulator shortcut,
  // not a paging-structure cache, which the walk latency does not model).
  const std::uint64_t region = iova.value() >> levelShift(2);
  if (region == memoRegion_) {
    for (unsigned i = 0; i < kLevels - 1; ++i) w.accessAddrs[i] = memoAddrs_[i];
    w.accesses = kLevels - 1;
    t = memoTable_;
    level = 1;
  }
  for (; level >= 1; --level) {
    unsigned idx = indexAt(iova, level);
    w.accessAddrs[w.accesses] = tableAddr(t) + std::uint64_t(idx) * 8;
    ++w.accesses;
    std::uint64_t e = tables_[t][idx];
    if (!present(e)) return w;
    if (leafAt(e, level)) {
      std::uint64_t size = 1ull << levelShift(level);
      w.present = true;
      w.pageSize = size;
      w.prot = protOf(e);
      w.pageBase = Pa(e & kPteAddrMask & ~(size - 1));
      w.iovaBase = iova.alignDown(size);
      w.pa = w.pageBase + (iova.value() & (size - 1));
      return w;
    }
    t = tableOf(e);
    if (level == 2) {  // t is the region's 4 KiB table
      memoRegion_ = region;
      memoTable_ = t;
      for (unsigned i = 0; i < kLevels - 1; ++i) memoAddrs_[i] = w.accessAddrs[i];
    }
  }
  return w;
}

}  // namespace hmmsim
