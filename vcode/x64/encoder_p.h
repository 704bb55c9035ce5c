// SPDX-License-Identifier: MIT
// vcode's own x86-64 encoder: every instruction form the fast tier emits (general-purpose,
// SSE and AVX scalar and vector, branches with label fix-ups in their short and near forms),
// written into a buffer it owns.
//
// The encodings are asmjit's, byte for byte (tests/vcode/encoder_test.cpp holds each form
// against asmjit's x86::Assembler over every register, base, index and the edge immediates and
// displacements): the shortest immediate (imm8, then the short rax forms), rel8 for backward
// jumps that reach and rel32 for forward ones (one pass cannot know their distance), 2-byte VEX
// whenever the instruction allows it.
//
// Cheap by construction: the instructions do not check for room one by one (whoever emits
// reserves room for a batch, see reserve()), and write through a local cursor. Errors (a label
// bound twice or never, a size limit, an operand x86 cannot encode) are sticky and checked by the
// caller once per vcode record, as asmjit's error handler is: the first one wins and the bytes
// written after it are garbage nobody installs. Client immediates and displacements enter through
// few places (alu/mov/imul/shift immediates, memory displacements, the vector immediates), where a
// later constant-blinding pass can take them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace exojit::vcode::detail::x64 {

// A general-purpose register: number 0 (rax) .. 15 (r15) at a width of 8, 16, 32 or 64 bits.
struct Gp {
  uint8_t id = 0;
  uint8_t bits = 64;
  constexpr Gp r8() const { return Gp{id, 8}; }
  constexpr Gp r16() const { return Gp{id, 16}; }
  constexpr Gp r32() const { return Gp{id, 32}; }
  constexpr Gp r64() const { return Gp{id, 64}; }
  friend constexpr bool operator==(Gp a, Gp b) = default;
};
constexpr Gp gpq(unsigned id) {
  return Gp{uint8_t(id), 64};
}
constexpr Gp gpd(unsigned id) {
  return Gp{uint8_t(id), 32};
}
inline constexpr Gp rax{0}, rcx{1}, rdx{2}, rbx{3}, rsp{4}, rbp{5}, rsi{6}, rdi{7}, r8{8}, r9{9},
    r10{10}, r11{11}, r12{12}, r13{13}, r14{14}, r15{15};
inline constexpr Gp eax = rax.r32(), ecx = rcx.r32(), edx = rdx.r32(), r11d = r11.r32();
inline constexpr Gp al = rax.r8(), cl = rcx.r8(), ax = rax.r16(), r11w = r11.r16();

// A vector register: xmm (128 bits) or ymm (256 bits) number 0-15.
struct Vec {
  uint8_t id = 0;
  uint16_t bits = 128;
  constexpr Vec xmm() const { return Vec{id, 128}; }
  constexpr Vec ymm() const { return Vec{id, 256}; }
  friend constexpr bool operator==(Vec a, Vec b) = default;
};
constexpr Vec xmm(unsigned id) {
  return Vec{uint8_t(id), 128};
}
constexpr Vec ymm(unsigned id) {
  return Vec{uint8_t(id), 256};
}
inline constexpr Vec xmm0 = xmm(0), xmm15 = xmm(15);

struct Label {
  uint32_t id = ~0u;
};

// A memory operand: [base + index + disp], [base + disp], or [rip + label + disp].
struct Mem {
  static constexpr uint8_t kNoIndex = 0xff;
  uint8_t base = 0;
  uint8_t index = kNoIndex;
  bool rip = false;
  int32_t disp = 0;
  uint32_t label = 0;
};
constexpr Mem ptr(Gp base, int32_t disp = 0) {
  return Mem{base.id, Mem::kNoIndex, false, disp, 0};
}
constexpr Mem ptr(Gp base, Gp index, int32_t disp = 0) {
  return Mem{base.id, index.id, false, disp, 0};
}
constexpr Mem ptr(Label l, int32_t disp = 0) {
  return Mem{0, Mem::kNoIndex, true, disp, l.id};
}

