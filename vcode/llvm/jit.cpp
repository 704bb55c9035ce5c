// SPDX-License-Identifier: MIT
// The LLVM tier's JIT: one ORC LLJIT per codegen optimization level, created on first use and
// shared by every compilation (thread-safe; compilations are serialized). Each compile() adds
// one lowered, optimized module under its own ResourceTracker; the Code handle removes the
// tracker when it dies, which frees the machine code.
#include <llvm/IR/Verifier.h>
#include <llvm/Support/Host.h>
#include <llvm/Support/raw_ostream.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>

#include "../src/backend_p.h"
#include "exojit/error.h"
#include "exojit/vcode/code.h"
#include "exojit/vcode/orc.h"
#include "exojit/vcode/verify.h"
#include "lower_p.h"

namespace exojit::vcode::detail {

namespace {

using orc::check;
using orc::lock;

bool host_has_sse42() {
  llvm::StringMap<bool> features;
  return llvm::sys::getHostCPUFeatures(features) && features.lookup("sse4.2");
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
  orc::optimize(*mod, level);
  return mod;
}

}  // namespace

LlvmCode compile_llvm(const Module& m, int level, bool debug_objects) {
  std::lock_guard<std::mutex> guard(lock());
  orc::Jit& j = orc::jit(level);
  LlvmCode out;
  // The objects are linked by the lookups below; the listener copies them for gdb meanwhile.
  j.debug_objects = debug_objects ? &out.debug_objects : nullptr;
  struct Reset {
    orc::Jit& j;
    ~Reset() { j.debug_objects = nullptr; }
  } reset{j};
  const std::string prefix = fmt::format("exojit.{}.", next_module++);
  auto ctx = std::make_unique<llvm::LLVMContext>();
  auto mod = lowered(m, *ctx, prefix, level, true);
  // Freeing: the tracker's removal releases the code memory, under the JIT lock.
  out.owner = orc::add_module(j, llvm::orc::ThreadSafeModule(std::move(mod), std::move(ctx)));
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
