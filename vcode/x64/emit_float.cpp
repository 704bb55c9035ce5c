// SPDX-License-Identifier: MIT
// The x86-64 emitter: float arithmetic and conversions between all numeric types (SSE2).
#include <bit>

#include "emitter_p.h"

namespace exojit::vcode::detail::x64 {

void X64Emitter::convert(const Insn& in) {
  const Type t = in.type, s = info(in.a).type;
  if (is_float(t) && is_float(s)) {
    const Vec d = xmm(in.dst), a = xmm(in.a);
    if (t == s)
      movaps(d, a);
    else
      e_.sse(t == Type::F64 ? vop::kCvtss2sd : vop::kCvtsd2ss, d.id, a.id);
    return;
  }
  if (is_float(t)) return int_to_float(in, t, s);
  if (is_float(s)) return float_to_int(in, t, s);
  // Integer to integer: widen from the source's signedness, or truncate to the destination.
  const Gp d = gp64(in.dst), a = gp64(in.a);
  if (type_bits(t) == 64) {
    switch (s) {
      case Type::I32:
      case Type::I8:
      case Type::I16:  // 8/16-bit signed values are already 32-bit signed
        e_.movsxd(d, a.r32());
        break;
      case Type::U32:
        e_.mov(d.r32(), a.r32());
        break;
      default:
        move(d, a);
    }
    return;
  }
  if (d != a || type_bits(s) == 64) e_.mov(d.r32(), a.r32());
  // Widening a narrower unsigned value, or a signed value to a signed type, keeps the
  // canonical form as it is; everything else re-extends from the destination's width.
  const bool canonical = type_bits(s) < type_bits(t) ? (!is_signed(s) || is_signed(t)) : s == t;
  if (!canonical) normalize(d, t);
}

void X64Emitter::int_to_float(const Insn& in, Type t, Type s) {
  const Vec d = xmm(in.dst);
  const Gp a = gp64(in.a);
  const VecOp cvtsi2 = t == Type::F32 ? vop::kCvtsi2ss : vop::kCvtsi2sd;
  auto cvt = [&](Gp src) {
    e_.sse(vop::kXorps, d.id, d.id);  // break the dependency on d's old value
    e_.sse(cvtsi2, d.id, src.id, true);
  };
  if (s == Type::U64 || s == Type::P) {
    // Unsigned 64-bit: halve (keeping the low bit for rounding) when the top bit is set.
    const Label big = e_.new_label(), done = e_.new_label();
    e_.test(a, a);
    e_.jcc(Cond::S, big);
    cvt(a);
    e_.jmp(done);
    e_.bind(big);
    e_.mov(rax, a);
    e_.mov(r11, a);
    e_.shift(Shift::Shr, rax, 1);
    e_.alu(Alu::And, r11d, 1);
    e_.alu(Alu::Or, rax, r11);
    cvt(rax);
    e_.sse(t == Type::F32 ? vop::kAddss : vop::kAddsd, d.id, d.id);
    e_.bind(done);
    return;
  }
  if (s == Type::I64) return cvt(a);
  // 8/16/32-bit sources are canonical in 32 bits: signed ones sign-extended, so widen to 64.
  if (is_signed(s))
    e_.movsxd(rax, a.r32());
  else
    e_.mov(eax, a.r32());
  cvt(rax);
}

void X64Emitter::float_to_int(const Insn& in, Type t, Type s) {
  const Vec a = xmm(in.a);
  const Gp d = gp64(in.dst);
  const bool single = s == Type::F32;
  auto cvt = [&](Gp dst, Vec src) {
    e_.sse(single ? vop::kCvttss2si : vop::kCvttsd2si, dst.id, src.id, true);
  };
  if (t == Type::U64) {
    // Values >= 2^63 are converted after subtracting 2^63, then the top bit is set back.
    const Label big = e_.new_label(), done = e_.new_label();
    mov_imm(r11, single ? int64_t(0x5f000000) : int64_t(0x43e0000000000000));
    e_.sse(vop::kMovqFromGp, xmm15.id, r11.id, true);
    e_.sse(single ? vop::kUcomiss : vop::kUcomisd, a.id, xmm15.id);
    e_.jcc(Cond::AE, big);
    cvt(d, a);
    e_.jmp(done);
    e_.bind(big);
    // a - 2^63 is exact here; compute 2^63 - a (xmm15 holds 2^63), convert, negate.
    e_.sse(single ? vop::kSubss : vop::kSubsd, xmm15.id, a.id);
    cvt(d, xmm15);
    e_.neg(d);
    e_.btc(d, 63);
    e_.bind(done);
    return;
  }
  cvt(d, a);
  if (type_bits(t) < 64) {
    e_.mov(d.r32(), d.r32());
    normalize(d, t);
  }
}

void X64Emitter::float_binary(const Insn& in) {
  const Type t = in.type;
  const Vec d = xmm(in.dst), a = xmm(in.a), b = xmm(in.b);
  const bool single = t == Type::F32;
  VecOp op;
  switch (in.op) {
    case Op::Add:
      op = single ? vop::kAddss : vop::kAddsd;
      break;
    case Op::Sub:
      op = single ? vop::kSubss : vop::kSubsd;
      break;
    case Op::Mul:
      op = single ? vop::kMulss : vop::kMulsd;
      break;
    default:
      op = single ? vop::kDivss : vop::kDivsd;
      break;
  }
  const bool commutative = has_flag(in.op, kOpCommutative);
  if (d == a) {
    e_.sse(op, d.id, b.id);
  } else if (d == b && commutative) {
    e_.sse(op, d.id, a.id);
  } else if (d == b) {
    movaps(xmm15, b);
    movaps(d, a);
    e_.sse(op, d.id, xmm15.id);
  } else {
    movaps(d, a);
    e_.sse(op, d.id, b.id);
  }
}

}  // namespace exojit::vcode::detail::x64