enum class Cond : uint8_t { O, NO, B, AE, E, NE, BE, A, S, NS, P, NP, L, GE, LE, G };
// Group-1 arithmetic (the /digit of the immediate forms).
enum class Alu : uint8_t { Add = 0, Or = 1, Adc = 2, Sbb = 3, And = 4, Sub = 5, Xor = 6, Cmp = 7 };
// Group-2 shifts and rotates.
enum class Shift : uint8_t { Rol = 0, Ror = 1, Shl = 4, Shr = 5, Sar = 7 };

// An SSE/AVX instruction: its mandatory prefix (pp: 0 none, 1 66, 2 F3, 3 F2, as VEX numbers
// them), opcode map (1 0F, 2 0F38, 3 0F3A), opcode, and the ModRM reg digit of the forms that
// take one (the shifts by an immediate).
struct VecOp {
  uint8_t pp;
  uint8_t map;
  uint8_t code;
  uint8_t digit = 0;
};
namespace vop {
// clang-format off
inline constexpr VecOp kMovaps{0, 1, 0x28}, kMovdqa{1, 1, 0x6f}, kMovdquLoad{2, 1, 0x6f},
    kMovdquStore{2, 1, 0x7f}, kMovssLoad{2, 1, 0x10}, kMovssStore{2, 1, 0x11},
    kMovsdLoad{3, 1, 0x10}, kMovsdStore{3, 1, 0x11}, kMovqFromGp{1, 1, 0x6e},
    kCvtss2sd{2, 1, 0x5a}, kCvtsd2ss{3, 1, 0x5a}, kCvtsi2ss{2, 1, 0x2a}, kCvtsi2sd{3, 1, 0x2a},
    kCvttss2si{2, 1, 0x2c}, kCvttsd2si{3, 1, 0x2c}, kUcomiss{0, 1, 0x2e}, kUcomisd{1, 1, 0x2e},
    kAddss{2, 1, 0x58}, kAddsd{3, 1, 0x58}, kSubss{2, 1, 0x5c}, kSubsd{3, 1, 0x5c},
    kMulss{2, 1, 0x59}, kMulsd{3, 1, 0x59}, kDivss{2, 1, 0x5e}, kDivsd{3, 1, 0x5e},
    kXorps{0, 1, 0x57},
    kPaddb{1, 1, 0xfc}, kPaddw{1, 1, 0xfd}, kPaddd{1, 1, 0xfe}, kPaddq{1, 1, 0xd4},
    kPsubb{1, 1, 0xf8}, kPsubw{1, 1, 0xf9}, kPsubd{1, 1, 0xfa}, kPsubq{1, 1, 0xfb},
    kPand{1, 1, 0xdb}, kPor{1, 1, 0xeb}, kPxor{1, 1, 0xef},
    kPsllw{1, 1, 0x71, 6}, kPslld{1, 1, 0x72, 6}, kPsllq{1, 1, 0x73, 6},
    kPsrlw{1, 1, 0x71, 2}, kPsrld{1, 1, 0x72, 2}, kPsrlq{1, 1, 0x73, 2},
    kPmovzxbw{1, 2, 0x30}, kPmovzxwd{1, 2, 0x33}, kPmovzxdq{1, 2, 0x35},
    kPunpckhbw{1, 1, 0x68}, kPunpckhwd{1, 1, 0x69}, kPunpckhdq{1, 1, 0x6a},
    kPunpcklqdq{1, 1, 0x6c}, kPshufb{1, 2, 0x00}, kPshuflw{3, 1, 0x70}, kPshufd{1, 1, 0x70},
    kVpbroadcastb{1, 2, 0x78}, kVpbroadcastw{1, 2, 0x79}, kVpbroadcastd{1, 2, 0x58},
    kVpbroadcastq{1, 2, 0x59}, kVextracti128{1, 3, 0x39};
// clang-format on
}  // namespace vop

