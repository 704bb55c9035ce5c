// SPDX-License-Identifier: MIT
// The crc32c instruction's definition (interp.h), shared by the interpreter and the LLVM tier's
// fallback for CPUs without SSE4.2 (private to vcode/).
#pragma once

#include <cstdint>

namespace exojit::vcode::detail {

// CRC-32C update with the low `bytes` bytes of v, least significant first (SSE4.2 crc32).
inline uint32_t crc32c_update(uint32_t crc, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) {
    crc ^= uint32_t(v >> (8 * i)) & 0xff;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0x82f63b78u & (0u - (crc & 1)));
  }
  return crc;
}

}  // namespace exojit::vcode::detail
