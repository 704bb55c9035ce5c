// SPDX-License-Identifier: MIT
// The specializer (specializer.h): clone, substitute, fold, optimize, compile, cache.
#include "exojit/specializer/specializer.h"

#include <llvm/Analysis/CGSCCPassManager.h>
#include <llvm/Analysis/InlineCost.h>
#include <llvm/Bitcode/BitcodeReader.h>
#include <llvm/IR/Constants.h>
#include <llvm/IR/InstIterator.h>
#include <llvm/IR/Instructions.h>
#include <llvm/IR/Module.h>
#include <llvm/IR/Verifier.h>
#include <llvm/Object/ELFObjectFile.h>
#include <llvm/Object/ObjectFile.h>
#include <llvm/Support/MemoryBuffer.h>
#include <llvm/Support/raw_ostream.h>
#include <llvm/Transforms/IPO/GlobalDCE.h>
#include <llvm/Transforms/IPO/Inliner.h>
#include <llvm/Transforms/Utils/Cloning.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <set>
#include <unordered_map>

#include "evaluate_p.h"
#include "exojit/error.h"
#include "exojit/vcode/orc.h"
#include "fold_p.h"
#include "pipeline_p.h"

namespace exojit::specializer {

namespace detail {
extern const unsigned char libos_bitcode[];
extern const size_t libos_bitcode_size;
}  // namespace detail

namespace {

// Functions reachable from `entry` through direct calls (and address-taken uses).
std::set<const llvm::Function*> reachable(const llvm::Function& entry) {
  std::set<const llvm::Function*> seen{&entry};
  std::vector<const llvm::Function*> work{&entry};
  while (!work.empty()) {
    const llvm::Function* f = work.back();
    work.pop_back();
    for (const llvm::Instruction& inst : llvm::instructions(*f))
      for (const llvm::Value* op : inst.operands())
        if (const auto* g = llvm::dyn_cast<llvm::Function>(op->stripPointerCasts()))
          if (seen.insert(g).second) work.push_back(g);
  }
  return seen;
}

llvm::Constant* static_value(llvm::Type* ty, uint64_t value) {
  if (ty->isIntegerTy()) return llvm::ConstantInt::get(ty, value);
  if (ty->isPointerTy())
    return llvm::ConstantExpr::getIntToPtr(
        llvm::ConstantInt::get(llvm::Type::getInt64Ty(ty->getContext()), value), ty);
  return nullptr;
}

}  // namespace

struct Specializer::Impl {
  SpecializerOptions options;
  mutable std::mutex lock;
  llvm::orc::ThreadSafeContext context{std::make_unique<llvm::LLVMContext>()};
  std::unique_ptr<llvm::Module> libos;                    // the parsed bitcode, in `context`
  std::unique_ptr<llvm::TargetMachine> host;              // with SpecializerOptions::host_cpu
  std::map<std::string, std::vector<std::string>> calls;  // the source's direct call graph
  std::unordered_map<std::string, std::shared_ptr<const Residual>> cache;
  Stats stats;

