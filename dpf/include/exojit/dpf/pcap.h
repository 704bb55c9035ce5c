// SPDX-License-Identifier: MIT
// The tcpdump filter language (pcap-filter(7)), through libpcap's own compiler: the whole
// language, exactly as tcpdump reads it on Ethernet.
//
//   PcapFilter web = compile_pcap("tcp dst port 80");  // libpcap's program and its lift
//   FilterId id = engine.insert(web);                   // lifted filters under one id, or opaque
//
// The expression is compiled by pcap_compile on pcap_open_dead(DLT_EN10MB, 262144) with the
// optimizer on and the netmask unknown (so `ip broadcast` is refused, as tcpdump refuses it
// without an interface), then lifted to DPF filters (lift.h): each path of libpcap's program to
// an accepting `ret` is one conjunction, and together they accept exactly the packets libpcap's
// own filter accepts. An expression libpcap refuses is an exojit::Error with libpcap's message:
// "pcap filter: can't parse filter expression: syntax error".
//
// Bounds. libpcap's compiler takes time cubic and memory quadratic in the blocks an expression
// expands to (libpcap 1.10.3, CPU time: 300 `port N` terms take 3 s, 600 about 25 s; thousands
// of terms take gigabytes, libpcap issue #1255), so compile_pcap measures an expression before
// libpcap sees it (measure_pcap) and refuses it, with an exojit::Error naming the limit, past
// any of:
//   - kMaxPcapExpressionBytes (65,536) bytes; a NUL byte anywhere;
//   - kMaxPcapNesting (256) parentheses and brackets open at once (libpcap's own parser stops
//     at 10,000 levels of anything, "memory exhausted");
//   - kMaxPcapCost (6,000): one per token, plus, per primitive, about the blocks it expands to:
//     `port N` 45 (TCP, UDP and SCTP over IPv4 and IPv6, both directions), `src port N` 22,
//     `tcp port N` 19, `portrange A-B` 97, `tcp portrange A-B` 8, `host A` and `net N` 37,
//     `src host A` 14, an IPv6 address 8, `vlan` 4, `proto N` 5, protocols 1 or 2; a bare value
//     (`port 80 or 81`, `host a or b`) costs what its primitive does. The longest disjunctions
//     accepted: 125 `port N`, 60 `portrange`, 150 `host A`, 250 `tcp port N`, 333 `src host A`,
//     545 IPv6 hosts, 857 `vlan N`, 750 `ip[0] = N`, 2,000 `tcp`; each compiles in about 0.2 s
//     of CPU and at most 110 MB (conjunctions and mixtures, cheaper for libpcap than their
//     sum, much faster). tests/dpf/pcap_bounds_test.cpp checks both sides of each limit.
//   - after libpcap, a program of more than kBpfMaxInsns instructions (the JIT's limit).
// Host and port names are looked up (getaddrinfo, getservbyname) as tcpdump does: a name
// server that does not answer delays the compilation by its time-outs.
//
// Some programs cannot be lifted (opaque: protochain's loop, divisions by non-powers of two,
// more than kMaxLiftedDisjuncts paths, ...): `lifted` says why, and the engine runs the program
// itself, compiled by the classic-BPF JIT (Engine::insert_bpf). Some accept no packet (`ip and
// arp`): no disjunct, an id that never matches.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "exojit/dpf/bpf.h"
#include "exojit/dpf/filter.h"
#include "exojit/dpf/lift.h"

namespace exojit::dpf {

struct PcapFilter {
  std::string expression;        // as given, without surrounding white space
  std::vector<BpfInsn> program;  // libpcap's optimized classic BPF
  Lifted lifted;                 // the program as DPF filters, or opaque (lift.h)
};

inline constexpr size_t kMaxPcapExpressionBytes = 65536;
inline constexpr size_t kMaxPcapNesting = 256;
inline constexpr size_t kMaxPcapCost = 6000;

// The measures the bounds above apply to.
struct PcapSize {
  size_t bytes = 0;    // the expression's length
  size_t nesting = 0;  // the most parentheses and brackets open at once
  size_t cost = 0;     // tokens plus the primitives' weights (above)
};
PcapSize measure_pcap(std::string_view expression);

// libpcap's program for the expression (thread-safe: libpcap's compiler runs under a lock, one
// expression at a time; the bounds keep each under a second).
std::vector<BpfInsn> compile_pcap_bpf(std::string_view expression);

// The program and its lift: what Engine::insert(const PcapFilter&) inserts.
PcapFilter compile_pcap(std::string_view expression);

}  // namespace exojit::dpf
