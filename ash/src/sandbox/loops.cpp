// SPDX-License-Identifier: MIT
// Loops (lowerer_p.h): every back edge's target charges the loop's size to the budget, and an
// array walk keeps its translation across iterations (its check hoisted to the loop's entry).
#include <cstddef>

#include "check_p.h"
#include "lowerer_p.h"

namespace exojit::ash::sandbox {

using vcode::Insn;
using vcode::Op;

namespace {

constexpr int64_t off_budget = offsetof(RunState, budget);
// An offset no access fits in (the value of s0 when no translation is held). It is only ever
// compared, never moved: a loop whose head could be re-entered before its first access (and so
// move the base with the marker in s0) is not hoisted (plan_loops).
constexpr int64_t kOutOfPage = int64_t(1) << 62;

}  // namespace

// Back edges: a branch or jump to a label placed at or before it.
void Lowerer::find_loops() {
  label_pos_.assign(in_.num_labels, ~size_t(0));
  for (size_t i = 0; i < in_.code.size(); ++i)
    if (in_.code[i].op == Op::Place) label_pos_[in_.code[i].dst] = i;
  loop_source_.assign(in_.num_labels, ~size_t(0));
  for (size_t i = 0; i < in_.code.size(); ++i) {
    const Insn& x = in_.code[i];
    if (!(vcode::is_branch(x.op) || x.op == Op::Jmp)) continue;
    size_t p = label_pos_[x.dst];
    if (p <= i && (loop_source_[x.dst] == ~size_t(0) || loop_source_[x.dst] < i))
      loop_source_[x.dst] = i;
  }
  charge_at_.assign(in_.num_labels, ~size_t(0));
  label_out_.assign(in_.num_labels, 0);
}

void Lowerer::patch_loop_charges() {
  for (uint32_t l = 0; l < in_.num_labels; ++l) {
    if (charge_at_[l] == ~size_t(0)) continue;
    int64_t k = int64_t(out_end_[loop_source_[l]]) - int64_t(label_out_[l]);
    out_.code[charge_at_[l]].imm = k < 1 ? 1 : k;
  }
}

void Lowerer::charge_budget(uint32_t label) {
  load(Op::Ld, s64_, state_, off_budget);
  charge_at_[label] = out_.code.size();
  bin_imm(Op::Sub, s64_, s64_, 1);  // patched with the loop's size
  store(Op::St, s64_, state_, off_budget);
  br_imm(Op::Blt, s64_, 0, l_budget_);
}

// `add b, b, imm` / `sub b, b, imm`: the base moves by a constant (*step).
bool Lowerer::base_step(const Insn& x, uint32_t b, int64_t* step) {
  if ((x.op != Op::Add && x.op != Op::Sub) || !(x.flags & vcode::kImm) || x.dst != b || x.a != b)
    return false;
  *step = x.op == Op::Add ? x.imm : wrap_sub(0, x.imm);
  return true;
}

// The loops that keep their translation (LoopPlan, lowerer_p.h).
void Lowerer::plan_loops() {
  loop_plan_.assign(in_.num_labels, LoopPlan{});
  if (o_.trusted || o_.region_len == 0 || o_.region_len % uint64_t(kPage) != 0) return;
  for (uint32_t l = 0; l < in_.num_labels; ++l) {
    size_t head = label_pos_[l], end = loop_source_[l];
    if (end == ~size_t(0) || head == ~size_t(0)) continue;
    if (head > 0 && vcode::is_terminator(in_.code[head - 1].op)) continue;
    bool ok = true, found = false;
    LoopPlan lp;
    int64_t moved = 0;
    for (size_t i = 0; ok && i < in_.code.size(); ++i) {
      const Insn& x = in_.code[i];
      bool jump = vcode::is_branch(x.op) || x.op == Op::Jmp;
      if (jump && x.dst == l && i < head) ok = false;  // entered by a forward jump
      if (i <= head || i > end) continue;
      if (jump && x.dst == l && !found) ok = false;  // a back edge before the first access
      if (x.op == Op::Place || x.op == Op::Call || x.op == Op::Div || x.op == Op::Mod) {
        ok = false;
      } else if (vcode::is_load(x.op) || vcode::is_store(x.op)) {
        if (x.flags & vcode::kLocalBase) continue;
        if (inline_site(hb_, x) || (x.flags & vcode::kIndex)) {
          ok = false;
        } else if (!found) {
          found = true;
          lp = LoopPlan{true, x.a, wrap_add(x.imm, moved), vcode::is_store(x.op),
                        vcode::type_bytes(x.type)};
        } else if (x.a != lp.base || vcode::is_store(x.op) != lp.write) {
          ok = false;
        }
      }
      if (!ok || !found) {
        // Moves of the base before the first access: found out once the base is known.
        continue;
      }
      int64_t step = 0;
      if (base_step(x, lp.base, &step)) continue;
      if (vcode::defined_reg(x) == int64_t(lp.base)) ok = false;
    }
    if (!ok || !found) continue;
    // The base's moves before the first access shift the displacement at the head.
    moved = 0;
    for (size_t i = head + 1; i <= end; ++i) {
      const Insn& x = in_.code[i];
      if ((vcode::is_load(x.op) || vcode::is_store(x.op)) && !(x.flags & vcode::kLocalBase)) break;
      int64_t step = 0;
      if (base_step(x, lp.base, &step)) {
        moved = wrap_add(moved, step);
      } else if (vcode::defined_reg(x) == int64_t(lp.base)) {
        ok = false;
      }
    }
    if (!ok) continue;
    lp.disp = wrap_add(lp.disp, moved);
    loop_plan_[l] = lp;
  }
}

// Before a back edge to loop head `l`: s0 must be the offset, in s1's page, of the base plus
// the head's displacement (or out of any page).
void Lowerer::enter_loop_head(uint32_t l) {
  const LoopPlan& lp = loop_plan_[l];
  if (cache_valid_ && cache_base_ == lp.base && cache_write_ == lp.write) {
    if (cache_disp_ != lp.disp) bin_imm(Op::Add, sp_[0], sp_[0], wrap_sub(lp.disp, cache_disp_));
    cache_disp_ = lp.disp;
    return;
  }
  set(sp_[0], kOutOfPage);
  set(sp_[1], 0);
}

// The loop's entry: translates the base plus the head's displacement without faulting.
void Lowerer::loop_preheader(const LoopPlan& lp) {
  Reg s0 = sp_[0], s1 = sp_[1], s2 = sp_[2];
  uint32_t miss = new_label("loop_miss"), done = new_label("loop_head");
  bin_imm(Op::Add, s0, Reg{lp.base}, wrap_sub(lp.disp, int64_t(o_.region_va)));
  br_imm(Op::Bgt, s0, int64_t(o_.region_len) - 1, miss);
  mask_offset(s0, s2, int64_t(o_.region_len) - 1);  // the software TLB's index
  bin_imm(Op::Rsh, s2, s0, runtime::kPageShift);
  bin_imm(Op::Lsh, s2, s2, 3);
  load_ix(Op::Ld, s1, state_, s2, lp.write ? o_.tlb_write : o_.tlb_read);
  br_imm(Op::Beq, s1, 0, miss);
  bin_imm(Op::And, s0, s0, kPage - 1);
  jmp(done);
  place(miss);
  set(s0, kOutOfPage);
  set(s1, 0);
  place(done);
}

}  // namespace exojit::ash::sandbox
