// SPDX-License-Identifier: MIT
// The x86-64 emitter: vector instructions (SSE2/SSSE3/SSE4.1 for 128-bit registers, AVX2 for
// 256-bit ones; VEX encodings for both when the CPU has AVX), and crc32c (SSE4.2, or a bitwise
// loop without it). Semantics in interp.h.
#include <array>
#include <bit>
#include <cstring>

#include "emitter_p.h"
#include "exojit/error.h"

namespace exojit::vcode::detail::x64 {

namespace {

int lane_index(Type t) {  // 0..3 for 8..64-bit lanes
  return std::countr_zero(unsigned(lane_bits(t))) - 3;
}

// Per lane width (8, 16, 32, 64 bits). 8-bit lanes shift as 16-bit lanes, then mask off the
// bits that crossed into a neighbour.
constexpr VecOp kAdd[4] = {vop::kPaddb, vop::kPaddw, vop::kPaddd, vop::kPaddq};
constexpr VecOp kSub[4] = {vop::kPsubb, vop::kPsubw, vop::kPsubd, vop::kPsubq};
constexpr VecOp kShl[4] = {vop::kPsllw, vop::kPsllw, vop::kPslld, vop::kPsllq};
constexpr VecOp kShr[4] = {vop::kPsrlw, vop::kPsrlw, vop::kPsrld, vop::kPsrlq};
constexpr VecOp kBroadcast[4] = {vop::kVpbroadcastb, vop::kVpbroadcastw, vop::kVpbroadcastd,
                                 vop::kVpbroadcastq};
// By the source's lane width (8, 16, 32): zero-extension of the low half (pmovzx), and
// interleaving with zero for the high half (128-bit).
constexpr VecOp kMovzx[3] = {vop::kPmovzxbw, vop::kPmovzxwd, vop::kPmovzxdq};
constexpr VecOp kUnpackHi[3] = {vop::kPunpckhbw, vop::kPunpckhwd, vop::kPunpckhdq};

}  // namespace

Vec X64Emitter::vreg(uint32_t r) const {
  return Vec{phys_[r], uint16_t(vector_bits(info(r).type) == 256 ? 256 : 128)};
}

// Checks once per instruction that the CPU (and the options) allow this vector width.
void X64Emitter::require_vectors(Type t, bool needs_ssse3_sse41) {
  if (vector_bits(t) == 256 && !has_avx2_)
    fail("{} registers need AVX2, which {}", type_name(t),
         has_avx_ ? "this CPU lacks" : "is not available (CPU or CompileOptions::use_avx)");
  if (needs_ssse3_sse41 && !has_sse41_)
    fail("this vector instruction needs SSSE3 and SSE4.1, which this CPU lacks");
}

// A 32-byte constant, emitted after the function and addressed RIP-relative.
Mem X64Emitter::constant(const std::array<uint8_t, 32>& bytes) {
  for (const auto& [label, data] : pool_)
    if (data == bytes) return ptr(label);
  pool_.emplace_back(e_.new_label(), bytes);
  return ptr(pool_.back().first);
}

Mem X64Emitter::broadcast_constant(Type t, uint64_t lane_value) {
  std::array<uint8_t, 32> bytes{};
  const int lb = lane_bits(t) / 8;
  for (int i = 0; i < 32 / lb; ++i) std::memcpy(bytes.data() + i * lb, &lane_value, size_t(lb));
  return constant(bytes);
}

// d = a op b: the 3-operand VEX form, or a copy and the 2-operand SSE form.
void X64Emitter::vbin(VecOp op, Vec d, Vec a, Vec b, bool commutative) {
  if (has_avx_) return e_.vex(op, d.bits == 256, false, d.id, a.id, b.id);
  if (b.id == d.id && d.id != a.id) {
    if (commutative) return e_.sse(op, d.id, a.id);
    e_.sse(vop::kMovdqa, xmm15.id, b.id);
    e_.sse(vop::kMovdqa, d.id, a.id);
    return e_.sse(op, d.id, xmm15.id);
  }
  if (d.id != a.id) e_.sse(vop::kMovdqa, d.id, a.id);
  e_.sse(op, d.id, b.id);
}

void X64Emitter::vbin(VecOp op, Vec d, Vec a, const Mem& b) {
  if (has_avx_) return e_.vex(op, d.bits == 256, false, d.id, a.id, b);
  if (d.id != a.id) e_.sse(vop::kMovdqa, d.id, a.id);
  e_.sse(op, d.id, b);
}

void X64Emitter::vshift(VecOp op, Vec d, Vec a, uint8_t count) {
  if (has_avx_) return e_.vex_shift(op, d, a, count);
  if (d.id != a.id) e_.sse(vop::kMovdqa, d.id, a.id);
  e_.sse_shift(op, d, count);
}

void X64Emitter::vmove(Vec d, Vec a) {
  if (d.id == a.id) return;
  if (has_avx_)
    e_.vex(vop::kMovdqa, d.bits == 256, false, d.id, 0, a.id);
  else
    e_.sse(vop::kMovdqa, d.id, a.id);
}

void X64Emitter::vload(Vec d, const Mem& m) {
  if (has_avx_)
    e_.vex(vop::kMovdquLoad, d.bits == 256, false, d.id, 0, m);
  else
    e_.sse(vop::kMovdquLoad, d.id, m);
}

void X64Emitter::vstore(const Mem& m, Vec v) {
  if (has_avx_)
    e_.vex(vop::kMovdquStore, v.bits == 256, false, v.id, 0, m);
  else
    e_.sse(vop::kMovdquStore, v.id, m);
}

void X64Emitter::vector_memory(const Insn& in) {
  if (is_load(in.op))
    vload(vreg(in.dst), mem(in));
  else
    vstore(mem(in), vreg(in.dst));
}

void X64Emitter::vector(const Insn& in) {
  const Type t = in.type;
  require_vectors(t, in.op == Op::Shuf || in.op == Op::Widen || in.op == Op::Splat);
  const Vec d = vreg(in.dst);
  const int k = lane_index(t);
  switch (in.op) {
    case Op::Add:
      return vbin(kAdd[k], d, vreg(in.a), vreg(in.b), true);
    case Op::Sub:
      return vbin(kSub[k], d, vreg(in.a), vreg(in.b), false);
    case Op::And:
      return vbin(vop::kPand, d, vreg(in.a), vreg(in.b), true);
    case Op::Or:
      return vbin(vop::kPor, d, vreg(in.a), vreg(in.b), true);
    case Op::Xor:
      return vbin(vop::kPxor, d, vreg(in.a), vreg(in.b), true);
    case Op::Lsh:
    case Op::Rsh: {
      vshift((in.op == Op::Lsh ? kShl : kShr)[k], d, vreg(in.a), uint8_t(in.imm));
      if (k == 0 && in.imm) {
        uint64_t keep = in.op == Op::Lsh ? (0xffu << in.imm) & 0xff : 0xffu >> in.imm;
        vbin(vop::kPand, d, d, broadcast_constant(t, keep));
      }
      return;
    }
    case Op::Mov:
      return vmove(d, vreg(in.a));
    case Op::Set:
      if (in.imm == 0) return vbin(vop::kPxor, d, d, d, true);
      if (has_avx_)
        return e_.vex(vop::kMovdqa, d.bits == 256, false, d.id, 0,
                      broadcast_constant(t, uint64_t(in.imm)));
      return e_.sse(vop::kMovdqa, d.id, broadcast_constant(t, uint64_t(in.imm)));
    case Op::Splat:
      return splat(in, d, k);
    case Op::Widen: {
      const Vec a = vreg(in.a);
      const int from = k - 1;  // a's lane index
      if (d.bits == 256) {
        if (in.imm == 0) return e_.vex(kMovzx[from], true, false, d.id, 0, a.id);
        e_.vex(vop::kVextracti128, true, false, a.id, 0, xmm15.id, 1);
        return e_.vex(kMovzx[from], true, false, d.id, 0, xmm15.id);
      }
      if (in.imm == 0) {
        if (has_avx_) return e_.vex(kMovzx[from], false, false, d.id, 0, a.id);
        return e_.sse(kMovzx[from], d.id, a.id);
      }
      // High half: interleave with zero.
      vbin(vop::kPxor, xmm15, xmm15, xmm15, true);
      return vbin(kUnpackHi[from], d, a, xmm15, false);
    }
    case Op::Shuf: {
      std::array<uint8_t, 32> pattern{};
      for (int i = 0; i < 32; ++i) pattern[size_t(i)] = (uint64_t(in.imm) >> (4 * (i & 15))) & 15;
      return vbin(vop::kPshufb, d, vreg(in.a), constant(pattern));
    }
    default:
      fail("{} has no vector form", op_name(in.op));
  }
}

void X64Emitter::splat(const Insn& in, Vec d, int k) {
  Gp s = gp64(in.a);
  const Type st = info(in.a).type;
  if (k == 3 && is_signed(st) && type_bits(st) < 64) {  // the lane holds the sign-extended value
    e_.movsxd(r11, s.r32());
    s = r11;
  }
  const Vec low = d.xmm();
  if (has_avx2_) {
    e_.vex(vop::kMovqFromGp, false, true, xmm15.id, 0, s.id);
    return e_.vex(kBroadcast[k], d.bits == 256, false, d.id, 0, xmm15.id);
  }
  e_.sse(vop::kMovqFromGp, low.id, s.id, true);
  switch (k) {
    case 0:  // every byte from byte 0: pshufb with an all-zero index
      e_.sse(vop::kPxor, xmm15.id, xmm15.id);
      return e_.sse(vop::kPshufb, low.id, xmm15.id);
    case 1:
      e_.sse_imm(vop::kPshuflw, low.id, low.id, 0);
      return e_.sse(vop::kPunpcklqdq, low.id, low.id);
    case 2:
      return e_.sse_imm(vop::kPshufd, low.id, low.id, 0);
    default:
      return e_.sse(vop::kPunpcklqdq, low.id, low.id);
  }
}

// Horizontal sum through the frame's vector slot: it runs once per loop, not per element.
void X64Emitter::hsum(const Insn& in) {
  const Type s = info(in.a).type;
  require_vectors(s, false);
  vstore(ptr(rsp, frame_.vector_slot), vreg(in.a));
  const int lb = lane_bits(s) / 8;
  e_.alu(Alu::Xor, eax, eax);
  for (int i = 0; i < lane_count(s); ++i) {
    e_.reserve(32);  // up to 32 lanes: more than one record's room
    const Mem lane = ptr(rsp, frame_.vector_slot + i * lb);
    if (lb == 8) {
      e_.alu(Alu::Add, rax, lane);
      continue;
    }
    if (lb == 4)
      e_.mov(r11d, lane);
    else
      e_.movzx(r11d, lane, 8 * lb);
    e_.alu(Alu::Add, rax, r11);
  }
  const Gp d = gp64(in.dst);
  e_.mov(type_bits(in.type) == 64 ? d : d.r32(), type_bits(in.type) == 64 ? rax : eax);
  normalize(d, in.type);
}

void X64Emitter::crc32c(const Insn& in) {
  const int bits = type_bits(info(in.b).type);
  const Gp d = gp64(in.dst), a = gp64(in.a), b = gp64(in.b);
  if (has_sse42_) {
    const Gp data{b.id, uint8_t(bits)};
    const Gp acc = bits == 64 ? rax : eax;
    if (d.id == b.id && d.id != a.id) {
      e_.mov(eax, a.r32());
      e_.crc32(acc, data);
      e_.mov(d.r32(), eax);
      return;
    }
    if (d.id != a.id) e_.mov(d.r32(), a.r32());
    e_.crc32(bits == 64 ? d : d.r32(), data);
    return;
  }
  // Bitwise: crc ^= data; then one shift-and-conditional-xor per bit (rax: crc, r11: mask,
  // d: the bit counter once a and b have been read).
  e_.mov(eax, a.r32());
  if (bits == 64) {
    e_.alu(Alu::Xor, rax, b);
  } else {
    e_.mov(r11d, b.r32());
    if (bits < 32) e_.alu(Alu::And, r11d, bits == 16 ? 0xffff : 0xff);
    e_.alu(Alu::Xor, rax, r11);
  }
  const Label loop = e_.new_label();
  e_.mov(d.r32(), bits);
  e_.bind(loop);
  e_.mov(r11d, eax);
  e_.alu(Alu::And, r11d, 1);
  e_.neg(r11d);
  e_.alu(Alu::And, r11d, int32_t(0x82f63b78));
  e_.shift(Shift::Shr, rax, 1);
  e_.alu(Alu::Xor, rax, r11);
  e_.dec(d.r32());
  e_.jcc(Cond::NE, loop);
  e_.mov(d.r32(), eax);
}

// The constants of the function just emitted, after its end label (not part of its listing).
void X64Emitter::emit_constant_pool() {
  if (pool_.empty()) return;
  e_.align_data(32);
  for (const auto& [label, data] : pool_) {
    e_.bind(label);
    e_.embed(data.data(), data.size());
  }
  pool_.clear();
}

}  // namespace exojit::vcode::detail::x64
