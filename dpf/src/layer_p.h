// SPDX-License-Identifier: MIT
// A layer: a trie, the function generated from it and the hash tables that function reads.
// The engine keeps one (the whole demultiplexer) or two (the whole and a small layer of recent
// changes, engine.cpp); everything demux reads of a layer -- `fn`, its tables, the trie for the
// walk -- hangs off it, apart from the engine's bookkeeping (owners, ids, counters).
//
// Changes to a layer are served three ways, cheapest first:
// - patched: the running code already covers them (a key written into or taken out of a hash
//   table, an accept added or removed where the code's immediate stays);
// - killed: a removed filter's accepts leave the walk but the code still returns its id until
//   the layer is regenerated (the engine masks such ids, walking the trie for those packets);
// - regenerated: new code for the layer's trie.
// Each either completes or leaves the layer exactly as it was (tables through a TableLog).
#pragma once

#include <exojit/vcode/code.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "codegen_p.h"
#include "hash_node_p.h"
#include "reader_view_p.h"
#include "trie_p.h"

namespace exojit::dpf::detail {

struct Layer {
  Trie trie;
  Generated gen;
  vcode::Code code;
  LayerFn* fn = nullptr;  // nullptr until generated
  // The code was generated hardened (CodegenOptions::harden): only such code may take an
  // untrusted owner's filter by a table write (insert_patched).
  bool hardened = false;
  size_t weight = 0;  // canonical atoms of the filters in it (what regenerating costs)
  // Accepts of removed filters whose ids the code may still return (see Trie::kill).
  std::vector<std::pair<Node*, uint64_t>> killed;
  std::unordered_set<uint32_t> dead;  // their ids
  size_t dead_weight = 0;

  bool empty() const { return trie.root().empty(); }
};

// Merges `c` under priority `key` into the layer's trie (*leaf: where it ends) and, when the
// running code can cover it, writes the tables it needs (logged): Done. Otherwise the code must
// change (the trie keeps the accept either way; Trie::erase takes it back): TableFull when only
// a table is in the way and new code for it is amortized (it is full and doubles, or its key's
// probe run is too long and it has grown by an eighth since it was built), NewCode otherwise.
// An `untrusted` owner's filter is never served by code generated unhardened (its packets would
// run through unmasked loads): NewCode, which is generated hardened.
enum class Patch : uint8_t { Done, TableFull, NewCode };
Patch insert_patched(Layer& l, const Canonical& c, uint64_t key, bool untrusted, Node** leaf,
                     TableLog* log);

// Takes the accept `key` at `leaf` out when the running code can do without it (writing the
// tables, logged). False: nothing changed, the code must change.
bool remove_patched(Layer& l, Node* leaf, uint64_t key, TableLog* log);

// Takes the accept out of the walk, the code unchanged (the id joins `dead`).
void kill(Layer& l, Node* leaf, uint64_t key, size_t weight);

// Code, tables and views that readers may still be running: freed after a grace period
// (engine_demux.cpp).
struct Retired {
  std::vector<vcode::Code> code;
  std::vector<Generated> gen;
  std::vector<std::unique_ptr<ReaderView>> views;
  std::vector<BpfFilter> programs;                             // removed opaque filters
  std::vector<std::unique_ptr<PriorityIndex::Table>> indexes;  // rebuilt priority tables
  bool empty() const {
    return code.empty() && gen.empty() && views.empty() && programs.empty() && indexes.empty();
  }
  void clear() { code.clear(), gen.clear(), views.clear(), programs.clear(), indexes.clear(); }
  void take(Layer& l) {  // l's code and tables (l keeps its trie)
    if (!l.code.empty()) code.push_back(std::move(l.code));
    gen.push_back(std::move(l.gen));
    l.code = vcode::Code();
    l.gen = Generated();
    l.fn = nullptr;
  }
};

// New code for the layer's trie (killed accepts left out, then pruned); the code and tables it
// replaces go to `retired`, the new tables are written live from now on (HashNode::set_live).
// On an exception (out of memory, or an internal error) the layer is unchanged.
void regenerate(Layer& l, const CodegenOptions& options, Retired* retired, LiveTables* live);

// The hash node whose table holds the subtree of `n` (n's nearest hashed ancestor), if any.
HashNode* hashed_ancestor(Node* n);

}  // namespace exojit::dpf::detail