  std::shared_ptr<Residual> build(const Declaration& decl, bool generic);
};

Specializer::Specializer(SpecializerOptions options) : impl_(std::make_unique<Impl>()) {
  if (options.opt_level < 1 || options.opt_level > 3)
    fail("specializer: optimization level {} (1-3)", options.opt_level);
  impl_->options = options;
  auto buffer = llvm::MemoryBuffer::getMemBuffer(
      llvm::StringRef(reinterpret_cast<const char*>(detail::libos_bitcode),
                      detail::libos_bitcode_size),
      "libos.bc", false);
  auto lock = impl_->context.getLock();
  impl_->libos = vcode::orc::check(
      llvm::parseBitcodeFile(buffer->getMemBufferRef(), *impl_->context.getContext()),
      "reading the libOS bitcode");
  for (const llvm::Function& f : *impl_->libos) {
    auto& callees = impl_->calls[f.getName().str()];
    for (const llvm::Function* g : reachable(f))
      if (g != &f) callees.push_back(g->getName().str());
  }
  if (options.host_cpu) {
    impl_->host = vcode::orc::host_target_machine(options.opt_level);
    for (llvm::Function& f : *impl_->libos) {
      f.removeFnAttr("tune-cpu");
      f.addFnAttr("target-cpu", impl_->host->getTargetCPU());
      f.addFnAttr("target-features", impl_->host->getTargetFeatureString());
    }
  }
  // Once: every generic function simplified, with the small leaves (byte-order helpers, buffer
  // addresses, checksum folding) inlined into their callers, so that each specialization starts
  // from compact code and partial evaluation has fewer levels of calls to go down. Nothing is
  // assumed about callers, nothing vectorized.
  vcode::orc::run_passes(
      *impl_->libos,
      [](llvm::PassBuilder& pb) {
        constexpr int kLeafThreshold = 25;  // LLVM's cost units; -O2 inlines up to 225
        llvm::ModuleInlinerWrapperPass inliner(llvm::getInlineParams(kLeafThreshold));
        inliner.getPM().addPass(
            llvm::createCGSCCToFunctionPassAdaptor(pb.buildFunctionSimplificationPipeline(
                llvm::OptimizationLevel::O2, llvm::ThinOrFullLTOPhase::None)));
        llvm::ModulePassManager mpm;
        mpm.addPass(std::move(inliner));
        return mpm;
      },
      impl_->host.get());
}

Specializer::~Specializer() {
  std::lock_guard<std::mutex> g(impl_->lock);
  impl_->cache.clear();
  auto lock = impl_->context.getLock();
  impl_->libos.reset();
}

std::shared_ptr<Residual> Specializer::Impl::build(const Declaration& decl, bool generic) {
  auto start = std::chrono::steady_clock::now();
  auto context_lock = context.getLock();
  const llvm::Function* generic_entry = libos->getFunction(decl.function);
  if (!generic_entry || generic_entry->isDeclaration())
    fail("specializer: the libOS bitcode defines no function @{}", decl.function);
  if (!generic && decl.args.size() != generic_entry->arg_size())
    fail("specializer: @{} takes {} parameters, the declaration gives {}", decl.function,
         generic_entry->arg_size(), decl.args.size());

  // Clone what the entry can reach; the rest of the libOS stays behind.
  std::set<const llvm::Function*> keep = reachable(*generic_entry);
  llvm::ValueToValueMapTy map;
  std::unique_ptr<llvm::Module> mod =
      llvm::CloneModule(*libos, map, [&keep](const llvm::GlobalValue* gv) {
        const auto* f = llvm::dyn_cast<llvm::Function>(gv);
        return !f || keep.count(f);
      });
  // Unique in the process: every Specializer shares the JIT's symbol table.
  static std::atomic<uint64_t> next{0};
  const std::string prefix = fmt::format("exojit.spec.{}.", next++);
  llvm::Function* entry = mod->getFunction(decl.function);

  // Static parameters become their values.
  if (!generic)
    for (size_t i = 0; i < decl.args.size(); ++i) {
      if (!decl.args[i].is_static) continue;
      llvm::Argument* a = entry->getArg(unsigned(i));
      llvm::Constant* c = static_value(a->getType(), decl.args[i].value);
      if (!c)
        fail(
            "specializer: parameter {} of @{} is neither an integer nor a pointer; it cannot be "
            "static",
            i, decl.function);
      a->replaceAllUsesWith(c);
    }

  // Only the entry is seen from outside: everything else may be inlined and deleted. Names get
  // the module's prefix so that the JIT's symbol table tells the modules apart.
  for (llvm::Function& f : *mod)
    if (!f.isDeclaration()) {
      if (&f != entry) f.setLinkage(llvm::GlobalValue::InternalLinkage);
      f.setName(prefix + f.getName());
    }
  for (llvm::GlobalVariable& g : mod->globals())
    if (!g.isDeclaration()) g.setLinkage(llvm::GlobalValue::InternalLinkage);

  auto out = std::make_shared<Residual>();
  // Partial evaluation first: the entry is folded, pruned and inlined top down, so that only
  // what this context runs reaches the optimization pipeline (evaluate.h, pipeline.h). The
  // generic build goes through LLVM's whole -O2 instead, the best it does with nothing static.
  if (!generic)
    vcode::orc::run_passes(
        *mod,
        [&](llvm::PassBuilder&) {
          llvm::ModulePassManager mpm;
          mpm.addPass(detail::PartiallyEvaluate(entry->getName().str(), decl, &out->folded_loads));
          mpm.addPass(llvm::GlobalDCEPass());
          return mpm;
        },
        host.get());
  for (int round = 0; round < options.max_rounds; ++round) {
    size_t folded = 0;
    if (!generic)
      for (llvm::Function& f : *mod)
        if (!f.isDeclaration()) folded += detail::fold_invariant_loads(f, decl);
    if (round > 0 && folded == 0) break;
    if (generic)
      vcode::orc::optimize(*mod, options.opt_level, nullptr, host.get());
    else
      detail::optimize_residual(*mod, options.opt_level, decl, &out->folded_loads, host.get());
    out->folded_loads += folded;
    out->rounds = round + 1;
  }
  if (!generic)
    for (const llvm::Function& f : *mod)
      if (!f.isDeclaration()) detail::check_no_invariant_writes(f, decl);
  std::string why;
  llvm::raw_string_ostream os(why);
  if (llvm::verifyModule(*mod, &os)) fail("specializer: invalid residual IR: {}", os.str());

  // What is still out of line becomes visible, to be found and measured.
  std::vector<std::string> names;
  names.push_back(entry->getName().str());
  for (llvm::Function& f : *mod)
    if (!f.isDeclaration() && &f != entry) {
      f.setLinkage(llvm::GlobalValue::ExternalLinkage);
      names.push_back(f.getName().str());
    }
  if (options.keep_ir) {
    llvm::raw_string_ostream ir(out->ir);
    mod->print(ir, nullptr);
  }

  std::lock_guard<std::mutex> jit_lock(vcode::orc::lock());
  vcode::orc::Jit& j = vcode::orc::jit(options.opt_level);
  out->owner = vcode::orc::add_module(j, llvm::orc::ThreadSafeModule(std::move(mod), context));
  for (const std::string& name : names) {
    auto sym = j.jit->lookup(name);
    if (!sym) fail("specializer: @{} did not compile: {}", name, llvm::toString(sym.takeError()));
    Residual::Function f;
    f.name = name == names[0] ? "" : name.substr(prefix.size());
    f.address = uintptr_t(sym->getAddress());
    out->functions.push_back(f);
  }
  // Every symbol of the module's object carries the prefix (locals too): take their sizes.
  for (auto it = j.sizes.lower_bound(prefix);
       it != j.sizes.end() && it->first.compare(0, prefix.size(), prefix) == 0;) {
    for (Residual::Function& f : out->functions)
      if (it->first == (f.name.empty() ? names[0] : prefix + f.name)) f.bytes = it->second;
    it = j.sizes.erase(it);
  }
  for (const Residual::Function& f : out->functions) out->code_bytes += f.bytes;
  out->entry = reinterpret_cast<void*>(out->functions[0].address);
  out->milliseconds =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  return out;
}

std::shared_ptr<const Residual> Specializer::specialize(const Declaration& decl) {
  decl.check();
  std::string key = decl.key();
  std::lock_guard<std::mutex> g(impl_->lock);
  auto it = impl_->cache.find(key);
  if (it != impl_->cache.end()) {
    ++impl_->stats.cache_hits;
    return it->second;
  }
  std::shared_ptr<Residual> r = impl_->build(decl, false);
  r->key = key;
  ++impl_->stats.specialized;
  impl_->cache.emplace(key, r);
  return r;
}

std::shared_ptr<const Residual> Specializer::generic(const std::string& function) {
  Declaration decl{function, {}, {}};
  std::lock_guard<std::mutex> g(impl_->lock);
  return impl_->build(decl, true);
}

Specializer::NativeCode Specializer::native_code(const std::string& function) const {
  std::vector<std::string> names;
  {
    std::lock_guard<std::mutex> g(impl_->lock);
    auto it = impl_->calls.find(function);
    if (it == impl_->calls.end())
      fail("specializer: the libOS bitcode defines no function @{}", function);
    names = it->second;  // everything reachable, transitively
    names.push_back(function);
  }
  auto binary = llvm::object::ObjectFile::createObjectFile("/proc/self/exe");
  if (!binary)
    fail("specializer: cannot read this program's symbol table: {}",
         llvm::toString(binary.takeError()));
  std::set<std::string> wanted(names.begin(), names.end());
  NativeCode out;
  for (const llvm::object::SymbolRef& sym : binary->getBinary()->symbols()) {
    auto name = sym.getName();
    auto type = sym.getType();
    if (!name || !type || *type != llvm::object::SymbolRef::ST_Function) {
      if (!name) llvm::consumeError(name.takeError());
      if (!type) llvm::consumeError(type.takeError());
      continue;
    }
    llvm::StringRef n = *name, base = n.split('.').first;
    if (!wanted.count(n.str()) && !wanted.count(base.str())) continue;
    size_t bytes = size_t(llvm::object::ELFSymbolRef(sym).getSize());
    out.functions.emplace_back(n.str(), bytes);
    out.bytes += bytes;
  }
  return out;
}

void Specializer::forget(const std::string& key) {
  std::lock_guard<std::mutex> g(impl_->lock);
  impl_->cache.erase(key);
}

Specializer::Stats Specializer::stats() const {
  std::lock_guard<std::mutex> g(impl_->lock);
  Stats s = impl_->stats;
  s.cached = impl_->cache.size();
  return s;
}

std::vector<std::string> Specializer::functions() const {
  std::lock_guard<std::mutex> g(impl_->lock);
  auto lock = impl_->context.getLock();
  std::vector<std::string> names;
  for (const llvm::Function& f : *impl_->libos)
    if (!f.isDeclaration()) names.push_back(f.getName().str());
  return names;
}

}  // namespace exojit::specializer
