// SPDX-License-Identifier: MIT
// The pipe compiler against the C references: every combination of up to three library pipes,
// message lengths 0..4100, every alignment 0..7 of src and dst, on the vector loop (256- and
// 128-bit), the scalar loops and the interpreter. The output buffer, the bytes around it and the
// persistent registers (carried across calls) must equal running the references one after
// another. Plus user-defined pipes, gauge conversions, export/import and bad input.
#include "exojit/pipes.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

namespace exojit::pipes {
namespace {

using Combo = std::vector<std::string>;

// The references of one combination, with their persistent state.
struct Reference {
  Combo names;
  std::vector<uint32_t> state;  // cksum acc / cipher state / crc32c crc, per pipe (else 0)

  explicit Reference(const Combo& c) : names(c) {
    for (const std::string& n : c)
      state.push_back(n == "cipher" ? library::kDemoKey : n == "crc32c" ? 0xffffffffu : 0);
  }
  // Runs every reference in order over buf (in place).
  void run(uint8_t* buf, size_t n) {
    for (size_t i = 0; i < names.size(); ++i) {
      const std::string& name = names[i];
      if (name == "cksum")
        state[i] = reference::cksum(state[i], buf, n);
      else if (name == "bswap16")
        reference::bswap16(buf, n);
      else if (name == "bswap32")
        reference::bswap32(buf, n);
      else if (name == "cipher")
        state[i] = reference::cipher(state[i], buf, n);
      else if (name == "crc32c")
        state[i] = reference::crc32c(state[i], buf, n);
    }
  }
};

uint64_t persistent_of(const CompiledPipes& c, const Combo& combo, size_t i) {
  const std::string& n = combo[i];
  if (n == "cksum") return c.get(int(i), "acc");
  if (n == "cipher") return c.get(int(i), "state");
  if (n == "crc32c") return c.get(int(i), "crc");
  return 0;
}

std::string describe(const Combo& c) {
  std::string s;
  for (const std::string& n : c) s += (s.empty() ? "" : ",") + n;
  return s;
}

struct Config {
  const char* name;
  CompileOptions options;
  bool available;
};

std::vector<Config> configs() {
  std::vector<Config> out;
  CompileOptions wide;  // the widest vectors the CPU has
  out.push_back({"native", wide, true});
  CompileOptions sse;
  sse.codegen.use_avx = false;
  out.push_back({"native-128", sse, vcode::vector_width(sse.codegen) >= 128});
  CompileOptions scalar;
  scalar.vector_bits = 0;
  scalar.codegen.use_sse42 = false;  // also the crc32c fallback
  out.push_back({"scalar", scalar, true});
  return out;
}

constexpr size_t kGuard = 16;
constexpr size_t kMaxLen = 4100;

// The lengths and alignments one combination is run with, in this order (state carries over).
std::vector<std::array<size_t, 3>> cases(bool all_lengths) {
  std::vector<std::array<size_t, 3>> out;  // {length, src alignment, dst alignment}
  for (size_t len = 0; len <= kMaxLen; ++len) {
    if (!all_lengths && len > 300 && len % 13 != 0) continue;
    out.push_back({len, len % 8, (len / 8 + len / 64) % 8});
  }
  const size_t edges[] = {0,   1,   2,   3,   4,   5,   7,    8,    9,    15,   16,  17,
                          31,  32,  33,  63,  64,  65,  127,  128,  129,  130,  255, 256,
                          257, 383, 384, 385, 511, 513, 4095, 4096, 4097, 4099, 4100};
  for (size_t len : edges)
    for (size_t sa = 0; sa < 8; ++sa)
      for (size_t da = 0; da < 8; ++da) out.push_back({len, sa, da});
  return out;
}

// Runs `combo` compiled with `options` over every case and compares with the references.
void check_combo(const Combo& combo, Direction dir, const CompileOptions& options, bool all_lengths,
                 const char* config) {
  PipeList pl;
  for (const std::string& n : combo) library::add(pl, n);
  CompiledPipes c = compile(pl, dir, options);
  Reference ref(combo);
  std::mt19937 rng(uint32_t(combo.size() * 131 + combo[0].size()));
  std::vector<uint8_t> src(kMaxLen + 2 * kGuard), dst(kMaxLen + 2 * kGuard),
      want(kMaxLen + 2 * kGuard);
  for (auto& b : src) b = uint8_t(rng());
  for (auto& b : dst) b = uint8_t(rng());
  for (auto [len, sa, da] : cases(all_lengths)) {
    for (int k = 0; k < 8; ++k) src[rng() % src.size()] = uint8_t(rng());  // fresh data
    want = dst;
    uint8_t* s = src.data() + kGuard + sa;
    uint8_t* d = dst.data() + kGuard + da;
    std::vector<uint8_t> work(s, s + len);
    ref.run(work.data(), len);
    if (dir == Direction::Write) std::copy(work.begin(), work.end(), want.begin() + kGuard + da);
    ASSERT_EQ(c(d, s, len), len);
    std::string where = fmt::format("{} [{}] {} length {} src+{} dst+{}", describe(combo), config,
                                    dir == Direction::Write ? "write" : "read-only", len, sa, da);
    ASSERT_TRUE(dst == want) << where << ": output differs";
    for (size_t i = 0; i < combo.size(); ++i)
      ASSERT_EQ(persistent_of(c, combo, i), ref.state[i]) << where << ": pipe " << i;
  }
}

std::vector<Combo> combos(size_t max) {
  std::vector<Combo> out;
  std::vector<Combo> level = {{}};
  for (size_t k = 1; k <= max; ++k) {
    std::vector<Combo> next;
    for (const Combo& c : level)
      for (std::string_view n : library::names()) {
        Combo e = c;
        e.emplace_back(n);
        next.push_back(e);
      }
    out.insert(out.end(), next.begin(), next.end());
    level = std::move(next);
  }
  return out;
}

class Combinations : public ::testing::TestWithParam<int> {};

// One parameter per configuration x combination size, so that ctest runs them in parallel.
TEST_P(Combinations, MatchReferencesRunOneAfterAnother) {
  const int config = GetParam() / 3, size = GetParam() % 3 + 1;
  const Config cfg = configs()[size_t(config)];
  if (!cfg.available) GTEST_SKIP() << cfg.name << " needs vector support this CPU lacks";
  for (const Combo& c : combos(size_t(size))) {
    if (c.size() != size_t(size)) continue;
    check_combo(c, Direction::Write, cfg.options, size <= 2, cfg.name);
    if (size == 1 || config == 0) check_combo(c, Direction::ReadOnly, cfg.options, false, cfg.name);
  }
}

std::string combination_name(const ::testing::TestParamInfo<int>& p) {
  const char* config[] = {"native", "native128", "scalar"};
  return fmt::format("{}_{}pipes", config[p.param / 3], p.param % 3 + 1);
}

INSTANTIATE_TEST_SUITE_P(Pipes, Combinations, ::testing::Range(0, 9), combination_name);

// The same generated code on the vcode interpreter (the reference semantics).
TEST(Pipes, InterpreterAgreesWithReferences) {
  for (int vbits : {256, 0}) {
    CompileOptions o;
    o.backend = Backend::Interpreter;
    o.vector_bits = vbits;
    for (const Combo& c : combos(2)) {
      PipeList pl;
      for (const std::string& n : c) library::add(pl, n);
      CompiledPipes cp = compile(pl, Direction::Write, o);
      Reference ref(c);
      std::vector<uint8_t> src(kMaxLen + 8), dst(kMaxLen + 8);
      for (size_t i = 0; i < src.size(); ++i) src[i] = uint8_t(i * 29 + 7);
      for (size_t len : {size_t(0), size_t(1), size_t(3), size_t(7), size_t(13), size_t(64),
                         size_t(129), size_t(255), size_t(1000), kMaxLen}) {
        size_t sa = len % 8, da = (len / 3) % 8;
        std::vector<uint8_t> work(src.begin() + long(sa), src.begin() + long(sa + len));
        ref.run(work.data(), len);
        cp(dst.data() + da, src.data() + sa, len);
        ASSERT_TRUE(std::equal(work.begin(), work.end(), dst.begin() + long(da)))
            << describe(c) << " length " << len << " vector " << vbits;
        for (size_t i = 0; i < c.size(); ++i)
          ASSERT_EQ(persistent_of(cp, c, i), ref.state[i]) << describe(c) << " length " << len;
      }
    }
  }
}

// User pipes: an 8-bit map with a constant, a 64-bit map with a persistent key (read only), a
// 16-bit generic pipe with state, composed with library pipes of other gauges.
TEST(Pipes, UserPipesAndGaugeConversions) {
  for (const Config& cfg : configs()) {
    if (!cfg.available) continue;
    PipeList pl;
    int add3 = pl.add("add3", 8, kCommutative, [](PipeBody& p) { p.add(p.input(), p.input(), 3); });
    int key = pl.add("xorkey", 64, kCommutative, [](PipeBody& p) {
      Reg k = p.persistent(Type::U64, "key", 0x0123456789abcdefull);
      Reg t = p.getreg(Type::U64);
      p.com(t, k);
      p.xor_(p.input(), p.input(), t);
    });
    int sum = pl.add("sum16", 16, kNonModifying, [](PipeBody& p) {
      Reg s = p.persistent(Type::U64, "sum");
      Reg n = p.persistent(Type::U64, "count");
      Reg w = p.getreg(Type::U64);
      p.cvt(w, p.input());
      p.mul(w, w, n);  // position-weighted: order matters
      p.add(s, s, w);
      p.add(n, n, 1);
    });
    library::cksum(pl);
    CompiledPipes c = compile(pl, Direction::Write, cfg.options);
    c.set(key, "key", 0x1111222233334444ull);
    uint64_t ref_sum = 0, ref_count = 0;
    uint32_t ref_acc = 0;
    std::vector<uint8_t> src(1000), dst(1000);
    for (size_t len : {size_t(1), size_t(2), size_t(9), size_t(999), size_t(130), size_t(0)}) {
      for (size_t i = 0; i < len; ++i) src[i] = uint8_t(i * 13 + len);
      std::vector<uint8_t> w(src.begin(), src.begin() + long(len));
      for (auto& b : w) b = uint8_t(b + 3);
      for (size_t i = 0; i < len; i += 8) {
        uint64_t x = 0;
        std::memcpy(&x, w.data() + i, std::min<size_t>(8, len - i));
        x ^= ~0x1111222233334444ull;
        std::memcpy(w.data() + i, &x, std::min<size_t>(8, len - i));
      }
      for (size_t i = 0; i < len; i += 2) {
        uint16_t x = 0;
        std::memcpy(&x, w.data() + i, std::min<size_t>(2, len - i));
        ref_sum += uint64_t(x) * ref_count++;
      }
      ref_acc = reference::cksum(ref_acc, w.data(), len);
      c(dst.data(), src.data(), len);
      ASSERT_TRUE(std::equal(w.begin(), w.end(), dst.begin())) << cfg.name << " length " << len;
      EXPECT_EQ(c.get(sum, "sum"), ref_sum) << cfg.name;
      EXPECT_EQ(c.get(sum, "count"), ref_count) << cfg.name;
      EXPECT_EQ(c.get(3, "acc"), ref_acc) << cfg.name;
    }
    (void)add3;
  }
}

TEST(Pipes, ExportImportAndInternetChecksum) {
  PipeList pl;
  int ck = library::cksum(pl);
  int crc = library::crc32c(pl);
  CompiledPipes c = compile(pl, Direction::ReadOnly);
  std::mt19937 rng(3);
  for (size_t len : {size_t(0), size_t(1), size_t(20), size_t(1499), size_t(1500)}) {
    std::vector<uint8_t> msg(len);
    for (auto& b : msg) b = uint8_t(rng());
    c.reset();
    c(nullptr, msg.data(), len);
    uint16_t sum = library::internet_checksum(uint32_t(c.get(ck, "acc")));
    uint8_t stored[2];
    std::memcpy(stored, &sum, 2);  // as it would go into a header
    uint16_t rfc = reference::rfc1071(msg.data(), len);
    EXPECT_EQ(stored[0], rfc >> 8) << len;
    EXPECT_EQ(stored[1], rfc & 0xff) << len;
    EXPECT_EQ(library::crc32c_value(uint32_t(c.get(crc, "crc"))),
              ~reference::crc32c(~0u, msg.data(), len));
  }
  // Export: a seeded accumulator continues a checksum begun elsewhere.
  std::vector<uint8_t> a(64, 0x5a);
  c.set(ck, "acc", 0xdeadbeef);
  c(nullptr, a.data(), a.size());
  EXPECT_EQ(c.get(ck, "acc"), reference::cksum(0xdeadbeef, a.data(), a.size()));
  c.set(ck, "acc", 0x1'0000'0001ull);  // narrowed to the register's type
  EXPECT_EQ(c.get(ck, "acc"), 1u);
  EXPECT_THROW(c.get(ck, "nope"), Error);
  EXPECT_THROW(c.set(7, "acc", 0), Error);
  CompileOptions interp;
  interp.backend = Backend::Interpreter;
  EXPECT_THROW(compile(pl, Direction::ReadOnly, interp).function(), Error);
}

TEST(Pipes, CostFigures) {
  PipeList pl;
  library::cksum(pl);
  library::bswap32(pl);
  CompileOptions vec, scalar;
  scalar.vector_bits = 0;
  CompiledPipes v = compile(pl, Direction::Write, vec), s = compile(pl, Direction::Write, scalar);
  EXPECT_GT(v.cost().insns_per_iteration, 0u);
  EXPECT_EQ(v.cost().vector_bits, vcode::vector_width());
  if (vcode::vector_width() == 256) {
    EXPECT_EQ(v.cost().bytes_per_iteration, 128u);
  }
  EXPECT_EQ(s.cost().vector_bits, 0);
  EXPECT_EQ(s.cost().bytes_per_iteration, 32u);
  EXPECT_NE(v.plan().find("vectorized"), std::string::npos);
}

// Every opcode the instruction table lets a pipe body use (the forms the pipe compiler copies,
// nothing that traps), at every gauge whose type it takes, as `input = op(input, ...)`: every
// loop of the pipe compiler agrees with the vcode interpreter applying the opcode to each word
// (the last, partial word zero-padded). An opcode added to the table that the pipe compiler
// mishandles fails here.
TEST(Pipes, EveryOpcodeABodyMayUse) {
  using vcode::Form;
  using vcode::Op;
  int checked = 0;
  for (int i = 0; i < vcode::kNumOps; ++i) {
    const Op op = Op(i);
    const Form form = vcode::form_of(op);
    if (form != Form::Binary && form != Form::Unary && form != Form::SetImm) continue;
    if (vcode::has_flag(op, vcode::kOpTraps)) continue;
    for (int gauge : {8, 16, 32, 64}) {
      const Type t = gauge == 8    ? Type::U8
                     : gauge == 16 ? Type::U16
                     : gauge == 32 ? Type::U32
                                   : Type::U64;
      if (!vcode::in_set(vcode::op_info(op).types, t)) continue;
      // The body, on any builder: the immediate form where there is one, else every register
      // the input.
      const bool imm = form == Form::Binary && vcode::has_flag(op, vcode::kOpImmForm);
      if (!imm && form != Form::SetImm && !vcode::uniform_ok(op, t)) continue;
      auto body = [&](vcode::Builder& b, Reg x) {
        if (form == Form::SetImm)
          b.set(x, 0x5a);
        else if (imm)
          b.binary(op, x, x, int64_t(3));
        else if (form == Form::Binary)
          b.binary(op, x, x, x);
        else
          b.unary(op, x, x);
      };
      vcode::Module ref;
      {
        vcode::Builder b(ref, "f", t, {t});
        body(b, b.arg(0));
        b.ret(b.arg(0));
        b.finish();
      }
      vcode::Interpreter interp(ref);
      for (unsigned attrs : {unsigned(kPlain), unsigned(kCommutative)})
        for (const Config& cfg : configs()) {
          if (!cfg.available) continue;
          SCOPED_TRACE(
              fmt::format("{} gauge {} attrs {} {}", vcode::op_name(op), gauge, attrs, cfg.name));
          PipeList pl;
          pl.add("op", gauge, attrs, [&](PipeBody& p) { body(p, p.input()); });
          CompiledPipes c = compile(pl, Direction::Write, cfg.options);
          const size_t len = 77;  // whole chunks, whole words and a partial last word
          std::vector<uint8_t> src(len), dst(len + kGuard, 0xee), want(len + kGuard, 0xee);
          for (size_t k = 0; k < len; ++k) src[k] = uint8_t(k * 37 + i);
          const size_t w = size_t(gauge / 8);
          for (size_t at = 0; at < len; at += w) {
            uint64_t word = 0;
            std::memcpy(&word, src.data() + at, std::min(w, len - at));
            uint64_t out = interp.call("f", std::span<const uint64_t>(&word, 1));
            std::memcpy(want.data() + at, &out, std::min(w, len - at));
          }
          c(dst.data(), src.data(), len);
          EXPECT_EQ(want, dst);
          ++checked;
        }
    }
  }
  EXPECT_GT(checked, 60);
}

// A body's records stay reachable to its author after add() (the PipeBody's function()):
// checked_copy() re-checks them and owns what it checked. Edits that break the records are
// Errors (they crashed the compiler: it indexes the body's registers by them), and an edit made
// after the copy does not reach it.
TEST(Pipes, CheckedCopyRechecksTheRecordsAndOwnsThem) {
  vcode::Function* body = nullptr;
  auto make = [&] {
    PipeList pl;
    pl.add("p", 32, kPlain, [&](PipeBody& p) {
      body = &p.function();
      Reg acc = p.persistent(Type::U32, "acc", 1);
      Reg t = p.getreg(Type::U32, vcode::RegClass::Temp);
      p.add(t, p.input(), acc);
      p.xor_(p.input(), t, int64_t(0x01010101));
    });
    return pl;
  };
  const std::vector<uint8_t> src(40, 0x10);
  auto run = [&](const PipeList& pl) {
    std::vector<uint8_t> dst(src.size());
    compile(pl, Direction::Write)(dst.data(), src.data(), src.size());
    return dst;
  };
  PipeList pl = make();
  const std::vector<uint8_t> want = run(pl);
  PipeList copy = pl.checked_copy();
  body->regs.clear();  // the original is broken now; the copy is not
  EXPECT_EQ(run(copy), want);
  EXPECT_THROW((void)pl.checked_copy(), Error);
  const std::vector<std::function<void(vcode::Function&)>> edits = {
      [](vcode::Function& f) { f.params.clear(); },
      [](vcode::Function& f) { f.params[0].id = 99; },
      [](vcode::Function& f) { f.regs.resize(2); },
      [](vcode::Function& f) { f.regs[2].type = Type::V4U32; },
      [](vcode::Function& f) { f.regs[2].type = Type::F64; },
      [](vcode::Function& f) { f.regs[0].type = Type::U64; },  // the input, not the gauge's
      [](vcode::Function& f) { f.regs[1].type = Type::U16; },  // the persistent register
  };
  for (size_t k = 0; k < edits.size(); ++k) {
    SCOPED_TRACE(k);
    PipeList fresh = make();
    edits[k](*body);
    EXPECT_THROW((void)fresh.checked_copy(), Error);
  }
}

TEST(Pipes, BadCompositionsAreErrors) {
  PipeList pl;
  EXPECT_THROW(compile(pl, Direction::Write), Error);  // empty
  EXPECT_THROW(pl.add("g24", 24, kPlain, [](PipeBody&) {}), Error);
  EXPECT_THROW(pl.add("nm", 32, kNonModifying, [](PipeBody& p) { p.add(p.input(), p.input(), 1); }),
               Error);
  EXPECT_THROW(pl.add("branch", 32, kPlain,
                      [](PipeBody& p) {
                        vcode::Label l = p.label();
                        p.beq(p.input(), 0, l);
                        p.place(l);
                      }),
               Error);
  EXPECT_THROW(pl.add("mem", 32, kPlain,
                      [](PipeBody& p) {
                        Reg a = p.getreg(Type::P);
                        p.set(a, 0);
                        p.ld(p.input(), a);
                      }),
               Error);
  EXPECT_THROW(pl.add("div", 32, kPlain, [](PipeBody& p) { p.div(p.input(), p.input(), 3); }),
               Error);
  EXPECT_THROW(library::cipher(pl, 0), Error);
  EXPECT_THROW(library::add(pl, "rot13"), Error);
  EXPECT_EQ(pl.size(), 0u);  // nothing was added by the refused definitions
  EXPECT_THROW(compile(pl, Direction::Write), Error);
  // More persistent registers than the machine has integer registers for.
  for (int i = 0; i < 3; ++i)
    pl.add(fmt::format("many{}", i), 64, kPlain, [](PipeBody& p) {
      for (int k = 0; k < 5; ++k) {
        Reg r = p.persistent(Type::U64, fmt::format("k{}", k));
        p.add(r, r, p.input());
      }
    });
  EXPECT_THROW(compile(pl, Direction::Write), Error);
  CompileOptions too_wide;
  too_wide.vector_bits = 512;
  PipeList one;
  library::copy(one);
  EXPECT_THROW(compile(one, Direction::Write, too_wide), Error);
}

}  // namespace
}  // namespace exojit::pipes
