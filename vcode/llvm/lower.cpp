// SPDX-License-Identifier: MIT
// vcode IR -> LLVM IR (see lower.h). Semantics follow interp.h exactly where the interpreter
// defines a result; where it reports an error (division by zero, a float out of an integer's
// range), the machine traps and the LLVM code may do anything, as the fast tier may.
#include <llvm/IR/IRBuilder.h>
#include <llvm/IR/Intrinsics.h>
#include <llvm/IR/IntrinsicsX86.h>

#include <bit>
#include <vector>

#include "../src/crc32c_p.h"
#include "exojit/error.h"
#include "lower_p.h"

namespace exojit::vcode::detail {

namespace {

// Without SSE4.2, crc32c calls this (the bitwise definition).
uint32_t crc32c_fallback(uint32_t crc, uint64_t data, uint32_t bytes) {
  return crc32c_update(crc, data, int(bytes));
}

llvm::Type* llvm_type(llvm::LLVMContext& ctx, Type t) {
  switch (t) {
    case Type::I8:
    case Type::U8:
      return llvm::Type::getInt8Ty(ctx);
    case Type::I16:
    case Type::U16:
      return llvm::Type::getInt16Ty(ctx);
    case Type::I32:
    case Type::U32:
      return llvm::Type::getInt32Ty(ctx);
    case Type::I64:
    case Type::U64:
    case Type::P:  // pointers are 64-bit integers; memory accesses cast them
      return llvm::Type::getInt64Ty(ctx);
    case Type::F32:
      return llvm::Type::getFloatTy(ctx);
    case Type::F64:
      return llvm::Type::getDoubleTy(ctx);
    case Type::Void:
      return llvm::Type::getVoidTy(ctx);
    default:
      return llvm::FixedVectorType::get(llvm::Type::getIntNTy(ctx, unsigned(lane_bits(t))),
                                        unsigned(lane_count(t)));
  }
}

class FunctionLowering {
 public:
  FunctionLowering(const Module& m, const Function& f, llvm::Function* fn,
                   const std::vector<llvm::Function*>& fns, bool sse42)
      : m_(m), f_(f), fn_(fn), fns_(fns), ctx_(fn->getContext()), b_(ctx_), sse42_(sse42) {}

  void run();

 private:
  llvm::Type* type(Type t) const;
  llvm::Value* get(uint32_t r) { return b_.CreateLoad(type(f_.regs[r].type), slots_[r]); }
  void put(uint32_t r, llvm::Value* v) { b_.CreateStore(v, slots_[r]); }
  llvm::Constant* imm(Type t, int64_t v) const;
  llvm::Value* second(const Insn& in) {
    return (in.flags & kImm) ? imm(in.type, in.imm) : get(in.b);
  }
  llvm::BasicBlock* block_at(uint32_t label) { return labels_[label]; }
  void start_block(llvm::BasicBlock* bb);
  llvm::Value* address(const Insn& in);
  llvm::Value* widen_to(llvm::Value* v, Type from, llvm::Type* to);

  void binary(const Insn& in);
  void vector_insn(const Insn& in);
  void unary(const Insn& in);
  void convert(const Insn& in);
  void cksum(const Insn& in);
  void cksum_fold(const Insn& in);
  void crc32c(const Insn& in);
  void load(const Insn& in);
  void store(const Insn& in);
  void branch(const Insn& in);
  void call(const Insn& in);
  void ret(const Insn& in);

