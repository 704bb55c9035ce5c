// SPDX-License-Identifier: MIT
// Emits a binary operation or a compare-and-branch chosen at run time by opcode, in the
// register or the immediate form (Y = Reg or int64_t). Shared by the test generators.
#pragma once

#include <cstdint>

#include "exojit/vcode.h"

namespace exojit::test {

template <typename Y>
void emit_binary(vcode::Builder& b, vcode::Op op, vcode::Reg d, vcode::Reg x, Y y) {
  using vcode::Op;
  switch (op) {
    case Op::Add:
      return b.add(d, x, y);
    case Op::Sub:
      return b.sub(d, x, y);
    case Op::Mul:
      return b.mul(d, x, y);
    case Op::Div:
      return b.div(d, x, y);
    case Op::Mod:
      return b.mod(d, x, y);
    case Op::And:
      return b.and_(d, x, y);
    case Op::Or:
      return b.or_(d, x, y);
    case Op::Xor:
      return b.xor_(d, x, y);
    case Op::Lsh:
      return b.lsh(d, x, y);
    case Op::Rsh:
      return b.rsh(d, x, y);
    case Op::Cksum:
      return b.cksum(d, x, y);
    case Op::BoundMask:
      return b.bound_mask(d, x, y);
    case Op::BoundZero:
      return b.bound_zero(d, x, y);
    default:
      throw Error("emit_binary: not a binary operation");
  }
}

template <typename Y>
void emit_branch(vcode::Builder& b, vcode::Op op, vcode::Reg x, Y y, vcode::Label l) {
  using vcode::Op;
  switch (op) {
    case Op::Blt:
      return b.blt(x, y, l);
    case Op::Ble:
      return b.ble(x, y, l);
    case Op::Bgt:
      return b.bgt(x, y, l);
    case Op::Bge:
      return b.bge(x, y, l);
    case Op::Beq:
      return b.beq(x, y, l);
    case Op::Bne:
      return b.bne(x, y, l);
    default:
      throw Error("emit_branch: not a compare-and-branch");
  }
}

}  // namespace exojit::test
