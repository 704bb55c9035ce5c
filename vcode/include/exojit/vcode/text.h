// SPDX-License-Identifier: MIT
// The vcode text format: every module prints as a listing and parses back to the same IR.
//
//   extern @memcpy(p, p, u64) -> p
//   func @add1(%x: i32 t0) -> i32 {
//     %y: i32 t1
//   L0:
//     add %y, %x, 1
//     ret %y
//   }
//
// Registers are declared with their type and slot (t<n>/v<n>: temporary/variable pool; in a
// hand-written listing `temp`/`var` lets the parser pick a free slot). Memory operands are
// `[%base + %index + disp]` or `[$local + disp]`; immediates are decimal or 0x hex; float
// immediates print in the shortest form that reads back exactly.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "exojit/vcode/ir.h"

namespace exojit::vcode {

std::string print(const Module& m);
std::string print(const Module& m, const Function& f);
std::string print_insn(const Module& m, const Function& f, const Insn& insn);

// Resolves an extern's name to an address; the default looks the symbol up in the process.
using SymbolResolver = std::function<void*(std::string_view name)>;
void* resolve_process_symbol(std::string_view name);

// Parses a listing into a new module and verifies it. Errors (with line and column) are
// exojit::Error.
Module parse(std::string_view text, const SymbolResolver& resolve = resolve_process_symbol);

}  // namespace exojit::vcode
