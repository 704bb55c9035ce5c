// SPDX-License-Identifier: MIT
// demux/depth/<D>/<impl>: one filter of D protocol levels, two atoms each (DPF paper, Figure 3).
#include "common.h"
#include "peers.h"

namespace exojit::bench {

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

}  // namespace exojit::bench
