// SPDX-License-Identifier: MIT
// The ORC set-up that the LLVM tier (jit.cpp) and the specializer share: one LLJIT per codegen
// optimization level, created on first use and reused by every compilation, the module
// optimization pipeline, and code owned per module (a ResourceTracker removed when its owner
// dies). vcode's interface for the modules built on LLVM (target exojit::vcode_orc): not an
// installed header, it needs LLVM's headers, compiled as C++17 (LLVM 14's headers behind
// PassBuilder do not compile as C++20 with clang).
#pragma once

#include <llvm/ExecutionEngine/JITEventListener.h>
#include <llvm/ExecutionEngine/Orc/LLJIT.h>
#include <llvm/ExecutionEngine/Orc/ThreadSafeModule.h>
#include <llvm/IR/Module.h>
#include <llvm/Passes/PassBuilder.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "exojit/error.h"

namespace exojit::vcode::orc {

template <typename T>
T check(llvm::Expected<T> v, const char* what) {
  if (!v) fail("llvm: {}: {}", what, llvm::toString(v.takeError()));
  return std::move(*v);
}

inline void check(llvm::Error e, const char* what) {
  if (e) fail("llvm: {}: {}", what, llvm::toString(std::move(e)));
}

struct Jit {
  std::unique_ptr<llvm::orc::LLJIT> jit;
  // Symbol sizes of the objects as they are linked, local symbols included (the JIT does not
  // keep them). Whoever adds a module takes its entries out.
  std::map<std::string, uint64_t> sizes;
  // When set (under lock()), each object linked gets its copy for the debugger here: the object
  // with its sections' load addresses, as the GDB JIT interface wants it.
  std::vector<std::vector<uint8_t>>* debug_objects = nullptr;
  std::unique_ptr<llvm::JITEventListener> debug_listener;
};

// Serializes every use of the JITs.
std::mutex& lock();

// The JIT for a codegen level (0: none, 1: less, 2: default, 3: aggressive). Under lock().
// Symbols a module does not define resolve to the process's (memcpy, memset).
Jit& jit(int level);

// LLVM's default module pipeline at `level` (0-3). `extend`, if given, may register extension
// point callbacks on the PassBuilder before the pipeline is built. With `tm`, the passes know the
// target (cost models of the vectorizers and the unroller).
void optimize(llvm::Module& mod, int level,
              const std::function<void(llvm::PassBuilder&)>& extend = nullptr,
              llvm::TargetMachine* tm = nullptr);

// Runs the module pipeline that `build` makes with the PassBuilder (analyses registered; with
// `tm`, they know the target).
void run_passes(llvm::Module& mod,
                const std::function<llvm::ModulePassManager(llvm::PassBuilder&)>& build,
                llvm::TargetMachine* tm = nullptr);

// A target machine for the host CPU (all its features), for optimize().
std::unique_ptr<llvm::TargetMachine> host_target_machine(int level);

// Adds `mod` to `j` under a fresh ResourceTracker (under lock()). The returned owner removes
// the tracker, freeing the machine code, when the last copy dies (it takes lock() itself).
std::shared_ptr<void> add_module(Jit& j, llvm::orc::ThreadSafeModule mod);

}  // namespace exojit::vcode::orc
