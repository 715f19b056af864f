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
  dma32Pfn_ = 1ull << (32 - shift_);
  max32AllocSize_ = dma32Pfn_;
  anchor_.pfnLo = anchor_.pfnHi = ~0ull;
  anchor_.reserved = true;
  tree_.insert(anchor_);
  cached_ = cached32_ = &anchor_;
}

IovaDomain::~IovaDomain() {
  tree_.clear();
}

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

void IovaDomain::deleteNode(IovaNode* n) {
  freeNodes_.push_back(n);
}

std::optional<std::uint64_t> IovaDomain::allocIova(std::uint64_t pages, std::uint64_t limitPfn,
                                                   bool sizeAligned) {
  HMMSIM_ASSERT(pages > 0, "zero-page IOVA allocation");
  HMMSIM_ASSERT(limitPfn < (1ull << 62), "IOVA limit out of range");
  const std::uint64_t limit = limitPfn + 1;  // alloc_iova passes limit_pfn + 1 (exclusive)
  const std::uint64_t alignMask = sizeAligned ? ~(roundupPowOfTwo(pages) - 1) : ~0ull;
  if (limit <= dma32Pfn_ && pages >= max32AllocSize_) return std::nullopt;

  IovaNode* curr = limit <= dma32Pfn_ ? cached32_ : cached_;
  auto it = tree_.iterator_to(*curr);
  const std::uint64_t retryPfn = curr->pfnHi;
  std::uint64_t high = limit, low = startPfn_, newPfn = 0;
  for (bool retried = false;; retried = true) {
    // Walk down from `it`: the candidate sits below every node visited so far and must end
    // above the next lower node.
    for (;;) {
      high = std::min(high, it->pfnLo);
      newPfn = (high - pages) & alignMask;  // wraps when high < pages: caught below
      if (it == tree_.begin()) break;
      auto below = std::prev(it);
      if (!(newPfn <= below->pfnHi && newPfn >= low)) break;
      it = below;
    }
    if (high >= pages && newPfn >= low) break;
    if (!retried && low == startPfn_ && retryPfn < limit) {
      // Second pass over the range above the cached node (iova_find_limit): start at the
      // lowest node reaching `limit`.
      high = limit;
      low = retryPfn + 1;
      it = tree_.lower_bound(limit, PfnLoLess());
      if (it != tree_.begin() && std::prev(it)->pfnHi >= limit) --it;
      continue;
    }
    max32AllocSize_ = pages;
    return std::nullopt;
  }
  IovaNode* n = newNode(newPfn, newPfn + pages - 1, false);
  tree_.insert(*n);
  ++allocated_;
  if (n->pfnHi < dma32Pfn_)
    cached32_ = n;
  else
    cached_ = n;
  return newPfn;
}

Errno IovaDomain::reserveIova(std::uint64_t pfnLo, std::uint64_t pfnHi) {
  if (pfnLo > pfnHi || pfnHi >= anchor_.pfnLo) return Errno::Inval;
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
  }
  IovaNode* merged = newNode(lo, hi, true);
  for (IovaNode* n : overlap) {
    // A cache may rest on a reserved node after a free below it: move it to the merged node.
    if (cached_ == n) cached_ = merged;
    if (cached32_ == n) cached32_ = merged;
    tree_.erase(tree_.iterator_to(*n));
    deleteNode(n);
  }
  tree_.insert(*merged);
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
  auto it = tree_.iterator_to(*n);
  IovaNode* next = &*std::next(it);  // the anchor guarantees a next node
  // __cached_rbnode_delete_update(): keep the caches above every hole the free opens.
  if (n == cached32_ || (n->pfnHi < dma32Pfn_ && n->pfnLo >= cached32_->pfnLo)) cached32_ = next;
  if (n->pfnLo < dma32Pfn_) max32AllocSize_ = dma32Pfn_;
  if (n->pfnLo >= cached_->pfnLo) cached_ = next;
  tree_.erase(it);
  deleteNode(n);
  --allocated_;
  return Errno::Ok;
}

std::vector<IovaNode> IovaDomain::ranges() const {
  std::vector<IovaNode> out;
  for (const IovaNode& n : tree_) {
    if (&n == &anchor_) continue;
    IovaNode copy;
    copy.pfnLo = n.pfnLo;
    copy.pfnHi = n.pfnHi;
    copy.reserved = n.reserved;
    out.push_back(copy);
  }
  return out;
}

}  // namespace hmmsim
