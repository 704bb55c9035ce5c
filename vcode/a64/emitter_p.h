// SPDX-License-Identifier: MIT
// The AArch64 back end's shared declarations (private to a64/): the register mapping, the frame
// layout, and the A64Emitter, whose members are defined in emit.cpp (frame, dispatch, integer,
// memory and networking instructions), emit_float.cpp (float arithmetic and conversions),
// emit_control.cpp (branches, calls, returns) and emit_vector.cpp (NEON vectors, crc32c).
//
// The same one-pass design as the x86-64 back end, on the same skeleton (../src/lowering.h): one
// switch per IR record into asmjit's a64::Assembler, register slots mapped to fixed machine
// registers (VCODE style), so there is no register allocation.
//
// AAPCS64 mapping:
//   integer temporaries t0-t6: x0-x6 (t0-t5 are the argument registers x0-x5)
//   integer variables   v0-v5: x19-x24 (callee-saved)
//   float temporaries   t0-t7: v0-v7 (the argument registers)
//   float variables     v0-v6: v8-v14 (the callee keeps their low 64 bits: d8-d14 are saved by
//                       the prologue; a 128-bit vector variable's upper half is saved around calls)
//   vector registers share the float slots (q registers); 256-bit vectors are an error on this
//   target (vector_width() reports 128: NEON has no single 256-bit register)
//   scratch: x16 x17 (the intra-procedure-call registers), v16 v17.
// As on x86-64, types narrower than 32 bits live sign- or zero-extended to 32 bits, and 32-bit
// types live zero-extended to 64 (what every W-register write does), so every operation can use
// the 32- or 64-bit form.
#pragma once

// Debian's asmjit has no umbrella <asmjit/a64.h>: the A64 headers one by one.
#include <asmjit/arm/a64assembler.h>
#include <asmjit/arm/a64utils.h>
#include <asmjit/core.h>

#include <array>
#include <string>
#include <utility>
#include <vector>

#include "../src/backend_p.h"
#include "../src/lowering_p.h"
#include "../src/stack_probe_p.h"

namespace exojit::vcode::detail::a64 {

using asmjit::CodeHolder;
using asmjit::a64::Gp;
using asmjit::a64::Mem;
using asmjit::a64::Vec;
using AsmLabel = asmjit::Label;
namespace arm64 = asmjit::a64;

inline constexpr uint32_t kFloatVarBase = 8;
inline constexpr uint32_t kScratch0 = 16, kScratch1 = 17;    // x16, x17
inline constexpr uint32_t kVScratch0 = 16, kVScratch1 = 17;  // v16, v17
inline constexpr int kStageSlots = kMaxIntArgs + kMaxFloatArgs;

struct Frame {
  int32_t stage = 0;        // call argument staging area
  int32_t vector_save = 0;  // 128-bit float-file variables saved around calls (16 bytes each)
  bool save_vectors = false;
  bool calls = false;  // the function calls (x30 saved)
  int32_t size = 0;    // bytes below the register save area (locals, staging)
  std::vector<int32_t> local_offset;
  // Callee-saved registers the prologue stores at [sp + size + 8 * i]: x registers (x30 first
  // when the function calls), then d registers.
  std::vector<uint32_t> saved_x;
  std::vector<uint32_t> saved_d;
  int32_t save_bytes = 0;
  uint32_t float_vars_used = 0;
};

// Records the first assembler error (asmjit is not compiled to let exceptions through it); the
// skeleton checks it after each record.
class FirstError : public asmjit::ErrorHandler {
 public:
  void handleError(asmjit::Error err, const char* message, asmjit::BaseEmitter*) override;
  bool failed = false;
  std::string text;
};

class A64Emitter : public Lowering<A64Emitter, AsmLabel> {
 public:
  using Label = AsmLabel;
  A64Emitter(const Module& m, CodeHolder& code, CodeNotes* notes = nullptr,
             bool stack_probes = true);
  ~A64Emitter() { a_.resetErrorHandler(); }
  // Lowers every function; `ranges` receives each one's begin and end labels.
  void module(std::vector<std::pair<Label, Label>>& ranges) {
    lower_module();
    for (const Entry& e : entries()) ranges.emplace_back(e.begin, e.end);
  }

