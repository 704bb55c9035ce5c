// SPDX-License-Identifier: MIT
// The instruction table (ops.h) against the code that consumes it:
//   - the verifier accepts an opcode at exactly the types the table gives it;
//   - every opcode, at every type the table allows, prints and parses back, runs in the
//     interpreter, and compiles and runs identically on the x86-64 fast tier and the LLVM tier,
//     and compiles for AArch64 (cross-JIT): an opcode added to the table but not to a consumer
//     fails here;
//   - vcode/README.md's instruction-set reference is the table's (EXOJIT_UPDATE_README=1 rewrites
//     it).
#include <gtest/gtest.h>

#include <bit>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <random>
#include <set>
#include <sstream>

#include "harness.h"

namespace exojit::vcode {
namespace {

std::vector<Type> all_types() {
  std::vector<Type> v;
  for (int t = 0; t < kNumTypes; ++t) v.push_back(Type(t));
  return v;
}

std::vector<Type> value_types() {
  std::vector<Type> v;
  for (Type t : all_types())
    if (t != Type::Void) v.push_back(t);
  return v;
}

uint64_t callee_int() {
  return 0x123456789abcdef0ull;
}
double callee_f64() {
  return 2.75;
}
float callee_f32() {
  return -1.5f;
}

// --- one instruction in a function, as records --------------------------------------------
//
// The function is `(p mem) -> <ret>`: the sources are loaded from mem (so that every type,
// vectors included, has a defined value), the instruction runs, its result is stored at
// mem + 64 and the function returns 0 (or, for the Return form, the instruction's operand).
class Sample {
 public:
  Sample(Op op, Type t, Type source, bool imm, int64_t imm_value = 1)
      : op_(op), t_(t), source_(source), imm_(imm), imm_value_(imm_value) {}

