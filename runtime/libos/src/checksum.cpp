// SPDX-License-Identifier: MIT
/* The Internet checksum (RFC 1071): 16-bit one's-complement sum of big-endian words.
 *
 * The sum is byte-order independent (RFC 1071 2(B)): the loop adds 32-bit native words into a
 * 64-bit accumulator (carries collect in the upper half), folds, and swaps the 16-bit result to
 * big-endian at the end — 8 bytes per step instead of 2. Pieces summed one after the other must
 * have even lengths, except the last. */
#include "internal_p.h"

static uint32_t fold64(uint64_t acc) {
  acc = (acc & 0xffffffffu) + (acc >> 32);
  acc = (acc & 0xffffffffu) + (acc >> 32);
  uint32_t s = (uint32_t)acc;
  s = (s & 0xffff) + (s >> 16);
  s = (s & 0xffff) + (s >> 16);
  return s;
}

extern "C" uint32_t exo_cksum_add(uint32_t sum, const uint8_t* p, uint32_t len) {
  uint64_t acc = 0;
  while (len >= 8) {
    uint64_t w;
    memcpy(&w, p, 8);
    acc += (w & 0xffffffffu) + (w >> 32);
    p += 8;
    len -= 8;
  }
  if (len >= 4) {
    uint32_t w;
    memcpy(&w, p, 4);
    acc += w;
    p += 4;
    len -= 4;
  }
  if (len >= 2) {
    uint16_t w;
    memcpy(&w, p, 2);
    acc += w;
    p += 2;
    len -= 2;
  }
  uint32_t s = fold64(acc);
  /* The native sum, in big-endian order (an odd last byte is the high byte of its word). */
  uint32_t be;
  if (*(const uint8_t*)"\1\0" == 1) /* little-endian host */
    be = (uint32_t)((s >> 8 | s << 8) & 0xffff);
  else
    be = s;
  if (len) be += (uint32_t)p[0] << 8;
  uint64_t total = (uint64_t)sum + be;
  return (uint32_t)((total & 0xffffffffu) + (total >> 32));
}

extern "C" uint16_t exo_cksum_fold(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return (uint16_t)~sum;
}
