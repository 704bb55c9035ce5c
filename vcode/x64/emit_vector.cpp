// The x86-64 emitter: vector instructions (SSE2/SSSE3/SSE4.1 for 128-bit registers, AVX2 for
// 256-bit ones; VEX encodings for both when the CPU has AVX), and crc32c (SSE4.2, or a bitwise
// loop without it). Semantics in interp.h.
#include <array>
#include <cstring>

#include "emitter.h"
#include "exojit/error.h"

namespace exojit::vcode::detail::x64 {

using namespace asmjit;
using Id = x86::Inst::Id;

namespace {

int lane_index(Type t) {  // 0..3 for 8..64-bit lanes
  return std::countr_zero(unsigned(lane_bits(t))) - 3;
}

// {legacy SSE, VEX} instruction per lane width, for the lane-wise operations.
struct LaneInsn {
  Id sse[4];
  Id vex[4];
};
constexpr LaneInsn kAdd = {
    {x86::Inst::kIdPaddb, x86::Inst::kIdPaddw, x86::Inst::kIdPaddd, x86::Inst::kIdPaddq},
    {x86::Inst::kIdVpaddb, x86::Inst::kIdVpaddw, x86::Inst::kIdVpaddd, x86::Inst::kIdVpaddq}};
constexpr LaneInsn kSub = {
    {x86::Inst::kIdPsubb, x86::Inst::kIdPsubw, x86::Inst::kIdPsubd, x86::Inst::kIdPsubq},
    {x86::Inst::kIdVpsubb, x86::Inst::kIdVpsubw, x86::Inst::kIdVpsubd, x86::Inst::kIdVpsubq}};
// 8-bit lanes shift as 16-bit lanes, then mask off the bits that crossed into a neighbour.
constexpr LaneInsn kShl = {
    {x86::Inst::kIdPsllw, x86::Inst::kIdPsllw, x86::Inst::kIdPslld, x86::Inst::kIdPsllq},
    {x86::Inst::kIdVpsllw, x86::Inst::kIdVpsllw, x86::Inst::kIdVpslld, x86::Inst::kIdVpsllq}};
constexpr LaneInsn kShr = {
    {x86::Inst::kIdPsrlw, x86::Inst::kIdPsrlw, x86::Inst::kIdPsrld, x86::Inst::kIdPsrlq},
    {x86::Inst::kIdVpsrlw, x86::Inst::kIdVpsrlw, x86::Inst::kIdVpsrld, x86::Inst::kIdVpsrlq}};
// Zero-extension of the low half (pmovzx) and interleave with zero for the high half (128-bit).
constexpr Id kMovzx[3] = {x86::Inst::kIdPmovzxbw, x86::Inst::kIdPmovzxwd, x86::Inst::kIdPmovzxdq};
constexpr Id kVmovzx[3] = {x86::Inst::kIdVpmovzxbw, x86::Inst::kIdVpmovzxwd,
                           x86::Inst::kIdVpmovzxdq};
constexpr Id kUnpackHi[3] = {x86::Inst::kIdPunpckhbw, x86::Inst::kIdPunpckhwd,
                             x86::Inst::kIdPunpckhdq};
constexpr Id kVunpackHi[3] = {x86::Inst::kIdVpunpckhbw, x86::Inst::kIdVpunpckhwd,
                              x86::Inst::kIdVpunpckhdq};

}  // namespace

x86::Vec X64Emitter::vreg(uint32_t r) const {
  if (vector_bits(info(r).type) == 256) return x86::ymm(phys_[r]);
  return x86::xmm(phys_[r]);
}

// Checks once per instruction that the CPU (and the options) allow this vector width.
void X64Emitter::require_vectors(Type t, bool needs_ssse3_sse41) {
  if (vector_bits(t) == 256 && !has_avx2_)
    fail("x86-64: {} registers need AVX2, which {}", type_name(t),
         has_avx_ ? "this CPU lacks" : "is not available (CPU or CompileOptions::use_avx)");
  if (needs_ssse3_sse41 && !has_sse41_)
    fail("x86-64: this vector instruction needs SSSE3 and SSE4.1, which this CPU lacks");
}

// A 32-byte constant, emitted after the function and addressed RIP-relative.
Mem X64Emitter::constant(const std::array<uint8_t, 32>& bytes, uint32_t size) {
  for (const auto& [label, data] : pool_)
    if (data == bytes) return x86::ptr(label, 0, size);
  pool_.emplace_back(a_.newLabel(), bytes);
  return x86::ptr(pool_.back().first, 0, size);
}

Mem X64Emitter::broadcast_constant(Type t, uint64_t lane_value) {
  std::array<uint8_t, 32> bytes{};
  const int lb = lane_bits(t) / 8;
  for (int i = 0; i < 32 / lb; ++i) std::memcpy(bytes.data() + i * lb, &lane_value, size_t(lb));
  return constant(bytes, uint32_t(vector_bits(t) / 8));
}

// d = a op b, with the 3-operand VEX form, or a copy and the 2-operand SSE form.
void X64Emitter::vop(Id sse, Id vex, const x86::Vec& d, const x86::Vec& a, const Operand& b,
                     bool commutative) {
  if (has_avx_) {
    a_.emit(vex, d, a, b);
    return;
  }
  if (b.isReg() && b.as<x86::Vec>().id() == d.id() && d.id() != a.id()) {
    if (commutative) {
      a_.emit(sse, d, a);
      return;
    }
    a_.movdqa(x86::xmm15, b.as<x86::Xmm>());
    a_.movdqa(d.as<x86::Xmm>(), a.as<x86::Xmm>());
    a_.emit(sse, d, x86::xmm15);
    return;
  }
  if (d.id() != a.id()) a_.movdqa(d.as<x86::Xmm>(), a.as<x86::Xmm>());
  a_.emit(sse, d, b);
}

void X64Emitter::vmove(const x86::Vec& d, const x86::Vec& a) {
  if (d.id() == a.id()) return;
  if (has_avx_)
    a_.emit(x86::Inst::kIdVmovdqa, d, a);
  else
    a_.movdqa(d.as<x86::Xmm>(), a.as<x86::Xmm>());
}

void X64Emitter::vector(const Insn& in) {
  const Type t = in.type;
  require_vectors(t, in.op == Op::Shuf || in.op == Op::Widen || in.op == Op::Splat);
  const x86::Vec d = vreg(in.dst);
  const int k = lane_index(t);
  const uint32_t bytes = uint32_t(vector_bits(t) / 8);
  switch (in.op) {
    case Op::Add:
      return vop(kAdd.sse[k], kAdd.vex[k], d, vreg(in.a), vreg(in.b), true);
    case Op::Sub:
      return vop(kSub.sse[k], kSub.vex[k], d, vreg(in.a), vreg(in.b), false);
    case Op::And:
      return vop(x86::Inst::kIdPand, x86::Inst::kIdVpand, d, vreg(in.a), vreg(in.b), true);
    case Op::Or:
      return vop(x86::Inst::kIdPor, x86::Inst::kIdVpor, d, vreg(in.a), vreg(in.b), true);
    case Op::Xor:
      return vop(x86::Inst::kIdPxor, x86::Inst::kIdVpxor, d, vreg(in.a), vreg(in.b), true);
    case Op::Lsh:
    case Op::Rsh: {
      const LaneInsn& s = in.op == Op::Lsh ? kShl : kShr;
      vop(s.sse[k], s.vex[k], d, vreg(in.a), Imm(in.imm), false);
      if (k == 0 && in.imm) {
        uint64_t keep = in.op == Op::Lsh ? (0xffu << in.imm) & 0xff : 0xffu >> in.imm;
        vop(x86::Inst::kIdPand, x86::Inst::kIdVpand, d, d, broadcast_constant(t, keep), true);
      }
      return;
    }
    case Op::Mov:
      return vmove(d, vreg(in.a));
    case Op::Set:
      if (in.imm == 0) return vop(x86::Inst::kIdPxor, x86::Inst::kIdVpxor, d, d, d, true);
      if (has_avx_)
        a_.emit(x86::Inst::kIdVmovdqa, d, broadcast_constant(t, uint64_t(in.imm)));
      else
        a_.movdqa(d.as<x86::Xmm>(), broadcast_constant(t, uint64_t(in.imm)));
      return;
    case Op::Splat:
      return splat(in, d, k);
    case Op::Widen: {
      const x86::Vec a = vreg(in.a);
      const int from = k - 1;  // a's lane index
      if (bytes == 32) {
        if (in.imm == 0) {
          a_.emit(kVmovzx[from], d, a.as<x86::Ymm>().half());
        } else {
          a_.vextracti128(x86::xmm15, a.as<x86::Ymm>(), 1);
          a_.emit(kVmovzx[from], d, x86::xmm15);
        }
        return;
      }
      if (in.imm == 0) {
        a_.emit(has_avx_ ? kVmovzx[from] : kMovzx[from], d, a);
        return;
      }
      // High half: interleave with zero.
      vop(x86::Inst::kIdPxor, x86::Inst::kIdVpxor, x86::xmm15, x86::xmm15, x86::xmm15, true);
      return vop(kUnpackHi[from], kVunpackHi[from], d, a, x86::xmm15, false);
    }
    case Op::Shuf: {
      std::array<uint8_t, 32> pattern{};
      for (int i = 0; i < 32; ++i) pattern[size_t(i)] = (uint64_t(in.imm) >> (4 * (i & 15))) & 15;
      return vop(x86::Inst::kIdPshufb, x86::Inst::kIdVpshufb, d, vreg(in.a),
                 constant(pattern, bytes), false);
    }
    default:
      fail("x86-64: {} has no vector form", op_name(in.op));
  }
}

void X64Emitter::splat(const Insn& in, const x86::Vec& d, int k) {
  const Gp s = gp64(in.a);
  const x86::Xmm low = d.as<x86::Ymm>().half();
  if (has_avx2_) {
    a_.vmovq(x86::xmm15, s);
    static constexpr Id kBroadcast[4] = {x86::Inst::kIdVpbroadcastb, x86::Inst::kIdVpbroadcastw,
                                         x86::Inst::kIdVpbroadcastd, x86::Inst::kIdVpbroadcastq};
    a_.emit(kBroadcast[k], d, x86::xmm15);
    return;
  }
  a_.movq(low, s);
  switch (k) {
    case 0:  // every byte from byte 0: pshufb with an all-zero index
      a_.pxor(x86::xmm15, x86::xmm15);
      a_.pshufb(low, x86::xmm15);
      break;
    case 1:
      a_.pshuflw(low, low, 0);
      a_.punpcklqdq(low, low);
      break;
    case 2:
      a_.pshufd(low, low, 0);
      break;
    default:
      a_.punpcklqdq(low, low);
  }
}

void X64Emitter::vector_load(const Insn& in) {
  require_vectors(in.type, false);
  const x86::Vec d = vreg(in.dst);
  Mem m = mem(in, uint32_t(vector_bits(in.type) / 8));
  if (has_avx_)
    a_.emit(x86::Inst::kIdVmovdqu, d, m);
  else
    a_.movdqu(d.as<x86::Xmm>(), m);
}

void X64Emitter::vector_store(const Insn& in) {
  require_vectors(in.type, false);
  const x86::Vec v = vreg(in.dst);
  Mem m = mem(in, uint32_t(vector_bits(in.type) / 8));
  if (has_avx_)
    a_.emit(x86::Inst::kIdVmovdqu, m, v);
  else
    a_.movdqu(m, v.as<x86::Xmm>());
}

// Horizontal sum through the frame's vector slot: it runs once per loop, not per element.
void X64Emitter::hsum(const Insn& in) {
  const Type s = info(in.a).type;
  require_vectors(s, false);
  Mem slot = x86::ptr(x86::rsp, frame_.vector_slot, uint32_t(vector_bits(s) / 8));
  if (has_avx_)
    a_.emit(x86::Inst::kIdVmovdqu, slot, vreg(in.a));
  else
    a_.movdqu(slot, vreg(in.a).as<x86::Xmm>());
  const int lb = lane_bits(s) / 8;
  a_.xor_(x86::eax, x86::eax);
  for (int i = 0; i < lane_count(s); ++i) {
    Mem lane = x86::ptr(x86::rsp, frame_.vector_slot + i * lb, uint32_t(lb));
    if (lb == 8)
      a_.add(x86::rax, lane);
    else if (lb == 4)
      a_.mov(x86::r11d, lane), a_.add(x86::rax, x86::r11);
    else
      a_.movzx(x86::r11d, lane), a_.add(x86::rax, x86::r11);
  }
  const Gp d = gp64(in.dst);
  if (type_bits(in.type) == 64)
    a_.mov(d, x86::rax);
  else
    a_.mov(d.r32(), x86::eax);
  normalize(d, in.type);
}

void X64Emitter::crc32c(const Insn& in) {
  const Type bt = info(in.b).type;
  const int bits = type_bits(bt);
  const Gp d = gp64(in.dst), a = gp64(in.a), b = gp64(in.b);
  if (has_sse42_) {
    const Gp data = bits == 64   ? Gp(b.r64())
                    : bits == 32 ? Gp(b.r32())
                    : bits == 16 ? Gp(b.r16())
                                 : Gp(b.r8());
    if (d.id() == b.id() && d.id() != a.id()) {
      a_.mov(x86::eax, a.r32());
      a_.crc32(bits == 64 ? Gp(x86::rax) : Gp(x86::eax), data);
      a_.mov(d.r32(), x86::eax);
      return;
    }
    if (d.id() != a.id()) a_.mov(d.r32(), a.r32());
    a_.crc32(bits == 64 ? Gp(d.r64()) : Gp(d.r32()), data);
    return;
  }
  // Bitwise: crc ^= data; then one shift-and-conditional-xor per bit (rax: crc, r11: mask,
  // d: the bit counter once a and b have been read).
  a_.mov(x86::eax, a.r32());
  if (bits == 64) {
    a_.xor_(x86::rax, b);
  } else {
    a_.mov(x86::r11d, b.r32());
    if (bits < 32) a_.and_(x86::r11d, bits == 16 ? 0xffff : 0xff);
    a_.xor_(x86::rax, x86::r11);
  }
  AsmLabel loop = a_.newLabel();
  a_.mov(d.r32(), bits);
  a_.bind(loop);
  a_.mov(x86::r11d, x86::eax);
  a_.and_(x86::r11d, 1);
  a_.neg(x86::r11d);
  a_.and_(x86::r11d, 0x82f63b78);
  a_.shr(x86::rax, 1);
  a_.xor_(x86::rax, x86::r11);
  a_.dec(d.r32());
  a_.jnz(loop);
  a_.mov(d.r32(), x86::eax);
}

// The constants of the function just emitted, after its end label (not part of its listing).
void X64Emitter::emit_constant_pool() {
  if (pool_.empty()) return;
  a_.align(AlignMode::kData, 32);
  for (const auto& [label, data] : pool_) {
    a_.bind(label);
    a_.embed(data.data(), data.size());
  }
  pool_.clear();
}

}  // namespace exojit::vcode::detail::x64
