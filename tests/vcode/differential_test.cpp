// SPDX-License-Identifier: MIT
// Every instruction x type, in register and immediate forms, run on the x86-64 back end and on
// the interpreter over interesting operand values: the results must be identical. Operands are
// also placed in the registers the back end treats specially (rdx for division, rcx for shifts,
// callee-saved variables, the destination aliasing a source).
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <functional>
#include <random>

#include "emit_ops.h"
#include "harness.h"

namespace exojit::vcode {
namespace {

const Type kIntTypes[] = {Type::I8,  Type::U8,  Type::I16, Type::U16, Type::I32,
                          Type::U32, Type::I64, Type::U64, Type::P};
const Type kFloatTypes[] = {Type::F32, Type::F64};

std::vector<uint64_t> int_values(Type t) {
  std::vector<uint64_t> raw = {0,
                               1,
                               2,
                               3,
                               5,
                               7,
                               0x7f,
                               0x80,
                               0xff,
                               0x7fff,
                               0x8000,
                               0xffff,
                               31,
                               32,
                               63,
                               64,
                               0x7fffffff,
                               0x80000000,
                               0xffffffff,
                               0x123456789abcdefull,
                               0x7fffffffffffffffull,
                               0x8000000000000000ull,
                               ~0ull,
                               ~1ull,
                               uint64_t(-7),
                               uint64_t(-100)};
  std::mt19937_64 rng(uint64_t(t) * 977);
  for (int i = 0; i < 6; ++i) raw.push_back(rng());
  std::vector<uint64_t> out;
  for (uint64_t v : raw) {
    uint64_t n = uint64_t(normalize_imm(t, int64_t(v)));
    if (std::find(out.begin(), out.end(), n) == out.end()) out.push_back(n);
  }
  return out;
}

std::vector<uint64_t> float_values(Type t) {
  const double ds[] = {0.0,
                       -0.0,
                       1.0,
                       -1.0,
                       0.5,
                       3.25,
                       -7.75,
                       1e10,
                       -1e-10,
                       123456.789,
                       std::numeric_limits<double>::infinity(),
                       std::nan(""),
                       2.5e30,
                       65536.0};
  std::vector<uint64_t> out;
  for (double d : ds)
    out.push_back(t == Type::F32 ? uint64_t(std::bit_cast<uint32_t>(float(d)))
                                 : std::bit_cast<uint64_t>(d));
  return out;
}

bool same_value(Type t, uint64_t a, uint64_t b) {
  if (is_float(t)) {
    double x =
        t == Type::F32 ? double(std::bit_cast<float>(uint32_t(a))) : std::bit_cast<double>(a);
    double y =
        t == Type::F32 ? double(std::bit_cast<float>(uint32_t(b))) : std::bit_cast<double>(b);
    if (std::isnan(x) && std::isnan(y)) return true;  // NaN payloads may differ
    return a == b;
  }
  return a == b;
}

// Where an operand lives: a parameter register, a specific temporary slot, or a variable.
struct Place {
  RegClass cls;
  int slot;  // -1: the parameter itself
};

// Gets a register of type t in exactly the given slot (occupying the lower free slots with
// dummies that are released afterwards).
Reg reg_in(Builder& b, Type t, Place p) {
  std::vector<Reg> dummies;
  for (;;) {
    Reg r = b.getreg(t, p.cls);
    if (b.function().regs[r.id].slot == p.slot) {
      for (Reg d : dummies) b.putreg(d);
      return r;
    }
    dummies.push_back(r);
  }
}

// A module of small functions, each checked on many inputs against the interpreter.
class Suite {
 public:
  using Inputs = std::vector<std::vector<uint64_t>>;
  // `llvm`: also check the case on the LLVM tier (register placements mean nothing there, so
  // callers ask for one placement of each operation).
  void add(std::function<void(Module&)> build, Inputs inputs, Type result, bool llvm = true) {
    cases_.push_back({std::move(inputs), result, llvm});
    build(m_);
    if (llvm) build(m_llvm_);
  }
  // Runs every case on the interpreter and on the back ends: x86-64 once with the optional CPU
  // instructions (movbe, BMI2 shifts), once with the portable sequences, once with constant
  // blinding, and the LLVM tier.
  void run() {
    CompileOptions portable, blinded, llvm;
    portable.use_movbe = portable.use_bmi2 = false;
    blinded.blind_constants = true;
    llvm.tier = Tier::Llvm;
    const bool with_llvm = llvm_tier_available() && !m_llvm_.functions().empty();
    Code codes[4] = {compile(m_), compile(m_, portable), compile(m_, blinded),
                     with_llvm ? compile(m_llvm_, llvm) : Code()};
    const char* names[4] = {"host CPU x86-64", "portable x86-64", "blinded x86-64", "LLVM tier"};
    Interpreter interp(m_);
    ASSERT_EQ(m_.functions().size(), cases_.size());
    for (size_t i = 0; i < cases_.size(); ++i) {
      const Function& f = *m_.functions()[i];
      for (const auto& args : cases_[i].inputs) {
        uint64_t want = interp.call(i, args);
        for (int c = 0; c < (cases_[i].llvm && with_llvm ? 4 : 3); ++c) {
          uint64_t got = test::call_jit(codes[c], f.name, args);
          if (!same_value(cases_[i].result, want, got)) {
            std::string a;
            for (uint64_t v : args) a += fmt::format("{:#x} ", v);
            ADD_FAILURE() << "mismatch (" << names[c] << ") in\n"
                          << print(m_, f) << "args " << a << ": interpreter "
                          << fmt::format("{:#x}", want) << ", compiled "
                          << fmt::format("{:#x}", got);
            return;
          }
        }
      }
    }
  }
  std::string next_name() { return fmt::format("f{}", cases_.size()); }

