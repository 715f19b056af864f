#include "models/pcie/iotlb.h"

#include "sim/assert.h"

namespace hmmsim {

Iotlb::Iotlb(const IotlbParams& params) : params_(params) {
  initArray(small_, kPageShift, params.entries4k, params.ways4k);
  initArray(large_, kPmdShift, params.entries2m, params.ways2m);
}

void Iotlb::initArray(Array& a, unsigned shift, unsigned entries, unsigned ways) {
  HMMSIM_ASSERT(entries > 0 && ways > 0 && entries % ways == 0,
                "IOTLB geometry: " << entries << " entries, " << ways << " ways");
  a.shift = shift;
  a.ways = ways;
  a.sets = entries / ways;
  a.setMask = (a.sets & (a.sets - 1)) == 0 ? a.sets - 1 : 0;
  a.valid = 0;
  a.entries.assign(entries, Entry{});
}

Iotlb::Entry* Iotlb::find(Array& a, std::uint16_t did, std::uint64_t vpn) {
  if (a.valid == 0) return nullptr;  // e.g. no 2 MiB mapping cached: no scan of that array
  Entry* set = a.setOf(vpn);
  for (unsigned w = 0; w < a.ways; ++w)
    if (set[w].valid && set[w].vpn == vpn && set[w].did == did) return &set[w];
  return nullptr;
}

std::optional<IotlbHit> Iotlb::lookup(std::uint16_t did, Iova iova) {
  for (Array* a : {&small_, &large_}) {
    if (Entry* e = find(*a, did, iova.value() >> a->shift)) {
      e->lastUse = ++useClock_;
      return IotlbHit{Pa(e->pfnBase << a->shift), 1ull << a->shift, e->prot};
    }
  }
  return std::nullopt;
}

bool Iotlb::insert(std::uint16_t did, Iova iova, Pa pageBase, std::uint64_t pageSize, IommuProt prot) {
  HMMSIM_ASSERT(pageSize == kPageSize || pageSize == kPmdSize, "IOTLB page size " << pageSize);
  Array& a = pageSize == kPmdSize ? large_ : small_;
  const std::uint64_t vpn = iova.value() >> a.shift;
  Entry* victim = find(a, did, vpn);
  bool evicted = false;
  if (!victim) {
    Entry* set = a.setOf(vpn);
    for (unsigned w = 0; w < a.ways; ++w) {
      if (!set[w].valid) {
        victim = &set[w];
        break;
      }
      if (!victim || set[w].lastUse < victim->lastUse) victim = &set[w];
    }
    evicted = victim->valid;
    if (!evicted) ++a.valid;
  }
  *victim = Entry{true, did, vpn, pageBase.value() >> a.shift, prot, ++useClock_};
  return evicted;
}

template <typename Pred>
unsigned Iotlb::dropIf(Array& a, Pred drop) {
  unsigned n = 0;
  for (Entry& e : a.entries)
    if (e.valid && drop(e)) {
      e.valid = false;
      ++n;
    }
  a.valid -= n;
  return n;
}

unsigned Iotlb::invalidateRange(std::uint16_t did, Iova iova, std::uint64_t size) {
  const std::uint64_t lo = iova.value(), hi = iova.value() + size;  // [lo, hi)
  unsigned n = 0;
  for (Array* a : {&small_, &large_})
    n += dropIf(*a, [&](const Entry& e) {
      const std::uint64_t elo = e.vpn << a->shift, ehi = elo + (1ull << a->shift);
      return e.did == did && elo < hi && lo < ehi;
    });
  return n;
}

unsigned Iotlb::invalidateDomain(std::uint16_t did) {
  unsigned n = 0;
  for (Array* a : {&small_, &large_}) n += dropIf(*a, [did](const Entry& e) { return e.did == did; });
  return n;
}

unsigned Iotlb::invalidateAll() {
  unsigned n = 0;
  for (Array* a : {&small_, &large_}) n += dropIf(*a, [](const Entry&) { return true; });
  return n;
}

unsigned Iotlb::validEntries() const {
  return small_.valid + large_.valid;
}

}  // namespace hmmsim
