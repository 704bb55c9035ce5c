// SPDX-License-Identifier: MIT
// bench_demux: DPF against libpcap's bpf_filter interpreter (the filters tried in turn) and a
// hand-coded C demultiplexor, in one run (DPF paper, section 4).
//
//   demux/table3/<fixed|variable>/<first|last>/<impl>  10 TCP/IP connection filters (fixed or
//       variable IP header), the packet matching the first or the last one (paper, Table 3)
//   demux/scale/<N>/<impl>   N connection filters, packets drawn at random among them from a
//       ring of 1,024 prepared packets (a NIC receive ring: the same for every N, so only the
//       demultiplexer's own footprint grows with N); dpf_layered (N = 10,000): one more filter
//       that needed new code, in the second layer (Engine::layered); dpf_opaque (N = 10,000):
//       one opaque filter beside them (`ip protochain 17`, classic BPF); dpf_direct: dpf's
//       generated code called directly (Engine::function(), no read section); dpf_burst:
//       Engine::demux_burst, 32 packets a call (time per packet)
//   demux/threads/<T>/dpf    scale/10000's packets demultiplexed by T threads at once (aggregate
//       items_per_second; the ratio printed is the speedup of 2 threads over 1)
//   demux/insert_under_load  the same packets on one thread while another inserts and removes
//       connection filters (counters inserts_per_second, demux_slowdown: rate alone / beside)
//   demux/grace_period/<R> a writer's grace period with R reader threads registered
//   demux/depth/<D>/<impl>   one filter of D protocol levels, two atoms each (paper, Figure 3)
//   demux/insert/nocode      one more connection filter into a trie of 1,000: a new hash key
//   demux/insert/regen       one more filter into the same trie that needs new code
//   demux/insert/owned/<N>/<connection|listener>   one more filter of a new owner next to N
//       connection filters of 100 other owners: its ownership check and insertion (a new
//       connection: a hash key; a listener on a new port: new code)
//   demux/insert/structural/4000   4,000 filters that each need new code, into an empty engine
//       (each iteration; the time per filter is the row's time / 4,000)
//   demux/<stateless|stateful>/<N>/unmatched   a TCP packet no filter accepts, among N
//       connection filters, without and with fragment filters (RECORD/RECORDED) beside them
//   demux/insert/pcap        one tcpdump connection expression compiled by libpcap, lifted and
//       inserted beside 1,000 others (µs)
//
// hand_c: the demultiplexor a kernel programmer writes: parse the headers, then compare the
// connection table, linearly for table3 (as in the paper's comparison), through an open-
// addressing hash table for scale; a function call (noinline), as a driver's demux hook is.
// dpf: the generated function called through its pointer (Engine::function()); the scale rows
// go through Engine::demux.
// rte_bpf_jit (only when built with Debian's libdpdk-dev): the same libpcap filters converted
// to eBPF and JIT-compiled by DPDK's rte_bpf, tried in turn (demux_rte_bpf.h).
// bpf_jit: the same libpcap filters compiled one by one by dpf's classic-BPF JIT (compile_bpf:
// what the engine runs for filters that do not lift), tried in turn.
// dpf_pcap (table3, scale): the same filters written as tcpdump expressions, inserted through
// libpcap's compiler and the lift (compile_pcap): the same engine, the trie they lift to (the
// variable-header ones carry libpcap's fragment-offset test, one atom more than `dpf`'s).
// dpf_hardened (table3, scale/10000), dpf_pcap_hardened (scale/10000): the same filters inserted
// as an untrusted owner's (issue 20: constants blinded but the engine's own, loads masked).
#include <benchmark/benchmark.h>
#include <exojit/dpf/bpf.h>
#include <exojit/dpf/engine.h>
#include <exojit/dpf/pcap.h>
#include <exojit/error.h>
#include <exojit/grace_period.h>
#include <pcap/pcap.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "packets.h"  // testsupport/: the packets the tests use
#include "ratio_main.h"
#ifdef EXOJIT_HAVE_DPDK
#include "demux_rte_bpf.h"
#endif

