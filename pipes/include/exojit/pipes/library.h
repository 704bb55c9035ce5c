// SPDX-License-Identifier: MIT
// The pipe library: ready-made pipes, each with a one-pass C reference (reference.h) that gives
// exactly the same output and persistent registers (under the tail rule of compile.h).
//
//   cksum     Internet checksum (RFC 1071), gauge 32, commutative, non-modifying. Persistent u32
//             "acc": the one's-complement sum with end-around carry of the message's 32-bit
//             words in memory order (Figure 2 of the ASH paper). internet_checksum(acc) folds
//             and complements it.
//   bswap16   byte swap of every 16-bit word, commutative.
//   bswap32   byte swap of every 32-bit word, commutative.
//   cipher    keyed XOR stream cipher, gauge 32: each word is XORed with the next state of a
//             xorshift32 generator seeded with the key (persistent u32 "state"); running it
//             twice from the same state decrypts. Order-dependent, so never vectorized.
//   crc32c    CRC-32C (Castagnoli), gauge 8, non-modifying, persistent u32 "crc" (initial
//             0xffffffff; crc32c_value(crc) is the standard CRC of the bytes so far). Uses the
//             crc32 instruction when the CPU has it.
//   copy      plain copy, gauge 64: no computation.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "exojit/pipes/pipe.h"

namespace exojit::pipes::library {

int cksum(PipeList& pl);
int bswap16(PipeList& pl);
int bswap32(PipeList& pl);
int cipher(PipeList& pl, uint32_t key);  // key != 0
int crc32c(PipeList& pl);
int copy(PipeList& pl);

// By name ("cksum", "bswap16", "bswap32", "cipher", "crc32c", "copy"); the cipher gets a fixed
// demonstration key. An unknown name is an Error listing the names.
int add(PipeList& pl, std::string_view name);
const std::vector<std::string_view>& names();

inline constexpr uint32_t kDemoKey = 0x9e3779b9u;

// The 16-bit Internet checksum from a cksum accumulator, in the message's own byte order: store
// it with memcpy into the header and it reads correctly in network order.
uint16_t internet_checksum(uint32_t acc);
// The standard CRC-32C value from a crc32c pipe's register.
inline uint32_t crc32c_value(uint32_t crc) {
  return ~crc;
}

}  // namespace exojit::pipes::library
