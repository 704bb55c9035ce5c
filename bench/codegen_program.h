// SPDX-License-Identifier: MIT
// The function every bench_codegen row generates: a fixed, pseudo-random but deterministic list
// of ~1,000 integer operations on six 64-bit registers and a 256-byte memory block, as a code
// generator's client would hold it (an IR, a filter, a bytecode). Each row walks the same list
// and emits it through its own API (vcode Builder, raw asmjit, LLVM IRBuilder), so every row
// pays the same client-side cost and produces the same function:
//
//   uint64_t fn(uint64_t* mem, uint64_t x)
//
// Register 0 is the argument x; registers 1-5 start as x ^ constant. Memory offsets stay inside
// mem[0..31]. Branches are unsigned compares that jump forward to labels, so every path
// terminates. The result is the sum of the six registers.
#pragma once

#include <benchmark/benchmark.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "exojit/vcode/builder.h"

namespace exojit::bench {

inline constexpr int kRegs = 6;           // working registers; 0 is the argument x
inline constexpr int kMemWords = 32;      // mem[] words the function may load and store
inline constexpr size_t kIrInsns = 1000;  // vcode IR records per function (labels included)

enum class Alu : uint8_t { Add, Sub, Xor, And, Or, Mul, Shl, Shr };  // Shl/Shr: immediate only
enum class Cond : uint8_t { Lt, Le, Gt, Ge, Eq, Ne };                // unsigned compares

enum class Kind : uint8_t {
  Bin,    // r[d] = r[a] op r[b]
  BinI,   // r[d] = r[a] op imm
  Load,   // r[d] = mem[imm / 8]
  Store,  // mem[imm / 8] = r[a]
  BrR,    // if (r[a] cond r[b]) goto label
  BrI,    // if (r[a] cond imm) goto label (imm != 0)
  Place,  // label:
  Ret,    // return r[a]
};

struct Step {
  Kind kind;
  uint8_t op;  // Alu or Cond
  uint8_t d, a, b;
  int32_t imm;
  uint32_t label;
};

struct Program {
  std::vector<Step> steps;
  uint32_t num_labels = 0;
};

class Rng {  // xorshift64*: deterministic across runs and platforms
 public:
  explicit Rng(uint64_t seed) : s_(seed) {}
  uint64_t next() {
    s_ ^= s_ >> 12;
    s_ ^= s_ << 25;
    s_ ^= s_ >> 27;
    return s_ * 0x2545F4914F6CDD1Dull;
  }
  uint32_t below(uint32_t n) { return uint32_t(next() % n); }
  bool chance(uint32_t percent) { return below(100) < percent; }

 private:
  uint64_t s_;
};

// The program, made once (deterministic).
const Program& program();

// Records the program as vcode function `uint64_t fn(uint64_t* mem, uint64_t x)` into m.
void build_vcode(vcode::Module& m, const Program& p);

// Machine instructions in vcode's code for program(), the common ns_per_insn denominator.
size_t vcode_insn_count();

// (bench_codegen.cpp) Sets a row's counters once its timed loop, started at `start`, is over:
// ns_per_insn (over vcode_insn_count(), the same for every row) and insns, the row's own output in
// machine instructions (0: not counted).
void set_counters(benchmark::State& state, std::chrono::steady_clock::time_point start,
                  size_t own_insns);

// The LLVM ORC row (bench_codegen_llvm.cpp, a separate file because of LLVM's headers).
void bm_llvm_O0(benchmark::State& state);

// Builds, compiles and runs program() with LLVM once; returns fn(mem, x) (for the equivalence
// check in main) and sets *insns to the number of machine instructions LLVM emitted.
uint64_t llvm_run_once(uint64_t* mem, uint64_t x, size_t* insns);

using CodegenFn = uint64_t (*)(uint64_t*, uint64_t);

// The xbyak row (bench_codegen_xbyak.cpp; built when Debian's libxbyak-dev is installed).
void bm_xbyak_raw(benchmark::State& state);
// Emits program() with xbyak once: the function and its bytes (valid until the next emission).
struct XbyakCode {
  CodegenFn fn;
  const uint8_t* bytes;
  size_t size;
};
XbyakCode xbyak_compile_once();

// The TinyCC row (bench_codegen_tcc.cpp; built when Debian's libtcc-dev and tcc are installed).
using TccFn = CodegenFn;
void bm_tcc(benchmark::State& state);
// Compiles program() as C with libtcc and returns fn(mem, x).
uint64_t tcc_run_once(uint64_t* mem, uint64_t x);

}  // namespace exojit::bench
