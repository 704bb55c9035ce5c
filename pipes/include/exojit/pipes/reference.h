// SPDX-License-Identifier: MIT
// One-pass C references of the library pipes (library.h), written the straightforward way: each
// walks the message word by word at its own gauge, the partial last word zero-padded and only
// its present bytes written back (the tail rule of compile.h). Modifying ones work in place.
// Running them one after another over a copy of the message is the "separate passes" baseline
// and the expected result of the compiled pipe list.
#pragma once

#include <cstddef>
#include <cstdint>

namespace exojit::pipes::reference {

uint32_t cksum(uint32_t acc, const uint8_t* p, size_t n);
void bswap16(uint8_t* p, size_t n);
void bswap32(uint8_t* p, size_t n);
uint32_t cipher(uint32_t state, uint8_t* p, size_t n);  // returns the new state
uint32_t crc32c(uint32_t crc, const uint8_t* p, size_t n);

// RFC 1071 computed the textbook way (16-bit big-endian words, odd byte padded, folded,
// complemented), as a big-endian value: an independent check of cksum + internet_checksum.
uint16_t rfc1071(const uint8_t* p, size_t n);

}  // namespace exojit::pipes::reference