namespace exojit::bench {
namespace {

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

std::vector<Conn> connections(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<Conn> out;
  for (size_t i = 0; i < n; ++i)
    out.push_back(Conn{0xc0000000u | uint32_t(rng() & 0xffffff), kServer,
                       uint16_t(1024 + rng() % 60000), uint16_t(i % 2 ? 443 : 80),
                       uint32_t(i + 1)});
  return out;
}

Filter dpf_filter(const Conn& c, bool variable) {
  Filter f;
  f.eq(field(12, 16), 0x800).eq(field(23, 8), 6).eq(field(26, 32), c.src);
  f.eq(field(30, 32), c.dst).shift(14);
  if (variable)
    f.shift((field(0, 8) & 0xf) << 2);
  else
    f.shift(20);
  return f.eq(field(0, 16), c.sport).eq(field(2, 16), c.dport);
}

std::string ip_text(uint32_t a) {
  return std::to_string(a >> 24) + "." + std::to_string(a >> 16 & 255) + "." +
         std::to_string(a >> 8 & 255) + "." + std::to_string(a & 255);
}

std::string pcap_text(const Conn& c, bool variable) {
  std::string hosts = " and ip src " + ip_text(c.src) + " and ip dst " + ip_text(c.dst);
  std::string sp = std::to_string(c.sport), dp = std::to_string(c.dport);
  if (variable) return "tcp" + hosts + " and tcp[0:2] == " + sp + " and tcp[2:2] == " + dp;
  return "ip proto 6" + hosts + " and ip[20:2] == " + sp + " and ip[22:2] == " + dp;
}

Bytes packet_for(const Conn& c) {
  dpf::testing::Ipv4 s;
  s.src = c.src, s.dst = c.dst, s.sport = c.sport, s.dport = c.dport, s.payload = 10;
  return dpf::testing::ipv4(s);
}

// libpcap's compiled filters, tried in turn by the bpf_filter interpreter.
class BpfSet {
 public:
  explicit BpfSet(const std::vector<std::string>& exprs) {
    pcap_t* dead = pcap_open_dead(DLT_EN10MB, 65535);
    for (const std::string& e : exprs) {
      bpf_program p{};
      if (pcap_compile(dead, &p, e.c_str(), 1, PCAP_NETMASK_UNKNOWN) != 0)
        fail("pcap_compile `{}`: {}", e, pcap_geterr(dead));
      programs_.push_back(p);
    }
    pcap_close(dead);
  }
  ~BpfSet() {
    for (bpf_program& p : programs_) pcap_freecode(&p);
  }
  uint32_t demux(const uint8_t* p, size_t len) const {
    for (size_t i = 0; i < programs_.size(); ++i)
      if (bpf_filter(programs_[i].bf_insns, p, u_int(len), u_int(len))) return uint32_t(i + 1);
    return 0;
  }

 private:
  std::vector<bpf_program> programs_;
};

// The same filters compiled one by one by the classic-BPF JIT, tried in turn.
class BpfJitSet {
 public:
  explicit BpfJitSet(const std::vector<std::string>& exprs) {
    for (const std::string& e : exprs)
      filters_.push_back(dpf::compile_bpf(dpf::compile_pcap_bpf(e)));
    for (const dpf::BpfFilter& f : filters_) fns_.push_back(f.function());
  }
  uint32_t demux(const uint8_t* p, size_t len) const {
    for (size_t i = 0; i < fns_.size(); ++i)
      if (fns_[i](p, len, len)) return uint32_t(i + 1);
    return 0;
  }

