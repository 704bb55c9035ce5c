// SPDX-License-Identifier: MIT
// bench_tiers: vcode's two tiers — code quality against gcc -O2, compile cost, and tier-up's
// break-even point.
//
//   tiers/<kernel>/<impl>    kernel cksum4k (Internet checksum of a hot 4 KiB buffer,
//                            tools/examples/cksum.h) or hash1k (1,000 rounds of xor, multiply,
//                            xor-shift); impl vcode_fast, vcode_llvm (O2), gcc_O2 (the same
//                            algorithm in C, -O2)
//   tiers/compile/<impl>     compile() of the 1,000-record program of bench_codegen on each tier
//                            (module already built and verified); counter ns_per_vinsn
//
// After the rows: each kernel's tier-up break-even (how many calls the LLVM tier's faster code
// needs to pay back its extra compile time), from the kernel's own compile times (median of 15)
// and the rows' per-call times.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "cksum_gcc.h"
#include "codegen_program.h"
#include "examples/cksum.h"
#include "exojit/vcode.h"
#include "hash_gcc.h"
#include "ratio_main.h"

namespace exojit::bench {

namespace {

using namespace vcode;

constexpr size_t kLen = 4096;
using CksumFn = uint16_t(const uint8_t*, uint64_t);
using HashFn = uint64_t(uint64_t);

void build_hash1k(Module& m) {
  Builder b(m, "hash1k", Type::U64, {Type::U64});
  Reg h = b.arg(0), i = b.getreg(Type::U64), t = b.getreg(Type::U64);
  Label loop = b.label();
  b.set(i, 0);
  b.place(loop);
  b.xor_(h, h, i);
  b.mul(h, h, int64_t(0x9e3779b97f4a7c15ull));
  b.rsh(t, h, 29);
  b.xor_(h, h, t);
  b.add(i, i, 1);
  b.blt(i, 1000, loop);
  b.ret(h);
  b.finish();
}

const Module& kernel_module(bool cksum) {
  static const Module c = [] {
    Module m;
    examples::build_cksum(m);
    return m;
  }();
  static const Module h = [] {
    Module m;
    build_hash1k(m);
    return m;
  }();
  return cksum ? c : h;
}

CompileOptions tier(Tier t) {
  CompileOptions o;
  o.tier = t;
  return o;
}

const Code& kernel_code(bool cksum, Tier t) {
  static const Code codes[2][2] = {{compile(kernel_module(false), tier(Tier::Fast)),
                                    compile(kernel_module(false), tier(Tier::Llvm))},
                                   {compile(kernel_module(true), tier(Tier::Fast)),
                                    compile(kernel_module(true), tier(Tier::Llvm))}};
  return codes[cksum][t == Tier::Llvm];
}

std::vector<uint8_t>& buffer() {
  static std::vector<uint8_t> buf = [] {
    std::vector<uint8_t> b(kLen);
    uint32_t x = 12345;
    for (uint8_t& c : b) c = uint8_t((x = x * 1103515245u + 12345u) >> 24);
    return b;
  }();
  return buf;
}

void check_agreement() {
  const uint8_t* p = buffer().data();
  for (Tier t : {Tier::Fast, Tier::Llvm}) {
    auto ck = kernel_code(true, t).as<CksumFn>("cksum");
    auto hs = kernel_code(false, t).as<HashFn>("hash1k");
    for (size_t len : {size_t(0), size_t(1), size_t(1501), kLen})
      if (ck(p, len) != cksum_gcc_O2(p, len)) {
        std::fprintf(stderr, "bench_tiers: cksum differs from gcc's (tier %d, length %zu)\n",
                     int(t), len);
        std::abort();
      }
    for (uint64_t seed : {0ull, 1ull, 0xdeadbeefull})
      if (hs(seed) != hash1k_gcc_O2(seed)) {
        std::fprintf(stderr, "bench_tiers: hash1k differs from gcc's (tier %d)\n", int(t));
        std::abort();
      }
  }
}

void bm_cksum(benchmark::State& state, CksumFn* fn) {
  const uint8_t* p = buffer().data();
  for (auto _ : state) {
    benchmark::DoNotOptimize(p);
    benchmark::DoNotOptimize(fn(p, kLen));
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(kLen));
}

void bm_hash(benchmark::State& state, HashFn* fn) {
  uint64_t seed = 1;
  for (auto _ : state) {
    benchmark::DoNotOptimize(seed);
    seed = fn(seed);
  }
}

const Module& program_module() {
  static const Module m = [] {
    Module mod;
    build_vcode(mod, program());
    return mod;
  }();
  return m;
}

void bm_compile(benchmark::State& state, Tier t) {
  const Module& m = program_module();
  CompileOptions o = tier(t);
  for (auto _ : state) {
    Code code = compile(m, o);
    benchmark::DoNotOptimize(code.data());
  }
  const double records = double(m.functions()[0]->code.size());
  state.counters["ns_per_vinsn"] =
      benchmark::Counter(double(state.iterations()) * records,
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

// Median wall time of compiling `m` on tier t, in ns.
double compile_ns(const Module& m, Tier t) {
  std::vector<double> v;
  for (int i = 0; i < 15; ++i) {
    auto start = std::chrono::steady_clock::now();
    Code code = compile(m, tier(t));
    v.push_back(double(std::chrono::duration_cast<std::chrono::nanoseconds>(
                           std::chrono::steady_clock::now() - start)
                           .count()));
  }
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

void print_break_even(const RowTime& time, std::FILE* out) {
  for (bool cksum : {true, false}) {
    const char* k = cksum ? "cksum4k" : "hash1k";
    double fast = time(fmt::format("tiers/{}/vcode_fast", k));
    double llvm = time(fmt::format("tiers/{}/vcode_llvm", k));
    if (fast < 0 || llvm < 0) continue;
    const Module& m = kernel_module(cksum);
    double cf = compile_ns(m, Tier::Fast), cl = compile_ns(m, Tier::Llvm);
    if (llvm >= fast) {
      std::fprintf(out,
                   "tier-up %s: compile fast %.1f us, llvm %.0f us; the LLVM tier's code is not "
                   "faster (%.1f vs %.1f ns per call): no break-even\n",
                   k, cf / 1e3, cl / 1e3, llvm, fast);
      continue;
    }
    std::fprintf(out,
                 "tier-up %s: compile fast %.1f us, llvm %.0f us; per call fast %.1f ns, llvm "
                 "%.1f ns: break-even after %.0f calls\n",
                 k, cf / 1e3, cl / 1e3, fast, llvm, (cl - cf) / (fast - llvm));
  }
}

}  // namespace

}  // namespace exojit::bench

int main(int argc, char** argv) {
  using namespace exojit::bench;
  try {
    check_agreement();
  } catch (const exojit::Error& e) {
    std::fprintf(stderr, "bench_tiers: %s\n", e.what());
    return 1;
  }
  using exojit::vcode::Tier;
  benchmark::RegisterBenchmark("tiers/cksum4k/vcode_fast", bm_cksum,
                               kernel_code(true, Tier::Fast).as<CksumFn>("cksum"));
  benchmark::RegisterBenchmark("tiers/cksum4k/vcode_llvm", bm_cksum,
                               kernel_code(true, Tier::Llvm).as<CksumFn>("cksum"));
  benchmark::RegisterBenchmark("tiers/cksum4k/gcc_O2", bm_cksum, &cksum_gcc_O2);
  benchmark::RegisterBenchmark("tiers/hash1k/vcode_fast", bm_hash,
                               kernel_code(false, Tier::Fast).as<HashFn>("hash1k"));
  benchmark::RegisterBenchmark("tiers/hash1k/vcode_llvm", bm_hash,
                               kernel_code(false, Tier::Llvm).as<HashFn>("hash1k"));
  benchmark::RegisterBenchmark("tiers/hash1k/gcc_O2", bm_hash, &hash1k_gcc_O2);
  benchmark::RegisterBenchmark("tiers/compile/vcode_fast", bm_compile, Tier::Fast);
  benchmark::RegisterBenchmark("tiers/compile/vcode_llvm", bm_compile, Tier::Llvm);
  return run_benchmarks_with_ratios(
      argc, argv,
      {Ratio{"tiers/cksum4k/vcode_llvm", "tiers/cksum4k/gcc_O2", 1.05, 0, "LLVM tier vs gcc -O2"},
       Ratio{"tiers/hash1k/vcode_llvm", "tiers/hash1k/gcc_O2", 1.05, 0, "LLVM tier vs gcc -O2"},
       Ratio{"tiers/cksum4k/vcode_fast", "tiers/cksum4k/vcode_llvm", 0, 0, "LLVM tier speed-up"},
       Ratio{"tiers/hash1k/vcode_fast", "tiers/hash1k/vcode_llvm", 0, 0, "LLVM tier speed-up"},
       Ratio{"tiers/compile/vcode_llvm", "tiers/compile/vcode_fast", 0, 0,
             "compile cost, LLVM tier over fast tier"}},
      print_break_even);
}
