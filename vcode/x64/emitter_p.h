// SPDX-License-Identifier: MIT
// The x86-64 back end's shared declarations (private to x64/): the register mapping, the frame
// layout, and the X64Emitter, whose members are defined in emit.cpp (frame, dispatch, integer,
// memory and networking instructions), emit_float.cpp (float arithmetic and conversions),
// emit_control.cpp (branches, calls, returns) and emit_vector.cpp (vectors, crc32c).
//
// One pass over each function's IR (the walk of ../src/lowering.h), one switch per record, into
// vcode's own encoder (encoder.h). Register slots map to fixed machine registers (VCODE style),
// so there is no register allocation: the client's getreg/putreg already did it.
//
// SysV x86-64 mapping:
//   integer temporaries t0-t6: rdi rsi rdx rcx r8 r9 r10 (t0-t5 are the argument registers)
//   integer variables   v0-v5: rbx r12 r13 r14 r15 rbp (callee-saved)
//   float temporaries   t0-t7: xmm0-xmm7;  float variables v0-v6: xmm8-xmm14 (saved around calls)
//   vector registers share the float slots: xmm0-7 / ymm0-7 temporaries, xmm8-14 / ymm8-14
//   variables (saved around calls at their full width)
//   scratch: rax, r11, xmm15.
// Types narrower than 32 bits live sign- or zero-extended to 32 bits; 32-bit types live
// zero-extended to 64 (the x86 convention), so every operation can use 32- or 64-bit forms.
#pragma once

#include <array>
#include <utility>
#include <vector>

#include "../src/backend_p.h"
#include "../src/lowering_p.h"
#include "../src/stack_probe_p.h"
#include "encoder_p.h"

namespace exojit::vcode::detail::x64 {

inline constexpr int kFloatVarBase = 8;
inline constexpr int kStageSlots = kMaxIntArgs + kMaxFloatArgs;
inline constexpr Gp kIntArg[kMaxIntArgs] = {rdi, rsi, rdx, rcx, r8, r9};

inline bool fits32(int64_t v) {
  return v == int64_t(int32_t(v));
}

struct Frame {
  int32_t stage = 0;        // call argument staging area
  int32_t scratch = 0;      // one 8-byte slot for the back end
  int32_t float_save = 0;   // float variables saved around calls
  int32_t save_width = 8;   // bytes per saved float variable: 8, or 16/32 with vector variables
  int32_t vector_slot = 0;  // 32 bytes for hsum
  bool uses_ymm = false;    // vzeroupper before calls and returns
  int32_t size = 0;         // bytes subtracted from rsp
  std::vector<int32_t> local_offset;
  std::vector<Gp> saved;  // callee-saved registers pushed by the prologue
  uint32_t float_vars_used = 0;
};

class X64Emitter : public Lowering<X64Emitter, Label> {
 public:
  X64Emitter(const Module& m, const X64Features& allowed, CodeNotes* notes = nullptr);
  MachineCode module();

  // --- what the skeleton (lowering.h) asks of a back end
  static constexpr Target kTarget = Target::X86_64;
  static constexpr uint8_t kIntTemp[kIntTemps] = {7, 6, 2, 1, 8, 9, 10};  // rdi rsi rdx rcx r8-r10
  static constexpr uint8_t kIntVar[kIntVars] = {3, 12, 13, 14, 15, 5};    // rbx r12-r15 rbp
  static constexpr uint8_t kFloatVarBase = x64::kFloatVarBase;
  static constexpr uint8_t kBlindReg = 11;  // r11: read by the register forms before any use
  void load_blinded(uint64_t v, const BlindKey& key);
  void float_from_blinded(const Insn& set);
  bool blinded_equality(const Insn& branch, const BlindKey& key);
  using Label = x64::Label;
  Label new_label() { return e_.new_label(); }
  void reserve_labels(size_t n) { e_.reserve_labels(n); }
  void bind(Label l) { e_.bind(l); }
  size_t offset() const { return e_.offset(); }
  // Room for one record's code: the encoder's instructions do not check for room one by one.
  // The lowerings that can emit more (calls, hsum) reserve again as they go.
  static constexpr size_t kRecordRoom = 256;
  void begin_record() { e_.reserve(kRecordRoom); }
  bool failed() { return e_.overrun() || e_.failed(); }
  const std::string& error() const { return e_.error(); }
  void layout_frame();
  void prologue();
  // Inlined into the walk (with the handlers of the common records): one loop, one jump table.
  // insn<true>: the same for the blinded walk (constants of the common records hidden here, the
  // rest through the skeleton's insn_blinded).
  template <bool kBlind = false>
  [[gnu::always_inline]] void insn(const Insn& in);
  void end_function() { emit_constant_pool(); }

