// SPDX-License-Identifier: MIT
// The Internet checksum in plain C++, the same algorithm as exojit::examples::build_cksum
// (tools/examples/cksum.h), compiled by the host compiler at -O2 (cksum_gcc.cpp).
#pragma once

#include <cstdint>

namespace exojit::bench {

// Not inlined, so the benchmark pays a call as it does for the generated function.
[[gnu::noinline]] uint16_t cksum_gcc_O2(const uint8_t* buf, uint64_t len);

}  // namespace exojit::bench