 private:
  std::vector<dpf::BpfFilter> filters_;
  std::vector<dpf::BpfFilter::Fn*> fns_;
};

uint16_t be16(const uint8_t* p) {
  return uint16_t(p[0] << 8 | p[1]);
}
uint32_t be32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return __builtin_bswap32(v);
}

// The hand-coded demultiplexor: headers parsed once, then the table.
template <bool kVariable>
struct Parsed {
  uint32_t src, dst;
  uint16_t sport, dport;
  static bool parse(const uint8_t* p, size_t len, Parsed* out) {
    if (len < 34 || be16(p + 12) != 0x0800 || p[23] != 6) return false;
    size_t l4 = kVariable ? 14 + size_t(p[14] & 0xf) * 4 : 34;
    if (len < l4 + 4) return false;
    out->src = be32(p + 26), out->dst = be32(p + 30);
    out->sport = be16(p + l4), out->dport = be16(p + l4 + 2);
    return true;
  }
};

template <bool kVariable>
[[gnu::noinline]] uint32_t hand_linear(const uint8_t* p, size_t len, const std::vector<Conn>& t) {
  Parsed<kVariable> h;
  if (!Parsed<kVariable>::parse(p, len, &h)) return 0;
  for (const Conn& c : t)
    if (c.src == h.src && c.dst == h.dst && c.sport == h.sport && c.dport == h.dport) return c.id;
  return 0;
}

class HandHash {
 public:
  explicit HandHash(const std::vector<Conn>& conns) {
    size_t n = 8;
    while (n < conns.size() * 2) n *= 2;
    mask_ = n - 1;
    table_.assign(n, Conn{0, 0, 0, 0, 0});
    for (const Conn& c : conns) {
      size_t s = slot(c.src, c.dst, c.sport, c.dport);
      while (table_[s].id) s = (s + 1) & mask_;
      table_[s] = c;
    }
  }
  [[gnu::noinline]] uint32_t demux(const uint8_t* p, size_t len) const {
    Parsed<true> h;
    if (!Parsed<true>::parse(p, len, &h)) return 0;
    for (size_t s = slot(h.src, h.dst, h.sport, h.dport);; s = (s + 1) & mask_) {
      const Conn& c = table_[s];
      if (!c.id) return 0;
      if (c.src == h.src && c.dst == h.dst && c.sport == h.sport && c.dport == h.dport) return c.id;
    }
  }

