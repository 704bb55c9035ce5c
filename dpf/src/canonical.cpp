// SPDX-License-Identifier: MIT
// Canonicalisation: tree rewriting to one form per meaning (the DPF paper, section 6), SHIFT
// folding (section 3.2) and the checks that refuse malformed filters.
#include <bit>

#include "canonical_p.h"
#include "exojit/error.h"

namespace exojit::dpf::detail {

namespace {

constexpr uint64_t kMax = ~uint64_t(0);

uint64_t sat_add(uint64_t a, uint64_t b) {
  return a > kMax - b ? kMax : a + b;
}
uint64_t sat_mul(uint64_t a, uint64_t b) {
  return b && a > kMax / b ? kMax : a * b;
}
uint64_t smear(uint64_t v) {
  return v ? kMax >> std::countl_zero(v) : 0;
}  // 2^k - 1 >= v

bool commutative(ExprOp op) {
  return op == ExprOp::And || op == ExprOp::Or || op == ExprOp::Xor || op == ExprOp::Add ||
         op == ExprOp::Mul;
}

// The structure of an expression as the API may hand it over: every operand present, operators
// and field sizes in range, at most kMaxExprNodes nodes (shared subtrees counted at each use).
// `budget` counts down, so a hostile tree -- a 300,000-term chain, or a DAG that doubles at every
// level -- is refused after kMaxExprNodes steps, with a recursion that deep at most.
bool well_structured(const ExprPtr& e, size_t* budget, std::string* why) {
  if (!e) {
    *why = "an operand is missing";
    return false;
  }
  if (*budget == 0) {
    *why = fmt::format("expression larger than {} nodes", kMaxExprNodes);
    return false;
  }
  --*budget;
  switch (e->op) {
    case ExprOp::Const:
    case ExprOp::Load:
    case ExprOp::Len:
      if (e->a || e->b) {
        *why = "a constant, a field or LEN with operands";
        return false;
      }
      return true;
    case ExprOp::And:
    case ExprOp::Or:
    case ExprOp::Xor:
    case ExprOp::Add:
    case ExprOp::Sub:
    case ExprOp::Mul:
    case ExprOp::Lsh:
    case ExprOp::Rsh:
      return well_structured(e->a, budget, why) && well_structured(e->b, budget, why);
  }
  *why = fmt::format("unknown operator {}", unsigned(e->op));
  return false;
}

// Checks loads and shift counts; `why` receives the reason.
bool well_formed(const ExprPtr& e, std::string* why) {
  switch (e->op) {
    case ExprOp::Const:
    case ExprOp::Len:
      return true;
    case ExprOp::Load:
      if (e->bits != 8 && e->bits != 16 && e->bits != 32) {
        *why = fmt::format("field {}:{} has {} bits (8, 16 or 32)", e->offset, e->bits, e->bits);
        return false;
      }
      if (uint64_t(e->offset) + e->bits / 8 > kMaxOffset) {
        *why = fmt::format("field {}:{} lies beyond the largest packet", e->offset, e->bits);
        return false;
      }
      return true;
    default:
      if ((e->op == ExprOp::Lsh || e->op == ExprOp::Rsh) &&
          (e->b->op != ExprOp::Const || e->b->value >= 64)) {
        *why = "shift counts must be constants below 64";
        return false;
      }
      return well_formed(e->a, why) && well_formed(e->b, why);
  }
}

ExprPtr with_offset(const ExprPtr& e, uint32_t delta) {
  if (delta == 0) return e;
  if (e->op == ExprOp::Load) return make_load(e->offset + delta, e->bits);
  // LEN after a constant SHIFT folded away: LEN before it less the shift (when the packet is
  // shorter than that, the SHIFT's own check, kept or implied, makes the filter false).
  if (e->op == ExprOp::Len) return make_binary(ExprOp::Sub, e, make_const(delta));
  if (!e->a) return e;
  return make_binary(e->op, with_offset(e->a, delta), with_offset(e->b, delta));
}

enum class Truth { Always, Never, Depends };

// Rewrites `expr cmp value` towards a bare field compare, and decides it when it can.
Truth canonical_compare(Atom& a) {
  for (;;) {
    const ExprPtr& e = a.expr;
    bool equality = a.cmp == Cmp::Eq || a.cmp == Cmp::Ne;
    if (equality && e->op == ExprOp::Xor && e->b->op == ExprOp::Const) {
      a.value ^= e->b->value;
      a.expr = e->a;
    } else if (equality && e->op == ExprOp::Add && e->b->op == ExprOp::Const) {
      a.value -= e->b->value;
      a.expr = e->a;
    } else {
      break;
    }
  }
  const ExprPtr& e = a.expr;
  uint64_t c = a.value;
  if (e->op == ExprOp::Const) {
    uint64_t v = e->value;
    bool t = a.cmp == Cmp::Eq   ? v == c
             : a.cmp == Cmp::Ne ? v != c
             : a.cmp == Cmp::Lt ? v < c
             : a.cmp == Cmp::Le ? v <= c
             : a.cmp == Cmp::Gt ? v > c
                                : v >= c;
    return t ? Truth::Always : Truth::Never;
  }
  uint64_t ub = upper_bound(e);
  // Bits the expression can never have: a masked field compared with a value outside the mask.
  uint64_t possible = e->op == ExprOp::And && e->b->op == ExprOp::Const ? e->b->value : kMax;
  switch (a.cmp) {
    case Cmp::Eq:
      return c > ub || (c & ~possible) ? Truth::Never : Truth::Depends;
    case Cmp::Ne:
      return c > ub || (c & ~possible) ? Truth::Always : Truth::Depends;
    case Cmp::Lt:
      return c == 0 ? Truth::Never : c > ub ? Truth::Always : Truth::Depends;
    case Cmp::Le:
      return c >= ub ? Truth::Always : Truth::Depends;
    case Cmp::Gt:
      return c >= ub ? Truth::Never : Truth::Depends;
    case Cmp::Ge:
      return c == 0 ? Truth::Always : c > ub ? Truth::Never : Truth::Depends;
  }
  return Truth::Depends;
}

bool same_atom(const Atom& a, const Atom& b) {
  return a.kind == b.kind && a.cmp == b.cmp && a.value == b.value && same_expr(a.expr, b.expr);
}

}  // namespace

uint64_t apply(ExprOp op, uint64_t a, uint64_t b) {
  switch (op) {
    case ExprOp::And:
      return a & b;
    case ExprOp::Or:
      return a | b;
    case ExprOp::Xor:
      return a ^ b;
    case ExprOp::Add:
      return a + b;
    case ExprOp::Sub:
      return a - b;
    case ExprOp::Mul:
      return a * b;
    case ExprOp::Lsh:
      return b < 64 ? a << b : 0;
    case ExprOp::Rsh:
      return b < 64 ? a >> b : 0;
    default:
      return 0;
  }
}

ExprPtr make_load(uint32_t offset, unsigned bits) {
  auto n = std::make_shared<ExprNode>();
  n->op = ExprOp::Load;
  n->offset = offset;
  n->bits = uint8_t(bits);
  return n;
}

ExprPtr make_const(uint64_t v) {
  auto n = std::make_shared<ExprNode>();
  n->op = ExprOp::Const;
  n->value = v;
  return n;
}

ExprPtr make_binary(ExprOp op, ExprPtr a, ExprPtr b) {
  auto n = std::make_shared<ExprNode>();
  n->op = op;
  n->a = std::move(a);
  n->b = std::move(b);
  return n;
}

ExprPtr simplify(const ExprPtr& e) {
  if (!e->a) return e;
  ExprPtr a = simplify(e->a), b = simplify(e->b);
  ExprOp op = e->op;
  if (a->op == ExprOp::Const && b->op == ExprOp::Const)
    return make_const(apply(op, a->value, b->value));
  if (commutative(op) &&
      (a->op == ExprOp::Const || (b->op != ExprOp::Const && compare_expr(a, b) > 0)))
    std::swap(a, b);
  // (x op c1) op c2 = x op (c1 op c2) for the associative operators.
  if (commutative(op) && b->op == ExprOp::Const && a->op == op && a->b->op == ExprOp::Const) {
    b = make_const(apply(op, a->b->value, b->value));
    a = a->a;
  }
  if (b->op == ExprOp::Const) {
    uint64_t c = b->value;
    if (c == 0 && (op == ExprOp::Add || op == ExprOp::Sub || op == ExprOp::Or ||
                   op == ExprOp::Xor || op == ExprOp::Lsh || op == ExprOp::Rsh))
      return a;
    if (c == 0 && (op == ExprOp::And || op == ExprOp::Mul)) return make_const(0);
    if (c == 1 && op == ExprOp::Mul) return a;
    if (op == ExprOp::And && (smear(upper_bound(a)) & ~c) == 0) return a;  // mask keeps all
    if (op == ExprOp::Rsh && upper_bound(a) >> c == 0) return make_const(0);
  }
  if (a == e->a && b == e->b) return e;
  return make_binary(op, std::move(a), std::move(b));
}

uint64_t upper_bound(const ExprPtr& e) {
  switch (e->op) {
    case ExprOp::Const:
      return e->value;
    case ExprOp::Load:
      return e->bits >= 64 ? kMax : (uint64_t(1) << e->bits) - 1;
    case ExprOp::Len:
      return kMax;
    case ExprOp::And: {
      uint64_t a = smear(upper_bound(e->a)), b = smear(upper_bound(e->b));
      if (e->b->op == ExprOp::Const) b = e->b->value;
      if (e->a->op == ExprOp::Const) a = e->a->value;
      return a & b;
    }
    case ExprOp::Or:
    case ExprOp::Xor:
      return smear(upper_bound(e->a)) | smear(upper_bound(e->b));
    case ExprOp::Add:
      return sat_add(upper_bound(e->a), upper_bound(e->b));
    case ExprOp::Mul:
      return sat_mul(upper_bound(e->a), upper_bound(e->b));
    case ExprOp::Lsh: {
      uint64_t a = upper_bound(e->a), n = upper_bound(e->b);
      if (n >= 64) return kMax;
      return a > (kMax >> n) ? kMax : a << n;
    }
    case ExprOp::Rsh:
      return e->b->op == ExprOp::Const && e->b->value < 64 ? upper_bound(e->a) >> e->b->value
                                                           : upper_bound(e->a);
    case ExprOp::Sub:
      return e->b->op == ExprOp::Const && e->a->op == ExprOp::Const ? e->a->value - e->b->value
                                                                    : kMax;
  }
  return kMax;
}

uint32_t load_end(const ExprPtr& e) {
  if (e->op == ExprOp::Load) return e->offset + e->bits / 8;
  if (!e->a) return 0;
  return std::max(load_end(e->a), load_end(e->b));
}

bool reads_length(const ExprPtr& e) {
  if (e->op == ExprOp::Len) return true;
  return e->a && (reads_length(e->a) || reads_length(e->b));
}

unsigned known_alignment(const ExprPtr& e) {
  auto low_zero_bits = [](uint64_t v) { return v ? unsigned(std::countr_zero(v)) : 64u; };
  auto align_of = [&](auto& self, const ExprPtr& x) -> unsigned {  // known trailing zero bits
    switch (x->op) {
      case ExprOp::Const:
        return low_zero_bits(x->value);
      case ExprOp::Load:
      case ExprOp::Len:
        return 0;
      case ExprOp::And:
        return std::max(self(self, x->a), self(self, x->b));
      case ExprOp::Or:
      case ExprOp::Xor:
      case ExprOp::Add:
      case ExprOp::Sub:
        return std::min(self(self, x->a), self(self, x->b));
      case ExprOp::Mul:
        return std::min(64u, self(self, x->a) + self(self, x->b));
      case ExprOp::Lsh:
        return x->b->op == ExprOp::Const ? std::min(64u, self(self, x->a) + unsigned(x->b->value))
                                         : 0;
      case ExprOp::Rsh:
        return 0;
    }
    return 0;
  };
  return 1u << std::min(3u, align_of(align_of, e));
}

bool evaluate(const ExprPtr& e, const uint8_t* base, size_t avail, uint64_t* out) {
  switch (e->op) {
    case ExprOp::Const:
      *out = e->value;
      return true;
    case ExprOp::Load: {
      size_t bytes = e->bits / 8;
      if (e->offset > avail || bytes > avail - e->offset) return false;
      uint64_t v = 0;
      for (size_t i = 0; i < bytes; ++i) v = v << 8 | base[e->offset + i];
      *out = v;
      return true;
    }
    case ExprOp::Len:
      *out = avail;
      return true;
    default: {
      uint64_t a, b;
      if (!evaluate(e->a, base, avail, &a) || !evaluate(e->b, base, avail, &b)) return false;
      *out = apply(e->op, a, b);
      return true;
    }
  }
}

Atom make_length_atom(uint32_t bytes) {
  return Atom{Atom::Kind::Compare, make_load(bytes - 1, 8), Cmp::Le, 0xff};
}

bool is_length_test(Atom::Kind kind, Cmp cmp, const ExprPtr& e, uint64_t value) {
  return kind == Atom::Kind::Compare && cmp == Cmp::Le && value == 0xff && e->op == ExprOp::Load &&
         e->bits == 8;
}

bool is_length_atom(const Atom& a) {
  return is_length_test(a.kind, a.cmp, a.expr, a.value);
}

unsigned register_need(const ExprPtr& e) {
  if (!e->a) return 1;
  unsigned a = register_need(e->a);
  if (e->b->op == ExprOp::Const) return a;  // an immediate
  unsigned b = register_need(e->b);
  return a == b ? a + 1 : std::max(a, b);
}

bool compare_holds(Cmp c, uint64_t v, uint64_t k) {
  switch (c) {
    case Cmp::Eq:
      return v == k;
    case Cmp::Ne:
      return v != k;
    case Cmp::Lt:
      return v < k;
    case Cmp::Le:
      return v <= k;
    case Cmp::Gt:
      return v > k;
    case Cmp::Ge:
      return v >= k;
  }
  return false;
}

bool plain_field(const ExprPtr& e, uint32_t* offset, unsigned* bytes, uint64_t* mask) {
  if (e->op == ExprOp::Load) {
    *offset = e->offset, *bytes = e->bits / 8u, *mask = kMax;
    return true;
  }
  if (e->op == ExprOp::And && e->a->op == ExprOp::Load && e->b->op == ExprOp::Const) {
    *offset = e->a->offset, *bytes = e->a->bits / 8u, *mask = e->b->value;
    return true;
  }
  return false;
}

Canonical canonicalize(const Filter& f) {
  const std::vector<Atom>& atoms = f.atoms();
  if (atoms.size() > kMaxAtoms) fail("dpf filter: {} atoms (at most {})", atoms.size(), kMaxAtoms);
  Canonical out;
  // Per segment (the atoms between two packet-dependent SHIFTs): constant SHIFTs not yet applied,
  // the bytes the segment must hold (atoms dropped as always true still read their fields; RECORD
  // reads its value; a constant SHIFT moves past bytes that must exist), and the bytes its kept
  // atoms load (each of them checks its own).
  uint64_t pending = 0;
  uint32_t need = 0, have = 0;
  size_t segment_start = 0;
  auto end_segment = [&] {
    if (need > have) out.atoms.push_back(make_length_atom(need));
    need = have = 0;
  };
  for (size_t i = 0; i < atoms.size(); ++i) {
    const Atom& in = atoms[i];
    auto refuse = [&](const std::string& why) { fail("dpf filter: atom {}: {}", i + 1, why); };
    if (unsigned(in.kind) > unsigned(Atom::Kind::Recorded))
      refuse(fmt::format("unknown atom kind {}", unsigned(in.kind)));
    if (in.kind == Atom::Kind::Compare && unsigned(in.cmp) > unsigned(Cmp::Ge))
      refuse(fmt::format("unknown comparison {}", unsigned(in.cmp)));
    std::string why;
    size_t budget = kMaxExprNodes;
    if (!well_structured(in.expr, &budget, &why)) refuse(why);
    // From here on the atom is small enough to print.
    auto bad = [&](const std::string& reason) {
      fail("dpf filter: atom {} `{}`: {}", i + 1, to_string(in), reason);
    };
    if (!well_formed(in.expr, &why)) bad(why);
    ExprPtr moved = with_offset(in.expr, uint32_t(pending));
    uint32_t reads = load_end(moved);
    if (reads > kMaxOffset) bad("a field lies beyond the largest packet");
    Atom a = in;
    a.expr = simplify(moved);
    if (register_need(a.expr) > kMaxExprRegs)
      bad(fmt::format("expression needs more than {} registers", kMaxExprRegs));
    if (a.kind == Atom::Kind::Shift) {
      if (a.expr->op == ExprOp::Const) {  // (its fields, if it had any, are still read)
        if (a.expr->value > kMaxOffset - pending) bad("shifts beyond the largest packet");
        need = std::max(need, reads);
        pending += a.expr->value;
        need = std::max(need, uint32_t(pending));
        continue;
      }
      if (upper_bound(a.expr) > kMax - pending) {
        // amount + pending could wrap past 2^64 and come out small where the SHIFTs as written
        // fail: the constant SHIFT stays an atom of its own (its check implies its bytes).
        have = std::max(have, uint32_t(pending));
        end_segment();
        out.atoms.push_back(Atom{Atom::Kind::Shift, make_const(pending), Cmp::Eq, 0});
        a.expr = simplify(in.expr);
        reads = load_end(in.expr);
      } else {
        a.expr = simplify(make_binary(ExprOp::Add, a.expr, make_const(pending)));
        have = std::max(have, uint32_t(pending));  // the SHIFT's check covers amount + pending
      }
      have = std::max(have, reads);  // the amount's own fields
      end_segment();
      pending = 0;
      out.atoms.push_back(std::move(a));
      segment_start = out.atoms.size();
      continue;
    }
    if (a.kind == Atom::Kind::Compare) {
      Truth t = canonical_compare(a);
      if (t == Truth::Never) bad("can never be true");
      if (t == Truth::Always) {  // true whenever its fields are inside the packet
        need = std::max(need, reads);
        continue;
      }
    }
    need = std::max(need, reads);
    if (a.kind == Atom::Kind::Record) {
      if (out.records) bad("a filter records one value");
      out.records = true;
      out.atoms.push_back(std::move(a));  // not in the trie: its fields count through `need`
      continue;
    }
    if (a.kind == Atom::Kind::Recorded) out.recorded = true;
    bool repeat = false;
    for (size_t j = segment_start; j < out.atoms.size() && !repeat; ++j)
      repeat = same_atom(out.atoms[j], a);
    if (repeat) continue;
    have = std::max(have, load_end(a.expr));
    ++out.specificity;
    out.atoms.push_back(std::move(a));
  }
  end_segment();
  return out;
}

}  // namespace exojit::dpf::detail
