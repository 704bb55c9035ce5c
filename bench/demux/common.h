// SPDX-License-Identifier: MIT
// What bench_demux's row families share: the connections and their filters (DPF and tcpdump
// syntax), the packets, the rows' timing loops (one packet, a ring of packets) and the
// registration of each family (one file each, main.cpp lists the rows).
#pragma once

#include <benchmark/benchmark.h>
#include <exojit/dpf/engine.h>
#include <exojit/error.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "packets.h"  // testsupport/: the packets the tests use
#ifdef EXOJIT_HAVE_DPDK
#include "rte_bpf.h"
#endif

namespace exojit::bench {

using dpf::Engine;
using dpf::field;
using dpf::Filter;
using dpf::FilterId;
using dpf::testing::Bytes;

struct Conn {
  uint32_t src, dst;
  uint16_t sport, dport;
  uint32_t id;
};

constexpr uint32_t kServer = 0x0a000001;  // every connection's destination (this host)

// n connections to kServer from random hosts and ports (ids 1..n), the same for the same seed.
std::vector<Conn> connections(size_t n, uint64_t seed);
// A connection's filter in DPF's syntax: fixed (20-byte) or variable IP header.
Filter dpf_filter(const Conn& c, bool variable);
// The same filter as a tcpdump expression.
std::string pcap_text(const Conn& c, bool variable);
// A TCP packet of the connection.
Bytes packet_for(const Conn& c);

// The rows measure the engine as the kernel's own filters get it (plain code); the
// dpf_hardened rows as an untrusted owner's (issue 20: constants blinded, loads masked).
inline const dpf::InsertOptions kTrusted{.trusted = true};

// One packet, again and again (its answer checked first).
template <typename Fn>
void run_one(benchmark::State& state, const Bytes& pkt, uint32_t want, Fn&& demux) {
  if (demux(pkt.data(), pkt.size()) != want) {
    state.SkipWithError("wrong filter");
    return;
  }
  const uint8_t* p = pkt.data();
  for (auto _ : state) {
    benchmark::DoNotOptimize(p);
    uint32_t id = demux(p, pkt.size());
    benchmark::DoNotOptimize(id);
  }
}

// The rte_bpf_jit row of a group: DPDK's JIT of the same pcap expressions, built on first use;
// `run` is run_one or run_ring bound to the row's packets.
template <typename Run>
void register_rte_bpf(const std::string& row, const std::vector<std::string>& exprs, Run run) {
#ifdef EXOJIT_HAVE_DPDK
  auto set = std::make_shared<std::unique_ptr<RteBpfSet>>();
  benchmark::RegisterBenchmark(row.c_str(), [=](benchmark::State& s) {
    try {
      if (!*set) *set = std::make_unique<RteBpfSet>(exprs);
    } catch (const Error& e) {
      return s.SkipWithError(e.what());
    }
    run(s, [&](const uint8_t* p, size_t n) { return (*set)->demux(p, n); });
  });
#else
  (void)row, (void)exprs, (void)run;
#endif
}

constexpr size_t kRing = 1024;

struct Ring {
  std::vector<Bytes> packets;
  std::vector<uint32_t> want;
};

// The ring in order, a packet an iteration (each answer checked first).
template <typename Fn>
void run_ring(benchmark::State& state, const Ring& ring, Fn&& demux) {
  for (size_t i = 0; i < kRing; ++i)
    if (demux(ring.packets[i].data(), ring.packets[i].size()) != ring.want[i]) {
      state.SkipWithError("wrong filter");
      return;
    }
  size_t i = 0;
  for (auto _ : state) {
    const Bytes& p = ring.packets[i++ % kRing];
    uint32_t id = demux(p.data(), p.size());
    benchmark::DoNotOptimize(id);
  }
}

// The row families (one file each).
void register_table3();
void register_scale();
void register_threads();
void register_grace();
void register_depth();
void register_insert();
void register_owned();
void register_stateful();

}  // namespace exojit::bench
