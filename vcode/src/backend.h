// The interface between the target-neutral compile() and each back end (private header).
#pragma once

#include <asmjit/core.h>

#include <vector>

#include "exojit/vcode/ir.h"

namespace exojit::vcode::detail {

// Where each function's code starts and ends in the CodeHolder.
struct EmittedFunction {
  asmjit::Label begin;
  asmjit::Label end;
};

// Optional instructions the x86-64 back end may use when the host CPU has them.
struct X64Features {
  bool movbe = true;
  bool bmi2 = true;
  bool avx = true;    // AVX/AVX2 (VEX encodings, 256-bit vectors)
  bool sse42 = true;  // crc32
};

// x86-64 (SysV ABI): emits every function of `m` into `code` in one pass over each IR.
std::vector<EmittedFunction> emit_x64(const Module& m, asmjit::CodeHolder& code,
                                      const X64Features& allowed);

// AArch64 (AAPCS64): the same, into a CodeHolder initialized for AArch64 (vcode/a64/).
std::vector<EmittedFunction> emit_a64(const Module& m, asmjit::CodeHolder& code);

}  // namespace exojit::vcode::detail
