// SPDX-License-Identifier: MIT
// The AArch64 emitter: 128-bit vector instructions (NEON, part of every AArch64 CPU) and crc32c
// (the CRC32C instructions, the same reflected CRC-32C as x86's crc32). Semantics in interp.h.
#include <array>
#include <bit>

#include "emitter_p.h"
#include "exojit/error.h"

namespace exojit::vcode::detail::a64 {

using namespace asmjit;

namespace {

int lane_index(Type t) {  // 0..3 for 8..64-bit lanes
  return std::countr_zero(unsigned(lane_bits(t))) - 3;
}

// The register with the arrangement of a full 128-bit register of lanes k: 16b, 8h, 4s, 2d.
Vec full(const Vec& r, int k) {
  switch (k) {
    case 0:
      return r.b16();
    case 1:
      return r.h8();
    case 2:
      return r.s4();
    default:
      return r.d2();
  }
}

// The low 64 bits with lanes k: 8b, 4h, 2s.
Vec half(const Vec& r, int k) {
  switch (k) {
    case 0:
      return r.b8();
    case 1:
      return r.h4();
    default:
      return r.s2();
  }
}

}  // namespace

void A64Emitter::vector(const Insn& in) {
  const Type t = in.type;
  const int k = lane_index(t);
  const Vec d = q(in.dst);
  switch (in.op) {
    case Op::Add:
      a_.add(full(d, k), full(q(in.a), k), full(q(in.b), k));
      return;
    case Op::Sub:
      a_.sub(full(d, k), full(q(in.a), k), full(q(in.b), k));
      return;
    case Op::And:
      a_.and_(d.b16(), q(in.a).b16(), q(in.b).b16());
      return;
    case Op::Or:
      a_.orr(d.b16(), q(in.a).b16(), q(in.b).b16());
      return;
    case Op::Xor:
      a_.eor(d.b16(), q(in.a).b16(), q(in.b).b16());
      return;
    case Op::Lsh:
      a_.shl(full(d, k), full(q(in.a), k), Imm(in.imm));
      return;
    case Op::Rsh:  // ushr takes counts 1..lane width; a count of 0 is a move
      if (in.imm == 0) {
        if (d.id() != q(in.a).id()) a_.mov(d.b16(), q(in.a).b16());
      } else {
        a_.ushr(full(d, k), full(q(in.a), k), Imm(in.imm));
      }
      return;
    case Op::Mov:
      if (d.id() != q(in.a).id()) a_.mov(d.b16(), q(in.a).b16());
      return;
    case Op::Set:
      return vector_set(in, d);
    case Op::Splat: {
      const Type s = info(in.a).type;
      if (k < 3) {
        a_.dup(full(d, k), gp(in.a, Type::U32));
      } else if (type_bits(s) < 64 && is_signed(s)) {  // the lane holds the sign-extended value
        a_.sxtw(arm64::x(kScratch0), gp(in.a, Type::U32));
        a_.dup(full(d, k), arm64::x(kScratch0));
      } else {
        a_.dup(full(d, k), x(in.a));
      }
      return;
    }
    case Op::Widen:  // zero-extend the low or high half: ushll / ushll2 by 0
      if (in.imm == 0)
        a_.ushll(full(d, k), half(q(in.a), k - 1), Imm(0));
      else
        a_.ushll2(full(d, k), full(q(in.a), k - 1), Imm(0));
      return;
    case Op::Shuf: {  // tbl with the byte indices from the constant pool
      std::array<uint8_t, 16> pattern{};
      for (int i = 0; i < 16; ++i) pattern[size_t(i)] = (uint64_t(in.imm) >> (4 * i)) & 15;
      const Vec idx = arm64::v(kVScratch0);
      a_.ldr(arm64::v(kVScratch0), arm64::ptr(constant(pattern)));
      a_.tbl(d.b16(), q(in.a).b16(), idx.b16());
      return;
    }
    default:
      fail("{} has no vector form", op_name(in.op));
  }
}

// Every lane = the immediate truncated to the lane: a zero register, or dup of a scalar.
void A64Emitter::vector_set(const Insn& in, const Vec& d) {
  const int k = lane_index(in.type);
  const uint64_t lane = lane_bits(in.type) == 64
                            ? uint64_t(in.imm)
                            : uint64_t(in.imm) & ((uint64_t(1) << lane_bits(in.type)) - 1);
  if (lane == 0) {
    a_.eor(d.b16(), d.b16(), d.b16());
    return;
  }
  const Gp s = k == 3 ? Gp(arm64::x(kScratch0)) : Gp(arm64::w(kScratch0));
  mov_imm(s, lane);
  a_.dup(full(d, k), s);
}

// The exact sum of the lanes (uaddlv widens, so nothing wraps below 64 bits), then truncated to
// the destination's width.
void A64Emitter::hsum(const Insn& in) {
  const Type s = info(in.a).type;
  const int k = lane_index(s);
  const Vec a = q(in.a), acc = arm64::v(kVScratch0);
  switch (k) {
    case 0:
      a_.uaddlv(acc.h(), a.b16());
      a_.fmov(arm64::w(kScratch0), acc.s());
      break;
    case 1:
      a_.uaddlv(acc.s(), a.h8());
      a_.fmov(arm64::w(kScratch0), acc.s());
      break;
    case 2:
      a_.uaddlv(acc.d(), a.s4());
      a_.fmov(arm64::x(kScratch0), acc.d());
      break;
    default:
      a_.addp(acc.d(), a.d2());
      a_.fmov(arm64::x(kScratch0), acc.d());
      break;
  }
  const Type t = in.type;
  a_.mov(gp(in.dst, t), at_width(kScratch0, t));
  normalize(gp(in.dst, t), t);
}

void A64Emitter::crc32c(const Insn& in) {
  if (!has_crc32_) fail("crc32c needs the CRC32 instructions, which this CPU lacks");
  const int bits = type_bits(info(in.b).type);
  const Gp d = gp(in.dst, Type::U32), a = gp(in.a, Type::U32);
  switch (bits) {
    case 8:
      a_.crc32cb(d, a, gp(in.b, Type::U32));
      break;
    case 16:
      a_.crc32ch(d, a, gp(in.b, Type::U32));
      break;
    case 32:
      a_.crc32cw(d, a, gp(in.b, Type::U32));
      break;
    default:
      a_.crc32cx(d, a, x(in.b));
      break;
  }
}

// A 16-byte constant, emitted after the function and loaded PC-relative.
AsmLabel A64Emitter::constant(const std::array<uint8_t, 16>& bytes) {
  for (const auto& [label, data] : pool_)
    if (data == bytes) return label;
  pool_.emplace_back(a_.newLabel(), bytes);
  return pool_.back().first;
}

// The constants of the function just emitted, after its end label (not part of its listing).
void A64Emitter::emit_constant_pool() {
  if (pool_.empty()) return;
  a_.align(AlignMode::kData, 16);
  for (const auto& [label, data] : pool_) {
    a_.bind(label);
    a_.embed(data.data(), data.size());
  }
  pool_.clear();
}

}  // namespace exojit::vcode::detail::a64
