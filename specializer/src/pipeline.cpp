// SPDX-License-Identifier: MIT
// The residual code's optimization pipeline (pipeline.h).
#include <llvm/Passes/PassBuilder.h>
#include <llvm/Transforms/InstCombine/InstCombine.h>
#include <llvm/Transforms/Scalar/DeadStoreElimination.h>
#include <llvm/Transforms/Scalar/EarlyCSE.h>
#include <llvm/Transforms/Scalar/LoopUnrollPass.h>
#include <llvm/Transforms/Scalar/MemCpyOptimizer.h>
#include <llvm/Transforms/Scalar/SimplifyCFG.h>
#include <llvm/Transforms/Utils/LCSSA.h>
#include <llvm/Transforms/Utils/LoopSimplify.h>
#include <llvm/Transforms/Vectorize/LoopVectorize.h>

#include "exojit/vcode/orc.h"
#include "fold_p.h"
#include "pipeline_p.h"

namespace exojit::specializer::detail {

void optimize_residual(llvm::Module& mod, int level, const Declaration& decl, size_t* folded,
                       llvm::TargetMachine* tm) {
  vcode::orc::run_passes(
      mod,
      [&](llvm::PassBuilder&) {
        llvm::FunctionPassManager fpm;
        fpm.addPass(llvm::EarlyCSEPass(/*UseMemorySSA=*/true));
        fpm.addPass(llvm::InstCombinePass());
        fpm.addPass(llvm::SimplifyCFGPass());
        fpm.addPass(FoldInvariantLoads(decl, folded));  // what the clean-ups made constant
        fpm.addPass(llvm::DSEPass());
        fpm.addPass(llvm::MemCpyOptPass());
        // The loops over dynamic data (the payload's checksum) are vectorized, and stay loops:
        // unrolled, a vectorized checksum's chain of adds makes instruction selection's
        // known-bits analysis half the cost of a specialization (at 512 bytes) for no gain
        // measured. Only loops of one or two iterations are flattened.
        fpm.addPass(llvm::LoopSimplifyPass());
        fpm.addPass(llvm::LCSSAPass());
        fpm.addPass(llvm::LoopVectorizePass());
        fpm.addPass(llvm::LoopUnrollPass(llvm::LoopUnrollOptions(level)
                                             .setPartial(false)
                                             .setRuntime(false)
                                             .setFullUnrollMaxCount(2)));
        fpm.addPass(llvm::InstCombinePass());  // one clean-up after both
        fpm.addPass(llvm::SimplifyCFGPass(llvm::SimplifyCFGOptions()
                                              .convertSwitchRangeToICmp(true)
                                              .hoistCommonInsts(true)
                                              .sinkCommonInsts(true)));
        llvm::ModulePassManager mpm;
        mpm.addPass(llvm::createModuleToFunctionPassAdaptor(std::move(fpm)));
        return mpm;
      },
      tm);
}

}  // namespace exojit::specializer::detail
