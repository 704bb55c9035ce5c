// SPDX-License-Identifier: MIT
// The specializer's own pass: loads from declared invariant memory at constant addresses become
// the constants that memory holds now (and copies from it read a constant copy), which is what
// turns the generic code's lookups and option tests into constants for LLVM's pipeline to fold.
// Also the check that residual code never writes invariant memory.
#pragma once

#include <llvm/IR/Function.h>
#include <llvm/IR/PassManager.h>

#include <cstddef>

#include "exojit/specializer/declaration.h"

namespace exojit::specializer::detail {

// Folds in one function; returns how many loads and copies it folded.
size_t fold_invariant_loads(llvm::Function& f, const Declaration& decl);

// The same as a function pass, for PassBuilder's extension points; counts into *folded.
class FoldInvariantLoads : public llvm::PassInfoMixin<FoldInvariantLoads> {
 public:
  FoldInvariantLoads(const Declaration& decl, size_t* folded) : decl_(&decl), folded_(folded) {}
  llvm::PreservedAnalyses run(llvm::Function& f, llvm::FunctionAnalysisManager&);

 private:
  const Declaration* decl_;
  size_t* folded_;
};

// Throws exojit::Error when `f` stores to (or copies into) declared invariant memory at a
// constant address: folding its loads would then be wrong.
void check_no_invariant_writes(const llvm::Function& f, const Declaration& decl);

}  // namespace exojit::specializer::detail
