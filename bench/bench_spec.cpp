// SPDX-License-Identifier: MIT
// bench_spec: Tempo-style specialization of the libOS's UDP send path ([TEMPO04]), generic vs
// specialized, side by side in one run.
//
//   spec/udp_send/<bytes>/generic      exo_sendto() of a <bytes>-byte payload through the NIC
//                                      model (the frame leaves at once: no link); counter
//                                      code_bytes: the native machine code of exo_sendto and of
//                                      every libOS function it reaches (symbol sizes in this
//                                      executable, as the host compiler built them)
//   spec/udp_send/<bytes>/specialized  the same send through a specialized token (socket,
//                                      destination, route, ARP entry, options and the size
//                                      static); code_bytes: the residual code
//   spec/udp_send/<bytes>/specialized_baseline_cpu
//                                      the same, the residual code compiled for the CPU the
//                                      native generic path is built for (baseline x86-64, no
//                                      AVX) instead of the host's: what specialization alone gives
//   spec/specialize/cold               specialize + optimize + compile one context (cache missed)
//   spec/specialize/cached             the same request answered by the cache
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <vector>

#include "exojit/specializer/send.h"
#include "ratio_main.h"
#include "sender.h"

namespace exojit::bench {
namespace {

using namespace exojit::specializer;
using specializer::testing::Sender;

std::map<std::string, double> code_bytes;  // per row, for the size ratio

std::string row(uint32_t bytes, const char* path) {
  return "spec/udp_send/" + std::to_string(bytes) + "/" + path;
}

[[noreturn]] void die(const char* what, int rc) {
  std::fprintf(stderr, "bench_spec: %s (%d)\n", what, rc);
  std::exit(1);
}

// One machine: a stack, its specializer and code guard, and a socket.
struct Fixture {
  explicit Fixture(SpecializerOptions options = {}) : sp(options) {}
  Sender net{{.capture = false}};
  Specializer sp;
  SendSpecializer guard{sp, net.stack()};
  int fd = exo_socket(net.stack());
};

Fixture& fixture() {
  static Fixture f;
  return f;
}

// A second machine whose specializer targets baseline x86-64 (one code guard per stack).
Fixture& baseline_fixture() {
  static Fixture f({.host_cpu = false});
  return f;
}

void bm_generic(benchmark::State& state, uint32_t bytes) {
  Fixture& f = fixture();
  std::vector<uint8_t> payload(bytes, 0x5a);
  exo_stack* s = f.net.stack();
  for (auto _ : state) {
    int rc = exo_sendto(s, f.fd, payload.data(), bytes, Sender::kPeer, 7);
    if (rc != int(bytes)) die("generic send failed", rc);
  }
  double size = double(f.sp.native_code("exo_sendto").bytes);
  state.counters["code_bytes"] = size;
  code_bytes[row(bytes, "generic")] = size;
}

// Sends through a token of `f`'s guard; returns the size of the code the token ran.
double send_through_token(benchmark::State& state, Fixture& f, uint32_t bytes) {
  std::vector<uint8_t> payload(bytes, 0x5a);
  SendToken t = f.guard.request({.fd = f.fd, .ip = Sender::kPeer, .port = 7, .adu = bytes});
  for (auto _ : state) {
    int rc = t.send(payload.data(), bytes);
    if (rc != int(bytes)) die("specialized send failed", rc);
  }
  double size = double(t.residual()->code_bytes);
  state.counters["code_bytes"] = size;
  return size;
}

void bm_specialized(benchmark::State& state, uint32_t bytes) {
  code_bytes[row(bytes, "specialized")] = send_through_token(state, fixture(), bytes);
}

void bm_specialized_baseline(benchmark::State& state, uint32_t bytes) {
  send_through_token(state, baseline_fixture(), bytes);
}

void bm_specialize(benchmark::State& state, bool cached) {
  Fixture& f = fixture();
  Declaration d =
      declare_send(f.net.stack(), {.fd = f.fd, .ip = Sender::kPeer, .port = 7, .adu = 512});
  auto warm = f.sp.specialize(d);  // the JIT and the bitcode are set up before timing
  for (auto _ : state) {
    if (!cached) {  // freeing the previous code is not part of making the next
      state.PauseTiming();
      f.sp.forget(d.key());
      state.ResumeTiming();
    }
    benchmark::DoNotOptimize(f.sp.specialize(d));
  }
}

void print_sizes_and_costs(const RowTime& time, std::FILE* out) {
  for (uint32_t bytes : {64u, 1024u}) {
    auto g = code_bytes.find(row(bytes, "generic")), s = code_bytes.find(row(bytes, "specialized"));
    if (g == code_bytes.end() || s == code_bytes.end() || s->second <= 0) continue;
    double q = g->second / s->second;
    std::fprintf(out,
                 "ratio code_bytes %s / %s = %.3g   (%.0f / %.0f bytes)   target >= 20: %s   "
                 "(generic: native code of every function reachable)\n",
                 g->first.c_str(), s->first.c_str(), q, g->second, s->second,
                 q >= 20 ? "met" : "MISSED");
  }
  double cold = time("spec/specialize/cold"), cached = time("spec/specialize/cached");
  if (cold > 0)
    std::fprintf(out, "specialize one context (cold): %.2f ms   target <= 20 ms: %s\n", cold / 1e6,
                 cold <= 20e6 ? "met" : "MISSED");
  if (cached > 0) std::fprintf(out, "specialize one context (cache hit): %.2f us\n", cached / 1e3);
}

}  // namespace
}  // namespace exojit::bench

int main(int argc, char** argv) {
  using namespace exojit::bench;
  for (uint32_t bytes : {64u, 1024u}) {
    benchmark::RegisterBenchmark(row(bytes, "generic").c_str(), bm_generic, bytes);
    benchmark::RegisterBenchmark(row(bytes, "specialized").c_str(), bm_specialized, bytes);
    benchmark::RegisterBenchmark(row(bytes, "specialized_baseline_cpu").c_str(),
                                 bm_specialized_baseline, bytes);
  }
  benchmark::RegisterBenchmark("spec/specialize/cold", bm_specialize, false)
      ->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("spec/specialize/cached", bm_specialize, true)
      ->Unit(benchmark::kMicrosecond);
  return run_benchmarks_with_ratios(
      argc, argv,
      {Ratio{row(64, "generic"), row(64, "specialized"), 0, 2, "Tempo: 1.25"},
       Ratio{row(1024, "generic"), row(1024, "specialized"), 0, 2, "Tempo: 1.25"},
       Ratio{row(64, "generic"), row(64, "specialized_baseline_cpu"), 0, 0,
             "residual for baseline x86-64"},
       Ratio{row(1024, "generic"), row(1024, "specialized_baseline_cpu"), 0, 0,
             "residual for baseline x86-64"},
       Ratio{"spec/specialize/cold", "spec/specialize/cached", 0, 0, "cache hit speed-up"}},
      print_sizes_and_costs);
}
