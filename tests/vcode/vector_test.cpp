// SPDX-License-Identifier: MIT
// Vector instructions and crc32c: every operation x every vector type, on the x86-64 back end
// (AVX2/VEX encodings, and SSE encodings with CompileOptions::use_avx off) against the
// interpreter, with the destination in a temporary, a variable, or aliasing a source; plus
// known answers computed here in plain C++, so that the interpreter itself is checked too.
#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <random>

#include "harness.h"

namespace exojit::vcode {
namespace {

const Type kVectorTypes[] = {Type::V16U8, Type::V8U16,  Type::V4U32, Type::V2U64,
                             Type::V32U8, Type::V16U16, Type::V8U32, Type::V4U64};

struct Variant {
  const char* name;
  CompileOptions options;
};

std::vector<Variant> variants() {
  std::vector<Variant> v;
  if (vector_width() >= 128) v.push_back({"default", {}});
  CompileOptions sse;
  sse.use_avx = false;
  if (vector_width(sse) >= 128) v.push_back({"sse", sse});
  CompileOptions llvm;
  llvm.tier = Tier::Llvm;
  if (llvm_tier_available()) v.push_back({"llvm", llvm});
  return v;
}

// The LLVM tier legalizes any vector type for any CPU.
bool supported(Type t, const CompileOptions& o) {
  return o.tier == Tier::Llvm || vector_bits(t) <= vector_width(o);
}

// Input: 2 x 32 bytes of varied data (lane edge values, then random).
std::array<uint8_t, 64> input(uint64_t seed) {
  std::array<uint8_t, 64> in{};
  std::mt19937_64 rng(seed);
  for (auto& b : in) b = uint8_t(rng());
  const uint8_t edges[] = {0x00, 0xff, 0x80, 0x7f, 0x01, 0xfe};
  for (size_t i = 0; i < sizeof edges && seed % 3 == 0; ++i) in[i * 5] = edges[i];
  return in;
}

// How the destination is placed relative to the sources.
enum class Place { Temp, Var, AliasA, AliasB };

// Builds `void f(p in, p out)`: a = in[0..], b = in[32..], d = op(a, b), out[0..] = d.
using Body = std::function<void(Builder&, Reg d, Reg a, Reg b)>;

void build(Module& m, Type t, Type dt, Place place, const Body& body) {
  Builder b(m, "f", Type::Void, {Type::P, Type::P});
  RegClass cls = place == Place::Var ? RegClass::Var : RegClass::Temp;
  Reg va = b.getreg(t, cls), vb = b.getreg(t, cls);
  b.ldu(va, b.arg(0), 0);
  b.ldu(vb, b.arg(0), 32);
  Reg d = place == Place::AliasA ? va : place == Place::AliasB && dt == t ? vb : b.getreg(dt, cls);
  body(b, d, va, vb);
  b.stu(d, b.arg(1), 0);
  b.ret();
  b.finish();
}

// Runs the same function on the interpreter and compiled with `o`; returns both outputs.
std::pair<std::array<uint8_t, 32>, std::array<uint8_t, 32>> run_both(
    const Module& m, const CompileOptions& o, const std::array<uint8_t, 64>& in) {
  std::array<uint8_t, 32> native{}, interp{};
  Code code = compile(m, o);
  code.as<void(const uint8_t*, uint8_t*)>("f")(in.data(), native.data());
  Interpreter(m).run<void>("f", in.data(), interp.data());
  return {native, interp};
}

void check_op(const char* what, Type t, Type dt, const Body& body) {
  for (const Variant& v : variants()) {
    if (!supported(t, v.options) || !supported(dt, v.options)) continue;
    for (Place place : {Place::Temp, Place::Var, Place::AliasA, Place::AliasB}) {
      if (place == Place::AliasA && dt != t) continue;
      if (v.options.tier == Tier::Llvm && place != Place::Temp) continue;  // (no placements)
      Module m;
      build(m, t, dt, place, body);
      for (uint64_t seed = 0; seed < 6; ++seed) {
        auto [native, interp] = run_both(m, v.options, input(seed));
        size_t n = size_t(vector_bits(dt) / 8);
        ASSERT_EQ(0, std::memcmp(native.data(), interp.data(), n))
            << what << " " << type_name(t) << " (" << v.name << ", place " << int(place)
            << ", seed " << seed << ")\n"
            << print(m, *m.functions()[0]);
      }
    }
  }
}

TEST(Vector, LaneWiseArithmeticMatchesInterpreter) {
  for (Type t : kVectorTypes) {
    check_op("add", t, t, [](Builder& b, Reg d, Reg x, Reg y) { b.add(d, x, y); });
    check_op("sub", t, t, [](Builder& b, Reg d, Reg x, Reg y) { b.sub(d, x, y); });
    check_op("sub reversed", t, t, [](Builder& b, Reg d, Reg x, Reg y) { b.sub(d, y, x); });
    check_op("and", t, t, [](Builder& b, Reg d, Reg x, Reg y) { b.and_(d, x, y); });
    check_op("or", t, t, [](Builder& b, Reg d, Reg x, Reg y) { b.or_(d, x, y); });
    check_op("xor", t, t, [](Builder& b, Reg d, Reg x, Reg y) { b.xor_(d, x, y); });
    check_op("mov", t, t, [](Builder& b, Reg d, Reg, Reg y) { b.mov(d, y); });
    for (int c : {0, 1, 3, lane_bits(t) / 2, lane_bits(t) - 1}) {
      check_op("lsh", t, t, [c](Builder& b, Reg d, Reg x, Reg) { b.lsh(d, x, c); });
      check_op("rsh", t, t, [c](Builder& b, Reg d, Reg x, Reg) { b.rsh(d, x, c); });
    }
    for (int64_t k : {int64_t(0), int64_t(1), int64_t(-1), int64_t(0x123456789abcdef0)})
      check_op("set", t, t, [k](Builder& b, Reg d, Reg, Reg) { b.set(d, k); });
  }
}

TEST(Vector, ShuffleWidenSplatMatchInterpreter) {
  const uint64_t patterns[] = {0xfedcba9876543210ull, 0xcdef89ab45670123ull, 0x0123456789abcdefull,
                               0x0000000000000000ull, 0x1032547698badcfeull, 0x3141592653589793ull};
  for (Type t : kVectorTypes) {
    for (uint64_t p : patterns)
      check_op("shuf", t, t, [p](Builder& b, Reg d, Reg x, Reg) { b.shuf(d, x, p); });
    if (lane_bits(t) < 64) {
      Type wide = vector_type(vector_bits(t), lane_bits(t) * 2);
      for (int half : {0, 1})
        check_op("widen", t, wide, [half](Builder& b, Reg d, Reg x, Reg) { b.widen(d, x, half); });
    }
    for (int64_t k : {int64_t(0x5a), int64_t(-1), int64_t(0x8899aabbccddeeff)}) {
      check_op("splat", t, t, [k](Builder& b, Reg d, Reg, Reg) {
        Reg s = b.getreg(Type::U64);
        b.set(s, k);
        b.splat(d, s);
        b.putreg(s);
      });
    }
  }
}

// Known answers, computed without vcode.
TEST(Vector, KnownAnswers) {
  if (vector_width() < 128) GTEST_SKIP() << "no vector support on this CPU";
  const Type t = vector_width() == 256 ? Type::V8U32 : Type::V4U32;
  const int bytes = vector_bits(t) / 8;
  auto in = input(42);
  for (bool use_interp : {false, true}) {
    auto result = [&](const Body& body, Type dt) {
      Module m;
      build(m, t, dt, Place::Temp, body);
      auto both = run_both(m, {}, in);
      return use_interp ? both.second : both.first;
    };
    // shuf with the bswap32 pattern reverses each 32-bit word.
    auto sw = result([](Builder& b, Reg d, Reg x, Reg) { b.shuf(d, x, 0xcdef89ab45670123ull); }, t);
    for (int i = 0; i < bytes; ++i) EXPECT_EQ(sw[size_t(i)], in[size_t((i & ~3) + 3 - (i & 3))]);
    // widen low half of u32 lanes: the first lanes, zero-extended to 64 bits.
    Type wide = vector_type(vector_bits(t), 64);
    auto wl = result([](Builder& b, Reg d, Reg x, Reg) { b.widen(d, x, 0); }, wide);
    for (int i = 0; i < bytes / 8; ++i) {
      uint32_t lane;
      uint64_t got;
      std::memcpy(&lane, in.data() + 4 * i, 4);
      std::memcpy(&got, wl.data() + 8 * i, 8);
      EXPECT_EQ(got, lane);
    }
    // add of u32 lanes wraps per lane.
    auto sum = result([](Builder& b, Reg d, Reg x, Reg y) { b.add(d, x, y); }, t);
    for (int i = 0; i < bytes / 4; ++i) {
      uint32_t x, y, got;
      std::memcpy(&x, in.data() + 4 * i, 4);
      std::memcpy(&y, in.data() + 32 + 4 * i, 4);
      std::memcpy(&got, sum.data() + 4 * i, 4);
      EXPECT_EQ(got, uint32_t(x + y));
    }
  }
}

// hsum returns a scalar: `u64 f(p in)` = hsum(ldu in) at each destination width.
TEST(Vector, HorizontalSum) {
  for (const Variant& v : variants()) {
    for (Type t : kVectorTypes) {
      if (!supported(t, v.options)) continue;
      for (Type dt : {Type::U64, Type::U32, Type::U16, Type::I8}) {
        for (RegClass cls : {RegClass::Temp, RegClass::Var}) {
          Module m;
          Builder b(m, "f", dt, {Type::P});
          Reg x = b.getreg(t, cls), d = b.getreg(dt, cls);
          b.ldu(x, b.arg(0), 0);
          b.hsum(d, x);
          b.ret(d);
          b.finish();
          Code code = compile(m, v.options);
          Interpreter interp(m);
          for (uint64_t seed = 0; seed < 4; ++seed) {
            auto in = input(seed);
            const uint64_t arg[] = {uint64_t(reinterpret_cast<uintptr_t>(in.data()))};
            uint64_t want = 0;
            const int lb = lane_bits(t) / 8;
            for (int i = 0; i < lane_count(t); ++i) {
              uint64_t lane = 0;
              std::memcpy(&lane, in.data() + i * lb, size_t(lb));
              want += lane;
            }
            want = uint64_t(normalize_imm(dt, int64_t(want)));
            EXPECT_EQ(interp.call("f", arg), want) << type_name(t) << " -> " << type_name(dt);
            EXPECT_EQ(test::call_jit(code, "f", arg), want)
                << type_name(t) << " -> " << type_name(dt) << " (" << v.name << ")";
          }
        }
      }
    }
  }
}

// Vector variables survive calls to C at their full width.
uint64_t clobber_vectors(uint64_t x) {
  volatile double sink = double(x) * 1.5;  // makes the compiler use xmm registers
  return uint64_t(sink) + 1;
}

TEST(Vector, VariablesSurviveCalls) {
  for (const Variant& v : variants()) {
    Type t = vector_width(v.options) == 256 ? Type::V8U32 : Type::V4U32;
    Module m;
    uint32_t fn = m.add_extern("clobber_vectors", &clobber_vectors);
    Builder b(m, "f", Type::Void, {Type::P, Type::P}, {RegClass::Var, RegClass::Var});
    Reg x = b.getreg(t, RegClass::Var), r = b.getreg(Type::U64);
    b.ldu(x, b.arg(0), 0);
    b.set(r, 7);
    b.ccall(r, fn, {r});
    b.stu(x, b.arg(1), 0);
    b.ret();
    b.finish();
    auto in = input(9);
    auto [native, interp] = run_both(m, v.options, in);
    EXPECT_EQ(0, std::memcmp(native.data(), in.data(), size_t(vector_bits(t) / 8))) << v.name;
    EXPECT_EQ(native, interp);
  }
}

// crc32c against a table-free C reference, for every data width, with SSE4.2 and without.
uint32_t crc32c_ref(uint32_t crc, const uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    crc ^= p[i];
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0x82f63b78u & (0u - (crc & 1)));
  }
  return crc;
}

