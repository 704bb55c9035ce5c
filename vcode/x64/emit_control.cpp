// The x86-64 emitter: compare-and-branch, calls (SysV ABI) and returns.
#include "emitter.h"

namespace exojit::vcode::detail::x64 {

using namespace asmjit;

void X64Emitter::branch(const Insn& in) {
  Type t = in.type;
  const AsmLabel& target = labels_[in.dst];
  if (is_float(t)) {
    // ucomis sets CF for "below or unordered", ZF for "equal or unordered", PF for unordered;
    // swapping the operands turns < and <= into > and >=, which are false on NaN.
    Xmm a = xmm(in.a), b = xmm(in.b);
    bool single = t == Type::F32;
    auto ucom = [&](const Xmm& x, const Xmm& y) { single ? a_.ucomiss(x, y) : a_.ucomisd(x, y); };
    switch (in.op) {
      case Op::Blt:
        ucom(b, a);
        a_.ja(target);
        return;
      case Op::Ble:
        ucom(b, a);
        a_.jae(target);
        return;
      case Op::Bgt:
        ucom(a, b);
        a_.ja(target);
        return;
      case Op::Bge:
        ucom(a, b);
        a_.jae(target);
        return;
      case Op::Beq: {
        AsmLabel skip = a_.newLabel();
        ucom(a, b);
        a_.jp(skip);
        a_.je(target);
        a_.bind(skip);
        return;
      }
      default:
        ucom(a, b);
        a_.jp(target);
        a_.jne(target);
        return;
    }
  }
  Gp a = gp(in.a, t);
  const bool w = type_bits(t) == 64;
  const bool zero_test = (in.flags & kImm) && in.imm == 0 && (in.op == Op::Beq || in.op == Op::Bne);
  if (!(in.flags & kImm)) {
    if (a_.room())
      a_.rr(0x39, phys_[in.a], phys_[in.b], w);
    else
      a_.cmp(a, gp(in.b, t));
  } else if (zero_test) {
    if (a_.room())
      a_.rr(0x85, phys_[in.a], phys_[in.a], w);
    else
      a_.test(a, a);
  } else if (!w || fits32(in.imm)) {
    if (a_.room())
      a_.ri(FastAssembler::kCmp, phys_[in.a], int32_t(in.imm), w);
    else
      a_.cmp(a, int32_t(in.imm));
  } else {
    mov_imm(x86::r11, in.imm);
    a_.cmp(a, x86::r11);
  }
  bool s = is_signed(t);
  switch (in.op) {
    case Op::Blt:
      s ? a_.jl(target) : a_.jb(target);
      break;
    case Op::Ble:
      s ? a_.jle(target) : a_.jbe(target);
      break;
    case Op::Bgt:
      s ? a_.jg(target) : a_.ja(target);
      break;
    case Op::Bge:
      s ? a_.jge(target) : a_.jae(target);
      break;
    case Op::Beq:
      a_.je(target);
      break;
    default:
      a_.jne(target);
      break;
  }
}

void X64Emitter::call(const Insn& in) {
  const bool ext = in.flags & kExtern;
  const Signature& sig =
      ext ? m_.externs()[size_t(in.imm)].sig : m_.functions()[size_t(in.imm)]->sig;
  const uint32_t* args = f_->call_args.data() + in.a;
  const uint32_t n = in.b;

  // Float variables live in caller-saved xmm registers: save them around the call.
  uint32_t keep = frame_.float_vars_used;
  for (int s = 0; s < kFloatVars; ++s)
    if (keep >> s & 1) save_float_var(s);
  if (frame_.uses_ymm) a_.vzeroupper();  // C callees expect clean upper halves

  // Arguments move to their ABI registers. When a source is another argument's destination
  // the moves go through the staging area (a parallel move), else straight.
  bool conflict = false;
  uint32_t written_int = 0, written_float = 0;  // ABI registers assigned so far
  {
    int ni = 0, nf = 0;
    for (uint32_t k = 0; k < n; ++k) {
      const RegInfo& ri = info(args[k]);
      if (is_float(ri.type)) {
        int src = ri.cls == RegClass::Temp ? ri.slot : kFloatVarBase + ri.slot;
        if (src < 8 && (written_float >> src & 1)) conflict = true;
        written_float |= 1u << nf++;
      } else {
        Gp src = gp64(args[k]);
        for (int j = 0; j < ni; ++j)
          if (written_int >> j & 1 && kIntArg[j].id() == src.id()) conflict = true;
        written_int |= 1u << ni++;
      }
    }
  }
  int ni = 0, nf = 0;
  if (conflict) {
    for (uint32_t k = 0; k < n; ++k) {
      Mem slot = x86::qword_ptr(x86::rsp, frame_.stage + 8 * int32_t(k));
      if (is_float(info(args[k]).type))
        a_.movsd(slot, xmm(args[k]));
      else
        a_.mov(slot, gp64(args[k]));
    }
    for (uint32_t k = 0; k < n; ++k) {
      Mem slot = x86::qword_ptr(x86::rsp, frame_.stage + 8 * int32_t(k));
      if (is_float(info(args[k]).type))
        a_.movsd(x86::xmm(nf++), slot);
      else
        a_.mov(kIntArg[ni++], slot);
    }
  } else {
    for (uint32_t k = 0; k < n; ++k) {
      if (is_float(info(args[k]).type)) {
        Xmm dst = x86::xmm(nf++);
        if (dst != xmm(args[k])) a_.movaps(dst, xmm(args[k]));
      } else {
        Gp dst = kIntArg[ni++];
        if (dst.id() != gp64(args[k]).id()) a_.mov(dst, gp64(args[k]));
      }
    }
  }
  if (ext) {
    a_.mov(x86::r11, reinterpret_cast<uint64_t>(m_.externs()[size_t(in.imm)].address));
    a_.mov(x86::eax, nf);  // vector register count, for variadic callees
    a_.call(x86::r11);
  } else {
    a_.call(entries_[size_t(in.imm)].begin);
  }

  int32_t result_float_var = -1;
  if (!(in.flags & kVoid)) {
    Type rt = sig.ret;
    if (is_float(rt)) {
      Xmm d = xmm(in.dst);
      if (d != x86::xmm0) a_.movaps(d, x86::xmm0);
      if (info(in.dst).cls == RegClass::Var) result_float_var = info(in.dst).slot;
    } else {
      // C callees may leave the bits above a narrow result undefined: re-extend them.
      Gp d = gp64(in.dst);
      switch (rt) {
        case Type::I8:
          a_.movsx(d.r32(), x86::al);
          break;
        case Type::U8:
          a_.movzx(d.r32(), x86::al);
          break;
        case Type::I16:
          a_.movsx(d.r32(), x86::ax);
          break;
        case Type::U16:
          a_.movzx(d.r32(), x86::ax);
          break;
        case Type::I32:
        case Type::U32:
          a_.mov(d.r32(), x86::eax);
          break;
        default:
          a_.mov(d, x86::rax);
          break;
      }
    }
  }
  for (int s = 0; s < kFloatVars; ++s)
    if ((keep >> s & 1) && s != result_float_var) restore_float_var(s);
}

// A float-file variable's save slot holds the widest value any variable of the function has.
void X64Emitter::save_float_var(int s) {
  const int32_t w = frame_.save_width;
  Mem slot = x86::ptr(x86::rsp, frame_.float_save + w * s, uint32_t(w));
  if (w == 32)
    a_.vmovdqu(slot, x86::ymm(kFloatVarBase + s));
  else if (w == 16)
    a_.movdqu(slot, x86::xmm(kFloatVarBase + s));
  else
    a_.movsd(slot, x86::xmm(kFloatVarBase + s));
}

void X64Emitter::restore_float_var(int s) {
  const int32_t w = frame_.save_width;
  Mem slot = x86::ptr(x86::rsp, frame_.float_save + w * s, uint32_t(w));
  if (w == 32)
    a_.vmovdqu(x86::ymm(kFloatVarBase + s), slot);
  else if (w == 16)
    a_.movdqu(x86::xmm(kFloatVarBase + s), slot);
  else
    a_.movsd(x86::xmm(kFloatVarBase + s), slot);
}

void X64Emitter::ret(const Insn& in) {
  if (!(in.flags & kVoid)) {
    Type t = f_->sig.ret;
    if (in.flags & kImm) {
      mov_imm(type_bits(t) == 64 ? Gp(x86::rax) : Gp(x86::eax), in.imm);
    } else if (is_float(t)) {
      if (xmm(in.a) != x86::xmm0) a_.movaps(x86::xmm0, xmm(in.a));
    } else {
      a_.mov(at_width(x86::rax, t), gp(in.a, t));
    }
  }
  epilogue();
}

}  // namespace exojit::vcode::detail::x64
