// SPDX-License-Identifier: MIT
// bench_ilp: the ASH paper's Table 5 on this machine — integrating checksum (and byte swap)
// into the copy of 4 KiB messages.
//
//   ilp/<op>/<temp>/<impl>
//     op    copy_cksum, copy_cksum_bswap
//     temp  hot (8 source + 8 destination messages: a 64 KiB working set, in cache)
//           cold (32,768 + 32,768 messages: 256 MiB, walked in order, never in cache)
//     impl  memcpy    the copy alone (the limit)
//           separate  memcpy, then the C reference of each pipe over the copy
//           fused_c   a hand-fused scalar C loop (ilp_fused_c.cpp, -O2)
//           dilp      the pipes cksum (+ bswap32) composed and compiled by exojit::pipes
//
//   ilp/copies/<n>   the paper's Table 4: a cold message copied once (single), twice through a
//                    4 KiB intermediate buffer still in cache (double), or twice with the
//                    intermediate buffer flushed from the cache in between (double_uncached,
//                    clflush; x86-64 only)
//
// Every implementation is checked against the others before anything is timed.
#include <benchmark/benchmark.h>

#if defined(__x86_64__)
#include <immintrin.h>  // _mm_clflush, _mm_mfence
#endif

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "exojit/pipes.h"
#include "ilp_fused_c.h"
#include "ratio_main.h"

namespace exojit::bench {

namespace {

constexpr size_t kMsg = 4096;
constexpr size_t kHotMessages = 8;       // 2 x 8 x 4 KiB = 64 KiB
constexpr size_t kColdMessages = 32768;  // 2 x 32768 x 4 KiB = 256 MiB

struct Messages {
  size_t count;
  std::unique_ptr<uint8_t[]> src, dst;
  uint8_t* source(size_t i) const { return src.get() + i * kMsg; }
  uint8_t* dest(size_t i) const { return dst.get() + i * kMsg; }
};

Messages make_messages(size_t count) {
  Messages m{count, std::make_unique<uint8_t[]>(count * kMsg),
             std::make_unique<uint8_t[]>(count * kMsg)};
  uint32_t x = 2463534242u;
  for (size_t i = 0; i < count * kMsg; ++i) {
    x ^= x << 13, x ^= x >> 17, x ^= x << 5;
    m.src[i] = uint8_t(x);
  }
  std::memset(m.dst.get(), 0, count * kMsg);  // touch every page before timing
  return m;
}

Messages& messages(bool hot) {
  static Messages h = make_messages(kHotMessages);
  static Messages c = make_messages(kColdMessages);
  return hot ? h : c;
}

pipes::CompiledPipes& dilp(bool with_bswap) {
  static auto build = [](bool bswap) {
    pipes::PipeList pl;
    pipes::library::cksum(pl);
    if (bswap) pipes::library::bswap32(pl);
    return pipes::compile(pl, pipes::Direction::Write);
  };
  static pipes::CompiledPipes plain = build(false), swapped = build(true);
  return with_bswap ? swapped : plain;
}

enum class Impl { Memcpy, Separate, FusedC, Dilp };

// glibc's memcpy itself: a call the compiler cannot turn into its own inline copy (gcc expands
// a constant 4 KiB memcpy into `rep movsq`, which is not what programs get from the library).
void* (*volatile library_memcpy)(void*, const void*, size_t) = &std::memcpy;

// One message through `impl`; returns the checksum accumulator (0 for memcpy).
uint32_t run(Impl impl, bool bswap, uint8_t* dst, const uint8_t* src) {
  switch (impl) {
    case Impl::Memcpy:
      library_memcpy(dst, src, kMsg);
      return 0;
    case Impl::Separate: {
      library_memcpy(dst, src, kMsg);
      uint32_t acc = pipes::reference::cksum(0, dst, kMsg);
      if (bswap) pipes::reference::bswap32(dst, kMsg);
      return acc;
    }
    case Impl::FusedC:
      return bswap ? copy_cksum_bswap_fused(dst, src, kMsg, 0)
                   : copy_cksum_fused(dst, src, kMsg, 0);
    case Impl::Dilp: {
      pipes::CompiledPipes& p = dilp(bswap);
      static const pipes::CompiledPipes::Persistent acc = p.persistent(0, "acc");
      p.set(acc, 0);
      p.function()(dst, src, kMsg);
      return uint32_t(p.get(acc));
    }
  }
  return 0;
}

void check_agreement() {
  const Messages& m = messages(true);
  for (bool bswap : {false, true}) {
    std::vector<uint8_t> want(kMsg);
    uint32_t want_acc = run(Impl::Separate, bswap, m.dest(0), m.source(1));
    std::memcpy(want.data(), m.dest(0), kMsg);
    for (Impl impl : {Impl::FusedC, Impl::Dilp}) {
      std::memset(m.dest(0), 0, kMsg);
      uint32_t acc = run(impl, bswap, m.dest(0), m.source(1));
      if (acc != want_acc || std::memcmp(m.dest(0), want.data(), kMsg) != 0) {
        std::fprintf(stderr, "bench_ilp: implementation %d disagrees with separate passes%s\n",
                     int(impl), bswap ? " (with bswap)" : "");
        std::abort();
      }
    }
  }
}

void bm_ilp(benchmark::State& state, Impl impl, bool bswap, bool hot) {
  const Messages& m = messages(hot);
  size_t i = 0;
  for (auto _ : state) {
    uint32_t acc = run(impl, bswap, m.dest(i), m.source(i));
    benchmark::DoNotOptimize(acc);
    benchmark::ClobberMemory();
    if (++i == m.count) i = 0;
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(kMsg));
}

// --- Table 4: copies ---------------------------------------------------------------------

enum class Copies { Single, Double, DoubleUncached };

void bm_copies(benchmark::State& state, Copies how) {
  const Messages& m = messages(false);
  alignas(64) static uint8_t intermediate[kMsg];  // a driver's buffer, reused for every message
  size_t i = 0;
  for (auto _ : state) {
    if (how == Copies::Single) {
      library_memcpy(m.dest(i), m.source(i), kMsg);
    } else {
      library_memcpy(intermediate, m.source(i), kMsg);
#if defined(__x86_64__)
      if (how == Copies::DoubleUncached) {
        for (size_t line = 0; line < kMsg; line += 64) _mm_clflush(intermediate + line);
        _mm_mfence();
      }
#endif
      library_memcpy(m.dest(i), intermediate, kMsg);
    }
    benchmark::ClobberMemory();
    if (++i == m.count) i = 0;
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(kMsg));
}

}  // namespace

}  // namespace exojit::bench