class Encoder {
 public:
  // Code larger than `max_bytes` is an error (the default keeps every rel32 in reach).
  explicit Encoder(size_t max_bytes = size_t(1) << 30);

  // --- the buffer
  size_t offset() const { return size_t(p_ - buf_.get()); }
  const uint8_t* data() const { return buf_.get(); }
  // Takes the buffer (offset() bytes of code) once finish() succeeded.
  std::unique_ptr<uint8_t[]> release();

  // Bytes allocated past the end of the room: a lowering that writes more than it reserved
  // still writes in bounds, and overrun() reports it (see reserve()).
  static constexpr size_t kSlack = 4096;

  // --- room. The instructions do not check for room one by one: whoever emits reserves room
  // first (the lowering does before every vcode record), at most kSlack bytes at a time, and
  // checks overrun() afterwards. Every instruction is at most 15 bytes.
  void reserve(size_t n) {
    if (size_t(end_ - p_) < n) [[unlikely]]
      grow(n);
    limit_ = p_ + n;
    reserved_ = n;
  }
  // True when more was written than the last reserve() allowed (then fail()s).
  bool overrun() {
    if (p_ <= limit_) [[likely]]
      return false;
    report_overrun();
    return true;
  }

  // --- errors: the first one, sticky
  bool failed() const { return failed_; }
  const std::string& error() const { return error_; }
  void fail(std::string why);

  // --- labels
  Label new_label();
  // n fresh labels; returns the first (the others follow it: Label{first.id + i}).
  Label new_labels(uint32_t n);
  void reserve_labels(size_t n) { labels_.reserve(labels_.size() + n); }  // n more to come
  void bind(Label l);
  bool bound(Label l) const { return labels_[l.id] >= 0; }
  size_t label_offset(Label l) const { return size_t(labels_[l.id]); }
  // Writes every fix-up; an error if a referenced label was never bound.
  bool finish();

