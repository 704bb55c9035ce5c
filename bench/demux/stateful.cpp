// SPDX-License-Identifier: MIT
// demux/<stateless|stateful>/<N>/unmatched: a packet no filter accepts, without and with
// fragment filters (RECORD/RECORDED) beside N connection filters.
#include <exojit/dpf/filter.h>

#include "common.h"

namespace exojit::bench {

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

}  // namespace exojit::bench
