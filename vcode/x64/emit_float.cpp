// The x86-64 emitter: float arithmetic and conversions between all numeric types (SSE2).
#include <bit>

#include "emitter.h"

namespace exojit::vcode::detail::x64 {

using namespace asmjit;

void X64Emitter::convert(const Insn& in) {
  Type t = in.type, s = info(in.a).type;
  if (is_float(t) && is_float(s)) {
    Xmm d = xmm(in.dst), a = xmm(in.a);
    if (t == s) {
      if (d != a) a_.movaps(d, a);
    } else if (t == Type::F64) {
      a_.cvtss2sd(d, a);
    } else {
      a_.cvtsd2ss(d, a);
    }
    return;
  }
  if (is_float(t)) return int_to_float(in, t, s);
  if (is_float(s)) return float_to_int(in, t, s);
  // Integer to integer: widen from the source's signedness, or truncate to the destination.
  Gp d = gp64(in.dst), a = gp64(in.a);
  if (type_bits(t) == 64) {
    switch (s) {
      case Type::I32:
        a_.movsxd(d, a.r32());
        break;
      case Type::U32:
        a_.mov(d.r32(), a.r32());
        break;
      case Type::I8:
      case Type::I16:
        a_.movsxd(d, a.r32());
        break;  // already 32-bit signed
      default:
        if (d != a) a_.mov(d, a);
    }
    return;
  }
  if (d != a || type_bits(s) == 64) a_.mov(d.r32(), a.r32());
  // Widening a narrower unsigned value, or a signed value to a signed type, keeps the
  // canonical form as it is; everything else re-extends from the destination's width.
  bool canonical = type_bits(s) < type_bits(t) ? (!is_signed(s) || is_signed(t)) : s == t;
  if (!canonical) normalize(d, t);
}

void X64Emitter::int_to_float(const Insn& in, Type t, Type s) {
  Xmm d = xmm(in.dst);
  Gp a = gp64(in.a);
  bool single = t == Type::F32;
  auto cvt = [&](const Gp& src) {
    a_.xorps(d, d);  // break the dependency on d's old value
    single ? a_.cvtsi2ss(d, src) : a_.cvtsi2sd(d, src);
  };
  if (s == Type::U64 || s == Type::P) {
    // Unsigned 64-bit: halve (keeping the low bit for rounding) when the top bit is set.
    AsmLabel big = a_.newLabel(), done = a_.newLabel();
    a_.test(a, a);
    a_.js(big);
    cvt(a);
    a_.jmp(done);
    a_.bind(big);
    a_.mov(x86::rax, a);
    a_.mov(x86::r11, a);
    a_.shr(x86::rax, 1);
    a_.and_(x86::r11d, 1);
    a_.or_(x86::rax, x86::r11);
    cvt(x86::rax);
    single ? a_.addss(d, d) : a_.addsd(d, d);
    a_.bind(done);
    return;
  }
  if (s == Type::I64) return cvt(a);
  // 8/16/32-bit sources are canonical in 32 bits: signed ones sign-extended, so widen to 64.
  if (is_signed(s))
    a_.movsxd(x86::rax, a.r32());
  else
    a_.mov(x86::eax, a.r32());
  cvt(x86::rax);
}

void X64Emitter::float_to_int(const Insn& in, Type t, Type s) {
  Xmm a = xmm(in.a);
  Gp d = gp64(in.dst);
  bool single = s == Type::F32;
  auto cvt = [&](const Gp& dst, const Xmm& src) {
    single ? a_.cvttss2si(dst, src) : a_.cvttsd2si(dst, src);
  };
  if (t == Type::U64) {
    // Values >= 2^63 are converted after subtracting 2^63, then the top bit is set back.
    AsmLabel big = a_.newLabel(), done = a_.newLabel();
    mov_imm(x86::r11, single ? int64_t(0x5f000000) : int64_t(0x43e0000000000000));
    a_.movq(x86::xmm15, x86::r11);
    single ? a_.ucomiss(a, x86::xmm15) : a_.ucomisd(a, x86::xmm15);
    a_.jae(big);
    cvt(d, a);
    a_.jmp(done);
    a_.bind(big);
    // a - 2^63 is exact here; compute 2^63 - a (xmm15 holds 2^63), convert, negate.
    single ? a_.subss(x86::xmm15, a) : a_.subsd(x86::xmm15, a);
    cvt(d, x86::xmm15);
    a_.neg(d);
    a_.btc(d, 63);
    a_.bind(done);
    return;
  }
  cvt(d, a);
  if (type_bits(t) < 64) {
    a_.mov(d.r32(), d.r32());
    normalize(d, t);
  }
}

void X64Emitter::float_binary(const Insn& in) {
  Type t = in.type;
  Xmm d = xmm(in.dst), a = xmm(in.a), b = xmm(in.b);
  bool single = t == Type::F32;
  auto op = [&](const Xmm& x, const Xmm& y) {
    switch (in.op) {
      case Op::Add:
        single ? a_.addss(x, y) : a_.addsd(x, y);
        break;
      case Op::Sub:
        single ? a_.subss(x, y) : a_.subsd(x, y);
        break;
      case Op::Mul:
        single ? a_.mulss(x, y) : a_.mulsd(x, y);
        break;
      default:
        single ? a_.divss(x, y) : a_.divsd(x, y);
        break;
    }
  };
  bool commutative = in.op == Op::Add || in.op == Op::Mul;
  if (d == a) {
    op(d, b);
  } else if (d == b && commutative) {
    op(d, a);
  } else if (d == b) {
    a_.movaps(x86::xmm15, b);
    a_.movaps(d, a);
    op(d, x86::xmm15);
  } else {
    a_.movaps(d, a);
    op(d, b);
  }
}

}  // namespace exojit::vcode::detail::x64
