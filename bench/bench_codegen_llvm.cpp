// SPDX-License-Identifier: MIT
// codegen/llvm_O0: the program of codegen_program.h through LLVM 14's ORC LLJIT at O0.
//
// One LLJIT (and one LLVMContext) serves every iteration, as a JIT embedding LLVM would use it.
// Each iteration builds a fresh module with IRBuilder (SSA values per register, phis where
// branches join), adds it under its own ResourceTracker, looks the function up (which compiles
// it: FastISel and the fast register allocator, codegen opt level None), then removes the
// tracker so the code memory is freed.
#include <benchmark/benchmark.h>
#include <llvm-c/Disassembler.h>
#include <llvm/ExecutionEngine/Orc/JITTargetMachineBuilder.h>
#include <llvm/ExecutionEngine/Orc/LLJIT.h>
#include <llvm/ExecutionEngine/Orc/ThreadSafeModule.h>
#include <llvm/IR/IRBuilder.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>
#include <llvm/Support/TargetSelect.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "codegen_program.h"

namespace exojit::bench {

namespace {

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "bench_codegen (llvm): %s\n", what.c_str());
  std::abort();
}

template <typename T>
T check(llvm::Expected<T> v, const char* what) {
  if (!v) die(std::string(what) + ": " + llvm::toString(v.takeError()));
  return std::move(*v);
}

void check(llvm::Error e, const char* what) {
  if (e) die(std::string(what) + ": " + llvm::toString(std::move(e)));
}

struct Jit {
  std::unique_ptr<llvm::orc::LLJIT> jit;
  llvm::orc::ThreadSafeContext context{std::make_unique<llvm::LLVMContext>()};
};

Jit& jit() {
  static Jit* instance = [] {
    llvm::InitializeNativeTarget();
    llvm::InitializeNativeTargetAsmPrinter();
    auto jtmb = check(llvm::orc::JITTargetMachineBuilder::detectHost(), "detectHost");
    jtmb.setCodeGenOptLevel(llvm::CodeGenOpt::None);
    auto* j = new Jit;
    j->jit = check(llvm::orc::LLJITBuilder().setJITTargetMachineBuilder(std::move(jtmb)).create(),
                   "LLJIT");
    return j;
  }();
  return *instance;
}

// Builds `uint64_t fn(uint64_t* mem, uint64_t x)` for the program into a new module.
std::unique_ptr<llvm::Module> build_module(llvm::LLVMContext& ctx, const Program& p) {
  auto mod = std::make_unique<llvm::Module>("bench", ctx);
  llvm::Type* i64 = llvm::Type::getInt64Ty(ctx);
  llvm::Type* ptr = llvm::Type::getInt64PtrTy(ctx);
  auto* fn = llvm::Function::Create(llvm::FunctionType::get(i64, {ptr, i64}, false),
                                    llvm::Function::ExternalLinkage, "fn", mod.get());
  llvm::IRBuilder<> b(llvm::BasicBlock::Create(ctx, "entry", fn));
  llvm::Value* mem = fn->getArg(0);
  using Regs = std::array<llvm::Value*, kRegs>;
  Regs r;
  r.fill(fn->getArg(1));

  struct Incoming {
    llvm::BasicBlock* from;
    Regs values;
  };
  struct LabelInfo {
    llvm::BasicBlock* block = nullptr;
    std::vector<Incoming> incoming;
  };
  std::vector<LabelInfo> labels(p.num_labels);
  auto imm = [&](int32_t v) { return llvm::ConstantInt::get(i64, uint64_t(int64_t(v))); };
  auto word = [&](int32_t off) {
    return b.CreateConstInBoundsGEP1_64(i64, mem, uint64_t(off / 8));
  };

  for (const Step& s : p.steps) {
    switch (s.kind) {
      case Kind::Bin:
      case Kind::BinI: {
        llvm::Value* x = r[s.a];
        llvm::Value* y = s.kind == Kind::BinI ? imm(s.imm) : r[s.b];
        switch (Alu(s.op)) {
          case Alu::Add:
            r[s.d] = b.CreateAdd(x, y);
            break;
          case Alu::Sub:
            r[s.d] = b.CreateSub(x, y);
            break;
          case Alu::Xor:
            r[s.d] = b.CreateXor(x, y);
            break;
          case Alu::And:
            r[s.d] = b.CreateAnd(x, y);
            break;
          case Alu::Or:
            r[s.d] = b.CreateOr(x, y);
            break;
          case Alu::Mul:
            r[s.d] = b.CreateMul(x, y);
            break;
          case Alu::Shl:
            r[s.d] = b.CreateShl(x, y);
            break;  // immediate counts only, < 64
          case Alu::Shr:
            r[s.d] = b.CreateLShr(x, y);
            break;
        }
        break;
      }
      case Kind::Load:
        r[s.d] = b.CreateAlignedLoad(i64, word(s.imm), llvm::Align(8));
        break;
      case Kind::Store:
        b.CreateAlignedStore(r[s.a], word(s.imm), llvm::Align(8));
        break;
      case Kind::BrR:
      case Kind::BrI: {
        llvm::Value* y = s.kind == Kind::BrI ? imm(s.imm) : r[s.b];
        llvm::Value* c = nullptr;
        switch (Cond(s.op)) {
          case Cond::Lt:
            c = b.CreateICmpULT(r[s.a], y);
            break;
          case Cond::Le:
            c = b.CreateICmpULE(r[s.a], y);
            break;
          case Cond::Gt:
            c = b.CreateICmpUGT(r[s.a], y);
            break;
          case Cond::Ge:
            c = b.CreateICmpUGE(r[s.a], y);
            break;
          case Cond::Eq:
            c = b.CreateICmpEQ(r[s.a], y);
            break;
          case Cond::Ne:
            c = b.CreateICmpNE(r[s.a], y);
            break;
        }
        LabelInfo& l = labels[s.label];
        if (!l.block) l.block = llvm::BasicBlock::Create(ctx);  // inserted where it is placed
        auto* next = llvm::BasicBlock::Create(ctx, "", fn);
        b.CreateCondBr(c, l.block, next);
        l.incoming.push_back(Incoming{b.GetInsertBlock(), r});
        b.SetInsertPoint(next);
        break;
      }
      case Kind::Place: {
        LabelInfo& l = labels[s.label];
        if (!l.block) l.block = llvm::BasicBlock::Create(ctx);
        b.CreateBr(l.block);
        l.incoming.push_back(Incoming{b.GetInsertBlock(), r});
        l.block->insertInto(fn);
        b.SetInsertPoint(l.block);
        for (int i = 0; i < kRegs; ++i) {
          bool same = true;
          for (const Incoming& in : l.incoming) same = same && in.values[size_t(i)] == r[size_t(i)];
          if (same) continue;
          llvm::PHINode* phi = b.CreatePHI(i64, unsigned(l.incoming.size()));
          for (const Incoming& in : l.incoming) phi->addIncoming(in.values[size_t(i)], in.from);
          r[size_t(i)] = phi;
        }
        break;
      }
      case Kind::Ret:
        b.CreateRet(r[s.a]);
        break;
    }
  }
  return mod;
}

