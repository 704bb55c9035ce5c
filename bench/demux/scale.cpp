// SPDX-License-Identifier: MIT
// demux/scale/<N>/<impl>: N connection filters, packets at random among them (main.cpp).
#include <random>

#include "common.h"
#include "peers.h"

namespace exojit::bench {
namespace {

// The ring through demux_burst, kBurst packets a call; an iteration is one packet.
constexpr size_t kBurst = 32;

void run_burst(benchmark::State& state, const Ring& ring, Engine& e) {
  std::vector<const uint8_t*> pkts;
  std::vector<size_t> lens;
  for (const Bytes& p : ring.packets) pkts.push_back(p.data()), lens.push_back(p.size());
  std::vector<FilterId> out(kRing);
  e.demux_burst(pkts.data(), lens.data(), kRing, out.data());
  if (!std::equal(out.begin(), out.end(), ring.want.begin()))
    return state.SkipWithError("wrong filter");
  size_t i = 0;
  while (state.KeepRunningBatch(kBurst)) {
    e.demux_burst(pkts.data() + i, lens.data() + i, kBurst, out.data() + i);
    benchmark::DoNotOptimize(out.data());
    i = (i + kBurst) % kRing;
  }
}

}  // namespace

void register_scale() {
  for (size_t n : {1, 10, 100, 1000, 10000}) {
    auto conns = std::make_shared<std::vector<Conn>>(connections(n, 11 + n));
    auto ring = std::make_shared<Ring>();
    std::mt19937_64 rng(5);
    for (size_t i = 0; i < kRing; ++i) {
      const Conn& c = (*conns)[rng() % n];
      ring->packets.push_back(packet_for(c));
      ring->want.push_back(c.id);
    }
    std::string base = "demux/scale/" + std::to_string(n) + "/";
    // Built on first use, once (Google Benchmark calls a row's function several times).
    auto bpf = std::make_shared<std::unique_ptr<BpfSet>>();
    benchmark::RegisterBenchmark((base + "bpf_interp").c_str(), [=](benchmark::State& s) {
      if (!*bpf) {
        std::vector<std::string> exprs;
        for (const Conn& c : *conns) exprs.push_back(pcap_text(c, true));
        *bpf = std::make_unique<BpfSet>(exprs);
      }
      run_ring(s, *ring, [&](const uint8_t* p, size_t len) { return (*bpf)->demux(p, len); });
    });
    auto hand = std::make_shared<std::unique_ptr<HandHash>>();
    benchmark::RegisterBenchmark((base + "hand_c").c_str(), [=](benchmark::State& s) {
      if (!*hand) *hand = std::make_unique<HandHash>(*conns);
      run_ring(s, *ring, [&](const uint8_t* p, size_t len) { return (*hand)->demux(p, len); });
    });
    auto engine = std::make_shared<std::unique_ptr<Engine>>();
    auto build = [=] {
      if (*engine) return;
      *engine = std::make_unique<Engine>();
      for (const Conn& c : *conns) (*engine)->insert(dpf_filter(c, true), kTrusted);
    };
    benchmark::RegisterBenchmark((base + "dpf").c_str(), [=](benchmark::State& s) {
      build();
      run_ring(s, *ring, [&](const uint8_t* p, size_t len) { return (*engine)->demux(p, len); });
      s.counters["layered"] = (*engine)->layered();  // a second function beside the whole
    });
    // The same engine's generated code called directly (no read section: what demux costs
    // beyond it is the concurrency machinery's), and through demux_burst (bursts of 32).
    benchmark::RegisterBenchmark((base + "dpf_direct").c_str(), [=](benchmark::State& s) {
      build();
      if ((*engine)->layered()) return s.SkipWithError("layered: function() is not the whole");
      Engine::DemuxFn* fn = (*engine)->function();
      run_ring(s, *ring, [&](const uint8_t* p, size_t len) { return uint32_t(fn(p, len)); });
    });
    benchmark::RegisterBenchmark((base + "dpf_burst").c_str(), [=](benchmark::State& s) {
      build();
      run_burst(s, *ring, **engine);
    });
    // The same connections written for tcpdump: libpcap's compiler, the lift, the same trie.
    auto from_pcap = std::make_shared<std::unique_ptr<Engine>>();
    benchmark::RegisterBenchmark((base + "dpf_pcap").c_str(), [=](benchmark::State& s) {
      if (!*from_pcap) {
        *from_pcap = std::make_unique<Engine>();
        for (const Conn& c : *conns)
          (*from_pcap)->insert(dpf::compile_pcap(pcap_text(c, true)), kTrusted);
      }
      run_ring(s, *ring, [&](const uint8_t* p, size_t len) { return (*from_pcap)->demux(p, len); });
      s.counters["layered"] = (*from_pcap)->layered();
    });
    if (n == 10000) {
      // The tcpdump connection filters inserted as an untrusted owner's: hardened code (issue 20).
      auto pcap_hardened = std::make_shared<std::unique_ptr<Engine>>();
      benchmark::RegisterBenchmark((base + "dpf_pcap_hardened").c_str(), [=](benchmark::State& s) {
        if (!*pcap_hardened) {
          *pcap_hardened = std::make_unique<Engine>();
          for (const Conn& c : *conns)
            (*pcap_hardened)->insert(dpf::compile_pcap(pcap_text(c, true)));
        }
        run_ring(s, *ring,
                 [&](const uint8_t* p, size_t len) { return (*pcap_hardened)->demux(p, len); });
        s.counters["layered"] = (*pcap_hardened)->layered();
      });
      // The same, the filters an untrusted owner's: hardened code (issue 20).
      auto hardened = std::make_shared<std::unique_ptr<Engine>>();
      benchmark::RegisterBenchmark((base + "dpf_hardened").c_str(), [=](benchmark::State& s) {
        if (!*hardened) {
          *hardened = std::make_unique<Engine>();
          for (const Conn& c : *conns) (*hardened)->insert(dpf_filter(c, true));
        }
        run_ring(s, *ring,
                 [&](const uint8_t* p, size_t len) { return (*hardened)->demux(p, len); });
      });
      // The same with one more filter that needed new code: a second layer beside the whole
      // (what layering costs each packet until the next merge).
      auto layered = std::make_shared<std::unique_ptr<Engine>>();
      benchmark::RegisterBenchmark((base + "dpf_layered").c_str(), [=](benchmark::State& s) {
        if (!*layered) {
          *layered = std::make_unique<Engine>();
          for (const Conn& c : *conns) (*layered)->insert(dpf_filter(c, true), kTrusted);
          Filter udp;
          udp.eq(field(12, 16), 0x800).eq(field(23, 8), 17).shift(34).eq(field(2, 16), 53);
          (*layered)->insert(udp, kTrusted);
        }
        if (!(*layered)->layered()) return s.SkipWithError("not layered");
        run_ring(s, *ring, [&](const uint8_t* p, size_t len) { return (*layered)->demux(p, len); });
      });
      // The same with an opaque filter beside the trie (protochain: a loop, run as classic BPF).
      // Its specificity is below a connection's, so it runs only on packets the trie leaves to it.
      auto opaque = std::make_shared<std::unique_ptr<Engine>>();
      benchmark::RegisterBenchmark((base + "dpf_opaque").c_str(), [=](benchmark::State& s) {
        if (!*opaque) {
          *opaque = std::make_unique<Engine>();
          for (const Conn& c : *conns) (*opaque)->insert(dpf_filter(c, true), kTrusted);
          (*opaque)->insert(dpf::compile_pcap("ip protochain 17"),
                            {.broad = true, .trusted = true});
        }
        run_ring(s, *ring, [&](const uint8_t* p, size_t len) { return (*opaque)->demux(p, len); });
      });
    }
    std::vector<std::string> exprs;
    for (const Conn& c : *conns) exprs.push_back(pcap_text(c, true));
    register_rte_bpf(base + "rte_bpf_jit", exprs,
                     [=](benchmark::State& s, auto demux) { run_ring(s, *ring, demux); });
  }
}

}  // namespace exojit::bench
