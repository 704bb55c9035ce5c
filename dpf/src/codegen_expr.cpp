// SPDX-License-Identifier: MIT
// Expressions and their compares lowered to vcode (codegen_expr_p.h).
#include "canonical_p.h"
#include "codegen_expr_p.h"
#include "exojit/error.h"

namespace exojit::dpf::detail {

using vcode::Label;
using vcode::Reg;
using vcode::Type;

Value ExprLowering::widen(Value v) {
  if (v.type == Type::U64) return v;
  Reg w = regs_.get(Type::U64);
  b_.cvt(w, v.reg);
  regs_.put(v.reg);
  return Value{w, Type::U64};
}

Value ExprLowering::eval(const ExprPtr& e, Reg base, Reg rem) {
  switch (e->op) {
    case ExprOp::Const: {
      Reg r = regs_.get(Type::U64);
      b_.set(r, int64_t(e->value));
      return Value{r, Type::U64};
    }
    case ExprOp::Load: {
      Type t = load_type(e->bits);
      Reg r = regs_.get(t);
      if (t == Type::U8)
        b_.ld(r, base, e->offset);
      else
        b_.ldbe(r, base, e->offset);
      return Value{r, t};
    }
    case ExprOp::Len: {  // the bytes from the base to the end: the segment's remaining length
      if (!rem.valid()) fail("dpf: internal: LEN without the segment's length");
      Reg r = regs_.get(Type::U64);
      b_.mov(r, rem);
      return Value{r, Type::U64};
    }
    default:
      break;
  }
  bool narrow_ok =
      e->op == ExprOp::And || e->op == ExprOp::Or || e->op == ExprOp::Xor || e->op == ExprOp::Rsh;
  if (e->b->op == ExprOp::Const) {
    Value a = eval(e->a, base, rem);
    uint64_t c = e->b->value;
    if (!narrow_ok || c > ones(vcode::type_bits(a.type))) a = widen(a);
    binary(e->op, a.reg, a.reg, int64_t(c));
    return a;
  }
  Value a, b;
  if (register_need(e->b) > register_need(e->a)) {
    b = eval(e->b, base, rem);
    a = eval(e->a, base, rem);
  } else {
    a = eval(e->a, base, rem);
    b = eval(e->b, base, rem);
  }
  if (!narrow_ok || a.type != b.type) a = widen(a), b = widen(b);
  binary(e->op, a.reg, a.reg, b.reg);
  regs_.put(b.reg);
  return a;
}

template <typename B>
void ExprLowering::binary(ExprOp op, Reg d, Reg a, B b) {
  switch (op) {
    case ExprOp::And:
      return b_.and_(d, a, b);
    case ExprOp::Or:
      return b_.or_(d, a, b);
    case ExprOp::Xor:
      return b_.xor_(d, a, b);
    case ExprOp::Add:
      return b_.add(d, a, b);
    case ExprOp::Sub:
      return b_.sub(d, a, b);
    case ExprOp::Mul:
      return b_.mul(d, a, b);
    case ExprOp::Lsh:
      return b_.lsh(d, a, b);
    case ExprOp::Rsh:
      return b_.rsh(d, a, b);
    default:
      fail("dpf: internal: not a binary operator");
  }
}

void ExprLowering::branch_unless(Cmp cmp, Reg v, uint64_t k, Label target) {
  if (k > ones(vcode::type_bits(b_.function().reg(v.id).type))) {
    // A constant above every value of v's width: decided here (an immediate of that width
    // would be truncated).
    if (cmp == Cmp::Eq || cmp == Cmp::Gt || cmp == Cmp::Ge) b_.jmp(target);
    return;
  }
  int64_t i = int64_t(k);
  switch (cmp) {
    case Cmp::Eq:
      return b_.bne(v, i, target);
    case Cmp::Ne:
      return b_.beq(v, i, target);
    case Cmp::Lt:
      return b_.bge(v, i, target);
    case Cmp::Le:
      return b_.bgt(v, i, target);
    case Cmp::Gt:
      return b_.ble(v, i, target);
    case Cmp::Ge:
      return b_.blt(v, i, target);
  }
}

}  // namespace exojit::dpf::detail
