// SPDX-License-Identifier: MIT
// The filter trie (DPF paper, section 2.1; PATHFINDER): filters merged along their longest
// shared prefix, one node per position, each node's tests ("branches") tried in turn.
//
// A branch holds one test shared by every filter below it: a comparison of one expression
// (with ==, a disjunction: one child per constant), a SHIFT, or a RECORDED lookup. A node also
// lists the filters that end there. The walk explores every branch that holds and returns the
// best accepting filter (see priority_key): the compiled code and the reference walker here
// implement the same walk.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "canonical_p.h"

namespace exojit::dpf::detail {

class HashNode;

// The order of accepting filters: the most specific (most atoms) first, then the lowest id.
// Smaller is better; kNoFilter loses to every filter and its low half is 0, the "no filter" id.
inline constexpr uint64_t kNoFilter = uint64_t(0xffffffffu) << 32;
inline uint64_t priority_high(unsigned specificity) {
  return kMaxAtoms + 1 - specificity;
}
inline uint64_t priority_key(unsigned specificity, uint32_t id) {
  return priority_high(specificity) << 32 | id;
}

struct Node;

// What the filters below a large disjunction pin, for the ownership check (ownership.cpp): per
// key dimension -- an == expression, named with the SHIFTs between the disjunction and it --
// how many live accepts below pin it, and to which values. When every accept below pins a
// dimension and none to the value a new filter pins it to, the whole disjunction is disjoint
// from the new filter: its children need no visit.
struct KeySummary {
  size_t accepts = 0;
  struct Dimension {
    size_t accepts = 0;
    std::unordered_map<uint64_t, size_t> values;
  };
  std::unordered_map<std::string, Dimension> dims;
};
// Disjunctions with at least this many constants keep a KeySummary.
inline constexpr size_t kSummaryChildren = 16;

// The name of a key dimension: the SHIFT amounts from the disjunction's segment to the
// expression's (in order), then the expression, as text (canonical expressions print alike).
std::string dimension_name(const std::vector<const ExprPtr*>& shifts, const ExprPtr& expr);

struct Branch {
  Atom::Kind kind = Atom::Kind::Compare;  // Compare, Shift or Recorded
  Cmp cmp = Cmp::Eq;
  ExprPtr expr;
  // Eq: one child per constant (the disjunction); other compares: the one constant; Shift: key
  // 0; Recorded: one child per filter id (each id remembers its own values).
  std::map<uint64_t, std::unique_ptr<Node>> children;
  Node* parent = nullptr;
  // Set by the code generator: the branch is compiled as this hash table (owned by the engine).
  HashNode* hash = nullptr;
  uint32_t must = 0;  // bytes from the segment's base every acceptance below needs (codegen)
  uint64_t subtree_best = 0;            // the best accept below (codegen)
  std::unique_ptr<KeySummary> summary;  // Eq branches of kSummaryChildren constants or more
};

struct Node {
  std::vector<std::unique_ptr<Branch>> branches;  // tried in insertion order
  std::vector<uint64_t> accepts;                  // priority keys of the filters ending here
  // Keys of removed filters whose code still runs (Trie::kill): they keep the node, so that the
  // trie's shape stays the code's, and accept nothing in the walk.
  std::vector<uint64_t> dead;
  Branch* parent = nullptr;
  uint64_t key = 0;  // this node's constant in its parent branch
  uint32_t must = 0;
  uint64_t subtree_best = 0;  // the best accept here or below (codegen)

  uint64_t best_accept() const;  // kNoFilter if none
  bool empty() const { return accepts.empty() && dead.empty() && branches.empty(); }
};

// What an insertion changed, for the engine's decision to patch data or regenerate code.
struct Change {
  Branch* branch = nullptr;  // the branch that got a new key (nullptr: structural change)
  bool only_accept = false;  // the filter's path existed: only an accept was added
  Node* leaf = nullptr;      // the node whose accepts changed
};

// Was `value` remembered for filter `id` (RECORD), and not yet expired? (the engine's state)
using RecordedFn = uint64_t (*)(const void* state, uint64_t id, uint64_t value);

class Trie {
 public:
  Trie();
  RecordedFn recorded = nullptr;
  const void* recorded_state = nullptr;
  // Merges a canonical filter; `key` is its priority key. Returns what changed.
  Change insert(const Canonical& f, uint64_t key);
  // Removes the accept `key` ending at `leaf`, pruning empty nodes. Returns the branch that lost a
  // key when that is the only structural change (nullptr otherwise; only_accept if nothing
  // structural was removed).
  Change erase(Node* leaf, uint64_t key);
  // Takes the accept `key` at `leaf` out of the walk without changing the trie's shape; once
  // the code no longer has it, erase_dead drops it and prunes what it kept.
  void kill(Node* leaf, uint64_t key);
  void erase_dead(Node* leaf, uint64_t key);

  const Node& root() const { return *root_; }
  Node& root() { return *root_; }

  // The reference walk: the best priority key of the filters accepting the packet.
  uint64_t walk(const uint8_t* pkt, size_t len) const;
  // Every accepting filter's priority key (for tests).
  void walk_all(const uint8_t* pkt, size_t len, std::vector<uint64_t>* keys) const;

  std::string dump() const;

 private:
  Change prune(Node* leaf);  // empty nodes from `leaf` up
  // Counts the accept at `leaf` in (delta 1) or out of (-1) the summaries above it.
  void summarize(const Node* leaf, int delta);
  std::unique_ptr<Node> root_;
};

// A chain below a branch: single-child steps until a node that ends filters or branches out.
struct Step {
  Atom::Kind kind;
  Cmp cmp;
  ExprPtr expr;
  uint64_t value;
};
// Follows single-child compare steps from `n` (staying in the segment when `same_segment`), or
// also SHIFT steps otherwise. Returns the node where the chain stops.
const Node* follow_chain(const Node* n, bool through_shifts, std::vector<Step>* steps);

}  // namespace exojit::dpf::detail
