// SPDX-License-Identifier: MIT
// Operand checks per instruction, and the whole-function verifier (labels, definitions on every
// path, temporaries clobbered by calls, no falling off the end).
#include "exojit/vcode/verify.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <vector>

#include "exojit/error.h"
#include "exojit/vcode/detail/flow.h"
#include "exojit/vcode/text.h"
#include "verify_p.h"

namespace exojit::vcode {

namespace detail {
std::string insn_error(const Module& m, const Function& f, size_t i, const std::string& why) {
  std::string text = i < f.code.size() ? print_insn(m, f, f.code[i]) : std::string("?");
  return fmt::format("@{}: instruction {} `{}`: {}", f.name, i, text, why);
}
}  // namespace detail

namespace {

[[noreturn]] void bad(const Module& m, const Function& f, size_t i, const std::string& why) {
  throw Error(detail::insn_error(m, f, i, why));
}

bool is_ptr_like(Type t) {
  return t == Type::P || t == Type::I64 || t == Type::U64;
}

// Same type, or a pointer mixed with 64-bit integers (pointer arithmetic and comparisons).
bool compatible(Type d, Type s) {
  if (d == s) return true;
  return (d == Type::P && is_ptr_like(s)) || (s == Type::P && is_ptr_like(d));
}

struct Checker {
  const Module& m;
  const Function& f;
  size_t i;
  const Insn& in;

  [[noreturn]] void error(const std::string& why) const { bad(m, f, i, why); }

  Type reg(uint32_t id, const char* what) const {
    if (id >= f.regs.size()) error(fmt::format("{} register {} does not exist", what, id));
    return f.regs[id].type;
  }
  void label(uint32_t id) const {
    if (id >= f.num_labels) error(fmt::format("label L{} does not exist", id));
  }
  void want_int(Type t, const char* what) const {
    if (!is_int(t)) error(fmt::format("{} must be an integer, not {}", what, type_name(t)));
  }
  void same(Type d, Type s, const char* what) const {
    if (!compatible(d, s))
      error(fmt::format("type mismatch: {} is {}, the operation is {}", what, type_name(s),
                        type_name(d)));
  }
  void memory_operands() const {
    if (in.flags & kLocalBase) {
      if (in.a >= f.locals.size()) error(fmt::format("local ${} does not exist", in.a));
      uint64_t size = f.locals[in.a].size, n = uint64_t(type_bytes(in.type));
      if (in.imm < 0 || uint64_t(in.imm) > size || n > size - uint64_t(in.imm))
        error(fmt::format("the access [{}, +{}) is outside local ${} of {} bytes", in.imm, n, in.a,
                          size));
    } else {
      Type b = reg(in.a, "base");
      if (!is_ptr_like(b)) error(fmt::format("base must be a pointer, not {}", type_name(b)));
    }
    if (in.flags & kIndex) {
      if (in.flags & kLocalBase) error("a local base takes no index register");
      Type x = reg(in.b, "index");
      if (!is_ptr_like(x))
        error(fmt::format("index must be a 64-bit integer or pointer, not {}", type_name(x)));
    }
  }

  // Lane-wise vector arithmetic: add sub and or xor on registers, lsh rsh by an immediate.
  void vector_binary(Type d, bool imm) const {
    switch (in.op) {
      case Op::Add:
      case Op::Sub:
      case Op::And:
      case Op::Or:
      case Op::Xor:
        if (imm)
          error(fmt::format("vector {} takes registers; splat or set a constant", op_name(in.op)));
        same(d, reg(in.b, "source"), "the second source");
        return;
      case Op::Lsh:
      case Op::Rsh:
        if (!imm) error("vector shifts take an immediate count");
        if (in.imm < 0 || in.imm >= lane_bits(d))
          error(fmt::format("shift count {} is not below the lane width {}", in.imm, lane_bits(d)));
        return;
      default:
        error(fmt::format("{} has no vector form", op_name(in.op)));
    }
  }

