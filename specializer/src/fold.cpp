// SPDX-License-Identifier: MIT
// Folding loads from invariant memory (fold.h).
#include <llvm/IR/Constants.h>
#include <llvm/IR/DataLayout.h>
#include <llvm/IR/GlobalVariable.h>
#include <llvm/IR/IRBuilder.h>
#include <llvm/IR/InstIterator.h>
#include <llvm/IR/Instructions.h>
#include <llvm/IR/IntrinsicInst.h>
#include <llvm/IR/Module.h>

#include <cstring>
#include <optional>

#include "exojit/error.h"
#include "fold_p.h"

namespace exojit::specializer::detail {

namespace {

// The absolute address `ptr` denotes when it is a constant (an integer made a pointer, plus
// constant offsets), else nothing.
std::optional<uintptr_t> constant_address(const llvm::Value* ptr, const llvm::DataLayout& dl) {
  llvm::APInt offset(dl.getIndexTypeSizeInBits(ptr->getType()), 0);
  const llvm::Value* base = ptr->stripAndAccumulateConstantOffsets(dl, offset, true);
  const auto* ce = llvm::dyn_cast<llvm::ConstantExpr>(base);
  if (!ce || ce->getOpcode() != llvm::Instruction::IntToPtr) return std::nullopt;
  const auto* value = llvm::dyn_cast<llvm::ConstantInt>(ce->getOperand(0));
  if (!value || value->getBitWidth() > 64) return std::nullopt;
  return uintptr_t(value->getZExtValue() + offset.getSExtValue());
}

// The constant of type `ty` that the `bytes` at `address` hold (host byte order), or null for
// types this pass does not build.
llvm::Constant* constant_at(llvm::Type* ty, uintptr_t address, const llvm::DataLayout& dl) {
  uint64_t bytes = dl.getTypeStoreSize(ty);
  if (bytes == 0 || bytes > 64) return nullptr;
  uint64_t words[8] = {};
  std::memcpy(words, reinterpret_cast<const void*>(address), bytes);
  llvm::LLVMContext& ctx = ty->getContext();
  if (ty->isPointerTy()) {
    llvm::Constant* v = llvm::ConstantInt::get(llvm::Type::getInt64Ty(ctx), words[0]);
    return llvm::ConstantExpr::getIntToPtr(v, ty);
  }
  unsigned bits = unsigned(dl.getTypeSizeInBits(ty));
  llvm::APInt value(unsigned(bytes * 8), llvm::ArrayRef<uint64_t>(words, (bytes + 7) / 8));
  llvm::Constant* c = llvm::ConstantInt::get(ctx, value.trunc(bits));
  if (ty->isIntegerTy()) return c;
  if (ty->isFloatingPointTy() || ty->isVectorTy()) return llvm::ConstantExpr::getBitCast(c, ty);
  return nullptr;
}

bool overlaps_invariant(const Declaration& decl, uintptr_t address, uint64_t size) {
  for (const Range& r : decl.invariants)
    if (address < r.address + r.size && r.address < address + size) return true;
  return false;
}

}  // namespace

size_t fold_invariant_loads(llvm::Function& f, const Declaration& decl) {
  const llvm::DataLayout& dl = f.getParent()->getDataLayout();
  size_t folded = 0;
  for (llvm::Instruction& inst : llvm::make_early_inc_range(llvm::instructions(f))) {
    if (auto* load = llvm::dyn_cast<llvm::LoadInst>(&inst)) {
      if (!load->isSimple()) continue;  // volatile or atomic: it means to see changes
      auto address = constant_address(load->getPointerOperand(), dl);
      if (!address || !decl.is_invariant(*address, dl.getTypeStoreSize(load->getType()))) continue;
      llvm::Constant* c = constant_at(load->getType(), *address, dl);
      if (!c) continue;
      load->replaceAllUsesWith(c);
      load->eraseFromParent();
      ++folded;
    } else if (auto* copy = llvm::dyn_cast<llvm::MemTransferInst>(&inst)) {
      // A copy out of invariant memory copies a constant: give it a constant source.
      auto* length = llvm::dyn_cast<llvm::ConstantInt>(copy->getLength());
      if (!length || copy->isVolatile() || length->getZExtValue() > 4096) continue;
      auto address = constant_address(copy->getRawSource(), dl);
      size_t n = size_t(length->getZExtValue());
      if (!address || !decl.is_invariant(*address, n)) continue;
      llvm::Module& m = *f.getParent();
      llvm::Constant* data = llvm::ConstantDataArray::get(
          m.getContext(), llvm::ArrayRef<uint8_t>(reinterpret_cast<const uint8_t*>(*address), n));
      auto* gv = new llvm::GlobalVariable(m, data->getType(), true,
                                          llvm::GlobalValue::PrivateLinkage, data, "invariant");
      gv->setUnnamedAddr(llvm::GlobalValue::UnnamedAddr::Global);
      copy->setSource(llvm::ConstantExpr::getPointerCast(gv, copy->getRawSource()->getType()));
      ++folded;
    }
  }
  return folded;
}

llvm::PreservedAnalyses FoldInvariantLoads::run(llvm::Function& f, llvm::FunctionAnalysisManager&) {
  size_t n = fold_invariant_loads(f, *decl_);
  *folded_ += n;
  return n ? llvm::PreservedAnalyses::none() : llvm::PreservedAnalyses::all();
}

void check_no_invariant_writes(const llvm::Function& f, const Declaration& decl) {
  const llvm::DataLayout& dl = f.getParent()->getDataLayout();
  for (const llvm::Instruction& inst : llvm::instructions(f)) {
    const llvm::Value* ptr = nullptr;
    uint64_t size = 0;
    if (const auto* store = llvm::dyn_cast<llvm::StoreInst>(&inst)) {
      ptr = store->getPointerOperand();
      size = dl.getTypeStoreSize(store->getValueOperand()->getType());
    } else if (const auto* rmw = llvm::dyn_cast<llvm::AtomicRMWInst>(&inst)) {
      ptr = rmw->getPointerOperand();
      size = dl.getTypeStoreSize(rmw->getType());
    } else if (const auto* cas = llvm::dyn_cast<llvm::AtomicCmpXchgInst>(&inst)) {
      ptr = cas->getPointerOperand();
      size = dl.getTypeStoreSize(cas->getCompareOperand()->getType());
    } else if (const auto* mem = llvm::dyn_cast<llvm::MemIntrinsic>(&inst)) {
      ptr = mem->getRawDest();
      const auto* length = llvm::dyn_cast<llvm::ConstantInt>(mem->getLength());
      size = length ? length->getZExtValue() : ~uint64_t(0) >> 1;
    }
    if (!ptr) continue;
    auto address = constant_address(ptr, dl);
    if (address && overlaps_invariant(decl, *address, size))
      fail(
          "specializing @{}: the residual code writes {} bytes at 0x{:x}, memory declared "
          "invariant",
          decl.function, size, *address);
  }
}

}  // namespace exojit::specializer::detail
