// SPDX-License-Identifier: MIT
// The text format: print/parse round trips exactly; hand-written listings parse; errors name
// the line and column.
#include <gtest/gtest.h>

#include <cstring>

#include "examples/cksum.h"
#include "harness.h"

namespace exojit::vcode {
namespace {

std::string round_trip(const Module& m) {
  return print(parse(print(m)));
}

TEST(Text, ChecksumRoundTripsAndStillRuns) {
  Module m;
  examples::build_cksum(m);
  std::string text = print(m);
  Module back = parse(text);
  EXPECT_EQ(text, print(back));
  // The IR itself is identical, record for record.
  const Function& a = *m.functions()[0];
  const Function& b = *back.functions()[0];
  ASSERT_EQ(a.code.size(), b.code.size());
  EXPECT_EQ(0, std::memcmp(a.code.data(), b.code.data(), a.code.size() * sizeof(Insn)));
  ASSERT_EQ(a.regs.size(), b.regs.size());
  for (size_t i = 0; i < a.regs.size(); ++i) {
    EXPECT_EQ(a.regs[i].type, b.regs[i].type);
    EXPECT_EQ(a.regs[i].slot, b.regs[i].slot);
    EXPECT_EQ(a.regs[i].cls, b.regs[i].cls);
  }
  Code code = compile(back);
  uint8_t data[] = {0x45, 0x00, 0x00, 0x1c, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
                    0x00, 0x00, 0x0a, 0x00, 0x00, 0x01, 0x0a, 0x00, 0x00, 0x02};
  uint16_t sum = code.as<uint16_t(const uint8_t*, uint64_t)>()(data, sizeof data);
  std::memcpy(data + 10, &sum, 2);  // a header with its checksum in place sums to zero
  EXPECT_EQ(0, code.as<uint16_t(const uint8_t*, uint64_t)>()(data, sizeof data));
}

TEST(Text, HandWrittenListingWithNamesAndAutoSlots) {
  const char* text = R"(
; factorial, iteratively, with named labels and auto-assigned slots
func @fact(%n: u64 temp) -> u64 {
  %acc: u64 var
  set %acc, 1
loop:
  ble %n, 1, done      // comments in either style
  mul %acc, %acc, %n
  sub %n, %n, 1
  jmp loop
done:
  ret %acc
}
)";
  Module m = parse(text);
  EXPECT_EQ(print(m), round_trip(m));
  Code code = compile(m);
  EXPECT_EQ(code.as<uint64_t(uint64_t)>("fact")(10), 3628800u);
  Interpreter interp(m);
  EXPECT_EQ(interp.run<uint64_t>("fact", uint64_t(20)), 2432902008176640000u);
}

TEST(Text, EveryOperandFormRoundTrips) {
  const char* text = R"(extern @labs(i64) -> i64

func @g(%a: i64 t0) -> i64 {
  ret %a
}

func @f(%p: p t0, %i: u64 t1, %x: f32 v1, %d: f64 v0) -> f64 {
  %q: p t2
  %b: u16 t3
  %w: u32 t4
  %l: i64 v0
  %e: f64 t1
  %s: f32 t2
  $0: local 24 align 16
  ld %b, [%p]
  ldu %w, [%p + %i + 3]
  ldbe %w, [%p - 8]
  st [$0 + 16], %w
  stbe [%p + %i], %b
  stu [$0], %d
  addrl %q, $0
  cksum %w, %w, %b
  cksum %w, %w, 65535
  cksum_fold %b, %w
  bswap %b, %b
  set %l, -9223372036854775808
  call %l, @labs(%l)
  call %l, @g(%l)
  set %e, 1.5e-300
  set %s, -inf
  set %e, nan:0x7ff8000000000001
  cvt %e, %x
  la %q, L1
  jmpr %q
L1:
  blt %e, %d, L2
  beq %l, -1, L2
  add %e, %e, %d
L2:
  ret %e
}
)";
  Module m = parse(text, [](std::string_view n) -> void* {
    return n == "labs" ? reinterpret_cast<void*>(&labs) : nullptr;
  });
  EXPECT_EQ(text, print(m));
}

