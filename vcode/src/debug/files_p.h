// SPDX-License-Identifier: MIT
// Where debug/ writes the files gdb and perf read (private header): perf's jit-<pid>.dump and
// the vcode listings that line numbers refer to. $JITDUMPDIR when it is set (created if
// missing), else a new directory ~/.debug/jit/exojit-<date>-XXXXXX, made once per process (the
// layout of LLVM's perf listener, beside perf's own ~/.debug). An unusable directory is an
// exojit::Error naming it.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace exojit::vcode::detail {

std::string debug_directory();

// Writes `text` to a new file of debug_directory() named <prefix>-<pid>-<n><suffix>; returns
// its absolute path.
std::string write_debug_file(std::string_view prefix, std::string_view suffix,
                             std::string_view text);

// Writes all `n` bytes to `fd` (retrying short writes); an exojit::Error naming `path` else.
void write_all(int fd, const void* data, size_t n, const std::string& path);

}  // namespace exojit::vcode::detail
