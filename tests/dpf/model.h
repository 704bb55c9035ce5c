// SPDX-License-Identifier: MIT
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
//
// An opaque filter (a classic-BPF program the engine runs as it is, Engine::insert_bpf) means
// what libpcap's bpf_filter says of the packet (its wire and captured lengths both the packet's
// length); its specificity is the fewest conditional jumps (jt != jf) on a path from the entry
// to a `ret` that may accept (`ret a`, or a non-zero constant), at most 256; 0 if there is no
// such `ret`.
#pragma once

#include <pcap/pcap.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <map>
#include <vector>

#include "exojit/dpf/bpf.h"
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

  static bool accepts(const std::vector<BpfInsn>& program, const uint8_t* pkt, size_t len) {
    return bpf_filter(reinterpret_cast<const bpf_insn*>(program.data()), pkt, u_int(len),
                      u_int(len)) != 0;
  }

  // Relaxed to a fixed point (Bellman-Ford: loops included), one pass per instruction at most.
  static unsigned specificity(const std::vector<BpfInsn>& p) {
    std::vector<unsigned> dist(p.size(), UINT_MAX);
    dist[0] = 0;
    for (bool changed = true; changed;) {
      changed = false;
      auto relax = [&](size_t to, unsigned d) {
        if (to < p.size() && d < dist[to]) dist[to] = d, changed = true;
      };
      for (size_t pc = 0; pc < p.size(); ++pc) {
        if (dist[pc] == UINT_MAX) continue;
        uint16_t cls = p[pc].code & 7, op = p[pc].code & 0xf0;
        if (cls == 6) continue;  // ret
        if (cls == 5 && op == 0)
          relax(size_t(int64_t(pc) + 1 + int32_t(p[pc].k)), dist[pc]);  // ja
        else if (cls == 5)
          for (uint8_t off : {p[pc].jt, p[pc].jf})
            relax(pc + 1 + off, dist[pc] + (p[pc].jt != p[pc].jf));
        else
          relax(pc + 1, dist[pc]);
      }
    }
    unsigned best = UINT_MAX;
    for (size_t pc = 0; pc < p.size(); ++pc)
      if ((p[pc].code & 7) == 6 && ((p[pc].code & 0x10) || p[pc].k != 0))
        best = std::min(best, dist[pc]);
    return best == UINT_MAX ? 0 : std::min(best, 256u);
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
