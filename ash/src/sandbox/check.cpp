// SPDX-License-Identifier: MIT
// The check a handler must pass before it is lowered: a security check in its own file, apart
// from the lowering it protects, re-deriving everything from the records (see check_p.h).
#include <cstddef>
#include <string>
#include <vector>

#include "check_p.h"
#include "exojit/error.h"
#include "exojit/vcode/verify.h"

namespace exojit::ash::sandbox {

using vcode::Function;
using vcode::Insn;
using vcode::Op;

namespace {

// Limits on the side tables of a handler's records, so that nothing the lowering allocates by
// them grows with a forged count.
constexpr size_t kMaxRegsPerInsn = 3;
// Pipe lists are compiled for every lane on its first run and reset on every run, in the
// delivery path and uncharged: their number is bounded, and their bodies count in the handler's
// size.
constexpr size_t kMaxPipeLists = 64;

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

class Check {
 public:
  Check(const HandlerBuilder& hb, const LowerOptions& o) : hb_(hb), o_(o), in_(hb.function()) {}

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
    size_t size = in_.code.size();
    for (const pipes::PipeList& pl : hb_.pipe_lists()) {
      size += 1;
      for (size_t p = 0; p < pl.size(); ++p) size += pl[p].code.size() + 1;
    }
    if (hb_.pipe_lists().size() > kMaxPipeLists || size > o_.max_insns ||
        hb_.pipe_refs().size() > o_.max_insns)
      fail(
          "ash handler {}: {} pipe lists (at most {}), {} instructions with their bodies (at most "
          "{}), {} pipe register references",
          in_.name, hb_.pipe_lists().size(), kMaxPipeLists, size, o_.max_insns,
          hb_.pipe_refs().size());
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

 private:
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
      refuse(in_, i, "a constant marked owned: only the kernel's own constants escape blinding");
    if (x.flags & ~allowed_flags(x.op)) refuse(in_, i, "flags the operation does not take");
    if (vcode::has_flag(x.op, vcode::kOpCodeAddress))
      refuse(in_, i, "indirect jumps are not allowed");
    if (vcode::has_flag(x.op, vcode::kOpStackAddress))
      refuse(in_, i, "addresses of locals are not allowed");
    switch (x.op) {
      case Op::Call: {
        if (!(x.flags & vcode::kExtern)) refuse(in_, i, "calls to other functions are not allowed");
        int site = uint64_t(x.imm) > UINT32_MAX ? -1 : hb_.site_of_extern(uint32_t(x.imm));
        if (site < 0)
          refuse(in_, i, "calls to anything but the message primitives are not allowed");
        const Site& s = hb_.sites()[size_t(site)];
        if (prim_is_inline(s.kind) || x.b != register_operands(s) || x.b > 3 ||
            (!(x.flags & vcode::kVoid) && !produces_value(s.kind)))
          refuse(in_, i, "a malformed primitive");
        break;
      }
      case Op::Ret:
        if (!(x.flags & vcode::kImm) || (x.imm != 0 && x.imm != 1))
          refuse(in_, i, "a handler ends with commit() or abort()");
        break;
      case Op::Div:
      case Op::Mod:
        if ((x.flags & vcode::kImm) && vcode::normalize_imm(x.type, x.imm) == 0)
          refuse(in_, i, "division by the constant 0");
        break;
      default:
        break;
    }
    if (const Site* s = inline_site(hb_, x)) {
      bool is_skip = s->kind == PrimKind::Skip;
      if (is_skip != vcode::is_store(x.op)) refuse(in_, i, "a malformed primitive");
      if (!is_skip && x.type != s->result) refuse(in_, i, "a malformed primitive");
      if (s->width != 0 && !is_skip && s->width != vcode::type_bytes(x.type))
        refuse(in_, i, "a malformed primitive");
      if (is_skip && !(std::holds_alternative<int64_t>(s->operands[0]) && x.dst == x.a) &&
          reserved(x.dst))
        refuse(in_, i, "the reserved registers are the sandbox's");
      if (!is_skip && reserved(x.dst)) refuse(in_, i, "the reserved registers are the sandbox's");
      bool reg_offset = !s->operands.empty() && std::holds_alternative<Reg>(s->operands[0]);
      if (!is_skip && reg_offset != bool(x.flags & vcode::kIndex))
        refuse(in_, i, "a malformed primitive");
      if ((x.flags & vcode::kIndex) && (is_skip || reserved(x.b)))
        refuse(in_, i, "the reserved registers are the sandbox's");
      return;
    }
    each_reg(x, [&](uint32_t r) {
      if (reserved(r)) refuse(in_, i, "the reserved registers are the sandbox's");
    });
  }

  const HandlerBuilder& hb_;
  const LowerOptions& o_;
  const Function& in_;
};

}  // namespace

void check_handler(const HandlerBuilder& program, const LowerOptions& options) {
  Check(program, options).check_rules();
}

const Site* inline_site(const HandlerBuilder& program, const Insn& x) {
  if (!(vcode::is_load(x.op) || vcode::is_store(x.op)) || (x.flags & vcode::kLocalBase) ||
      x.a != program.state().id)
    return nullptr;
  uint64_t k = uint64_t(x.imm) - uint64_t(HandlerBuilder::kSiteTag);
  if (k >= program.sites().size()) return nullptr;
  const Site* s = &program.sites()[size_t(k)];
  return prim_is_inline(s->kind) ? s : nullptr;
}

void refuse(const Function& f, size_t i, const std::string& why) {
  fail("ash handler {}: refused at instruction {} ({}): {}", f.name, i,
       vcode::op_name(f.code[i].op), why);
}

}  // namespace exojit::ash::sandbox
