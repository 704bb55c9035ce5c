// SPDX-License-Identifier: MIT
// Ownership: could two canonical filters accept the same packet (a safe approximation), which
// filters of a trie could overlap a new one (found along its demultiplexing keys, not by trying
// every filter), and how many packet bits a filter pins (the policy against catch-all filters).
#pragma once

#include <functional>
#include <vector>

#include "canonical_p.h"
#include "trie_p.h"

namespace exojit::dpf::detail {

// False only when some packet bytes must hold values in one filter that the other excludes.
bool may_overlap(const Canonical& a, const Canonical& b);

// Walks `trie` along `f`: a branch on an expression whose value `f` pins (the same expression
// with ==, or a field whose bytes f's == atoms fix) leads only to that value's child; other
// branches lead to all their children. At each node with accepts, `visit(node, path)` gets the
// accepts and the node's path (its canonical atoms, Record atoms aside) for may_overlap; it
// returns false to stop the walk. Subtrees left out are exactly those may_overlap would find
// disjoint from `f` on a pinned value, so nothing that overlaps is missed. Cost: f's path, plus
// the subtrees below branches f leaves open.
using OverlapVisit = std::function<bool(const Node& node, const Canonical& path)>;
void overlap_candidates(const Trie& trie, const Canonical& f, const OverlapVisit& visit);

// The packet bits `c`'s == atoms on (masked) fields fix, all segments together; a RECORDED
// atom counts as 32 (it pins a value its chain's first packet chose). Saturates at 255.
unsigned key_bits(const Canonical& c);

}  // namespace exojit::dpf::detail
