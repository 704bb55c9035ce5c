// SPDX-License-Identifier: MIT
// Expressions: construction, the builder API's operators, printing and structural order.
#include <fmt/format.h>

#include "canonical_p.h"
#include "exojit/dpf/filter.h"

namespace exojit::dpf {

namespace {

using detail::make_binary;  // (canonical.h)
using detail::make_const;

std::string_view op_text(ExprOp op) {
  switch (op) {
    case ExprOp::And:
      return "&";
    case ExprOp::Or:
      return "|";
    case ExprOp::Xor:
      return "^";
    case ExprOp::Add:
      return "+";
    case ExprOp::Sub:
      return "-";
    case ExprOp::Mul:
      return "*";
    case ExprOp::Lsh:
      return "<<";
    case ExprOp::Rsh:
      return ">>";
    default:
      return "?";
  }
}

std::string constant_text(uint64_t v) {
  return v < 10 ? fmt::format("{}", v) : fmt::format("{:#x}", v);
}

void print(std::string& out, const ExprNode& e, bool top) {
  switch (e.op) {
    case ExprOp::Const:
      out += constant_text(e.value);
      return;
    case ExprOp::Load:
      out += fmt::format("{}:{}", e.offset, e.bits);
      return;
    case ExprOp::Len:
      out += "LEN";
      return;
    default:
      if (!top) out += '(';
      print(out, *e.a, false);
      out += fmt::format(" {} ", op_text(e.op));
      print(out, *e.b, false);
      if (!top) out += ')';
  }
}

}  // namespace

Expr::Expr(uint64_t constant) : node_(make_const(constant)) {}

Expr field(uint32_t offset, unsigned bits) {
  auto n = std::make_shared<ExprNode>();
  n->op = ExprOp::Load;
  n->offset = offset;
  n->bits = uint8_t(bits > 255 ? 255 : bits);  // checked when the filter is inserted
  return Expr(std::move(n));
}

Expr length() {
  auto n = std::make_shared<ExprNode>();
  n->op = ExprOp::Len;
  return Expr(std::move(n));
}

Expr operator&(Expr a, Expr b) {
  return Expr(make_binary(ExprOp::And, a.node(), b.node()));
}
Expr operator|(Expr a, Expr b) {
  return Expr(make_binary(ExprOp::Or, a.node(), b.node()));
}
Expr operator^(Expr a, Expr b) {
  return Expr(make_binary(ExprOp::Xor, a.node(), b.node()));
}
Expr operator+(Expr a, Expr b) {
  return Expr(make_binary(ExprOp::Add, a.node(), b.node()));
}
Expr operator-(Expr a, Expr b) {
  return Expr(make_binary(ExprOp::Sub, a.node(), b.node()));
}
Expr operator*(Expr a, Expr b) {
  return Expr(make_binary(ExprOp::Mul, a.node(), b.node()));
}
Expr operator<<(Expr a, Expr b) {
  return Expr(make_binary(ExprOp::Lsh, a.node(), b.node()));
}
Expr operator>>(Expr a, Expr b) {
  return Expr(make_binary(ExprOp::Rsh, a.node(), b.node()));
}

std::string_view cmp_name(Cmp c) {
  static constexpr std::string_view names[] = {"==", "!=", "<", "<=", ">", ">="};
  return names[unsigned(c)];
}

Filter& Filter::compare(Expr e, Cmp c, uint64_t v) {
  atoms_.push_back(Atom{Atom::Kind::Compare, e.node(), c, v});
  return *this;
}
Filter& Filter::shift(Expr amount) {
  atoms_.push_back(Atom{Atom::Kind::Shift, amount.node(), Cmp::Eq, 0});
  return *this;
}
Filter& Filter::record(Expr e) {
  atoms_.push_back(Atom{Atom::Kind::Record, e.node(), Cmp::Eq, 0});
  return *this;
}
Filter& Filter::recorded(Expr e) {
  atoms_.push_back(Atom{Atom::Kind::Recorded, e.node(), Cmp::Eq, 0});
  return *this;
}

std::string to_string(const ExprPtr& e) {
  std::string out;
  if (e) print(out, *e, true);
  return out;
}

std::string to_string(const Atom& a) {
  switch (a.kind) {
    case Atom::Kind::Shift:
      return fmt::format("SHIFT({})", to_string(a.expr));
    case Atom::Kind::Record:
      return fmt::format("RECORD({})", to_string(a.expr));
    case Atom::Kind::Recorded:
      return fmt::format("RECORDED({})", to_string(a.expr));
    case Atom::Kind::Compare:
      break;
  }
  std::string e;
  print(e, *a.expr, !a.expr->a);  // a leaf: no parentheses
  return fmt::format("{} {} {}", e, cmp_name(a.cmp), constant_text(a.value));
}

std::string to_string(const Filter& f) {
  std::string out;
  for (const Atom& a : f.atoms()) {
    if (!out.empty()) out += " && ";
    out += '(' + to_string(a) + ')';
  }
  return out;
}

int compare_expr(const ExprPtr& a, const ExprPtr& b) {
  if (a == b) return 0;
  if (!a || !b) return a ? 1 : -1;
  if (a->op != b->op) return a->op < b->op ? -1 : 1;
  switch (a->op) {
    case ExprOp::Const:
      return a->value == b->value ? 0 : a->value < b->value ? -1 : 1;
    case ExprOp::Load:
      if (a->offset != b->offset) return a->offset < b->offset ? -1 : 1;
      return a->bits == b->bits ? 0 : a->bits < b->bits ? -1 : 1;
    default:
      if (int c = compare_expr(a->a, b->a)) return c;
      return compare_expr(a->b, b->b);
  }
}

bool same_expr(const ExprPtr& a, const ExprPtr& b) {
  return compare_expr(a, b) == 0;
}

}  // namespace exojit::dpf
