// SPDX-License-Identifier: MIT
// The Code handle: typed entry points, W^X memory, freeing, calls across the ABI, perf map.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdarg>
#include <fstream>
#include <sstream>

#include "examples/cksum.h"
#include "harness.h"

namespace exojit::vcode {
namespace {

// Finds the permissions of the mapping that holds `p` in /proc/self/maps ("r-xp", ...).
std::string permissions_of(const void* p) {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  uintptr_t at = reinterpret_cast<uintptr_t>(p);
  while (std::getline(maps, line)) {
    uintptr_t lo, hi;
    char perms[5] = {};
    if (std::sscanf(line.c_str(), "%lx-%lx %4s", &lo, &hi, perms) == 3 && at >= lo && at < hi)
      return perms;
  }
  return "";
}

TEST(Code, ExecutableMemoryIsNeverWritable) {
  const char* no_dual = std::getenv("EXOJIT_NO_DUAL_MAPPING");
  if (no_dual && *no_dual && std::string_view(no_dual) != "0")
    GTEST_SKIP() << "EXOJIT_NO_DUAL_MAPPING (for qemu-user) maps code read+write+execute";
  Module m;
  examples::build_cksum(m);
  Code code = compile(m);
  std::string perms = permissions_of(code.data());
  ASSERT_FALSE(perms.empty());
  EXPECT_EQ(perms[0], 'r');
  EXPECT_EQ(perms[1], '-') << "code pages are writable: " << perms;
  EXPECT_EQ(perms[2], 'x');
}

TEST(Code, TypedEntryChecksTheSignature) {
  Module m;
  examples::build_cksum(m);
  Code code = compile(m);
  EXPECT_NO_THROW(code.as<uint16_t(const uint8_t*, size_t)>());
  EXPECT_NO_THROW((code.as<uint16_t(uint8_t*, uint64_t)>("cksum")));
  EXPECT_THROW(code.as<uint32_t(const uint8_t*, size_t)>(), Error);
  EXPECT_THROW(code.as<uint16_t(const uint8_t*)>(), Error);
  EXPECT_THROW(code.as<uint16_t(const uint8_t*, size_t)>("nope"), Error);
}

TEST(Code, MoveAndDestroyFreeTheCode) {
  // Many compiles in a loop: freed blocks are reused, so memory stays bounded.
  for (int i = 0; i < 2000; ++i) {
    Module m;
    Builder b(m, "k", Type::I64, {Type::I64});
    b.add(b.arg(0), b.arg(0), i);
    b.ret(b.arg(0));
    b.finish();
    Code code = compile(m);
    Code moved = std::move(code);
    EXPECT_TRUE(code.empty());
    ASSERT_EQ(moved.as<int64_t(int64_t)>()(1), 1 + i);
  }
}

extern "C" double mix10(int64_t a, double b, int32_t c, float d, uint8_t e, double f, int16_t g,
                        float h, uint64_t i, const char* j) {
  return double(a) + b * 2 + double(c) * 3 + double(d) * 4 + double(e) * 5 + f * 6 + double(g) * 7 +
         double(h) * 8 + double(i) * 9 + double(j[0]) * 10;
}
extern "C" uint8_t narrow_result(uint32_t x) {
  // Returns through al; the upper bits of rax are left as they were.
  return uint8_t(x * 3);
}
extern "C" int sum_varargs(int n, ...) {
  va_list ap;
  va_start(ap, n);
  double s = 0;
  for (int i = 0; i < n; ++i) s += va_arg(ap, double);
  va_end(ap);
  return int(s);
}

TEST(Code, CallsSixIntegerAndFourFloatArguments) {
  Module m;
  uint32_t ext = m.add_extern("mix10", &mix10);
  uint32_t narrow = m.add_extern("narrow_result", &narrow_result);
  Builder b(m, "f", Type::F64,
            {Type::I64, Type::F64, Type::I32, Type::F32, Type::U8, Type::F64, Type::I16, Type::F32,
             Type::U64, Type::P},
            std::vector<RegClass>(10, RegClass::Var));
  std::vector<Reg> args;
  for (size_t i = 0; i < 10; ++i) args.push_back(b.arg(i));
  // Arguments in rotated registers force the parallel-move path.
  Reg r = b.getreg(Type::F64, RegClass::Var);
  b.ccall(r, ext, args);
  Reg n = b.getreg(Type::U8), big = b.getreg(Type::U32);
  b.set(big, 0x1234567);
  b.ccall(n, narrow, {big});
  Reg nd = b.getreg(Type::F64);
  b.cvt(nd, n);
  b.add(r, r, nd);
  b.ret(r);
  b.finish();
  Code code = compile(m);
  Interpreter interp(m);
  const char* s = "A";
  auto fn = code.as<double(int64_t, double, int32_t, float, uint8_t, double, int16_t, float,
                           uint64_t, const char*)>();
  double want =
      mix10(-5, 1.5, -7, 2.25f, 200, -3.0, -300, 0.5f, 1ull << 40, s) + uint8_t(0x1234567 * 3);
  EXPECT_EQ(fn(-5, 1.5, -7, 2.25f, 200, -3.0, -300, 0.5f, 1ull << 40, s), want);
  EXPECT_EQ(interp.run<double>("f", int64_t(-5), 1.5, int32_t(-7), 2.25f, uint8_t(200), -3.0,
                               int16_t(-300), 0.5f, uint64_t(1) << 40, s),
            want);
}

TEST(Code, VariadicCalleeSeesTheVectorCount) {
  Module m;
  uint32_t ext =
      m.add_extern("sum_varargs", Signature{{Type::I32, Type::F64, Type::F64}, Type::I32},
                   reinterpret_cast<void*>(&sum_varargs));
  Builder b(m, "f", Type::I32, {Type::F64, Type::F64});
  Reg n = b.getreg(Type::I32);
  b.set(n, 2);
  b.ccall(n, ext, {n, b.arg(0), b.arg(1)});
  b.ret(n);
  b.finish();
  EXPECT_EQ(compile(m).as<int32_t(double, double)>()(40.0, 2.0), 42);
}

TEST(Code, FloatVariablesSurviveCalls) {
  Module m;
  uint32_t ext = m.add_extern("mix10", &mix10);
  Builder b(m, "f", Type::F64, {Type::P});
  std::vector<Reg> vars;
  for (int i = 0; i < kFloatVars; ++i) {
    vars.push_back(b.getreg(Type::F64, RegClass::Var));
    b.setf(vars.back(), 1.0 + i);
  }
  Reg i64 = b.getreg(Type::I64, RegClass::Var), i32 = b.getreg(Type::I32, RegClass::Var);
  Reg u8 = b.getreg(Type::U8, RegClass::Var), i16 = b.getreg(Type::I16, RegClass::Var);
  Reg u64 = b.getreg(Type::U64, RegClass::Var);
  Reg f32 = b.getreg(Type::F32);
  b.set(i64, 1), b.set(i32, 1), b.set(u8, 1), b.set(i16, 1), b.set(u64, 1);
  b.setf(f32, 1);
  Reg r = b.getreg(Type::F64);
  b.ccall(r, ext, {i64, vars[0], i32, f32, u8, vars[1], i16, f32, u64, b.arg(0)});
  for (Reg v : vars) b.add(r, r, v);
  b.ret(r);
  b.finish();
  const char* s = "\x01";
  double want = mix10(1, 1.0, 1, 1.0f, 1, 2.0, 1, 1.0f, 1, s) + 28.0;
  EXPECT_EQ(compile(m).as<double(const char*)>()(s), want);
}

TEST(Code, RecursionThroughModuleCalls) {
  Module m;
  Builder b(m, "fib", Type::U64, {Type::U64}, {RegClass::Var});
  Reg n = b.arg(0);
  Reg x = b.getreg(Type::U64, RegClass::Var), y = b.getreg(Type::U64);
  Label small = b.label();
  b.blt(n, 2, small);
  b.sub(y, n, 1);
  b.call(x, 0, {y});
  b.sub(y, n, 2);
  b.call(y, 0, {y});
  b.add(x, x, y);
  b.ret(x);
  b.place(small);
  b.ret(n);
  b.finish();
  Code code = compile(m);
  EXPECT_EQ(code.as<uint64_t(uint64_t)>()(30), 832040u);
  EXPECT_EQ(Interpreter(m).run<uint64_t>("fib", uint64_t(20)), 6765u);
}

TEST(Code, PerfMapNamesTheFunctions) {
  Module m;
  examples::build_cksum(m, "perf_named_cksum");
  CompileOptions options;
  options.perf_map = true;
  Code code = compile(m, options);
  std::ifstream map("/tmp/perf-" + std::to_string(getpid()) + ".map");
  std::stringstream all;
  all << map.rdbuf();
  std::string want = fmt::format("{:x} {:x} vcode:perf_named_cksum",
                                 reinterpret_cast<uintptr_t>(code.data()), code.symbols()[0].size);
  EXPECT_NE(all.str().find(want), std::string::npos) << all.str();
}

#if EXOJIT_WITH_DISASM
TEST(Code, DisassemblyShowsTheNetworkingInstructions) {
  Module m;
  examples::build_cksum(m);
  Code code = compile(m);
  std::string text = disassembly_text(code, code.symbols()[0]);
  EXPECT_NE(text.find("adc"), std::string::npos) << text;
  EXPECT_NE(text.find("ret"), std::string::npos);
  EXPECT_GT(count_instructions(code.data(), code.size()), 30u);
}
#endif

}  // namespace
}  // namespace exojit::vcode
