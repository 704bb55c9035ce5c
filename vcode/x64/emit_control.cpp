// SPDX-License-Identifier: MIT
// The x86-64 emitter: compare-and-branch, calls (SysV ABI) and returns.
#include "emitter_p.h"

namespace exojit::vcode::detail::x64 {

void X64Emitter::jump(const Insn& in) {
  switch (in.op) {
    case Op::Jmp:
      return e_.jmp(label(in.dst));
    case Op::Jmpr:
      return e_.jmp(gp64(in.a));
    case Op::La:
      return e_.lea(gp64(in.a), ptr(label(in.dst)));
    default:  // Place: another path may join here, with other flags
      last_compare_.at = ~size_t(0);
      return e_.bind(label(in.dst));
  }
}

void X64Emitter::branch(const Insn& in) {
  const Type t = in.type;
  const Label target = label(in.dst);
  if (is_float(t)) {
    // ucomis sets CF for "below or unordered", ZF for "equal or unordered", PF for unordered;
    // swapping the operands turns < and <= into > and >=, which are false on NaN.
    const Vec a = xmm(in.a), b = xmm(in.b);
    const VecOp ucomis = t == Type::F32 ? vop::kUcomiss : vop::kUcomisd;
    auto ucom = [&](Vec x, Vec y) { e_.sse(ucomis, x.id, y.id); };
    switch (in.op) {
      case Op::Blt:
        ucom(b, a);
        return e_.jcc(Cond::A, target);
      case Op::Ble:
        ucom(b, a);
        return e_.jcc(Cond::AE, target);
      case Op::Bgt:
        ucom(a, b);
        return e_.jcc(Cond::A, target);
      case Op::Bge:
        ucom(a, b);
        return e_.jcc(Cond::AE, target);
      case Op::Beq: {
        const Label skip = e_.new_label();
        ucom(a, b);
        e_.jcc(Cond::P, skip);
        e_.jcc(Cond::E, target);
        return e_.bind(skip);
      }
      default:
        ucom(a, b);
        e_.jcc(Cond::P, target);
        return e_.jcc(Cond::NE, target);
    }
  }
  const Gp a = gp(in.a, t);
  if (!(in.flags & kImm)) {
    e_.alu(Alu::Cmp, a, gp(in.b, t));
  } else if (in.imm == 0 && (in.op == Op::Beq || in.op == Op::Bne)) {
    e_.test(a, a);
  } else if (!is_wide(t) || fits32(in.imm)) {
    e_.alu(Alu::Cmp, a, int32_t(in.imm));
  } else {
    mov_imm(r11, in.imm);
    e_.alu(Alu::Cmp, a, r11);
  }
  // Signed types compare signed; the others (and p) unsigned.
  static constexpr Cond kSigned[6] = {Cond::L, Cond::LE, Cond::G, Cond::GE, Cond::E, Cond::NE};
  static constexpr Cond kUnsigned[6] = {Cond::B, Cond::BE, Cond::A, Cond::AE, Cond::E, Cond::NE};
  const unsigned k = unsigned(in.op) - unsigned(Op::Blt);
  e_.jcc(is_signed(t) ? kSigned[k] : kUnsigned[k], target);
  if (!(in.flags & kImm)) last_compare_ = BranchCompare{e_.offset(), a, gp(in.b, t)};
}

// beq/bne a, v with v blinded, for types of 32 bits or fewer (they live in 32 bits): r11d = a +
// (K - v) by lea (which keeps nothing but computes), then cmp r11d, K -- equal exactly when
// a == v modulo 2^32. Two instructions instead of load_blinded's two and a cmp; the code holds
// K - v and K, never v's bytes.
bool X64Emitter::blinded_equality(const Insn& in, const BlindKey& k) {
  if (is_wide(in.type)) return false;
  const uint32_t v = uint32_t(register_value(in.type, in.imm));
  e_.lea(r11d, ptr(gp64(in.a), int32_t(k.k32 - v)));
  e_.alu(Alu::Cmp, r11d, int32_t(k.k32));
  e_.jcc(in.op == Op::Beq ? Cond::E : Cond::NE, label(in.dst));
  return true;
}

void X64Emitter::call(const Insn& in) {
  const bool ext = in.flags & kExtern;
  const Signature& sig =
      ext ? m_.externs()[size_t(in.imm)].sig : m_.functions()[size_t(in.imm)]->sig;
  const uint32_t* args = f_->call_args.data() + in.a;
  const uint32_t n = in.b;

  // Float variables live in caller-saved xmm registers: save them around the call.
  // (Each step reserves its room: a call with many arguments and float variables is longer
  // than one record's room.)
  const uint32_t keep = frame_.float_vars_used;
  for (int s = 0; s < kFloatVars; ++s)
    if (keep >> s & 1) e_.reserve(32), save_float_var(s);
  if (frame_.uses_ymm) e_.vzeroupper();  // C callees expect clean upper halves

  // Arguments move to their ABI registers. When a source is another argument's destination
  // the moves go through the staging area (a parallel move), else straight.
  bool conflict = false;
  {
    uint32_t written_int = 0, written_float = 0;  // ABI registers assigned so far
    int ni = 0, nf = 0;
    for (uint32_t k = 0; k < n; ++k) {
      const RegInfo& ri = info(args[k]);
      if (is_float(ri.type)) {
        int src = phys_[args[k]];
        if (src < 8 && (written_float >> src & 1)) conflict = true;
        written_float |= 1u << nf++;
      } else {
        const uint8_t src = phys_[args[k]];
        for (int j = 0; j < ni; ++j)
          if ((written_int >> j & 1) && kIntArg[j].id == src) conflict = true;
        written_int |= 1u << ni++;
      }
    }
  }
  int ni = 0, nf = 0;
  if (conflict) {
    for (uint32_t k = 0; k < n; ++k) {
      e_.reserve(32);
      const Mem slot = ptr(rsp, frame_.stage + 8 * int32_t(k));
      if (is_float(info(args[k]).type))
        e_.sse(vop::kMovsdStore, xmm(args[k]).id, slot);
      else
        e_.mov(slot, gp64(args[k]));
    }
    for (uint32_t k = 0; k < n; ++k) {
      e_.reserve(32);
      const Mem slot = ptr(rsp, frame_.stage + 8 * int32_t(k));
      if (is_float(info(args[k]).type))
        e_.sse(vop::kMovsdLoad, uint8_t(nf++), slot);
      else
        e_.mov(kIntArg[ni++], slot);
    }
  } else {
    for (uint32_t k = 0; k < n; ++k) {
      e_.reserve(32);
      if (is_float(info(args[k]).type))
        movaps(x64::xmm(unsigned(nf++)), xmm(args[k]));
      else
        move(kIntArg[ni++], gp64(args[k]));
    }
  }
  e_.reserve(64);
  if (ext) {
    mov_imm(r11, int64_t(reinterpret_cast<uintptr_t>(m_.externs()[size_t(in.imm)].address)));
    e_.mov(eax, nf);  // vector register count, for variadic callees
    e_.call(r11);
  } else {
    e_.call(entry(size_t(in.imm)));
  }

  int32_t result_float_var = -1;
  if (!(in.flags & kVoid)) {
    const Type rt = sig.ret;
    if (is_float(rt)) {
      movaps(xmm(in.dst), xmm0);
      if (info(in.dst).cls == RegClass::Var) result_float_var = info(in.dst).slot;
    } else {
      // C callees may leave the bits above a narrow result undefined: re-extend them.
      const Gp d = gp64(in.dst);
      switch (rt) {
        case Type::I8:
          e_.movsx(d.r32(), al);
          break;
        case Type::U8:
          e_.movzx(d.r32(), al);
          break;
        case Type::I16:
          e_.movsx(d.r32(), ax);
          break;
        case Type::U16:
          e_.movzx(d.r32(), ax);
          break;
        case Type::I32:
        case Type::U32:
          e_.mov(d.r32(), eax);
          break;
        default:
          e_.mov(d, rax);
          break;
      }
    }
  }
  for (int s = 0; s < kFloatVars; ++s)
    if ((keep >> s & 1) && s != result_float_var) e_.reserve(32), restore_float_var(s);
}

// A float-file variable's save slot holds the widest value any variable of the function has.
void X64Emitter::save_float_var(int s) {
  const int32_t w = frame_.save_width;
  const Mem slot = ptr(rsp, frame_.float_save + w * s);
  const Vec v = x64::xmm(unsigned(kFloatVarBase + s));
  if (w == 32)
    e_.vex(vop::kMovdquStore, true, false, v.id, 0, slot);
  else if (w == 16)
    e_.sse(vop::kMovdquStore, v.id, slot);
  else
    e_.sse(vop::kMovsdStore, v.id, slot);
}

void X64Emitter::restore_float_var(int s) {
  const int32_t w = frame_.save_width;
  const Mem slot = ptr(rsp, frame_.float_save + w * s);
  const Vec v = x64::xmm(unsigned(kFloatVarBase + s));
  if (w == 32)
    e_.vex(vop::kMovdquLoad, true, false, v.id, 0, slot);
  else if (w == 16)
    e_.sse(vop::kMovdquLoad, v.id, slot);
  else
    e_.sse(vop::kMovsdLoad, v.id, slot);
}

void X64Emitter::ret(const Insn& in) {
  if (!(in.flags & kVoid)) {
    const Type t = f_->sig.ret;
    if (in.flags & kImm)
      mov_imm(at_width(rax, t), in.imm);
    else if (is_float(t))
      movaps(xmm0, xmm(in.a));
    else
      e_.mov(at_width(rax, t), gp(in.a, t));
  }
  epilogue();
}

}  // namespace exojit::vcode::detail::x64
