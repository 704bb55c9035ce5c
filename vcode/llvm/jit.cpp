// The LLVM tier's JIT: one ORC LLJIT per codegen optimization level, created on first use and
// shared by every compilation (thread-safe; compilations are serialized). Each compile() adds
// one lowered, optimized module under its own ResourceTracker; the Code handle removes the
// tracker when it dies, which frees the machine code.
#include <llvm/ExecutionEngine/Orc/JITTargetMachineBuilder.h>
#include <llvm/ExecutionEngine/Orc/LLJIT.h>
#include <llvm/ExecutionEngine/Orc/ObjectTransformLayer.h>
#include <llvm/ExecutionEngine/Orc/ThreadSafeModule.h>
#include <llvm/IR/LegacyPassManager.h>
#include <llvm/IR/Verifier.h>
#include <llvm/Object/ELFObjectFile.h>
#include <llvm/Object/ObjectFile.h>
#include <llvm/Passes/PassBuilder.h>
#include <llvm/Support/Host.h>
#include <llvm/Support/TargetSelect.h>
#include <llvm/Support/raw_ostream.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>

#include "../src/backend.h"
#include "exojit/error.h"
#include "exojit/vcode/code.h"
#include "exojit/vcode/verify.h"
#include "lower.h"

namespace exojit::vcode::detail {

namespace {

template <typename T>
T check(llvm::Expected<T> v, const char* what) {
  if (!v) fail("llvm tier: {}: {}", what, llvm::toString(v.takeError()));
  return std::move(*v);
}

void check(llvm::Error e, const char* what) {
  if (e) fail("llvm tier: {}: {}", what, llvm::toString(std::move(e)));
}

bool host_has_sse42() {
  llvm::StringMap<bool> features;
  return llvm::sys::getHostCPUFeatures(features) && features.lookup("sse4.2");
}

struct Jit {
  std::unique_ptr<llvm::orc::LLJIT> jit;
  // Symbol sizes of the objects as they are linked (the JIT does not keep them).
  std::map<std::string, uint64_t> sizes;
};

std::mutex& lock() {
  static std::mutex m;
  return m;
}

// The JIT for a codegen level (0: none, 1: less, 2: default, 3: aggressive). Under lock().
Jit& jit(int level) {
  static std::map<int, std::unique_ptr<Jit>> jits;
  auto it = jits.find(level);
  if (it != jits.end()) return *it->second;
  static bool initialized = [] {
    llvm::InitializeNativeTarget();
    llvm::InitializeNativeTargetAsmPrinter();
    return true;
  }();
  (void)initialized;
  auto j = std::make_unique<Jit>();
  auto jtmb = check(llvm::orc::JITTargetMachineBuilder::detectHost(), "detecting the host");
  jtmb.setCodeGenOptLevel(level == 0   ? llvm::CodeGenOpt::None
                          : level == 1 ? llvm::CodeGenOpt::Less
                          : level == 2 ? llvm::CodeGenOpt::Default
                                       : llvm::CodeGenOpt::Aggressive);
  j->jit = check(llvm::orc::LLJITBuilder().setJITTargetMachineBuilder(std::move(jtmb)).create(),
                 "creating the JIT");
  Jit* raw = j.get();
  j->jit->getObjTransformLayer().setTransform(
      [raw](std::unique_ptr<llvm::MemoryBuffer> obj)
          -> llvm::Expected<std::unique_ptr<llvm::MemoryBuffer>> {
        auto file = llvm::object::ObjectFile::createObjectFile(obj->getMemBufferRef());
        if (!file) return file.takeError();
        for (const llvm::object::SymbolRef& sym : (*file)->symbols()) {
          auto name = sym.getName();
          if (!name) return name.takeError();
          raw->sizes[name->str()] = llvm::object::ELFSymbolRef(sym).getSize();  // ELF on Linux
        }
        return obj;
      });
  return *jits.emplace(level, std::move(j)).first->second;
}

void optimize(llvm::Module& mod, int level) {
  llvm::PassBuilder pb;
  llvm::LoopAnalysisManager lam;
  llvm::FunctionAnalysisManager fam;
  llvm::CGSCCAnalysisManager cgam;
  llvm::ModuleAnalysisManager mam;
  pb.registerModuleAnalyses(mam);
  pb.registerCGSCCAnalyses(cgam);
  pb.registerFunctionAnalyses(fam);
  pb.registerLoopAnalyses(lam);
  pb.crossRegisterProxies(lam, fam, cgam, mam);
  llvm::OptimizationLevel ol = level <= 0   ? llvm::OptimizationLevel::O0
                               : level == 1 ? llvm::OptimizationLevel::O1
                               : level == 2 ? llvm::OptimizationLevel::O2
                                            : llvm::OptimizationLevel::O3;
  llvm::ModulePassManager mpm =
      level <= 0 ? pb.buildO0DefaultPipeline(ol) : pb.buildPerModuleDefaultPipeline(ol);
  mpm.run(mod, mam);
}

std::atomic<uint64_t> next_module{0};

// Lowers and optimizes `m` into a module of `ctx`; its functions are named prefix + name.
std::unique_ptr<llvm::Module> lowered(const Module& m, llvm::LLVMContext& ctx,
                                      const std::string& prefix, int level, bool verify_ir) {
  for (const auto& f : m.functions())
    if (!f->verified) verify(m, *f);
  auto mod = lower_to_llvm(m, ctx, prefix, host_has_sse42());
  if (verify_ir) {
    std::string why;
    llvm::raw_string_ostream os(why);
    if (llvm::verifyModule(*mod, &os)) fail("llvm tier: invalid IR (a lowering bug): {}", os.str());
  }
  optimize(*mod, level);
  return mod;
}

}  // namespace

LlvmCode compile_llvm(const Module& m, int level) {
  std::lock_guard<std::mutex> guard(lock());
  Jit& j = jit(level);
  const std::string prefix = fmt::format("exojit.{}.", next_module++);
  auto ctx = std::make_unique<llvm::LLVMContext>();
  auto mod = lowered(m, *ctx, prefix, level, true);
  llvm::orc::JITDylib& dylib = j.jit->getMainJITDylib();
  llvm::orc::ResourceTrackerSP tracker = dylib.createResourceTracker();
  check(j.jit->addIRModule(tracker, llvm::orc::ThreadSafeModule(std::move(mod), std::move(ctx))),
        "adding the module");
  // Freeing: the tracker's removal releases the code memory, under the JIT lock.
  LlvmCode out;
  out.owner = std::shared_ptr<void>(new int(0), [tracker](int* p) {
    delete p;
    std::lock_guard<std::mutex> g(lock());
    llvm::consumeError(tracker->remove());
  });
  uintptr_t low = UINTPTR_MAX, high = 0;
  std::vector<std::pair<uintptr_t, uint64_t>> where;
  for (const auto& f : m.functions()) {
    std::string name = prefix + f->name;
    auto sym = j.jit->lookup(name);
    if (!sym) fail("llvm tier: @{} did not compile: {}", f->name, llvm::toString(sym.takeError()));
    uintptr_t addr = uintptr_t(sym->getAddress());
    uint64_t bytes = j.sizes.count(name) ? j.sizes[name] : 0;
    j.sizes.erase(name);
    where.emplace_back(addr, bytes);
    low = std::min(low, addr);
    high = std::max(high, addr + std::max<uint64_t>(bytes, 1));
  }
  out.base = reinterpret_cast<uint8_t*>(low);
  out.size = high - low;
  for (size_t i = 0; i < where.size(); ++i) {
    const Function& f = *m.functions()[i];
    out.symbols.push_back(Code::Symbol{f.name, where[i].first - low, where[i].second, f.sig});
  }
  return out;
}

std::string llvm_ir_text(const Module& m, int level) {
  std::lock_guard<std::mutex> guard(lock());
  llvm::LLVMContext ctx;
  auto mod = lowered(m, ctx, "", level, true);
  std::string text;
  llvm::raw_string_ostream os(text);
  mod->print(os, nullptr);
  return os.str();
}

}  // namespace exojit::vcode::detail
