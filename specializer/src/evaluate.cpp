// SPDX-License-Identifier: MIT
// Top-down partial evaluation of the entry (evaluate.h).
#include <llvm/Analysis/ConstantFolding.h>
#include <llvm/Analysis/LoopInfo.h>
#include <llvm/Analysis/ValueTracking.h>
#include <llvm/IR/InstIterator.h>
#include <llvm/IR/Instructions.h>
#include <llvm/Transforms/Scalar/LoopPassManager.h>
#include <llvm/Transforms/Scalar/LoopUnrollPass.h>
#include <llvm/Transforms/Scalar/SCCP.h>
#include <llvm/Transforms/Scalar/SROA.h>
#include <llvm/Transforms/Scalar/SimplifyCFG.h>
#include <llvm/Transforms/Utils/Cloning.h>
#include <llvm/Transforms/Utils/LoopUtils.h>

#include <vector>

#include "evaluate_p.h"
#include "exojit/error.h"
#include "fold_p.h"

namespace exojit::specializer::detail {

namespace {

// More levels than the libOS's call graph is deep; a recursive path stops here, out of line.
constexpr int kMaxLevels = 32;
// More lookups over static tables than one level of the send path holds.
constexpr int kMaxLookups = 32;

// Constant expressions folded with the data layout: static pointers are integers made
// pointers, and `inttoptr C == null` only folds when the pointer's width is known. SCCP and
// SimplifyCFG leave such a branch condition alone; this lets them decide it.
class FoldConstantExpressions : public llvm::PassInfoMixin<FoldConstantExpressions> {
 public:
  llvm::PreservedAnalyses run(llvm::Function& f, llvm::FunctionAnalysisManager&) {
    const llvm::DataLayout& dl = f.getParent()->getDataLayout();
    bool changed = false;
    for (llvm::Instruction& inst : llvm::instructions(f))
      for (llvm::Use& op : inst.operands())
        if (auto* ce = llvm::dyn_cast<llvm::ConstantExpr>(op.get()))
          if (llvm::Constant* c = llvm::ConstantFoldConstant(ce, dl); c && c != ce) {
            op.set(c);
            changed = true;
          }
    return changed ? llvm::PreservedAnalyses::none() : llvm::PreservedAnalyses::all();
  }
};

// Fold, propagate, remove the branches the constants decide.
llvm::FunctionPassManager propagation(const Declaration& decl, size_t* folded) {
  llvm::FunctionPassManager fpm;
  fpm.addPass(llvm::SROAPass());  // the inlined callees' locals become values
  fpm.addPass(FoldInvariantLoads(decl, folded));
  fpm.addPass(FoldConstantExpressions());
  fpm.addPass(llvm::SCCPPass());
  fpm.addPass(FoldConstantExpressions());  // what SCCP left as constant expressions
  fpm.addPass(llvm::SimplifyCFGPass());
  return fpm;
}

// Whether `loop` reads memory at static addresses: a lookup over one of the stack's tables (the
// ARP entries, the routes), whose loads fold once every iteration has its own constant address.
// The loops over dynamic data (the payload's checksum) are left to the optimization pipeline.
bool reads_static_memory(const llvm::Loop& loop) {
  for (const llvm::BasicBlock* block : loop.blocks())
    for (const llvm::Instruction& inst : *block)
      if (const auto* load = llvm::dyn_cast<llvm::LoadInst>(&inst)) {
        const auto* base = llvm::dyn_cast<llvm::ConstantExpr>(
            llvm::getUnderlyingObject(load->getPointerOperand()));
        if (base && base->getOpcode() == llvm::Instruction::IntToPtr) return true;
      }
  return false;
}

// Marks for full unrolling the first loop, in the function's order, that reads static memory
// and is not marked yet; returns whether there was one. One at a time: unrolled and folded, a
// lookup often decides that the loops after it never run (the ARP table's scan for a free
// entry, on the miss path), and those then need no unrolling at all.
bool mark_first_static_lookup(llvm::Function& f, llvm::FunctionAnalysisManager& fam) {
  llvm::LoopInfo& loops = fam.getResult<llvm::LoopAnalysis>(f);
  for (llvm::BasicBlock& block : f) {
    llvm::Loop* loop = loops.getLoopFor(&block);
    if (!loop || loop->getHeader() != &block) continue;
    if (llvm::getBooleanLoopAttribute(loop, "llvm.loop.unroll.full") || !reads_static_memory(*loop))
      continue;
    llvm::addStringMetadataToLoop(loop, "llvm.loop.unroll.full", 1);
    return true;
  }
  return false;
}

// The calls in `f` to functions whose body is here and may be inlined.
std::vector<llvm::CallBase*> inlinable_calls(llvm::Function& f) {
  std::vector<llvm::CallBase*> calls;
  for (llvm::Instruction& inst : llvm::instructions(f))
    if (auto* call = llvm::dyn_cast<llvm::CallBase>(&inst))
      if (llvm::Function* callee = call->getCalledFunction();
          callee && callee != &f && !callee->isDeclaration() &&
          !callee->hasFnAttribute(llvm::Attribute::NoInline))
        calls.push_back(call);
  return calls;
}

}  // namespace

llvm::PreservedAnalyses PartiallyEvaluate::run(llvm::Module& m, llvm::ModuleAnalysisManager& mam) {
  llvm::Function* entry = m.getFunction(entry_);
  if (!entry || entry->isDeclaration())
    fail("specializer: the module defines no function @{} to evaluate", entry_);
  llvm::FunctionAnalysisManager& fam =
      mam.getResult<llvm::FunctionAnalysisManagerModuleProxy>(m).getManager();
  llvm::FunctionPassManager propagate = propagation(*decl_, folded_);
  llvm::FunctionPassManager unroll;
  unroll.addPass(llvm::createFunctionToLoopPassAdaptor(
      llvm::LoopFullUnrollPass(3, /*OnlyWhenForced=*/true)));  // only the marked loops
  for (int level = 0; level < kMaxLevels; ++level) {
    propagate.run(*entry, fam);
    for (int lookups = 0; lookups < kMaxLookups && mark_first_static_lookup(*entry, fam);
         ++lookups) {
      unroll.run(*entry, fam);
      propagate.run(*entry, fam);
    }
    std::vector<llvm::CallBase*> calls = inlinable_calls(*entry);
    if (calls.empty()) break;
    for (llvm::CallBase* call : calls) {
      llvm::InlineFunctionInfo info;
      llvm::InlineFunction(*call, info);  // refused (e.g. varargs): stays a call
    }
    fam.invalidate(*entry, llvm::PreservedAnalyses::none());
  }
  return llvm::PreservedAnalyses::none();
}

}  // namespace exojit::specializer::detail
