// SPDX-License-Identifier: MIT
#include <algorithm>
#include <cstddef>
#include <string>
#include <vector>

#include "exojit/error.h"
#include "exojit/runtime/physical_memory.h"
#include "exojit/vcode/verify.h"
#include "sandbox_p.h"

namespace exojit::ash {

using vcode::Function;
using vcode::Insn;
using vcode::Op;

namespace {

constexpr int64_t kPage = int64_t(runtime::kPageSize);
constexpr int64_t kMaxMsgOffset = 0xffff;
// An offset no access fits in (the value of s0 when no translation is held). It is only ever
// compared, never moved: a loop whose head could be re-entered before its first access (and so
// move the base with the marker in s0) is not hoisted (plan_loops).
constexpr int64_t kOutOfPage = int64_t(1) << 62;
// Limits on the side tables of a handler's records, so that nothing the lowering allocates by
// them grows with a forged count.
constexpr size_t kMaxRegsPerInsn = 3;

// Displacements, steps and addresses are arbitrary 64-bit constants: offsets are computed
// modulo 2^64 as the machine computes them (no signed overflow in the compiler).
constexpr int64_t wrap_add(int64_t a, int64_t b) {
  return int64_t(uint64_t(a) + uint64_t(b));
}
constexpr int64_t wrap_sub(int64_t a, int64_t b) {
  return int64_t(uint64_t(a) - uint64_t(b));
}

// The flags an opcode may carry in a handler (every other bit is refused). With each_reg, the
// one place of the sandbox that knows operand roles by opcode.
uint8_t allowed_flags(Op op) {
  if (vcode::is_load(op) || vcode::is_store(op)) return vcode::kIndex | vcode::kLocalBase;
  if (vcode::is_binary(op) || vcode::is_branch(op) || op == Op::Cksum) return vcode::kImm;
  if (op == Op::Call) return vcode::kExtern | vcode::kVoid;
  if (op == Op::Ret || op == Op::Set) return vcode::kImm;
  return 0;
}

// The number of register operands a call primitive passes, and whether it produces a value.
size_t register_operands(const Site& s) {
  size_t n = 0;
  for (const Operand& o : s.operands) n += std::holds_alternative<Reg>(o);
  return n;
}
bool produces_value(PrimKind k) {
  return k == PrimKind::PipeGet || k == PrimKind::ReplyCksum || k == PrimKind::ReplySend;
}

constexpr int64_t off_msg = offsetof(RunState, msg);
constexpr int64_t off_len = offsetof(RunState, msg_len);
constexpr int64_t off_cursor = offsetof(RunState, cursor);
constexpr int64_t off_budget = offsetof(RunState, budget);
constexpr int64_t off_site = offsetof(RunState, site);
constexpr int64_t off_result = offsetof(RunState, result);

class Lowerer {
 public:
  Lowerer(const HandlerBuilder& hb, const LowerOptions& o)
      : hb_(hb), o_(o), in_(hb.function()), out_(lowered_.module.add_function(in_.name, in_.sig)) {}

  Lowered run() {
    check_rules();
    setup();
    if (!in_.locals.empty()) zero_locals();
    find_loops();
    plan_loops();
    for (size_t i = 0; i < in_.code.size(); ++i) {
      lower(i);
      out_end_[i] = uint32_t(out_.code.size());
    }
    patch_loop_charges();
    for (const Insn& x : tail_) out_.code.push_back(x);
    place(l_fault_);
    ret_imm(kRetFault);
    place(l_budget_);
    ret_imm(kRetBudget);
    place(l_helper_);
    emit(Op::Ret, Type::U32, 0, 0, s32_.id, 0, 0);
    for (const Insn& x : out_.code) out_.op_mask |= uint64_t(1) << unsigned(x.op);
    vcode::verify(lowered_.module, out_);
    out_.verified = true;
    lowered_.static_cost = uint32_t(out_.code.size());
    return std::move(lowered_);
  }

 private:
  [[noreturn]] void refuse(size_t i, const std::string& why) const {
    fail("ash handler {}: refused at instruction {} ({}): {}", in_.name, i,
         vcode::op_name(in_.code[i].op), why);
  }