  // --- general-purpose instructions: operands of one width (16, 32 or 64 bits; 8 where a
  // byte register is named) unless said otherwise
  [[gnu::always_inline]] void alu(Alu op, Gp d, Gp s) {
    gp_rr(d.bits, byte_rex(d, s), 0, uint8_t(uint8_t(op) << 3 | 1), s.id, d.id);
  }
  [[gnu::always_inline]] void alu(Alu op, Gp d, int32_t imm);
  [[gnu::always_inline]] void alu(Alu op, Gp d, const Mem& m) {
    gp_rm(d.bits, false, 0, uint8_t(uint8_t(op) << 3 | 3), d.id, m);
  }
  // op [m], imm8 (sign-extended) at `bits` width: the stack probe is `or qword [rsp], 0`.
  void alu(Alu op, int bits, const Mem& m, int8_t imm) {
    gp_rm(uint8_t(bits), false, 0, 0x83, uint8_t(op), m, 1);
    *p_++ = uint8_t(imm);
  }
  [[gnu::always_inline]] void test(Gp a, Gp b) {
    gp_rr(a.bits, byte_rex(a, b), 0, 0x85, b.id, a.id);
  }
  [[gnu::always_inline]] void mov(Gp d, Gp s) {
    gp_rr(d.bits, byte_rex(d, s), 0, d.bits == 8 ? 0x88 : 0x89, s.id, d.id);
  }
  [[gnu::always_inline]] void mov(Gp d, const Mem& m) {
    gp_rm(d.bits, byte_rex(d, d), 0, d.bits == 8 ? 0x8a : 0x8b, d.id, m);
  }
  [[gnu::always_inline]] void mov(const Mem& m, Gp s) {
    gp_rm(s.bits, byte_rex(s, s), 0, s.bits == 8 ? 0x88 : 0x89, s.id, m);
  }
  // 32 bits: mov r32, imm32 (zero-extends). 64 bits: the sign-extended imm32 form when the value
  // fits, else movabs.
  [[gnu::always_inline]] void mov(Gp d, int64_t imm);
  [[gnu::always_inline]] void movzx(Gp d, Gp s) {
    gp_rr(d.bits, byte_rex(s, s), 1, s.bits == 8 ? 0xb6 : 0xb7, d.id, s.id);
  }
  [[gnu::always_inline]] void movsx(Gp d, Gp s) {
    gp_rr(d.bits, byte_rex(s, s), 1, s.bits == 8 ? 0xbe : 0xbf, d.id, s.id);
  }
  // From memory: `bits` is the width read (8 or 16).
  [[gnu::always_inline]] void movzx(Gp d, const Mem& m, int bits) {
    gp_rm(d.bits, false, 1, bits == 8 ? 0xb6 : 0xb7, d.id, m);
  }
  [[gnu::always_inline]] void movsx(Gp d, const Mem& m, int bits) {
    gp_rm(d.bits, false, 1, bits == 8 ? 0xbe : 0xbf, d.id, m);
  }
  [[gnu::always_inline]] void movsxd(Gp d, Gp s) { gp_rr(64, false, 0, 0x63, d.id, s.id); }
  [[gnu::always_inline]] void lea(Gp d, const Mem& m) { gp_rm(d.bits, false, 0, 0x8d, d.id, m); }
  [[gnu::always_inline]] void imul(Gp d, Gp s) { gp_rr(d.bits, false, 1, 0xaf, d.id, s.id); }
  [[gnu::always_inline]] void imul(Gp d, Gp s, int32_t imm);
  [[gnu::always_inline]] void shift(Shift op, Gp d, uint8_t count);
  void shift_cl(Shift op, Gp d) { gp_rr(d.bits, false, 0, 0xd3, uint8_t(op), d.id); }
  // shlx/shrx/sarx d, s, count (BMI2).
  void shiftx(Shift op, Gp d, Gp s, Gp count);
  [[gnu::always_inline]] void neg(Gp d) { gp_rr(d.bits, false, 0, 0xf7, 3, d.id); }
  [[gnu::always_inline]] void not_(Gp d) { gp_rr(d.bits, false, 0, 0xf7, 2, d.id); }
  void div(Gp s) { gp_rr(s.bits, false, 0, 0xf7, 6, s.id); }
  void idiv(Gp s) { gp_rr(s.bits, false, 0, 0xf7, 7, s.id); }
  void dec(Gp d) { gp_rr(d.bits, false, 0, 0xff, 1, d.id); }
  void bswap(Gp d);
  void btc(Gp d, uint8_t bit);
  void cmov(Cond c, Gp d, Gp s) { gp_rr(d.bits, false, 1, uint8_t(0x40 | uint8_t(c)), d.id, s.id); }
  [[gnu::always_inline]] void setcc(Cond c, Gp d8) {
    gp_rr(32, byte_rex(d8, d8), 1, uint8_t(0x90 | uint8_t(c)), 0, d8.id);
  }
  void cqo() { byte2(0x48, 0x99); }
  void cdq() { byte1(0x99); }
  void movbe(Gp d, const Mem& m) { gp_rm(d.bits, false, 2, 0xf0, d.id, m); }
  void movbe(const Mem& m, Gp s) { gp_rm(s.bits, false, 2, 0xf1, s.id, m); }
  void crc32(Gp d, Gp s);
  void push(Gp r) { short_reg(0x50, r.id); }
  void pop(Gp r) { short_reg(0x58, r.id); }
  void ret() { byte1(0xc3); }
  void vzeroupper() { byte3(0xc5, 0xf8, 0x77); }
  void call(Label l);
  void call(Gp r) { gp_rr(32, false, 0, 0xff, 2, r.id); }
  [[gnu::always_inline]] void jmp(Label l);
  [[gnu::always_inline]] void jmp(Gp r) { gp_rr(32, false, 0, 0xff, 4, r.id); }
  [[gnu::always_inline]] void jcc(Cond c, Label l);

