// SPDX-License-Identifier: MIT
// Partial evaluation of the entry, top down: fold what the declaration makes constant, drop the
// branches it decides, and only then inline the calls that survived, one level at a time. Each
// inlined body is pruned on its constant arguments as it is copied (LLVM's InlineFunction), so
// the generic path's unused parts (fragmentation, ARP misses, binding) are never copied at all,
// and the pipeline that follows optimizes only what the context needs.
#pragma once

#include <llvm/IR/Module.h>
#include <llvm/IR/PassManager.h>

#include <cstddef>
#include <string>

#include "exojit/specializer/declaration.h"

namespace exojit::specializer::detail {

class PartiallyEvaluate : public llvm::PassInfoMixin<PartiallyEvaluate> {
 public:
  // `entry` names the function to evaluate; loads folded are counted into *folded.
  PartiallyEvaluate(std::string entry, const Declaration& decl, size_t* folded)
      : entry_(std::move(entry)), decl_(&decl), folded_(folded) {}
  llvm::PreservedAnalyses run(llvm::Module& m, llvm::ModuleAnalysisManager& mam);

 private:
  std::string entry_;
  const Declaration* decl_;
  size_t* folded_;
};

}  // namespace exojit::specializer::detail
