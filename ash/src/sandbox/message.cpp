// SPDX-License-Identifier: MIT
// The message primitives (lowerer_p.h): inline ones become bounds-checked loads of the message
// held in the run state; the others one call to exojit_ash_call (handler.cpp) with their site.
#include <cstddef>
#include <cstdint>

#include "lowerer_p.h"

namespace exojit::ash::sandbox {

using vcode::Insn;
using vcode::Op;

namespace {

constexpr int64_t kMaxMsgOffset = 0xffff;
constexpr int64_t off_msg = offsetof(RunState, msg);
constexpr int64_t off_len = offsetof(RunState, msg_len);
constexpr int64_t off_cursor = offsetof(RunState, cursor);
constexpr int64_t off_site = offsetof(RunState, site);
constexpr int64_t off_result = offsetof(RunState, result);

}  // namespace

// cursor + extra (a register operand, at most 64 KiB, and a constant) into s0, checked to be
// at most the message length. Hardened, s2 = the check's mask (message_load applies it).
void Lowerer::cursor_plus(const Operand* extra, int64_t constant, bool absolute) {
  Reg s0 = sp_[0], s1 = sp_[1], s2 = sp_[2];
  if (absolute)
    set(s0, 0);
  else
    load(Op::Ld, s0, state_, off_cursor);
  if (extra)
    if (const Reg* r = std::get_if<Reg>(extra)) {
      to_p(s2, *r);
      br_imm(Op::Bgt, s2, kMaxMsgOffset, l_fault_);
      bin(Op::Add, s0, s0, s2);
    }
  if (extra)
    if (const int64_t* v = std::get_if<int64_t>(extra)) constant += *v;
  if (constant) bin_imm(Op::Add, s0, s0, constant);
  load(Op::Ld, s1, state_, off_len);
  br(Op::Bgt, s0, s1, l_fault_);
  if (o_.harden) emit(Op::BoundMask, Type::P, 0, s2.id, s0.id, s1.id, 0);
}

// The message load of `width` bytes ending at s0 (checked by cursor_plus). Hardened, its start
// offset is masked: a mispredicted check reads the message's first bytes.
void Lowerer::message_load(const Insn& x, Op op, int64_t width) {
  Reg s0 = sp_[0], s1 = sp_[1];
  load(Op::Ld, s1, state_, off_msg);
  if (!o_.harden) {
    emit(op, x.type, vcode::kIndex, x.dst, s1.id, s0.id, -width);
    return;
  }
  bin_imm(Op::Sub, s0, s0, width);
  bin(Op::And, s0, s0, sp_[2]);
  emit(op, x.type, vcode::kIndex, x.dst, s1.id, s0.id, 0);
}

void Lowerer::lower_inline(const Insn& x, const Site& s) {
  Reg s0 = sp_[0], s1 = sp_[1];
  Op op = x.op == Op::Ldbe ? Op::Ldbe : Op::Ldu;
  switch (s.kind) {
    case PrimKind::Peek:
    case PrimKind::PeekAt: {
      Operand off = s.operands[0];
      if (std::holds_alternative<Reg>(off)) off = Reg{x.b};  // the recorded index register
      cursor_plus(&off, s.width, s.kind == PrimKind::PeekAt);
      message_load(x, op, s.width);
      return;
    }
    case PrimKind::ConsumeField:
      cursor_plus(nullptr, s.width);
      store(Op::St, s0, state_, off_cursor);
      message_load(x, op, s.width);
      return;
    case PrimKind::Skip: {
      Operand n = s.operands[0];
      if (std::holds_alternative<Reg>(n)) n = Reg{x.dst};
      cursor_plus(&n, 0);
      store(Op::St, s0, state_, off_cursor);
      return;
    }
    case PrimKind::Length:
      emit(Op::Ldu, x.type, 0, x.dst, state_.id, 0, off_len);
      return;
    case PrimKind::Remaining:
      load(Op::Ld, s0, state_, off_len);
      load(Op::Ld, s1, state_, off_cursor);
      bin(Op::Sub, s0, s0, s1);
      store(Op::St, s0, state_, off_result);
      emit(Op::Ldu, x.type, 0, x.dst, state_.id, 0, off_result);
      return;
    default:
      break;
  }
}

void Lowerer::lower_call(const Insn& x, const Site& s) {
  set(sp_[0], int64_t(reinterpret_cast<uintptr_t>(&o_.sites[&s - hb_.sites().data()])));
  store(Op::St, sp_[0], state_, off_site);
  uint32_t args[3] = {state_.id, state_.id, state_.id};
  for (uint32_t k = 0; k < x.b; ++k) {
    Reg r{in_.call_args[x.a + k]};
    to_p(sp_[k], r);
    args[k] = sp_[k].id;
  }
  uint32_t first = uint32_t(out_.call_args.size());
  out_.call_args.push_back(state_.id);
  for (uint32_t a : args) out_.call_args.push_back(a);
  emit(Op::Call, Type::U32, vcode::kExtern, s32_.id, first, 4, helper_);
  br_imm(Op::Bne, s32_, 0, l_helper_);
  if (!(x.flags & vcode::kVoid))
    emit(Op::Ldu, type(Reg{x.dst}), 0, x.dst, state_.id, 0, off_result);
}

}  // namespace exojit::ash::sandbox