TEST(Text, ForwardCallsBetweenFunctions) {
  const char* text = R"(
func @even(%n: u32 var) -> u32 {
  %r: u32 temp
  beq %n, 0, yes
  sub %n, %n, 1
  call %r, @odd(%n)
  ret %r
yes:
  ret 1
}
func @odd(%n: u32 var) -> u32 {
  %r: u32 temp
  beq %n, 0, no
  sub %n, %n, 1
  call %r, @even(%n)
  ret %r
no:
  ret 0
}
)";
  Module m = parse(text);
  Code code = compile(m);
  EXPECT_EQ(code.as<uint32_t(uint32_t)>("even")(10), 1u);
  EXPECT_EQ(code.as<uint32_t(uint32_t)>("odd")(7), 1u);
  EXPECT_EQ(code.as<uint32_t(uint32_t)>("even")(7), 0u);
}

void expect_parse_error(const char* text, std::initializer_list<std::string_view> fragments) {
  try {
    parse(text);
    ADD_FAILURE() << "parsed: " << text;
  } catch (const Error& e) {
    for (std::string_view f : fragments)
      EXPECT_NE(std::string(e.what()).find(f), std::string::npos) << e.what() << " / " << f;
  }
}

TEST(Text, ErrorsNameLineAndColumn) {
  expect_parse_error("func @f() -> i32 {\n  ret 1\n  frob %x\n}",
                     {"line 3", "column 3", "unknown instruction 'frob'"});
  expect_parse_error("func @f() -> i32 {\n  ret %nope\n}", {"line 2", "%nope is not declared"});
  expect_parse_error("func @f() -> q32 {}", {"line 1", "unknown type 'q32'"});
  expect_parse_error("func @f(%a: i32 t3) -> i32 { ret %a }", {"parameter 0 lives in slot t0"});
  expect_parse_error("func @f() -> i32 {\n %a: i32 t9\n ret 0 }", {"slot 9 out of range"});
  expect_parse_error("func @f() -> i32 { call @missing() ret 0 }",
                     {"undeclared function @missing"});
  expect_parse_error("extern @no_such_symbol_xyz(i32) -> i32", {"cannot resolve extern"});
  expect_parse_error("func @f() -> i32 { jmp nowhere }", {"undefined label nowhere"});
  expect_parse_error("func @f() -> i32 {\n %a: i32 temp\n set %a, 1\n}", {"missing return"});
  expect_parse_error("func @f() -> void { ret }\nfunc @f() -> void { ret }", {"defined twice"});
  expect_parse_error("func @f() -> i32 { ret 1 ", {"end of input"});
  expect_parse_error("func @f() -> i32 { ret 1 } \x01", {"unexpected byte 0x01"});
  expect_parse_error("func @f() -> i32 { ret 1 } ?", {"unexpected character '?'"});
  expect_parse_error("extern @f(void) -> i32", {"a parameter cannot be void"});
  expect_parse_error(
      "func @f(%p: p t0) -> i64 {\n %x: i64 temp\n %y: i64 temp\n ld %x, [%p + %x + %y]\n ret %x }",
      {"at most one index"});
  expect_parse_error("func @f() -> f32 {\n %x: f32 temp\n set %x, 1e300\n ret %x }",
                     {"does not fit in f32"});
  expect_parse_error(
      "func @f() -> f64 {\n %x: f64 temp\n set %x, -nan:0x7ff8000000000000\n ret %x }", {"NaN"});
  expect_parse_error(
      "func @f() -> i64 {\n %x: i64 temp\n $0: local 8 align 8\n ld %x, [$4294967296]\n ret %x }",
      {"local $4294967296 does not exist"});
  expect_parse_error(
      "func @f() -> i64 {\n %x: i64 temp\n $0: local 8 align 8\n ld %x, [$0 + 4]\n ret %x }",
      {"outside local $0"});
}

}  // namespace
}  // namespace exojit::vcode