 private:
  size_t slot(uint32_t s, uint32_t d, uint16_t sp, uint16_t dp) const {
    uint64_t x = (uint64_t(s) << 32 | d) ^ (uint64_t(sp) << 16 | dp) * 0x9e3779b97f4a7c15ull;
    return size_t((x * 0xc2b2ae3d27d4eb4full) >> 32) & mask_;
  }
  std::vector<Conn> table_;
  size_t mask_;
};

// Figure 3's hand-coded check: d levels of two 16-bit fields.
[[gnu::noinline]] uint32_t hand_depth(const uint8_t* p, size_t n, int d) {
  if (n < size_t(4 * d)) return 0;
  for (int k = 0; k < d; ++k, p += 4)
    if (be16(p) != 2 * k + 1 || be16(p + 2) != 2 * k + 2) return 0;
  return 1;
}

// The rows measure the engine as the kernel's own filters get it (plain code); the
// dpf_hardened rows as an untrusted owner's (issue 20: constants blinded, loads masked).
const dpf::InsertOptions kTrusted{.trusted = true};

// --- table3 -------------------------------------------------------------------------------

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

void register_table3() {
  static const std::vector<Conn> conns = connections(10, 3);
  for (bool variable : {false, true}) {
    std::string hdr = variable ? "variable" : "fixed";
    auto engine = std::make_shared<Engine>(), hardened = std::make_shared<Engine>();
    auto from_pcap = std::make_shared<Engine>();  // the same filters written for tcpdump
    std::vector<std::string> exprs;
    for (const Conn& c : conns) {
      engine->insert(dpf_filter(c, variable), kTrusted);
      hardened->insert(dpf_filter(c, variable));  // an untrusted owner's: hardened code
      exprs.push_back(pcap_text(c, variable));
      from_pcap->insert(dpf::compile_pcap(exprs.back()), kTrusted);
    }
    auto bpf = std::make_shared<BpfSet>(exprs);
    auto jit = std::make_shared<BpfJitSet>(exprs);
    for (bool last : {false, true}) {
      const Conn& c = conns[last ? 9 : 0];
      auto pkt = std::make_shared<Bytes>(packet_for(c));
      std::string base = "demux/table3/" + hdr + (last ? "/last/" : "/first/");
      benchmark::RegisterBenchmark((base + "bpf_interp").c_str(), [=](benchmark::State& s) {
        run_one(s, *pkt, c.id, [&](const uint8_t* p, size_t n) { return bpf->demux(p, n); });
      });
      benchmark::RegisterBenchmark((base + "hand_c").c_str(), [=](benchmark::State& s) {
        run_one(s, *pkt, c.id, [&](const uint8_t* p, size_t n) {
          return variable ? hand_linear<true>(p, n, conns) : hand_linear<false>(p, n, conns);
        });
      });
      benchmark::RegisterBenchmark((base + "bpf_jit").c_str(), [=](benchmark::State& s) {
        run_one(s, *pkt, c.id, [&](const uint8_t* p, size_t n) { return jit->demux(p, n); });
      });
      for (const auto& [row, e] : {std::pair{"dpf", engine}, std::pair{"dpf_hardened", hardened},
                                   std::pair{"dpf_pcap", from_pcap}})
        benchmark::RegisterBenchmark((base + row).c_str(), [=, e = e](benchmark::State& s) {
          if (e->layered()) return s.SkipWithError("layered: function() is not the whole");
          Engine::DemuxFn* fn = e->function();
          run_one(s, *pkt, c.id, [&](const uint8_t* p, size_t n) { return uint32_t(fn(p, n)); });
        });
      register_rte_bpf(
          base + "rte_bpf_jit", exprs,
          [=, id = c.id](benchmark::State& s, auto demux) { run_one(s, *pkt, id, demux); });
    }
  }
}

// --- scale --------------------------------------------------------------------------------

constexpr size_t kRing = 1024;

struct Ring {
  std::vector<Bytes> packets;
  std::vector<uint32_t> want;
};

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

// --- threads ------------------------------------------------------------------------------

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

// --- depth (Figure 3) ---------------------------------------------------------------------

// Level k is a 4-byte header at offset 4k: two 16-bit fields, 2k+1 and 2k+2, then SHIFT(4).
void register_depth() {
  for (int d = 1; d <= 8; ++d) {
    auto pkt = std::make_shared<Bytes>(size_t(4 * d + 16), 0);
    Filter f;
    std::string expr;
    for (int k = 0; k < d; ++k) {
      for (int j = 0; j < 2; ++j) {
        uint16_t v = uint16_t(2 * k + j + 1);
        dpf::testing::put16(*pkt, size_t(4 * k + 2 * j), v);
        f.eq(field(uint32_t(2 * j), 16), v);
        expr += (expr.empty() ? "" : " and ") + std::string("ether[") +
                std::to_string(4 * k + 2 * j) + ":2] == " + std::to_string(v);
      }
      f.shift(4);
    }
    auto engine = std::make_shared<Engine>();
    engine->insert(f, kTrusted);
    auto bpf = std::make_shared<BpfSet>(std::vector<std::string>{expr});
    std::string base = "demux/depth/" + std::to_string(d) + "/";
    benchmark::RegisterBenchmark((base + "bpf_interp").c_str(), [=](benchmark::State& s) {
      run_one(s, *pkt, 1, [&](const uint8_t* p, size_t n) { return bpf->demux(p, n); });
    });
    benchmark::RegisterBenchmark((base + "hand_c").c_str(), [=](benchmark::State& s) {
      run_one(s, *pkt, 1, [d](const uint8_t* p, size_t n) { return hand_depth(p, n, d); });
    });
    benchmark::RegisterBenchmark((base + "dpf").c_str(), [=](benchmark::State& s) {
      if (engine->layered()) return s.SkipWithError("layered: function() is not the whole");
      Engine::DemuxFn* fn = engine->function();
      run_one(s, *pkt, 1, [&](const uint8_t* p, size_t n) { return uint32_t(fn(p, n)); });
    });
    register_rte_bpf(base + "rte_bpf_jit", {expr},
                     [=](benchmark::State& s, auto demux) { run_one(s, *pkt, 1, demux); });
  }
}

// --- insertion ----------------------------------------------------------------------------

void register_insert() {
  benchmark::RegisterBenchmark("demux/insert/nocode", [](benchmark::State& s) {
    std::vector<Conn> conns = connections(1000 + 256, 99);
    Engine e;
    for (size_t i = 0; i < 1000; ++i) e.insert(dpf_filter(conns[i], true), kTrusted);
    // Candidates whose key fits the table as compiled (a key beyond the probe bound would
    // regenerate: that is the other row).
    std::vector<Filter> fit;
    for (size_t i = 1000; i < conns.size(); ++i) fit.push_back(dpf_filter(conns[i], true));
    // Keep those that go in and out without new code; again until no removal regenerates (a
    // regeneration chooses a new hash function, which changes what fits).
    for (size_t regens = ~size_t(0); regens != e.regenerations();) {
      regens = e.regenerations();
      std::vector<Filter> keep;
      for (const Filter& f : fit) {
        size_t before = e.regenerations();
        e.remove(e.insert(f, kTrusted), 0);
        if (e.regenerations() == before) keep.push_back(f);
      }
      fit = std::move(keep);
    }
    if (fit.empty()) return s.SkipWithError("no key fits the table");
    size_t regens = e.regenerations(), i = 0;
    for (auto _ : s) {
      FilterId id = e.insert(fit[i++ % fit.size()], kTrusted);
      s.PauseTiming();
      e.remove(id, 0);
      s.ResumeTiming();
    }
    // Since issue 18 a removed key's slot is reused only once no reader can still see the old
    // key (a grace period): the rare insertion that finds none reusable makes new code, and is
    // counted here rather than hidden.
    s.counters["regenerations_per_insert"] =
        benchmark::Counter(double(e.regenerations() - regens) / double(s.iterations()));
  });
  benchmark::RegisterBenchmark("demux/insert/regen", [](benchmark::State& s) {
    std::vector<Conn> conns = connections(1000, 99);
    Engine e;
    for (const Conn& c : conns) e.insert(dpf_filter(c, true), kTrusted);
    Filter udp;  // a new branch beside the TCP one: new code
    udp.eq(field(12, 16), 0x800).eq(field(23, 8), 17).shift(34).eq(field(2, 16), 53);
    size_t regens = e.regenerations();
    for (auto _ : s) {
      FilterId id = e.insert(udp, kTrusted);
      s.PauseTiming();
      e.remove(id, 0);
      s.ResumeTiming();
    }
    if (e.regenerations() - regens != 2 * size_t(s.iterations()))
      s.SkipWithError("no regeneration");
  })->Unit(benchmark::kMicrosecond);
  // libpcap's compiler + the lift + the insertion, for a connection filter in tcpdump syntax
  // beside 1,000 others (a different connection each time).
  benchmark::RegisterBenchmark("demux/insert/pcap", [](benchmark::State& s) {
    std::vector<Conn> conns = connections(1000 + 4096, 77);
    Engine e;
    for (size_t i = 0; i < 1000; ++i)
      e.insert(dpf::compile_pcap(pcap_text(conns[i], true)), kTrusted);
    std::vector<std::string> exprs;
    for (size_t i = 1000; i < conns.size(); ++i) exprs.push_back(pcap_text(conns[i], true));
    size_t i = 0;
    for (auto _ : s) {
      FilterId id = e.insert(dpf::compile_pcap(exprs[i++ % exprs.size()]), kTrusted);
      s.PauseTiming();
      e.remove(id, 0);
      s.ResumeTiming();
    }
  })->Unit(benchmark::kMicrosecond);
}

// Other owners' connections (100 owners), and a filter of one more owner.
void register_owned() {
  for (size_t n : {1000, 20000}) {
    auto engine = std::make_shared<std::unique_ptr<Engine>>();
    auto setup = [=] {
      if (*engine) return;
      *engine = std::make_unique<Engine>();
      std::vector<Conn> conns = connections(n, 7 + n);
      for (size_t i = 0; i < n; ++i)
        (*engine)->insert(dpf_filter(conns[i], true),
                          {.owner = uint32_t(1 + i % 100), .trusted = true});
    };
    for (bool listener : {false, true}) {
      std::string row =
          "demux/insert/owned/" + std::to_string(n) + (listener ? "/listener" : "/connection");
      benchmark::RegisterBenchmark(row.c_str(), [=](benchmark::State& s) {
        setup();
        Engine& e = **engine;
        Filter f;
        if (listener) {  // a new port: disjoint from every connection (ports 80 and 443)
          f.eq(field(12, 16), 0x800).eq(field(23, 8), 6).shift(14);
          f.shift((field(0, 8) & 0xf) << 2).eq(field(2, 16), 8080);
        } else {
          f = dpf_filter(Conn{0xc1000001, kServer, 5555, 80, 0}, true);
        }
        size_t regens = e.regenerations();
        for (auto _ : s) {
          FilterId id = e.insert(f, {.owner = 1000, .trusted = true});
          s.PauseTiming();
          e.remove(id, 1000);
          s.ResumeTiming();
        }
        s.counters["regenerations"] = double(e.regenerations() - regens);
      })->Unit(benchmark::kMicrosecond);
    }
  }
  benchmark::RegisterBenchmark(
      "demux/insert/structural/4000",
      [](benchmark::State& s) {
        for (auto _ : s) {
          Engine e;
          for (int i = 0; i < 4000; ++i) {
            Filter f;
            f.eq(field(12, 16), 0x800).eq(field(23, 8), 17).shift(34);
            f.eq(field(2, 16), uint64_t(i)).gt(field(0, 16), uint64_t(i % 7));
            e.insert(f, kTrusted);
          }
        }
      })
      ->Unit(benchmark::kMillisecond)
      ->Iterations(1);
}

// Connection filters, with or without the fragment filters of a DNS server beside them; the
// packet: TCP from a host no filter knows.
void register_stateful() {
  for (size_t n : {10, 10000})
    for (bool stateful : {false, true}) {
      auto engine = std::make_shared<std::unique_ptr<Engine>>();
      std::string row = std::string("demux/") + (stateful ? "stateful/" : "stateless/") +
                        std::to_string(n) + "/unmatched";
      auto pkt = std::make_shared<Bytes>(packet_for(Conn{0xc2000001, kServer, 999, 80, 0}));
      benchmark::RegisterBenchmark(row.c_str(), [=](benchmark::State& s) {
        if (!*engine) {
          *engine = std::make_unique<Engine>();
          for (const Conn& c : connections(n, 3 + n))
            (*engine)->insert(dpf_filter(c, true), kTrusted);
          if (stateful) {
            std::vector<Filter> dns{
                dpf::parse_filter("(12:16 == 0x800) && (23:8 == 17) && ((20:16 & 0x1fff) == 0) "
                                  "&& RECORD((18:16 << 32) | 26:32) && SHIFT(14) && "
                                  "SHIFT((0:8 & 0xf) << 2) && (2:16 == 53)"),
                dpf::parse_filter("(12:16 == 0x800) && (23:8 == 17) && ((20:16 & 0x1fff) > 0) "
                                  "&& RECORDED((18:16 << 32) | 26:32)")};
            (*engine)->insert(std::span<const Filter>(dns), {.owner = 1, .trusted = true});
          }
        }
        Engine& e = **engine;
        run_one(s, *pkt, 0, [&](const uint8_t* p, size_t len) { return e.demux(p, len); });
      });
    }
}

}  // namespace
}  // namespace exojit::bench