  // --- what the skeleton (lowering.h) asks of a back end
  static constexpr Target kTarget = Target::AArch64;
  static constexpr uint8_t kBlindReg = 9;  // x9: used by nothing else (blinding_p.h)
  void load_blinded(uint64_t v, const BlindKey& key);
  void float_from_blinded(const Insn& set);
  static constexpr uint8_t kIntTemp[kIntTemps] = {0, 1, 2, 3, 4, 5, 6};
  static constexpr uint8_t kIntVar[kIntVars] = {19, 20, 21, 22, 23, 24};
  static constexpr uint8_t kFloatVarBase = uint8_t(a64::kFloatVarBase);
  Label new_label() { return a_.newLabel(); }
  void bind(Label l) { a_.bind(l); }
  size_t offset() const { return a_.offset(); }
  void begin_record() {}  // asmjit's assembler finds room itself
  bool failed() const { return errors_.failed; }
  const std::string& error() const { return errors_.text; }
  void layout_frame();
  void prologue();
  void insn(const Insn& in);
  void end_function() { emit_constant_pool(); }

 private:
  // --- registers (inline: used by every instruction)
  Gp x(uint32_t r) const { return arm64::x(phys_[r]); }
  // The register at the operation width of type t: X for 64-bit types, else W.
  static Gp at_width(uint32_t id, Type t) {
    return type_bits(t) == 64 ? Gp(arm64::x(id)) : Gp(arm64::w(id));
  }
  Gp gp(uint32_t r, Type t) const { return at_width(phys_[r], t); }
  // Float registers: s or d by type; q for vectors.
  Vec fp(uint32_t r) const {
    return info(r).type == Type::F32 ? Vec(arm64::s(phys_[r])) : Vec(arm64::d(phys_[r]));
  }
  Vec q(uint32_t r) const { return arm64::v(phys_[r]); }

  // --- emit.cpp
  void normalize(const Gp& d, Type t);
  void mov_imm(const Gp& d, uint64_t v);
  void add_imm(const Gp& d, const Gp& a, int64_t v);
  void sp_adjust(bool down, int64_t bytes);
  void allocate_frame();  // probes large frames (../src/stack_probe_p.h)
  void epilogue();
  void note_saved(const std::vector<uint32_t>& regs, size_t i, int32_t at,
                  unsigned (*dwarf)(unsigned));
  Mem mem(const Insn& in, int size);
  void int_binary(const Insn& in);
  void int_binary_imm(const Insn& in);
  void unary(const Insn& in);
  void bswap(const Insn& in);
  void set(const Insn& in);
  void cksum(const Insn& in);
  void bound_mask(const Insn& in);
  void bound_zero(const Insn& in);
  void cksum_fold(const Insn& in);
  void load(const Insn& in);
  void store(const Insn& in);

  // --- emit_float.cpp
  void convert(const Insn& in);
  void float_binary(const Insn& in);
  void float_set(const Insn& in);

  // --- emit_vector.cpp
  void vector(const Insn& in);
  void vector_set(const Insn& in, const Vec& d);
  void hsum(const Insn& in);
  void crc32c(const Insn& in);
  AsmLabel constant(const std::array<uint8_t, 16>& bytes);
  void emit_constant_pool();

  // --- emit_control.cpp
  void branch(const Insn& in);
  void compare_imm(const Gp& a, int64_t v);
  void call(const Insn& in);
  void ret(const Insn& in);

  FirstError errors_;
  arm64::Assembler a_;
  Frame frame_;
  bool has_crc32_ = true;
  bool probes_ = true;  // stack probes for large frames (off only in tests)
  std::vector<std::pair<AsmLabel, std::array<uint8_t, 16>>> pool_;
};

}  // namespace exojit::vcode::detail::a64
