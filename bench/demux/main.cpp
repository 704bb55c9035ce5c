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
// to eBPF and JIT-compiled by DPDK's rte_bpf, tried in turn (rte_bpf.h).
// bpf_jit: the same libpcap filters compiled one by one by dpf's classic-BPF JIT (compile_bpf:
// what the engine runs for filters that do not lift), tried in turn.
// dpf_pcap (table3, scale): the same filters written as tcpdump expressions, inserted through
// libpcap's compiler and the lift (compile_pcap): the same engine, the trie they lift to (the
// variable-header ones carry libpcap's fragment-offset test, one atom more than `dpf`'s).
// dpf_hardened (table3, scale/10000), dpf_pcap_hardened (scale/10000): the same filters inserted
// as an untrusted owner's (issue 20: constants blinded but the engine's own, loads masked).
// Each family's rows are registered by its own file (table3.cpp, scale.cpp, threads.cpp,
// depth.cpp, insert.cpp, stateful.cpp); this file runs them and prints the ratios.
#include <cstdio>
#include <string>
#include <vector>

#include "common.h"
#include "ratio_main.h"

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
