// Canonical form of filters (inside the engine): what the trie merges and the code generator
// compiles. Equivalent atoms written differently become identical, so that they merge.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "exojit/dpf/filter.h"

namespace exojit::dpf::detail {

// Packets are at most this long (IPv4 total length), so no valid load lies beyond it.
inline constexpr uint32_t kMaxOffset = 65535;
inline constexpr size_t kMaxAtoms = 256;
inline constexpr size_t kMaxExprNodes = 64;

// A canonical filter: constant SHIFTs folded into the offsets of the atoms after them, so the
// only Shift atoms left move the base by a packet-dependent amount (their expression includes
// the constant folded before them); atoms simplified; always-true atoms and repeats dropped.
struct Canonical {
  std::vector<Atom> atoms;
  unsigned specificity = 0;  // Compare and Recorded atoms: the "most specific" rule's measure
  bool records = false;      // has a Record atom
};

// Throws exojit::Error naming the atom (1-based index and text) when the filter is malformed or
// an atom can never be true.
Canonical canonicalize(const Filter& f);

// Simplified expression: constants folded, constant operands on the right, commutative operands
// in a fixed order, redundant masks and identities removed.
ExprPtr simplify(const ExprPtr& e);

// The largest value `e` can take (saturating).
uint64_t upper_bound(const ExprPtr& e);

// The end (offset + size) of the furthest load in `e`, 0 if it loads nothing.
uint32_t load_end(const ExprPtr& e);

// Does `e` read LEN (the bytes from the base to the packet's end)?
bool reads_length(const ExprPtr& e);

// The largest power of two (up to 8) that always divides the value of `e` (for SHIFT alignment).
unsigned known_alignment(const ExprPtr& e);

// Evaluates `e` on the `avail` bytes at `base`; false if a load falls outside them.
bool evaluate(const ExprPtr& e, const uint8_t* base, size_t avail, uint64_t* out);

// A load of `bytes` bytes (1, 2, 4 or 8) at `offset`, big-endian.
ExprPtr make_load(uint32_t offset, unsigned bits);
ExprPtr make_const(uint64_t v);
ExprPtr make_binary(ExprOp op, ExprPtr a, ExprPtr b);

// Atom coalescing (adjacent fields in one wider load): in `loads` sorted by offset, the run that
// starts at index `first` and goes on while the next load does not overlap and the whole run
// fits in 8 bytes. Returns the run's last index; *start, *stop get its byte range.
template <typename Load>
size_t coalesce_run(const std::vector<Load>& loads, size_t first, uint32_t* start, uint32_t* stop) {
  size_t last = first;
  *start = loads[first].offset, *stop = *start + loads[first].bytes;
  while (last + 1 < loads.size() && loads[last + 1].offset >= *stop &&
         loads[last + 1].offset + loads[last + 1].bytes - *start <= 8) {
    ++last;
    *stop = loads[last].offset + loads[last].bytes;
  }
  return last;
}

}  // namespace exojit::dpf::detail
