// SPDX-License-Identifier: MIT
// Constant blinding (CompileOptions::blind_constants), the target-neutral half (private header).
//
// JIT spraying (Blazakis, "Interpreter Exploitation", 2010) plants attacker-chosen immediates in
// executable memory, where they decode as instructions when jumped into at another offset. As
// Linux's eBPF JIT does with bpf_jit_harden (bpf_jit_blind_constants), every immediate a client
// gave that takes more than one byte is emitted as `imm ^ key` and recovered by one xor into a
// register the back end reserves for it; the key is fresh and random per compilation, so the
// bytes in the code are not the client's.
//
// The skeleton (lowering.h) rewrites each record that carries such an immediate into the record
// with a register in its place (the hidden register, mapped to the back end's blinding register)
// after having the back end load it; the back ends then lower the register form, which every
// opcode with an immediate has. Immediates that fit in a signed byte are left alone: an imm8 is
// one byte, which decodes as no useful instruction sequence on its own (eBPF blinds those too;
// the bound here keeps the common small constants -- shifts, flags, offsets into headers -- on
// the fast path).
#pragma once

#include <cstdint>

#include "exojit/vcode/ir.h"

namespace exojit::vcode::detail {

struct BlindKey {
  uint32_t k32;  // every byte nonzero: a zero byte would leave the constant's byte in the clear
  uint64_t k64;
};

// A fresh key from the kernel's CSPRNG (getrandom(2), through a per-thread buffer so that a
// compilation costs no system call in the common case).
BlindKey fresh_blind_key();

// Whether an immediate (as the record holds it) is blinded.
constexpr bool needs_blinding(int64_t v) {
  return v < -128 || v > 127;
}

// The value a register of integer type t holds for immediate v (narrow types sign- or
// zero-extended to 32 bits, 32-bit types zero-extended to 64: the convention of both targets).
constexpr uint64_t register_value(Type t, int64_t v) {
  const int64_t n = normalize_imm(t, v);
  return type_bits(t) == 64 ? uint64_t(n) : uint64_t(uint32_t(n));
}

}  // namespace exojit::vcode::detail
