// What a filter means, written from dpf/README.md alone (not from the engine's code), for the
// adversarial tests and the fuzzer: the reference the generated code and the trie walk must
// agree with.
//
// Atoms are evaluated in order from base = the packet's start. A field `offset:bits` is the
// big-endian value of bits/8 bytes at base + offset, and a field that does not lie wholly inside
// the packet makes its atom false. Expressions are unsigned 64-bit arithmetic, wrapping; shift
// counts are constants below 64. SHIFT(e) is false when e exceeds the bytes left from the base,
// else moves the base by e. RECORD(e) is true when its fields lie inside. RECORDED(e) depends on
// the engine's state: the model does not decide it (see decides()).
//
// The winner among accepting filters: the most specific (the engine's measure, specificity()),
// then the lowest id.
#pragma once

#include <cstdint>
#include <map>
#include <vector>

#include "exojit/dpf/engine.h"
#include "exojit/dpf/filter.h"

namespace exojit::dpf::testing {

class Model {
 public:
  // False when a field falls outside [0, avail) from base.
  static bool value(const ExprNode& e, const uint8_t* base, size_t avail, uint64_t* out) {
    switch (e.op) {
      case ExprOp::Const:
        *out = e.value;
        return true;
      case ExprOp::Load: {
        uint64_t end = uint64_t(e.offset) + e.bits / 8;
        if (end > avail) return false;
        uint64_t v = 0;
        for (unsigned i = 0; i < e.bits / 8u; ++i) v = v << 8 | base[e.offset + i];
        *out = v;
        return true;
      }
      case ExprOp::Len:  // the bytes from the base to the end of the packet
        *out = avail;
        return true;
      default:
        break;
    }
    uint64_t a, b;
    if (!value(*e.a, base, avail, &a) || !value(*e.b, base, avail, &b)) return false;
    switch (e.op) {
      case ExprOp::And:
        *out = a & b;
        break;
      case ExprOp::Or:
        *out = a | b;
        break;
      case ExprOp::Xor:
        *out = a ^ b;
        break;
      case ExprOp::Add:
        *out = a + b;
        break;
      case ExprOp::Sub:
        *out = a - b;
        break;
      case ExprOp::Mul:
        *out = a * b;
        break;
      case ExprOp::Lsh:
        *out = a << b;  // b < 64: the engine refuses other shift counts
        break;
      case ExprOp::Rsh:
        *out = a >> b;
        break;
      default:
        return false;
    }
    return true;
  }

  static bool decides(const Filter& f) {
    for (const Atom& a : f.atoms())
      if (a.kind == Atom::Kind::Recorded) return false;
    return true;
  }

  static bool accepts(const Filter& f, const uint8_t* pkt, size_t len) {
    const uint8_t* base = pkt;
    size_t avail = len;
    for (const Atom& a : f.atoms()) {
      uint64_t v;
      if (!value(*a.expr, base, avail, &v)) return false;
      switch (a.kind) {
        case Atom::Kind::Shift:
          if (v > avail) return false;
          base += v, avail -= size_t(v);
          break;
        case Atom::Kind::Record:
          break;
        case Atom::Kind::Recorded:
          return false;
        case Atom::Kind::Compare: {
          bool ok = false;
          switch (a.cmp) {
            case Cmp::Eq:
              ok = v == a.value;
              break;
            case Cmp::Ne:
              ok = v != a.value;
              break;
            case Cmp::Lt:
              ok = v < a.value;
              break;
            case Cmp::Le:
              ok = v <= a.value;
              break;
            case Cmp::Gt:
              ok = v > a.value;
              break;
            case Cmp::Ge:
              ok = v >= a.value;
              break;
          }
          if (!ok) return false;
          break;
        }
      }
    }
    return true;
  }

  // The winner among `filters` (id -> disjuncts) by the engine's rule; 0 if none accepts.
  static FilterId winner(const Engine& e, const std::map<FilterId, std::vector<Filter>>& filters,
                         const uint8_t* pkt, size_t len) {
    FilterId best = 0;
    unsigned best_spec = 0;
    for (auto& [id, disjuncts] : filters) {
      std::vector<unsigned> spec = e.specificity(id);
      for (size_t i = 0; i < disjuncts.size(); ++i)
        if (accepts(disjuncts[i], pkt, len) && (best == 0 || spec[i] > best_spec))
          best = id, best_spec = spec[i];
    }
    return best;
  }
};

}  // namespace exojit::dpf::testing
