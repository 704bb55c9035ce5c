// SPDX-License-Identifier: MIT
// Compiled with -O2 explicitly (bench/CMakeLists.txt), whatever the build type.
//
// Step for step what build_cksum generates: 64-bit unaligned words (memcpy) summed with
// end-around carry into two accumulators, four words per iteration; the accumulators combined;
// the 0-31 byte tail as 64-bit words, then a 32-, a 16- and an 8-bit word; folded to 16 bits
// with end-around carry and complemented.
#include "cksum_gcc.h"

#include <cstring>

namespace exojit::bench {

namespace {

inline uint64_t add_carry(uint64_t s, uint64_t w) {
  s += w;
  s += (s < w);
  return s;
}

}  // namespace

uint16_t cksum_gcc_O2(const uint8_t* buf, uint64_t len) {
  uint64_t s0 = 0, s1 = 0;
  const uint8_t* end = buf + (len & ~uint64_t(31));
  while (buf < end) {
    uint64_t w0, w1;
    std::memcpy(&w0, buf, 8);
    std::memcpy(&w1, buf + 8, 8);
    s0 = add_carry(s0, w0);
    s1 = add_carry(s1, w1);
    std::memcpy(&w0, buf + 16, 8);
    std::memcpy(&w1, buf + 24, 8);
    s0 = add_carry(s0, w0);
    s1 = add_carry(s1, w1);
    buf += 32;
  }
  s0 = add_carry(s0, s1);
  len &= 31;
  for (; len >= 8; buf += 8, len -= 8) {
    uint64_t w;
    std::memcpy(&w, buf, 8);
    s0 = add_carry(s0, w);
  }
  if (len >= 4) {
    uint32_t w;
    std::memcpy(&w, buf, 4);
    s0 = add_carry(s0, w);
    buf += 4;
    len -= 4;
  }
  if (len >= 2) {
    uint16_t w;
    std::memcpy(&w, buf, 2);
    s0 = add_carry(s0, w);
    buf += 2;
    len -= 2;
  }
  if (len) s0 = add_carry(s0, buf[0]);  // the padding zero byte follows it (RFC 1071 §4.1)
  // Fold 64 -> 32 -> 16 bits, each with end-around carry.
  uint64_t f = (s0 & 0xffffffffu) + (s0 >> 32);
  f = (f & 0xffffffffu) + (f >> 32);
  f = (f & 0xffffu) + (f >> 16);
  f = (f & 0xffffu) + (f >> 16);
  return uint16_t(~f);
}

}  // namespace exojit::bench