  bool reserved(uint32_t r) const {
    if (r == hb_.state().id) return true;
    for (Reg s : hb_.scratch())
      if (s.id == r) return true;
    return false;
  }

  // The registers an instruction names (read or written), from the instruction table.
  template <typename F>
  void each_reg(const Insn& x, F f) const {
    vcode::for_each_use(in_, x, f);
    if (int64_t d = vcode::defined_reg(x); d >= 0) f(uint32_t(d));
  }

  const Site* inline_site(const Insn& x) const {
    if (!(vcode::is_load(x.op) || vcode::is_store(x.op)) || (x.flags & vcode::kLocalBase) ||
        x.a != hb_.state().id)
      return nullptr;
    uint64_t k = uint64_t(x.imm) - uint64_t(HandlerBuilder::kSiteTag);
    if (k >= hb_.sites().size()) return nullptr;
    const Site* s = &hb_.sites()[size_t(k)];
    return prim_is_inline(s->kind) ? s : nullptr;
  }

  // Everything the lowering relies on, re-derived from the records: a handler is data handed
  // across a trust boundary, and its Function may have been edited after finish() (the
  // verified flag proves nothing). vcode's verifier checks the records' shape (register slots
  // in their pools, parameters, types, label, local and argument indexes, definitions on every
  // path, no falling off the end); then the ASH rules.
  void check_rules() const {
    if (in_.code.size() > o_.max_insns)
      fail("ash handler {}: {} instructions, more than the limit of {}", in_.name, in_.code.size(),
           o_.max_insns);
    if (in_.num_labels > o_.max_insns || in_.regs.size() > kMaxRegsPerInsn * o_.max_insns + 8 ||
        in_.call_args.size() > kMaxRegsPerInsn * o_.max_insns || in_.locals.size() > o_.max_locals)
      fail(
          "ash handler {}: more labels, registers, call arguments or locals than {} instructions "
          "can use",
          in_.name, o_.max_insns);
    vcode::verify(hb_.module(), in_);
    check_frame();
    for (const vcode::RegInfo& r : in_.regs)
      if (!vcode::is_int(r.type))
        fail("ash handler {}: {} registers are not allowed (no floating point or vectors)",
             in_.name, vcode::type_name(r.type));
    // A register given back and taken again could share a reserved register's machine register.
    for (uint32_t r = 0; r < in_.regs.size(); ++r) {
      if (reserved(r)) continue;
      for (Reg k : reserved_regs())
        if (vcode::same_machine_register(in_.regs[k.id], in_.regs[r]))
          fail("ash handler {}: register %r{} shares a machine register with the sandbox's",
               in_.name, r);
    }
    uint64_t local_bytes = 0;
    for (const vcode::LocalInfo& l : in_.locals) local_bytes += uint64_t(l.size) + l.align;
    if (local_bytes > o_.max_locals)
      fail("ash handler {}: locals take {} bytes, more than the limit of {} (stack abuse)",
           in_.name, local_bytes, o_.max_locals);
    for (const Site& site : hb_.sites()) check_site(site);
    for (size_t i = 0; i < in_.code.size(); ++i) check_insn(i);
  }

  std::vector<Reg> reserved_regs() const {
    std::vector<Reg> r = hb_.scratch();
    r.push_back(hb_.state());
    return r;
  }

  // The signature u32(p state), and the reserved registers as the builder made them: the state
  // a variable, the three scratch registers temporaries, each in its own machine register.
  void check_frame() const {
    const vcode::Signature& sig = in_.sig;
    uint32_t st = hb_.state().id;
    if (sig.ret != Type::U32 || sig.params.size() != 1 || sig.params[0] != Type::P ||
        in_.params.size() != 1 || in_.params[0].id != st)
      fail("ash handler {}: the signature is not u32(p state)", in_.name);
    auto is_reg = [&](uint32_t id, RegClass cls) {
      return id < in_.regs.size() && in_.regs[id].type == Type::P && in_.regs[id].cls == cls;
    };
    if (!is_reg(st, RegClass::Var) || hb_.scratch().size() != 3)
      fail("ash handler {}: the state register was changed", in_.name);
    for (size_t k = 0; k < 3; ++k) {
      uint32_t id = hb_.scratch()[k].id;
      if (!is_reg(id, RegClass::Temp))
        fail("ash handler {}: the sandbox's scratch registers were changed", in_.name);
      for (size_t j = 0; j < k; ++j)
        if (in_.regs[hb_.scratch()[j].id].slot == in_.regs[id].slot)
          fail("ash handler {}: the sandbox's scratch registers share a slot", in_.name);
    }
  }

