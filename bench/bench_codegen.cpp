// SPDX-License-Identifier: MIT
// bench_codegen: the cost of generating a 1,000-instruction integer function, from the client's
// description to callable machine code, and freeing it again.
//
//   codegen/vcode_fast       vcode Builder (checks every call) + finish() (verifies) + compile()
//                            (lowering, vcode's x86-64 encoder, install in dual-mapped W^X
//                            memory); Code destroyed
//   codegen/vcode_blinded    vcode_fast with CompileOptions::blind_constants (a fresh getrandom
//                            key, every client immediate beyond a byte blinded: issue 20)
//   codegen/vcode_emit_only  compile() of the module already built and verified: lowering,
//                            encoding and install only (the floor of vcode_fast)
//   codegen/asmjit_raw       the peer: the same machine code emitted by hand with asmjit's
//                            x86::Assembler on fixed registers, installed with JitRuntime::add
//                            and released
//   codegen/xbyak_raw        the same by hand with xbyak's CodeGenerator, reused (its buffer is
//                            read+write+execute: nothing to install) (bench_codegen_xbyak.cpp)
//   codegen/tcc              the program as C source, written and compiled into memory by
//                            TinyCC's libtcc (bench_codegen_tcc.cpp)
//   codegen/llvm_O0          LLVM 14 ORC LLJIT (one instance), IRBuilder, codegen at O0, lookup,
//                            ResourceTracker removed (bench_codegen_llvm.cpp)
// (xbyak and tcc are optional: their rows exist when Debian's libxbyak-dev and libtcc-dev + tcc
// are installed, as ./exo does.)
//
// Counter ns_per_insn: nanoseconds per machine instruction of the generated function. The
// denominator is the same for every row: the number of machine instructions in vcode's code for
// the program (counted once with count_instructions), so ns_per_insn compares the cost of the
// same work. Counter insns is each row's own output size in machine instructions.
//
// Before timing, main() runs every row's generated function on the same inputs and aborts unless
// they agree (result and memory), and checks that asmjit_raw's and xbyak_raw's code is vcode's,
// byte for byte (a note on stderr if not: the vcode back end or the assembler changed).
#include <asmjit/x86.h>
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "codegen_program.h"
#include "exojit/vcode.h"
#include "ratio_main.h"

