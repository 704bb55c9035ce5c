// SPDX-License-Identifier: MIT
// The specializer ([TEMPO04] with today's tools): the libOS's generic code, embedded in this
// library as LLVM bitcode, is specialized at run time for a Declaration — the entry function is
// cloned, static arguments substituted, loads from invariant memory folded to the constants they
// read now — then optimized by LLVM's pipeline (inlining, constant propagation, dead code
// elimination, loop unrolling) and compiled with ORC, in milliseconds. A cache keyed by the
// declaration (static values and invariant contents) returns an existing specialization.
//
//   Specializer sp;
//   auto r = sp.specialize(decl);  // shared, immutable; the code lives as long as r
//   auto send = reinterpret_cast<int (*)(exo_stack*, int, const void*, uint32_t, uint32_t,
//                                        uint16_t)>(r->entry);
//
// The residual function keeps the entry's signature: static parameters are ignored (their values
// are built in), so the generic function and the residual one are interchangeable.
// Thread-safe; specializations are serialized.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "exojit/specializer/declaration.h"

namespace exojit::specializer {

struct SpecializerOptions {
  int opt_level = 2;     // LLVM's pipeline and code generator level (1-3)
  bool keep_ir = false;  // keep the residual IR's text in Residual::ir (exo-spec)
  int max_rounds = 3;    // fold + optimize rounds while loads remain foldable
  // Optimize and compile for the host CPU and all its features (vector units included), as
  // exojit's LLVM tier does; false: for the CPU the bitcode was compiled for (baseline x86-64,
  // like the native generic path).
  bool host_cpu = true;
};

// A compiled specialization.
struct Residual {
  struct Function {
    std::string name;  // as in the generic code ("" for the entry)
    uintptr_t address = 0;
    size_t bytes = 0;
  };
  void* entry = nullptr;
  size_t code_bytes = 0;            // machine code of every function of the residual module
  std::vector<Function> functions;  // the entry first, then what it still calls out of line
  std::string ir;                   // residual LLVM IR, if SpecializerOptions::keep_ir
  size_t folded_loads = 0;          // loads (and copies) from invariant memory made constants
  int rounds = 0;                   // fold + optimize rounds
  double milliseconds = 0;          // to specialize, optimize and compile
  std::string key;                  // the cache key (Declaration::key())
  std::shared_ptr<void> owner;      // the machine code; freed with the last copy
};

class Specializer {
 public:
  explicit Specializer(SpecializerOptions options = {});
  ~Specializer();
  Specializer(const Specializer&) = delete;
  Specializer& operator=(const Specializer&) = delete;

  // The specialization of decl.function for `decl`, from the cache when the same static values
  // and invariant contents were specialized before. Throws exojit::Error on a bad declaration
  // (unknown function, wrong arity, a static value for a parameter that is not an integer or a
  // pointer) or when the residual code would write memory declared invariant.
  std::shared_ptr<const Residual> specialize(const Declaration& decl);

  // `function` compiled by LLVM's whole -O2 pipeline with nothing static (and everything it
  // calls, in the same module): the generic reference for code size.
  std::shared_ptr<const Residual> generic(const std::string& function);

  // The native machine code of `function` and of every libOS function it reaches through
  // direct calls in the source (the call graph of the bitcode before any optimization), as the
  // host compiler built them into the running executable: symbol sizes from /proc/self/exe
  // (local symbols and the compiler's clones, name.constprop.0 and the like, included; a
  // function inlined everywhere has no symbol and its code is counted in its callers).
  struct NativeCode {
    size_t bytes = 0;
    std::vector<std::pair<std::string, size_t>> functions;  // those with a symbol
  };
  NativeCode native_code(const std::string& function) const;

  // Drops the cached specialization with this key (its code is freed once no one holds it).
  void forget(const std::string& key);

  struct Stats {
    uint64_t specialized = 0;  // compiled
    uint64_t cache_hits = 0;
    size_t cached = 0;
  };
  Stats stats() const;

  // The functions the embedded bitcode defines.
  std::vector<std::string> functions() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace exojit::specializer
