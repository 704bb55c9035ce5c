// SPDX-License-Identifier: MIT
#include "hash_gcc.h"

namespace exojit::bench {

uint64_t hash1k_gcc_O2(uint64_t seed) {
  uint64_t h = seed;
  for (uint64_t i = 0; i < 1000; ++i) {
    h ^= i;
    h *= 0x9e3779b97f4a7c15ull;
    h ^= h >> 29;
  }
  return h;
}

}  // namespace exojit::bench