TEST(Crc32c, EveryWidthMatchesReferenceAndInterpreter) {
  std::mt19937_64 rng(5);
  for (int variant = 0; variant < (llvm_tier_available() ? 3 : 2); ++variant) {
    const bool sse42 = variant != 1;
    CompileOptions o;
    o.use_sse42 = sse42;
    if (variant == 2) o.tier = Tier::Llvm;
    for (Type dt : {Type::U8, Type::U16, Type::U32, Type::U64}) {
      for (int alias = 0; alias < 3; ++alias) {  // d separate, d == crc, d == data
        Module m;
        Builder b(m, "f", Type::U32, {Type::U32, dt});
        Reg crc = b.arg(0), data = b.arg(1);
        Reg d = alias == 1 ? crc : b.getreg(Type::U32);
        if (alias == 2) {
          Reg wide = b.getreg(Type::U32);
          b.crc32c(wide, crc, data);
          b.ret(wide);
        } else {
          b.crc32c(d, crc, data);
          b.ret(d);
        }
        b.finish();
        Code code = compile(m, o);
        Interpreter interp(m);
        for (int i = 0; i < 50; ++i) {
          uint64_t c = uint32_t(rng()), x = uint64_t(normalize_imm(dt, int64_t(rng())));
          uint8_t bytes[8];
          std::memcpy(bytes, &x, 8);
          uint32_t want = crc32c_ref(uint32_t(c), bytes, size_t(type_bytes(dt)));
          const uint64_t args[] = {c, x};
          EXPECT_EQ(interp.call("f", args), want);
          EXPECT_EQ(test::call_jit(code, "f", args), want) << "sse42 " << sse42;
        }
      }
    }
  }
  // The standard check value: CRC-32C("123456789") = 0xe3069283.
  const char* s = "123456789";
  EXPECT_EQ(~crc32c_ref(~0u, reinterpret_cast<const uint8_t*>(s), 9), 0xe3069283u);
}