 private:
  struct Case {
    Inputs inputs;
    Type result;
    bool llvm;
  };
  Module m_, m_llvm_;
  std::vector<Case> cases_;
};

Suite::Inputs pairs(const std::vector<uint64_t>& a, const std::vector<uint64_t>& b,
                    const std::function<bool(uint64_t, uint64_t)>& ok = nullptr) {
  Suite::Inputs out;
  for (uint64_t x : a)
    for (uint64_t y : b)
      if (!ok || ok(x, y)) out.push_back({x, y});
  return out;
}

bool divisible(Type t, uint64_t x, uint64_t y) {
  if (y == 0) return false;
  if (is_signed(t) && type_bits(t) >= 32 && int64_t(y) == -1 &&
      int64_t(x) == (type_bits(t) == 32 ? INT32_MIN : INT64_MIN))
    return false;
  return true;
}

const Op kIntBinary[] = {Op::Add, Op::Sub, Op::Mul, Op::Div, Op::Mod,
                         Op::And, Op::Or,  Op::Xor, Op::Lsh, Op::Rsh};

using test::emit_binary;
using test::emit_branch;

// Operand placements for a, b and d: parameters, rdx (t2), rcx (t3), variables, aliasing.
struct Layout {
  Place a, b;
  int d;  // >= 0: temp slot; -1: d is a; -2: d is b; -3: a variable
};
const Layout kLayouts[] = {
    {{RegClass::Temp, -1}, {RegClass::Temp, -1}, 4},   // d distinct
    {{RegClass::Temp, -1}, {RegClass::Temp, -1}, -1},  // d = a
    {{RegClass::Temp, -1}, {RegClass::Temp, -1}, -2},  // d = b
    {{RegClass::Temp, 2}, {RegClass::Temp, 3}, 4},     // a in rdx, b in rcx
    {{RegClass::Temp, 3}, {RegClass::Temp, 2}, -2},    // a in rcx, b and d in rdx
    {{RegClass::Temp, 3}, {RegClass::Temp, 2}, -1},    // a and d in rcx, b in rdx
    {{RegClass::Temp, 2}, {RegClass::Temp, 4}, 3},     // a in rdx, d in rcx
    {{RegClass::Temp, 4}, {RegClass::Temp, 3}, 2},     // b in rcx, d in rdx
    {{RegClass::Var, 0}, {RegClass::Var, 1}, -3},      // callee-saved registers
};

void build_binary(Module& m, const std::string& name, Op op, Type t, Type bt, const Layout& l) {
  Builder b(m, name, t, {t, bt});
  Reg x = b.arg(0), y = b.arg(1);
  if (l.a.slot >= 0 || l.a.cls == RegClass::Var) {
    Reg r = reg_in(b, t, l.a);
    b.mov(r, x);
    x = r;
  }
  if (l.b.slot >= 0 || l.b.cls == RegClass::Var) {
    Reg r = reg_in(b, bt, l.b);
    b.mov(r, y);
    y = r;
  }
  Reg d = l.d == -1 ? x : l.d == -2 ? y : Reg{};
  if (l.d == -2 && bt != t) d = Reg{};
  if (!d.valid()) {
    d = l.d == -3 ? b.getreg(t, RegClass::Var) : reg_in(b, t, {RegClass::Temp, l.d >= 0 ? l.d : 4});
    if (has_flag(op, kOpReadsDst)) b.set(d, int64_t(0x1234567890abcdef));  // (d is a source)
  }
  emit_binary(b, op, d, x, y);
  b.ret(d);
  b.finish();
}

TEST(Differential, IntegerBinaryRegisterForms) {
  Suite s;
  for (Op op : kIntBinary)
    for (Type t : kIntTypes) {
      if (t == Type::P && op != Op::Add && op != Op::Sub && op != Op::And && op != Op::Or &&
          op != Op::Xor)
        continue;
      Type bt = (op == Op::Lsh || op == Op::Rsh) ? Type::U8 : t;
      auto values = int_values(t);
      std::vector<uint64_t> counts;
      for (uint64_t c = 0; c < 70; c += 3) counts.push_back(c);
      auto inputs =
          (op == Op::Lsh || op == Op::Rsh) ? pairs(values, counts)
          : (op == Op::Div || op == Op::Mod)
              ? pairs(values, values, [t](uint64_t x, uint64_t y) { return divisible(t, x, y); })
              : pairs(values, values);
      for (const Layout& l : kLayouts) {
        std::string name = s.next_name();
        s.add([&](Module& m) { build_binary(m, name, op, t, bt, l); }, inputs, t,
              &l == &kLayouts[0]);
      }
    }
  s.run();
}

TEST(Differential, IntegerBinaryImmediateForms) {
  Suite s;
  const int64_t imms[] = {0,
                          1,
                          -1,
                          2,
                          3,
                          7,
                          31,
                          32,
                          63,
                          100,
                          -128,
                          255,
                          0x7fff,
                          65535,
                          0x7fffffff,
                          int64_t(0x80000000),
                          int64_t(0xffffffff),
                          0x123456789ll,
                          INT64_MIN,
                          INT64_MAX};
  for (Op op : kIntBinary)
    for (Type t : kIntTypes) {
      if (t == Type::P && op != Op::Add && op != Op::Sub && op != Op::And) continue;
      for (int64_t imm : imms) {
        int64_t v = normalize_imm(t, imm);
        if ((op == Op::Div || op == Op::Mod) && (v == 0 || v == -1)) continue;
        for (int alias = 0; alias < 2; ++alias) {
          std::string name = s.next_name();
          Suite::Inputs inputs;
          for (uint64_t x : int_values(t)) inputs.push_back({x});
          s.add(
              [&](Module& m) {
                Builder b(m, name, t, {t});
                Reg x = b.arg(0);
                Reg d = alias ? x : b.getreg(t);
                emit_binary(b, op, d, x, imm);
                b.ret(d);
                b.finish();
              },
              inputs, t, alias == 0);
        }
      }
    }
  s.run();
}

TEST(Differential, FloatArithmetic) {
  Suite s;
  const Op ops[] = {Op::Add, Op::Sub, Op::Mul, Op::Div};
  for (Type t : kFloatTypes)
    for (Op op : ops)
      for (int alias = 0; alias < 4; ++alias) {
        std::string name = s.next_name();
        s.add(
            [&](Module& m) {
              Builder b(m, name, t, {t, t});
              Reg x = b.arg(0), y = b.arg(1);
              Reg d = alias == 1   ? x
                      : alias == 2 ? y
                                   : b.getreg(t, alias == 3 ? RegClass::Var : RegClass::Temp);
              emit_binary(b, op, d, x, y);
              b.ret(d);
              b.finish();
            },
            pairs(float_values(t), float_values(t)), t);
      }
  for (Type t : kFloatTypes)
    for (int which = 0; which < 3; ++which) {
      std::string name = s.next_name();
      Suite::Inputs inputs;
      for (uint64_t v : float_values(t)) inputs.push_back({v});
      s.add(
          [&](Module& m) {
            Builder b(m, name, t, {t});
            Reg x = b.arg(0), d = b.getreg(t, RegClass::Var);
            if (which == 0) b.neg(d, x);
            if (which == 1) b.mov(d, x);
            if (which == 2) {
              b.setf(d, -2.75);
              b.mul(d, d, x);
            }
            b.ret(d);
            b.finish();
          },
          inputs, t);
    }
  s.run();
}

TEST(Differential, IntegerUnary) {
  Suite s;
  for (Type t : kIntTypes)
    for (Op op : {Op::Neg, Op::Com, Op::Not, Op::Mov, Op::Bswap}) {
      if (op == Op::Bswap && type_bits(t) < 16) continue;
      if (op == Op::Bswap && t == Type::P) continue;
      for (int alias = 0; alias < 2; ++alias) {
        std::string name = s.next_name();
        Suite::Inputs inputs;
        for (uint64_t x : int_values(t)) inputs.push_back({x});
        s.add(
            [&](Module& m) {
              Builder b(m, name, t, {t});
              Reg x = b.arg(0), d = alias ? x : b.getreg(t, RegClass::Var);
              switch (op) {
                case Op::Neg:
                  b.neg(d, x);
                  break;
                case Op::Com:
                  b.com(d, x);
                  break;
                case Op::Not:
                  b.not_(d, x);
                  break;
                case Op::Mov:
                  b.mov(d, x);
                  break;
                default:
                  b.bswap(d, x);
                  break;
              }
              b.ret(d);
              b.finish();
            },
            inputs, t);
      }
    }
  s.run();
}

TEST(Differential, SetImmediates) {
  Suite s;
  for (Type t : kIntTypes)
    for (uint64_t v : int_values(t)) {
      std::string name = s.next_name();
      s.add(
          [&](Module& m) {
            Builder b(m, name, t, {});
            Reg d = b.getreg(t);
            b.set(d, int64_t(v));
            b.ret(d);
            b.finish();
          },
          {{}}, t);
    }
  for (Type t : kFloatTypes)
    for (double v : {0.0, -0.0, 1.5, -3e38, 1e-300, 65504.0}) {
      std::string name = s.next_name();
      s.add(
          [&](Module& m) {
            Builder b(m, name, t, {});
            Reg d = b.getreg(t);
            b.setf(d, v);
            b.ret(d);
            b.finish();
          },
          {{}}, t);
    }
  s.run();
}

TEST(Differential, Conversions) {
  Suite s;
  std::vector<Type> all(std::begin(kIntTypes), std::end(kIntTypes));
  all.push_back(Type::F32);
  all.push_back(Type::F64);
  for (Type from : all)
    for (Type to : all) {
      Suite::Inputs inputs;
      if (is_float(from)) {
        // Only values that fit the destination: out-of-range float->int is an error.
        for (double d : {0.0, 1.9, -1.9, 100.5, -100.5, 127.0, 255.99, 65535.0, 2147483647.0,
                         -2147483648.0, 4294967295.0, 9.2e18, -9.2e18, 1.8e19, 1e300, -0.0}) {
          if (!is_float(to)) {
            double tr = std::trunc(d);
            bool fits = to == Type::U64 || to == Type::P ? (tr >= 0 && tr < 0x1p64)
                                                         : (tr >= -0x1p63 && tr < 0x1p63);
            if (!fits || (from == Type::F32 && std::abs(d) > 3e38)) continue;
          }
          inputs.push_back({from == Type::F32 ? uint64_t(std::bit_cast<uint32_t>(float(d)))
                                              : std::bit_cast<uint64_t>(d)});
        }
      } else {
        for (uint64_t v : int_values(from)) inputs.push_back({v});
      }
      if (to == Type::P && is_float(from)) continue;
      for (int var = 0; var < 2; ++var) {
        std::string name = s.next_name();
        s.add(
            [&](Module& m) {
              Builder b(m, name, to, {from});
              Reg d = b.getreg(to, var ? RegClass::Var : RegClass::Temp);
              b.cvt(d, b.arg(0));
              b.ret(d);
              b.finish();
            },
            inputs, to);
      }
    }
  s.run();
}

// The guards of a bounds check (Spectre v1 hardening): bound_mask (the mask) and bound_zero (the
// guarded value kept or zeroed), every placement of their registers (d apart, d one of the
// compared ones, callee-saved ones), and the immediate forms at the edges (blinded ones
// included, in the blinded run).
TEST(Differential, BoundsCheckGuards) {
  Suite s;
  for (Op op : {Op::BoundMask, Op::BoundZero})
    for (Type t : {Type::U32, Type::U64, Type::P}) {
      for (const Layout& l : kLayouts) {
        std::string name = s.next_name();
        s.add([&](Module& m) { build_binary(m, name, op, t, t, l); },
              pairs(int_values(t), int_values(t)), t, &l == &kLayouts[0]);
      }
      for (int64_t imm : {0ll, 1ll, 127ll, 128ll, 0xffffll, 0x7fffffffll, 0xffffffffll, -1ll,
                          -129ll, 0x123456789abll}) {
        std::string name = s.next_name();
        Suite::Inputs inputs;
        for (uint64_t x : int_values(t)) inputs.push_back({x, 0x5555aaaa});
        s.add(
            [&](Module& m) {
              Builder b(m, name, t, {t, t});
              Reg d = b.arg(1);  // bound_zero's guarded value; bound_mask's result
              if (op == Op::BoundMask)
                b.bound_mask(d, b.arg(0), imm);
              else
                b.bound_zero(d, b.arg(0), imm);
              b.ret(d);
              b.finish();
            },
            inputs, t);
      }
    }
  s.run();
}

TEST(Differential, Checksum) {
  Suite s;
  for (Type acc : {Type::U32, Type::U64})
    for (Type in : {Type::U16, Type::U32, Type::U64}) {
      if (type_bits(in) > type_bits(acc)) continue;
      for (const Layout& l : kLayouts) {
        if (l.d == -2 && in != acc) continue;
        std::string name = s.next_name();
        s.add([&](Module& m) { build_binary(m, name, Op::Cksum, acc, in, l); },
              pairs(int_values(acc), int_values(in)), acc);
      }
      for (int64_t imm : {0ll, 1ll, 0xffffll, 0xffffffffll, -1ll, 0x7fffffffll}) {
        std::string name = s.next_name();
        Suite::Inputs inputs;
        for (uint64_t x : int_values(acc)) inputs.push_back({x});
        s.add(
            [&](Module& m) {
              Builder b(m, name, acc, {acc});
              b.cksum(b.arg(0), b.arg(0), imm);
              b.ret(b.arg(0));
              b.finish();
            },
            inputs, acc);
      }
    }
  for (Type from : {Type::U16, Type::U32, Type::U64})
    for (Type to : {Type::U16, Type::U32, Type::U64}) {
      std::string name = s.next_name();
      Suite::Inputs inputs;
      for (uint64_t x : int_values(from)) inputs.push_back({x});
      s.add(
          [&](Module& m) {
            Builder b(m, name, to, {from});
            Reg d = b.getreg(to);
            b.cksum_fold(d, b.arg(0));
            b.ret(d);
            b.finish();
          },
          inputs, to);
    }
  s.run();
}

TEST(Differential, Branches) {
  Suite s;
  const Op conds[] = {Op::Blt, Op::Ble, Op::Bgt, Op::Bge, Op::Beq, Op::Bne};
  std::vector<Type> types(std::begin(kIntTypes), std::end(kIntTypes));
  types.push_back(Type::F32);
  types.push_back(Type::F64);
  for (Type t : types)
    for (Op op : conds) {
      auto values = is_float(t) ? float_values(t) : int_values(t);
      std::string name = s.next_name();
      s.add(
          [&](Module& m) {
            Builder b(m, name, Type::I32, {t, t});
            Label yes = b.label();
            emit_branch(b, op, b.arg(0), b.arg(1), yes);
            b.ret(0);
            b.place(yes);
            b.ret(1);
            b.finish();
          },
          pairs(values, values), Type::I32);
      if (is_float(t)) continue;
      for (int64_t imm :
           std::initializer_list<int64_t>{0, 1, -1, 127, 0x7fffffff, 0x100000000, INT64_MIN}) {
        std::string iname = s.next_name();
        Suite::Inputs inputs;
        for (uint64_t x : values) inputs.push_back({x});
        s.add(
            [&](Module& m) {
              Builder b(m, iname, Type::I32, {t});
              Label yes = b.label();
              emit_branch(b, op, b.arg(0), imm, yes);
              b.ret(0);
              b.place(yes);
              b.ret(1);
              b.finish();
            },
            inputs, Type::I32);
      }
    }
  s.run();
}

// Loads: every type and flavour, base+disp, base+index+disp, at aligned and odd addresses.
TEST(Differential, LoadsAndStores) {
  alignas(64) static uint8_t memory[256];
  for (size_t i = 0; i < sizeof memory; ++i) memory[i] = uint8_t(i * 37 + 11);
  uint64_t base = uint64_t(reinterpret_cast<uintptr_t>(memory));
  Suite s;
  std::vector<Type> types(std::begin(kIntTypes), std::end(kIntTypes));
  types.push_back(Type::F32);
  types.push_back(Type::F64);
  for (Type t : types)
    for (Op op : {Op::Ld, Op::Ldu, Op::Ldbe}) {
      if (op == Op::Ldbe && is_float(t)) continue;
      int n = type_bytes(t);
      for (int indexed = 0; indexed < 2; ++indexed) {
        std::string name = s.next_name();
        Suite::Inputs inputs;
        for (uint64_t off = 0; off < 64; off += (op == Op::Ld ? n : 1))
          inputs.push_back({base, off});
        s.add(
            [&](Module& m) {
              Builder b(m, name, t, {Type::P, Type::U64});
              Reg d = b.getreg(t);
              if (indexed) {
                if (op == Op::Ld) b.ld(d, b.arg(0), b.arg(1), 64);
                if (op == Op::Ldu) b.ldu(d, b.arg(0), b.arg(1), 64);
                if (op == Op::Ldbe) b.ldbe(d, b.arg(0), b.arg(1), 64);
              } else {
                Reg p = b.getreg(Type::P);
                b.add(p, b.arg(0), b.arg(1));
                if (op == Op::Ld) b.ld(d, p, 128);
                if (op == Op::Ldu) b.ldu(d, p, 128);
                if (op == Op::Ldbe) b.ldbe(d, p, 128);
              }
              b.ret(d);
              b.finish();
            },
            inputs, t);
      }
    }
  s.run();

  // Stores: each function stores its argument and returns the bytes around it.
  for (Type t : types)
    for (Op op : {Op::St, Op::Stu, Op::Stbe}) {
      if (op == Op::Stbe && is_float(t)) continue;
      Module m;
      Builder b(m, "store", Type::Void, {Type::P, t, Type::U64});
      if (op == Op::St) b.st(b.arg(1), b.arg(0), b.arg(2), 8);
      if (op == Op::Stu) b.stu(b.arg(1), b.arg(0), b.arg(2), 8);
      if (op == Op::Stbe) b.stbe(b.arg(1), b.arg(0), b.arg(2), 8);
      b.ret();
      b.finish();
      CompileOptions portable;
      portable.use_movbe = false;
      Code code = compile(m);
      Code code_portable = compile(m, portable);
      Interpreter interp(m);
      auto values = is_float(t) ? float_values(t) : int_values(t);
      for (uint64_t off = 0; off < 16; off += (op == Op::St ? type_bytes(t) : 1))
        for (uint64_t v : values) {
          alignas(16) uint8_t a[32] = {}, c[32] = {};
          uint64_t args_a[] = {uint64_t(reinterpret_cast<uintptr_t>(a)), v, off};
          uint64_t args_c[] = {uint64_t(reinterpret_cast<uintptr_t>(c)), v, off};
          interp.call(0, args_a);
          test::call_jit(code, "store", args_c);
          ASSERT_EQ(0, std::memcmp(a, c, sizeof a)) << print(m) << " value " << v << " at " << off;
          std::memset(c, 0, sizeof c);
          test::call_jit(code_portable, "store", args_c);
          ASSERT_EQ(0, std::memcmp(a, c, sizeof a)) << "portable " << print(m) << " value " << v;
        }
    }
}

TEST(Differential, LocalsAndAddresses) {
  Module m;
  Builder b(m, "locals", Type::U64, {Type::U64, Type::U32});
  Local l = b.local(24, 8);
  Reg p = b.getreg(Type::P), x = b.getreg(Type::U64), y = b.getreg(Type::U16);
  b.st(b.arg(0), l, 0);
  b.st(b.arg(1), l, 8);
  b.addrl(p, l);
  b.ldu(x, p, 3);
  b.ld(y, l, 10);
  b.cvt(b.arg(0), y);
  b.add(x, x, b.arg(0));
  b.stbe(x, p, 16);
  b.ld(x, l, 16);
  b.ret(x);
  b.finish();
  Code code = compile(m);
  Interpreter interp(m);
  for (uint64_t v : int_values(Type::U64))
    for (uint64_t w : {0ull, 1ull, 0xdeadbeefull}) {
      uint64_t args[] = {v, w};
      ASSERT_EQ(interp.call(0, args), test::call_jit(code, "locals", args));
    }
}

}  // namespace
}  // namespace exojit::vcode

