// SPDX-License-Identifier: MIT
// Hand-fused copy + checksum (+ byte swap) loops in plain C++ (see ilp_fused_c.h).
#include "ilp_fused_c.h"

#include <cstring>

namespace exojit::bench {

namespace {

// 64-bit partial sum of 32-bit words, folded to 32 bits with end-around carry.
uint32_t fold(uint64_t sum) {
  while (sum >> 32) sum = (sum & 0xffffffffu) + (sum >> 32);
  return uint32_t(sum);
}

uint32_t load_padded(const uint8_t* p, size_t present) {
  uint32_t w = 0;
  std::memcpy(&w, p, present);
  return w;
}

}  // namespace

uint32_t copy_cksum_fused(uint8_t* dst, const uint8_t* src, size_t n, uint32_t acc) {
  uint64_t sum = acc;
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    uint32_t w;
    std::memcpy(&w, src + i, 4);
    std::memcpy(dst + i, &w, 4);
    sum += w;
  }
  if (i < n) {
    std::memcpy(dst + i, src + i, n - i);
    sum += load_padded(src + i, n - i);
  }
  return fold(sum);
}

uint32_t copy_cksum_bswap_fused(uint8_t* dst, const uint8_t* src, size_t n, uint32_t acc) {
  uint64_t sum = acc;
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    uint32_t w;
    std::memcpy(&w, src + i, 4);
    sum += w;
    w = __builtin_bswap32(w);
    std::memcpy(dst + i, &w, 4);
  }
  if (i < n) {
    uint32_t w = load_padded(src + i, n - i);
    sum += w;
    w = __builtin_bswap32(w);
    std::memcpy(dst + i, &w, n - i);
  }
  return fold(sum);
}

}  // namespace exojit::bench
