// SPDX-License-Identifier: MIT
// The call to the engine's fragment state (codegen_recorded_p.h).
#include "codegen_p.h"
#include "codegen_recorded_p.h"

namespace exojit::dpf::detail {

using vcode::Label;
using vcode::Reg;
using vcode::Type;

void call_recorded(vcode::Builder& b, RegisterBudget& regs, uint32_t fn, const void* state,
                   uint64_t id, std::optional<vcode::Local> value, Label fail) {
  Reg st = regs.get(Type::P), idr = regs.get(Type::U64), val = regs.get(Type::U64),
      r = regs.get(Type::U64);
  b.set(st, int64_t(reinterpret_cast<uintptr_t>(state)));
  b.own_constant();
  b.set(idr, int64_t(id));
  if (value)
    b.ld(val, *value, 0);
  else
    b.set(val, 0);
  b.ccall(r, fn, {st, idr, val});
  regs.put(st), regs.put(idr), regs.put(val);
  if (value) b.beq(r, 0, fail);
  Label go = b.label();
  b.beq(r, 1, go);
  b.ret(int64_t(kNeedsMutex));
  b.place(go);
  regs.put(r);
}

}  // namespace exojit::dpf::detail
