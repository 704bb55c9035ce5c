// SPDX-License-Identifier: MIT
// The optimization pipeline for residual code. Partial evaluation (evaluate.h) has already
// inlined, folded and pruned the entry into one function, so LLVM's whole -O2 module pipeline
// (its inliner, its interprocedural passes, its repeated simplification) would mostly find
// nothing left to do, at a third of the time a specialization takes. This pipeline keeps what
// still pays on straight-line protocol code: redundancy and dead-store elimination, and the
// vectorization of the loops over dynamic data (the payload's checksum), with the fold of
// invariant loads rerun after the clean-ups.
#pragma once

#include <llvm/IR/Module.h>
#include <llvm/Target/TargetMachine.h>

#include <cstddef>

#include "exojit/specializer/declaration.h"

namespace exojit::specializer::detail {

// Optimizes `mod` at `level` (1-3) for the target `tm`; loads folded are counted into *folded.
void optimize_residual(llvm::Module& mod, int level, const Declaration& decl, size_t* folded,
                       llvm::TargetMachine* tm);

}  // namespace exojit::specializer::detail
