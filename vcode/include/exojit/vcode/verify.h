// SPDX-License-Identifier: MIT
// The verifier: rejects malformed functions with an exojit::Error naming the instruction.
#pragma once

#include <cstddef>

#include "exojit/vcode/ir.h"

namespace exojit::vcode {

// Checks one instruction's operands in isolation: register ids, types (the operation's type is
// the destination's; mismatches are errors), label and local numbers, call signatures.
void check_insn(const Module& m, const Function& f, size_t index);

// Checks a whole function: every instruction, every label placed exactly once, every register
// defined on every path before use (temporaries count as undefined after a call), every path
// ends in a return or jump (no falling off the end).
void verify(const Module& m, const Function& f);

// Verifies every function of the module.
void verify(const Module& m);

}  // namespace exojit::vcode
