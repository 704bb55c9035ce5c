// SPDX-License-Identifier: MIT
// Private verifier entry points (see verify.h for the public one).
#pragma once

#include <string>

#include "exojit/vcode/detail/flow.h"
#include "exojit/vcode/ir.h"

namespace exojit::vcode {

// The message for a use of register `r` where it is not defined on every path.
std::string undefined_register_message(const Function& f, uint32_t r);

namespace detail {

// The message for an error at instruction i of f: "@f: instruction i `text`: why".
std::string insn_error(const Module& m, const Function& f, size_t i, const std::string& why);

// Verifies `f`; `check_operands` = false skips the per-instruction operand checks.
void verify_function(const Module& m, const Function& f, bool check_operands);

// Finishes verifying a function the Builder tracked as it recorded it: labels, the end of the
// function, and the full analysis when the tracking was not conclusive.
void complete_verification(const Module& m, const Function& f, const FlowTracker& flow);

// Undefined labels and falling off the end, after a single pass.
void check_end(const Module& m, const Function& f, const FlowTracker& flow);

}  // namespace detail
}  // namespace exojit::vcode