namespace exojit::bench {

namespace {

vcode::Code compile_vcode(const Program& p, bool blind = false) {
  vcode::Module m;
  build_vcode(m, p);
  vcode::CompileOptions o;
  o.blind_constants = blind;
  return vcode::compile(m, o);
}

// --- raw asmjit --------------------------------------------------------------------------------
//
// By hand, what vcode's x86-64 back end emits for the program: the registers vcode assigns
// (x in rsi, r1-r5 in the temporaries rdx rcx r8 r9 r10, mem in rdi) and the same instruction
// choices (two-address forms, lea for three-address adds, imul with an immediate; a leaf
// function without locals keeps no frame), so that both rows produce identical bytes.

using namespace asmjit;

const x86::Gp kRawReg[kRegs] = {x86::rsi, x86::rdx, x86::rcx, x86::r8, x86::r9, x86::r10};

void alu_rr(x86::Assembler& a, Alu op, const x86::Gp& d, const x86::Gp& s) {
  switch (op) {
    case Alu::Add:
      a.add(d, s);
      break;
    case Alu::Sub:
      a.sub(d, s);
      break;
    case Alu::Mul:
      a.imul(d, s);
      break;
    case Alu::And:
      a.and_(d, s);
      break;
    case Alu::Or:
      a.or_(d, s);
      break;
    default:
      a.xor_(d, s);
      break;
  }
}

void emit_raw(x86::Assembler& a, const Program& p, std::vector<asmjit::Label>& labels) {
  const x86::Gp mem = x86::rdi;
  labels.clear();
  for (uint32_t i = 0; i < p.num_labels; ++i) labels.push_back(a.newLabel());
  for (const Step& s : p.steps) {
    const x86::Gp &d = kRawReg[s.d], &ra = kRawReg[s.a], &rb = kRawReg[s.b];
    Alu op = Alu(s.op);
    switch (s.kind) {
      case Kind::Bin:
        if (s.d == s.a) {
          alu_rr(a, op, d, rb);
        } else if (s.d == s.b && op != Alu::Sub) {
          alu_rr(a, op, d, ra);
        } else if (s.d == s.b) {
          a.neg(d);
          a.add(d, ra);
        } else if (op == Alu::Add) {
          a.lea(d, x86::ptr(ra, rb));
        } else {
          a.mov(d, ra);
          alu_rr(a, op, d, rb);
        }
        break;
      case Kind::BinI:
        if (op == Alu::Mul) {
          a.imul(d, ra, s.imm);
        } else if (op == Alu::Add && s.d != s.a) {
          a.lea(d, x86::ptr(ra, s.imm));
        } else {
          if (s.d != s.a) a.mov(d, ra);
          switch (op) {
            case Alu::Add:
              a.add(d, s.imm);
              break;
            case Alu::Sub:
              a.sub(d, s.imm);
              break;
            case Alu::And:
              a.and_(d, s.imm);
              break;
            case Alu::Or:
              a.or_(d, s.imm);
              break;
            case Alu::Xor:
              a.xor_(d, s.imm);
              break;
            case Alu::Shl:
              a.shl(d, s.imm & 63);
              break;
            default:
              a.shr(d, s.imm & 63);
              break;
          }
        }
        break;
      case Kind::Load:
        a.mov(d, x86::ptr(mem, s.imm));
        break;
      case Kind::Store:
        a.mov(x86::ptr(mem, s.imm), ra);
        break;
      case Kind::BrR:
      case Kind::BrI: {
        if (s.kind == Kind::BrI)
          a.cmp(ra, s.imm);
        else
          a.cmp(ra, rb);
        const asmjit::Label& l = labels[s.label];
        switch (Cond(s.op)) {
          case Cond::Lt:
            a.jb(l);
            break;
          case Cond::Le:
            a.jbe(l);
            break;
          case Cond::Gt:
            a.ja(l);
            break;
          case Cond::Ge:
            a.jae(l);
            break;
          case Cond::Eq:
            a.je(l);
            break;
          case Cond::Ne:
            a.jne(l);
            break;
        }
        break;
      }
      case Kind::Place:
        a.bind(labels[s.label]);
        break;
      case Kind::Ret:
        a.mov(x86::rax, ra);
        a.ret();
        break;
    }
  }
}

using Fn = uint64_t (*)(uint64_t*, uint64_t);

JitRuntime& raw_runtime() {
  static JitRuntime rt;
  return rt;
}

// Emits and installs the program with raw asmjit; the caller releases it.
Fn compile_raw(const Program& p, std::vector<asmjit::Label>& labels, size_t* size = nullptr) {
  JitRuntime& rt = raw_runtime();
  CodeHolder code;
  code.init(rt.environment());
  x86::Assembler a(&code);
  emit_raw(a, p, labels);
  Fn fn = nullptr;
  if (rt.add(&fn, &code) != kErrorOk) {
    std::fprintf(stderr, "bench_codegen: JitRuntime::add failed\n");
    std::abort();
  }
  if (size) *size = code.codeSize();
  return fn;
}

// Machine instructions in the blinded code (more than vcode_insn_count(): each blinded constant
// costs a load and an xor; the count is the same whatever the key).
size_t blinded_insn_count() {
  static const size_t n = [] {
    vcode::Code code = compile_vcode(program(), true);
    const vcode::Code::Symbol& s = code.symbols().front();
    return vcode::count_instructions(code.data() + s.offset, s.size);
  }();
  return n;
}

// --- rows ------------------------------------------------------------------------------------

void bm_vcode_fast(benchmark::State& state) {
  const Program& p = program();
  auto start = std::chrono::steady_clock::now();
  for (auto _ : state) {
    vcode::Code code = compile_vcode(p);
    benchmark::DoNotOptimize(code.data());
  }
  set_counters(state, start, vcode_insn_count());
}

void bm_vcode_blinded(benchmark::State& state) {
  const Program& p = program();
  auto start = std::chrono::steady_clock::now();
  for (auto _ : state) {
    vcode::Code code = compile_vcode(p, true);
    benchmark::DoNotOptimize(code.data());
  }
  set_counters(state, start, blinded_insn_count());
}

void bm_vcode_emit_only(benchmark::State& state) {
  vcode::Module m;
  build_vcode(m, program());  // built and verified once, outside the timing
  auto start = std::chrono::steady_clock::now();
  for (auto _ : state) {
    vcode::Code code = vcode::compile(m);
    benchmark::DoNotOptimize(code.data());
  }
  set_counters(state, start, vcode_insn_count());
}

void bm_asmjit_raw(benchmark::State& state) {
  const Program& p = program();
  std::vector<asmjit::Label> labels;  // reused, as a client would
  size_t size = 0;
  auto start = std::chrono::steady_clock::now();
  for (auto _ : state) {
    Fn fn = compile_raw(p, labels, &size);
    benchmark::DoNotOptimize(fn);
    raw_runtime().release(fn);
  }
  set_counters(state, start, vcode_insn_count());  // same code as vcode's (checked in main)
}

// --- equivalence check -----------------------------------------------------------------------

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "bench_codegen: %s\n", what);
  std::abort();
}

