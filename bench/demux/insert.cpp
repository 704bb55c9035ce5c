// SPDX-License-Identifier: MIT
// demux/insert/...: what one more filter costs (a hash key, new code, tcpdump syntax, next to
// other owners' filters, 4,000 structural insertions).
#include <exojit/dpf/pcap.h>

#include "common.h"

namespace exojit::bench {

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

}  // namespace exojit::bench
