// SPDX-License-Identifier: MIT
// The sandbox's check of a handler (check.cpp): the ASH rules, verified from the handler's
// records alone before anything is lowered. Private to ash/.
#pragma once

#include <cstddef>
#include <string>

#include "exojit/ash/builder.h"
#include "exojit/vcode/ir.h"
#include "sandbox_p.h"

namespace exojit::ash::sandbox {

// Throws an exojit::Error naming the first rule the handler breaks; returns when the lowering
// may rely on its records.
void check_handler(const HandlerBuilder& program, const LowerOptions& options);

// The inline primitive a load or store of the state register stands for (nullptr: none). The
// check and the lowering must read the records the same way, hence one definition.
const Site* inline_site(const HandlerBuilder& program, const vcode::Insn& x);

// Refuses instruction i of the handler f (exojit::Error).
[[noreturn]] void refuse(const vcode::Function& f, size_t i, const std::string& why);

}  // namespace exojit::ash::sandbox
