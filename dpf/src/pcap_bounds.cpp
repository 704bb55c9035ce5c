// SPDX-License-Identifier: MIT
// The size of a tcpdump expression, measured before libpcap's compiler sees it (pcap.h,
// "Bounds"). libpcap's time grows with the cube of the blocks its code generator makes (its
// optimizer's passes over dominator bit sets, libpcap issue #1255) and its memory with their
// square, so the cost counts what makes blocks: every token, plus, for each primitive, about the
// blocks it expands to on Ethernet -- `port 80` tests TCP, UDP and SCTP over IPv4 and IPv6, in
// both directions, `tcp port 80` under half of that, `portrange` twice `port`. The weights were
// measured: the longest disjunction of each kind of primitive that libpcap 1.10 compiles in
// about 0.2 s of CPU is close to kMaxPcapCost (tests/dpf/pcap_bounds_test.cpp lists them).
#include <algorithm>
#include <cctype>
#include <string>

#include "exojit/dpf/pcap.h"

namespace exojit::dpf {
namespace {

// Words: names, numbers, addresses (`10.0.0.0/8`, `::1`), port ranges (`1-2`), `tcp-syn`;
// a `-` or `/` only inside one (else the operator).
bool word_start(unsigned char c) {
  return std::isalnum(c) || c == '_' || c == '.' || c == ':' || c == '\\';
}
bool word_char(unsigned char c) {
  return word_start(c) || c == '-' || c == '/';
}

// The qualifiers seen so far in a primitive: they set the cost of its type keyword.
struct Primitive {
  bool l4 = false;    // tcp, udp or sctp: ports of one protocol
  bool dir = false;   // src or dst: one direction
  bool both = false;  // src or dst, src and dst: both
  bool link = false;  // ether, link: a MAC address
};

// Typed primitives: the cost of the keyword that names the type, by the qualifiers before it.
constexpr size_t kPort = 45, kDirPort = 22, kL4Port = 19;
constexpr size_t kPortrange = 97, kDirPortrange = 45, kL4Portrange = 8;
constexpr size_t kHost = 37, kDirHost = 14, kHost6 = 8;  // host, net, gateway

struct Keyword {
  const char* name;
  size_t cost;
  bool typed = false;  // takes a value: a bare value after it (`vlan 1 or 2`) costs as much
};

// Protocols and the other primitives named by a keyword (typed: followed by a value); anything
// not listed that starts a primitive is a value (a host name, `port 80 or 81`'s 81) and costs
// what the last typed primitive did.
constexpr Keyword kKeywords[] = {
    {"ip", 1},         {"ip6", 1},         {"arp", 1},
    {"rarp", 1},       {"icmp", 1},        {"icmp6", 2},
    {"igmp", 1},       {"igrp", 1},        {"pim", 1},
    {"vrrp", 1},       {"carp", 1},        {"ah", 2},
    {"esp", 2},        {"atalk", 1},       {"aarp", 1},
    {"decnet", 1},     {"iso", 1},         {"esis", 1},
    {"isis", 1},       {"clnp", 1},        {"stp", 1},
    {"ipx", 1},        {"netbeui", 1},     {"lat", 1},
    {"sca", 1},        {"moprc", 1},       {"mopdl", 1},
    {"llc", 1},        {"less", 1},        {"greater", 1},
    {"len", 1},        {"broadcast", 1},   {"multicast", 1},
    {"inbound", 1},    {"outbound", 1},    {"vlan", 4, true},
    {"mpls", 1, true}, {"pppoes", 1},      {"pppoed", 1},
    {"geneve", 8},     {"proto", 5, true}, {"protochain", 4, true},
    {"ifindex", 1},
};

std::string lower(std::string_view w) {
  std::string out(w);
  for (char& ch : out) ch = char(std::tolower(static_cast<unsigned char>(ch)));
  return out;
}

}  // namespace

PcapSize measure_pcap(std::string_view e) {
  PcapSize out;
  out.bytes = e.size();
  size_t depth = 0, brackets = 0;
  size_t last = 0;        // the cost of the last typed primitive (a bare value repeats it)
  bool start = true;      // the next token starts a primitive
  bool prev_dir = false;  // the last word was src or dst
  Primitive prim;
  auto begin_primitive = [&] {
    start = true;
    prim = Primitive{};
  };
  auto next_word = [&](size_t at) {  // the word after position `at`, if the next token is one
    while (at < e.size() && std::isspace(static_cast<unsigned char>(e[at]))) ++at;
    size_t end = at;
    while (end < e.size() && word_char(static_cast<unsigned char>(e[end]))) ++end;
    return e.substr(at, end - at);
  };
  auto next_is = [&](size_t at, char c) {
    while (at < e.size() && std::isspace(static_cast<unsigned char>(e[at]))) ++at;
    return at < e.size() && e[at] == c;
  };
  for (size_t i = 0; i < e.size();) {
    unsigned char c = static_cast<unsigned char>(e[i]);
    if (std::isspace(c)) {
      ++i;
      continue;
    }
    ++out.cost;  // every token
    if (!word_start(c)) {
      prev_dir = false;
      char n = i + 1 < e.size() ? e[i + 1] : '\0';
      if ((c == '&' && n == '&') || (c == '|' && n == '|')) {
        i += 2;
        begin_primitive();
        continue;
      }
      ++i;
      if (c == '(' || c == '[') {
        out.nesting = std::max(out.nesting, ++depth);
        if (c == '[') ++brackets;
        if (c == '(' && brackets == 0)
          begin_primitive();
        else
          start = false;
      } else if (c == ')' || c == ']') {
        depth -= depth > 0;
        if (c == ']') brackets -= brackets > 0;
        start = false;
      } else if (c == '!' && n != '=') {
        begin_primitive();
      } else {
        start = false;
      }
      continue;
    }
    size_t end = i;
    while (end < e.size() && word_char(static_cast<unsigned char>(e[end]))) ++end;
    const std::string w = lower(e.substr(i, end - i));
    i = end;
    if (w == "and" || w == "or" || w == "not") {
      // `src or dst`, `src and dst`: one qualifier, both directions.
      const std::string after = lower(next_word(i));
      if (w != "not" && prev_dir && (after == "src" || after == "dst")) {
        prim.both = true;
        start = false;
        continue;
      }
      begin_primitive();
      continue;
    }
    prev_dir = false;
    size_t cost = 0;
    bool typed = false;
    if (w == "tcp" || w == "udp" || w == "sctp") {
      cost = next_is(i, '[') ? 2 : 1;
      prim.l4 = true;
    } else if (w == "src" || w == "dst") {
      prim.dir = !prim.both;
      prev_dir = true;
    } else if (w == "ether" || w == "link" || w == "fddi" || w == "tr" || w == "wlan" ||
               w == "ppp" || w == "slip") {
      cost = 1;
      prim.link = true;
    } else if (w == "port") {
      cost = prim.l4 ? kL4Port : prim.dir ? kDirPort : kPort;
      typed = true;
    } else if (w == "portrange") {
      cost = prim.l4 ? kL4Portrange : prim.dir ? kDirPortrange : kPortrange;
      typed = true;
    } else if (w == "host" || w == "net" || w == "gateway") {
      bool v6 = next_word(i).find(':') != std::string_view::npos;
      cost = prim.link ? 1 : v6 ? kHost6 : prim.dir ? kDirHost : kHost;
      typed = true;
    } else {
      const Keyword* k = nullptr;
      for (const Keyword& kw : kKeywords)
        if (w == kw.name) k = &kw;
      if (k) {
        cost = k->cost;
        typed = k->typed;
      } else if (start && brackets == 0) {
        // A value where a primitive starts: `10.0.0.1` alone is `host 10.0.0.1`, the `81` of
        // `port 80 or 81` is `port 81`.
        cost = last ? last : w.find(':') != std::string::npos ? kHost6 : kHost;
      }
    }
    if (typed) last = cost;
    out.cost += cost;
    start = false;
  }
  return out;
}

}  // namespace exojit::dpf