int main(int argc, char** argv) {
  using namespace exojit::bench;
  try {
    register_table3();
    register_scale();
    register_threads();
    register_grace();
    register_depth();
    register_insert();
    register_owned();
    register_stateful();
  } catch (const exojit::Error& e) {
    std::fprintf(stderr, "bench_demux: %s\n", e.what());
    return 1;
  }
  std::vector<Ratio> ratios;
  for (const char* hdr : {"fixed", "variable"})
    for (const char* which : {"first", "last"}) {
      std::string base = std::string("demux/table3/") + hdr + "/" + which + "/";
      ratios.push_back(Ratio{base + "dpf", base + "hand_c", 1.0, 0, "DPF <= hand-coded C"});
      ratios.push_back(
          Ratio{base + "dpf_pcap", base + "dpf", 1.1, 0, "tcpdump syntax within 1.1x of DPF's"});
      ratios.push_back(
          Ratio{base + "dpf_hardened", base + "dpf", 1.15, 0, "hardened <= 1.15x (issue 20)"});
      ratios.push_back(Ratio{base + "bpf_interp", base + "dpf", 0, 30, "DPF >= 30x faster"});
      ratios.push_back(Ratio{base + "rte_bpf_jit", base + "dpf", 0, 0, "DPF vs DPDK's JIT"});
      ratios.push_back(
          Ratio{base + "bpf_interp", base + "bpf_jit", 0, 5, "classic-BPF JIT >= 5x bpf_filter"});
      ratios.push_back(
          Ratio{base + "bpf_jit", base + "rte_bpf_jit", 1.0, 0, "classic-BPF JIT <= DPDK's JIT"});
    }
  ratios.push_back(Ratio{"demux/scale/10000/dpf", "demux/scale/10/dpf", 2.5, 0, "flat in N"});
  for (const char* n : {"10", "10000"}) {
    std::string base = std::string("demux/scale/") + n + "/";
    ratios.push_back(Ratio{base + "dpf", base + "dpf_direct", 1.05, 0,
                           "demux vs its code called directly: the read section (issue 18)"});
    ratios.push_back(Ratio{base + "dpf_burst", base + "dpf_direct", 1.05, 0,
                           "demux_burst vs the code called directly"});
  }
  ratios.push_back(Ratio{"demux/scale/10000/dpf_pcap", "demux/scale/10/dpf_pcap", 2.5, 0,
                         "flat in N, written for tcpdump"});
  ratios.push_back(Ratio{"demux/scale/10000/dpf_pcap", "demux/scale/10000/dpf", 0, 0,
                         "tcpdump syntax vs DPF's (one more atom: the fragment offset)"});
  ratios.push_back(Ratio{"demux/scale/10000/dpf_hardened", "demux/scale/10000/dpf", 1.15, 0,
                         "hardened <= 1.15x (issue 20)"});
  ratios.push_back(Ratio{"demux/scale/10000/dpf_pcap_hardened", "demux/scale/10000/dpf_pcap", 1.15,
                         0, "hardened <= 1.15x, written for tcpdump (issue 20)"});
  ratios.push_back(
      Ratio{"demux/scale/10000/bpf_interp", "demux/scale/10/bpf_interp", 0, 0, "grows linearly"});
  ratios.push_back(Ratio{"demux/scale/10000/hand_c", "demux/scale/10/hand_c", 0, 0, ""});
  ratios.push_back(
      Ratio{"demux/scale/10000/rte_bpf_jit", "demux/scale/10000/dpf", 0, 0, "DPF vs DPDK's JIT"});
  ratios.push_back(Ratio{"demux/scale/10000/dpf_layered", "demux/scale/10000/dpf", 0, 0,
                         "a second layer of recent changes"});
  ratios.push_back(Ratio{"demux/scale/10000/dpf_opaque", "demux/scale/10000/dpf", 0, 0,
                         "an opaque filter beside the trie"});
  ratios.push_back(Ratio{"demux/threads/1/dpf", "demux/threads/2/dpf", 0, 1.8,
                         "aggregate rate, 2 threads vs 1"});
  ratios.push_back(Ratio{"demux/depth/8/dpf", "demux/depth/1/dpf", 0, 0, "depth 8 vs 1"});
  ratios.push_back(Ratio{"demux/insert/regen", "demux/insert/nocode", 0, 0, "regen vs table"});
  for (const char* kind : {"connection", "listener"})
    ratios.push_back(Ratio{std::string("demux/insert/owned/20000/") + kind,
                           std::string("demux/insert/owned/1000/") + kind, 2.0, 0,
                           "20,000 vs 1,000 other owners' filters"});
  for (const char* n : {"10", "10000"})
    ratios.push_back(Ratio{std::string("demux/stateful/") + n + "/unmatched",
                           std::string("demux/stateless/") + n + "/unmatched", 2.0, 0,
                           "stateful vs stateless, unmatched packet"});
  ratios.push_back(Ratio{"demux/stateful/10000/unmatched", "demux/stateful/10/unmatched", 1.5, 0,
                         "flat in the number of filters"});
  return run_benchmarks_with_ratios(argc, argv, ratios);
}
