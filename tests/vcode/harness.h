// SPDX-License-Identifier: MIT
// Test helpers: call a compiled function with raw values, the way the interpreter is called.
#pragma once

#include <bit>
#include <cstdint>
#include <span>

#include "exojit/vcode.h"

namespace exojit::test {

// Calls `sym` in `code` with raw argument values (as Interpreter::call takes them) and returns
// the raw result normalized to the return type.
inline uint64_t call_jit(const vcode::Code& code, const vcode::Code::Symbol& sym,
                         std::span<const uint64_t> args) {
  return vcode::call_raw(code.entry(sym.name), sym.sig, args.data());
}

inline uint64_t call_jit(const vcode::Code& code, std::string_view name,
                         std::span<const uint64_t> args) {
  for (const auto& s : code.symbols())
    if (s.name == name) return call_jit(code, s, args);
  throw Error("no such function");
}

}  // namespace exojit::test
