// SPDX-License-Identifier: MIT
// The lowering pass (lowerer_p.h): checks the handler, then rewrites it instruction by
// instruction into the function the kernel runs, with the sandbox's exits (fault, budget,
// a primitive's abort) at the end.
#include <algorithm>
#include <cstddef>
#include <string>
#include <vector>

#include "check_p.h"
#include "exojit/error.h"
#include "exojit/vcode/verify.h"
#include "lowerer_p.h"

namespace exojit::ash {

namespace sandbox {

using vcode::Insn;
using vcode::Op;

Lowered Lowerer::run() {
  check_handler(hb_, o_);
  setup();
  if (!in_.locals.empty()) zero_locals();
  find_loops();
  plan_loops();
  for (size_t i = 0; i < in_.code.size(); ++i) {
    lower(i);
    out_end_[i] = uint32_t(out_.code.size());
  }
  patch_loop_charges();
  for (const Insn& x : tail_) out_.code.push_back(x);
  place(l_fault_);
  ret_imm(kRetFault);
  place(l_budget_);
  ret_imm(kRetBudget);
  place(l_helper_);
  emit(Op::Ret, Type::U32, 0, 0, s32_.id, 0, 0);
  for (const Insn& x : out_.code) out_.op_mask |= uint64_t(1) << unsigned(x.op);
  vcode::verify(lowered_.module, out_);
  out_.verified = true;
  lowered_.static_cost = uint32_t(out_.code.size());
  return std::move(lowered_);
}

void Lowerer::setup() {
  out_.params = in_.params;
  out_.regs = in_.regs;
  out_.reg_names = in_.reg_names;
  out_.reg_names.resize(out_.regs.size());
  out_.num_labels = in_.num_labels;
  out_.label_names = in_.label_names;
  out_.label_names.resize(out_.num_labels);
  out_.locals = in_.locals;
  out_.call_args.clear();
  helper_ = lowered_.module.add_extern(
      "ash_call", vcode::Signature{{Type::P, Type::P, Type::P, Type::P}, Type::U32},
      reinterpret_cast<void*>(&exojit_ash_call));
  for (int k = 0; k < 3; ++k) {
    const vcode::RegInfo& ri = in_.regs[hb_.scratch()[size_t(k)].id];
    sp_[k] = alias(ri, Type::P, "s" + std::to_string(k));
  }
  const vcode::RegInfo& r0 = in_.regs[hb_.scratch()[0].id];
  s32_ = alias(r0, Type::U32, "s0w");
  // The budget's scratch: not s0/s1, which may hold a translation across a loop's head.
  s64_ = alias(in_.regs[hb_.scratch()[2].id], Type::I64, "s2l");
  s8_ = alias(r0, Type::U8, "s0b");
  state_ = hb_.state();
  l_fault_ = new_label("fault");
  l_budget_ = new_label("budget");
  l_helper_ = new_label("helper_abort");
  out_end_.assign(in_.code.size(), 0);
}

// Locals live in the kernel's stack frame: zeroed at entry, so a handler reading one before
// writing it reads 0, not what an earlier run (of any environment's handler) left there.
void Lowerer::zero_locals() {
  // Two passes, each with its own view of s0 defined: bytes for locals under 8 bytes, then
  // 8-byte stores (the last of a local may overlap the one before).
  set(s8_, 0);
  for (uint32_t l = 0; l < in_.locals.size(); ++l)
    for (int64_t off = 0; off < int64_t(in_.locals[l].size) && in_.locals[l].size < 8; ++off)
      emit(Op::Stu, Type::U8, vcode::kLocalBase, s8_.id, l, 0, off);
  set(sp_[0], 0);
  for (uint32_t l = 0; l < in_.locals.size(); ++l) {
    int64_t size = in_.locals[l].size;
    for (int64_t off = 0; size >= 8 && off < size; off += 8)
      emit(Op::Stu, Type::P, vcode::kLocalBase, sp_[0].id, l, 0, std::min(off, size - 8));
  }
}

Reg Lowerer::alias(const vcode::RegInfo& slot_of, Type t, std::string name) {
  out_.regs.push_back(vcode::RegInfo{t, slot_of.cls, slot_of.slot});
  out_.reg_names.push_back(std::move(name));
  return Reg{uint32_t(out_.regs.size() - 1)};
}

uint32_t Lowerer::new_label(std::string name) {
  out_.label_names.push_back(std::move(name));
  return out_.num_labels++;
}

void Lowerer::emit(Op op, Type t, uint8_t flags, uint32_t dst, uint32_t a, uint32_t b,
                   int64_t imm) {
  Insn& x = out_.code.emplace_back();
  x.op = op;
  x.type = t;
  x.flags = flags;
  x.dst = dst;
  x.a = a;
  x.b = b;
  x.imm = imm;
}

// -- lowering --
void Lowerer::lower(size_t i) {
  const Insn& x = in_.code[i];
  bool jump = vcode::is_branch(x.op) || x.op == Op::Jmp;
  if (jump && loop_plan_[x.dst].valid && label_pos_[x.dst] <= i) enter_loop_head(x.dst);
  lower_insn(i, x);
  // The cached translation (see app_access) survives only straight-line code that leaves the
  // scratch registers and the base register alone; adding a constant to the base moves it.
  bool keeps = x.op != Op::Place && x.op != Op::Call && x.op != Op::Div && x.op != Op::Mod;
  if (vcode::is_load(x.op) || vcode::is_store(x.op))
    keeps = keeps && !(x.flags & vcode::kLocalBase ? false : inline_site(hb_, x) != nullptr);
  if (int64_t step = 0; cache_valid_ && base_step(x, cache_base_, &step)) {
    cache_disp_ = wrap_sub(cache_disp_, step);
  } else if (vcode::defined_reg(x) == int64_t(cache_base_)) {
    keeps = false;
  }
  if (!keeps) cache_valid_ = false;
  if (x.op == Op::Place && loop_plan_[x.dst].valid) {
    const LoopPlan& lp = loop_plan_[x.dst];
    cache_valid_ = true;
    cache_base_ = lp.base;
    cache_disp_ = lp.disp;
    cache_write_ = lp.write;
  }
}

void Lowerer::lower_insn(size_t i, const Insn& x) {
  switch (x.op) {
    case Op::Place:
      if (loop_plan_[x.dst].valid) loop_preheader(loop_plan_[x.dst]);
      out_.code.push_back(x);
      label_out_[x.dst] = uint32_t(out_.code.size());
      if (loop_source_[x.dst] != ~size_t(0)) charge_budget(x.dst);
      return;
    case Op::Ld:
    case Op::Ldu:
    case Op::Ldbe:
    case Op::St:
    case Op::Stu:
    case Op::Stbe:
      if (x.flags & vcode::kLocalBase) {
        Insn y = x;
        if (y.op == Op::Ld) y.op = Op::Ldu;
        if (y.op == Op::St) y.op = Op::Stu;
        out_.code.push_back(y);
      } else if (const Site* s = inline_site(hb_, x)) {
        lower_inline(x, *s);
      } else if (x.a == state_.id) {
        refuse(in_, i, "the reserved registers are the sandbox's");
      } else {
        app_access(x);
      }
      return;
    case Op::Div:
    case Op::Mod:
      return guarded_division(x);
    case Op::Call:
      return lower_call(x, hb_.sites()[size_t(hb_.site_of_extern(uint32_t(x.imm)))]);
    case Op::Ret:
      return ret_imm(x.imm);  // commit or abort (check_insn), re-emitted as the sandbox's
    default: {
      // Constants as a register of the operation's type holds them: a back end may truncate,
      // and the checks above compared the normalized value.
      Insn y = x;
      if ((y.flags & vcode::kImm) || y.op == Op::Set) y.imm = vcode::normalize_imm(y.type, y.imm);
      out_.code.push_back(y);
      return;
    }
  }
}

void Lowerer::guarded_division(const Insn& in) {
  Insn x = in;
  bool signed_ = vcode::is_signed(x.type);
  if (x.flags & vcode::kImm) {
    x.imm = vcode::normalize_imm(x.type, x.imm);
    if (signed_ && x.imm == -1) {
      if (x.op == Op::Div)
        emit(Op::Neg, x.type, 0, x.dst, x.a, 0, 0);
      else
        emit(Op::Set, x.type, 0, x.dst, 0, 0, 0);
      return;
    }
    out_.code.push_back(x);
    return;
  }
  Reg b{x.b};
  br_imm(Op::Beq, b, 0, l_fault_);
  if (!signed_) {
    out_.code.push_back(x);
    return;
  }
  uint32_t ok = new_label("div_ok"), done = new_label("div_done");
  br_imm(Op::Bne, b, -1, ok);
  if (x.op == Op::Div)
    emit(Op::Neg, x.type, 0, x.dst, x.a, 0, 0);
  else
    emit(Op::Set, x.type, 0, x.dst, 0, 0, 0);
  jmp(done);
  place(ok);
  out_.code.push_back(x);
  place(done);
}

}  // namespace sandbox

Lowered lower(const HandlerBuilder& program, const LowerOptions& options) {
  const vcode::Function& f = program.function();
  // A usability message only: the records are verified again whatever the flag says.
  if (!f.verified) fail("ash handler {}: finish() the builder before installing it", f.name);
  return sandbox::Lowerer(program, options).run();
}

}  // namespace exojit::ash
