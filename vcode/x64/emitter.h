// The x86-64 back end's shared declarations (private to x64/): the register mapping, the frame
// layout, and the X64Emitter, whose members are defined in emit.cpp (frame, dispatch, integer and
// memory instructions), emit_float.cpp (float arithmetic and conversions) and emit_control.cpp
// (branches, calls, returns).
//
// One pass over each function's IR, one switch per instruction, into asmjit's x86::Assembler
// (or straight into its buffer for the common forms, fast_asm.h). Register slots map to fixed
// machine registers (VCODE style), so there is no register allocation: the client's
// getreg/putreg already did it.
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

#include <asmjit/x86.h>

#include <array>
#include <utility>
#include <vector>

#include "../src/backend.h"
#include "fast_asm.h"

namespace exojit::vcode::detail::x64 {

using asmjit::CodeHolder;
using asmjit::x86::Gp;
using asmjit::x86::Mem;
using asmjit::x86::Xmm;
using AsmLabel = asmjit::Label;
namespace x86 = asmjit::x86;

inline const Gp kIntTemp[kIntTemps] = {x86::rdi, x86::rsi, x86::rdx, x86::rcx,
                                       x86::r8,  x86::r9,  x86::r10};
inline const Gp kIntVar[kIntVars] = {x86::rbx, x86::r12, x86::r13, x86::r14, x86::r15, x86::rbp};
inline const Gp kIntArg[kMaxIntArgs] = {x86::rdi, x86::rsi, x86::rdx, x86::rcx, x86::r8, x86::r9};
inline constexpr int kFloatVarBase = 8;
inline constexpr int kStageSlots = kMaxIntArgs + kMaxFloatArgs;

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

class X64Emitter {
 public:
  X64Emitter(const Module& m, CodeHolder& code, const X64Features& allowed,
             CodeNotes* notes = nullptr);
  std::vector<EmittedFunction> module();

 private:
  // --- registers (inline: used by every instruction)
  const RegInfo& info(uint32_t r) const { return f_->regs[r]; }
  Gp gp64(uint32_t r) const { return x86::gpq(phys_[r]); }
  // The register at the operation width of type t: 64 bits for 64-bit types, else 32.
  static Gp at_width(const Gp& g, Type t) { return type_bits(t) == 64 ? Gp(g.r64()) : Gp(g.r32()); }
  Gp gp(uint32_t r, Type t) const { return at_width(gp64(r), t); }
  Xmm xmm(uint32_t r) const { return x86::xmm(phys_[r]); }
  x86::Vec vreg(uint32_t r) const;  // xmm or ymm by the register's vector width

  // --- emit.cpp
  void function(const Function& f, const EmittedFunction& where);
  void map_registers();
  void normalize(const Gp& d, Type t);
  void mov_imm(const Gp& d, int64_t v);
  void layout_frame();
  void prologue();
  void epilogue();
  Mem mem(const Insn& in, uint32_t size);
  void insn(const Insn& in);
  void int_alu(const Insn& in, FastAssembler::Alu digit);
  void int_mul(const Insn& in);
  void int_binary(const Insn& in);
  void alu(Op op, const Gp& d, const Gp& s);
  void divide(const Insn& in);
  void shift(const Insn& in);
  void unary(const Insn& in);
  void bswap(const Insn& in);
  void set(const Insn& in);
  void cksum(const Insn& in);
  void cksum_fold(const Insn& in);
  bool fast_mem(const Insn& in, uint8_t opcode);
  void load(const Insn& in);
  void store(const Insn& in);

  // --- emit_float.cpp
  void convert(const Insn& in);
  void int_to_float(const Insn& in, Type t, Type s);
  void float_to_int(const Insn& in, Type t, Type s);
  void float_binary(const Insn& in);

  // --- emit_vector.cpp
  void require_vectors(Type t, bool needs_ssse3_sse41);
  Mem constant(const std::array<uint8_t, 32>& bytes, uint32_t size);
  Mem broadcast_constant(Type t, uint64_t lane_value);
  void vop(x86::Inst::Id sse, x86::Inst::Id vex, const x86::Vec& d, const x86::Vec& a,
           const asmjit::Operand& b, bool commutative);
  void vmove(const x86::Vec& d, const x86::Vec& a);
  void vector(const Insn& in);
  void splat(const Insn& in, const x86::Vec& d, int lane_index);
  void vector_load(const Insn& in);
  void vector_store(const Insn& in);
  void hsum(const Insn& in);
  void crc32c(const Insn& in);
  void emit_constant_pool();

  // --- emit_control.cpp
  void save_float_var(int slot);
  void restore_float_var(int slot);
  void branch(const Insn& in);
  void call(const Insn& in);
  void ret(const Insn& in);

  const Module& m_;
  FastAssembler a_;
  CodeNotes* notes_;  // debug notes (debug/notes_p.h), when asked for
  std::vector<EmittedFunction> entries_;
  const Function* f_ = nullptr;
  std::vector<asmjit::Label> labels_;
  std::vector<uint8_t> phys_;
  Frame frame_;
  bool has_movbe_ = false;
  bool has_bmi2_ = false;
  bool has_avx_ = false;    // VEX encodings for vector instructions
  bool has_avx2_ = false;   // 256-bit vector registers
  bool has_sse41_ = false;  // SSSE3 + SSE4.1: pshufb, pmovzx (128-bit without AVX)
  bool has_sse42_ = false;  // crc32
  std::vector<std::pair<asmjit::Label, std::array<uint8_t, 32>>> pool_;
};

}  // namespace exojit::vcode::detail::x64
