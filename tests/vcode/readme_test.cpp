// SPDX-License-Identifier: MIT
// The README's API tour, compiled and checked so that the README stays true.
#include <gtest/gtest.h>

// --- begin README example ---
#include <exojit/vcode.h>

#include <cstdio>

using namespace exojit::vcode;

// uint16_t cksum(const uint8_t* buf, uint64_t len): the Internet checksum (RFC 1071).
Code make_cksum(Module& m) {
  Builder b(m, "cksum", Type::U16, {Type::P, Type::U64});
  Reg buf = b.arg(0), len = b.arg(1);
  Reg sum = b.getreg(Type::U64), word = b.getreg(Type::U16), byte = b.getreg(Type::U8);
  Label loop = b.label(), tail = b.label(), done = b.label();
  b.set(sum, 0);
  b.place(loop);
  b.blt(len, 2, tail);      // compare-and-branch, immediate form
  b.ldu(word, buf, 0);      // unaligned 16-bit load
  b.cksum(sum, sum, word);  // one's-complement add with end-around carry: add + adc
  b.add(buf, buf, 2);
  b.sub(len, len, 2);
  b.jmp(loop);
  b.place(tail);
  b.beq(len, 0, done);
  b.ld(byte, buf, 0);  // an odd last byte is padded with zero (RFC 1071 4.1)
  b.cvt(word, byte);
  b.cksum(sum, sum, word);
  b.place(done);
  b.cksum_fold(word, sum);  // fold 64 -> 16 bits
  b.com(word, word);
  b.ret(word);
  b.finish();         // verifies; errors are exojit::Error naming the instruction
  return compile(m);  // x86-64, one pass, into W^X executable memory
}

int readme_main() {
  Module m;
  Code code = make_cksum(m);
  auto cksum = code.as<uint16_t(const uint8_t*, uint64_t)>("cksum");  // signature checked
  const uint8_t packet[] = {0x45, 0x00, 0x00, 0x1c, 0x12, 0x34, 0x40, 0x00, 0x40, 0x11,
                            0x00, 0x00, 0x0a, 0x00, 0x00, 0x01, 0x0a, 0x00, 0x00, 0x02};
  std::printf("checksum: %#06x\n", cksum(packet, sizeof packet));
  std::printf("%s", print(m).c_str());                                   // the vcode listing
  std::printf("%s", disassembly_text(code, code.symbols()[0]).c_str());  // the machine code
  Interpreter interp(m);                                                 // reference semantics
  return interp.run<uint16_t>("cksum", packet, uint64_t(sizeof packet)) ==
                 cksum(packet, sizeof packet)
             ? 0
             : 1;
}
// --- end README example ---

TEST(Readme, ExampleRunsAndAgrees) {
  EXPECT_EQ(readme_main(), 0);
  Module m;
  Code code = make_cksum(m);
  auto cksum = code.as<uint16_t(const uint8_t*, uint64_t)>("cksum");
  uint8_t odd[] = {1, 2, 3};
  EXPECT_EQ(cksum(odd, 3), uint16_t(~(0x0201 + 0x0003)));
}
