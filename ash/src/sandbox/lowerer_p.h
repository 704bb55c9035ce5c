// SPDX-License-Identifier: MIT
// The lowering of a checked handler into the vcode function the kernel runs (sandbox_p.h lists
// what is rewritten into what). One class, its parts in one file each:
//   lower.cpp    the pass itself: entry, locals, dispatch by opcode, divisions, emission;
//   memory.cpp   application loads/stores: region and software-TLB checks, reused translations;
//   loops.cpp    back edges: budget charges, checks hoisted out of array walks;
//   message.cpp  the message primitives (inline loads of the message, calls to ash_call).
// Private to ash/.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "exojit/ash/builder.h"
#include "exojit/runtime/physical_memory.h"
#include "exojit/vcode/ir.h"
#include "sandbox_p.h"

namespace exojit::ash::sandbox {

inline constexpr int64_t kPage = int64_t(runtime::kPageSize);

// Displacements, steps and addresses are arbitrary 64-bit constants: offsets are computed
// modulo 2^64 as the machine computes them (no signed overflow in the compiler).
constexpr int64_t wrap_add(int64_t a, int64_t b) {
  return int64_t(uint64_t(a) + uint64_t(b));
}
constexpr int64_t wrap_sub(int64_t a, int64_t b) {
  return int64_t(uint64_t(a) - uint64_t(b));
}

class Lowerer {
 public:
  Lowerer(const HandlerBuilder& hb, const LowerOptions& o)
      : hb_(hb), o_(o), in_(hb.function()), out_(lowered_.module.add_function(in_.name, in_.sig)) {}

  Lowered run();

 private:
  using Insn = vcode::Insn;
  using Op = vcode::Op;

  // Loops whose accesses all go through one base register moved by constants (an array walk)
  // keep the translation across iterations: the check is hoisted to the loop's entry (a soft
  // check that never faults: a failed one leaves s0 out of any page, so the first access checks
  // in full) and each access only checks that it stays in the page. Conditions: the loop head
  // is entered by falling into it and by back edges only; its body has no labels, calls,
  // divisions or message primitives; every application access is through the same base, of
  // the same kind, without index; the base changes only by constants; no back edge comes
  // before the first access (so the "no translation" marker is never moved by a step: the
  // first access of the first pass compares it as it is and checks in full).
  struct LoopPlan {
    bool valid = false;
    uint32_t base = 0;
    int64_t disp = 0;  // of the first access, relative to the base at the head
    bool write = false;
    int64_t size = 1;
  };

  // lower.cpp
  void setup();
  void zero_locals();
  Reg alias(const vcode::RegInfo& slot_of, Type t, std::string name);
  uint32_t new_label(std::string name);
  void lower(size_t i);
  void lower_insn(size_t i, const Insn& x);
  void guarded_division(const Insn& in);

  // -- emission --
  void emit(Op op, Type t, uint8_t flags, uint32_t dst, uint32_t a, uint32_t b, int64_t imm);
  Type type(Reg r) const { return out_.regs[r.id].type; }
  void bin_imm(Op op, Reg d, Reg a, int64_t imm) {
    emit(op, type(d), vcode::kImm, d.id, a.id, 0, vcode::normalize_imm(type(d), imm));
  }
  void bin(Op op, Reg d, Reg a, Reg b) { emit(op, type(d), 0, d.id, a.id, b.id, 0); }
  void to_p(Reg d, Reg src) {
    emit(type(src) == Type::P ? Op::Mov : Op::Cvt, Type::P, 0, d.id, src.id, 0, 0);
  }
  void load(Op op, Reg d, Reg base, int64_t disp) { emit(op, type(d), 0, d.id, base.id, 0, disp); }
  void load_ix(Op op, Reg d, Reg base, Reg index, int64_t disp) {
    emit(op, type(d), vcode::kIndex, d.id, base.id, index.id, disp);
  }
  void store(Op op, Reg v, Reg base, int64_t disp) { emit(op, type(v), 0, v.id, base.id, 0, disp); }
  void br_imm(Op op, Reg a, int64_t imm, uint32_t label) {
    emit(op, type(a), vcode::kImm, label, a.id, 0, vcode::normalize_imm(type(a), imm));
  }
  void br(Op op, Reg a, Reg b, uint32_t label) { emit(op, type(a), 0, label, a.id, b.id, 0); }
  void jmp(uint32_t label) { emit(Op::Jmp, Type::Void, 0, label, 0, 0, 0); }
  void place(uint32_t label) { emit(Op::Place, Type::Void, 0, label, 0, 0, 0); }
  void ret_imm(int64_t v) { emit(Op::Ret, Type::U32, vcode::kImm, 0, 0, 0, v); }
  void set(Reg d, int64_t v) { emit(Op::Set, type(d), 0, d.id, 0, 0, v); }

  // memory.cpp
  void mask_offset(Reg x, Reg m, int64_t limit);
  static Op unaligned(Op op);
  void app_access(const Insn& x);
  void full_check(const Insn& x, Reg base, int64_t disp, int64_t size, bool write, uint32_t back);

  // loops.cpp
  void find_loops();
  void patch_loop_charges();
  void charge_budget(uint32_t label);
  static bool base_step(const Insn& x, uint32_t b, int64_t* step);
  void plan_loops();
  void enter_loop_head(uint32_t l);
  void loop_preheader(const LoopPlan& lp);

  // message.cpp
  void cursor_plus(const Operand* extra, int64_t constant, bool absolute = false);
  void message_load(const Insn& x, Op op, int64_t width);
  void lower_inline(const Insn& x, const Site& s);
  void lower_call(const Insn& x, const Site& s);

  const HandlerBuilder& hb_;
  const LowerOptions& o_;
  const vcode::Function& in_;
  Lowered lowered_;
  vcode::Function& out_;
  Reg sp_[3], s32_, s64_, s8_, state_;
  uint32_t helper_ = 0;
  uint32_t l_fault_ = 0, l_budget_ = 0, l_helper_ = 0;
  std::vector<size_t> label_pos_, loop_source_, charge_at_;
  std::vector<LoopPlan> loop_plan_;
  std::vector<uint32_t> label_out_, out_end_;
  std::vector<Insn> tail_;
  // The last application access's translation, while s0/s1 still hold it (app_access).
  bool cache_valid_ = false, cache_write_ = false;
  uint32_t cache_base_ = ~uint32_t(0);
  int64_t cache_disp_ = 0;
  uint32_t reused_ = 0;
};

}  // namespace exojit::ash::sandbox