  // A primitive's record as the builder makes it (sites are the builder's own, not the
  // Function's; checked all the same: they index pipe lists and persistent registers).
  void check_site(const Site& s) const {
    size_t want = 0;
    switch (s.kind) {
      case PrimKind::Peek:
      case PrimKind::PeekAt:
      case PrimKind::Skip:
      case PrimKind::Scan:
      case PrimKind::PipeSet:
      case PrimKind::ReplyPut:
        want = 1;
        break;
      case PrimKind::Consume:
      case PrimKind::ReplyPoke:
      case PrimKind::ReplyCopy:
      case PrimKind::ReplyApp:
      case PrimKind::ReplyCksum:
        want = 2;
        break;
      default:
        want = 0;
    }
    bool ok = s.operands.size() == want && uint8_t(s.kind) <= uint8_t(PrimKind::ReplySend) &&
              s.pipes >= -1 && s.pipes < int(hb_.pipe_lists().size()) &&
              (s.kind != PrimKind::Scan || s.pipes >= 0) && s.width <= 8;
    if (s.kind == PrimKind::PipeGet || s.kind == PrimKind::PipeSet)
      ok = ok && s.ref >= 0 && size_t(s.ref) < hb_.pipe_refs().size();
    if (!ok) fail("ash handler {}: a malformed {} primitive", in_.name, prim_name(s.kind));
  }

  void check_insn(size_t i) const {
    const Insn& x = in_.code[i];
    if (x.flags & vcode::kOwnedImm)  // a handler's constants are never exempt from blinding
      refuse(i, "a constant marked owned: only the kernel's own constants escape blinding");
    if (x.flags & ~allowed_flags(x.op)) refuse(i, "flags the operation does not take");
    if (vcode::has_flag(x.op, vcode::kOpCodeAddress)) refuse(i, "indirect jumps are not allowed");
    if (vcode::has_flag(x.op, vcode::kOpStackAddress))
      refuse(i, "addresses of locals are not allowed");
    switch (x.op) {
      case Op::Call: {
        if (!(x.flags & vcode::kExtern)) refuse(i, "calls to other functions are not allowed");
        int site = uint64_t(x.imm) > UINT32_MAX ? -1 : hb_.site_of_extern(uint32_t(x.imm));
        if (site < 0) refuse(i, "calls to anything but the message primitives are not allowed");
        const Site& s = hb_.sites()[size_t(site)];
        if (prim_is_inline(s.kind) || x.b != register_operands(s) || x.b > 3 ||
            (!(x.flags & vcode::kVoid) && !produces_value(s.kind)))
          refuse(i, "a malformed primitive");
        break;
      }
      case Op::Ret:
        if (!(x.flags & vcode::kImm) || (x.imm != 0 && x.imm != 1))
          refuse(i, "a handler ends with commit() or abort()");
        break;
      case Op::Div:
      case Op::Mod:
        if ((x.flags & vcode::kImm) && vcode::normalize_imm(x.type, x.imm) == 0)
          refuse(i, "division by the constant 0");
        break;
      default:
        break;
    }
    if (const Site* s = inline_site(x)) {
      bool is_skip = s->kind == PrimKind::Skip;
      if (is_skip != vcode::is_store(x.op)) refuse(i, "a malformed primitive");
      if (!is_skip && x.type != s->result) refuse(i, "a malformed primitive");
      if (s->width != 0 && !is_skip && s->width != vcode::type_bytes(x.type))
        refuse(i, "a malformed primitive");
      if (is_skip && !(std::holds_alternative<int64_t>(s->operands[0]) && x.dst == x.a) &&
          reserved(x.dst))
        refuse(i, "the reserved registers are the sandbox's");
      if (!is_skip && reserved(x.dst)) refuse(i, "the reserved registers are the sandbox's");
      bool reg_offset = !s->operands.empty() && std::holds_alternative<Reg>(s->operands[0]);
      if (!is_skip && reg_offset != bool(x.flags & vcode::kIndex))
        refuse(i, "a malformed primitive");
      if ((x.flags & vcode::kIndex) && (is_skip || reserved(x.b)))
        refuse(i, "the reserved registers are the sandbox's");
      return;
    }
    each_reg(x, [&](uint32_t r) {
      if (reserved(r)) refuse(i, "the reserved registers are the sandbox's");
    });
  }

