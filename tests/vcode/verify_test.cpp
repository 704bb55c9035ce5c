// SPDX-License-Identifier: MIT
// Bad IR is an exojit::Error that names the instruction, from the builder as the call is made and
// from the verifier for whole-function properties; the module stays usable afterwards.
#include <gtest/gtest.h>

#include "exojit/vcode.h"

namespace exojit::vcode {
namespace {

// Runs `f`, expects an exojit::Error whose message contains every fragment.
template <typename F>
void expect_error(F&& f, std::initializer_list<std::string_view> fragments) {
  try {
    f();
    ADD_FAILURE() << "no error thrown";
  } catch (const Error& e) {
    std::string what = e.what();
    for (std::string_view frag : fragments)
      EXPECT_NE(what.find(frag), std::string::npos) << "message: " << what << "\nmissing: " << frag;
  }
}

TEST(Builder, TypeMismatchNamesTheInstruction) {
  Module m;
  Builder b(m, "f", Type::I32, {Type::I32, Type::I64});
  expect_error([&] { b.add(b.arg(0), b.arg(0), b.arg(1)); },
               {"@f", "instruction 0", "add %r0, %r0, %r1", "type mismatch", "i64"});
}

TEST(Builder, FloatFormsThatDoNotExist) {
  Module m;
  Builder b(m, "f", Type::F64, {Type::F64});
  expect_error([&] { b.and_(b.arg(0), b.arg(0), b.arg(0)); }, {"and", "no float form"});
  expect_error([&] { b.add(b.arg(0), b.arg(0), 1); }, {"no float immediate form"});
  expect_error([&] { b.com(b.arg(0), b.arg(0)); }, {"must be an integer"});
}

TEST(Builder, RegisterExhaustionIsAnError) {
  Module m;
  Builder b(m, "f", Type::Void, {});
  for (int i = 0; i < kIntVars; ++i) b.getreg(Type::I64, RegClass::Var);
  expect_error([&] { b.getreg(Type::U8, RegClass::Var); }, {"out of integer variable registers"});
  for (int i = 0; i < kFloatTemps; ++i) b.getreg(Type::F32);
  expect_error([&] { b.getreg(Type::F64); }, {"out of float temporary registers"});
  Reg still = b.getreg(Type::I32);  // other pools are unaffected
  EXPECT_TRUE(still.valid());
}

TEST(Builder, PutregFreesTheSlotAndForbidsLaterUse) {
  Module m;
  Builder b(m, "f", Type::I32, {});
  std::vector<Reg> regs;
  for (int i = 0; i < kIntTemps; ++i) regs.push_back(b.getreg(Type::I32));
  b.putreg(regs[3]);
  Reg again = b.getreg(Type::U16);
  EXPECT_EQ(b.function().regs[again.id].slot, 3);
  expect_error([&] { b.set(regs[3], 1); }, {"used after putreg"});
}

TEST(Builder, ChecksumOperandRules) {
  Module m;
  Builder b(m, "f", Type::U32, {Type::U32, Type::U64, Type::I16});
  expect_error([&] { b.cksum(b.arg(0), b.arg(0), b.arg(1)); }, {"wider than the accumulator"});
  expect_error([&] { b.cksum(b.arg(0), b.arg(0), b.arg(2)); }, {"u16, u32 or u64"});
  expect_error([&] { b.cksum(b.arg(2), b.arg(2), b.arg(0)); }, {"u32 or u64"});
}

TEST(Builder, CallSignatureChecked) {
  Module m;
  uint32_t ext = m.add_extern("labs", &labs);
  Builder b(m, "f", Type::I64, {Type::I64, Type::F64});
  expect_error([&] { b.ccall(b.arg(0), ext, {b.arg(1)}); }, {"argument 0 is f64", "takes i64"});
  expect_error([&] { b.ccall(b.arg(0), ext, {}); }, {"0 arguments given", "takes 1"});
  expect_error([&] { b.ccall(b.arg(1), ext, {b.arg(0)}); }, {"result register is f64"});
}

TEST(Builder, ForeignLabelIsAnError) {
  Module m;
  Builder b(m, "f", Type::Void, {});
  expect_error([&] { b.jmp(Label{7}); }, {"label 7"});
}

TEST(Verifier, UndefinedLabel) {
  Module m;
  Builder b(m, "f", Type::I32, {Type::I32});
  Label never = b.label();
  b.beq(b.arg(0), 0, never);
  b.ret(b.arg(0));
  expect_error([&] { b.finish(); },
               {"@f", "instruction 0", "beq %r0, 0, L0", "undefined label L0"});
}

// Uses of undefined registers are rejected by the builder at the offending call (the record is
// taken back), and by the verifier in listings.
TEST(Verifier, RegisterNeverDefined) {
  Module m;
  Builder b(m, "f", Type::I32, {});
  Reg r = b.getreg(Type::I32);
  expect_error([&] { b.ret(r); }, {"instruction 0", "ret %r0", "not defined on every path"});
  EXPECT_TRUE(b.function().code.empty());
  b.set(r, 3);
  b.ret(r);
  EXPECT_NO_THROW(b.finish());
  expect_error([] { parse("func @f() -> i32 {\n %r: i32 temp\n ret %r\n}"); },
               {"instruction 0", "ret %r", "not defined on every path"});
}

TEST(Verifier, RegisterDefinedOnOnlyOnePath) {
  Module m;
  Builder b(m, "f", Type::I32, {Type::I32});
  Reg r = b.getreg(Type::I32);
  Label skip = b.label();
  b.beq(b.arg(0), 0, skip);
  b.set(r, 5);
  b.place(skip);
  expect_error([&] { b.ret(r); }, {"instruction 3", "ret %r1", "not defined on every path"});
  expect_error(
      [] {
        parse(
            "func @f(%a: i32 t0) -> i32 {\n %r: i32 temp\n beq %a, 0, L0\n set %r, 5\nL0:\n ret "
            "%r\n}");
      },
      {"instruction 3", "ret %r", "not defined on every path"});
}

TEST(Verifier, DefinitionLostOnALoopBackEdge) {
  // Defined before the loop, killed by a call inside it: the second iteration's use is bad.
  // The one-pass check cannot see it at the use; the full analysis at finish() does.
  Module m;
  uint32_t ext = m.add_extern("labs", &labs);
  Builder b(m, "f", Type::I64, {Type::I64});
  Reg t = b.getreg(Type::I64), n = b.getreg(Type::I64, RegClass::Var);
  Label top = b.label();
  b.set(t, 1);
  b.set(n, 3);
  b.place(top);
  b.add(n, n, t);
  b.ccall(n, ext, {n});
  b.sub(n, n, 1);
  b.bgt(n, 0, top);
  b.ret(n);
  expect_error([&] { b.finish(); }, {"add %r2, %r2, %r1", "temporaries die at calls"});
}

TEST(Verifier, TemporaryDiesAtCall) {
  Module m;
  uint32_t ext = m.add_extern("labs", &labs);
  Builder b(m, "f", Type::I64, {Type::I64});
  Reg t = b.getreg(Type::I64);
  Reg v = b.getreg(Type::I64, RegClass::Var);
  b.set(t, 1);
  b.set(v, 2);
  b.ccall(b.arg(0), ext, {b.arg(0)});
  b.add(v, v, b.arg(0));                 // variables survive the call: fine
  expect_error([&] { b.add(v, v, t); },  // the temporary does not
               {"instruction 4", "add %r2, %r2, %r1", "temporaries die at calls"});
}

// A record edited after finish() to claim 2^32 - 1 call arguments (found by fuzz_ash_escape: the
// error message printed every one of them, and installing the handler hung): refused at once,
// with a short message.
TEST(Verifier, EditedCallWithBillionsOfArgumentsIsRefusedQuickly) {
  Module m;
  uint32_t ext = m.add_extern("labs", &labs);
  Builder b(m, "f", Type::I64, {Type::I64});
  b.ccall(b.arg(0), ext, {b.arg(0)});
  b.ret(b.arg(0));
  Function& f = b.finish();
  for (Insn& in : f.code)
    if (in.op == Op::Call) in.b = 0xffffffffu;
  f.verified = false;
  try {
    verify(m, f);
    ADD_FAILURE() << "no error thrown";
  } catch (const Error& e) {
    EXPECT_LT(std::string_view(e.what()).size(), 1000u) << e.what();
    EXPECT_NE(std::string_view(e.what()).find("4294967295 arguments"), std::string_view::npos)
        << e.what();
  }
}

TEST(Verifier, MissingReturn) {
  Module m;
  Builder b(m, "f", Type::I32, {Type::I32});
  b.add(b.arg(0), b.arg(0), 1);
  expect_error([&] { b.finish(); }, {"instruction 0", "falls off the end", "missing return"});
  Module m2;
  Builder e(m2, "empty", Type::Void, {});
  expect_error([&] { e.finish(); }, {"@empty", "empty"});
}

TEST(Verifier, WrongReturnType) {
  Module m;
  Builder b(m, "f", Type::I32, {Type::I64});
  expect_error([&] { b.ret(b.arg(0)); }, {"ret %r0", "type mismatch"});
  expect_error([&] { b.ret(); }, {"return without a value"});
}

TEST(Verifier, SlotReuseEndsTheOldRegister) {
  // Parsed listings choose slots explicitly: two registers in one slot cannot both be live.
  const char* text = R"(
func @f(%a: i32 t0) -> i32 {
  %x: i32 t1
  %y: i32 t1
  set %x, 1
  set %y, 2
  add %x, %x, %a
  ret %x
}
)";
  expect_error([&] { parse(text); }, {"instruction 2", "add %x, %x, %a", "reused its slot"});
}

TEST(Verifier, UnreachableCodeIsNotChecked) {
  Module m;
  Builder b(m, "f", Type::I32, {Type::I32});
  Reg never = b.getreg(Type::I32);
  b.ret(b.arg(0));
  b.add(b.arg(0), never, 1);  // dead: after a return, no label
  b.ret(b.arg(0));
  EXPECT_NO_THROW(b.finish());
}

TEST(Interpreter, ReportsFaultsAsErrors) {
  Module m;
  Builder b(m, "f", Type::I32, {Type::I32, Type::I32});
  b.div(b.arg(0), b.arg(0), b.arg(1));
  b.ret(b.arg(0));
  b.finish();
  Interpreter interp(m);
  EXPECT_EQ(interp.run<int32_t>("f", 7, 2), 3);
  expect_error([&] { interp.run<int32_t>("f", 7, 0); }, {"division by zero", "div %r0, %r0, %r1"});
  expect_error([&] { interp.run<int32_t>("f", INT32_MIN, -1); }, {"overflow"});
}

TEST(Interpreter, MisalignedLoadAndStepLimit) {
  Module m;
  Builder b(m, "f", Type::U32, {Type::P});
  Reg r = b.getreg(Type::U32);
  b.ld(r, b.arg(0), 1);
  b.ret(r);
  b.finish();
  Builder l(m, "spin", Type::Void, {});
  Label top = l.label();
  l.place(top);
  l.jmp(top);
  l.finish();
  Interpreter interp(m);
  alignas(8) uint8_t buf[8] = {};
  expect_error([&] { interp.run<uint32_t>("f", buf); }, {"misaligned ld"});
  interp.set_step_limit(1000);
  expect_error([&] { interp.run<void>("spin"); }, {"step limit"});
}

}  // namespace
}  // namespace exojit::vcode