  // --- SSE (legacy encoding): op reg, r/m. `w` sets REX.W (the 64-bit GPR forms of movq and
  // the conversions). Register numbers are Gp or Vec ids as the instruction takes them.
  void sse(VecOp op, uint8_t reg, uint8_t rm, bool w = false) { vec_rr(op, w, reg, rm, -1); }
  void sse(VecOp op, uint8_t reg, const Mem& m) { vec_rm(op, false, reg, m, -1); }
  void sse_imm(VecOp op, uint8_t reg, uint8_t rm, uint8_t imm) { vec_rr(op, false, reg, rm, imm); }
  // Shifts by an immediate: op rm, imm with the digit in the reg field.
  void sse_shift(VecOp op, Vec d, uint8_t imm) { vec_rr(op, false, op.digit, d.id, imm); }

  // --- AVX (VEX encoding): op reg, vvvv, r/m. `l256` selects 256 bits; vvvv 0 = unused.
  void vex(VecOp op, bool l256, bool w, uint8_t reg, uint8_t vvvv, uint8_t rm, int imm = -1);
  void vex(VecOp op, bool l256, bool w, uint8_t reg, uint8_t vvvv, const Mem& m);
  // Shifts by an immediate: vvvv is the destination, rm the source.
  void vex_shift(VecOp op, Vec d, Vec s, uint8_t imm) {
    vex(op, d.bits == 256, false, op.digit, d.id, s.id, imm);
  }

  // --- data
  void align_data(size_t alignment);  // pads with int3 (0xcc), as asmjit does for data
  void embed(const void* bytes, size_t n);

 private:
  struct Fixup {
    uint32_t at;  // where the rel32 field is
    uint32_t label;
    uint32_t next;   // the address it is relative to (the end of the instruction)
    int32_t addend;  // added to the label's offset (a memory operand's displacement)
  };
  [[gnu::noinline]] void grow(size_t need);
  [[gnu::noinline, gnu::cold]] void report_overrun();
  // REX for byte registers spl/bpl/sil/dil (which without it name ah/ch/dh/bh).
  static bool byte_rex(Gp a, Gp b) {
    return (a.bits == 8 && a.id >= 4) || (b.bits == 8 && b.id >= 4);
  }
  // [66] [REX] [0F [38|3A]] opcode, ModRM register form.
  [[gnu::always_inline]] void gp_rr(uint8_t bits, bool force_rex, uint8_t map, uint8_t code,
                                    uint8_t reg, uint8_t rm);
  // The same with a memory operand.
  [[gnu::always_inline]] void gp_rm(uint8_t bits, bool force_rex, uint8_t map, uint8_t code,
                                    uint8_t reg, const Mem& m, int imm_bytes = 0);
  void vec_rr(VecOp op, bool w, uint8_t reg, uint8_t rm, int imm);
  void vec_rm(VecOp op, bool w, uint8_t reg, const Mem& m, int imm);
  void short_reg(uint8_t code, uint8_t id);
  [[gnu::always_inline]] uint8_t* modrm_mem(uint8_t* p, uint8_t reg, const Mem& m, int imm_bytes);
  [[gnu::noinline]] void add_fixup(const Fixup& f) {
    if (fixups_.capacity() == 0) fixups_.reserve(64);  // one allocation for most functions
    fixups_.push_back(f);
  }
  [[gnu::noinline, gnu::cold]] void bad_index() { fail("rsp cannot be an index register"); }
  void byte1(uint8_t a) { *p_++ = a; }
  void byte2(uint8_t a, uint8_t b) { p_[0] = a, p_[1] = b, p_ += 2; }
  void byte3(uint8_t a, uint8_t b, uint8_t c) { p_[0] = a, p_[1] = b, p_[2] = c, p_ += 3; }
  // A jump or call to `l` whose rel32 field starts at p (after the opcode).
  uint8_t* rel32(uint8_t* p, Label l);

  std::unique_ptr<uint8_t[]> buf_;
  uint8_t* p_ = nullptr;
  uint8_t* end_ = nullptr;    // the end of the room (kSlack more bytes are allocated)
  size_t capacity_;           // bytes allocated before the slack
  uint8_t* limit_ = nullptr;  // the end of the last reservation
  size_t reserved_ = 0;
  size_t max_bytes_;
  std::vector<int64_t> labels_;  // offset of each label, -1 until bound
  std::vector<Fixup> fixups_;
  bool failed_ = false;
  std::string error_;
};

