#pragma once
// An intrusive interval tree of closed intervals [start, last]: the kernel's
// include/linux/interval_tree.h (struct interval_tree_node, interval_tree_insert/remove,
// interval_tree_iter_first/next), used by the mmu notifiers to find the interval subscriptions
// that overlap an invalidated range.
//
// Implementation: a red-black tree ordered by start (equal starts keep insertion order), built on
// boost::intrusive::rbtree_algorithms, augmented like the kernel's with each node's
// subtreeLast = max(last) over its subtree. Boost.Intrusive has no augmentation callback, so the
// node traits record every node whose child pointer the algorithms rewrite (a link, a rotation,
// the successor swap of an erase); after each insert/erase the tree recomputes subtreeLast from each
// recorded node up to the root, children before parents. Rebalancing touches O(1) nodes, so
// insert and remove stay O(log n); nothing allocates.
//
// Queries: iterFirst(start, last) returns the overlapping node with the lowest start, iterNext()
// the next one in start order; finding all k overlapping nodes costs O(log n + k) in the usual
// case (each step prunes subtrees whose subtreeLast < start), the same algorithm as the kernel's.
//
// Contract: a node is in at most one tree; start/last must not change while it is in a tree;
// the tree must not be modified while a caller iterates it (the mmu notifiers guarantee this with
// their deferred insert/remove lists).

#include <cstddef>
#include <cstdint>

namespace hmmsim {

class IntervalTree;
struct IntervalTreeNodeTraits;

/// One interval; embed it in (or derive from it) the object the tree indexes.
class IntervalTreeNode {
 public:
  IntervalTreeNode() = default;
  IntervalTreeNode(const IntervalTreeNode&) = delete;
  IntervalTreeNode& operator=(const IntervalTreeNode&) = delete;

  std::uint64_t start = 0;  ///< first point of the interval (inclusive)
  std::uint64_t last = 0;   ///< last point of the interval (inclusive): the kernel's representation

  /// True while the node is linked in a tree (the kernel's !RB_EMPTY_NODE()).
  bool inTree() const { return tree_ != nullptr; }
  /// Max `last` over this node's subtree (valid while inTree()).
  std::uint64_t subtreeLast() const { return subtreeLast_; }

 private:
  friend class IntervalTree;
  friend struct IntervalTreeNodeTraits;
  IntervalTreeNode* parent_ = nullptr;
  IntervalTreeNode* left_ = nullptr;
  IntervalTreeNode* right_ = nullptr;
  IntervalTree* tree_ = nullptr;  ///< owning tree (also set on the header node)
  std::uint64_t subtreeLast_ = 0;
  bool red_ = false;
};

/// The kernel's rb_root_cached of interval_tree_nodes, with the augmentation maintained.
class IntervalTree {
 public:
  IntervalTree();
  IntervalTree(const IntervalTree&) = delete;
  IntervalTree& operator=(const IntervalTree&) = delete;
  /// The tree must be empty when destroyed (nodes are owned elsewhere).
  ~IntervalTree();

  /// Links `node` (start <= last, not in any tree). O(log n).
  void insert(IntervalTreeNode& node);
  /// Unlinks `node`, which must be in this tree. O(log n).
  void remove(IntervalTreeNode& node);

  /// The overlapping node ([start,last] ∩ [node.start,node.last] ≠ ∅) with the lowest start, or
  /// nullptr. Both bounds inclusive, as in the kernel's interval_tree_iter_first().
  IntervalTreeNode* iterFirst(std::uint64_t start, std::uint64_t last) const;
  /// The next overlapping node after `node` in start order, or nullptr (interval_tree_iter_next).
  IntervalTreeNode* iterNext(IntervalTreeNode* node, std::uint64_t start, std::uint64_t last) const;

  /// Calls fn(IntervalTreeNode&) for every overlapping node in start order.
  template <class Fn>
  void forEachOverlap(std::uint64_t start, std::uint64_t last, Fn&& fn) const {
    for (IntervalTreeNode* n = iterFirst(start, last); n; n = iterNext(n, start, last)) fn(*n);
  }

  bool empty() const { return size_ == 0; }
  std::size_t size() const { return size_; }
  bool contains(const IntervalTreeNode& node) const { return node.tree_ == this; }

  /// Verifies the red-black properties, the ordering, and every subtreeLast (tests use it);
  /// returns false on the first violation.
  bool checkInvariants() const;

 private:
  friend struct IntervalTreeNodeTraits;
  static constexpr std::size_t kMaxDirty = 32;

  void markDirty(IntervalTreeNode* n);
  void fixAugmentation(const IntervalTreeNode* erased);
  void recomputeAll();
  static void recompute(IntervalTreeNode* n);
  IntervalTreeNode* root() const;
  IntervalTreeNode* subtreeSearch(IntervalTreeNode* node, std::uint64_t start, std::uint64_t last) const;

  IntervalTreeNode header_;  ///< boost's header: parent = root, left = leftmost, right = rightmost
  std::size_t size_ = 0;
  IntervalTreeNode* dirty_[kMaxDirty] = {};
  std::size_t dirtyCount_ = 0;
  bool dirtyOverflow_ = false;
};

}  // namespace hmmsim