namespace exojit::vcode {
namespace {

TEST(Builder, NamesMustReadBack) {
  Module m;
  Builder b(m, "f", Type::I32, {Type::I32});
  Reg r = b.getreg(Type::I32);
  EXPECT_THROW(b.name(r, "r0"), Error);  // another register's default name
  EXPECT_THROW(b.name(r, "has space"), Error);
  EXPECT_THROW(b.name(r, "9lives"), Error);
  b.name(r, "count");
  EXPECT_THROW(b.name(b.arg(0), "count"), Error);  // taken
}

TEST(Verifier, LocalsStayInsideTheirBoundsAndTheFrame) {
  Module m;
  Builder b(m, "f", Type::I64, {});
  Local l = b.local(8);
  Reg x = b.getreg(Type::I64);
  EXPECT_THROW(b.ld(x, l, 4), Error);              // crosses the end
  EXPECT_THROW(b.st(x, l, -8), Error);             // before the start
  for (int i = 0; i < 5; ++i) b.local(16u << 20);  // 80 MiB in all
  b.set(x, 0);
  b.ret(x);
  expect_error([&] { b.finish(); }, {"locals take", "more than"});
}

TEST(Verifier, ALocalsSizeAndAlignmentDoNotWrapThe32BitSum) {
  // A local edited after finish() to 2^32 - 16 bytes, aligned to 16: the frame check's sum must
  // not wrap to 0 (in 32 bits it did, and the access bound then trusted the local's size).
  Module m;
  Builder b(m, "f", Type::I64, {});
  Local l = b.local(8);
  Reg x = b.getreg(Type::I64);
  b.ld(x, l, 0);
  b.ret(x);
  b.finish();
  Function& f = b.function();
  f.locals[0] = LocalInfo{0xfffffff0u, 16};
  f.code[0].imm = 0x10000000;  // 256 MiB into the "local": far off the frame
  expect_error([&] { verify(m, f); }, {"locals take", "more than"});
}

TEST(Verifier, CompileAndInterpreterCheckUnfinishedFunctions) {
  Module m;
  Builder b(m, "f", Type::I32, {Type::I32});
  b.add(b.arg(0), b.arg(0), 1);  // no return, and no finish()
  EXPECT_THROW(compile(m), Error);
  EXPECT_THROW(Interpreter{m}, Error);
}

}  // namespace
}  // namespace exojit::vcode