namespace exojit::vcode {
namespace {

// Every register as a memory base and as an addend: rsp/r12 need a SIB byte, rbp/r13 a
// displacement byte, r8-r15 REX bits; displacements of 0, 8 bits and 32 bits.
TEST(Differential, EveryRegisterAsBaseAndAddend) {
  alignas(64) static uint8_t memory[2048];  // loads below 1024, stores above: runs are repeatable
  for (size_t i = 0; i < sizeof memory; ++i) memory[i] = uint8_t(i * 13 + 5);
  const uint64_t base_addr = uint64_t(reinterpret_cast<uintptr_t>(memory));
  Suite s;
  for (RegClass cls : {RegClass::Temp, RegClass::Var})
    for (int slot = 0; slot < (cls == RegClass::Temp ? kIntTemps : kIntVars); ++slot)
      for (int64_t disp : {0, 8, -8, 120, 200, 256}) {
        if (cls == RegClass::Temp && slot < 2) continue;  // the parameters' own slots
        std::string name = s.next_name();
        s.add(
            [&](Module& m) {
              Builder b(m, name, Type::U64, {Type::P, Type::U64});
              Reg p = reg_in(b, Type::P, {cls, slot});
              Reg v = b.getreg(Type::U64, cls == RegClass::Var ? RegClass::Temp : RegClass::Var);
              Reg w = b.getreg(Type::U32, cls == RegClass::Var ? RegClass::Temp : RegClass::Var);
              b.add(p, b.arg(0), 256);
              b.ld(v, p, disp);
              b.ldu(w, p, disp + 4);
              b.st(b.arg(1), p, disp + 1024);
              b.stu(w, p, disp + 1024 + 9);
              b.add(p, p, b.arg(1));  // lea with this base
              b.add(v, v, p);
              b.add(p, b.arg(1), p);  // and as the addend
              b.xor_(v, v, p);
              b.ret(v);
              b.finish();
            },
            {{base_addr, 16}, {base_addr, 0x1234}}, Type::U64);
      }
  s.run();
}

}  // namespace
}  // namespace exojit::vcode

