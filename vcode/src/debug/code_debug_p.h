// SPDX-License-Identifier: MIT
// What compile() attaches to a Code for debuggers and profilers (private header): the line
// table, the GDB JIT registration (undone when the Code dies, before its memory is freed) and
// the jitdump records, as CompileOptions and the environment (EXOJIT_GDB, EXOJIT_JITDUMP) ask.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "exojit/vcode/code.h"
#include "gdb_jit_p.h"
#include "notes_p.h"

namespace exojit::vcode::detail {

struct CodeDebug {
  std::optional<LineTable> lines;
  // A listing only gdb reads: removed with the code (perf reads its listings after the run).
  struct OwnedFile {
    std::string path;
    ~OwnedFile();
  } listing;
  std::vector<std::unique_ptr<GdbRegistration>> gdb;  // declared last: undone first
};

struct DebugRequest {
  bool lines = false;    // keep the line table
  bool gdb = false;      // register with gdb
  bool jitdump = false;  // write perf's jitdump
  bool notes() const { return lines || gdb || jitdump; }
};

// The options' request, with EXOJIT_GDB=1 and EXOJIT_JITDUMP=1 (read once per process).
DebugRequest debug_request(const CompileOptions& options);

// Executable memory gdb can put breakpoints in: ptrace cannot write to the read-only shared
// pages of the dual-mapped allocator, so code for gdb goes in private pages, written while
// read+write, then made read+execute (never both writable and executable). The owner unmaps
// them.
std::shared_ptr<void> map_private_code(size_t size);
void seal_private_code(void* base, size_t size);

LineTable make_line_table(const Module& m, const CodeNotes& notes,
                          const std::vector<Code::Symbol>& symbols);

// Fast tier, once the code is at `base`: the line table from the back end's notes, and the
// registrations the request asks for (host code only).
std::unique_ptr<CodeDebug> describe_code(const DebugRequest& request, const Module& m,
                                         Target target, const uint8_t* base,
                                         const std::vector<Code::Symbol>& symbols,
                                         const CodeNotes& notes);

// LLVM tier: registers with gdb the objects ORC linked (their DWARF and unwind tables are
// LLVM's), and writes the functions to the jitdump (without lines: LLVM IR carries none).
std::unique_ptr<CodeDebug> describe_llvm_code(const DebugRequest& request, const uint8_t* base,
                                              const std::vector<Code::Symbol>& symbols,
                                              std::vector<std::vector<uint8_t>> objects);

}  // namespace exojit::vcode::detail
