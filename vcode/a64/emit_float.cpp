// SPDX-License-Identifier: MIT
// The AArch64 emitter: float arithmetic, float constants and conversions between all numeric
// types (the FP unit converts unsigned 64-bit values natively, unlike SSE2).
#include <bit>

#include "emitter_p.h"

namespace exojit::vcode::detail::a64 {

using namespace asmjit;

void A64Emitter::float_binary(const Insn& in) {
  const Vec d = fp(in.dst), a = fp(in.a), b = fp(in.b);
  switch (in.op) {
    case Op::Add:
      a_.fadd(d, a, b);
      break;
    case Op::Sub:
      a_.fsub(d, a, b);
      break;
    case Op::Mul:
      a_.fmul(d, a, b);
      break;
    default:
      a_.fdiv(d, a, b);
      break;
  }
}

void A64Emitter::float_set(const Insn& in) {
  const Type t = in.type;
  uint64_t bits = uint64_t(in.imm);
  if (t == Type::F32) bits = std::bit_cast<uint32_t>(float(std::bit_cast<double>(bits)));
  if (bits == 0) {
    a_.fmov(arm64::d(phys_[in.dst]), arm64::xzr);
    return;
  }
  const Gp s = t == Type::F32 ? Gp(arm64::w(kScratch0)) : Gp(arm64::x(kScratch0));
  mov_imm(s, bits);
  a_.fmov(fp(in.dst), s);
}

void A64Emitter::convert(const Insn& in) {
  const Type t = in.type, s = info(in.a).type;
  if (is_float(t) && is_float(s)) {
    const Vec d = fp(in.dst), a = fp(in.a);
    if (t == s) {
      if (d.id() != a.id()) a_.fmov(d, a);
    } else {
      a_.fcvt(d, a);
    }
    return;
  }
  if (is_float(t)) {
    // Signed sources up to 32 bits are sign-extended in their W register; unsigned ones zero-.
    const Gp a = gp(in.a, s);
    is_signed(s) ? a_.scvtf(fp(in.dst), a) : a_.ucvtf(fp(in.dst), a);
    return;
  }
  if (is_float(s)) {
    // The value must fit in 64 bits (interp.h); then it wraps to the destination's width.
    const Gp d = x(in.dst);
    t == Type::U64 ? a_.fcvtzu(d, fp(in.a)) : a_.fcvtzs(d, fp(in.a));
    if (type_bits(t) < 64) {
      a_.mov(d.w(), d.w());
      normalize(d, t);
    }
    return;
  }
  // Integer to integer: widen from the source's signedness, or truncate to the destination.
  const Gp d = x(in.dst), a = x(in.a);
  if (type_bits(t) == 64) {
    if (type_bits(s) < 64 && is_signed(s))
      a_.sxtw(d, a.w());  // 8/16-bit signed values are already sign-extended to 32 bits
    else if (type_bits(s) < 64)
      a_.mov(d.w(), a.w());
    else if (d.id() != a.id())
      a_.mov(d, a);
    return;
  }
  if (d.id() != a.id() || type_bits(s) == 64) a_.mov(d.w(), a.w());
  // Widening a narrower unsigned value, or a signed value to a signed type, keeps the
  // canonical form as it is; everything else re-extends from the destination's width.
  const bool canonical = type_bits(s) < type_bits(t) ? (!is_signed(s) || is_signed(t)) : s == t;
  if (!canonical) normalize(d, t);
}

}  // namespace exojit::vcode::detail::a64
