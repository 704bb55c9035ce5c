// SPDX-License-Identifier: MIT
// The connections, their filters and packets (common.h).
#include "common.h"

#include <random>

namespace exojit::bench {
namespace {

std::string ip_text(uint32_t a) {
  return std::to_string(a >> 24) + "." + std::to_string(a >> 16 & 255) + "." +
         std::to_string(a >> 8 & 255) + "." + std::to_string(a & 255);
}

}  // namespace

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

}  // namespace exojit::bench