  // The module with the function "f", its records written directly (no Builder: the Builder's
  // own checks would get in the way of asking the verifier).
  Module build() const {
    Module m;
    const Form form = form_of(op_);
    Signature sig{{Type::P}, Type::U64};
    if (form == Form::Return) sig.ret = t_;
    if (form == Form::Call) {
      Type r = t_;
      void* fn = reinterpret_cast<void*>(&callee_int);
      if (r == Type::F64) fn = reinterpret_cast<void*>(&callee_f64);
      if (r == Type::F32) fn = reinterpret_cast<void*>(&callee_f32);
      m.add_extern("callee", Signature{{}, r}, fn);
    }
    Function& f = m.add_function("f", sig);
    auto reg = [&](Type t, RegClass c = RegClass::Temp) {
      uint8_t slot = 0;
      for (const RegInfo& ri : f.regs)
        if (in_float_file(ri.type) == in_float_file(t) && ri.cls == c) ++slot;
      f.regs.push_back(RegInfo{t, c, slot});
      return uint32_t(f.regs.size() - 1);
    };
    auto rec = [&](Op op, Type t, uint8_t flags, uint32_t dst, uint32_t a, uint32_t b,
                   int64_t imm) {
      f.code.push_back(Insn{op, t, flags, 0, dst, a, b, imm});
    };
    // (A call's sample keeps its pointer in a variable: temporaries die at calls.)
    const uint32_t mem = reg(Type::P, form == Form::Call ? RegClass::Var : RegClass::Temp);
    f.params.push_back(Reg{mem});
    auto load = [&](uint32_t r, int64_t off) { rec(Op::Ldu, f.regs[r].type, 0, r, mem, 0, off); };
    auto store = [&](uint32_t r, int64_t off) { rec(Op::Stu, f.regs[r].type, 0, r, mem, 0, off); };
    auto ret0 = [&] { rec(Op::Ret, Type::U64, kImm, 0, 0, 0, 0); };
    const bool value = t_ != Type::Void;
    switch (form_of(op_)) {
      case Form::Binary: {
        const uint32_t d = reg(t_), a = reg(t_);
        load(a, 0);
        if (has_flag(op_, kOpReadsDst)) load(d, 16);  // (its destination is a source too)
        uint32_t b = 0;
        if (!imm_) {
          b = reg(source_);
          load(b, 32);
        }
        rec(op_, t_, imm_ ? kImm : 0, d, a, b, imm_ ? imm_value_ : 0);
        store(d, 64);
        ret0();
        break;
      }
      case Form::Unary:
      case Form::UnaryImm: {
        const uint32_t d = reg(t_), a = reg(source_);
        load(a, 0);
        rec(op_, t_, 0, d, a, 0, form_of(op_) == Form::UnaryImm ? imm_value_ : 0);
        store(d, 64);
        ret0();
        break;
      }
      case Form::SetImm: {
        const uint32_t d = reg(t_);
        rec(op_, t_, kImm, d, 0, 0, is_float(t_) ? std::bit_cast<int64_t>(2.5) : imm_value_);
        store(d, 64);
        ret0();
        break;
      }
      case Form::Load: {
        const uint32_t d = reg(t_);
        rec(op_, t_, 0, d, mem, 0, 0);
        store(d, 64);
        ret0();
        break;
      }
      case Form::Store: {
        const uint32_t v = reg(t_);
        load(v, 0);
        rec(op_, t_, 0, v, mem, 0, 64);
        ret0();
        break;
      }
      case Form::LocalAddr: {
        f.locals.push_back(LocalInfo{32, 16});
        const uint32_t d = reg(t_), x = reg(Type::U64), y = reg(Type::U64);
        rec(op_, t_, kLocalBase, d, 0, 0, 0);
        load(x, 0);
        rec(Op::Stu, Type::U64, 0, x, d, 0, 0);
        rec(Op::Ldu, Type::U64, kLocalBase, y, 0, 0, 0);
        store(y, 64);
        ret0();
        break;
      }
      case Form::Branch: {
        f.num_labels = 2;
        const uint32_t a = reg(t_), r = reg(Type::U64);
        load(a, 0);
        uint32_t b = 0;
        if (!imm_) {
          b = reg(source_);
          load(b, 32);
        }
        rec(op_, t_, imm_ ? kImm : 0, 0, a, b, imm_ ? imm_value_ : 0);
        rec(Op::Set, Type::U64, kImm, r, 0, 0, 1);
        rec(Op::Jmp, Type::Void, 0, 1, 0, 0, 0);
        rec(Op::Place, Type::Void, 0, 0, 0, 0, 0);
        rec(Op::Set, Type::U64, kImm, r, 0, 0, 2);
        rec(Op::Place, Type::Void, 0, 1, 0, 0, 0);
        store(r, 64);
        ret0();
        break;
      }
      case Form::Jump:
      case Form::Place:
        f.num_labels = 1;
        rec(Op::Jmp, op_ == Op::Jmp ? t_ : Type::Void, 0, 0, 0, 0, 0);
        rec(Op::Place, op_ == Op::Place ? t_ : Type::Void, 0, 0, 0, 0, 0);
        ret0();
        break;
      case Form::JumpReg:
      case Form::LabelAddr: {
        f.num_labels = 1;
        const uint32_t p = reg(t_);
        rec(Op::La, op_ == Op::La ? t_ : Type::P, 0, 0, p, 0, 0);
        rec(Op::Jmpr, op_ == Op::Jmpr ? t_ : Type::P, 0, 0, p, 0, 0);
        rec(Op::Place, Type::Void, 0, 0, 0, 0, 0);
        ret0();
        break;
      }
      case Form::Call: {
        uint32_t d = 0;
        if (value) d = reg(t_, RegClass::Var);  // survives the call
        rec(op_, t_, uint8_t(kExtern | (value ? 0 : kVoid)), d, 0, 0, 0);
        if (value) store(d, 64);
        ret0();
        break;
      }
      case Form::Return:
        if (value) {
          const uint32_t a = reg(t_);
          load(a, 0);
          rec(op_, t_, 0, 0, a, 0, 0);
        } else {
          rec(op_, t_, kVoid, 0, 0, 0, 0);
        }
        break;
    }
    return m;
  }

  bool verifies() const {
    try {
      Module m = build();
      verify(m);
      return true;
    } catch (const Error&) {
      return false;
    }
  }

  // The types of the values read at mem + 0 and mem + 32.
  std::pair<Type, Type> sources() const {
    const Form form = form_of(op_);
    if (form == Form::Unary || form == Form::UnaryImm) return {source_, source_};
    if (form == Form::Binary || form == Form::Branch) return {t_, imm_ ? t_ : source_};
    return {t_, t_};
  }

