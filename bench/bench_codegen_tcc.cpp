// SPDX-License-Identifier: MIT
// codegen/tcc: the program of codegen_program.h as C source, compiled and relocated into memory
// by TinyCC's libtcc (Debian libtcc-dev; tcc, the compiler, for its runtime directory), 'C's
// sibling: the client writes C text where vcode's writes builder calls, so writing the text is
// part of each iteration, as recording is part of vcode_fast's.
//
// The function is `uint64_t fn(uint64_t* mem, uint64_t x)` over six 64-bit locals, forward gotos
// for the branches: the program's semantics exactly (wrapping unsigned arithmetic, immediates
// sign-extended to 64 bits, unsigned compares).
#include <libtcc.h>

#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "codegen_program.h"

namespace exojit::bench {

namespace {

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "bench_codegen (tcc): %s\n", what);
  std::abort();
}

void put(std::string& s, int64_t v) {
  char buf[24];
  s.append(buf, std::to_chars(buf, buf + sizeof buf, v).ptr);
}
void reg(std::string& s, int r) {
  s += 'r';
  s += char('0' + r);
}
// An immediate as the 64-bit unsigned value vcode's sign-extended imm32 is.
void imm(std::string& s, int32_t v) {
  s += "(u64)";
  put(s, v);
  s += "LL";
}

std::string c_source(const Program& p) {
  std::string s;
  s.reserve(40 * p.steps.size());
  s += "typedef unsigned long long u64;\nu64 fn(u64* mem, u64 r0) {\n u64 r1, r2, r3, r4, r5;\n";
  static const char* const kOps[] = {" + ", " - ", " ^ ", " & ", " | ", " * ", " << ", " >> "};
  static const char* const kCmp[] = {" < ", " <= ", " > ", " >= ", " == ", " != "};
  for (const Step& st : p.steps) {
    switch (st.kind) {
      case Kind::Bin:
      case Kind::BinI:
        s += ' ';
        reg(s, st.d);
        s += " = ";
        reg(s, st.a);
        s += kOps[st.op];
        if (st.kind == Kind::Bin)
          reg(s, st.b);
        else if (Alu(st.op) == Alu::Shl || Alu(st.op) == Alu::Shr)
          put(s, st.imm & 63);
        else
          imm(s, st.imm);
        s += ";\n";
        break;
      case Kind::Load:
        s += ' ';
        reg(s, st.d);
        s += " = mem[";
        put(s, st.imm / 8);
        s += "];\n";
        break;
      case Kind::Store:
        s += " mem[";
        put(s, st.imm / 8);
        s += "] = ";
        reg(s, st.a);
        s += ";\n";
        break;
      case Kind::BrR:
      case Kind::BrI:
        s += " if (";
        reg(s, st.a);
        s += kCmp[st.op];
        if (st.kind == Kind::BrR)
          reg(s, st.b);
        else
          imm(s, st.imm);
        s += ") goto L";
        put(s, st.label);
        s += ";\n";
        break;
      case Kind::Place:
        s += "L";
        put(s, st.label);
        s += ":;\n";
        break;
      case Kind::Ret:
        s += " return ";
        reg(s, st.a);
        s += ";\n";
        break;
    }
  }
  return s + "}\n";
}

void report(void* failed, const char* message) {
  std::fprintf(stderr, "bench_codegen (tcc): %s\n", message);
  *static_cast<bool*>(failed) = true;
}

// Compiles `source`; the caller deletes the state (which frees the code).
TCCState* compile(const std::string& source, TccFn* fn) {
  TCCState* s = tcc_new();
  if (!s) die("tcc_new failed");
  bool failed = false;
  tcc_set_error_func(s, &failed, report);
  tcc_set_options(s, "-nostdlib");  // nothing to link: the function calls nothing
  tcc_set_output_type(s, TCC_OUTPUT_MEMORY);
  if (tcc_compile_string(s, source.c_str()) == -1 || failed) die("tcc_compile_string failed");
  if (tcc_relocate(s, TCC_RELOCATE_AUTO) < 0) die("tcc_relocate failed");
  *fn = reinterpret_cast<TccFn>(tcc_get_symbol(s, "fn"));
  if (!*fn) die("no symbol fn");
  return s;
}

}  // namespace

uint64_t tcc_run_once(uint64_t* mem, uint64_t x) {
  TccFn fn;
  TCCState* s = compile(c_source(program()), &fn);
  uint64_t r = fn(mem, x);
  tcc_delete(s);
  return r;
}

void bm_tcc(benchmark::State& state) {
  const Program& p = program();
  size_t bytes = 0;
  auto start = std::chrono::steady_clock::now();
  for (auto _ : state) {
    std::string source = c_source(p);
    bytes = source.size();
    TccFn fn;
    TCCState* s = compile(source, &fn);
    benchmark::DoNotOptimize(fn);
    tcc_delete(s);
  }
  set_counters(state, start, 0);
  state.counters["source_bytes"] = double(bytes);
}

}  // namespace exojit::bench