// ---------------------------------------------------------------------------------------------
// The hot encodings, inline so that the opcode and widths of each call fold into it.

inline bool fits_i8(int64_t v) {
  return v == int8_t(v);
}

inline void store32(uint8_t* p, uint32_t v) {
  std::memcpy(p, &v, 4);
}

inline void Encoder::gp_rr(uint8_t bits, bool force_rex, uint8_t map, uint8_t code, uint8_t reg,
                           uint8_t rm) {
  uint8_t* p = p_;
  if (bits == 16) *p++ = 0x66;
  const uint8_t rex = uint8_t(0x40 | (bits == 64 ? 8 : 0) | (reg & 8) >> 1 | (rm & 8) >> 3);
  if (rex != 0x40 || force_rex) *p++ = rex;
  if (map) {
    *p++ = 0x0f;
    if (map == 2) *p++ = 0x38;
    if (map == 3) *p++ = 0x3a;
  }
  p[0] = code;
  p[1] = uint8_t(0xc0 | (reg & 7) << 3 | (rm & 7));
  p_ = p + 2;
}

inline void Encoder::gp_rm(uint8_t bits, bool force_rex, uint8_t map, uint8_t code, uint8_t reg,
                           const Mem& m, int imm_bytes) {
  uint8_t* p = p_;
  if (bits == 16) *p++ = 0x66;
  const uint8_t index = m.index == Mem::kNoIndex ? 0 : m.index;
  const uint8_t base = m.rip ? 0 : m.base;
  const uint8_t rex =
      uint8_t(0x40 | (bits == 64 ? 8 : 0) | (reg & 8) >> 1 | (index & 8) >> 2 | (base & 8) >> 3);
  if (rex != 0x40 || force_rex) *p++ = rex;
  if (map) {
    *p++ = 0x0f;
    if (map == 2) *p++ = 0x38;
    if (map == 3) *p++ = 0x3a;
  }
  *p++ = code;
  p_ = modrm_mem(p, reg, m, imm_bytes);
}

// ModRM, SIB and displacement of [base (+ index) + disp] or [rip + label + disp]. The rip form's
// rel32 is relative to the end of the instruction, imm_bytes after the displacement.
inline uint8_t* Encoder::modrm_mem(uint8_t* p, uint8_t reg, const Mem& m, int imm_bytes) {
  reg &= 7;
  if (m.rip) [[unlikely]] {
    *p++ = uint8_t(0x05 | reg << 3);
    const uint32_t at = uint32_t(p - buf_.get());
    add_fixup(Fixup{at, m.label, at + 4 + uint32_t(imm_bytes), m.disp});
    return p + 4;
  }
  const uint8_t base = m.base & 7;
  const int32_t disp = m.disp;
  // mod 0: no displacement (rbp/r13 as a base have no such form), 1: disp8, 2: disp32.
  const unsigned mod = (disp == 0 && base != 5) ? 0 : fits_i8(disp) ? 1 : 2;
  if (m.index == Mem::kNoIndex) {
    *p++ = uint8_t(mod << 6 | unsigned(reg) << 3 | base);
    if (base == 4) *p++ = 0x24;  // rsp/r12 as a base need a SIB byte (no index, base rsp)
  } else {
    if (m.index == 4) [[unlikely]]
      bad_index();
    p[0] = uint8_t(mod << 6 | unsigned(reg) << 3 | 4);
    p[1] = uint8_t((m.index & 7) << 3 | base);
    p += 2;
  }
  if (mod == 1) {
    *p++ = uint8_t(disp);
  } else if (mod == 2) {
    store32(p, uint32_t(disp));
    p += 4;
  }
  return p;
}

