// SPDX-License-Identifier: MIT
// The Internet checksum (RFC 1071) of a buffer, written with the vcode builder. Shared by the
// demo, the tests and the benchmarks so they all measure and check the same code.
#pragma once

#include "exojit/vcode.h"

namespace exojit::examples {

// Adds `uint16_t cksum(const uint8_t* buf, uint64_t len)` to `m`: 64-bit words summed with
// end-around carry into two accumulators (four words per iteration), the 0-7 byte tail summed
// as a 32-, 16- and 8-bit word, folded to 16 bits and complemented. The result is the checksum
// in the buffer's byte order (store it as is into the header).
inline uint32_t build_cksum(vcode::Module& m, const char* name = "cksum") {
  using namespace vcode;
  Builder b(m, name, Type::U16, {Type::P, Type::U64});
  Reg buf = b.arg(0), len = b.arg(1);
  b.name(buf, "buf");
  b.name(len, "len");
  Reg s0 = b.getreg(Type::U64), s1 = b.getreg(Type::U64);
  Reg w0 = b.getreg(Type::U64), w1 = b.getreg(Type::U64);
  Reg end = b.getreg(Type::P);
  b.name(s0, "s0"), b.name(s1, "s1"), b.name(w0, "w0"), b.name(w1, "w1"), b.name(end, "end");
  Label loop = b.label(), tail = b.label(), no8 = b.label(), no4 = b.label(), no2 = b.label(),
        no1 = b.label();
  b.set(s0, 0);
  b.set(s1, 0);
  b.and_(end, len, ~int64_t(31));
  b.add(end, end, buf);
  b.bge(buf, end, tail);
  b.place(loop);  // 32 bytes per iteration, two independent carry chains
  b.ldu(w0, buf, 0);
  b.ldu(w1, buf, 8);
  b.cksum(s0, s0, w0);
  b.cksum(s1, s1, w1);
  b.ldu(w0, buf, 16);
  b.ldu(w1, buf, 24);
  b.cksum(s0, s0, w0);
  b.cksum(s1, s1, w1);
  b.add(buf, buf, 32);
  b.blt(buf, end, loop);
  b.place(tail);
  b.cksum(s0, s0, s1);
  b.and_(len, len, 31);
  b.place(no8);  // whole 64-bit words of the tail
  Label words_done = b.label();
  b.blt(len, 8, words_done);
  b.ldu(w0, buf, 0);
  b.cksum(s0, s0, w0);
  b.add(buf, buf, 8);
  b.sub(len, len, 8);
  b.jmp(no8);
  b.place(words_done);
  b.putreg(w1), b.putreg(end), b.putreg(s1);
  Reg w32 = b.getreg(Type::U32), w16 = b.getreg(Type::U16), w8 = b.getreg(Type::U8);
  b.blt(len, 4, no4);
  b.ldu(w32, buf, 0);
  b.cksum(s0, s0, w32);
  b.add(buf, buf, 4);
  b.sub(len, len, 4);
  b.place(no4);
  b.blt(len, 2, no2);
  b.ldu(w16, buf, 0);
  b.cksum(s0, s0, w16);
  b.add(buf, buf, 2);
  b.sub(len, len, 2);
  b.place(no2);
  b.beq(len, 0, no1);
  b.ld(w8, buf, 0);  // odd byte: the padding zero byte follows it (RFC 1071 §4.1)
  Reg wide = w32;
  b.cvt(wide, w8);
  b.cksum(s0, s0, wide);
  b.place(no1);
  b.cksum_fold(w16, s0);
  b.com(w16, w16);
  b.ret(w16);
  b.finish();
  return uint32_t(m.find_function(name));
}

}  // namespace exojit::examples
