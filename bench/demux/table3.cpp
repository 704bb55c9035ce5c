// SPDX-License-Identifier: MIT
// demux/table3/<fixed|variable>/<first|last>/<impl>: 10 TCP/IP connection filters, the packet
// matching the first or the last one (DPF paper, Table 3).
#include "common.h"
#include "peers.h"

namespace exojit::bench {

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

}  // namespace exojit::bench
