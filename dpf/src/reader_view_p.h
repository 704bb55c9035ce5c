// SPDX-License-Identifier: MIT
// The reader view: what demux reads without the engine's mutex when the published entry sends
// it out of line, and what a layered engine's entry is compiled from (layer_entry.cpp). Built by
// a writer from the layers, published with the entry, freed after a grace period.
#pragma once

#include <exojit/vcode/code.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "codegen_p.h"
#include "exojit/dpf/bpf.h"
#include "opaque_p.h"
#include "priority_index_p.h"

namespace exojit::dpf::detail {

struct Layer;  // layer_p.h
using LayerFn = uint64_t(const uint8_t* pkt, uint64_t len);

// What demux reads without the engine's mutex when the entry sends it out of line (opaque
// filters, or a layered engine whose entry could not be compiled): both layers' functions, the
// ids each masks and the opaque filters' programs; immutable once published (a change that
// alters any of them publishes a new one, and retires this one and what it points to).
struct ReaderView {
  LayerFn* base = nullptr;
  LayerFn* recent = nullptr;                     // nullptr: no layer of recent changes
  std::vector<uint32_t> base_dead, recent_dead;  // sorted
  // Tests every filter of the recent layer makes first (its trie's root chain, up to
  // kMaxGuard: a field at a fixed offset from the packet's start == a constant). A packet that
  // fails one -- or is too short for one -- is accepted by no filter of that layer, so the
  // compiled entry answers it with the base alone (a layer of recent changes is small, and its
  // filters usually share their first protocol tests: most packets are not for it).
  struct GuardAtom {
    uint32_t offset;
    uint8_t bits;  // 8, 16 or 32, network byte order
    uint32_t value;
    bool operator==(const GuardAtom&) const = default;
  };
  static constexpr size_t kMaxGuard = 4;
  std::vector<GuardAtom> recent_guard;
  // The opaque filters (opaque_p.h), best priority key first: a removed one's program is freed
  // only after a grace period (Retired::programs), so a reader of this view may still run it.
  struct Program {
    uint64_t key;
    BpfFilter::Fn* fn;
    bool operator==(const Program&) const = default;
  };
  std::vector<Program> opaque;
  // The winner, or false when only the locked demux can tell: a layer's code needs the fragment
  // state (kNeedsMutex), a masked id answered (its packets need the walk), both layers answered
  // (the winner rule needs the priorities), or an opaque filter accepts a packet whose table
  // hit's priority `priorities` does not hold (a filter whose disjuncts differ in specificity).
  bool answer(const uint8_t* pkt, size_t len, const PriorityIndex& priorities, uint32_t* id) const;
  static std::unique_ptr<ReaderView> of(const Layer& base, const Layer& recent,
                                        const OpaqueSet& opaque);
  bool operator==(const ReaderView&) const = default;
};

// (Inline: Engine's out-of-line demux is one call, then the generated code.)
[[gnu::always_inline]] inline bool ReaderView::answer(const uint8_t* pkt, size_t len,
                                                      const PriorityIndex& priorities,
                                                      uint32_t* id) const {
  auto masked = [](const std::vector<uint32_t>& dead, uint32_t k) {
    return !dead.empty() && std::binary_search(dead.begin(), dead.end(), k);
  };
  uint64_t b = base(pkt, len);
  if (b == kNeedsMutex || (uint32_t(b) != 0 && masked(base_dead, uint32_t(b)))) return false;
  uint64_t r = recent ? recent(pkt, len) : 0;
  if (r == kNeedsMutex) return false;
  if (uint32_t(r) != 0 && (uint32_t(b) != 0 || masked(recent_dead, uint32_t(r)))) return false;
  uint64_t k = uint32_t(b) != 0 ? b : uint32_t(r) != 0 ? r : kNoFilter;
  if (!opaque.empty()) {
    // The winner rule with the opaque filters, as the locked demux applies it (best_key): with
    // the answer's whole key only those that could beat it run, best first; a table hit (the id
    // alone) needs its priority only when one of them accepts the packet.
    const bool whole = k >> 32 != 0;
    for (const Program& p : opaque) {
      if (whole && p.key >= k) break;
      if (p.fn(pkt, len, len) == 0) continue;
      if (!whole) {
        uint64_t high = 0;
        if (!priorities.find(uint32_t(k), &high)) return false;
        k = std::min(k | high << 32, p.key);
      } else {
        k = p.key;
      }
      break;
    }
  }
  *id = uint32_t(k);
  return true;
}

// The view's rules compiled into one function that calls both layers' code and answers
// kNeedsMutex where answer() says false (layer_entry.cpp): a layered engine's entry, which demux
// calls inline. `harden`: the masks' ids are owners' constants (blinded).
vcode::Code compile_entry(const ReaderView& v, bool harden);

}  // namespace exojit::dpf::detail
