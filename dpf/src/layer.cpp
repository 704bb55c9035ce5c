// SPDX-License-Identifier: MIT
// Layers: patching the running code's tables, killing accepts, regenerating (layer.h).
#include <algorithm>

#include "exojit/error.h"
#include "layer_p.h"

namespace exojit::dpf::detail {

HashNode* hashed_ancestor(Node* n) {
  for (; n && n->parent; n = n->parent->parent)
    if (n->parent->hash) return n->parent->hash;
  return nullptr;
}

Patch insert_patched(Layer& l, const Canonical& c, uint64_t key, bool untrusted, Node** leaf,
                     TableLog* log) {
  uint64_t before = kNoFilter;
  Change change = l.trie.insert(c, key);
  *leaf = change.leaf;
  for (uint64_t k : change.leaf->accepts)
    if (k != key) before = std::min(before, k);
  if (!l.fn || (untrusted && !l.hardened)) return Patch::NewCode;
  if (HashNode* h = hashed_ancestor(change.leaf)) {
    // Code before the table returns early when nothing in it can beat what it found: a key
    // better than the one the code was generated with needs new code.
    if (change.leaf->best_accept() < h->assumed_best()) return Patch::NewCode;
    switch (h->insert(*change.leaf, log)) {
      case HashNode::Write::Done:
        return Patch::Done;
      case HashNode::Write::Full:
        return Patch::TableFull;
      case HashNode::Write::Crowded:
        return h->grown() ? Patch::TableFull : Patch::NewCode;
      case HashNode::Write::NoFit:
        return Patch::NewCode;
    }
  }
  // Outside hash tables: only an accept added where one was already, the code's immediate the
  // same.
  return change.only_accept && change.leaf->best_accept() == before ? Patch::Done : Patch::NewCode;
}

bool remove_patched(Layer& l, Node* leaf, uint64_t key, TableLog* log) {
  if (!l.fn) return false;
  uint64_t after = kNoFilter;
  size_t others = 0;
  for (uint64_t k : leaf->accepts)
    if (k != key) after = std::min(after, k), ++others;
  bool stays = others > 0 || !leaf->dead.empty() || !leaf->branches.empty() || !leaf->parent;
  if (HashNode* h = hashed_ancestor(leaf)) {
    std::vector<uint64_t> fields;
    if (!h->key_of_leaf(*leaf, &fields) || !h->can_forget(fields, stays)) return false;
    // The hashed branch itself must stay (the table points at it).
    if (!stays && h->branch().children.size() < 2) return false;
    l.trie.erase(leaf, key);
    return h->forget(fields, stays ? leaf : nullptr, log);
  }
  if (!stays || after != leaf->best_accept()) return false;
  l.trie.erase(leaf, key);
  return true;
}

void kill(Layer& l, Node* leaf, uint64_t key, size_t weight) {
  l.trie.kill(leaf, key);
  l.killed.emplace_back(leaf, key);
  l.dead.insert(uint32_t(key));
  l.dead_weight += weight;
}

namespace {

void clear_hash(Node& n) {
  for (auto& b : n.branches) {
    b->hash = nullptr;
    for (auto& [k, child] : b->children) clear_hash(*child);
  }
}

}  // namespace

void regenerate(Layer& l, const CodegenOptions& options, Retired* retired, LiveTables* live) {
  Generated g = generate(l.trie, options);
  vcode::CompileOptions co;
  co.blind_constants = options.harden;  // untrusted owners' constants are never code as given
  vcode::Code c = vcode::compile(g.module, co);
  auto* fn = c.as<LayerFn>("dpf_demux");
  retired->code.reserve(retired->code.size() + 1);
  retired->gen.reserve(retired->gen.size() + 1);
  // From here on nothing throws: install the code, then prune what the killed accepts kept.
  clear_hash(l.trie.root());
  for (auto& [branch, table] : g.hashed) branch->hash = table;
  for (auto& t : g.tables) t->set_live(live);
  retired->take(l);
  l.gen = std::move(g);
  l.code = std::move(c);
  l.fn = fn;
  l.hardened = options.harden;
  for (auto& [leaf, key] : l.killed) l.trie.erase_dead(leaf, key);
  l.killed.clear();
  l.dead.clear();
  l.dead_weight = 0;
}

}  // namespace exojit::dpf::detail
