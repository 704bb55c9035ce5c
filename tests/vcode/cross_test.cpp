// SPDX-License-Identifier: MIT
// Cross-JIT: code for the other machine (AArch64 on an x86-64 host, x86-64 on an AArch64 host)
// is generated and disassembled, never called: calling it is an exojit::Error. (The AArch64 back
// end's semantics are tested by every other test of this suite, cross-built and run under
// qemu-aarch64: see `./exo cross`.)
#include <gtest/gtest.h>

#include <string>

#include "examples/cksum.h"
#include "harness.h"
#include "random_program.h"

namespace exojit::vcode {
namespace {

constexpr Target kOther = kHostTarget == Target::X86_64 ? Target::AArch64 : Target::X86_64;

CompileOptions other() {
  CompileOptions o;
  o.target = kOther;
  return o;
}

TEST(CrossJit, OtherMachinesCodeCannotBeCalled) {
  Module m;
  examples::build_cksum(m);
  Code code = compile(m, other());
  EXPECT_EQ(code.target(), kOther);
  EXPECT_FALSE(code.runnable());
  ASSERT_EQ(code.symbols().size(), 1u);
  EXPECT_GT(code.size(), 0u);
  EXPECT_THROW(code.entry(), Error);
  EXPECT_THROW(code.entry("cksum"), Error);
  EXPECT_THROW((code.as<uint16_t(const uint8_t*, uint64_t)>("cksum")), Error);
  EXPECT_THROW((code.as<uint16_t(const uint8_t*, uint64_t)>()), Error);
  try {
    code.entry();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(target_name(kOther)), std::string::npos) << e.what();
  }
  Code moved = std::move(code);  // the plain heap block moves and frees like executable memory
  EXPECT_FALSE(moved.runnable());
  EXPECT_TRUE(code.empty());
}

#if EXOJIT_WITH_DISASM
TEST(CrossJit, OtherMachinesCodeDisassembles) {
  Module m;
  examples::build_cksum(m);
  Code code = compile(m, other());
  std::string text = disassembly_text(code, code.symbols()[0]);
  EXPECT_EQ(text.find(".byte"), std::string::npos) << text;
  EXPECT_NE(text.find("adc"), std::string::npos) << text;  // cksum: add with carry
  EXPECT_NE(text.find("ret"), std::string::npos) << text;
  EXPECT_GT(count_instructions(code.data(), code.size(), kOther), 30u);
}

// A 30 MiB frame is beyond one shifted 12-bit stack adjustment: the prologue subtracts it a page
// at a time, probing each (stack_probe_test.cpp), and the epilogue adds it back in pieces.
// (Too big to run under qemu-user, whose threads hang and whose main stack is 8 MiB: checked on
// the disassembly.)
TEST(CrossJit, AArch64BigFrameAdjustsTheStackInPieces) {
  Module m;
  Builder b(m, "f", Type::U64, {Type::U64});
  Local big = b.local(15u << 20, 16);
  Local big2 = b.local(15u << 20, 16);
  b.st(b.arg(0), big, 0);
  b.st(b.arg(0), big2, (15 << 20) - 8);
  b.ld(b.arg(0), big2, (15 << 20) - 8);
  b.ret(b.arg(0));
  b.finish();
  CompileOptions a64;
  a64.target = Target::AArch64;
  Code code = compile(m, a64);
  std::string text = disassembly_text(code, code.symbols()[0]);
  for (const char* piece : {"sub sp, sp, #1, lsl #12", "str xzr, [sp]", "cmp sp, x17",
                            "add sp, sp, #4095, lsl #12", "add sp, sp, #3585, lsl #12"})
    EXPECT_NE(text.find(piece), std::string::npos) << piece << "\n" << text;
  EXPECT_EQ(text.find(".byte"), std::string::npos) << text;
}
#endif

// Every random program of random_test.cpp assembles for the other machine too (asmjit rejects no
// operand combination), and with the disassembler, decodes completely.
TEST(CrossJit, RandomProgramsAssembleForTheOtherMachine) {
  for (uint64_t seed = 1; seed <= 300; ++seed) {
    Module m = test::RandomProgram(seed).build();
    Code code = compile(m, other());
#if EXOJIT_WITH_DISASM
    for (const Code::Symbol& s : code.symbols())
      for (const DisasmLine& l : disassemble(code.data() + s.offset, s.size, 0, kOther))
        ASSERT_EQ(l.text.find(".byte"), std::string::npos) << "seed " << seed << ": " << l.text;
#endif
  }
}

TEST(CrossJit, AArch64VectorsAre128BitsWide) {
  CompileOptions a64;
  a64.target = Target::AArch64;
  EXPECT_EQ(vector_width(a64), 128);
  Module m;
  Builder b(m, "f", Type::Void, {Type::P});
  Reg v = b.getreg(Type::V8U32);
  b.ldu(v, b.arg(0), 0);
  b.stu(v, b.arg(0), 0);
  b.ret();
  b.finish();
  try {
    compile(m, a64);
    FAIL() << "a 256-bit vector compiled for AArch64";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("128 bits"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace exojit::vcode
