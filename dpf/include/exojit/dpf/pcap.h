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
// Some programs cannot be lifted (opaque: protochain's loop, divisions by non-powers of two,
// more than kMaxLiftedDisjuncts paths, ...): `lifted` says why, and the engine runs the program
// itself, compiled by the classic-BPF JIT (Engine::insert_bpf). Some accept no packet (`ip and
// arp`): no disjunct, an id that never matches.
#pragma once

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

// libpcap's program for the expression (thread-safe: libpcap's compiler runs under a lock).
std::vector<BpfInsn> compile_pcap_bpf(std::string_view expression);

// The program and its lift: what Engine::insert(const PcapFilter&) inserts.
PcapFilter compile_pcap(std::string_view expression);

}  // namespace exojit::dpf
