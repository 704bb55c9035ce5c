// SPDX-License-Identifier: MIT
// The hash1k kernel in plain C++, compiled by the host compiler at -O2 (hash_gcc.cpp): 1,000
// rounds of xor, multiply and xor-shift over a 64-bit state, as bench_tiers generates it.
#pragma once

#include <cstdint>

namespace exojit::bench {

[[gnu::noinline]] uint64_t hash1k_gcc_O2(uint64_t seed);

}  // namespace exojit::bench