  std::string describe() const {
    return fmt::format("{} {} (source {}{})", op_name(op_), type_name(t_), type_name(source_),
                       imm_ ? fmt::format(", imm {}", imm_value_) : "");
  }

 private:
  Op op_;
  Type t_, source_;
  bool imm_;
  int64_t imm_value_;
};

// The samples of opcode `op` at operation type t: every source type, register and immediate
// forms, and the immediates an operation takes as a parameter.
std::vector<Sample> samples(Op op, Type t) {
  std::vector<Sample> out;
  switch (form_of(op)) {
    case Form::Binary:
    case Form::Branch:
      for (Type s : value_types()) out.emplace_back(op, t, s, false);
      out.emplace_back(op, t, t, true, has_flag(op, kOpTraps) ? 3 : 1);
      break;
    case Form::Unary:
      for (Type s : value_types()) out.emplace_back(op, t, s, false);
      break;
    case Form::UnaryImm:
      for (Type s : value_types())
        for (int64_t imm : {int64_t(0), int64_t(1), int64_t(0x0123456789abcdefll)})
          out.emplace_back(op, t, s, false, imm);
      break;
    default:
      out.emplace_back(op, t, t, false);
  }
  return out;
}

// The first sample the verifier accepts, if any.
std::optional<Sample> accepted(Op op, Type t) {
  for (const Sample& s : samples(op, t))
    if (s.verifies()) return s;
  return std::nullopt;
}

TEST(OpTable, EveryOpcodeHasAWellFormedRow) {
  std::set<std::string_view> names;
  for (int i = 0; i < kNumOps; ++i) {
    const Op op = Op(i);
    const OpInfo& info = op_info(op);
    EXPECT_FALSE(info.name.empty()) << i;
    EXPECT_FALSE(info.meaning.empty()) << info.name;
    EXPECT_TRUE(names.insert(info.name).second) << "duplicate name " << info.name;
    EXPECT_NE(info.types, 0u) << info.name;
    EXPECT_EQ(info.uniform_types & ~info.types, 0u)
        << info.name << ": uniform types it does not take";
    Op back;
    EXPECT_TRUE(parse_op(info.name, &back) && back == op) << info.name;
    EXPECT_LT(int(info.form), kNumForms) << info.name;
    EXPECT_NE(form_syntax(info.form), "?") << info.name;
    if (has_flag(op, kOpImmForm)) {
      EXPECT_TRUE(info.form == Form::Binary || info.form == Form::Branch ||
                  info.form == Form::Return)
          << info.name;
    }
  }
}

// The verifier's rules and the table's types agree at every opcode x type: some sample verifies
// exactly when the table allows the type. The builder skips the full check for the uniform types,
// so the all-registers sample must verify there (and, for the opcodes that have uniform types,
// only there: what the README says of them is exact).
TEST(OpTable, VerifierAgreesWithTheTypeRules) {
  for (int i = 0; i < kNumOps; ++i) {
    const Op op = Op(i);
    for (Type t : all_types()) {
      const bool allowed = in_set(op_info(op).types, t);
      const std::optional<Sample> ok = accepted(op, t);
      EXPECT_EQ(allowed, ok.has_value())
          << op_name(op) << " at " << type_name(t) << ": the table says "
          << (allowed ? "allowed" : "not allowed") << ", the verifier "
          << (ok ? "accepts " + ok->describe() : std::string("accepts no sample"));
      const Form form = form_of(op);
      if (t != Type::Void &&
          (form == Form::Binary || form == Form::Unary || form == Form::Branch)) {
        const bool verifies = Sample(op, t, t, false).verifies();
        if (op_info(op).uniform_types)
          EXPECT_EQ(uniform_ok(op, t), verifies)
              << op_name(op) << " with every register " << type_name(t);
        else
          EXPECT_FALSE(uniform_ok(op, t)) << op_name(op);
      }
    }
  }
}

// --- every consumer, every opcode -----------------------------------------------------------

// Memory the samples read (bytes 0..63) and write (64..127), filled so that every source is a
// valid input: small float values (conversions to integers must fit), divisors that are not 0.
struct Memory {
  alignas(64) uint8_t bytes[192];
  Memory(std::pair<Type, Type> sources, uint64_t seed) {
    std::mt19937_64 rng(seed);
    for (uint8_t& b : bytes) b = uint8_t(rng());
    for (int at : {0, 32}) {
      const Type source = at == 0 ? sources.first : sources.second;
      if (source == Type::F64) {
        double d = 2.75 + double(seed % 7);
        std::memcpy(bytes + at, &d, 8);
      } else if (source == Type::F32) {
        float f = -1.25f - float(seed % 5);
        std::memcpy(bytes + at, &f, 4);
      }
    }
  }
};

// Runs sample `s` of (op, t) everywhere and compares with the interpreter.
void check_everywhere(Op op, Type t, const Sample& s) {
  SCOPED_TRACE(s.describe());
  Module m = s.build();
  ASSERT_NO_THROW(verify(m));
  // The printer and the parser.
  const std::string text = print(m);
  Module parsed;
  ASSERT_NO_THROW(parsed = parse(text,
                                 [](std::string_view name) -> void* {
                                   return name == "callee" ? reinterpret_cast<void*>(&callee_int)
                                                           : nullptr;
                                 }))
      << text;
  EXPECT_EQ(text, print(parsed));

  const std::pair<Type, Type> source = s.sources();
  const bool traps = has_flag(op, kOpTraps) && is_int(t);
  for (uint64_t seed = 1; seed <= 3; ++seed) {
    Memory want(source, seed), got(source, seed), llvm(source, seed);
    if (traps)  // a divisor of 3 (and no INT_MIN / -1)
      for (Memory* x : {&want, &got, &llvm}) {
        std::memset(x->bytes + 32, 0, 8);
        x->bytes[32] = 3;
      }
    // The form of Call returns what a C function returns, which the interpreter calls too.
    Interpreter interp(m);
    uint64_t arg_want = uint64_t(reinterpret_cast<uintptr_t>(want.bytes));
    uint64_t r_want = interp.call("f", std::span<const uint64_t>(&arg_want, 1));

    const bool runs_here = !is_vector(t) || vector_bits(t) <= vector_width();
    if (runs_here) {
      Code code = compile(m);
      uint64_t arg = uint64_t(reinterpret_cast<uintptr_t>(got.bytes));
      uint64_t r = test::call_jit(code, "f", std::span<const uint64_t>(&arg, 1));
      EXPECT_EQ(r_want, r) << "fast tier, seed " << seed << "\n" << text;
      EXPECT_EQ(0, std::memcmp(want.bytes, got.bytes, sizeof want.bytes))
          << "fast tier memory, seed " << seed << "\n"
          << text;
    }
    if (llvm_tier_available() && seed == 1) {
      CompileOptions o;
      o.tier = Tier::Llvm;
      o.llvm_opt_level = 0;
      Code code = compile(m, o);
      uint64_t arg = uint64_t(reinterpret_cast<uintptr_t>(llvm.bytes));
      uint64_t r = test::call_jit(code, "f", std::span<const uint64_t>(&arg, 1));
      EXPECT_EQ(r_want, r) << "LLVM tier\n" << text;
      EXPECT_EQ(0, std::memcmp(want.bytes, llvm.bytes, sizeof want.bytes)) << "LLVM tier memory\n"
                                                                           << text;
    }
  }
  // The other machine's back end compiles it (256-bit vectors are an error on AArch64).
  CompileOptions other;
  other.target = kHostTarget == Target::X86_64 ? Target::AArch64 : Target::X86_64;
  if (other.target == Target::AArch64 && vector_bits(t) == 256) {
    EXPECT_THROW(compile(m, other), Error);
  } else if (other.target == Target::AArch64 || !is_vector(t)) {
    // (x86-64 code made on another machine assumes no optional instructions: no vectors.)
    EXPECT_NO_THROW(compile(m, other)) << text;
  }
}

TEST(OpTable, EveryConsumerHandlesEveryOpcodeAtEveryType) {
  int checked = 0;
  for (int i = 0; i < kNumOps; ++i) {
    const Op op = Op(i);
    for (Type t : all_types()) {
      if (!in_set(op_info(op).types, t)) continue;
      std::optional<Sample> s = accepted(op, t);
      ASSERT_TRUE(s) << op_name(op) << " at " << type_name(t);
      try {
        check_everywhere(op, t, *s);
      } catch (const std::exception& e) {
        ADD_FAILURE() << s->describe() << ": " << e.what() << "\n" << print(s->build());
      }
      ++checked;
    }
  }
  EXPECT_GT(checked, 300);
}

// --- the reference in vcode/README.md -------------------------------------------------------

std::string types_text(TypeSet s) {
  std::vector<std::string> parts;
  auto group = [&](TypeSet all, const char* name) {
    if ((s & all) == all) {
      parts.emplace_back(name);
    } else {
      for (Type t : all_types())
        if (in_set(s & all, t)) parts.emplace_back(type_name(t));
    }
  };
  group(kIntTypes, "int");
  group(kFloatTypes, "float");
  group(kVectorTypes, "vector");
  if (in_set(s, Type::Void)) parts.emplace_back("void");
  std::string out;
  for (const std::string& p : parts) out += (out.empty() ? "" : ", ") + p;
  return out;
}

std::string notes_text(Op op) {
  std::vector<std::string> notes;
  const OpInfo& info = op_info(op);
  if (info.uniform_types != info.types && info.uniform_types)
    notes.push_back("all-register form: " + types_text(info.uniform_types));
  if (has_flag(op, kOpCommutative)) notes.emplace_back("commutative");
  if (has_flag(op, kOpReadsDst)) notes.emplace_back("d is also a source");
  if (has_flag(op, kOpTraps)) notes.emplace_back("traps");
  if (has_flag(op, kOpLoad)) notes.emplace_back("reads memory");
  if (has_flag(op, kOpStore)) notes.emplace_back("writes memory");
  if (has_flag(op, kOpTerminator)) notes.emplace_back("ends a block");
  if (has_flag(op, kOpCall)) notes.emplace_back("call");
  if (has_flag(op, kOpCodeAddress)) notes.emplace_back("code address");
  if (has_flag(op, kOpStackAddress)) notes.emplace_back("stack address");
  std::string out;
  for (const std::string& n : notes) out += (out.empty() ? "" : "; ") + n;
  return out;
}

std::string escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '|') out += '\\';
    out += c;
  }
  return out;
}

