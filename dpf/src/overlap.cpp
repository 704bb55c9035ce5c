// Overlap of two conjunctions. Atoms are compared only where both filters address the same
// bytes: in the segments before their SHIFT sequences diverge. Two kinds of evidence of
// disjointness: == on plain (masked) fields, compared bit by bit per byte (so 12:16 and 12:8
// meet), and ranges on the same expression whose intersection is empty.
#include "overlap.h"

#include <algorithm>
#include <map>

namespace exojit::dpf::detail {

namespace {

struct Facts {
  // (segment, byte) -> required bits: mask and value.
  std::map<std::pair<unsigned, uint32_t>, std::pair<uint8_t, uint8_t>> bytes;
  // Ranges per (segment, expression): [lo, hi] and excluded values.
  struct Range {
    ExprPtr expr;
    unsigned segment;
    uint64_t lo = 0, hi = ~uint64_t(0);
    std::vector<uint64_t> excluded;
  };
  std::vector<Range> ranges;
  bool contradictory = false;
};

Facts::Range& range_of(Facts& f, unsigned seg, const ExprPtr& e) {
  for (auto& r : f.ranges)
    if (r.segment == seg && same_expr(r.expr, e)) return r;
  f.ranges.push_back(Facts::Range{e, seg});
  return f.ranges.back();
}

void add_bytes(Facts& f, unsigned seg, uint32_t offset, unsigned bytes, uint64_t mask,
               uint64_t value) {
  for (unsigned i = 0; i < bytes; ++i) {
    unsigned shift = (bytes - 1 - i) * 8;
    uint8_t m = uint8_t(mask >> shift), v = uint8_t(value >> shift);
    auto& [have_m, have_v] = f.bytes[{seg, offset + i}];
    if ((have_v ^ v) & have_m & m) f.contradictory = true;
    have_v = uint8_t((have_v & have_m) | (v & m));
    have_m |= m;
  }
}

// Facts of `c` in its first `segments` segments.
Facts facts(const Canonical& c, unsigned segments) {
  Facts f;
  unsigned seg = 0;
  for (const Atom& a : c.atoms) {
    if (a.kind == Atom::Kind::Shift) {
      if (++seg >= segments) break;
      continue;
    }
    if (a.kind != Atom::Kind::Compare) continue;
    const ExprPtr& e = a.expr;
    if (a.cmp == Cmp::Eq && e->op == ExprOp::Load) {
      add_bytes(f, seg, e->offset, e->bits / 8u, ~uint64_t(0), a.value);
      Facts::Range& r = range_of(f, seg, e);  // also meets ranges on the same field
      r.lo = std::max(r.lo, a.value), r.hi = std::min(r.hi, a.value);
      continue;
    }
    if (a.cmp == Cmp::Eq && e->op == ExprOp::And && e->a->op == ExprOp::Load &&
        e->b->op == ExprOp::Const) {
      add_bytes(f, seg, e->a->offset, e->a->bits / 8u, e->b->value, a.value);
      continue;
    }
    Facts::Range& r = range_of(f, seg, e);
    switch (a.cmp) {
      case Cmp::Eq:
        r.lo = std::max(r.lo, a.value), r.hi = std::min(r.hi, a.value);
        break;
      case Cmp::Ne:
        r.excluded.push_back(a.value);
        break;
      case Cmp::Lt:
        r.hi = std::min(r.hi, a.value - 1);  // a.value > 0 (canonical: else never true)
        break;
      case Cmp::Le:
        r.hi = std::min(r.hi, a.value);
        break;
      case Cmp::Gt:
        r.lo = std::max(r.lo, a.value + 1);
        break;
      case Cmp::Ge:
        r.lo = std::max(r.lo, a.value);
        break;
    }
  }
  return f;
}

// The number of leading segments in which both filters address the same bytes.
unsigned common_segments(const Canonical& a, const Canonical& b) {
  std::vector<const Atom*> sa, sb;
  for (const Atom& x : a.atoms)
    if (x.kind == Atom::Kind::Shift) sa.push_back(&x);
  for (const Atom& x : b.atoms)
    if (x.kind == Atom::Kind::Shift) sb.push_back(&x);
  unsigned n = 1;
  for (size_t i = 0; i < std::min(sa.size(), sb.size()); ++i, ++n)
    if (!same_expr(sa[i]->expr, sb[i]->expr)) break;
  return n;
}

}  // namespace

bool may_overlap(const Canonical& a, const Canonical& b) {
  unsigned segments = common_segments(a, b);
  Facts fa = facts(a, segments), fb = facts(b, segments);
  if (fa.contradictory || fb.contradictory) return false;
  for (auto& [where, mv] : fa.bytes) {
    auto it = fb.bytes.find(where);
    if (it != fb.bytes.end() && ((mv.second ^ it->second.second) & mv.first & it->second.first))
      return false;
  }
  for (auto& ra : fa.ranges) {
    Facts::Range* rb = nullptr;
    for (auto& r : fb.ranges)
      if (r.segment == ra.segment && same_expr(r.expr, ra.expr)) rb = &r;
    uint64_t lo = ra.lo, hi = ra.hi;
    std::vector<uint64_t> excluded = ra.excluded;
    if (rb) {
      lo = std::max(lo, rb->lo), hi = std::min(hi, rb->hi);
      excluded.insert(excluded.end(), rb->excluded.begin(), rb->excluded.end());
    }
    if (lo > hi) return false;
    if (lo == hi && std::find(excluded.begin(), excluded.end(), lo) != excluded.end()) return false;
  }
  return true;
}

}  // namespace exojit::dpf::detail
