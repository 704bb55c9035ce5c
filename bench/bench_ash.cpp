// SPDX-License-Identifier: MIT
// bench_ash: ASH handlers against the same logic in the environment reached through its packet
// ring ([ASH96], Table 6 and Figure 5), sandboxing overhead (section 5.2) and the composed
// cache server (section 5.4), side by side in one run.
//
//   ash/remote_increment/{handler,ring}   UDP remote increment round trip between two simulated
//       hosts (thread mode, immediate link): the handler increments and replies in the kernel's
//       delivery; the ring path wakes the server environment, a real host thread, which does
//       the same in plain C++ and transmits the reply. Host (wall) time per round trip.
//   ash/envs/<N>/{handler,ring}           the same with N other busy environments (real
//       threads spinning) on the server's machine.
//   ash/remote_write/<bytes>/{sandboxed,sandboxed_hardened,trusted}  the remote-write handler
//       alone (Figure 3), run by the kernel's delivery on one message, checked (without and with
//       issue 20's hardening: blinded constants, masked offsets) vs trusted.
//   ash/cache_server/{handler,ring}       a hit of the composed UDP cache server: answered by the
//       handler vs served by the server environment (ring path).
//
// The scheduling model (Figure 5): the kernel's delivery, which runs handlers, is like an
// interrupt and has priority over environments; environments share the CPU with each other.
// So every environment thread (the busy ones and the ring-path server) runs under SCHED_IDLE,
// and the client/delivery thread at normal priority.
#include <benchmark/benchmark.h>
#include <sched.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "cache_server.h"
#include "exojit/runtime/scheduler.h"
#include "handlers.h"
#include "ratio_main.h"
#include "testbed.h"

namespace exojit::bench {
namespace {

using namespace exojit::ash;
using namespace exojit::ash::examples;
using runtime::Environment;
using runtime::Mode;

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "bench_ash: %s\n", what);
  std::exit(1);
}

// Environments compete among themselves, below the kernel's delivery: SCHED_IDLE, and (with
// EXOJIT_ASH_ENV_CPU=n) confined to CPU n.
void environment_priority() {
  sched_param p{};
  p.sched_priority = 0;
  if (sched_setscheduler(0, SCHED_IDLE, &p) != 0) die("sched_setscheduler(SCHED_IDLE) failed");
  if (const char* cpu = std::getenv("EXOJIT_ASH_ENV_CPU")) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(std::atoi(cpu), &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0) die("sched_setaffinity failed");
  }
}

// N busy environments on the server's machine.
struct BusyEnvironments {
  runtime::ThreadRunner runner;
  explicit BusyEnvironments(runtime::Kernel& k, int n) : runner(k) {
    for (int i = 0; i < n; ++i) {
      Environment& env =
          k.create_environment("busy" + std::to_string(i), runtime::Capability::root());
      runner.start(env, [this](Environment&) {
        environment_priority();
        volatile uint64_t x = 0;
        while (!runner.stopping()) x = x + 1;
      });
    }
  }
  ~BusyEnvironments() { runner.stop(); }
};

// The ring path's server: sleeps until its ring has a message, serves it, transmits the reply.
template <typename Serve>
struct RingServer {
  runtime::ThreadRunner runner;
  RingServer(Testbed& t, Serve serve) : runner(t.net.kernel_b) {
    runner.start(t.server(), [this, &t, serve](Environment& env) {
      environment_priority();
      while (!runner.stopping()) {
        uint32_t seen = env.wake_seq();
        if (runtime::RingSlot* s = t.server_message()) {
          std::vector<uint8_t> reply = serve(t.server_bytes(s), s->length);
          t.server_release();
          if (!reply.empty()) t.server_transmit(reply.data(), reply.size());
          continue;
        }
        env.wait(seen);
      }
    });
  }
  ~RingServer() { runner.stop(); }
};

// One round trip: send, then sleep until the reply is in the client's ring.
void round_trip(Testbed& t, const std::vector<uint8_t>& req, std::vector<uint8_t>* reply) {
  Environment& c = t.client();
  uint32_t seen = c.wake_seq();
  t.send(req);
  while (!t.take_reply(reply)) {
    c.wait(seen);
    seen = c.wake_seq();
  }
}

std::vector<uint8_t> increment_request(Testbed& t) {
  uint8_t payload[16] = {};
  uint64_t va = Testbed::kApp + 64;
  std::memcpy(payload, &va, 8);
  return t.request(payload, sizeof payload);
}

void bm_increment(benchmark::State& state, bool handler, int busy) {
  Testbed t(Mode::Threads, kIncrementPort);
  HandlerBuilder h("remote_increment");
  remote_increment(h);
  Handler ash(h, t.server(), t.options());
  if (handler) t.install(ash);
  auto serve = [&t](const uint8_t* f, size_t n) { return serve_increment(t.server(), f, n); };
  std::unique_ptr<RingServer<decltype(serve)>> server;
  if (!handler) server = std::make_unique<RingServer<decltype(serve)>>(t, serve);
  BusyEnvironments others(t.net.kernel_b, busy);
  std::vector<uint8_t> req = increment_request(t), reply;
  uint64_t n = 0;
  for (auto _ : state) {
    round_trip(t, req, &reply);
    ++n;
  }
  uint64_t x;
  t.server().user_copy_in(&x, Testbed::kApp + 64, 8);
  if (x != n || reply.size() != kUdpHeaders + 16) die("remote increment: wrong count or reply");
  if (handler && ash.counters().committed != n) die("remote increment: the handler aborted");
}