void check_equivalence() {
  const Program& p = program();
  vcode::Module m;
  build_vcode(m, p);
  if (m.functions().front()->code.size() != kIrInsns)
    die("the program does not have the intended number of vcode instructions");
  vcode::Code code = vcode::compile(m);
  auto vfn = code.as<uint64_t(uint64_t*, uint64_t)>("fn");
  const vcode::Code::Symbol& sym = code.symbols().front();

  std::vector<asmjit::Label> labels;
  size_t raw_size = 0;
  Fn rfn = compile_raw(p, labels, &raw_size);
  const uint8_t* raw_bytes = reinterpret_cast<const uint8_t*>(rfn);
  bool identical =
      raw_size == sym.size && std::memcmp(raw_bytes, code.data() + sym.offset, raw_size) == 0;
  if (!identical)
    std::fprintf(stderr,
                 "bench_codegen: note: asmjit_raw's code (%zu bytes, %zu instructions) differs "
                 "from vcode's (%zu bytes, %zu instructions); the vcode back end changed?\n",
                 raw_size, vcode::count_instructions(raw_bytes, raw_size), sym.size,
                 vcode_insn_count());

#if EXOJIT_HAVE_XBYAK
  XbyakCode xb = xbyak_compile_once();
  const bool xbyak_identical =
      xb.size == sym.size && std::memcmp(xb.bytes, code.data() + sym.offset, xb.size) == 0;
  if (!xbyak_identical)
    std::fprintf(stderr,
                 "bench_codegen: note: xbyak_raw's code (%zu bytes, %zu instructions) differs "
                 "from vcode's (%zu bytes)\n",
                 xb.size, vcode::count_instructions(xb.bytes, xb.size), sym.size);
#endif

  size_t llvm_insns = 0;
  Rng rng(42);
  for (int trial = 0; trial < 8; ++trial) {
    uint64_t init[kMemWords];
    for (uint64_t& w : init) w = rng.next();
    uint64_t x = trial == 0 ? 0 : rng.next();
    uint64_t mv[kMemWords], mr[kMemWords], ml[kMemWords];
    std::memcpy(mv, init, sizeof init);
    std::memcpy(mr, init, sizeof init);
    std::memcpy(ml, init, sizeof init);
    uint64_t v = vfn(mv, x), r = rfn(mr, x), l = llvm_run_once(ml, x, &llvm_insns);
    if (v != r || std::memcmp(mv, mr, sizeof mv) != 0)
      die("vcode and asmjit_raw functions disagree");
    if (v != l || std::memcmp(mv, ml, sizeof mv) != 0) die("vcode and LLVM functions disagree");
#if EXOJIT_HAVE_XBYAK
    uint64_t mx[kMemWords];
    std::memcpy(mx, init, sizeof init);
    if (v != xb.fn(mx, x) || std::memcmp(mv, mx, sizeof mv) != 0)
      die("vcode and xbyak_raw functions disagree");
#endif
#if EXOJIT_HAVE_TCC
    uint64_t mt[kMemWords];
    std::memcpy(mt, init, sizeof init);
    if (v != tcc_run_once(mt, x) || std::memcmp(mv, mt, sizeof mv) != 0)
      die("vcode and tcc functions disagree");
#endif
  }
  raw_runtime().release(rfn);
  std::fprintf(stderr,
               "bench_codegen: %zu vcode IR instructions (%u compare-branches) -> %zu machine "
               "instructions (%zu bytes)%s%s; LLVM O0 emits %zu; every row agrees on 8 inputs\n",
               m.functions().front()->code.size(), p.num_labels, vcode_insn_count(), sym.size,
               identical ? ", asmjit_raw's bytes identical" : "",
#if EXOJIT_HAVE_XBYAK
               xbyak_identical ? ", xbyak_raw's bytes identical" : "",
#else
               "",
#endif
               llvm_insns);
}

}  // namespace

