// SPDX-License-Identifier: MIT
// The demultiplexer's register budget (codegen.cpp): temporaries first (caller-saved, free to use
// in a leaf), then variables; values that live across calls (RECORDED lookups) take variables.
// The code generator sizes what it emits so that this never runs out (codegen.cpp, kReserve).
#pragma once

#include <exojit/vcode/builder.h>

#include "exojit/error.h"

namespace exojit::dpf::detail {

class RegisterBudget {
 public:
  // `calls`: the code makes calls (RECORDED atoms): its two parameters live in variables.
  RegisterBudget(vcode::Builder& b, bool calls) : b_(b), calls_(calls) {
    if (calls) temps_ = 0, vars_ = 2;
  }

  vcode::Reg get(vcode::Type t) {
    if (temps_ < vcode::kIntTemps) return ++temps_, b_.getreg(t, vcode::RegClass::Temp);
    if (vars_ < vcode::kIntVars) return ++vars_, b_.getreg(t, vcode::RegClass::Var);
    fail("dpf: internal: out of registers");  // the budget of codegen.cpp makes this unreachable
  }
  // A value that lives across calls when the code makes calls (RECORDED atoms).
  vcode::Reg get_long(vcode::Type t) {
    if (calls_) {
      if (vars_ >= vcode::kIntVars) fail("dpf: internal: out of registers");
      return ++vars_, b_.getreg(t, vcode::RegClass::Var);
    }
    return get(t);
  }
  int free() const { return (vcode::kIntTemps - temps_) + (vcode::kIntVars - vars_); }

  void put(vcode::Reg r) {
    if (b_.function().reg(r.id).cls == vcode::RegClass::Temp)
      --temps_;
    else
      --vars_;
    b_.putreg(r);
  }

  bool calls() const { return calls_; }

 private:
  vcode::Builder& b_;
  bool calls_;
  int temps_ = 2;  // the two parameters
  int vars_ = 0;
};

}  // namespace exojit::dpf::detail