inline void Encoder::alu(Alu op, Gp d, int32_t imm) {
  const uint8_t digit = uint8_t(op);
  if (fits_i8(imm)) {
    gp_rr(d.bits, false, 0, 0x83, digit, d.id);
    *p_++ = uint8_t(imm);
    return;
  }
  const int imm_bytes = d.bits == 16 ? 2 : 4;
  if (d.id == 0) {  // the short form: op ax/eax/rax, imm
    uint8_t* p = p_;
    if (d.bits == 16) *p++ = 0x66;
    if (d.bits == 64) *p++ = 0x48;
    *p++ = uint8_t(digit << 3 | 5);
    std::memcpy(p, &imm, size_t(imm_bytes));
    p_ = p + imm_bytes;
    return;
  }
  gp_rr(d.bits, false, 0, 0x81, digit, d.id);
  std::memcpy(p_, &imm, size_t(imm_bytes));
  p_ += imm_bytes;
}

inline void Encoder::mov(Gp d, int64_t imm) {
  uint8_t* p = p_;
  if (d.bits == 64 && imm == int32_t(imm)) {  // mov r/m64, imm32 (sign-extended)
    p[0] = uint8_t(0x48 | (d.id & 8) >> 3);
    p[1] = 0xc7;
    p[2] = uint8_t(0xc0 | (d.id & 7));
    store32(p + 3, uint32_t(imm));
    p_ = p + 7;
    return;
  }
  if (d.bits == 64) {
    *p++ = uint8_t(0x48 | (d.id & 8) >> 3);
  } else if (d.id & 8) {
    *p++ = 0x41;
  }
  *p++ = uint8_t(0xb8 | (d.id & 7));
  if (d.bits == 64) {
    std::memcpy(p, &imm, 8);
    p += 8;
  } else {
    store32(p, uint32_t(imm));
    p += 4;
  }
  p_ = p;
}

inline void Encoder::imul(Gp d, Gp s, int32_t imm) {
  if (fits_i8(imm)) {
    gp_rr(d.bits, false, 0, 0x6b, d.id, s.id);
    *p_++ = uint8_t(imm);
  } else {
    gp_rr(d.bits, false, 0, 0x69, d.id, s.id);
    store32(p_, uint32_t(imm));
    p_ += 4;
  }
}

inline void Encoder::shift(Shift op, Gp d, uint8_t count) {
  if (count == 1)
    return gp_rr(d.bits, byte_rex(d, d), 0, d.bits == 8 ? 0xd0 : 0xd1, uint8_t(op), d.id);
  gp_rr(d.bits, byte_rex(d, d), 0, d.bits == 8 ? 0xc0 : 0xc1, uint8_t(op), d.id);
  *p_++ = count;
}

inline uint8_t* Encoder::rel32(uint8_t* p, Label l) {
  const uint32_t at = uint32_t(p - buf_.get());
  if (labels_[l.id] >= 0)
    store32(p, uint32_t(int32_t(labels_[l.id] - int64_t(at + 4))));
  else
    add_fixup(Fixup{at, l.id, at + 4, 0});
  return p + 4;
}

inline void Encoder::jmp(Label l) {
  if (labels_[l.id] >= 0) {
    int64_t rel = labels_[l.id] - int64_t(offset() + 2);
    if (fits_i8(rel)) {
      p_[0] = 0xeb;
      p_[1] = uint8_t(rel);
      p_ += 2;
      return;
    }
  }
  *p_ = 0xe9;
  p_ = rel32(p_ + 1, l);
}

inline void Encoder::jcc(Cond c, Label l) {
  if (labels_[l.id] >= 0) {
    int64_t rel = labels_[l.id] - int64_t(offset() + 2);
    if (fits_i8(rel)) {
      p_[0] = uint8_t(0x70 | uint8_t(c));
      p_[1] = uint8_t(rel);
      p_ += 2;
      return;
    }
  }
  p_[0] = 0x0f;
  p_[1] = uint8_t(0x80 | uint8_t(c));
  p_ = rel32(p_ + 2, l);
}

}  // namespace exojit::vcode::detail::x64
