// SPDX-License-Identifier: MIT
// bench_kernels: generated kernels against the same algorithm compiled ahead of time.
//
//   kernels/cksum4k/vcode_fast   exojit::examples::build_cksum (tools/examples/cksum.h), compiled
//                                by vcode, on a hot 4 KiB buffer
//   kernels/cksum4k/gcc_O2       the same algorithm in C++ (cksum_gcc.cpp, -O2, not inlined)
//
// Both are checked against each other (on the 4 KiB buffer and on every length 0-300 at every
// alignment 0-7) before anything is timed.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <vector>

#include "cksum_gcc.h"
#include "examples/cksum.h"
#include "exojit/vcode.h"
#include "ratio_main.h"

namespace exojit::bench {

namespace {

constexpr size_t kLen = 4096;
using CksumFn = uint16_t(const uint8_t*, uint64_t);

CksumFn* vcode_cksum() {
  static vcode::Code code = [] {
    vcode::Module m;
    examples::build_cksum(m);
    return vcode::compile(m);
  }();
  return code.as<CksumFn>("cksum");
}

std::vector<uint8_t>& buffer() {
  static std::vector<uint8_t> buf = [] {
    std::vector<uint8_t> b(kLen + 64);
    uint32_t x = 12345;
    for (uint8_t& c : b) c = uint8_t((x = x * 1103515245u + 12345u) >> 24);
    return b;
  }();
  return buf;
}

void check_equivalence() {
  CksumFn* fn = vcode_cksum();
  const uint8_t* p = buffer().data();
  for (size_t align = 0; align < 8; ++align)
    for (size_t len = 0; len <= 300; ++len)
      if (fn(p + align, len) != cksum_gcc_O2(p + align, len)) {
        std::fprintf(stderr, "bench_kernels: checksums differ (length %zu, alignment %zu)\n", len,
                     align);
        std::abort();
      }
  uint16_t v = fn(p, kLen), g = cksum_gcc_O2(p, kLen);
  if (v != g) {
    std::fprintf(stderr, "bench_kernels: 4 KiB checksums differ: vcode 0x%04x, gcc 0x%04x\n", v, g);
    std::abort();
  }
}

void bm_cksum(benchmark::State& state, CksumFn* fn) {
  const uint8_t* p = buffer().data();
  benchmark::DoNotOptimize(fn(p, kLen));  // warm the buffer
  for (auto _ : state) {
    benchmark::DoNotOptimize(p);  // the compiler may not assume the same call repeats
    uint16_t sum = fn(p, kLen);
    benchmark::DoNotOptimize(sum);
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(kLen));
}

}  // namespace

}  // namespace exojit::bench

int main(int argc, char** argv) {
  using namespace exojit::bench;
  try {
    check_equivalence();
    benchmark::RegisterBenchmark("kernels/cksum4k/vcode_fast", bm_cksum, vcode_cksum());
  } catch (const exojit::Error& e) {
    std::fprintf(stderr, "bench_kernels: %s\n", e.what());
    return 1;
  }
  benchmark::RegisterBenchmark("kernels/cksum4k/gcc_O2", bm_cksum, &cksum_gcc_O2);
  return run_benchmarks_with_ratios(
      argc, argv, {Ratio{"kernels/cksum4k/vcode_fast", "kernels/cksum4k/gcc_O2", 1.25, 0, ""}});
}