int main(int argc, char** argv) {
  using namespace exojit::bench;
  const char* impl_names[] = {"memcpy", "separate", "fused_c", "dilp"};
  std::vector<Ratio> ratios;
  try {
    check_agreement();
  } catch (const exojit::Error& e) {
    std::fprintf(stderr, "bench_ilp: %s\n", e.what());
    return 1;
  }
  for (bool bswap : {false, true}) {
    const std::string op = bswap ? "copy_cksum_bswap" : "copy_cksum";
    for (bool hot : {true, false}) {
      const std::string prefix = "ilp/" + op + (hot ? "/hot/" : "/cold/");
      for (int k = 0; k < 4; ++k)
        benchmark::RegisterBenchmark((prefix + impl_names[k]).c_str(), bm_ilp, Impl(k), bswap, hot);
      // Ratios of times: fused_c / dilp >= 1 means DILP is at least as fast as hand-fused C.
      double min_vs_fused = !bswap && hot ? 2.0 : 1.0;
      ratios.push_back(Ratio{prefix + "fused_c", prefix + "dilp", 0, min_vs_fused,
                             "DILP speed-up over hand-fused C"});
      ratios.push_back(
          Ratio{prefix + "separate", prefix + "dilp", 0, 0, "DILP speed-up over separate passes"});
      ratios.push_back(Ratio{prefix + "memcpy", prefix + "dilp", 0, !bswap && !hot ? 0.6 : 0,
                             "DILP throughput as a fraction of memcpy's"});
    }
  }
  benchmark::RegisterBenchmark("ilp/copies/single", bm_copies, Copies::Single);
  benchmark::RegisterBenchmark("ilp/copies/double", bm_copies, Copies::Double);
#if defined(__x86_64__)
  benchmark::RegisterBenchmark("ilp/copies/double_uncached", bm_copies, Copies::DoubleUncached);
#endif
  ratios.push_back(Ratio{"ilp/copies/double", "ilp/copies/single", 0, 0,
                         "a second copy, in cache (paper: 1.4)"});
  ratios.push_back(Ratio{"ilp/copies/double_uncached", "ilp/copies/single", 0, 0,
                         "a second copy, flushed (paper: 1.8)"});
  return run_benchmarks_with_ratios(argc, argv, ratios);
}