  void setup() {
    out_.params = in_.params;
    out_.regs = in_.regs;
    out_.reg_names = in_.reg_names;
    out_.reg_names.resize(out_.regs.size());
    out_.num_labels = in_.num_labels;
    out_.label_names = in_.label_names;
    out_.label_names.resize(out_.num_labels);
    out_.locals = in_.locals;
    out_.call_args.clear();
    helper_ = lowered_.module.add_extern(
        "ash_call", vcode::Signature{{Type::P, Type::P, Type::P, Type::P}, Type::U32},
        reinterpret_cast<void*>(&exojit_ash_call));
    for (int k = 0; k < 3; ++k) {
      const vcode::RegInfo& ri = in_.regs[hb_.scratch()[size_t(k)].id];
      sp_[k] = alias(ri, Type::P, "s" + std::to_string(k));
    }
    const vcode::RegInfo& r0 = in_.regs[hb_.scratch()[0].id];
    s32_ = alias(r0, Type::U32, "s0w");
    // The budget's scratch: not s0/s1, which may hold a translation across a loop's head.
    s64_ = alias(in_.regs[hb_.scratch()[2].id], Type::I64, "s2l");
    s8_ = alias(r0, Type::U8, "s0b");
    state_ = hb_.state();
    l_fault_ = new_label("fault");
    l_budget_ = new_label("budget");
    l_helper_ = new_label("helper_abort");
    out_end_.assign(in_.code.size(), 0);
  }

  // Locals live in the kernel's stack frame: zeroed at entry, so a handler reading one before
  // writing it reads 0, not what an earlier run (of any environment's handler) left there.
  void zero_locals() {
    // Two passes, each with its own view of s0 defined: bytes for locals under 8 bytes, then
    // 8-byte stores (the last of a local may overlap the one before).
    set(s8_, 0);
    for (uint32_t l = 0; l < in_.locals.size(); ++l)
      for (int64_t off = 0; off < int64_t(in_.locals[l].size) && in_.locals[l].size < 8; ++off)
        emit(Op::Stu, Type::U8, vcode::kLocalBase, s8_.id, l, 0, off);
    set(sp_[0], 0);
    for (uint32_t l = 0; l < in_.locals.size(); ++l) {
      int64_t size = in_.locals[l].size;
      for (int64_t off = 0; size >= 8 && off < size; off += 8)
        emit(Op::Stu, Type::P, vcode::kLocalBase, sp_[0].id, l, 0, std::min(off, size - 8));
    }
  }

  Reg alias(const vcode::RegInfo& slot_of, Type t, std::string name) {
    out_.regs.push_back(vcode::RegInfo{t, slot_of.cls, slot_of.slot});
    out_.reg_names.push_back(std::move(name));
    return Reg{uint32_t(out_.regs.size() - 1)};
  }

  uint32_t new_label(std::string name) {
    out_.label_names.push_back(std::move(name));
    return out_.num_labels++;
  }

