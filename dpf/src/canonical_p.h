// SPDX-License-Identifier: MIT
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
// Registers one expression may need at once, evaluated in Sethi-Ullman order (the operand that
// needs more first). 16 loads in a balanced tree need 5; the code generator counts on the bound.
inline constexpr unsigned kMaxExprRegs = 5;

// A canonical filter: constant SHIFTs folded into the offsets of the atoms after them, so the
// Shift atoms left move the base by a packet-dependent amount (their expression includes the
// constant folded before them; a constant SHIFT stays only where folding it could wrap the
// amount); atoms simplified; always-true atoms and repeats dropped, but not what they read: a
// segment whose dropped atoms (or RECORD, or constant SHIFTs) need more bytes than its other
// atoms load ends with a length atom (see is_length_atom).
struct Canonical {
  std::vector<Atom> atoms;
  unsigned specificity = 0;  // Compare and Recorded atoms: the "most specific" rule's measure
  bool records = false;      // has a Record atom
  bool recorded = false;     // has a Recorded atom
};

// Throws exojit::Error naming the atom (1-based index and text) when the filter is malformed or
// an atom can never be true. Checks the structure first (null operands, out-of-range enums, the
// size of each expression, counted without ever walking more than the bound), so a hostile tree
// costs no more than a bounded one.
Canonical canonicalize(const Filter& f);

// "The packet holds `bytes` bytes from the base": `(bytes - 1):8 <= 0xff`, true exactly when
// that byte exists. Not counted by the most-specific rule; compiled as a bounds check alone.
Atom make_length_atom(uint32_t bytes);
bool is_length_atom(const Atom& a);
bool is_length_test(Atom::Kind kind, Cmp cmp, const ExprPtr& e, uint64_t value);

// Simplified expression: constants folded, constant operands on the right, commutative operands
// in a fixed order, redundant masks and identities removed.
ExprPtr simplify(const ExprPtr& e);

// The largest value `e` can take (saturating: a sound bound whatever the arithmetic wraps to).
uint64_t upper_bound(const ExprPtr& e);

// The end (offset + size) of the furthest load in `e`, 0 if it loads nothing.
uint32_t load_end(const ExprPtr& e);

// `a op b` for a binary operator, as the generated code computes it (shifts of 64 or more: 0).
uint64_t apply(ExprOp op, uint64_t a, uint64_t b);

// Registers `e` needs when evaluated operand-that-needs-more first (constants on the right are
// immediates). A load or a constant alone needs 1.
unsigned register_need(const ExprPtr& e);

// Does `e` read LEN (the bytes from the base to the packet's end)?
bool reads_length(const ExprPtr& e);

// The largest power of two (up to 8) that always divides the value of `e` (for SHIFT alignment).
unsigned known_alignment(const ExprPtr& e);

// Evaluates `e` on the `avail` bytes at `base`; false if a load falls outside them.
bool evaluate(const ExprPtr& e, const uint8_t* base, size_t avail, uint64_t* out);
bool compare_holds(Cmp c, uint64_t v, uint64_t k);

// Does the conjunction `atoms` accept the packet, as the language defines it (a field past the
// end makes its atom false, a SHIFT past the end the conjunction)? RECORD's value goes to
// *record (if given); a RECORDED atom holds when `recorded(atom, value)` says so.
template <typename Recorded>
bool accepts(const std::vector<Atom>& atoms, const uint8_t* pkt, size_t len, uint64_t* record,
             Recorded&& recorded) {
  const uint8_t* base = pkt;
  size_t avail = len;
  for (const Atom& a : atoms) {
    uint64_t v;
    if (!a.expr || !evaluate(a.expr, base, avail, &v)) return false;
    switch (a.kind) {
      case Atom::Kind::Shift:
        if (v > avail) return false;
        base += v, avail -= size_t(v);
        break;
      case Atom::Kind::Compare:
        if (!compare_holds(a.cmp, v, a.value)) return false;
        break;
      case Atom::Kind::Record:
        if (record) *record = v;
        break;
      case Atom::Kind::Recorded:
        if (!recorded(a, v)) return false;
        break;
      default:
        return false;
    }
  }
  return true;
}

// The mask of the low `bits` bits (all ones from 64 on).
inline uint64_t ones(unsigned bits) {
  return bits >= 64 ? ~uint64_t(0) : (uint64_t(1) << bits) - 1;
}

// A load of `bytes` bytes (1, 2, 4 or 8) at `offset`, big-endian.
ExprPtr make_load(uint32_t offset, unsigned bits);
ExprPtr make_const(uint64_t v);
ExprPtr make_binary(ExprOp op, ExprPtr a, ExprPtr b);

// `offset:bits` or `offset:bits & mask` (mask = all ones for a bare load): what coalescing and
// the byte-level overlap test understand.
bool plain_field(const ExprPtr& e, uint32_t* offset, unsigned* bytes, uint64_t* mask);

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
