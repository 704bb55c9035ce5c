// Operand checks per instruction, and the whole-function verifier (labels, definitions on every
// path, temporaries clobbered by calls, no falling off the end).
#include "exojit/vcode/verify.h"

#include <algorithm>
#include <bit>
#include <cstdint>
#include <vector>

#include "exojit/error.h"
#include "exojit/vcode/text.h"

namespace exojit::vcode {

namespace {

[[noreturn]] void bad(const Module& m, const Function& f, size_t i, const std::string& why) {
  std::string text = i < f.code.size() ? print_insn(m, f, f.code[i]) : std::string("?");
  fail("@{}: instruction {} `{}`: {}", f.name, i, text, why);
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

  void run() const {
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
          case Op::Neg:
          case Op::Mov:
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

// Registers read and written by an instruction.
template <typename F>
void for_each_use(const Function& f, const Insn& in, F&& use) {
  bool imm = in.flags & kImm;
  switch (in.op) {
    case Op::Set:
    case Op::AddrL:
    case Op::Jmp:
    case Op::Place:
    case Op::La:
      return;
    case Op::Ld:
    case Op::Ldu:
    case Op::Ldbe:
    case Op::St:
    case Op::Stu:
    case Op::Stbe:
      if (is_store(in.op)) use(in.dst);
      if (!(in.flags & kLocalBase)) use(in.a);
      if (in.flags & kIndex) use(in.b);
      return;
    case Op::Call:
      for (uint32_t k = 0; k < in.b; ++k) use(f.call_args[in.a + k]);
      return;
    case Op::Ret:
      if (!(in.flags & (kImm | kVoid))) use(in.a);
      return;
    case Op::Jmpr:
      use(in.a);
      return;
    default:
      if (is_branch(in.op)) {
        use(in.a);
        if (!imm) use(in.b);
        return;
      }
      use(in.a);
      if (is_binary(in.op) || in.op == Op::Cksum) {
        if (!imm) use(in.b);
      }
      return;
  }
}

int64_t def_of(const Insn& in) {
  if (is_store(in.op) || is_branch(in.op)) return -1;
  switch (in.op) {
    case Op::Jmp:
    case Op::Jmpr:
    case Op::Place:
    case Op::Ret:
      return -1;
    case Op::La:
      return in.a;
    case Op::Call:
      return (in.flags & kVoid) ? -1 : int64_t(in.dst);
    default:
      return in.dst;
  }
}

}  // namespace

void check_insn(const Module& m, const Function& f, size_t index) {
  Checker{m, f, index, f.code[index]}.run();
}

void verify(const Module& m, const Function& f) {
  const auto& code = f.code;
  const size_t n = code.size();
  if (n == 0) fail("@{}: the function is empty (missing return)", f.name);

  // Labels: placed exactly once; address-taken labels are the targets of jmpr.
  std::vector<int64_t> label_pos(f.num_labels, -1);
  std::vector<uint32_t> address_taken;
  for (size_t i = 0; i < n; ++i) {
    check_insn(m, f, i);
    if (code[i].op == Op::Place) {
      if (label_pos[code[i].dst] >= 0) bad(m, f, i, "label placed twice");
      label_pos[code[i].dst] = int64_t(i);
    }
    if (code[i].op == Op::La) address_taken.push_back(code[i].dst);
  }
  for (size_t i = 0; i < n; ++i) {
    const Insn& in = code[i];
    if ((is_branch(in.op) || in.op == Op::Jmp || in.op == Op::La) && label_pos[in.dst] < 0)
      bad(m, f, i, fmt::format("undefined label {}", f.label_label(in.dst)));
  }

  // Basic blocks: leaders are the entry, labels and the instruction after a control transfer.
  std::vector<uint32_t> block_of(n);
  std::vector<size_t> block_start;
  for (size_t i = 0; i < n; ++i) {
    bool leader = i == 0 || code[i].op == Op::Place || is_branch(code[i - 1].op) ||
                  is_terminator(code[i - 1].op) || code[i - 1].op == Op::Call;
    if (leader) block_start.push_back(i);
    block_of[i] = uint32_t(block_start.size() - 1);
  }
  const size_t nb = block_start.size();
  auto block_end = [&](size_t b) { return b + 1 < nb ? block_start[b + 1] : n; };

  // Forward "definitely defined" dataflow over bit sets (meet = intersection).
  const size_t words = (f.regs.size() + 63) / 64;
  std::vector<uint64_t> temps(words, 0);
  for (size_t r = 0; r < f.regs.size(); ++r)
    if (f.regs[r].cls == RegClass::Temp) temps[r / 64] |= 1ull << (r % 64);
  std::vector<uint64_t> in_sets(nb * words, ~0ull);
  std::vector<uint8_t> reached(nb, 0);
  std::vector<uint64_t> state(words);

  // Registers sharing a physical slot: defining one ends the life of the others.
  auto slot_key = [&](size_t r) {
    const RegInfo& ri = f.regs[r];
    return (size_t(is_float(ri.type)) * 2 + size_t(ri.cls)) * 256 + ri.slot;
  };
  std::vector<std::vector<uint64_t>> slot_masks(4 * 256);
  for (size_t r = 0; r < f.regs.size(); ++r) {
    auto& mask = slot_masks[slot_key(r)];
    if (mask.empty()) mask.assign(words, 0);
    mask[r / 64] |= 1ull << (r % 64);
  }
  std::vector<uint8_t> shares_slot(f.regs.size(), 0);
  for (size_t r = 0; r < f.regs.size(); ++r) {
    const auto& mask = slot_masks[slot_key(r)];
    size_t count = 0;
    for (uint64_t w : mask) count += size_t(std::popcount(w));
    shares_slot[r] = count > 1;
  }
  auto transfer = [&](const Insn& insn) {
    if (insn.op == Op::Call)
      for (size_t w = 0; w < words; ++w) state[w] &= ~temps[w];
    int64_t d = def_of(insn);
    if (d < 0) return;
    const auto& mask = slot_masks[slot_key(size_t(d))];
    for (size_t w = 0; w < words; ++w) state[w] &= ~mask[w];
    state[size_t(d) / 64] |= 1ull << (d % 64);
  };
  auto successors = [&](size_t last, auto&& visit) {
    const Insn& in = code[last];
    if (is_branch(in.op) || in.op == Op::Jmp) visit(block_of[size_t(label_pos[in.dst])]);
    if (in.op == Op::Jmpr)
      for (uint32_t l : address_taken) visit(block_of[size_t(label_pos[l])]);
    if (!is_terminator(in.op) && last + 1 < n) visit(block_of[last + 1]);
  };

  std::fill(in_sets.begin(), in_sets.begin() + long(words), 0);
  for (Reg p : f.params) in_sets[p.id / 64] |= 1ull << (p.id % 64);
  reached[0] = 1;
  std::vector<uint32_t> work{0};
  std::vector<uint8_t> queued(nb, 0);
  queued[0] = 1;
  while (!work.empty()) {
    uint32_t b = work.back();
    work.pop_back();
    queued[b] = 0;
    std::copy_n(in_sets.begin() + long(b * words), words, state.begin());
    for (size_t i = block_start[b]; i < block_end(b); ++i) transfer(code[i]);
    successors(block_end(b) - 1, [&](uint32_t s) {
      bool changed = !reached[s];
      reached[s] = 1;
      for (size_t w = 0; w < words; ++w) {
        uint64_t& dst = in_sets[s * words + w];
        uint64_t meet = dst & state[w];
        if (meet != dst) changed = true;
        dst = meet;
      }
      if (changed && !queued[s]) {
        queued[s] = 1;
        work.push_back(s);
      }
    });
  }

  // Check uses against the fixed point, and that no reachable path falls off the end.
  for (size_t b = 0; b < nb; ++b) {
    if (!reached[b]) continue;
    std::copy_n(in_sets.begin() + long(b * words), words, state.begin());
    for (size_t i = block_start[b]; i < block_end(b); ++i) {
      for_each_use(f, code[i], [&](uint32_t r) {
        if (!(state[r / 64] >> (r % 64) & 1))
          bad(m, f, i,
              fmt::format("register {} is used but not defined on every path to here{}{}",
                          f.reg_label(r),
                          f.regs[r].cls == RegClass::Temp ? " (temporaries die at calls)" : "",
                          shares_slot[r] ? " (or another register reused its slot)" : ""));
      });
      transfer(code[i]);
    }
    size_t last = block_end(b) - 1;
    if (last == n - 1 && !is_terminator(code[last].op))
      bad(m, f, last, "control falls off the end of the function (missing return)");
  }
}

void verify(const Module& m) {
  for (const auto& f : m.functions()) verify(m, *f);
}

}  // namespace exojit::vcode
