// SPDX-License-Identifier: MIT
// The demultiplexer's bounds checks (codegen.cpp) and, in hardened code, the Spectre v1 guard
// after each (README "Hardening"): the pointer a check protects is zeroed unless the check holds,
// branch-free (vcode `bound_zero`: a conditional move), so that a mispredicted check loads from
// the never-mapped first pages, never past the packet. Each guard directly follows its check's
// branch on the registers that branch compared (x86-64 reuses the branch's flags) and takes no
// register the plain code does not: hardened and plain code get the same hash nodes.
#pragma once

#include <exojit/vcode/builder.h>

#include <cstdint>

#include "codegen_registers_p.h"

namespace exojit::dpf::detail {

class BoundsChecks {
 public:
  BoundsChecks(vcode::Builder& b, RegisterBudget& regs, bool harden)
      : b_(b), regs_(regs), harden_(harden) {}

  bool hardened() const { return harden_; }

  // A branch's check: fails to `fail` unless `must` <= rem (the bytes from the segment's base to
  // the end of the packet). Hardened, `base` (valid exactly then) is zeroed unless it holds.
  void check_length(vcode::Reg base, vcode::Reg rem, uint32_t must, vcode::Label fail);

  // A SHIFT: fails to `fail` unless amount + need <= rem, for any amount (`upper`: the amount's
  // upper bound; one compare when amount + need cannot wrap, two otherwise). Returns the new
  // base, base + amount, in a register of the budget; hardened, zeroed unless the check holds.
  // The check's registers are given back.
  vcode::Reg shifted_base(vcode::Reg base, vcode::Reg amount, uint64_t upper, uint32_t need,
                          vcode::Reg rem, vcode::Label fail);

 private:
  // What a SHIFT's check compared, for the guard of the new base (guard_shift).
  struct ShiftCheck {
    vcode::Reg sum;   // amount + need, checked <= rem (the amount itself when need is 0)
    vcode::Reg rest;  // rem - amount, checked >= need, when amount + need may wrap
    uint32_t need = 0;
  };
  ShiftCheck check_shift(vcode::Reg amount, uint64_t upper, uint32_t need, vcode::Reg rem,
                         vcode::Label fail);
  vcode::Reg new_base(vcode::Reg base, vcode::Reg amount);
  void guard_shift(vcode::Reg nb, const ShiftCheck& c, vcode::Reg amount, vcode::Reg rem);

  vcode::Builder& b_;
  RegisterBudget& regs_;
  bool harden_;
};

}  // namespace exojit::dpf::detail