 private:
  // --- registers (inline: used by every instruction)
  // Integer types by width, as bit tests: 64-bit (i64 u64 p) and narrower than 32 bits.
  static constexpr bool is_wide(Type t) { return (0x1c0u >> unsigned(t)) & 1; }
  static constexpr bool is_narrow(Type t) { return (0xfu >> unsigned(t)) & 1; }
  Gp gp64(uint32_t r) const { return gpq(phys_[r]); }
  // The register at the operation width of integer type t: 64 bits for 64-bit types, else 32.
  static Gp at_width(Gp g, Type t) { return Gp{g.id, uint8_t(is_wide(t) ? 64 : 32)}; }
  Gp gp(uint32_t r, Type t) const { return Gp{phys_[r], uint8_t(is_wide(t) ? 64 : 32)}; }
  Vec xmm(uint32_t r) const { return x64::xmm(phys_[r]); }
  Vec vreg(uint32_t r) const;  // xmm or ymm by the register's vector width

  // --- emit.cpp
  [[gnu::noinline]] void insn_general(const Insn& in);
  [[gnu::cold, gnu::noinline]] void unknown(const Insn& in);
  [[gnu::noinline]] void normalize(Gp d, Type t);
  void mov_imm(Gp d, int64_t v);
  void move(Gp d, Gp s) {
    if (d.id != s.id) e_.mov(d, s);
  }
  void allocate_frame();  // probes large frames (../src/stack_probe_p.h)
  void epilogue();
  // A 32- or 64-bit integer access at [base + disp32].
  static bool simple_access(const Insn& in) {
    return !(in.flags & (kLocalBase | kIndex)) && fits32(in.imm) && !is_narrow(in.type) &&
           is_int(in.type);
  }
  // The memory operand of a load or store (displacements beyond 32 bits through r11).
  Mem mem(const Insn& in);
  template <Alu op>
  [[gnu::always_inline]] void alu_rr(const Insn& in);
  template <Alu op>
  [[gnu::always_inline]] void alu_ri(const Insn& in);
  [[gnu::always_inline]] void int_mul(const Insn& in, bool imm);  // imm: in.flags & kImm
  void divide(const Insn& in);
  [[gnu::always_inline]] void shift(const Insn& in);
  [[gnu::noinline]] void shift_by_register(const Insn& in);
  void unary(const Insn& in);
  void bswap(const Insn& in);
  void set(const Insn& in);
  void cksum(const Insn& in);
  void bound_mask(const Insn& in);
  void bound_zero(const Insn& in);
  void cksum_fold(const Insn& in);
  void address(const Insn& in);
  [[gnu::always_inline]] void load(const Insn& in);
  [[gnu::always_inline]] void store(const Insn& in);
  [[gnu::noinline]] void load_general(const Insn& in);
  [[gnu::noinline]] void store_general(const Insn& in);

  // --- emit_float.cpp
  void convert(const Insn& in);
  void int_to_float(const Insn& in, Type t, Type s);
  void float_to_int(const Insn& in, Type t, Type s);
  void float_binary(const Insn& in);
  void movaps(Vec d, Vec s) {
    if (d.id != s.id) e_.sse(vop::kMovaps, d.id, s.id);
  }

  // --- emit_vector.cpp
  void require_vectors(Type t, bool needs_ssse3_sse41);
  Mem constant(const std::array<uint8_t, 32>& bytes);
  Mem broadcast_constant(Type t, uint64_t lane_value);
  void vbin(VecOp op, Vec d, Vec a, Vec b, bool commutative);
  void vbin(VecOp op, Vec d, Vec a, const Mem& b);
  void vshift(VecOp op, Vec d, Vec a, uint8_t count);
  void vmove(Vec d, Vec a);
  void vload(Vec d, const Mem& m);
  void vstore(const Mem& m, Vec v);
  void vector(const Insn& in);
  void vector_memory(const Insn& in);
  void splat(const Insn& in, Vec d, int lane_index);
  void hsum(const Insn& in);
  void crc32c(const Insn& in);
  void emit_constant_pool();

  // --- emit_control.cpp
  void save_float_var(int slot);
  void restore_float_var(int slot);
  void jump(const Insn& in);
  void branch(const Insn& in);
  void call(const Insn& in);
  void ret(const Insn& in);

  // The registers the last integer branch compared (register form), and the offset right after
  // its jcc: a bound_zero there on the same registers (no label placed in between) needs no
  // compare of its own. It reuses the branch's flags, which a mispredicted branch does not change:
  // the guard still zeroes.
  struct BranchCompare {
    size_t at = ~size_t(0);
    Gp a, b;
  };
  BranchCompare last_compare_;

  Encoder e_;
  Frame frame_;
  bool has_movbe_ = false;
  bool has_bmi2_ = false;
  bool has_avx_ = false;    // VEX encodings for vector instructions
  bool has_avx2_ = false;   // 256-bit vector registers
  bool has_sse41_ = false;  // SSSE3 + SSE4.1: pshufb, pmovzx (128-bit without AVX)
  bool has_sse42_ = false;  // crc32
  bool probes_ = true;      // stack probes for frames over a page (off only in tests)
  std::vector<std::pair<Label, std::array<uint8_t, 32>>> pool_;
};

}  // namespace exojit::vcode::detail::x64
