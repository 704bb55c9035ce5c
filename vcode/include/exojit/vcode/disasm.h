// SPDX-License-Identifier: MIT
// Disassembly of generated code with LLVM's MC disassembler (for vdump and tests).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "exojit/vcode/code.h"

namespace exojit::vcode {

struct DisasmLine {
  uint64_t address;
  std::vector<uint8_t> bytes;
  std::string text;  // x86-64 in Intel syntax ("add rdi, rsi"); AArch64 as ARM writes it
};

// Disassembles `size` bytes at `code` (shown at `address`). Undecodable bytes become ".byte".
std::vector<DisasmLine> disassemble(const uint8_t* code, size_t size, uint64_t address,
                                    Target target = kHostTarget);

// One function of `code` (of its target) as text: "address: bytes  instruction" lines.
std::string disassembly_text(const Code& code, const Code::Symbol& symbol);

// Counts machine instructions (used by benchmarks to report per-instruction costs).
size_t count_instructions(const uint8_t* code, size_t size, Target target = kHostTarget);

}  // namespace exojit::vcode