// Compiles the program; returns the tracker owning the code and the function's address.
std::pair<llvm::orc::ResourceTrackerSP, uint64_t> compile(const Program& p) {
  Jit& j = jit();
  std::unique_ptr<llvm::Module> mod;
  {
    auto lock = j.context.getLock();
    mod = build_module(*j.context.getContext(), p);
  }
  llvm::orc::ResourceTrackerSP rt = j.jit->getMainJITDylib().createResourceTracker();
  check(j.jit->addIRModule(rt, llvm::orc::ThreadSafeModule(std::move(mod), j.context)),
        "addIRModule");
  llvm::JITEvaluatedSymbol sym = check(j.jit->lookup("fn"), "lookup");
  return {rt, sym.getAddress()};
}

// Counts the instructions from `code` to its (single, final) ret. At O0 LLVM lays the blocks
// out in IR order and the return block is the last one.
size_t count_to_ret(const uint8_t* code) {
  LLVMInitializeX86Disassembler();
  LLVMDisasmContextRef dc =
      LLVMCreateDisasm("x86_64-unknown-linux-gnu", nullptr, 0, nullptr, nullptr);
  if (!dc) die("no x86-64 disassembler");
  LLVMSetDisasmOptions(dc, LLVMDisassembler_Option_AsmPrinterVariant);
  size_t count = 0, pos = 0;
  char text[128];
  for (;;) {
    size_t n =
        LLVMDisasmInstruction(dc, const_cast<uint8_t*>(code + pos), 16, pos, text, sizeof text);
    if (n == 0) die("undecodable LLVM output");
    ++count;
    pos += n;
    const char* t = text;
    while (*t == ' ' || *t == '\t') ++t;
    if (std::strncmp(t, "ret", 3) == 0 || count > 1'000'000) break;
  }
  LLVMDisasmDispose(dc);
  return count;
}

size_t llvm_insns = 0;  // set by llvm_run_once

}  // namespace

uint64_t llvm_run_once(uint64_t* mem, uint64_t x, size_t* insns) {
  auto [rt, address] = compile(program());
  auto fn = reinterpret_cast<uint64_t (*)(uint64_t*, uint64_t)>(address);
  uint64_t result = fn(mem, x);
  llvm_insns = count_to_ret(reinterpret_cast<const uint8_t*>(address));
  if (insns) *insns = llvm_insns;
  check(rt->remove(), "ResourceTracker::remove");
  return result;
}

void bm_llvm_O0(benchmark::State& state) {
  const Program& p = program();
  jit();  // set up outside the timed loop
  auto start = std::chrono::steady_clock::now();
  for (auto _ : state) {
    auto [rt, address] = compile(p);
    benchmark::DoNotOptimize(address);
    check(rt->remove(), "ResourceTracker::remove");
  }
  set_counters(state, start, llvm_insns);
}

}  // namespace exojit::bench
