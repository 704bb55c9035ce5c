// The interface between the target-neutral compile() and each back end (private header).
#pragma once

#include <asmjit/core.h>

#include <memory>
#include <string>
#include <vector>

#include "debug/notes_p.h"
#include "exojit/vcode/code.h"
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

// x86-64 (SysV ABI): emits every function of `m` into `code` in one pass over each IR. With
// `notes`, also notes where each record's code starts and how the frame changes (debug/notes_p.h).
std::vector<EmittedFunction> emit_x64(const Module& m, asmjit::CodeHolder& code,
                                      const X64Features& allowed, CodeNotes* notes = nullptr);

// AArch64 (AAPCS64): the same, into a CodeHolder initialized for AArch64 (vcode/a64/).
std::vector<EmittedFunction> emit_a64(const Module& m, asmjit::CodeHolder& code,
                                      CodeNotes* notes = nullptr);

}  // namespace exojit::vcode::detail