  const Module& m_;
  const Function& f_;
  llvm::Function* fn_;
  const std::vector<llvm::Function*>& fns_;
  llvm::LLVMContext& ctx_;
  llvm::IRBuilder<> b_;
  bool sse42_;
  std::vector<llvm::AllocaInst*> slots_;
  std::vector<llvm::AllocaInst*> locals_;
  std::vector<llvm::BasicBlock*> labels_;
  std::vector<llvm::BasicBlock*> address_taken_;
  std::vector<llvm::IndirectBrInst*> indirect_;
};

llvm::Type* FunctionLowering::type(Type t) const {
  return llvm_type(ctx_, t);
}

llvm::Constant* FunctionLowering::imm(Type t, int64_t v) const {
  if (t == Type::F32)
    return llvm::ConstantFP::get(llvm::Type::getFloatTy(ctx_), std::bit_cast<double>(v));
  if (t == Type::F64)
    return llvm::ConstantFP::get(llvm::Type::getDoubleTy(ctx_), std::bit_cast<double>(v));
  if (is_vector(t))
    return llvm::ConstantVector::getSplat(
        llvm::ElementCount::getFixed(unsigned(lane_count(t))),
        llvm::ConstantInt::get(llvm::Type::getIntNTy(ctx_, unsigned(lane_bits(t))), uint64_t(v)));
  return llvm::ConstantInt::get(type(t), uint64_t(v));
}

void FunctionLowering::start_block(llvm::BasicBlock* bb) {
  if (!b_.GetInsertBlock()->getTerminator()) b_.CreateBr(bb);
  b_.SetInsertPoint(bb);
}

// An integer of type `from` (canonical: extended by its own signedness) to the wider `to`.
llvm::Value* FunctionLowering::widen_to(llvm::Value* v, Type from, llvm::Type* to) {
  return is_signed(from) ? b_.CreateSExtOrTrunc(v, to) : b_.CreateZExtOrTrunc(v, to);
}

llvm::Value* FunctionLowering::address(const Insn& in) {
  llvm::Value* base;
  if (in.flags & kLocalBase)
    base = b_.CreatePtrToInt(locals_[in.a], b_.getInt64Ty());
  else
    base = get(in.a);
  if (in.flags & kIndex) base = b_.CreateAdd(base, get(in.b));
  if (in.imm) base = b_.CreateAdd(base, b_.getInt64(uint64_t(in.imm)));
  return b_.CreateIntToPtr(base, llvm::PointerType::getUnqual(type(in.type)));
}

void FunctionLowering::binary(const Insn& in) {
  const Type t = in.type;
  if (is_vector(t)) return vector_insn(in);
  llvm::Value* a = get(in.a);
  llvm::Value* b = second(in);
  llvm::Value* r = nullptr;
  if (is_float(t)) {
    switch (in.op) {
      case Op::Add:
        r = b_.CreateFAdd(a, b);
        break;
      case Op::Sub:
        r = b_.CreateFSub(a, b);
        break;
      case Op::Mul:
        r = b_.CreateFMul(a, b);
        break;
      default:
        r = b_.CreateFDiv(a, b);
    }
    return put(in.dst, r);
  }
  const int bits = type_bits(t);
  switch (in.op) {
    case Op::Add:
      r = b_.CreateAdd(a, b);
      break;
    case Op::Sub:
      r = b_.CreateSub(a, b);
      break;
    case Op::Mul:
      r = b_.CreateMul(a, b);
      break;
    case Op::Div:
    case Op::Mod: {
      // 8/16-bit values divide in 32 bits: x / -1 is then defined, as in the interpreter.
      llvm::Type* w = bits < 32 ? b_.getInt32Ty() : type(t);
      llvm::Value* x = widen_to(a, t, w);
      llvm::Value* y = widen_to(b, t, w);
      llvm::Value* q;
      if (is_signed(t))
        q = in.op == Op::Div ? b_.CreateSDiv(x, y) : b_.CreateSRem(x, y);
      else
        q = in.op == Op::Div ? b_.CreateUDiv(x, y) : b_.CreateURem(x, y);
      r = b_.CreateTrunc(q, type(t));
      break;
    }
    case Op::And:
      r = b_.CreateAnd(a, b);
      break;
    case Op::Or:
      r = b_.CreateOr(a, b);
      break;
    case Op::Xor:
      r = b_.CreateXor(a, b);
      break;
    default: {  // Lsh, Rsh: the count modulo 32 (or 64), the shift done in 32 (or 64) bits
      llvm::Type* w = bits < 32 ? b_.getInt32Ty() : type(t);
      llvm::Value* x = widen_to(a, t, w);
      llvm::Value* c = (in.flags & kImm) ? llvm::ConstantInt::get(w, uint64_t(in.imm))
                                         : b_.CreateZExtOrTrunc(b, w);
      c = b_.CreateAnd(c, llvm::ConstantInt::get(w, bits == 64 ? 63 : 31));
      llvm::Value* s = in.op == Op::Lsh ? b_.CreateShl(x, c)
                       : is_signed(t)   ? b_.CreateAShr(x, c)
                                        : b_.CreateLShr(x, c);
      r = b_.CreateTrunc(s, type(t));
    }
  }
  put(in.dst, r);
}

void FunctionLowering::vector_insn(const Insn& in) {
  const Type t = in.type;
  llvm::Value* r = nullptr;
  switch (in.op) {
    case Op::Add:
      r = b_.CreateAdd(get(in.a), get(in.b));
      break;
    case Op::Sub:
      r = b_.CreateSub(get(in.a), get(in.b));
      break;
    case Op::And:
      r = b_.CreateAnd(get(in.a), get(in.b));
      break;
    case Op::Or:
      r = b_.CreateOr(get(in.a), get(in.b));
      break;
    case Op::Xor:
      r = b_.CreateXor(get(in.a), get(in.b));
      break;
    case Op::Lsh:
      r = b_.CreateShl(get(in.a), imm(t, in.imm));
      break;
    case Op::Rsh:
      r = b_.CreateLShr(get(in.a), imm(t, in.imm));
      break;
    case Op::Mov:
      r = b_.CreateBitCast(get(in.a), type(t));
      break;
    case Op::Set:
      r = imm(t, in.imm);
      break;
    case Op::Splat:
      // The scalar as the interpreter holds it (extended by its signedness), cut to the lane.
      r = b_.CreateVectorSplat(
          unsigned(lane_count(t)),
          widen_to(get(in.a), f_.regs[in.a].type, b_.getIntNTy(unsigned(lane_bits(t)))));
      break;
    case Op::Widen: {
      const int n = lane_count(t);
      std::vector<int> half;
      for (int i = 0; i < n; ++i) half.push_back(int(in.imm) * n + i);
      llvm::Value* a = get(in.a);
      r = b_.CreateZExt(b_.CreateShuffleVector(a, half), type(t));
      break;
    }
    case Op::Shuf: {
      // Bytes within each 128-bit lane.
      const int bytes = vector_bits(t) / 8;
      llvm::Type* byte_vec = llvm::FixedVectorType::get(b_.getInt8Ty(), unsigned(bytes));
      std::vector<int> mask;
      for (int i = 0; i < bytes; ++i)
        mask.push_back((i & ~15) + int((uint64_t(in.imm) >> (4 * (i & 15))) & 15));
      llvm::Value* a = b_.CreateBitCast(get(in.a), byte_vec);
      r = b_.CreateBitCast(b_.CreateShuffleVector(a, mask), type(t));
      break;
    }
    default:
      fail("llvm tier: {} has no vector form", op_name(in.op));
  }
  put(in.dst, r);
}

void FunctionLowering::unary(const Insn& in) {
  const Type t = in.type;
  llvm::Value* a = get(in.a);
  llvm::Value* r;
  switch (in.op) {
    case Op::Neg:
      r = is_float(t) ? b_.CreateFNeg(a) : b_.CreateNeg(a);
      break;
    case Op::Com:
      r = b_.CreateNot(a);
      break;
    case Op::Not:
      r = b_.CreateZExt(b_.CreateICmpEQ(a, llvm::Constant::getNullValue(a->getType())), type(t));
      break;
    case Op::Mov:
      r = a;
      break;
    default:  // Bswap
      r = b_.CreateUnaryIntrinsic(llvm::Intrinsic::bswap, a);
  }
  put(in.dst, r);
}

void FunctionLowering::convert(const Insn& in) {
  const Type t = in.type, s = f_.regs[in.a].type;
  llvm::Value* a = get(in.a);
  llvm::Type* to = type(t);
  llvm::Value* r;
  if (is_float(t) && is_float(s)) {
    r = t == s ? a : b_.CreateFPCast(a, to);
  } else if (is_float(t)) {
    r = is_signed(s) ? b_.CreateSIToFP(a, to) : b_.CreateUIToFP(a, to);
  } else if (is_float(s)) {
    // As the interpreter: to u64 directly, else through i64 and wrapped to the width.
    r = t == Type::U64 ? b_.CreateFPToUI(a, to)
                       : b_.CreateTrunc(b_.CreateFPToSI(a, b_.getInt64Ty()), to);
  } else {
    r = type_bits(s) < type_bits(t) ? widen_to(a, s, to) : b_.CreateTrunc(a, to);
  }
  put(in.dst, r);
}

// One's-complement accumulate: the add's carry comes back in at the bottom (add + adc).
void FunctionLowering::cksum(const Insn& in) {
  llvm::Type* t = type(in.type);
  llvm::Value* a = get(in.a);
  llvm::Value* b = (in.flags & kImm) ? imm(in.type, in.imm) : b_.CreateZExt(get(in.b), t);
  llvm::Value* sum = b_.CreateBinaryIntrinsic(llvm::Intrinsic::uadd_with_overflow, a, b);
  llvm::Value* carry = b_.CreateZExt(b_.CreateExtractValue(sum, 1), t);
  put(in.dst, b_.CreateAdd(b_.CreateExtractValue(sum, 0), carry));
}

// Folds to 16 bits: 64 -> 32 -> 16 with end-around carries, twice each; the same value as the
// interpreter's loop (same residue modulo 0xffff, zero only for zero).
void FunctionLowering::cksum_fold(const Insn& in) {
  llvm::Value* s = b_.CreateZExt(get(in.a), b_.getInt64Ty());
  for (int width : {32, 32, 16, 16}) {
    llvm::Value* low = b_.CreateAnd(s, b_.getInt64((uint64_t(1) << width) - 1));
    s = b_.CreateAdd(low, b_.CreateLShr(s, b_.getInt64(uint64_t(width))));
  }
  put(in.dst, b_.CreateTrunc(s, type(in.type)));
}

void FunctionLowering::crc32c(const Insn& in) {
  const Type dt = f_.regs[in.b].type;
  llvm::Value* crc = get(in.a);
  llvm::Value* data = get(in.b);
  llvm::Value* r;
  if (sse42_) {
    llvm::Module* mod = fn_->getParent();
    switch (dt) {
      case Type::U8:
        r = b_.CreateCall(
            llvm::Intrinsic::getDeclaration(mod, llvm::Intrinsic::x86_sse42_crc32_32_8),
            {crc, data});
        break;
      case Type::U16:
        r = b_.CreateCall(
            llvm::Intrinsic::getDeclaration(mod, llvm::Intrinsic::x86_sse42_crc32_32_16),
            {crc, data});
        break;
      case Type::U32:
        r = b_.CreateCall(
            llvm::Intrinsic::getDeclaration(mod, llvm::Intrinsic::x86_sse42_crc32_32_32),
            {crc, data});
        break;
      default:
        r = b_.CreateTrunc(b_.CreateCall(llvm::Intrinsic::getDeclaration(
                                             mod, llvm::Intrinsic::x86_sse42_crc32_64_64),
                                         {b_.CreateZExt(crc, b_.getInt64Ty()), data}),
                           b_.getInt32Ty());
    }
  } else {
    auto* fty = llvm::FunctionType::get(b_.getInt32Ty(),
                                        {b_.getInt32Ty(), b_.getInt64Ty(), b_.getInt32Ty()}, false);
    llvm::Value* callee = b_.CreateIntToPtr(
        b_.getInt64(reinterpret_cast<uintptr_t>(&crc32c_fallback)), fty->getPointerTo());
    r = b_.CreateCall(fty, callee,
                      {crc, b_.CreateZExt(data, b_.getInt64Ty()), b_.getInt32(type_bytes(dt))});
  }
  put(in.dst, r);
}

void FunctionLowering::load(const Insn& in) {
  const Type t = in.type;
  llvm::Value* p = address(in);
  const unsigned bytes = unsigned(type_bytes(t));
  llvm::Value* v = b_.CreateAlignedLoad(type(t), p, llvm::Align(in.op == Op::Ld ? bytes : 1), "");
  if (in.op == Op::Ldbe && bytes > 1) v = b_.CreateUnaryIntrinsic(llvm::Intrinsic::bswap, v);
  put(in.dst, v);
}

void FunctionLowering::store(const Insn& in) {
  const Type t = in.type;
  llvm::Value* v = get(in.dst);
  const unsigned bytes = unsigned(type_bytes(t));
  if (in.op == Op::Stbe && bytes > 1) v = b_.CreateUnaryIntrinsic(llvm::Intrinsic::bswap, v);
  b_.CreateAlignedStore(v, address(in), llvm::Align(in.op == Op::St ? bytes : 1));
}

void FunctionLowering::branch(const Insn& in) {
  const Type t = in.type;
  llvm::Value* a = get(in.a);
  llvm::Value* b = second(in);
  llvm::Value* c;
  if (is_float(t)) {  // C semantics: false when unordered, except !=
    switch (in.op) {
      case Op::Blt:
        c = b_.CreateFCmpOLT(a, b);
        break;
      case Op::Ble:
        c = b_.CreateFCmpOLE(a, b);
        break;
      case Op::Bgt:
        c = b_.CreateFCmpOGT(a, b);
        break;
      case Op::Bge:
        c = b_.CreateFCmpOGE(a, b);
        break;
      case Op::Beq:
        c = b_.CreateFCmpOEQ(a, b);
        break;
      default:
        c = b_.CreateFCmpUNE(a, b);
    }
  } else {
    const bool s = is_signed(t);
    switch (in.op) {
      case Op::Blt:
        c = s ? b_.CreateICmpSLT(a, b) : b_.CreateICmpULT(a, b);
        break;
      case Op::Ble:
        c = s ? b_.CreateICmpSLE(a, b) : b_.CreateICmpULE(a, b);
        break;
      case Op::Bgt:
        c = s ? b_.CreateICmpSGT(a, b) : b_.CreateICmpUGT(a, b);
        break;
      case Op::Bge:
        c = s ? b_.CreateICmpSGE(a, b) : b_.CreateICmpUGE(a, b);
        break;
      case Op::Beq:
        c = b_.CreateICmpEQ(a, b);
        break;
      default:
        c = b_.CreateICmpNE(a, b);
    }
  }
  llvm::BasicBlock* next = llvm::BasicBlock::Create(ctx_, "", fn_);
  b_.CreateCondBr(c, block_at(in.dst), next);
  b_.SetInsertPoint(next);
}

void FunctionLowering::call(const Insn& in) {
  const bool ext = in.flags & kExtern;
  const Signature& sig =
      ext ? m_.externs()[size_t(in.imm)].sig : m_.functions()[size_t(in.imm)]->sig;
  std::vector<llvm::Type*> params;
  for (Type p : sig.params) params.push_back(type(p));
  auto* fty = llvm::FunctionType::get(type(sig.ret), params, false);
  std::vector<llvm::Value*> args;
  for (uint32_t k = 0; k < in.b; ++k) args.push_back(get(f_.call_args[in.a + k]));
  llvm::CallInst* r;
  if (ext) {
    auto addr = reinterpret_cast<uintptr_t>(m_.externs()[size_t(in.imm)].address);
    llvm::Value* callee = b_.CreateIntToPtr(b_.getInt64(addr), fty->getPointerTo());
    r = b_.CreateCall(fty, callee, args);
  } else {
    r = b_.CreateCall(fns_[size_t(in.imm)], args);
  }
  if (in.flags & kVoid) return;
  // Narrow C results: the register holds its canonical form, which the type gives.
  put(in.dst, r);
}

void FunctionLowering::ret(const Insn& in) {
  if (in.flags & kVoid) {
    b_.CreateRetVoid();
  } else if (in.flags & kImm) {
    b_.CreateRet(imm(f_.sig.ret, in.imm));
  } else {
    b_.CreateRet(get(in.a));
  }
  b_.SetInsertPoint(llvm::BasicBlock::Create(ctx_, "", fn_));  // dead code until a label
}

void FunctionLowering::run() {
  llvm::BasicBlock* entry = llvm::BasicBlock::Create(ctx_, "entry", fn_);
  b_.SetInsertPoint(entry);
  for (const RegInfo& ri : f_.regs) slots_.push_back(b_.CreateAlloca(type(ri.type)));
  for (const LocalInfo& l : f_.locals) {
    auto* a = b_.CreateAlloca(llvm::ArrayType::get(b_.getInt8Ty(), l.size));
    a->setAlignment(llvm::Align(std::max<uint32_t>(l.align, 16)));
    // Locals start zeroed, as the interpreter's frame does.
    b_.CreateMemSet(a, b_.getInt8(0), b_.getInt64(l.size), llvm::MaybeAlign(a->getAlign()));
    locals_.push_back(a);
  }
  for (size_t k = 0; k < f_.params.size(); ++k) put(f_.params[k].id, fn_->getArg(unsigned(k)));
  for (uint32_t l = 0; l < f_.num_labels; ++l)
    labels_.push_back(llvm::BasicBlock::Create(ctx_, f_.label_label(l), fn_));
  llvm::BasicBlock* body = llvm::BasicBlock::Create(ctx_, "body", fn_);
  b_.CreateBr(body);
  b_.SetInsertPoint(body);

  for (const Insn& in : f_.code) {
    switch (in.op) {
      case Op::Add:
      case Op::Sub:
      case Op::Mul:
      case Op::Div:
      case Op::Mod:
      case Op::And:
      case Op::Or:
      case Op::Xor:
      case Op::Lsh:
      case Op::Rsh:
        binary(in);
        break;
      case Op::Neg:
      case Op::Com:
      case Op::Not:
      case Op::Mov:
      case Op::Bswap:
        if (is_vector(in.type))
          vector_insn(in);
        else
          unary(in);
        break;
      case Op::Cvt:
        convert(in);
        break;
      case Op::Set:
        put(in.dst, imm(in.type, in.imm));
        break;
      case Op::Cksum:
        cksum(in);
        break;
      case Op::CksumFold:
        cksum_fold(in);
        break;
      case Op::BoundMask:  // icmp + sext: LLVM selects cmp + sbb/setcc, branch-free
        put(in.dst, b_.CreateSExt(b_.CreateICmpULE(get(in.a), second(in)), type(in.type)));
        break;
      case Op::BoundZero:  // icmp + select: LLVM selects cmov/csel, branch-free
        put(in.dst, b_.CreateSelect(b_.CreateICmpULE(get(in.a), second(in)), get(in.dst),
                                    llvm::Constant::getNullValue(type(in.type))));
        break;
      case Op::Crc32c:
        crc32c(in);
        break;
      case Op::Splat:
      case Op::Widen:
      case Op::Shuf:
        vector_insn(in);
        break;
      case Op::Hsum: {
        const Type s = f_.regs[in.a].type;
        auto* wide = llvm::FixedVectorType::get(b_.getInt64Ty(), unsigned(lane_count(s)));
        llvm::Value* sum = b_.CreateAddReduce(b_.CreateZExt(get(in.a), wide));
        put(in.dst, b_.CreateTrunc(sum, type(in.type)));
        break;
      }
      case Op::Ld:
      case Op::Ldu:
      case Op::Ldbe:
        load(in);
        break;
      case Op::St:
      case Op::Stu:
      case Op::Stbe:
        store(in);
        break;
      case Op::AddrL:
        put(in.dst, b_.CreatePtrToInt(locals_[in.a], b_.getInt64Ty()));
        break;
      case Op::Blt:
      case Op::Ble:
      case Op::Bgt:
      case Op::Bge:
      case Op::Beq:
      case Op::Bne:
        branch(in);
        break;
      case Op::Jmp:
        b_.CreateBr(block_at(in.dst));
        b_.SetInsertPoint(llvm::BasicBlock::Create(ctx_, "", fn_));
        break;
      case Op::Jmpr: {
        llvm::Value* target = b_.CreateIntToPtr(get(in.a), b_.getInt8PtrTy());
        indirect_.push_back(b_.CreateIndirectBr(target));
        b_.SetInsertPoint(llvm::BasicBlock::Create(ctx_, "", fn_));
        break;
      }
      case Op::La: {
        llvm::BasicBlock* bb = block_at(in.dst);
        if (std::find(address_taken_.begin(), address_taken_.end(), bb) == address_taken_.end())
          address_taken_.push_back(bb);
        put(in.a, b_.CreatePtrToInt(llvm::BlockAddress::get(fn_, bb), b_.getInt64Ty()));
        break;
      }
      case Op::Place:
        start_block(block_at(in.dst));
        break;
      case Op::Call:
        call(in);
        break;
      case Op::Ret:
        ret(in);
        break;
    }
  }
  if (!b_.GetInsertBlock()->getTerminator()) b_.CreateUnreachable();  // (dead: verified IR)
  for (llvm::IndirectBrInst* ib : indirect_)
    for (llvm::BasicBlock* bb : address_taken_) ib->addDestination(bb);
}

}  // namespace

std::unique_ptr<llvm::Module> lower_to_llvm(const Module& m, llvm::LLVMContext& ctx,
                                            const std::string& prefix, bool host_has_sse42) {
  auto mod = std::make_unique<llvm::Module>(prefix + "module", ctx);
  std::vector<llvm::Function*> fns;
  for (const auto& fp : m.functions()) {
    const Function& f = *fp;
    std::vector<llvm::Type*> params;
    for (Type p : f.sig.params) params.push_back(llvm_type(ctx, p));
    auto* fty = llvm::FunctionType::get(llvm_type(ctx, f.sig.ret), params, false);
    fns.push_back(
        llvm::Function::Create(fty, llvm::Function::ExternalLinkage, prefix + f.name, mod.get()));
    // Frames over a page probe the stack as they are allocated, as the fast tier's do
    // (../src/stack_probe_p.h): LLVM's inline probes, every 4 KiB ("stack-probe-size"'s default).
    fns.back()->addFnAttr("probe-stack", "inline-asm");
  }
  for (size_t i = 0; i < fns.size(); ++i) {
    FunctionLowering lowering(m, *m.functions()[i], fns[i], fns, host_has_sse42);
    lowering.run();
  }
  return mod;
}

}  // namespace exojit::vcode::detail
