// Code generation: the trie becomes one vcode function, `u64 dpf_demux(p pkt, u64 len)`, that
// returns the best accepting filter's priority key (trie.h), kNoFilter if none.
#pragma once

#include <exojit/vcode/ir.h>

#include <memory>
#include <utility>
#include <vector>

#include "hash_node.h"
#include "trie.h"

namespace exojit::dpf::detail {

struct CodegenOptions {
  // Targets that trap on unaligned loads: no coalescing into loads the alignment estimate cannot
  // prove aligned. x86-64 loads at any alignment.
  bool strict_alignment = false;
  unsigned packet_alignment = 1;  // what the caller guarantees for `pkt`
  // RECORDED atoms call this C function (through vcode's ccall); long-lived values then live
  // in registers that survive calls.
  RecordedFn recorded = nullptr;
  const void* recorded_state = nullptr;
};

struct Generated {
  vcode::Module module;
  // Hash tables the code reads (their addresses are immediates in it) and their branches.
  std::vector<std::unique_ptr<HashNode>> tables;
  std::vector<std::pair<Branch*, HashNode*>> hashed;
};

// Computes every node's and branch's `must` (bytes needed below it) and generates the function.
Generated generate(Trie& trie, const CodegenOptions& options);

}  // namespace exojit::dpf::detail
