// SPDX-License-Identifier: MIT
// Classic BPF opcodes (the BSD Packet Filter's encoding, shared by libpcap and Linux), spelled
// out here so that the library needs neither header. An opcode is class | size | mode for loads,
// class | op | source for ALU and jumps.
#pragma once

#include <cstdint>

#include "exojit/dpf/bpf.h"

namespace exojit::dpf::detail::bpf {

// Classes.
inline constexpr uint16_t kLd = 0x00, kLdx = 0x01, kSt = 0x02, kStx = 0x03, kAlu = 0x04,
                          kJmp = 0x05, kRet = 0x06, kMisc = 0x07;
// Load sizes and modes.
inline constexpr uint16_t kW = 0x00, kH = 0x08, kB = 0x10;
inline constexpr uint16_t kImm = 0x00, kAbs = 0x20, kInd = 0x40, kMem = 0x60, kLen = 0x80,
                          kMsh = 0xa0;
// ALU operations.
inline constexpr uint16_t kAdd = 0x00, kSub = 0x10, kMul = 0x20, kDiv = 0x30, kOr = 0x40,
                          kAnd = 0x50, kLsh = 0x60, kRsh = 0x70, kNeg = 0x80, kMod = 0x90,
                          kXor = 0xa0;
// Jumps.
inline constexpr uint16_t kJa = 0x00, kJeq = 0x10, kJgt = 0x20, kJge = 0x30, kJset = 0x40;
// Operand source (ALU, jumps) and return value.
inline constexpr uint16_t kK = 0x00, kX = 0x08, kRetA = 0x10;
// Misc.
inline constexpr uint16_t kTax = 0x00, kTxa = 0x80;

constexpr uint16_t cls(uint16_t code) {
  return code & 0x07;
}
constexpr uint16_t size(uint16_t code) {
  return code & 0x18;
}
constexpr uint16_t mode(uint16_t code) {
  return code & 0xe0;
}
constexpr uint16_t op(uint16_t code) {
  return code & 0xf0;
}
constexpr uint16_t src(uint16_t code) {
  return code & 0x08;
}
constexpr unsigned load_bytes(uint16_t code) {
  return size(code) == kW ? 4 : size(code) == kH ? 2 : 1;
}

// The instruction a jump continues at: `ja` takes k as a signed offset (libpcap's protochain
// jumps backwards), the conditional jumps their unsigned 8-bit offsets.
constexpr int64_t ja_target(const BpfInsn& in, size_t pc) {
  return int64_t(pc) + 1 + int64_t(int32_t(in.k));
}

constexpr bool is_cond_jump(uint16_t code) {
  return cls(code) == kJmp && op(code) != kJa;
}

}  // namespace exojit::dpf::detail::bpf
