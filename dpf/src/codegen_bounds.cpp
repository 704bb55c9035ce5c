// SPDX-License-Identifier: MIT
// Bounds checks and their Spectre v1 guards (codegen_bounds_p.h).
#include "codegen_bounds_p.h"

namespace exojit::dpf::detail {

using vcode::Label;
using vcode::Reg;
using vcode::Type;

void BoundsChecks::check_length(Reg base, Reg rem, uint32_t must, Label fail) {
  if (!harden_) return b_.blt(rem, int64_t(must), fail);
  // base = must <= rem ? base : 0, the guard right after the check, on its registers: x86-64
  // reuses the check's compare.
  Reg m = regs_.get(Type::U64);
  b_.set(m, int64_t(must));
  b_.bgt(m, rem, fail);
  b_.bound_zero(base, m, rem);
  regs_.put(m);
}

// Hardened, the registers the compares read stay for guard_shift.
BoundsChecks::ShiftCheck BoundsChecks::check_shift(Reg amount, uint64_t upper, uint32_t need,
                                                   Reg rem, Label fail) {
  ShiftCheck c{.need = need};
  if (need == 0) {
    b_.bgt(amount, rem, fail);
    return c;
  }
  if (upper <= ~uint64_t(0) - need) {
    Reg t = regs_.get(Type::U64);
    b_.add(t, amount, int64_t(need));
    b_.bgt(t, rem, fail);
    if (!harden_) return regs_.put(t), c;
    c.sum = t;
    return c;
  }
  b_.bgt(amount, rem, fail);
  Reg t = regs_.get(Type::U64);
  b_.sub(t, rem, amount);
  b_.blt(t, int64_t(need), fail);
  if (!harden_) return regs_.put(t), c;
  c.rest = t;
  return c;
}

Reg BoundsChecks::new_base(Reg base, Reg amount) {
  Reg nb = regs_.get(Type::P);
  b_.add(nb, base, amount);
  return nb;
}

// The new base nb = 0 unless the SHIFT's check holds (bound_zero after each of its compares).
// Gives the check's registers back.
void BoundsChecks::guard_shift(Reg nb, const ShiftCheck& c, Reg amount, Reg rem) {
  if (!harden_) return;
  if (c.sum.valid()) {
    b_.bound_zero(nb, c.sum, rem);
    return regs_.put(c.sum);
  }
  b_.bound_zero(nb, amount, rem);
  if (!c.rest.valid()) return;
  Reg m = regs_.get(Type::U64);  // need <= rem - amount
  b_.set(m, int64_t(c.need));
  b_.bound_zero(nb, m, c.rest);
  regs_.put(m);
  regs_.put(c.rest);
}

Reg BoundsChecks::shifted_base(Reg base, Reg amount, uint64_t upper, uint32_t need, Reg rem,
                               Label fail) {
  // Hardened, the new base before the check, so that its guard directly follows the check's
  // branch.
  Reg nb = harden_ ? new_base(base, amount) : Reg{};
  ShiftCheck check = check_shift(amount, upper, need, rem, fail);
  if (!harden_) nb = new_base(base, amount);
  guard_shift(nb, check, amount, rem);
  return nb;
}

}  // namespace exojit::dpf::detail
