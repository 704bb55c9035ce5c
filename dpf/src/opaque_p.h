// SPDX-License-Identifier: MIT
// Opaque filters: classic-BPF programs the lift cannot express as DPF filters (lift.h: loops,
// divisions by non-powers of two, ...), each compiled on its own by the classic-BPF JIT
// (compile_bpf) and run beside the trie's code with the same winner rule (priority keys,
// trie.h). The engine keeps them here, apart from the layers, so that an engine without opaque
// filters runs exactly the code it ran before (demux's fast path does not look here).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "exojit/dpf/bpf.h"

namespace exojit::dpf::detail {

// How specific an opaque program is, for the winner rule: the fewest conditional jumps on any
// path from the entry to a `ret` that may accept (a non-zero constant, or A), capped at
// kMaxAtoms. Every packet the program accepts has passed at least that many tests, so an opaque
// filter never claims more than any packet it accepts has shown (dpf/README.md, "Opaque
// filters"). A program with no such `ret` accepts nothing: 0. Loops (protochain's backward
// `ja`) are walked as a graph: a shortest path, each instruction once.
unsigned bpf_specificity(std::span<const BpfInsn> program);

class OpaqueSet {
 public:
  // Adds a compiled program under priority key `key` (priority_key(specificity, id)).
  void add(uint64_t key, BpfFilter filter);
  // Removes the program with priority key `key` (which must be there) and returns it: readers
  // of a published view may still run it until a grace period has passed.
  BpfFilter remove(uint64_t key);
  bool empty() const { return entries_.empty(); }
  size_t size() const { return entries_.size(); }

  // The best priority key among the programs that accept the packet, if better than `bound`;
  // else `bound`. Programs run best first, and only those that could beat `bound`.
  uint64_t best_key(const uint8_t* pkt, size_t len, uint64_t bound) const;
  // Appends the priority key of every program that accepts the packet.
  void accepting(const uint8_t* pkt, size_t len, std::vector<uint64_t>* keys) const;
  // One line per program: its priority and its instructions (bpf_image), for dump_trie.
  std::string dump() const;

  struct Entry {
    uint64_t key;
    BpfFilter filter;
  };
  const std::vector<Entry>& entries() const { return entries_; }  // best first

 private:
  std::vector<Entry> entries_;  // sorted by key: best first
};

}  // namespace exojit::dpf::detail
