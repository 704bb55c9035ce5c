// Canonicalisation: tree rewriting to one form per meaning (the DPF paper, section 6), SHIFT
// folding (section 3.2) and the checks that refuse malformed filters.
#include "canonical.h"

#include <bit>

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

size_t count_nodes(const ExprPtr& e) {
  if (!e->a) return 1;
  return 1 + count_nodes(e->a) + count_nodes(e->b);
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

Canonical canonicalize(const Filter& f) {
  const std::vector<Atom>& atoms = f.atoms();
  if (atoms.size() > kMaxAtoms) fail("dpf filter: {} atoms (at most {})", atoms.size(), kMaxAtoms);
  Canonical out;
  uint64_t pending = 0;      // constant SHIFTs not yet applied
  bool implied = true;       // a later atom's field implies the pending SHIFT's length
  size_t segment_start = 0;  // first atom of out.atoms after the last variable SHIFT
  for (size_t i = 0; i < atoms.size(); ++i) {
    const Atom& in = atoms[i];
    auto bad = [&](const std::string& why) {
      fail("dpf filter: atom {} `{}`: {}", i + 1, to_string(in), why);
    };
    if (!in.expr) bad("no expression");
    if (count_nodes(in.expr) > kMaxExprNodes) bad("expression too large");
    std::string why;
    if (!well_formed(in.expr, &why)) bad(why);
    Atom a = in;
    a.expr = simplify(with_offset(in.expr, uint32_t(pending)));
    if (load_end(a.expr) > kMaxOffset) bad("a field lies beyond the largest packet");
    if (a.kind == Atom::Kind::Shift) {
      if (a.expr->op == ExprOp::Const) {
        pending += a.expr->value;
        if (pending > kMaxOffset) bad("shifts beyond the largest packet");
        if (a.expr->value > 0) implied = false;
        continue;
      }
      a.expr = simplify(make_binary(ExprOp::Add, a.expr, make_const(pending)));
      pending = 0;
      implied = true;
      out.atoms.push_back(std::move(a));
      segment_start = out.atoms.size();
      continue;
    }
    if (a.kind == Atom::Kind::Compare) {
      Truth t = canonical_compare(a);
      if (t == Truth::Never) bad("can never be true");
      // An always-true atom still needs its fields inside the packet: only a constant one goes.
      if (t == Truth::Always && a.expr->op == ExprOp::Const) continue;
    }
    if (a.kind != Atom::Kind::Record) {
      // Its fields lie at or beyond `pending` (an atom that loads nothing, e.g. on LEN, does
      // not show that the packet reaches that far).
      if (load_end(a.expr) > 0) implied = true;
    } else {
      if (out.records) bad("a filter records one value");
      out.records = true;
    }
    bool repeat = false;
    for (size_t j = segment_start; j < out.atoms.size() && !repeat; ++j)
      repeat = same_atom(out.atoms[j], a);
    if (repeat) continue;
    if (a.kind == Atom::Kind::Compare || a.kind == Atom::Kind::Recorded) ++out.specificity;
    out.atoms.push_back(std::move(a));
  }
  // A SHIFT past the end of the packet makes its filter false, so a trailing constant SHIFT
  // (nothing after it to fold into) stays as a Shift atom: it checks the packet's length.
  if (!implied) out.atoms.push_back(Atom{Atom::Kind::Shift, make_const(pending), Cmp::Eq, 0});
  return out;
}

}  // namespace exojit::dpf::detail
