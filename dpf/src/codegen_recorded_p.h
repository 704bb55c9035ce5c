// SPDX-License-Identifier: MIT
// The demultiplexer's call to the engine's fragment state (RECORDED atoms, codegen.cpp): a vcode
// `ccall` of the engine's lookup, CodegenOptions::recorded.
#pragma once

#include <exojit/vcode/builder.h>

#include <cstdint>
#include <optional>

#include "codegen_registers_p.h"

namespace exojit::dpf::detail {

// Calls `fn` (the module's extern index of the lookup) with `state`, `id` and the value in the
// stack slot `value` (none for id 0: no lookup, the accept of a recording filter follows). Its
// answer 0 jumps to `fail`, 2 (the engine's mutex is not held) returns kNeedsMutex, 1 goes on.
void call_recorded(vcode::Builder& b, RegisterBudget& regs, uint32_t fn, const void* state,
                   uint64_t id, std::optional<vcode::Local> value, vcode::Label fail);

}  // namespace exojit::dpf::detail
