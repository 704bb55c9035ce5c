// SPDX-License-Identifier: MIT
// Hand-fused C loops for the ILP benchmark: what a programmer writes when integrating copy,
// checksum and byte swap by hand (ilp_fused_c.cpp, -O2). Same results as the pipes cksum and
// bswap32 (one's-complement sum of 32-bit words, folded to 32 bits with end-around carry).
#pragma once

#include <cstddef>
#include <cstdint>

namespace exojit::bench {

[[gnu::noinline]] uint32_t copy_cksum_fused(uint8_t* dst, const uint8_t* src, size_t n,
                                            uint32_t acc);
[[gnu::noinline]] uint32_t copy_cksum_bswap_fused(uint8_t* dst, const uint8_t* src, size_t n,
                                                  uint32_t acc);

}  // namespace exojit::bench