void set_counters(benchmark::State& state, std::chrono::steady_clock::time_point start,
                  size_t own_insns) {
  double ns = double(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start)
          .count());
  state.counters["ns_per_insn"] = ns / (double(state.iterations()) * double(vcode_insn_count()));
  if (own_insns) state.counters["insns"] = double(own_insns);
}

size_t vcode_insn_count() {
  static const size_t n = [] {
    vcode::Code code = compile_vcode(program());
    const vcode::Code::Symbol& s = code.symbols().front();
    return vcode::count_instructions(code.data() + s.offset, s.size);
  }();
  return n;
}

}  // namespace exojit::bench

int main(int argc, char** argv) {
  using namespace exojit::bench;
  try {
    check_equivalence();
  } catch (const exojit::Error& e) {
    std::fprintf(stderr, "bench_codegen: %s\n", e.what());
    return 1;
  }
  benchmark::RegisterBenchmark("codegen/vcode_fast", bm_vcode_fast);
  benchmark::RegisterBenchmark("codegen/vcode_blinded", bm_vcode_blinded);
  benchmark::RegisterBenchmark("codegen/vcode_emit_only", bm_vcode_emit_only);
  benchmark::RegisterBenchmark("codegen/asmjit_raw", bm_asmjit_raw);
#if EXOJIT_HAVE_XBYAK
  benchmark::RegisterBenchmark("codegen/xbyak_raw", bm_xbyak_raw);
#endif
#if EXOJIT_HAVE_TCC
  benchmark::RegisterBenchmark("codegen/tcc", bm_tcc);
#endif
  benchmark::RegisterBenchmark("codegen/llvm_O0", bm_llvm_O0);
  return run_benchmarks_with_ratios(
      argc, argv,
      {Ratio{"codegen/vcode_fast", "codegen/asmjit_raw", 0.7, 0, "issue 19"},
       Ratio{"codegen/vcode_emit_only", "codegen/asmjit_raw", 0, 0, "the floor"},
       Ratio{"codegen/vcode_blinded", "codegen/vcode_fast", 1.3, 0, "blinding <= 1.3x (issue 20)"},
       Ratio{"codegen/xbyak_raw", "codegen/vcode_fast", 0, 0, ""},
       Ratio{"codegen/tcc", "codegen/vcode_fast", 0, 0, ""},
       Ratio{"codegen/llvm_O0", "codegen/vcode_fast", 0, 100, ""}});
}
