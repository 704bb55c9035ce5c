// SPDX-License-Identifier: MIT
// Trie merging, pruning, the reference walk and the dump.
#include <fmt/format.h>

#include <algorithm>

#include "exojit/error.h"
#include "hash_node_p.h"
#include "trie_p.h"

namespace exojit::dpf::detail {

uint64_t Node::best_accept() const {
  uint64_t best = kNoFilter;
  for (uint64_t k : accepts) best = std::min(best, k);
  return best;
}

void Trie::kill(Node* leaf, uint64_t key) {
  auto it = std::find(leaf->accepts.begin(), leaf->accepts.end(), key);
  if (it == leaf->accepts.end()) fail("dpf: internal: accept not found");
  summarize(leaf, -1);
  leaf->accepts.erase(it);
  leaf->dead.push_back(key);
}

Trie::Trie() : root_(std::make_unique<Node>()) {}

std::string dimension_name(const std::vector<const ExprPtr*>& shifts, const ExprPtr& expr) {
  std::string name;
  for (const ExprPtr* s : shifts) name += to_string(*s) + ";";
  return name + "|" + to_string(expr);
}

namespace {

// The path from the root to `leaf`: each step's branch and constant.
std::vector<std::pair<const Branch*, uint64_t>> path_to(const Node* leaf) {
  std::vector<std::pair<const Branch*, uint64_t>> path;
  for (const Node* n = leaf; n->parent; n = n->parent->parent) path.emplace_back(n->parent, n->key);
  std::reverse(path.begin(), path.end());
  return path;
}

// Adds (delta 1) or takes out (-1) one accept whose path below `b` is `steps` [from, end).
void count_in(KeySummary& s, const std::vector<std::pair<const Branch*, uint64_t>>& steps,
              size_t from, int delta) {
  s.accepts += size_t(delta);
  std::vector<const ExprPtr*> shifts;
  for (size_t i = from; i < steps.size(); ++i) {
    const Branch& b = *steps[i].first;
    if (b.kind == Atom::Kind::Shift) {
      shifts.push_back(&b.expr);
      continue;
    }
    if (b.kind != Atom::Kind::Compare || b.cmp != Cmp::Eq) continue;
    KeySummary::Dimension& d = s.dims[dimension_name(shifts, b.expr)];
    d.accepts += size_t(delta);
    size_t& v = d.values[steps[i].second];
    v += size_t(delta);
    if (v == 0) d.values.erase(steps[i].second);
  }
}

// Builds the summary of `b` from its subtree.
void build_summary(Branch& b) {
  b.summary = std::make_unique<KeySummary>();
  std::vector<std::pair<const Branch*, uint64_t>> steps;
  auto visit = [&](auto& self, const Node& n) -> void {
    for (size_t i = 0; i < n.accepts.size(); ++i) count_in(*b.summary, steps, 1, 1);
    for (const auto& br : n.branches)
      for (const auto& [k, child] : br->children) {
        steps.emplace_back(br.get(), k);
        self(self, *child);
        steps.pop_back();
      }
  };
  for (const auto& [k, child] : b.children) {
    steps.assign(1, {&b, k});
    visit(visit, *child);
  }
}

}  // namespace

void Trie::summarize(const Node* leaf, int delta) {
  auto path = path_to(leaf);
  for (size_t i = 0; i < path.size(); ++i)
    if (path[i].first->summary) count_in(*path[i].first->summary, path, i + 1, delta);
}

namespace {

bool branch_matches(const Branch& b, const Atom& a) {
  if (b.kind != a.kind) return false;
  if (a.kind == Atom::Kind::Compare) {
    if (b.cmp != a.cmp) return false;
    // Eq branches share the expression (a disjunction); the others their constant too.
    if (a.cmp != Cmp::Eq && b.children.begin()->first != a.value) return false;
  }
  return same_expr(b.expr, a.expr);
}

// Recorded atoms carry their filter's id in `value` (set by the engine).
uint64_t branch_key(const Atom& a) {
  return a.kind == Atom::Kind::Shift ? 0 : a.value;
}

template <typename Sink>
void walk_node(const Trie& t, const Node& n, const uint8_t* base, size_t avail, Sink& sink) {
  for (uint64_t k : n.accepts) sink(k);
  for (const auto& b : n.branches) {
    uint64_t v;
    if (!evaluate(b->expr, base, avail, &v)) continue;
    switch (b->kind) {
      case Atom::Kind::Recorded:
        for (auto& [id, child] : b->children)
          if (t.recorded && t.recorded(t.recorded_state, id, v))
            walk_node(t, *child, base, avail, sink);
        break;
      case Atom::Kind::Compare:
        if (b->cmp == Cmp::Eq) {
          auto it = b->children.find(v);
          if (it != b->children.end()) walk_node(t, *it->second, base, avail, sink);
        } else {
          auto& [k, child] = *b->children.begin();
          if (compare_holds(b->cmp, v, k)) walk_node(t, *child, base, avail, sink);
        }
        break;
      case Atom::Kind::Shift:
        if (v <= avail) walk_node(t, *b->children.begin()->second, base + v, avail - v, sink);
        break;
      default:
        break;
    }
  }
}

void dump_node(const Node& n, int depth, std::string& out) {
  std::string pad(size_t(depth) * 2, ' ');
  for (uint64_t k : n.accepts)
    out += fmt::format("{}accept id {} (specificity {})\n", pad, uint32_t(k),
                       kMaxAtoms + 1 - (k >> 32));
  for (uint64_t k : n.dead)
    out += fmt::format("{}removed id {} (its code runs until the next full generation)\n", pad,
                       uint32_t(k));
  for (const auto& b : n.branches) {
    if (b->kind == Atom::Kind::Recorded) {
      for (auto& [id, child] : b->children) {
        out += fmt::format("{}RECORDED({}) for id {}\n", pad, to_string(b->expr), id);
        dump_node(*child, depth + 1, out);
      }
      continue;
    }
    if (b->kind == Atom::Kind::Shift) {
      out += fmt::format("{}SHIFT({})  [needs {} bytes]\n", pad, to_string(b->expr), b->must);
      dump_node(*b->children.begin()->second, depth + 1, out);
      continue;
    }
    if (b->cmp != Cmp::Eq || b->children.size() == 1) {
      auto& [k, child] = *b->children.begin();
      out += fmt::format("{}{} {} {:#x}  [needs {} bytes]\n", pad, to_string(b->expr),
                         cmp_name(b->cmp), k, b->must);
      dump_node(*child, depth + 1, out);
      continue;
    }
    std::string how = b->children.size() > 3 ? " (binary search)" : "";
    if (b->hash && b->hash->overflow().empty()) how = " (hash table)";
    if (b->hash && !b->hash->overflow().empty())
      how = fmt::format(" (hash table; {} constants searched after a miss)",
                        b->hash->overflow().size());
    out += fmt::format("{}{} == one of {} keys{}  [needs {} bytes]\n", pad, to_string(b->expr),
                       b->children.size(), how, b->must);
    for (auto& [k, child] : b->children) {
      out += fmt::format("{}  == {:#x}:\n", pad, k);
      dump_node(*child, depth + 2, out);
    }
  }
}

}  // namespace

Change Trie::insert(const Canonical& f, uint64_t key) {
  Change change;
  Node* n = root_.get();
  std::vector<const Atom*> pending;  // atoms of the current segment not yet placed
  size_t i = 0;
  const auto& atoms = f.atoms;
  bool structural = false;
  while (i < atoms.size() || !pending.empty()) {
    // The atoms up to (not including) the next SHIFT may be taken in any order: take first one
    // whose whole path exists, else one whose branch exists (a new key of a disjunction), else
    // the next one written.
    if (pending.empty()) {
      if (atoms[i].kind == Atom::Kind::Shift) {
        pending.push_back(&atoms[i++]);
      } else {
        while (i < atoms.size() && atoms[i].kind != Atom::Kind::Shift)
          if (atoms[i].kind != Atom::Kind::Record)
            pending.push_back(&atoms[i++]);
          else
            ++i;
        if (pending.empty()) continue;
      }
    }
    size_t pick = 0;
    Branch* found = nullptr;
    int quality = 0;  // 2: branch and key exist, 1: branch exists
    for (size_t p = 0; p < pending.size() && quality < 2; ++p) {
      for (auto& b : n->branches) {
        if (!branch_matches(*b, *pending[p])) continue;
        int q = b->children.count(branch_key(*pending[p])) ? 2 : 1;
        if (q > quality) quality = q, pick = p, found = b.get();
        break;
      }
    }
    const Atom& a = *pending[pick];
    pending.erase(pending.begin() + long(pick));
    if (!found) {
      auto b = std::make_unique<Branch>();
      b->kind = a.kind;
      b->cmp = a.cmp;
      b->expr = a.expr;
      b->parent = n;
      found = b.get();
      n->branches.push_back(std::move(b));
      structural = true;
    }
    uint64_t k = branch_key(a);
    auto it = found->children.find(k);
    if (it == found->children.end()) {
      auto child = std::make_unique<Node>();
      child->parent = found;
      child->key = k;
      if (!structural) change.branch = found;
      structural = true;
      it = found->children.emplace(k, std::move(child)).first;
    }
    n = it->second.get();
  }
  n->accepts.push_back(key);
  summarize(n, 1);
  // A disjunction that just reached the size for a summary gets one (from its subtree, which
  // includes this accept).
  for (Node* up = n; up->parent; up = up->parent->parent) {
    Branch& b = *up->parent;
    if (!b.summary && b.kind == Atom::Kind::Compare && b.cmp == Cmp::Eq &&
        b.children.size() >= kSummaryChildren)
      build_summary(b);
  }
  change.leaf = n;
  change.only_accept = !structural && change.branch == nullptr;
  if (change.branch && change.branch->children.size() == 1) change.branch = nullptr;  // new
  return change;
}

void Trie::erase_dead(Node* leaf, uint64_t key) {
  auto it = std::find(leaf->dead.begin(), leaf->dead.end(), key);
  if (it == leaf->dead.end()) fail("dpf: internal: removed accept not found");
  leaf->dead.erase(it);
  prune(leaf);
}

Change Trie::erase(Node* leaf, uint64_t key) {
  auto it = std::find(leaf->accepts.begin(), leaf->accepts.end(), key);
  if (it == leaf->accepts.end()) fail("dpf: internal: accept not found");
  summarize(leaf, -1);
  leaf->accepts.erase(it);
  return prune(leaf);
}

Change Trie::prune(Node* leaf) {
  Change change;
  change.leaf = leaf;
  Node* n = leaf;
  Branch* lost_key = nullptr;
  bool leaf_kept = !leaf->empty() || leaf == root_.get();
  while (n != root_.get() && n->empty()) {
    Branch* b = n->parent;
    Node* parent = b->parent;
    b->children.erase(n->key);  // frees n
    if (!b->children.empty()) {
      lost_key = b;
      break;
    }
    auto& bs = parent->branches;
    bs.erase(std::find_if(bs.begin(), bs.end(), [&](auto& p) { return p.get() == b; }));
    n = parent;
  }
  // Branches pruned below a key that went are part of that key's subtree: only the key counts.
  change.only_accept = leaf_kept;
  change.branch = lost_key;
  if (!change.only_accept) change.leaf = nullptr;  // it may have been pruned
  return change;
}

uint64_t Trie::walk(const uint8_t* pkt, size_t len) const {
  uint64_t best = kNoFilter;
  auto sink = [&](uint64_t k) { best = std::min(best, k); };
  walk_node(*this, *root_, pkt, len, sink);
  return best;
}

void Trie::walk_all(const uint8_t* pkt, size_t len, std::vector<uint64_t>* keys) const {
  auto sink = [&](uint64_t k) { keys->push_back(k); };
  walk_node(*this, *root_, pkt, len, sink);
}

std::string Trie::dump() const {
  std::string out;
  dump_node(*root_, 0, out);
  return out;
}

const Node* follow_chain(const Node* n, bool through_shifts, std::vector<Step>* steps) {
  while (n->accepts.empty() && n->branches.size() == 1) {
    const Branch& b = *n->branches.front();
    if (b.children.size() != 1) break;
    if (b.kind == Atom::Kind::Shift && !through_shifts) break;
    if (b.kind != Atom::Kind::Shift && b.kind != Atom::Kind::Compare) break;
    auto& [k, child] = *b.children.begin();
    steps->push_back(Step{b.kind, b.cmp, b.expr, k});
    n = child.get();
  }
  return n;
}

}  // namespace exojit::dpf::detail
