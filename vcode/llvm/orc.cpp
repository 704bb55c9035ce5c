// SPDX-License-Identifier: MIT
// The shared ORC set-up (exojit/vcode/orc.h).
#include "exojit/vcode/orc.h"

#include <llvm/ExecutionEngine/Orc/ExecutionUtils.h>
#include <llvm/ExecutionEngine/Orc/JITTargetMachineBuilder.h>
#include <llvm/ExecutionEngine/Orc/ObjectTransformLayer.h>
#include <llvm/ExecutionEngine/Orc/RTDyldObjectLinkingLayer.h>
#include <llvm/Object/ELFObjectFile.h>
#include <llvm/Object/ObjectFile.h>
#include <llvm/Support/TargetSelect.h>

namespace exojit::vcode::orc {

namespace {

llvm::CodeGenOpt::Level codegen_level(int level) {
  return level == 0   ? llvm::CodeGenOpt::None
         : level == 1 ? llvm::CodeGenOpt::Less
         : level == 2 ? llvm::CodeGenOpt::Default
                      : llvm::CodeGenOpt::Aggressive;
}

// Copies each linked object, relocated for the debugger, into Jit::debug_objects when a
// compilation asked for it (what LLVM's own GDB listener registers, handed instead to exojit's
// registration, which has its own lock: vcode/src/debug/gdb_jit_p.h).
class DebugObjects : public llvm::JITEventListener {
 public:
  explicit DebugObjects(Jit& j) : j_(j) {}
  void notifyObjectLoaded(ObjectKey, const llvm::object::ObjectFile& obj,
                          const llvm::RuntimeDyld::LoadedObjectInfo& info) override {
    if (!j_.debug_objects) return;
    llvm::object::OwningBinary<llvm::object::ObjectFile> debug = info.getObjectForDebug(obj);
    if (!debug.getBinary()) return;
    llvm::MemoryBufferRef bytes = debug.getBinary()->getMemoryBufferRef();
    j_.debug_objects->emplace_back(bytes.getBufferStart(), bytes.getBufferEnd());
  }

 private:
  Jit& j_;
};

}  // namespace

std::mutex& lock() {
  static std::mutex m;
  return m;
}

Jit& jit(int level) {
  // Never destroyed: the owners of compiled code (add_module) may be static objects too, destroyed
  // at exit after this table would be, and removing their code needs the JIT alive.
  static auto& jits = *new std::map<int, std::unique_ptr<Jit>>;
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
  jtmb.setCodeGenOptLevel(codegen_level(level));
  j->jit = check(llvm::orc::LLJITBuilder().setJITTargetMachineBuilder(std::move(jtmb)).create(),
                 "creating the JIT");
  j->jit->getMainJITDylib().addGenerator(
      check(llvm::orc::DynamicLibrarySearchGenerator::GetForCurrentProcess(
                j->jit->getDataLayout().getGlobalPrefix()),
            "opening the process's symbols"));
  Jit* raw = j.get();
  if (auto* rtdyld =
          dynamic_cast<llvm::orc::RTDyldObjectLinkingLayer*>(&j->jit->getObjLinkingLayer())) {
    j->debug_listener = std::make_unique<DebugObjects>(*j);
    rtdyld->registerJITEventListener(*j->debug_listener);
  }
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

std::unique_ptr<llvm::TargetMachine> host_target_machine(int level) {
  jit(level);  // initializes the native target
  auto jtmb = check(llvm::orc::JITTargetMachineBuilder::detectHost(), "detecting the host");
  jtmb.setCodeGenOptLevel(codegen_level(level));
  return check(jtmb.createTargetMachine(), "creating the host's target machine");
}

void run_passes(llvm::Module& mod,
                const std::function<llvm::ModulePassManager(llvm::PassBuilder&)>& build,
                llvm::TargetMachine* tm) {
  llvm::PassBuilder pb(tm);
  llvm::LoopAnalysisManager lam;
  llvm::FunctionAnalysisManager fam;
  llvm::CGSCCAnalysisManager cgam;
  llvm::ModuleAnalysisManager mam;
  llvm::ModulePassManager mpm = build(pb);  // extension points first, then the analyses
  pb.registerModuleAnalyses(mam);
  pb.registerCGSCCAnalyses(cgam);
  pb.registerFunctionAnalyses(fam);
  pb.registerLoopAnalyses(lam);
  pb.crossRegisterProxies(lam, fam, cgam, mam);
  mpm.run(mod, mam);
}

void optimize(llvm::Module& mod, int level, const std::function<void(llvm::PassBuilder&)>& extend,
              llvm::TargetMachine* tm) {
  run_passes(
      mod,
      [&](llvm::PassBuilder& pb) {
        if (extend) extend(pb);
        llvm::OptimizationLevel ol = level <= 0   ? llvm::OptimizationLevel::O0
                                     : level == 1 ? llvm::OptimizationLevel::O1
                                     : level == 2 ? llvm::OptimizationLevel::O2
                                                  : llvm::OptimizationLevel::O3;
        return level <= 0 ? pb.buildO0DefaultPipeline(ol) : pb.buildPerModuleDefaultPipeline(ol);
      },
      tm);
}

std::shared_ptr<void> add_module(Jit& j, llvm::orc::ThreadSafeModule mod) {
  llvm::orc::ResourceTrackerSP tracker = j.jit->getMainJITDylib().createResourceTracker();
  check(j.jit->addIRModule(tracker, std::move(mod)), "adding the module");
  return std::shared_ptr<void>(new int(0), [tracker](int* p) {
    delete p;
    std::lock_guard<std::mutex> g(lock());
    llvm::consumeError(tracker->remove());
  });
}

}  // namespace exojit::vcode::orc
