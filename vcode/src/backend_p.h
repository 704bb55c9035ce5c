// SPDX-License-Identifier: MIT
// The interface between the target-neutral compile() and each back end (private header).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "blinding_p.h"
#include "debug/notes_p.h"
#include "exojit/vcode/code.h"
#include "exojit/vcode/ir.h"

namespace exojit::vcode::detail {

// What a back end of the fast tier produces: position-independent machine code (calls to C go
// through absolute addresses, everything else is relative) and where each function of the
// module starts and ends in it. compile() copies it into executable memory.
struct MachineCode {
  std::unique_ptr<uint8_t[]> bytes;
  size_t size = 0;
  struct Range {
    size_t begin, end;
  };
  std::vector<Range> functions;  // one per function of the module, in order
};

// The optional instructions the x86-64 back end may use: those the CPU has and the options
// allow (compile() decides, see x64_features in code.cpp).
struct X64Features {
  bool movbe = true;
  bool bmi2 = true;   // shlx/shrx/sarx
  bool avx = true;    // VEX encodings
  bool avx2 = true;   // 256-bit vectors
  bool sse41 = true;  // SSSE3 + SSE4.1: pshufb, pmovzx (128-bit vectors without AVX)
  bool sse42 = true;  // crc32
  // The most code the encoder writes before it gives up with an error (1 GiB: every rel32
  // reaches; tests lower it to see the error reported).
  size_t max_code_bytes = size_t(1) << 30;
  // Frames over a page probe the stack as they are allocated (stack_probe_p.h). Off only in
  // tests, which compare the code of small frames with and without.
  bool stack_probes = true;
};

// The LLVM tier (vcode/llvm/): the module lowered to LLVM IR, optimized at `opt_level` (0-3)
// and compiled by a shared ORC LLJIT. `owner` frees the code when the last copy dies.
struct LlvmCode {
  std::shared_ptr<void> owner;
  uint8_t* base = nullptr;
  size_t size = 0;
  std::vector<Code::Symbol> symbols;
  std::vector<std::vector<uint8_t>> debug_objects;  // with debug_objects: the objects for gdb
};
LlvmCode compile_llvm(const Module& m, int opt_level, bool debug_objects = false);
std::string llvm_ir_text(const Module& m, int opt_level);

// x86-64 (SysV ABI): every function of `m` in one pass over each IR, through vcode's own encoder
// (vcode/x64/). With `notes`, also notes where each record's code starts and how the frame
// changes (debug/notes_p.h).
// With `blind`, the client's immediates are blinded with that key (blinding_p.h).
MachineCode emit_x64(const Module& m, const X64Features& allowed, CodeNotes* notes = nullptr,
                     const BlindKey* blind = nullptr);

// AArch64 (AAPCS64): the same through asmjit's a64::Assembler (vcode/a64/).
// `stack_probes` off only in tests (see X64Features::stack_probes).
MachineCode emit_a64(const Module& m, CodeNotes* notes = nullptr, const BlindKey* blind = nullptr,
                     bool stack_probes = true);

}  // namespace exojit::vcode::detail
