// SPDX-License-Identifier: MIT
// The library pipes' C references (reference.h).
#include "exojit/pipes/reference.h"

#include <array>
#include <cstring>

namespace exojit::pipes::reference {

namespace {

// The word at p of `size` bytes, zero-padded when only `present` bytes remain.
template <typename T>
T load_padded(const uint8_t* p, size_t present) {
  T w = 0;
  std::memcpy(&w, p, present < sizeof(T) ? present : sizeof(T));
  return w;
}

template <typename T>
void store_present(uint8_t* p, T w, size_t present) {
  std::memcpy(p, &w, present < sizeof(T) ? present : sizeof(T));
}

uint32_t xorshift32(uint32_t s) {
  s ^= s << 13;
  s ^= s >> 17;
  s ^= s << 5;
  return s;
}

}  // namespace

// Each walks whole words with fixed-size accesses (what a C programmer writes), then the
// partial last word, if any, under the tail rule.

// The one's-complement sum accumulates in 64 bits and folds once at the end (RFC 1071 §4.1's
// deferred carries): the same value as adding each word with end-around carry, since the sum is
// exact (messages under 16 GiB) and folding keeps its residue modulo 2^32 - 1 (and is 0 only
// if every word was).
uint32_t cksum(uint32_t acc, const uint8_t* p, size_t n) {
  uint64_t sum = acc;
  size_t i = 0;
  for (; i + 4 <= n; i += 4) sum += load_padded<uint32_t>(p + i, 4);
  if (i < n) sum += load_padded<uint32_t>(p + i, n - i);
  while (sum >> 32) sum = (sum & 0xffffffffu) + (sum >> 32);
  return uint32_t(sum);
}

void bswap16(uint8_t* p, size_t n) {
  size_t i = 0;
  for (; i + 2 <= n; i += 2)
    store_present(p + i, __builtin_bswap16(load_padded<uint16_t>(p + i, 2)), 2);
  if (i < n) store_present(p + i, __builtin_bswap16(load_padded<uint16_t>(p + i, n - i)), n - i);
}

void bswap32(uint8_t* p, size_t n) {
  size_t i = 0;
  for (; i + 4 <= n; i += 4)
    store_present(p + i, __builtin_bswap32(load_padded<uint32_t>(p + i, 4)), 4);
  if (i < n) store_present(p + i, __builtin_bswap32(load_padded<uint32_t>(p + i, n - i)), n - i);
}

uint32_t cipher(uint32_t state, uint8_t* p, size_t n) {
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    state = xorshift32(state);
    store_present(p + i, load_padded<uint32_t>(p + i, 4) ^ state, 4);
  }
  if (i < n) {
    state = xorshift32(state);
    store_present(p + i, load_padded<uint32_t>(p + i, n - i) ^ state, n - i);
  }
  return state;
}

uint32_t crc32c(uint32_t crc, const uint8_t* p, size_t n) {
  static const auto table = [] {  // the byte-at-a-time table of the reflected polynomial
    std::array<uint32_t, 256> t{};
    for (uint32_t b = 0; b < 256; ++b) {
      uint32_t c = b;
      for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0x82f63b78u & (0u - (c & 1)));
      t[b] = c;
    }
    return t;
  }();
  for (size_t i = 0; i < n; ++i) crc = (crc >> 8) ^ table[(crc ^ p[i]) & 0xff];
  return crc;
}

uint16_t rfc1071(const uint8_t* p, size_t n) {
  uint32_t sum = 0;
  for (size_t i = 0; i + 1 < n; i += 2) sum += uint32_t(p[i]) << 8 | p[i + 1];
  if (n & 1) sum += uint32_t(p[n - 1]) << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return uint16_t(~sum);
}

}  // namespace exojit::pipes::reference
