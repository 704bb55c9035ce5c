// SPDX-License-Identifier: MIT
// Overlap of two conjunctions. Atoms are compared only where both filters address the same
// bytes: in the segments before their SHIFT sequences diverge. Two kinds of evidence of
// disjointness: == on plain (masked) fields, compared bit by bit per byte (so 12:16 and 12:8
// meet), and ranges on the same expression whose intersection is empty.
//
// The candidates for an overlap come from the trie (filters merge along their shared keys), so
// checking a new connection filter next to 20,000 others looks at its own path, not at them all.
#include <algorithm>
#include <bit>
#include <climits>
#include <map>

#include "ownership_p.h"

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
    if (a.kind != Atom::Kind::Compare || is_length_atom(a)) continue;
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
      Facts::Range& r = range_of(f, seg, e);  // also meets ranges on the same masked field
      r.lo = std::max(r.lo, a.value), r.hi = std::min(r.hi, a.value);
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

namespace {

// The walk of overlap_candidates.
class CandidateWalk {
 public:
  CandidateWalk(const Canonical& f, const OverlapVisit& visit)
      : facts_(facts(f, UINT_MAX)), visit_(visit) {
    unsigned seg = 0;
    for (const Atom& a : f.atoms) {
      if (a.kind == Atom::Kind::Shift) {
        shifts_.push_back(&a);
        ++seg;
      } else if (a.kind == Atom::Kind::Compare && a.cmp == Cmp::Eq) {
        eq_.emplace_back(seg, &a);
      }
    }
  }

  bool node(const Node& n, unsigned seg, bool aligned) {
    if (!n.accepts.empty()) {
      Canonical p;
      p.atoms = path_;
      if (!visit_(n, p)) return false;
    }
    for (const auto& b : n.branches) {
      switch (b->kind) {
        case Atom::Kind::Shift: {
          bool same = aligned && seg < shifts_.size() && same_expr(shifts_[seg]->expr, b->expr);
          if (!step(*b, b->children.begin()->first, seg + 1, same)) return false;
          break;
        }
        case Atom::Kind::Compare: {
          uint64_t v;
          if (b->cmp == Cmp::Eq && aligned && pinned(seg, b->expr, &v)) {
            if (b->children.count(v) && !step(*b, v, seg, aligned)) return false;
            break;
          }
          if (b->summary && aligned && disjoint_below(*b->summary, seg)) break;
          for (const auto& [k, child] : b->children)
            if (!step(*b, k, seg, aligned)) return false;
          break;
        }
        default:  // Recorded: one child per filter id
          for (const auto& [k, child] : b->children)
            if (!step(*b, k, seg, aligned)) return false;
          break;
      }
    }
    return true;
  }

 private:
  bool step(const Branch& b, uint64_t key, unsigned seg, bool aligned) {
    path_.push_back(Atom{b.kind, b.expr, b.cmp, key});
    bool go_on = node(*b.children.at(key), seg, aligned);
    path_.pop_back();
    return go_on;
  }

  // The value f's == atoms force on `e` in segment `seg`: the same expression compared with ==,
  // or a (masked) field whose every masked bit f's byte facts fix.
  bool pinned(unsigned seg, const ExprPtr& e, uint64_t* v) const {
    for (auto& [s, a] : eq_)
      if (s == seg && same_expr(a->expr, e)) {
        *v = a->value;
        return true;
      }
    uint32_t offset;
    unsigned bytes;
    uint64_t mask;
    if (!plain_field(e, &offset, &bytes, &mask)) return false;
    uint64_t value = 0;
    for (unsigned i = 0; i < bytes; ++i) {
      unsigned shift = (bytes - 1 - i) * 8;
      uint8_t m = uint8_t(mask >> shift);
      if (!m) continue;
      auto it = facts_.bytes.find({seg, offset + i});
      if (it == facts_.bytes.end() || (it->second.first & m) != m) return false;
      value |= uint64_t(it->second.second & m) << shift;
    }
    *v = value;
    return true;
  }

  // Is every accept below a disjunction in segment `seg` pinned, on some dimension f pins too,
  // to another value than f's? (Then may_overlap finds them all disjoint: the same expression
  // in the same segment, == to different constants.)
  bool disjoint_below(const KeySummary& s, unsigned seg) {
    for (const auto& [name, value] : dims_from(seg)) {
      auto it = s.dims.find(name);
      if (it != s.dims.end() && it->second.accepts == s.accepts && !it->second.values.count(value))
        return true;
    }
    return false;
  }

  // f's == atoms as dimensions seen from segment `seg` (computed once per segment).
  const std::vector<std::pair<std::string, uint64_t>>& dims_from(unsigned seg) {
    auto [it, fresh] = dims_.try_emplace(seg);
    if (!fresh) return it->second;
    for (auto& [s, a] : eq_) {
      if (s < seg) continue;
      std::vector<const ExprPtr*> shifts;
      for (unsigned k = seg; k < s; ++k) shifts.push_back(&shifts_[k]->expr);
      it->second.emplace_back(dimension_name(shifts, a->expr), a->value);
    }
    return it->second;
  }

  Facts facts_;
  const OverlapVisit& visit_;
  std::map<unsigned, std::vector<std::pair<std::string, uint64_t>>> dims_;
  std::vector<const Atom*> shifts_;
  std::vector<std::pair<unsigned, const Atom*>> eq_;
  std::vector<Atom> path_;
};

}  // namespace

void overlap_candidates(const Trie& trie, const Canonical& f, const OverlapVisit& visit) {
  CandidateWalk(f, visit).node(trie.root(), 0, true);
}

unsigned key_bits(const Canonical& c) {
  Facts f = facts(c, UINT_MAX);
  unsigned bits = 0;
  for (auto& [where, mv] : f.bytes) bits += unsigned(std::popcount(mv.first));
  for (const Atom& a : c.atoms)
    if (a.kind == Atom::Kind::Recorded) bits += 32;
  return std::min(bits, 255u);
}

}  // namespace exojit::dpf::detail