namespace exojit::vcode {
namespace {

// Frames beyond the short immediates (AArch64: 12-bit, scaled or 9-bit unscaled offsets; frame
// adjustments in shifted 12-bit pieces) and displacements no addressing mode takes directly.
TEST(Differential, BigFramesAndFarDisplacements) {
  alignas(64) static uint8_t memory[80000];
  for (size_t i = 0; i < sizeof memory; ++i) memory[i] = uint8_t(i * 7 + 3);
  Module m;
  Builder b(m, "far", Type::U64, {Type::P, Type::U64});
  Local small = b.local(40, 8);
  // 6 MiB in all (the main thread's stack is 8 MiB, and threads do not run under qemu-user).
  Local big = b.local(3u << 20, 16);
  Local big2 = b.local(3u << 20, 16);
  Local after = b.local(64, 8);
  Reg p = b.getreg(Type::P), x = b.getreg(Type::U64), y = b.getreg(Type::U32, RegClass::Var);
  Reg i = b.getreg(Type::U64, RegClass::Var);
  b.st(b.arg(1), small, 8);
  b.st(b.arg(1), big, 8);
  b.st(b.arg(1), big2, (3 << 20) - 8);  // the far end of the frame
  b.st(b.arg(1), after, 0);
  b.ld(x, big2, (3 << 20) - 8);
  b.ld(y, small, 12);
  b.cvt(i, y);
  b.add(x, x, i);
  b.addrl(p, after);
  b.ldu(y, p, 1);
  b.cvt(i, y);
  b.add(x, x, i);
  for (int64_t disp : {257, 4097, 32768, 65000, -300, -4100}) {
    b.ldu(y, b.arg(0), disp + 8000);  // unscaled, unaligned and far displacements
    b.cvt(i, y);
    b.add(x, x, i);
    b.stu(y, b.arg(0), disp + 8000 + 8);
  }
  b.set(i, 3);
  b.ldu(y, b.arg(0), i, 70001);  // base + index + far displacement
  b.cvt(i, y);
  b.add(x, x, i);
  b.ret(x);
  b.finish();
  Code code = compile(m);
  Interpreter interp(m);
  uint64_t args[] = {uint64_t(reinterpret_cast<uintptr_t>(memory)), 0x0102030405060708ull};
  uint64_t want = interp.call(0, args);
  EXPECT_EQ(want, test::call_jit(code, "far", args));
}

}  // namespace
}  // namespace exojit::vcode
