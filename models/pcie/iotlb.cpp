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
  a.tags.assign(entries, kFree);
  a.ages.assign(entries, 0);
  a.pfns.assign(entries, 0);
  a.prots.assign(entries, 0);
}

std::ptrdiff_t Iotlb::find(const Array& a, std::uint16_t did, std::uint64_t vpn) {
  if (a.valid == 0) return -1;  // e.g. no 2 MiB mapping cached: no scan of that array
  const std::size_t set = a.setOf(vpn);
  const std::uint64_t tag = tagOf(did, vpn);
  for (unsigned w = 0; w < a.ways; ++w)
    if (a.tags[set + w] == tag) return std::ptrdiff_t(set + w);
  return -1;
}

bool Iotlb::lookup(std::uint16_t did, Iova iova, IotlbHit& hit) {
  for (Array* a : {&small_, &large_}) {
    const std::ptrdiff_t i = find(*a, did, iova.value() >> a->shift);
    if (i >= 0) {
      a->ages[i] = ++useClock_;
      hit.pageBase = Pa(a->pfns[i] << a->shift);
      hit.pageSize = 1ull << a->shift;
      hit.prot = a->prots[i];
      return true;
    }
  }
  return false;
}

bool Iotlb::insert(std::uint16_t did, Iova iova, Pa pageBase, std::uint64_t pageSize, IommuProt prot) {
  HMMSIM_ASSERT(pageSize == kPageSize || pageSize == kPmdSize, "IOTLB page size " << pageSize);
  Array& a = pageSize == kPmdSize ? large_ : small_;
  const std::uint64_t vpn = iova.value() >> a.shift;
  const std::uint64_t tag = tagOf(did, vpn);
  // One pass over the set: the page's own entry if cached, else the way of least age (the first
  // free way, free ways being of age 0).
  const std::size_t set = a.setOf(vpn);
  std::size_t victim = set;
  bool own = false;
  for (unsigned w = 0; w < a.ways; ++w) {
    if (a.tags[set + w] == tag) {
      victim = set + w;
      own = true;
      break;
    }
    if (a.ages[set + w] < a.ages[victim]) victim = set + w;
  }
  const bool evicted = !own && a.tags[victim] != kFree;
  if (!own && !evicted) ++a.valid;
  a.tags[victim] = tag;
  a.ages[victim] = ++useClock_;
  a.pfns[victim] = pageBase.value() >> a.shift;
  a.prots[victim] = prot;
  return evicted;
}

template <typename Pred>
unsigned Iotlb::dropIf(Array& a, Pred drop) {
  unsigned n = 0;
  for (std::size_t i = 0; i < a.tags.size(); ++i)
    if (a.tags[i] != kFree && drop(std::uint16_t(a.tags[i] & 0xffff), a.tags[i] >> 16)) {
      a.clear(i);
      ++n;
    }
  a.valid -= n;
  return n;
}

unsigned Iotlb::invalidateRange(std::uint16_t did, Iova iova, std::uint64_t size) {
  const std::uint64_t lo = iova.value(), hi = iova.value() + size;  // [lo, hi)
  unsigned n = 0;
  for (Array* a : {&small_, &large_}) {
    const std::uint64_t first = lo >> a->shift, last = size == 0 ? first : (hi - 1) >> a->shift;
    if (size != 0 && last - first < a->sets) {
      // Fewer pages than sets: each page can only be in its own set, so look those up instead
      // of scanning the array (an unmap of a few pages in a large IOTLB).
      unsigned dropped = 0;
      for (std::uint64_t vpn = first; vpn <= last && a->valid > dropped; ++vpn) {
        const std::ptrdiff_t i = find(*a, did, vpn);
        if (i >= 0) {
          a->clear(std::size_t(i));
          ++dropped;
        }
      }
      a->valid -= dropped;
      n += dropped;
      continue;
    }
    n += dropIf(*a, [&](std::uint16_t eDid, std::uint64_t vpn) {
      const std::uint64_t elo = vpn << a->shift, ehi = elo + (1ull << a->shift);
      return eDid == did && elo < hi && lo < ehi;
    });
  }
  return n;
}

unsigned Iotlb::invalidateDomain(std::uint16_t did) {
  unsigned n = 0;
  for (Array* a : {&small_, &large_})
    n += dropIf(*a, [did](std::uint16_t eDid, std::uint64_t) { return eDid == did; });
  return n;
}

unsigned Iotlb::invalidateAll() {
  unsigned n = 0;
  for (Array* a : {&small_, &large_}) n += dropIf(*a, [](std::uint16_t, std::uint64_t) { return true; });
  return n;
}

unsigned Iotlb::validEntries() const {
  return small_.valid + large_.valid;
}

}  // namespace hmmsim
