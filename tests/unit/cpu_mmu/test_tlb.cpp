// The CPU TLB (models/cpu_mmu/tlb.h): hits, misses, LRU replacement, and the kernel's flushes.

#include <catch2/catch.hpp>

#include "models/cpu_mmu/tlb.h"

using namespace hmmsim;

namespace {
TlbParams small() {
  TlbParams p;
  p.entries4K = 8;
  p.ways4K = 2;  // 4 sets
  p.entries2M = 4;
  p.ways2M = 4;
  p.entries1G = 2;
  p.ways1G = 2;
  p.singlePageFlushCeiling = 33;
  return p;
}
}  // namespace

TEST_CASE("a TLB lookup misses until the translation is inserted, then hits with the physical address") {
  Tlb tlb(small());
  CHECK_FALSE(tlb.lookup(Va(0x7000'1234)).has_value());
  tlb.insert(Va(0x7000'1000), Pfn(0x42), TlbPageSize::Size4K, true);
  auto t = tlb.lookup(Va(0x7000'1234));
  REQUIRE(t.has_value());
  CHECK(t->pa == Pa(0x42'234));
  CHECK(t->size == TlbPageSize::Size4K);
  CHECK(t->writable);
  CHECK_FALSE(tlb.lookup(Va(0x7000'2000)).has_value());  // the next page is another entry
  CHECK(tlb.stats().counterValue("hits") == 1);
  CHECK(tlb.stats().counterValue("misses") == 2);
}

TEST_CASE("a 2 MiB TLB entry translates every address of its huge page") {
  Tlb tlb(small());
  tlb.insert(Va(0x4000'0000 + 0x12345), Pfn(0x200), TlbPageSize::Size2M, false);
  auto first = tlb.lookup(Va(0x4000'0000));
  auto last = tlb.lookup(Va(0x4000'0000 + kPmdSize - 1));
  REQUIRE(first.has_value());
  REQUIRE(last.has_value());
  CHECK(first->pa == Pa(0x200'000));
  CHECK(last->pa == Pa(0x200'000 + kPmdSize - 1));
  CHECK(last->size == TlbPageSize::Size2M);
  CHECK_FALSE(last->writable);
  CHECK_FALSE(tlb.lookup(Va(0x4000'0000 + kPmdSize)).has_value());
  CHECK(tlb.stats().counterValue("hits_2m") == 2);
}

TEST_CASE("a full TLB set evicts its least recently used entry") {
  Tlb tlb(small());  // 4 KiB: 4 sets x 2 ways; pages 0, 4, 8 map to set 0
  const Va a(0 * kPageSize), b(4 * kPageSize), c(8 * kPageSize);
  tlb.insert(a, Pfn(1), TlbPageSize::Size4K, true);
  tlb.insert(b, Pfn(2), TlbPageSize::Size4K, true);
  REQUIRE(tlb.lookup(a).has_value());  // a is now more recent than b
  tlb.insert(c, Pfn(3), TlbPageSize::Size4K, true);
  CHECK(tlb.lookup(a).has_value());
  CHECK_FALSE(tlb.lookup(b).has_value());
  CHECK(tlb.lookup(c).has_value());
  CHECK(tlb.stats().counterValue("evictions") == 1);
}

TEST_CASE("re-inserting a cached page replaces its entry instead of using another way") {
  Tlb tlb(small());
  tlb.insert(Va(0x1000), Pfn(1), TlbPageSize::Size4K, false);
  tlb.insert(Va(0x1000), Pfn(9), TlbPageSize::Size4K, true);
  CHECK(tlb.validEntries() == 1);
  auto t = tlb.lookup(Va(0x1000));
  REQUIRE(t.has_value());
  CHECK(t->pa == Pa(0x9000));
  CHECK(t->writable);
}

TEST_CASE("flushPage drops the entries of every size that translate the address") {
  Tlb tlb(small());
  tlb.insert(Va(0x4000'0000), Pfn(0x200), TlbPageSize::Size2M, true);
  tlb.insert(Va(0x4000'1000), Pfn(0x999), TlbPageSize::Size4K, true);  // stale 4K alias, as after a collapse
  tlb.insert(Va(0x5000'0000), Pfn(0x400), TlbPageSize::Size2M, true);
  CHECK(tlb.flushPage(Va(0x4000'1abc)) == 2);
  CHECK_FALSE(tlb.lookup(Va(0x4000'1000)).has_value());
  CHECK(tlb.lookup(Va(0x5000'0000)).has_value());
}

TEST_CASE("flushRange within the single-page ceiling drops exactly the pages of the range") {
  Tlb tlb(small());
  tlb.insert(Va(0x10000), Pfn(1), TlbPageSize::Size4K, true);
  tlb.insert(Va(0x11000), Pfn(2), TlbPageSize::Size4K, true);
  tlb.insert(Va(0x12000), Pfn(3), TlbPageSize::Size4K, true);
  CHECK(tlb.flushRange(Va(0x11000), Va(0x12000)) == 1);  // end exclusive
  CHECK(tlb.lookup(Va(0x10000)).has_value());
  CHECK_FALSE(tlb.lookup(Va(0x11000)).has_value());
  CHECK(tlb.lookup(Va(0x12000)).has_value());
  CHECK(tlb.stats().counterValue("flush_range_full") == 0);
}

TEST_CASE("flushRange above tlb_single_page_flush_ceiling flushes the whole TLB") {
  Tlb tlb(small());
  tlb.insert(Va(0x10000), Pfn(1), TlbPageSize::Size4K, true);
  tlb.insert(Va(0x7000'0000), Pfn(0x200), TlbPageSize::Size2M, true);
  // 34 pages, far from both entries: still everything goes.
  CHECK(tlb.flushRange(Va(0x100'0000), Va(0x100'0000 + 34 * kPageSize)) == 2);
  CHECK(tlb.validEntries() == 0);
  CHECK(tlb.stats().counterValue("flush_range_full") == 1);
  CHECK(tlb.stats().counterValue("flush_all") == 1);
}

TEST_CASE("flushAll drops every entry") {
  Tlb tlb(small());
  tlb.insert(Va(0x1000), Pfn(1), TlbPageSize::Size4K, true);
  tlb.insert(Va(0x4000'0000), Pfn(0x40000), TlbPageSize::Size1G, true);
  CHECK(tlb.flushAll() == 2);
  CHECK(tlb.validEntries() == 0);
  CHECK(tlb.stats().counterValue("entries_flushed") == 2);
}

TEST_CASE("TLB parameters with a non-power-of-two number of sets are rejected, naming the parameter") {
  TlbParams p;
  p.entries4K = 48;
  p.ways4K = 4;  // 12 sets
  CHECK(p.check().find("entries4K") != std::string::npos);
  p.entries4K = 64;
  CHECK(p.check().empty());
}
