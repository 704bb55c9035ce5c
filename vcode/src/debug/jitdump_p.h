// SPDX-License-Identifier: MIT
// perf's jitdump (private header): the file `perf inject --jit` turns into one small ELF per
// generated function, so that `perf report` and `perf annotate` see its symbol, its bytes and,
// with debug-info records, its source lines (tools/perf/Documentation/jitdump-specification.txt,
// version 1 of the format). One file per process, jit-<pid>.dump in debug_directory(): a
// header, then records appended under a lock from any thread, and JIT_CODE_CLOSE at exit. The
// file is also mapped once, executable, so that `perf record` sees its path (the marker).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace exojit::vcode::detail {

struct JitdumpFunction {
  std::string name;
  uint64_t address = 0;
  uint64_t size = 0;
  const uint8_t* bytes = nullptr;  // `size` bytes of machine code (copied into the file)
  struct Line {
    uint64_t address;
    uint32_t line;
  };
  std::vector<Line> lines;  // into `file`; none: no debug-info record
};

// Appends a debug-info record (when there are lines) and a code-load record per function.
void jitdump_write(const std::string& file, const std::vector<JitdumpFunction>& functions);

// The path of this process's jitdump ("" before the first write).
std::string jitdump_path();

}  // namespace exojit::vcode::detail
