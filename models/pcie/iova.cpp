#include "models/pcie/iova.h"

#include <algorithm>

#include "sim/assert.h"

namespace hmmsim {

namespace {
struct PfnLoLess {
  bool operator()(const IovaNode& n, std::uint64_t pfn) const { return n.pfnLo < pfn; }
  bool operator()(std::uint64_t pfn, const IovaNode& n) const { return pfn < n.pfnLo; }
};
std::uint64_t roundupPowOfTwo(std::uint64_t v) {
  std::uint64_t p = 1;
  while (p < v) p <<= 1;
  return p;
}
}  // namespace

IovaDomain::IovaDomain(std::uint64_t granule, std::uint64_t startPfn)
    : granule_(granule), shift_(0), startPfn_(std::max<std::uint64_t>(startPfn, 1)) {
  HMMSIM_ASSERT(granule && (granule & (granule - 1)) == 0 && granule <= kPageSize,
                "IOVA granule " << granule << " must be a power of two <= page size");
  while ((1ull << shift_) < granule) ++shift_;
}

IovaDomain::~IovaDomain() { tree_.clear(); }

IovaNode* IovaDomain::newNode(std::uint64_t lo, std::uint64_t hi, bool reserved) {
  IovaNode* n;
  if (!freeNodes_.empty()) {
    n = freeNodes_.back();
    freeNodes_.pop_back();
  } else {
    pool_.emplace_back();
    n = &pool_.back();
  }
  n->pfnLo = lo;
  n->pfnHi = hi;
  n->reserved = reserved;
  return n;
}

void IovaDomain::deleteNode(IovaNode* n) { freeNodes_.push_back(n); }

std::optional<std::uint64_t> IovaDomain::allocIova(std::uint64_t pages, std::uint64_t limitPfn, bool sizeAligned) {
  HMMSIM_ASSERT(pages > 0, "zero-page IOVA allocation");
  HMMSIM_ASSERT(limitPfn < (1ull << 63), "IOVA limit out of range");
  const std::uint64_t align = sizeAligned ? roundupPowOfTwo(pages) : 1;
  std::uint64_t high = limitPfn + 1;  // exclusive
  // Walk the tree downwards from the limit, trying the gap below `high` each time.
  auto it = tree_.lower_bound(high, PfnLoLess());
  for (;;) {
    std::uint64_t gapLo = startPfn_;
    if (it != tree_.begin()) gapLo = std::max(gapLo, std::prev(it)->pfnHi + 1);
    if (high >= gapLo && high - gapLo >= pages) {
      std::uint64_t cand = (high - pages) & ~(align - 1);
      if (cand >= gapLo) {
        tree_.insert(*newNode(cand, cand + pages - 1, false));
        ++allocated_;
        return cand;
      }
    }
    if (it == tree_.begin()) return std::nullopt;
    --it;
    high = std::min(high, it->pfnLo);
    if (high <= startPfn_) return std::nullopt;
  }
}

Errno IovaDomain::reserveIova(std::uint64_t pfnLo, std::uint64_t pfnHi) {
  if (pfnLo > pfnHi) return Errno::Inval;
  // Collect every node overlapping [pfnLo, pfnHi]: nodes start at or below pfnHi.
  std::uint64_t lo = pfnLo, hi = pfnHi;
  auto it = tree_.upper_bound(pfnHi, PfnLoLess());
  std::vector<IovaNode*> overlap;
  while (it != tree_.begin()) {
    --it;
    if (it->pfnHi < pfnLo) break;
    if (!it->reserved) return Errno::Busy;
    overlap.push_back(&*it);
  }
  for (IovaNode* n : overlap) {
    lo = std::min(lo, n->pfnLo);
    hi = std::max(hi, n->pfnHi);
    tree_.erase(tree_.iterator_to(*n));
    deleteNode(n);
  }
  tree_.insert(*newNode(lo, hi, true));
  return Errno::Ok;
}

const IovaNode* IovaDomain::findIova(std::uint64_t pfn) const {
  auto it = tree_.upper_bound(pfn, PfnLoLess());
  if (it == tree_.begin()) return nullptr;
  --it;
  return it->pfnHi >= pfn ? &*it : nullptr;
}

Errno IovaDomain::freeIova(std::uint64_t pfn) {
  const IovaNode* c = findIova(pfn);
  if (!c || c->reserved) return Errno::Inval;
  IovaNode* n = const_cast<IovaNode*>(c);
  tree_.erase(tree_.iterator_to(*n));
  deleteNode(n);
  --allocated_;
  return Errno::Ok;
}

std::vector<IovaNode> IovaDomain::ranges() const {
  std::vector<IovaNode> out;
  for (const IovaNode& n : tree_) {
    IovaNode copy;
    copy.pfnLo = n.pfnLo;
    copy.pfnHi = n.pfnHi;
    copy.reserved = n.reserved;
    out.push_back(copy);
  }
  return out;
}

}  // namespace hmmsim
