/* The Internet checksum (RFC 1071): 16-bit one's-complement sum, big-endian words. */
#include "internal.h"

extern "C" uint32_t exo_cksum_add(uint32_t sum, const uint8_t* p, uint32_t len) {
  uint64_t acc = sum;
  while (len >= 2) {
    acc += (uint32_t)(p[0] << 8 | p[1]);
    p += 2;
    len -= 2;
  }
  if (len) acc += (uint32_t)(p[0] << 8);
  while (acc >> 32) acc = (acc & 0xffffffffu) + (acc >> 32);
  return (uint32_t)acc;
}

extern "C" uint16_t exo_cksum_fold(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return (uint16_t)~sum;
}
