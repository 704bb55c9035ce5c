// SPDX-License-Identifier: MIT
// The AArch64 emitter: compare-and-branch, calls (AAPCS64) and returns.
#include "emitter_p.h"

namespace exojit::vcode::detail::a64 {

using namespace asmjit;
using arm64::CondCode;

// cmp a, #v: a 12-bit immediate (optionally shifted), its negation (cmn), or through x16.
void A64Emitter::compare_imm(const Gp& a, int64_t v) {
  if (!a.isGpX()) v = int32_t(v);
  uint64_t mag = v < 0 ? uint64_t(0) - uint64_t(v) : uint64_t(v);
  if (mag < 4096) {
    v < 0 ? a_.cmn(a, Imm(mag)) : a_.cmp(a, Imm(mag));
    return;
  }
  const Gp s = a.isGpX() ? Gp(arm64::x(kScratch0)) : Gp(arm64::w(kScratch0));
  mov_imm(s, uint64_t(v));
  a_.cmp(a, s);
}

void A64Emitter::branch(const Insn& in) {
  const Type t = in.type;
  const AsmLabel target = label(in.dst);
  if (is_float(t)) {
    // After fcmp, "unordered" sets C and V: mi, ls, gt, ge and eq are false on NaN, ne true.
    a_.fcmp(fp(in.a), fp(in.b));
    static constexpr CondCode kCond[6] = {CondCode::kMI, CondCode::kLS, CondCode::kGT,
                                          CondCode::kGE, CondCode::kEQ, CondCode::kNE};
    a_.b(kCond[unsigned(in.op) - unsigned(Op::Blt)], target);
    return;
  }
  const Gp a = gp(in.a, t);
  if (in.flags & kImm) {
    if (in.imm == 0 && (in.op == Op::Beq || in.op == Op::Bne)) {
      in.op == Op::Beq ? a_.cbz(a, target) : a_.cbnz(a, target);
      return;
    }
    compare_imm(a, in.imm);
  } else {
    a_.cmp(a, gp(in.b, t));
  }
  const bool s = is_signed(t);
  CondCode cc;
  switch (in.op) {
    case Op::Blt:
      cc = s ? CondCode::kLT : CondCode::kLO;
      break;
    case Op::Ble:
      cc = s ? CondCode::kLE : CondCode::kLS;
      break;
    case Op::Bgt:
      cc = s ? CondCode::kGT : CondCode::kHI;
      break;
    case Op::Bge:
      cc = s ? CondCode::kGE : CondCode::kHS;
      break;
    case Op::Beq:
      cc = CondCode::kEQ;
      break;
    default:
      cc = CondCode::kNE;
      break;
  }
  a_.b(cc, target);
}

void A64Emitter::call(const Insn& in) {
  const bool ext = in.flags & kExtern;
  const Signature& sig =
      ext ? m_.externs()[size_t(in.imm)].sig : m_.functions()[size_t(in.imm)]->sig;
  const uint32_t* args = f_->call_args.data() + in.a;
  const uint32_t n = in.b;

  // The callee keeps only the low halves of v8-v15: vector variables are saved whole.
  const uint32_t keep = frame_.save_vectors ? frame_.float_vars_used : 0;
  for (int s = 0; s < kFloatVars; ++s)
    if (keep >> s & 1)
      a_.str(arm64::v(kFloatVarBase + uint32_t(s)),
             arm64::ptr(arm64::sp, frame_.vector_save + 16 * s));

  // Arguments move to x0-x5 / v0-v3. When a source is another argument's destination the moves
  // go through the staging area (a parallel move), else straight.
  bool conflict = false;
  {
    uint32_t written_int = 0, written_float = 0;
    int ni = 0, nf = 0;
    for (uint32_t k = 0; k < n; ++k) {
      const uint32_t src = phys_[args[k]];
      if (is_float(info(args[k]).type)) {
        if (src < 32 && (written_float >> src & 1)) conflict = true;
        written_float |= 1u << nf++;
      } else {
        if (src < 32 && (written_int >> src & 1)) conflict = true;
        written_int |= 1u << ni++;
      }
    }
  }
  int ni = 0, nf = 0;
  if (conflict) {
    for (uint32_t k = 0; k < n; ++k) {
      Mem slot = arm64::ptr(arm64::sp, frame_.stage + 8 * int32_t(k));
      is_float(info(args[k]).type) ? a_.str(arm64::d(phys_[args[k]]), slot)
                                   : a_.str(x(args[k]), slot);
    }
    for (uint32_t k = 0; k < n; ++k) {
      Mem slot = arm64::ptr(arm64::sp, frame_.stage + 8 * int32_t(k));
      is_float(info(args[k]).type) ? a_.ldr(arm64::d(uint32_t(nf++)), slot)
                                   : a_.ldr(arm64::x(uint32_t(ni++)), slot);
    }
  } else {
    for (uint32_t k = 0; k < n; ++k) {
      const uint32_t src = phys_[args[k]];
      if (is_float(info(args[k]).type)) {
        const uint32_t dst = uint32_t(nf++);
        if (dst != src) a_.fmov(arm64::d(dst), arm64::d(src));
      } else {
        const uint32_t dst = uint32_t(ni++);
        if (dst != src) a_.mov(arm64::x(dst), arm64::x(src));
      }
    }
  }
  if (ext) {
    mov_imm(arm64::x(kScratch0), reinterpret_cast<uint64_t>(m_.externs()[size_t(in.imm)].address));
    a_.blr(arm64::x(kScratch0));
  } else {
    a_.bl(entry(size_t(in.imm)));
  }

  int32_t result_float_var = -1;
  if (!(in.flags & kVoid)) {
    const Type rt = sig.ret;
    if (is_float(rt)) {
      if (phys_[in.dst] != 0)
        a_.fmov(fp(in.dst), rt == Type::F32 ? Vec(arm64::s0) : Vec(arm64::d0));
      if (info(in.dst).cls == RegClass::Var) result_float_var = info(in.dst).slot;
    } else {
      // C callees may leave the bits above a narrow result undefined: re-extend them.
      const Gp d = x(in.dst);
      switch (rt) {
        case Type::I8:
          a_.sxtb(d.w(), arm64::w0);
          break;
        case Type::U8:
          a_.uxtb(d.w(), arm64::w0);
          break;
        case Type::I16:
          a_.sxth(d.w(), arm64::w0);
          break;
        case Type::U16:
          a_.uxth(d.w(), arm64::w0);
          break;
        case Type::I32:
        case Type::U32:
          a_.mov(d.w(), arm64::w0);
          break;
        default:
          if (d.id() != 0) a_.mov(d, arm64::x0);
          break;
      }
    }
  }
  for (int s = 0; s < kFloatVars; ++s)
    if ((keep >> s & 1) && s != result_float_var)
      a_.ldr(arm64::v(kFloatVarBase + uint32_t(s)),
             arm64::ptr(arm64::sp, frame_.vector_save + 16 * s));
}

void A64Emitter::ret(const Insn& in) {
  if (!(in.flags & kVoid)) {
    const Type t = f_->sig.ret;
    if (in.flags & kImm) {
      mov_imm(at_width(0, t), uint64_t(in.imm));
    } else if (is_float(t)) {
      if (phys_[in.a] != 0) a_.fmov(t == Type::F32 ? Vec(arm64::s0) : Vec(arm64::d0), fp(in.a));
    } else if (phys_[in.a] != 0) {
      a_.mov(at_width(0, t), gp(in.a, t));
    }
  }
  epilogue();
}

}  // namespace exojit::vcode::detail::a64
