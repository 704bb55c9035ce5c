// SPDX-License-Identifier: MIT
// Opaque filters beside the trie (opaque.h).
#include <algorithm>
#include <climits>
#include <deque>

#include "bpf_ops_p.h"
#include "canonical_p.h"
#include "exojit/error.h"
#include "opaque_p.h"
#include "trie_p.h"

namespace exojit::dpf::detail {

unsigned bpf_specificity(std::span<const BpfInsn> program) {
  // 0-1 breadth-first search: a conditional jump costs 1 (a test passed), anything else 0.
  std::vector<unsigned> dist(program.size(), UINT_MAX);
  std::deque<size_t> work;
  auto reach = [&](size_t pc, unsigned d, bool test) {
    if (pc >= program.size() || d >= dist[pc]) return;
    dist[pc] = d;
    if (test)
      work.push_back(pc);
    else
      work.push_front(pc);
  };
  reach(0, 0, false);
  while (!work.empty()) {
    size_t pc = work.front();
    work.pop_front();
    const BpfInsn& in = program[pc];
    unsigned d = dist[pc];
    if (bpf::cls(in.code) == bpf::kRet) {
      // A constant 0 rejects; a constant k or A (libpcap's `ret a`) may accept.
      if ((in.code & bpf::kRetA) || in.k != 0) return std::min<unsigned>(d, kMaxAtoms);
      continue;
    }
    if (bpf::cls(in.code) == bpf::kJmp && bpf::op(in.code) == bpf::kJa) {
      reach(size_t(bpf::ja_target(in, pc)), d, false);
    } else if (bpf::is_cond_jump(in.code)) {
      bool test = in.jt != in.jf;  // both ways to one place test nothing
      reach(pc + 1 + in.jt, d + test, test);
      reach(pc + 1 + in.jf, d + test, test);
    } else {
      reach(pc + 1, d, false);
    }
  }
  return 0;  // no `ret` that accepts: the program accepts nothing
}

void OpaqueSet::add(uint64_t key, BpfFilter filter) {
  auto at = std::lower_bound(entries_.begin(), entries_.end(), key,
                             [](const Entry& e, uint64_t k) { return e.key < k; });
  entries_.insert(at, Entry{key, std::move(filter)});
}

BpfFilter OpaqueSet::remove(uint64_t key) {
  auto at = std::lower_bound(entries_.begin(), entries_.end(), key,
                             [](const Entry& e, uint64_t k) { return e.key < k; });
  if (at == entries_.end() || at->key != key) fail("dpf: no opaque filter of key {:#x}", key);
  BpfFilter f = std::move(at->filter);
  entries_.erase(at);
  return f;
}

uint64_t OpaqueSet::best_key(const uint8_t* pkt, size_t len, uint64_t bound) const {
  for (const Entry& e : entries_) {
    if (e.key >= bound) break;  // neither this one nor any after it can win
    if (e.filter(pkt, len) != 0) return e.key;
  }
  return bound;
}

void OpaqueSet::accepting(const uint8_t* pkt, size_t len, std::vector<uint64_t>* keys) const {
  for (const Entry& e : entries_)
    if (e.filter(pkt, len) != 0) keys->push_back(e.key);
}

std::string OpaqueSet::dump() const {
  std::string out;
  for (const Entry& e : entries_) {
    out += "opaque filter " + std::to_string(uint32_t(e.key)) + " (specificity " +
           std::to_string(kMaxAtoms + 1 - (e.key >> 32)) + "), classic BPF:\n";
    out += bpf_image(e.filter.program());
  }
  return out;
}

}  // namespace exojit::dpf::detail