void bm_remote_write(benchmark::State& state, uint32_t bytes, Sandbox sandbox, bool harden) {
  Testbed t(Mode::Threads, kIncrementPort);
  HandlerBuilder h("remote_write");
  remote_write(h);
  HandlerOptions o = t.options(sandbox);
  o.harden = harden;
  Handler ash(h, t.server(), o);
  std::vector<uint8_t> data(bytes, 0x5a);
  auto f = remote_write_frame(t.net.nic_b.mac(), Testbed::kApp + 256, data.data(), bytes);
  runtime::HandlerContext ctx(t.net.kernel_b, t.server(), t.net.nic_b, false);
  runtime::Message msg{f.data(), uint32_t(f.size()), t.server_filter};
  for (auto _ : state) {
    if (ash.handle(ctx, msg) != runtime::HandlerVerdict::Consumed) die("remote write aborted");
    benchmark::ClobberMemory();
  }
}

void bm_cache(benchmark::State& state, bool handler) {
  Testbed t(Mode::Threads, kCachePort);
  CacheServer cache(t.server(), Testbed::kApp);
  cache.put(42, std::vector<uint8_t>(256, 0x42));
  HandlerBuilder h("cache_server");
  cache.build(h, exojit::libos::TwoHosts::kIpB, kCachePort);
  Handler ash(h, t.server(), t.options());
  if (handler) t.install(ash);
  auto serve = [&cache](const uint8_t* f, size_t n) { return cache.serve(f, n); };
  std::unique_ptr<RingServer<decltype(serve)>> server;
  if (!handler) server = std::make_unique<RingServer<decltype(serve)>>(t, serve);
  std::vector<uint8_t> req = cache_request(t, 42), reply;
  for (auto _ : state) round_trip(t, req, &reply);
  if (reply.size() != kUdpHeaders + 4 + 256) die("cache server: wrong reply");
  if (handler && ash.counters().committed == 0) die("cache server: the handler never committed");
}

}  // namespace
}  // namespace exojit::bench

int main(int argc, char** argv) {
  using namespace exojit::bench;
  using exojit::ash::Sandbox;
  auto reg = [](const std::string& name, auto fn) {
    benchmark::RegisterBenchmark(name.c_str(), fn)->UseRealTime();
  };
  reg("ash/remote_increment/handler", [](benchmark::State& s) { bm_increment(s, true, 0); });
  reg("ash/remote_increment/ring", [](benchmark::State& s) { bm_increment(s, false, 0); });
  for (int n : {1, 2, 4, 8, 16}) {
    std::string base = "ash/envs/" + std::to_string(n);
    reg(base + "/handler", [n](benchmark::State& s) { bm_increment(s, true, n); });
    reg(base + "/ring", [n](benchmark::State& s) { bm_increment(s, false, n); });
  }
  for (uint32_t bytes : {40u, 128u}) {
    std::string base = "ash/remote_write/" + std::to_string(bytes);
    reg(base + "/sandboxed",
        [bytes](benchmark::State& s) { bm_remote_write(s, bytes, Sandbox::Checked, false); });
    reg(base + "/sandboxed_hardened",
        [bytes](benchmark::State& s) { bm_remote_write(s, bytes, Sandbox::Checked, true); });
    reg(base + "/trusted",
        [bytes](benchmark::State& s) { bm_remote_write(s, bytes, Sandbox::Trusted, false); });
  }
  reg("ash/cache_server/handler", [](benchmark::State& s) { bm_cache(s, true); });
  reg("ash/cache_server/ring", [](benchmark::State& s) { bm_cache(s, false); });
  return run_benchmarks_with_ratios(
      argc, argv,
      {Ratio{"ash/remote_increment/ring", "ash/remote_increment/handler", 0, 3,
             "round trip: handler >= 3x faster"},
       Ratio{"ash/envs/16/handler", "ash/envs/1/handler", 1.1, 0, "handler flat from 1 to 16"},
       Ratio{"ash/envs/16/ring", "ash/envs/1/ring", 0, 0, "the ring path grows"},
       Ratio{"ash/envs/16/ring", "ash/envs/16/handler", 0, 0, "16 busy environments"},
       Ratio{"ash/remote_write/40/sandboxed", "ash/remote_write/40/trusted", 1.1, 0,
             "sandboxing overhead <= 10%"},
       Ratio{"ash/remote_write/128/sandboxed", "ash/remote_write/128/trusted", 1.1, 0,
             "sandboxing overhead <= 10%"},
       Ratio{"ash/remote_write/40/sandboxed_hardened", "ash/remote_write/40/trusted", 1.15, 0,
             "hardened sandbox <= 15% (issue 20)"},
       Ratio{"ash/remote_write/128/sandboxed_hardened", "ash/remote_write/128/trusted", 1.15, 0,
             "hardened sandbox <= 15% (issue 20)"},
       Ratio{"ash/cache_server/ring", "ash/cache_server/handler", 0, 0, "hit latency"}});
}