  // Back edges: a branch or jump to a label placed at or before it.
  void find_loops() {
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

  void patch_loop_charges() {
    for (uint32_t l = 0; l < in_.num_labels; ++l) {
      if (charge_at_[l] == ~size_t(0)) continue;
      int64_t k = int64_t(out_end_[loop_source_[l]]) - int64_t(label_out_[l]);
      out_.code[charge_at_[l]].imm = k < 1 ? 1 : k;
    }
  }

  // -- emission --
  void emit(Op op, Type t, uint8_t flags, uint32_t dst, uint32_t a, uint32_t b, int64_t imm) {
    Insn& x = out_.code.emplace_back();
    x.op = op;
    x.type = t;
    x.flags = flags;
    x.dst = dst;
    x.a = a;
    x.b = b;
    x.imm = imm;
  }
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

  // Hardening (Spectre v1): right after the branch that checked x <= limit, x &= (x <= limit ?
  // ~0 : 0) with m as the mask's register, so that a mispredicted check accesses offset 0 of
  // what it guards, never past it.
  void mask_offset(Reg x, Reg m, int64_t limit) {
    if (!o_.harden) return;
    emit(Op::BoundMask, type(x), vcode::kImm, m.id, x.id, 0, limit);
    bin(Op::And, x, x, m);
  }

  // -- lowering --
  void lower(size_t i) {
    const Insn& x = in_.code[i];
    bool jump = vcode::is_branch(x.op) || x.op == Op::Jmp;
    if (jump && loop_plan_[x.dst].valid && label_pos_[x.dst] <= i) enter_loop_head(x.dst);
    lower_insn(i, x);
    // The cached translation (see app_access) survives only straight-line code that leaves the
    // scratch registers and the base register alone; adding a constant to the base moves it.
    bool keeps = x.op != Op::Place && x.op != Op::Call && x.op != Op::Div && x.op != Op::Mod;
    if (vcode::is_load(x.op) || vcode::is_store(x.op))
      keeps = keeps && !(x.flags & vcode::kLocalBase ? false : inline_site(x) != nullptr);
    if (int64_t step = 0; cache_valid_ && base_step(x, cache_base_, &step)) {
      cache_disp_ = wrap_sub(cache_disp_, step);
    } else if (vcode::defined_reg(x) == int64_t(cache_base_)) {
      keeps = false;
    }
    if (!keeps) cache_valid_ = false;
    if (x.op == Op::Place && loop_plan_[x.dst].valid) {
      const LoopPlan& lp = loop_plan_[x.dst];
      cache_valid_ = true;
      cache_base_ = lp.base;
      cache_disp_ = lp.disp;
      cache_write_ = lp.write;
    }
  }

  // `add b, b, imm` / `sub b, b, imm`: the base moves by a constant (*step).
  static bool base_step(const Insn& x, uint32_t b, int64_t* step) {
    if ((x.op != Op::Add && x.op != Op::Sub) || !(x.flags & vcode::kImm) || x.dst != b || x.a != b)
      return false;
    *step = x.op == Op::Add ? x.imm : wrap_sub(0, x.imm);
    return true;
  }

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

  void plan_loops() {
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
          if (inline_site(x) || (x.flags & vcode::kIndex)) {
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
        if ((vcode::is_load(x.op) || vcode::is_store(x.op)) && !(x.flags & vcode::kLocalBase))
          break;
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
  void enter_loop_head(uint32_t l) {
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
  void loop_preheader(const LoopPlan& lp) {
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

  void lower_insn(size_t i, const Insn& x) {
    switch (x.op) {
      case Op::Place:
        if (loop_plan_[x.dst].valid) loop_preheader(loop_plan_[x.dst]);
        out_.code.push_back(x);
        label_out_[x.dst] = uint32_t(out_.code.size());
        if (loop_source_[x.dst] != ~size_t(0)) charge_budget(x.dst);
        return;
      case Op::Ld:
      case Op::Ldu:
      case Op::Ldbe:
      case Op::St:
      case Op::Stu:
      case Op::Stbe:
        if (x.flags & vcode::kLocalBase) {
          Insn y = x;
          if (y.op == Op::Ld) y.op = Op::Ldu;
          if (y.op == Op::St) y.op = Op::Stu;
          out_.code.push_back(y);
        } else if (const Site* s = inline_site(x)) {
          lower_inline(x, *s);
        } else if (x.a == state_.id) {
          refuse(i, "the reserved registers are the sandbox's");
        } else {
          app_access(x);
        }
        return;
      case Op::Div:
      case Op::Mod:
        return guarded_division(x);
      case Op::Call:
        return lower_call(x, hb_.sites()[size_t(hb_.site_of_extern(uint32_t(x.imm)))]);
      case Op::Ret:
        return ret_imm(x.imm);  // commit or abort (check_insn), re-emitted as the sandbox's
      default: {
        // Constants as a register of the operation's type holds them: a back end may truncate,
        // and the checks above compared the normalized value.
        Insn y = x;
        if ((y.flags & vcode::kImm) || y.op == Op::Set) y.imm = vcode::normalize_imm(y.type, y.imm);
        out_.code.push_back(y);
        return;
      }
    }
  }

  void charge_budget(uint32_t label) {
    load(Op::Ld, s64_, state_, off_budget);
    charge_at_[label] = out_.code.size();
    bin_imm(Op::Sub, s64_, s64_, 1);  // patched with the loop's size
    store(Op::St, s64_, state_, off_budget);
    br_imm(Op::Blt, s64_, 0, l_budget_);
  }

  static Op unaligned(Op op) {
    if (op == Op::Ld) return Op::Ldu;
    if (op == Op::St) return Op::Stu;
    return op;
  }

  // A load or store of application memory: confined to the region's mapped pages.
  //
  // Checked: the full check (region bounds, software TLB, page crossing) leaves the page's host
  // address in s1 and the offset in the page in s0. A later access through the same base
  // register with a constant displacement, in the same straight-line code and of the same kind
  // (read/write), reuses them: it only checks that it stays in that page (the region is whole
  // pages, so the page is inside it), and takes the full check out of line when it does not.
  void app_access(const Insn& x) {
    const int64_t size = vcode::type_bytes(x.type);
    Reg base{x.a};
    Reg s0 = sp_[0], s1 = sp_[1];
    int64_t disp = x.imm;
    bool write = vcode::is_store(x.op);
    if (o_.trusted) {
      if (x.flags & vcode::kIndex) {
        to_p(s0, Reg{x.b});
        bin(Op::Add, s0, s0, base);
        bin_imm(Op::Add, s0, s0, wrap_add(disp, o_.trusted_delta));
      } else {
        bin_imm(Op::Add, s0, base, wrap_add(disp, o_.trusted_delta));
      }
      emit(unaligned(x.op), x.type, 0, x.dst, s0.id, 0, 0);
      return;
    }
    if (int64_t(o_.region_len) < size) {
      jmp(l_fault_);
      return;
    }
    bool indexed = x.flags & vcode::kIndex;
    uint32_t back = new_label("access");
    if (!indexed && cache_valid_ && cache_base_ == x.a && cache_write_ == write) {
      ++reused_;
      uint32_t slow = new_label("recheck");
      if (disp != cache_disp_) bin_imm(Op::Add, s0, s0, wrap_sub(disp, cache_disp_));
      br_imm(Op::Bgt, s0, kPage - size, slow);
      mask_offset(s0, sp_[2], kPage - size);
      place(back);
      emit(unaligned(x.op), x.type, vcode::kIndex, x.dst, s1.id, s0.id, 0);
      std::vector<Insn> saved;
      saved.swap(out_.code);
      place(slow);
      full_check(x, base, disp, size, write, back);
      jmp(back);
      for (const Insn& y : out_.code) tail_.push_back(y);
      out_.code.swap(saved);
    } else {
      full_check(x, base, disp, size, write, back);
      place(back);
      emit(unaligned(x.op), x.type, vcode::kIndex, x.dst, s1.id, s0.id, 0);
    }
    cache_valid_ = !indexed && o_.region_len % uint64_t(kPage) == 0 && x.dst != x.a;
    cache_base_ = x.a;
    cache_disp_ = disp;
    cache_write_ = write;
  }

  // s0 = offset in the page, s1 = the page's host address, for [base (+ index) + disp, +size);
  // faults when outside the region or not mapped; a page-crossing access goes through an
  // out-of-line check of the next page and continues at `back`.
  void full_check(const Insn& x, Reg base, int64_t disp, int64_t size, bool write, uint32_t back) {
    Reg s0 = sp_[0], s1 = sp_[1], s2 = sp_[2];
    if (x.flags & vcode::kIndex) {
      to_p(s0, Reg{x.b});
      bin(Op::Add, s0, s0, base);
      bin_imm(Op::Add, s0, s0, wrap_sub(disp, int64_t(o_.region_va)));
    } else {
      bin_imm(Op::Add, s0, base, wrap_sub(disp, int64_t(o_.region_va)));
    }
    br_imm(Op::Bgt, s0, int64_t(o_.region_len) - size, l_fault_);
    mask_offset(s0, s2, int64_t(o_.region_len) - size);  // also the software TLB's index
    bin_imm(Op::Rsh, s2, s0, runtime::kPageShift);
    bin_imm(Op::Lsh, s2, s2, 3);
    int64_t tlb = write ? o_.tlb_write : o_.tlb_read;
    load_ix(Op::Ld, s1, state_, s2, tlb);
    br_imm(Op::Beq, s1, 0, l_fault_);
    bin_imm(Op::And, s0, s0, kPage - 1);
    uint32_t cross = new_label("cross");
    br_imm(Op::Bgt, s0, kPage - size, cross);
    // Out of line: the access straddles two pages; both must be mapped and host-contiguous.
    std::vector<Insn> saved;
    saved.swap(out_.code);
    place(cross);
    load_ix(Op::Ld, s2, state_, s2, tlb + 8);
    bin_imm(Op::Sub, s2, s2, kPage);
    br(Op::Bne, s2, s1, l_fault_);
    jmp(back);
    for (const Insn& y : out_.code) tail_.push_back(y);
    out_.code.swap(saved);
    // Falls through to the access when it does not cross.
    mask_offset(s0, s2, kPage - size);
    (void)x;
  }

  void guarded_division(const Insn& in) {
    Insn x = in;
    bool signed_ = vcode::is_signed(x.type);
    if (x.flags & vcode::kImm) {
      x.imm = vcode::normalize_imm(x.type, x.imm);
      if (signed_ && x.imm == -1) {
        if (x.op == Op::Div)
          emit(Op::Neg, x.type, 0, x.dst, x.a, 0, 0);
        else
          emit(Op::Set, x.type, 0, x.dst, 0, 0, 0);
        return;
      }
      out_.code.push_back(x);
      return;
    }
    Reg b{x.b};
    br_imm(Op::Beq, b, 0, l_fault_);
    if (!signed_) {
      out_.code.push_back(x);
      return;
    }
    uint32_t ok = new_label("div_ok"), done = new_label("div_done");
    br_imm(Op::Bne, b, -1, ok);
    if (x.op == Op::Div)
      emit(Op::Neg, x.type, 0, x.dst, x.a, 0, 0);
    else
      emit(Op::Set, x.type, 0, x.dst, 0, 0, 0);
    jmp(done);
    place(ok);
    out_.code.push_back(x);
    place(done);
  }

  // cursor + extra (a register operand, at most 64 KiB, and a constant) into s0, checked to be
  // at most the message length. Hardened, s2 = the check's mask (message_load applies it).
  void cursor_plus(const Operand* extra, int64_t constant, bool absolute = false) {
    Reg s0 = sp_[0], s1 = sp_[1], s2 = sp_[2];
    if (absolute)
      set(s0, 0);
    else
      load(Op::Ld, s0, state_, off_cursor);
    if (extra)
      if (const Reg* r = std::get_if<Reg>(extra)) {
        to_p(s2, *r);
        br_imm(Op::Bgt, s2, kMaxMsgOffset, l_fault_);
        bin(Op::Add, s0, s0, s2);
      }
    if (extra)
      if (const int64_t* v = std::get_if<int64_t>(extra)) constant += *v;
    if (constant) bin_imm(Op::Add, s0, s0, constant);
    load(Op::Ld, s1, state_, off_len);
    br(Op::Bgt, s0, s1, l_fault_);
    if (o_.harden) emit(Op::BoundMask, Type::P, 0, s2.id, s0.id, s1.id, 0);
  }

  // The message load of `width` bytes ending at s0 (checked by cursor_plus). Hardened, its start
  // offset is masked: a mispredicted check reads the message's first bytes.
  void message_load(const Insn& x, Op op, int64_t width) {
    Reg s0 = sp_[0], s1 = sp_[1];
    load(Op::Ld, s1, state_, off_msg);
    if (!o_.harden) {
      emit(op, x.type, vcode::kIndex, x.dst, s1.id, s0.id, -width);
      return;
    }
    bin_imm(Op::Sub, s0, s0, width);
    bin(Op::And, s0, s0, sp_[2]);
    emit(op, x.type, vcode::kIndex, x.dst, s1.id, s0.id, 0);
  }

  void lower_inline(const Insn& x, const Site& s) {
    Reg s0 = sp_[0], s1 = sp_[1];
    Op op = x.op == Op::Ldbe ? Op::Ldbe : Op::Ldu;
    switch (s.kind) {
      case PrimKind::Peek:
      case PrimKind::PeekAt: {
        Operand off = s.operands[0];
        if (std::holds_alternative<Reg>(off)) off = Reg{x.b};  // the recorded index register
        cursor_plus(&off, s.width, s.kind == PrimKind::PeekAt);
        message_load(x, op, s.width);
        return;
      }
      case PrimKind::ConsumeField:
        cursor_plus(nullptr, s.width);
        store(Op::St, s0, state_, off_cursor);
        message_load(x, op, s.width);
        return;
      case PrimKind::Skip: {
        Operand n = s.operands[0];
        if (std::holds_alternative<Reg>(n)) n = Reg{x.dst};
        cursor_plus(&n, 0);
        store(Op::St, s0, state_, off_cursor);
        return;
      }
      case PrimKind::Length:
        emit(Op::Ldu, x.type, 0, x.dst, state_.id, 0, off_len);
        return;
      case PrimKind::Remaining:
        load(Op::Ld, s0, state_, off_len);
        load(Op::Ld, s1, state_, off_cursor);
        bin(Op::Sub, s0, s0, s1);
        store(Op::St, s0, state_, off_result);
        emit(Op::Ldu, x.type, 0, x.dst, state_.id, 0, off_result);
        return;
      default:
        break;
    }
  }

  void lower_call(const Insn& x, const Site& s) {
    set(sp_[0], int64_t(reinterpret_cast<uintptr_t>(&o_.sites[&s - hb_.sites().data()])));
    store(Op::St, sp_[0], state_, off_site);
    uint32_t args[3] = {state_.id, state_.id, state_.id};
    for (uint32_t k = 0; k < x.b; ++k) {
      Reg r{in_.call_args[x.a + k]};
      to_p(sp_[k], r);
      args[k] = sp_[k].id;
    }
    uint32_t first = uint32_t(out_.call_args.size());
    out_.call_args.push_back(state_.id);
    for (uint32_t a : args) out_.call_args.push_back(a);
    emit(Op::Call, Type::U32, vcode::kExtern, s32_.id, first, 4, helper_);
    br_imm(Op::Bne, s32_, 0, l_helper_);
    if (!(x.flags & vcode::kVoid))
      emit(Op::Ldu, type(Reg{x.dst}), 0, x.dst, state_.id, 0, off_result);
  }

  const HandlerBuilder& hb_;
  const LowerOptions& o_;
  const Function& in_;
  Lowered lowered_;
  Function& out_;
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

}  // namespace

Lowered lower(const HandlerBuilder& program, const LowerOptions& options) {
  const Function& f = program.function();
  // A usability message only: the records are verified again whatever the flag says.
  if (!f.verified) fail("ash handler {}: finish() the builder before installing it", f.name);
  return Lowerer(program, options).run();
}

}  // namespace exojit::ash