TEST(Vector, BadUsesAreErrors) {
  Module m;
  Builder b(m, "f", Type::Void, {Type::P});
  Reg v = b.getreg(Type::V4U32), w = b.getreg(Type::V8U32), s = b.getreg(Type::U32);
  b.ldu(v, b.arg(0));
  EXPECT_THROW(b.mul(v, v, v), Error);       // no vector multiply
  EXPECT_THROW(b.add(v, v, 1), Error);       // vector arithmetic takes registers
  EXPECT_THROW(b.lsh(v, v, 32), Error);      // count not below the lane width
  EXPECT_THROW(b.lsh(v, v, s), Error);       // register counts are not vector shifts
  EXPECT_THROW(b.add(w, v, v), Error);       // mixed widths
  EXPECT_THROW(b.widen(w, v, 0), Error);     // widen keeps the register width
  EXPECT_THROW(b.widen(v, v, 0), Error);     // and doubles the lanes
  EXPECT_THROW(b.cvt(s, v), Error);          // cvt is scalar
  EXPECT_THROW(b.ldbe(v, b.arg(0)), Error);  // no big-endian vectors
  EXPECT_THROW(b.crc32c(s, s, v), Error);    // crc data is scalar
  Label l = b.label();
  EXPECT_THROW(b.beq(v, v, l), Error);  // no vector compares
  EXPECT_THROW(Builder(m, "g", Type::Void, {Type::V4U32}), Error);
  // The function is still whole after the refused calls.
  b.place(l);
  b.ret();
  EXPECT_NO_THROW(b.finish());
}

TEST(Vector, ListingRoundTrips) {
  Module m;
  Builder b(m, "f", Type::U64, {Type::P});
  Reg v = b.getreg(Type::V16U8), w = b.getreg(Type::V8U16), s = b.getreg(Type::U64);
  Reg c = b.getreg(Type::U32);
  b.ldu(v, b.arg(0));
  b.shuf(v, v, 0x0123456789abcdefull);
  b.widen(w, v, 1);
  b.lsh(w, w, 3);
  b.set(s, 3);
  b.splat(v, s);
  b.hsum(s, w);
  b.set(c, 0);
  b.crc32c(c, c, s);
  b.ret(s);
  b.finish();
  std::string text = print(m);
  Module back = parse(text);
  EXPECT_EQ(print(back), text);
  EXPECT_NE(text.find("shuf "), std::string::npos);
  EXPECT_NE(text.find("widen "), std::string::npos);
  EXPECT_NE(text.find("v8u16"), std::string::npos);
}

}  // namespace
}  // namespace exojit::vcode
