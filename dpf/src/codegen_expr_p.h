// SPDX-License-Identifier: MIT
// Expressions and their compares lowered to vcode for the demultiplexer (codegen.cpp): packet
// loads relative to a segment's base, LEN as the segment's remaining length, constants as
// immediates, the operand that needs more registers first (Sethi-Ullman order: an expression
// needs at most kMaxExprRegs registers, canonical_p.h).
#pragma once

#include <exojit/vcode/builder.h>

#include <cstdint>

#include "codegen_registers_p.h"
#include "trie_p.h"

namespace exojit::dpf::detail {

inline vcode::Type load_type(unsigned bits) {
  using vcode::Type;
  return bits == 8 ? Type::U8 : bits == 16 ? Type::U16 : bits == 32 ? Type::U32 : Type::U64;
}

// A value in a register of the budget, of the type it was computed in (8 to 64 bits).
struct Value {
  vcode::Reg reg;
  vcode::Type type;
};

class ExprLowering {
 public:
  ExprLowering(vcode::Builder& b, RegisterBudget& regs) : b_(b), regs_(regs) {}

  // Evaluates `e` (loads relative to `base`; LEN is `rem`, valid when reads_length(e)).
  Value eval(const ExprPtr& e, vcode::Reg base, vcode::Reg rem = vcode::Reg{});
  // The value as a u64 (its register given back when it was narrower).
  Value widen(Value v);
  // Branches to `target` when `v cmp k` does not hold.
  void branch_unless(Cmp cmp, vcode::Reg v, uint64_t k, vcode::Label target);

 private:
  template <typename B>
  void binary(ExprOp op, vcode::Reg d, vcode::Reg a, B b);

  vcode::Builder& b_;
  RegisterBudget& regs_;
};

}  // namespace exojit::dpf::detail
