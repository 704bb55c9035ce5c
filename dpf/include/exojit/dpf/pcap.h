// A front end for the tcpdump filter syntax users already know (pcap-filter(7)), for this
// documented subset, on Ethernet frames:
//
//   ether proto N      N > 1500 (an EtherType), or \ip, \ip6, \arp
//   ip  ip6  arp  tcp  udp  icmp
//   [src|dst] host A   IPv4 address A (IPv4 source/destination, ARP/RARP sender/target)
//   [src|dst] net A/LEN  or  net A mask M
//   [tcp|udp] [src|dst] port N
//   ip proto N         N a number, or \tcp, \udp, \icmp
//   and && or || not ! ( )
//
// The expression becomes filters in disjunctive normal form (`or` and `not` of a conjunction
// give several filters, inserted under one id): each is a conjunction of the atoms libpcap's
// compiler tests for the same primitives (e.g. `port` is TCP, UDP or SCTP over IPv4 -- first
// fragments only, through the variable IP header -- or IPv6). `not` applies to atoms through De
// Morgan's laws. Anything outside the subset is an exojit::Error naming the token.
//
// One difference in meaning remains: libpcap rejects a packet as soon as a load falls past its
// end, on whatever path its code takes; here an atom whose field lies past the end is false and
// the other alternatives are still tried. The two agree on every packet that holds the fields
// the expression reads.
#pragma once

#include <string_view>
#include <vector>

#include "exojit/dpf/filter.h"

namespace exojit::dpf {

std::vector<Filter> compile_pcap(std::string_view expression);

}  // namespace exojit::dpf
