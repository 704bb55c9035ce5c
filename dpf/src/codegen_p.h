// SPDX-License-Identifier: MIT
// Code generation: the trie becomes one vcode function, `u64 dpf_demux(p pkt, u64 len)`, that
// returns the best accepting filter's priority key (trie.h), kNoFilter if none. (A table hit may
// return the filter id alone, high half 0: the caller that compares results of several functions
// recovers the priority from the id.)
//
// Generation succeeds for every trie of canonical filters: registers are budgeted so that no
// construct can run out of them (segments beyond the first SHIFT live in stack slots, hash nodes
// are used only where their registers are free, expressions are bounded by canonical.h).
#pragma once

#include <exojit/vcode/ir.h>

#include <memory>
#include <unordered_set>
#include <utility>
#include <vector>

#include "hash_node_p.h"
#include "trie_p.h"

namespace exojit::dpf::detail {

// What the code returns instead of an answer when the answer needs the engine's fragment state
// and the caller does not hold the engine's mutex (never a priority key: their high half is at
// most kMaxAtoms + 1, or kNoFilter's).
inline constexpr uint64_t kNeedsMutex = ~uint64_t(0);

struct CodegenOptions {
  // Targets that trap on unaligned loads: no coalescing into loads the alignment estimate cannot
  // prove aligned. x86-64 loads at any alignment.
  bool strict_alignment = false;
  unsigned packet_alignment = 1;  // what the caller guarantees for `pkt`
  // RECORDED atoms call this C function (through vcode's ccall) with `recorded_state`; it
  // answers 0 (not remembered), 1 (remembered) or 2: the caller does not hold the engine's
  // mutex, the code returns kNeedsMutex. Called with id 0 it only answers 1 or 2.
  RecordedFn recorded = nullptr;
  const void* recorded_state = nullptr;
  // The ids whose win records a value (RECORD), or null: their accepts call `recorded` with id 0
  // first (kNeedsMutex without the mutex), and no hash table holds them (a table hit returns an
  // id the code cannot tell apart).
  const std::unordered_set<uint32_t>* recording = nullptr;
  // Untrusted owners' filters in the code (README "Threat model"): every bounds check masks the
  // pointer it guards (bound_mask: 0 when the check fails, so a mispredicted check loads from
  // the never-mapped first 64 KiB, not past the packet), and compile() blinds the constants.
  // The engine's own constants (table addresses, hash multipliers and masks, offsets in a table
  // entry, kNoFilter, the RECORDED state) are marked owned (vcode kOwnedImm) and stay plain:
  // no owner chooses them. Everything derived from a filter (keys, offsets, comparison values,
  // ids, priorities, bounds) is blinded.
  bool harden = false;
};

struct Generated {
  vcode::Module module;
  // Hash tables the code reads (their addresses are immediates in it) and their branches.
  std::vector<std::unique_ptr<HashNode>> tables;
  std::vector<std::pair<Branch*, HashNode*>> hashed;
  size_t instructions = 0;  // vcode instructions: what generating it again costs
};

// Computes every node's and branch's `must` (bytes needed below it) and generates the function.
// Each branch's `hash` is left as it was (the caller installs `hashed` once the code compiled).
Generated generate(Trie& trie, const CodegenOptions& options);

}  // namespace exojit::dpf::detail
