#include "models/cpu_mmu/interval_tree.h"

#include <algorithm>

#include <boost/intrusive/rbtree_algorithms.hpp>

#include "sim/assert.h"

namespace hmmsim {

// Node traits for boost::intrusive::rbtree_algorithms. set_left/set_right are the only ways the
// algorithms change which nodes lie below a node, so recording their targets finds every node
// whose subtreeLast may be stale after a link, a rotation or an erase.
struct IntervalTreeNodeTraits {
  using node = IntervalTreeNode;
  using node_ptr = IntervalTreeNode*;
  using const_node_ptr = const IntervalTreeNode*;
  using color = bool;  // true = red

  static node_ptr get_parent(const_node_ptr n) { return n->parent_; }
  static void set_parent(node_ptr n, node_ptr p) { n->parent_ = p; }
  static node_ptr get_left(const_node_ptr n) { return n->left_; }
  static void set_left(node_ptr n, node_ptr l) {
    n->left_ = l;
    if (n->tree_) n->tree_->markDirty(n);
  }
  static node_ptr get_right(const_node_ptr n) { return n->right_; }
  static void set_right(node_ptr n, node_ptr r) {
    n->right_ = r;
    if (n->tree_) n->tree_->markDirty(n);
  }
  static color get_color(const_node_ptr n) { return n->red_; }
  static void set_color(node_ptr n, color c) { n->red_ = c; }
  static color black() { return false; }
  static color red() { return true; }
};

namespace {
using Algo = boost::intrusive::rbtree_algorithms<IntervalTreeNodeTraits>;

struct StartLess {
  bool operator()(const IntervalTreeNode* a, const IntervalTreeNode* b) const { return a->start < b->start; }
};
}  // namespace

IntervalTree::IntervalTree() {
  header_.tree_ = this;
  Algo::init_header(&header_);
}

IntervalTree::~IntervalTree() {
  HMMSIM_ASSERT(size_ == 0, "IntervalTree destroyed with " << size_ << " node(s) still linked");
}

void IntervalTree::markDirty(IntervalTreeNode* n) {
  if (n == &header_) return;
  for (std::size_t i = 0; i < dirtyCount_; ++i)
    if (dirty_[i] == n) return;
  if (dirtyCount_ == kMaxDirty) {
    dirtyOverflow_ = true;
    return;
  }
  dirty_[dirtyCount_++] = n;
}

void IntervalTree::recompute(IntervalTreeNode* n) {
  std::uint64_t m = n->last;
  if (n->left_) m = std::max(m, n->left_->subtreeLast_);
  if (n->right_) m = std::max(m, n->right_->subtreeLast_);
  n->subtreeLast_ = m;
}

// Recomputes subtreeLast from every recorded node towards the root. A walk stops early where a
// node's value did not change: its ancestors only see it through that value, and any ancestor
// whose own children changed is itself recorded and walked. The result is consistent everywhere,
// which for a max-augmentation means correct.
void IntervalTree::fixAugmentation(const IntervalTreeNode* erased) {
  if (dirtyOverflow_) {
    recomputeAll();
  } else {
    for (std::size_t i = 0; i < dirtyCount_; ++i) {
      IntervalTreeNode* n = dirty_[i];
      if (n == erased || n->tree_ != this) continue;
      for (;;) {
        const std::uint64_t before = n->subtreeLast_;
        recompute(n);
        if (n->subtreeLast_ == before) break;  // the parent's inputs did not change through n
        n = n->parent_;
        if (n == &header_) break;
      }
    }
  }
  dirtyCount_ = 0;
  dirtyOverflow_ = false;
}

void IntervalTree::recomputeAll() {
  // Post-order without recursion or allocation, using parent pointers.
  IntervalTreeNode* n = root();
  if (!n) return;
  IntervalTreeNode* prev = &header_;
  while (n != &header_) {
    if (prev == n->parent_) {  // arrived from above: go left, else right, else visit
      prev = n;
      if (n->left_)
        n = n->left_;
      else if (n->right_)
        n = n->right_;
      else {
        recompute(n);
        n = n->parent_;
      }
    } else if (prev == n->left_) {  // back from the left subtree
      prev = n;
      if (n->right_)
        n = n->right_;
      else {
        recompute(n);
        n = n->parent_;
      }
    } else {  // back from the right subtree
      prev = n;
      recompute(n);
      n = n->parent_;
    }
  }
}

IntervalTreeNode* IntervalTree::root() const {
  return header_.parent_;
}

void IntervalTree::insert(IntervalTreeNode& node) {
  HMMSIM_ASSERT(node.tree_ == nullptr, "interval tree node inserted while already in a tree");
  HMMSIM_ASSERT(node.start <= node.last,
                "interval tree node with start 0x" << std::hex << node.start << " > last 0x" << node.last);
  node.parent_ = node.left_ = node.right_ = nullptr;
  node.subtreeLast_ = node.last;
  node.tree_ = this;
  dirtyCount_ = 0;
  dirtyOverflow_ = false;
  Algo::insert_equal_upper_bound(&header_, &node, StartLess());
  markDirty(&node);
  ++size_;
  fixAugmentation(nullptr);
}

void IntervalTree::remove(IntervalTreeNode& node) {
  HMMSIM_ASSERT(node.tree_ == this, "interval tree node removed from a tree it is not in");
  dirtyCount_ = 0;
  dirtyOverflow_ = false;
  Algo::erase(&header_, &node);
  node.tree_ = nullptr;
  --size_;
  fixAugmentation(&node);
  node.parent_ = node.left_ = node.right_ = nullptr;
}

// Leftmost node of `node`'s subtree that overlaps [start, last], or nullptr.
// Precondition (callers check it): start <= node->subtreeLast_.
IntervalTreeNode* IntervalTree::subtreeSearch(IntervalTreeNode* node, std::uint64_t start,
                                              std::uint64_t last) const {
  for (;;) {
    // A match in the left subtree has a lower start than anything here: look there first.
    if (node->left_ && start <= node->left_->subtreeLast_) {
      node = node->left_;
      continue;
    }
    if (node->start > last) return nullptr;  // this and everything to the right start too late
    if (start <= node->last) return node;
    if (!node->right_ || start > node->right_->subtreeLast_) return nullptr;
    node = node->right_;
  }
}

IntervalTreeNode* IntervalTree::iterFirst(std::uint64_t start, std::uint64_t last) const {
  IntervalTreeNode* r = root();
  if (!r || r->subtreeLast_ < start) return nullptr;
  if (header_.left_->start > last) return nullptr;  // leftmost starts after the query
  return subtreeSearch(r, start, last);
}

IntervalTreeNode* IntervalTree::iterNext(IntervalTreeNode* node, std::uint64_t start,
                                         std::uint64_t last) const {
  IntervalTreeNode* right = node->right_;
  for (;;) {
    // Anything after `node` in its right subtree?
    if (right && start <= right->subtreeLast_) return subtreeSearch(right, start, last);
    // Climb until we arrive at an ancestor from its left side: that ancestor is next in order.
    IntervalTreeNode* prev;
    do {
      IntervalTreeNode* p = node->parent_;
      if (p == &header_) return nullptr;
      prev = node;
      node = p;
      right = node->right_;
    } while (prev == right);
    if (node->start > last) return nullptr;
    if (start <= node->last) return node;
  }
}

namespace {
// Returns the black height of the subtree, or -1 on a violation.
int checkSubtree(const IntervalTreeNode* n, const IntervalTreeNode* parent, const IntervalTree* tree,
                 std::size_t& count, const IntervalTreeNode*& prevInOrder) {
  if (!n) return 1;
  ++count;
  if (IntervalTreeNodeTraits::get_parent(n) != parent) return -1;
  if (!tree->contains(*n)) return -1;
  const IntervalTreeNode* l = IntervalTreeNodeTraits::get_left(n);
  const IntervalTreeNode* r = IntervalTreeNodeTraits::get_right(n);
  if (IntervalTreeNodeTraits::get_color(n)) {
    if ((l && IntervalTreeNodeTraits::get_color(l)) || (r && IntervalTreeNodeTraits::get_color(r))) return -1;
  }
  int lh = checkSubtree(l, n, tree, count, prevInOrder);
  if (lh < 0) return -1;
  if (prevInOrder && prevInOrder->start > n->start) return -1;
  prevInOrder = n;
  int rh = checkSubtree(r, n, tree, count, prevInOrder);
  if (rh < 0 || lh != rh) return -1;
  std::uint64_t m = n->last;
  if (l) m = std::max(m, l->subtreeLast());
  if (r) m = std::max(m, r->subtreeLast());
  if (m != n->subtreeLast()) return -1;
  if (n->start > n->last) return -1;
  return lh + (IntervalTreeNodeTraits::get_color(n) ? 0 : 1);
}
}  // namespace

bool IntervalTree::checkInvariants() const {
  const IntervalTreeNode* r = root();
  if (!r) return size_ == 0 && header_.left_ == &header_ && header_.right_ == &header_;
  if (IntervalTreeNodeTraits::get_color(r)) return false;
  std::size_t count = 0;
  const IntervalTreeNode* prev = nullptr;
  if (checkSubtree(r, &header_, this, count, prev) < 0) return false;
  if (count != size_) return false;
  const IntervalTreeNode* lm = r;
  while (lm->left_) lm = lm->left_;
  const IntervalTreeNode* rm = r;
  while (rm->right_) rm = rm->right_;
  return header_.left_ == lm && header_.right_ == rm;
}

}  // namespace hmmsim