  void run() const {
    if (unsigned(in.op) >= unsigned(kNumOps))
      error(fmt::format("unknown opcode {}", unsigned(in.op)));
    if (unsigned(in.type) >= unsigned(kNumTypes))
      error(fmt::format("unknown type {}", unsigned(in.type)));
    if ((in.flags & kOwnedImm) && !carries_constant(in))
      error("marked owned, but the record carries no constant");
    operands();
    // Every rule above agrees with the instruction table's types (tests/vcode/ops_test.cpp).
    if (!in_set(op_info(in.op).types, in.type))
      error(fmt::format("{} takes no {} operation", op_name(in.op), type_name(in.type)));
  }

  void operands() const {
    Type t = in.type;
    bool imm = in.flags & kImm;
    switch (in.op) {
      case Op::Add:
      case Op::Sub:
      case Op::Mul:
      case Op::Div:
      case Op::Mod:
      case Op::And:
      case Op::Or:
      case Op::Xor:
      case Op::Lsh:
      case Op::Rsh: {
        Type d = reg(in.dst, "destination");
        if (d != t) error("recorded type differs from the destination's");
        same(d, reg(in.a, "source"), "the first source");
        if (is_vector(d)) return vector_binary(d, imm);
        bool arith = in.op <= Op::Div;
        if (is_float(d) && (!arith || imm))
          error(fmt::format("{} has no float{} form", op_name(in.op), imm ? " immediate" : ""));
        if (!imm) {
          Type b = reg(in.b, "source");
          if (in.op == Op::Lsh || in.op == Op::Rsh)
            want_int(b, "the shift count");
          else
            same(d, b, "the second source");
        }
        return;
      }
      case Op::Neg:
      case Op::Com:
      case Op::Not:
      case Op::Mov:
      case Op::Bswap:
      case Op::Cvt:
      case Op::CksumFold: {
        Type d = reg(in.dst, "destination");
        if (d != t) error("recorded type differs from the destination's");
        Type a = reg(in.a, "source");
        switch (in.op) {
          case Op::Mov:
            if (is_vector(d) || is_vector(a)) {
              if (vector_bits(d) != vector_bits(a))
                error("a vector mov needs vectors of the same width");
              break;
            }
            same(d, a, "the source");
            break;
          case Op::Neg:
            same(d, a, "the source");
            break;
          case Op::Com:
          case Op::Not:
            want_int(d, "the operand");
            same(d, a, "the source");
            break;
          case Op::Bswap:
            if (!is_int(d) || type_bits(d) < 16) error("bswap needs a 16-, 32- or 64-bit integer");
            same(d, a, "the source");
            break;
          case Op::Cvt:
            if (is_vector(d) || is_vector(a)) error("cvt converts scalars; see splat, widen, hsum");
            break;  // any numeric type to any other
          default:  // CksumFold
            if (d != Type::U16 && d != Type::U32 && d != Type::U64)
              error("cksum_fold produces an unsigned 16-, 32- or 64-bit register");
            if (a != Type::U16 && a != Type::U32 && a != Type::U64)
              error("cksum_fold folds an unsigned 16-, 32- or 64-bit accumulator");
        }
        return;
      }
      case Op::Set: {
        Type d = reg(in.dst, "destination");
        if (d != t) error("recorded type differs from the destination's");
        return;
      }
      case Op::Cksum: {
        Type d = reg(in.dst, "destination");
        if (d != t) error("recorded type differs from the destination's");
        if (d != Type::U32 && d != Type::U64) error("the checksum accumulator must be u32 or u64");
        same(d, reg(in.a, "accumulator"), "the accumulator");
        if (!imm) {
          Type b = reg(in.b, "input");
          if (b != Type::U16 && b != Type::U32 && b != Type::U64)
            error("checksum input must be u16, u32 or u64");
          if (type_bits(b) > type_bits(d)) error("checksum input is wider than the accumulator");
        }
        return;
      }
      case Op::BoundMask:
      case Op::BoundZero: {
        Type d = reg(in.dst, "destination");
        if (d != t) error("recorded type differs from the destination's");
        same(d, reg(in.a, "source"), "the first source");
        if (!imm) same(d, reg(in.b, "source"), "the second source");
        return;
      }
      case Op::Crc32c: {
        if (reg(in.dst, "destination") != Type::U32 || t != Type::U32)
          error("crc32c produces a u32 crc");
        if (reg(in.a, "crc") != Type::U32) error("the crc operand must be u32");
        if (imm) error("crc32c takes its data in a register");
        Type b = reg(in.b, "data");
        if (b != Type::U8 && b != Type::U16 && b != Type::U32 && b != Type::U64)
          error("crc32c data must be u8, u16, u32 or u64");
        return;
      }
      case Op::Splat:
      case Op::Widen:
      case Op::Shuf:
      case Op::Hsum: {
        Type d = reg(in.dst, "destination"), a = reg(in.a, "source");
        if (d != t) error("recorded type differs from the destination's");
        if (in.op == Op::Splat) {
          if (!is_vector(d) || !is_int(a)) error("splat puts an integer register in a vector");
        } else if (in.op == Op::Hsum) {
          if (!is_int(d) || !is_vector(a)) error("hsum sums a vector into an integer register");
        } else if (!is_vector(d) || !is_vector(a) || vector_bits(d) != vector_bits(a)) {
          error(fmt::format("{} needs two vectors of the same width", op_name(in.op)));
        } else if (in.op == Op::Widen) {
          if (lane_bits(d) != 2 * lane_bits(a))
            error("widen doubles the lane width: v16u8 -> v8u16 -> v4u32 -> v2u64 (or 256-bit)");
          if (in.imm != 0 && in.imm != 1) error("widen takes half 0 (low) or 1 (high)");
        }
        return;
      }
      case Op::Ld:
      case Op::Ldu:
      case Op::Ldbe:
      case Op::St:
      case Op::Stu:
      case Op::Stbe: {
        Type v = reg(in.dst, "value");
        if (v != t) error("recorded type differs from the value register's");
        if ((in.op == Op::Ldbe || in.op == Op::Stbe) && !is_int(v))
          error("big-endian access needs an integer register");
        memory_operands();
        return;
      }
      case Op::AddrL: {
        if (reg(in.dst, "destination") != Type::P) error("addrl produces a pointer (p)");
        if (in.a >= f.locals.size()) error(fmt::format("local ${} does not exist", in.a));
        return;
      }
      case Op::Blt:
      case Op::Ble:
      case Op::Bgt:
      case Op::Bge:
      case Op::Beq:
      case Op::Bne: {
        label(in.dst);
        Type a = reg(in.a, "compared");
        if (a != t) error("recorded type differs from the compared register's");
        if (imm && is_float(a)) error("float compares take two registers");
        if (is_vector(a)) error("vectors are not compared; hsum or store them first");
        if (!imm) same(a, reg(in.b, "compared"), "the second operand");
        return;
      }
      case Op::Jmp:
      case Op::Place:
        label(in.dst);
        return;
      case Op::Jmpr:
        if (reg(in.a, "target") != Type::P) error("jmpr needs a pointer register");
        return;
      case Op::La:
        label(in.dst);
        if (reg(in.a, "destination") != Type::P) error("la produces a pointer (p)");
        return;
      case Op::Call: {
        const Signature* sig;
        if (in.flags & kExtern) {
          if (uint64_t(in.imm) >= m.externs().size()) error("extern does not exist");
          sig = &m.externs()[size_t(in.imm)].sig;
        } else {
          if (uint64_t(in.imm) >= m.functions().size()) error("function does not exist");
          sig = &m.functions()[size_t(in.imm)]->sig;
        }
        if (in.b != sig->params.size())
          error(fmt::format("{} arguments given, the callee takes {}", in.b, sig->params.size()));
        if (size_t(in.a) + in.b > f.call_args.size()) error("argument list out of range");
        int ints = 0, floats = 0;
        for (uint32_t k = 0; k < in.b; ++k) {
          Type at = reg(f.call_args[in.a + k], "argument");
          if (is_vector(at)) error("vectors are not passed to calls; pass a pointer");
          if (at != sig->params[k] && !(compatible(at, sig->params[k])))
            error(fmt::format("argument {} is {}, the callee takes {}", k, type_name(at),
                              type_name(sig->params[k])));
          (is_float(at) ? floats : ints)++;
        }
        if (ints > kMaxIntArgs || floats > kMaxFloatArgs)
          error(
              fmt::format("at most {} integer and {} float arguments", kMaxIntArgs, kMaxFloatArgs));
        if (!(in.flags & kVoid)) {
          Type r = reg(in.dst, "result");
          if (sig->ret == Type::Void) error("the callee returns nothing");
          if (!compatible(r, sig->ret))
            error(fmt::format("result register is {}, the callee returns {}", type_name(r),
                              type_name(sig->ret)));
        }
        return;
      }
      case Op::Ret: {
        Type want = f.sig.ret;
        if (in.flags & kVoid) {
          if (want != Type::Void)
            error(fmt::format("return without a value from a function returning {}",
                              type_name(want)));
          return;
        }
        if (want == Type::Void) error("return of a value from a void function");
        if (is_vector(want)) error("a function cannot return a vector");
        if (imm) {
          if (is_float(want)) error("a float function returns a register, not an immediate");
          return;
        }
        same(want, reg(in.a, "returned"), "the returned register");
        return;
      }
    }
    error("unknown opcode");
  }
};

}  // namespace

void check_insn(const Module& m, const Function& f, size_t index) {
  Checker{m, f, index, f.code[index]}.run();
}

namespace {

[[noreturn]] void undefined(const Module& m, const Function& f, size_t i, uint32_t r) {
  bad(m, f, i, undefined_register_message(f, r));
}

// The common case: one pass in program order (see FlowTracker). Also checks operands (when
// asked), labels, and that control cannot fall off the end. Returns false when the pass is not
// conclusive (a back edge lost definitions, or an indirect jump).
bool single_pass(const Module& m, const Function& f, bool check_operands) {
  const auto& code = f.code;
  detail::FlowTracker flow;
  flow.start(f);
  for (size_t i = 0; i < code.size(); ++i) {
    const Insn& in = code[i];
    if (check_operands) check_insn(m, f, i);
    const Form form = form_of(in.op);
    if (form == Form::Place) {
      if (!flow.place(in.dst, i)) bad(m, f, i, "label placed twice");
      continue;
    }
    bool to_label = refers_to_label(in.op);
    if (!flow.reachable()) {  // dead code after a jump or return, before any label
      if (to_label) flow.reference(in.dst, i);
      continue;
    }
    for_each_use(f, in, [&](uint32_t r) {
      if (!flow.defined(f, r)) undefined(m, f, i, r);
    });
    if (form == Form::LabelAddr)
      flow.reference(in.dst, i);
    else if (to_label)
      flow.edge(in.dst, i);
    if (has_flag(in.op, kOpCall)) flow.call();
    int64_t d = defined_reg(in);
    if (d >= 0) flow.define(f, uint32_t(d));
    if (form == Form::JumpReg)
      flow.indirect_jump();
    else if (is_terminator(in.op))
      flow.terminate();
  }
  detail::check_end(m, f, flow);
  return flow.conclusive();
}

// The general case: iterative dataflow over basic blocks, for loops whose back edges lose
// definitions and for indirect jumps (which may reach any address-taken label).
void full_analysis(const Module& m, const Function& f) {
  using detail::SlotState;
  const auto& code = f.code;
  const size_t n = code.size();
  std::vector<int64_t> label_pos(f.num_labels, -1);
  std::vector<uint32_t> address_taken;
  for (size_t i = 0; i < n; ++i) {
    if (form_of(code[i].op) == Form::Place) label_pos[code[i].dst] = int64_t(i);
    if (form_of(code[i].op) == Form::LabelAddr) address_taken.push_back(code[i].dst);
  }

  // Basic blocks: leaders are the entry, labels and the instruction after a control transfer.
  std::vector<uint32_t> block_of(n);
  std::vector<size_t> block_start;
  for (size_t i = 0; i < n; ++i) {
    bool leader = i == 0 || form_of(code[i].op) == Form::Place || is_branch(code[i - 1].op) ||
                  is_terminator(code[i - 1].op);
    if (leader) block_start.push_back(i);
    block_of[i] = uint32_t(block_start.size() - 1);
  }
  const size_t nb = block_start.size();
  auto block_end = [&](size_t b) { return b + 1 < nb ? block_start[b + 1] : n; };
  auto successors = [&](size_t last, auto&& visit) {
    const Insn& in = code[last];
    const Form form = form_of(in.op);
    if (form == Form::Branch || form == Form::Jump) visit(block_of[size_t(label_pos[in.dst])]);
    if (form == Form::JumpReg)
      for (uint32_t l : address_taken) visit(block_of[size_t(label_pos[l])]);
    if (!is_terminator(in.op) && last + 1 < n) visit(block_of[last + 1]);
  };
  auto transfer = [&](const Insn& in, SlotState& s) {
    if (has_flag(in.op, kOpCall)) s.call();
    int64_t d = defined_reg(in);
    if (d >= 0) s.define(f.regs[size_t(d)], uint32_t(d));
  };

  std::vector<SlotState> in_states(nb, SlotState::filled(detail::kAnyReg));
  std::vector<uint8_t> reached(nb, 0), queued(nb, 0);
  in_states[0] = SlotState::filled(detail::kNoReg);
  for (Reg p : f.params) in_states[0].define(f.regs[p.id], p.id);
  reached[0] = queued[0] = 1;
  std::vector<uint32_t> work{0};
  while (!work.empty()) {
    uint32_t b = work.back();
    work.pop_back();
    queued[b] = 0;
    SlotState state = in_states[b];
    for (size_t i = block_start[b]; i < block_end(b); ++i) transfer(code[i], state);
    successors(block_end(b) - 1, [&](uint32_t s) {
      SlotState before = in_states[s];
      in_states[s].meet(state);
      bool changed = !reached[s] || before.reg != in_states[s].reg;
      reached[s] = 1;
      if (changed && !queued[s]) {
        queued[s] = 1;
        work.push_back(s);
      }
    });
  }
  for (size_t b = 0; b < nb; ++b) {
    if (!reached[b]) continue;
    SlotState state = in_states[b];
    for (size_t i = block_start[b]; i < block_end(b); ++i) {
      for_each_use(f, code[i], [&](uint32_t r) {
        if (!state.holds(f.regs[r], r)) undefined(m, f, i, r);
      });
      transfer(code[i], state);
    }
  }
}

}  // namespace

std::string undefined_register_message(const Function& f, uint32_t r) {
  bool shares = false;
  for (size_t o = 0; o < f.regs.size(); ++o)
    shares |= o != r && detail::slot_key(f.regs[o]) == detail::slot_key(f.regs[r]);
  return fmt::format("register {} is used but not defined on every path to here{}{}",
                     f.reg_label(r),
                     f.regs[r].cls == RegClass::Temp ? " (temporaries die at calls)" : "",
                     shares ? " (or another register reused its slot)" : "");
}

namespace detail {
void check_end(const Module& m, const Function& f, const FlowTracker& flow) {
  int64_t at;
  int64_t l = flow.unplaced_label(&at);
  if (l >= 0) bad(m, f, size_t(at), fmt::format("undefined label {}", f.label_label(uint32_t(l))));
  if (flow.reachable())
    bad(m, f, f.code.size() - 1, "control falls off the end of the function (missing return)");
}

void check_frame(const Function& f) {
  // The side tables are records too (a function edited after finish() or parsed from text):
  // every register must name a real slot of its pool, every parameter a register of its type,
  // every local a power-of-two alignment, before anything indexes by them.
  for (size_t r = 0; r < f.regs.size(); ++r) {
    const RegInfo& ri = f.regs[r];
    if (unsigned(ri.type) >= unsigned(kNumTypes) || ri.type == Type::Void)
      fail("@{}: register {} has no valid type", f.name, r);
    if (ri.cls != RegClass::Temp && ri.cls != RegClass::Var)
      fail("@{}: register {} has no valid class", f.name, r);
    bool fl = in_float_file(ri.type);
    int pool =
        ri.cls == RegClass::Temp ? (fl ? kFloatTemps : kIntTemps) : (fl ? kFloatVars : kIntVars);
    if (ri.slot >= pool)
      fail("@{}: register {} names slot {} of a pool of {}", f.name, r, ri.slot, pool);
  }
  if (f.params.size() != f.sig.params.size())
    fail("@{}: {} parameter registers for {} parameters", f.name, f.params.size(),
         f.sig.params.size());
  for (size_t i = 0; i < f.params.size(); ++i) {
    uint32_t id = f.params[i].id;
    if (id >= f.regs.size() || !compatible(f.sig.params[i], f.regs[id].type))
      fail("@{}: parameter {} is not a register of its type", f.name, i);
    for (size_t k = 0; k < i; ++k)
      if (detail::slot_key(f.regs[f.params[k].id]) == detail::slot_key(f.regs[id]))
        fail("@{}: parameters {} and {} share a register slot", f.name, k, i);
  }
  if (unsigned(f.sig.ret) >= unsigned(kNumTypes))
    fail("@{}: the return type is not a type", f.name);
  for (size_t i = 0; i < f.sig.params.size(); ++i)
    if (unsigned(f.sig.params[i]) >= unsigned(kNumTypes) || f.sig.params[i] == Type::Void)
      fail("@{}: parameter {} has no valid type", f.name, i);
  uint64_t bytes = 0;
  for (const LocalInfo& l : f.locals) {
    if (l.align == 0 || (l.align & (l.align - 1)) || l.align > kMaxLocalAlign)
      fail("@{}: a local aligned to {} bytes (a power of two up to {})", f.name, l.align,
           kMaxLocalAlign);
    bytes += uint64_t(l.size) + l.align;  // two u32s: their sum in 32 bits would wrap
  }
  if (bytes > kMaxFrameBytes)
    fail("@{}: locals take {} bytes, more than the {} a frame may hold", f.name, bytes,
         kMaxFrameBytes);
  for (size_t i = 0; i < f.sig.params.size(); ++i)
    if (is_vector(f.sig.params[i]))
      fail("@{}: parameter {} is a vector; pass a pointer to it", f.name, i);
  if (is_vector(f.sig.ret)) fail("@{}: a function cannot return a vector", f.name);
}

void verify_function(const Module& m, const Function& f, bool check_operands) {
  if (f.code.empty()) fail("@{}: the function is empty (missing return)", f.name);
  check_frame(f);
  if (!single_pass(m, f, check_operands)) full_analysis(m, f);
}

void complete_verification(const Module& m, const Function& f, const FlowTracker& flow) {
  if (f.code.empty()) fail("@{}: the function is empty (missing return)", f.name);
  check_frame(f);
  check_end(m, f, flow);
  if (!flow.conclusive()) full_analysis(m, f);
}
}  // namespace detail

void verify(const Module& m, const Function& f) {
  detail::verify_function(m, f, true);
}

void verify(const Module& m) {
  for (const auto& f : m.functions()) verify(m, *f);
}

}  // namespace exojit::vcode
