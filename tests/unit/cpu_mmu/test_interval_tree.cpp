// The interval tree behind the mmu interval notifiers (models/cpu_mmu/interval_tree.h), checked
// against brute force on random intervals, and through MmuNotifierSubscriptions.

#include <catch2/catch.hpp>

#include <algorithm>
#include <memory>
#include <vector>

#include "models/cpu_mmu/interval_tree.h"
#include "models/cpu_mmu/mmu_notifier.h"
#include "sim/rng.h"

using namespace hmmsim;

namespace {

// Intervals with a mix of tiny, page-sized and huge lengths, clustered so overlaps are common.
void randomInterval(Rng& rng, std::uint64_t& start, std::uint64_t& last) {
  start = rng.below(1ull << 24);
  const std::uint64_t kind = rng.below(10);
  const std::uint64_t len = kind < 6   ? 1 + rng.below(0x1000)
                            : kind < 9 ? 1 + rng.below(0x40000)
                                       : 1 + rng.below(1ull << 23);
  last = start + len - 1;
}

std::vector<const IntervalTreeNode*> treeQuery(const IntervalTree& t, std::uint64_t s, std::uint64_t l) {
  std::vector<const IntervalTreeNode*> out;
  t.forEachOverlap(s, l, [&](IntervalTreeNode& n) { out.push_back(&n); });
  return out;
}

}  // namespace

TEST_CASE("interval lookup finds exactly the overlapping set among thousands of random intervals") {
  Rng rng(0x1417e7);
  constexpr int kNodes = 4000;
  std::vector<std::unique_ptr<IntervalTreeNode>> nodes;
  IntervalTree tree;
  for (int i = 0; i < kNodes; ++i) {
    auto n = std::make_unique<IntervalTreeNode>();
    randomInterval(rng, n->start, n->last);
    tree.insert(*n);
    nodes.push_back(std::move(n));
  }
  REQUIRE(tree.checkInvariants());
  // Remove a random third, then re-insert some with new bounds, checking invariants as we go.
  for (int i = 0; i < kNodes / 3; ++i) {
    IntervalTreeNode& n = *nodes[rng.below(nodes.size())];
    if (n.inTree()) tree.remove(n);
  }
  REQUIRE(tree.checkInvariants());
  for (auto& n : nodes) {
    if (!n->inTree() && rng.below(2) == 0) {
      randomInterval(rng, n->start, n->last);
      tree.insert(*n);
    }
  }
  REQUIRE(tree.checkInvariants());

  int nonEmpty = 0;
  for (int q = 0; q < 1500; ++q) {
    std::uint64_t s, l;
    randomInterval(rng, s, l);
    std::vector<const IntervalTreeNode*> expect;
    for (auto& n : nodes)
      if (n->inTree() && n->start <= l && s <= n->last) expect.push_back(n.get());
    std::vector<const IntervalTreeNode*> got = treeQuery(tree, s, l);
    // Start order, each once.
    REQUIRE(std::is_sorted(got.begin(), got.end(), [](const IntervalTreeNode* a, const IntervalTreeNode* b) {
      return a->start < b->start;
    }));
    std::sort(expect.begin(), expect.end());
    std::sort(got.begin(), got.end());
    REQUIRE(got == expect);
    nonEmpty += !expect.empty();
  }
  CHECK(nonEmpty > 500);  // the queries really exercise overlaps
  for (auto& n : nodes)
    if (n->inTree()) tree.remove(*n);
  CHECK(tree.empty());
  CHECK(tree.checkInvariants());
}

TEST_CASE("interval tree keeps its red-black and max-last invariants through every insert and remove") {
  Rng rng(7);
  std::vector<std::unique_ptr<IntervalTreeNode>> nodes(300);
  IntervalTree tree;
  for (auto& n : nodes) n = std::make_unique<IntervalTreeNode>();
  for (int step = 0; step < 3000; ++step) {
    IntervalTreeNode& n = *nodes[rng.below(nodes.size())];
    if (n.inTree()) {
      tree.remove(n);
    } else {
      randomInterval(rng, n.start, n.last);
      tree.insert(n);
    }
    REQUIRE(tree.checkInvariants());
  }
  for (auto& n : nodes)
    if (n->inTree()) tree.remove(*n);
}

TEST_CASE("intervals with equal starts are all found, in insertion order") {
  IntervalTree tree;
  IntervalTreeNode a, b, c;
  a.start = b.start = c.start = 100;
  a.last = 100;
  b.last = 500;
  c.last = 200;
  tree.insert(a);
  tree.insert(b);
  tree.insert(c);
  CHECK(treeQuery(tree, 150, 160) == std::vector<const IntervalTreeNode*>{&b, &c});
  CHECK(treeQuery(tree, 0, 100) == std::vector<const IntervalTreeNode*>{&a, &b, &c});
  CHECK(treeQuery(tree, 501, 1000).empty());
  CHECK(treeQuery(tree, 0, 99).empty());
  tree.remove(b);
  tree.remove(a);
  tree.remove(c);
}

namespace {
class CountingOps : public MmuIntervalNotifierOps {
 public:
  bool invalidate(MmuIntervalNotifier& sub, const MmuNotifierRange&, std::uint64_t curSeq) override {
    called.push_back(&sub);
    sub.setSeq(curSeq);
    return true;
  }
  std::vector<MmuIntervalNotifier*> called;
};
}  // namespace

TEST_CASE("an invalidation among thousands of random interval notifiers calls exactly the overlapping ones") {
  Rng rng(99);
  MmuNotifierSubscriptions subs(nullptr);
  CountingOps ops;
  std::vector<std::unique_ptr<MmuIntervalNotifier>> subsList;
  for (int i = 0; i < 2000; ++i) {
    std::uint64_t s, l;
    randomInterval(rng, s, l);
    auto n = std::make_unique<MmuIntervalNotifier>();
    REQUIRE(subs.mmuIntervalNotifierInsert(*n, Va(s), l - s + 1, ops) == Errno::Ok);
    subsList.push_back(std::move(n));
  }
  for (int q = 0; q < 200; ++q) {
    std::uint64_t s, l;
    randomInterval(rng, s, l);
    ops.called.clear();
    MmuNotifierRange r;
    mmuNotifierRangeInit(r, MmuNotifierEvent::Clear, 0, nullptr, Va(s), Va(l + 1));
    subs.invalidateRangeStart(r);
    subs.invalidateRangeEnd(r);
    std::vector<MmuIntervalNotifier*> expect;
    for (auto& n : subsList)
      if (n->start() <= Va(l) && Va(s) <= n->last()) expect.push_back(n.get());
    std::sort(expect.begin(), expect.end());
    std::sort(ops.called.begin(), ops.called.end());
    REQUIRE(ops.called == expect);
  }
  for (auto& n : subsList) n->remove();
}