// The reference table, one row per opcode, in the table's order.
std::string reference() {
  std::string s = "| opcode | syntax | types | meaning | notes |\n|---|---|---|---|---|\n";
  for (int i = 0; i < kNumOps; ++i) {
    const Op op = Op(i);
    const OpInfo& info = op_info(op);
    std::string syntax(form_syntax(info.form));
    if (syntax.rfind("op", 0) == 0) syntax = std::string(info.name) + syntax.substr(2);
    s += fmt::format("| `{}` | `{}` | {} | {} | {} |\n", info.name, escape(syntax),
                     types_text(info.types), escape(info.meaning), notes_text(op));
  }
  return s;
}

constexpr std::string_view kBegin = "<!-- instruction table: begin -->\n";
constexpr std::string_view kEnd = "<!-- instruction table: end -->\n";

TEST(OpTable, ReadmeReferenceIsTheTable) {
  const std::string path = std::string(EXOJIT_SOURCE_DIR) + "/vcode/README.md";
  std::ifstream in(path);
  ASSERT_TRUE(in) << path;
  std::stringstream buffer;
  buffer << in.rdbuf();
  std::string readme = buffer.str();
  const size_t begin = readme.find(kBegin), end = readme.find(kEnd);
  ASSERT_NE(begin, std::string::npos) << path << " has no " << kBegin;
  ASSERT_NE(end, std::string::npos) << path << " has no " << kEnd;
  const size_t from = begin + kBegin.size();
  const std::string want = reference();
  if (const char* update = std::getenv("EXOJIT_UPDATE_README"); update && *update == '1') {
    readme.replace(from, end - from, want);
    std::ofstream(path) << readme;
    GTEST_SKIP() << "rewrote " << path;
  }
  EXPECT_EQ(readme.substr(from, end - from), want)
      << path << " is not the instruction table's; regenerate it with "
      << "EXOJIT_UPDATE_README=1 build/tests/vcode/vcode_tests --gtest_filter=OpTable.Readme*";
}

}  // namespace
}  // namespace exojit::vcode
