#include "models/cpu_mmu/tlb.h"

#include "sim/assert.h"

namespace hmmsim {

namespace {
bool isPow2(std::uint64_t v) {
  return v != 0 && (v & (v - 1)) == 0;
}

std::string checkArray(const char* name, unsigned entries, unsigned ways) {
  const std::string n(name);
  if (ways < 1) return "tlb.ways" + n + " must be >= 1";
  if (entries < ways || entries % ways != 0)
    return "tlb.entries" + n + " (" + std::to_string(entries) + ") must be a positive multiple of tlb.ways" +
           n + " (" + std::to_string(ways) + ")";
  if (!isPow2(entries / ways))
    return "tlb.entries" + n + "/tlb.ways" + n + " (number of sets) must be a power of two";
  return "";
}
}  // namespace

std::string TlbParams::check() const {
  for (const std::string& s : {checkArray("4K", entries4K, ways4K), checkArray("2M", entries2M, ways2M),
                               checkArray("1G", entries1G, ways1G)})
    if (!s.empty()) return s;
  return "";
}

Tlb::Tlb(const TlbParams& params, std::string statsName)
    : params_(params),
      stats_(std::move(statsName)),
      hits_(stats_.counter("hits", "lookups", "TLB lookups that hit")),
      misses_(stats_.counter("misses", "lookups", "TLB lookups that missed")),
      inserts_(stats_.counter("inserts", "entries", "translations cached")),
      evictions_(stats_.counter("evictions", "entries", "valid entries replaced by an insert (LRU)")),
      flushPage_(stats_.counter("flush_page", "calls", "invlpg (single-address invalidations)")),
      flushRange_(stats_.counter("flush_range", "calls", "flush_tlb_mm_range calls")),
      flushRangeFull_(stats_.counter("flush_range_full", "calls",
                                     "flush_tlb_mm_range calls above the single-page ceiling (full flush)")),
      flushAll_(stats_.counter("flush_all", "calls",
                               "full flushes (flush_tlb_mm, CR3 reload, range above ceiling)")),
      entriesFlushed_(stats_.counter("entries_flushed", "entries", "valid entries dropped by flushes")) {
  const std::string why = params.check();
  HMMSIM_ASSERT(why.empty(), "Tlb " << stats_.name() << ": " << why);
  const unsigned entries[kTlbPageSizes] = {params.entries4K, params.entries2M, params.entries1G};
  const unsigned ways[kTlbPageSizes] = {params.ways4K, params.ways2M, params.ways1G};
  const char* names[kTlbPageSizes] = {"hits_4k", "hits_2m", "hits_1g"};
  for (unsigned s = 0; s < kTlbPageSizes; ++s) {
    arrays_[s].ways = ways[s];
    arrays_[s].setMask = entries[s] / ways[s] - 1;
    arrays_[s].entries.assign(entries[s], Entry{});
    hitsBySize_[s] = &stats_.counter(names[s], "lookups",
                                     std::string("hits on ") +
                                         (s == 0   ? "4 KiB"
                                          : s == 1 ? "2 MiB"
                                                   : "1 GiB") +
                                         " entries");
  }
}

Tlb::Entry* Tlb::find(Array& a, std::uint64_t vpn) {
  Entry* set = a.set(vpn);
  for (unsigned w = 0; w < a.ways; ++w)
    if (set[w].valid && set[w].vpn == vpn) return &set[w];
  return nullptr;
}

std::optional<TlbTranslation> Tlb::lookup(Va va) {
  for (unsigned s = 0; s < kTlbPageSizes; ++s) {
    const unsigned shift = tlbPageShift(static_cast<TlbPageSize>(s));
    if (Entry* e = find(arrays_[s], va.value() >> shift)) {
      e->lastUse = ++clock_;
      ++hits_;
      ++*hitsBySize_[s];
      const std::uint64_t offset = va.value() & ((1ull << shift) - 1);
      return TlbTranslation{Pa((e->pfn << kPageShift) + offset), static_cast<TlbPageSize>(s), e->writable};
    }
  }
  ++misses_;
  return std::nullopt;
}

void Tlb::insert(Va va, Pfn pfn, TlbPageSize size, bool writable) {
  const unsigned s = static_cast<unsigned>(size);
  const unsigned shift = tlbPageShift(size);
  HMMSIM_ASSERT((pfn.value() & ((1ull << (shift - kPageShift)) - 1)) == 0,
                "TLB insert of a " << (1ull << shift) << "-byte page with unaligned pfn " << pfn);
  Array& a = arrays_[s];
  const std::uint64_t vpn = va.value() >> shift;
  ++inserts_;
  Entry* victim = find(a, vpn);
  if (!victim) {
    Entry* set = a.set(vpn);
    for (unsigned w = 0; w < a.ways && !victim; ++w)
      if (!set[w].valid) victim = &set[w];
    if (!victim) {
      victim = &set[0];
      for (unsigned w = 1; w < a.ways; ++w)
        if (set[w].lastUse < victim->lastUse) victim = &set[w];
      ++evictions_;
    }
  }
  *victim = Entry{vpn, pfn.value(), ++clock_, true, writable};
}

std::size_t Tlb::flushPage(Va va) {
  ++flushPage_;
  std::size_t n = 0;
  for (unsigned s = 0; s < kTlbPageSizes; ++s) {
    if (Entry* e = find(arrays_[s], va.value() >> tlbPageShift(static_cast<TlbPageSize>(s)))) {
      e->valid = false;
      ++n;
    }
  }
  entriesFlushed_ += n;
  return n;
}

std::size_t Tlb::flushRange(Va start, Va end) {
  ++flushRange_;
  if (end <= start) return 0;
  const Va first = start.alignDown(kPageSize);
  const std::uint64_t pages = (end.alignUp(kPageSize) - first) >> kPageShift;
  if (pages > params_.singlePageFlushCeiling) {
    ++flushRangeFull_;
    return flushAll();
  }
  std::size_t n = 0;
  for (std::uint64_t i = 0; i < pages; ++i) n += flushPage(first + (i << kPageShift));
  return n;
}

std::size_t Tlb::flushAll() {
  ++flushAll_;
  std::size_t n = 0;
  for (Array& a : arrays_)
    for (Entry& e : a.entries)
      if (e.valid) {
        e.valid = false;
        ++n;
      }
  entriesFlushed_ += n;
  return n;
}

std::size_t Tlb::validEntries() const {
  std::size_t n = 0;
  for (const Array& a : arrays_)
    for (const Entry& e : a.entries) n += e.valid;
  return n;
}

}  // namespace hmmsim
