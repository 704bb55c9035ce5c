// SPDX-License-Identifier: MIT
// demux/threads/<T>/dpf, demux/insert_under_load, demux/grace_period/<R>: demultiplexing on
// several threads, beside a writer, and what a writer's grace period costs.
#include <exojit/grace_period.h>

#include <atomic>
#include <chrono>
#include <random>
#include <thread>

#include "common.h"

namespace exojit::bench {
namespace {

// The ring of scale/10000 (10,000 connection filters, packets at random among them) demultiplexed
// by T threads at once: one iteration is kBatch packets in all, kBatch / T per thread, timed from
// the start signal to the last thread's end (manual time), so iterations per second across rows
// compare aggregate rates. The threads wait for a batch spinning (a yield would hand the CPU
// away on a loaded machine); the harness's atomics are per batch, not per packet.
constexpr size_t kBatch = 1 << 16;

struct Pool {
  explicit Pool(unsigned n) : threads(n) {}
  std::atomic<uint64_t> batch{0};
  std::atomic<unsigned> finished{0};
  std::atomic<bool> stop{false};
  unsigned threads;
};

struct TenThousand {
  std::vector<Conn> conns = connections(10000, 11 + 10000);
  Ring ring;
  std::unique_ptr<Engine> engine = std::make_unique<Engine>();
  TenThousand() {
    std::mt19937_64 rng(5);
    for (size_t i = 0; i < kRing; ++i) {
      const Conn& c = conns[rng() % conns.size()];
      ring.packets.push_back(packet_for(c));
      ring.want.push_back(c.id);
    }
    for (const Conn& c : conns) engine->insert(dpf_filter(c, true), kTrusted);
  }
};

// Demultiplexes `n` packets of the ring from `start`; the number of wrong answers.
size_t demux_run(Engine& e, const Ring& ring, size_t start, size_t n) {
  size_t wrong = 0;
  for (size_t i = start; i < start + n; ++i) {
    const Bytes& p = ring.packets[i % kRing];
    wrong += e.demux(p.data(), p.size()) != ring.want[i % kRing];
  }
  return wrong;
}

}  // namespace

void register_threads() {
  auto world = std::make_shared<std::unique_ptr<TenThousand>>();
  for (unsigned t : {1u, 2u}) {
    std::string row = "demux/threads/" + std::to_string(t) + "/dpf";
    benchmark::RegisterBenchmark(row.c_str(), [=](benchmark::State& s) {
      if (!*world) *world = std::make_unique<TenThousand>();
      TenThousand& w = **world;
      Pool pool(t);
      std::atomic<size_t> wrong{0};
      std::vector<std::thread> helpers;
      for (unsigned k = 1; k < t; ++k)
        helpers.emplace_back([&, k] {
          for (uint64_t seen = 0;;) {
            uint64_t b;
            while ((b = pool.batch.load(std::memory_order_acquire)) == seen)
              if (pool.stop.load(std::memory_order_relaxed)) return;
            seen = b;
            wrong += demux_run(*w.engine, w.ring, k * 257, kBatch / t);
            pool.finished.fetch_add(1, std::memory_order_acq_rel);
          }
        });
      for (auto _ : s) {
        auto start = std::chrono::steady_clock::now();
        pool.finished.store(0, std::memory_order_relaxed);
        pool.batch.fetch_add(1, std::memory_order_acq_rel);
        wrong += demux_run(*w.engine, w.ring, 0, kBatch / t);
        while (pool.finished.load(std::memory_order_acquire) != t - 1) {
        }
        s.SetIterationTime(
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
      }
      pool.stop.store(true);
      for (std::thread& h : helpers) h.join();
      if (wrong) s.SkipWithError("wrong filter");
      s.SetItemsProcessed(int64_t(s.iterations()) * int64_t(kBatch));
    })->UseManualTime();
  }

  // One thread inserts and removes connection filters (the engine stays at 10,000) while this one
  // demultiplexes: batches alone and batches beside the writer alternate (the writer idles
  // between), the row's time is the latter's; demux_slowdown = rate alone / rate beside it.
  benchmark::RegisterBenchmark("demux/insert_under_load", [=](benchmark::State& s) {
    if (!*world) *world = std::make_unique<TenThousand>();
    TenThousand& w = **world;
    std::atomic<bool> active{false}, idle{true}, stop{false};
    std::atomic<uint64_t> inserts{0};
    std::thread writer([&] {
      std::mt19937_64 rng(3);
      std::vector<Conn> extra = connections(4096, 4242);
      std::vector<FilterId> live;
      size_t next = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        if (!active.load(std::memory_order_acquire)) {  // idle: off the CPU
          idle.store(true, std::memory_order_release);
          std::this_thread::sleep_for(std::chrono::microseconds(20));
          continue;
        }
        idle.store(false, std::memory_order_release);
        Conn c = extra[next++ % extra.size()];
        c.src ^= 0x00800000;  // never one of the 10,000
        live.push_back(w.engine->insert(dpf_filter(c, true), kTrusted));
        if (live.size() > 1) {  // the engine stays at 10,000 and one
          w.engine->remove(live.front(), 0);
          live.erase(live.begin());
        }
        inserts.fetch_add(1, std::memory_order_relaxed);
      }
      for (FilterId id : live) w.engine->remove(id, 0);
    });
    double alone = 0, beside = 0, writing = 0;
    size_t wrong = 0;
    uint64_t inserted = 0;
    auto timed = [&](auto&& f) {
      auto start = std::chrono::steady_clock::now();
      f();
      return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    };
    for (auto _ : s) {
      active.store(false, std::memory_order_release);
      while (!idle.load(std::memory_order_acquire)) {
      }
      alone += timed([&] { wrong += demux_run(*w.engine, w.ring, 0, kBatch); });
      uint64_t before = inserts.load();
      active.store(true, std::memory_order_release);
      while (idle.load(std::memory_order_acquire)) {
      }
      double t = timed([&] { wrong += demux_run(*w.engine, w.ring, 0, kBatch); });
      beside += t, writing += t;
      inserted += inserts.load() - before;
      s.SetIterationTime(t);
    }
    stop.store(true);
    writer.join();
    if (wrong) s.SkipWithError("wrong filter");
    s.SetItemsProcessed(int64_t(s.iterations()) * int64_t(kBatch));
    s.counters["inserts_per_second"] = double(inserted) / writing;
    s.counters["demux_slowdown"] = beside / alone;
  })->UseManualTime();
}

// What a writer's grace period costs with R reader threads registered (each has run a section,
// none is inside one now): one membarrier and a scan of R slots -- what a regeneration or a
// quarantined table slot pays at 64 cores.
void register_grace() {
  for (unsigned r : {1u, 64u}) {
    std::string row = "demux/grace_period/" + std::to_string(r);
    benchmark::RegisterBenchmark(row.c_str(), [r](benchmark::State& s) {
      std::atomic<bool> stop{false};
      std::atomic<unsigned> ready{0};
      std::vector<std::thread> readers;
      for (unsigned k = 0; k < r; ++k)
        readers.emplace_back([&] {
          { grace::ReadSection section; }
          ready.fetch_add(1);
          while (!stop.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
        });
      while (ready.load() != r) std::this_thread::yield();
      for (auto _ : s) grace::GracePeriod::start().wait();
      stop.store(true);
      for (std::thread& t : readers) t.join();
    })->Unit(benchmark::kMicrosecond);
  }
}

}  // namespace exojit::bench
