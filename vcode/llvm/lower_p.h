// SPDX-License-Identifier: MIT
// The LLVM tier's lowering (private to vcode/): a verified vcode module becomes an LLVM module
// with the interpreter's semantics (interp.h). Every vcode register is a stack slot that SROA
// promotes to SSA values; labels become basic blocks; indirect jumps use blockaddress and
// indirectbr; calls to C go through the extern's address.
#pragma once

#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>

#include <memory>
#include <string>

#include "exojit/vcode/ir.h"

namespace exojit::vcode::detail {

// Function i of `m` becomes `<prefix><name>` (external linkage), so that modules compiled into
// one JIT never clash.
std::unique_ptr<llvm::Module> lower_to_llvm(const Module& m, llvm::LLVMContext& ctx,
                                            const std::string& prefix, bool host_has_sse42);

}  // namespace exojit::vcode::detail
