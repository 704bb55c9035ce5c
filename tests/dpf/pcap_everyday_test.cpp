// SPDX-License-Identifier: MIT
// An outside check of the tcpdump front end: the expressions people type (pcap-filter(7)'s
// everyday forms: hosts and nets with masks and CIDR, ports and port ranges, TCP flags, byte
// arithmetic, VLAN/MPLS/PPPoE, IPv6, ether, greater/less/len, not/!/&&/||, parentheses), each
// compiled by libpcap itself (DLT_EN10MB, optimizer on, netmask unknown) and by
// dpf::compile_pcap, then inserted in engines of every kind -- a trusted owner's (plain code), an
// untrusted owner's (hardened code), a layered engine (second layer), strict alignment, and all
// expressions in one engine -- and run over packets made for these expressions (IPv4 with
// options and fragments, IPv6 with extension headers, VLAN/QinQ, MPLS, PPPoE, ARP, HTTP
// payloads), the corpus's frame maker, every truncation of some, and random byte mutations.
// Requirements: libpcap refuses <=> compile_pcap refuses; every engine accepts exactly where
// pcap_offline_filter does. Disagreements are collected (expression + packet hex) and the test
// fails listing them.
#include <exojit/dpf/engine.h>
#include <exojit/dpf/pcap.h>
#include <exojit/error.h>
#include <gtest/gtest.h>
#include <pcap/pcap.h>

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "guarded.h"
#include "pcap_packets.h"

namespace exojit::dpf {
namespace {

const char* const kEveryday[] = {
    // hosts, nets, masks, CIDR
    "host 10.0.0.1",
    "src host 10.0.0.1",
    "dst host 192.168.1.1",
    "host 10.0.0.1 or host 10.0.0.2",
    "host 10.0.0.1 and host 192.168.1.1",
    "src 10.0.0.1",
    "dst 192.168.1.1",
    "src or dst 10.0.0.1",
    "src and dst net 10.0.0.0/8",
    "net 10.0.0.0/8",
    "net 172.16.0.0/12",
    "net 192.168.1.0/24",
    "src net 192.168.0.0/16",
    "dst net 224.0.0.0/4",
    "net 192.168.1.0 mask 255.255.255.0",
    "dst net 10.0.0.0 mask 255.0.0.0",
    "net 10",
    "net 0.0.0.0/0",
    "net 10.0.0.1/32",
    "not net 10.0.0.0/8",
    "ip host 10.0.0.1",
    "ip src 10.0.0.1 and ip dst 192.168.1.1",
    "host 255.255.255.255",
    "host 224.0.0.251",
    "host localhost",
    "not host localhost",
    // IPv6
    "ip6",
    "ip6 host 2001:db8::1",
    "host 2001:db8::1",
    "src host fe80::1",
    "dst host ff02::1",
    "ip6 net 2001:db8::/32",
    "ip6 src net fe80::/10",
    "net ff00::/8",
    "ip6 dst net 2001:db8::/64",
    "host ::1",
    "ip6 and tcp",
    "ip6 and udp",
    "ip6 and tcp port 80",
    "ip6 and udp port 53",
    "ip6 and not icmp6",
    "ip6 proto 6",
    "ip6 proto 58",
    "ip6 multicast",
    "ip6[6] == 17",
    "ip6[6] = 44",
    "icmp6",
    "icmp6 and ip6[40] == 135",
    "icmp6 and ip6[40] == 128",
    "icmp6[icmp6type] == icmp6-echo",
    "icmp6[icmp6type] == icmp6-neighborsolicit",
    "icmp6[0] == 128",
    "ip6 and tcp[tcpflags] & tcp-syn != 0",
    "ip6 protochain 6",
    "tcp port 80 and ip6",
    "ip6 or arp",
    // ports and port ranges
    "port 80",
    "tcp port 80",
    "udp port 53",
    "port 53",
    "src port 1234",
    "dst port 443",
    "tcp dst port 443",
    "udp src port 67 and udp dst port 68",
    "port 80 or port 443",
    "tcp port 80 or tcp port 8080",
    "not port 22",
    "not tcp port 22",
    "port http",
    "port https",
    "port domain",
    "tcp port ssh",
    "udp port ntp",
    "portrange 6000-6010",
    "tcp portrange 1-1023",
    "udp portrange 1024-65535",
    "src portrange 1000-2000",
    "dst portrange 8000-8080",
    "portrange 20-22",
    "udp and (port 53 or port 67)",
    "udp and (port 53 or port 67 or port 68)",
    "tcp and (port 80 or port 443)",
    "(tcp or udp) and port 53",
    "tcp port 80 and host 10.0.0.1",
    "host 10.0.0.1 and not port 22",
    "host 10.0.0.1 and (port 80 or port 443)",
    "tcp and src host 10.0.0.1 and src port 1234 and dst host 192.168.1.1 and dst port 80",
    "dst host 224.0.0.251 and udp port 5353",
    "udp port 5353",
    "sctp port 80",
    // TCP flags and bytes
    "tcp[tcpflags] & (tcp-syn|tcp-ack) != 0",
    "tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn",
    "tcp[tcpflags] & tcp-syn != 0",
    "tcp[tcpflags] & (tcp-rst|tcp-fin) != 0",
    "tcp[tcpflags] == tcp-syn",
    "tcp[tcpflags] == tcp-syn|tcp-ack",
    "tcp[13] == 2",
    "tcp[13] & 2 != 0",
    "tcp[13] = 18",
    "tcp[13] & 0x12 == 0x12",
    "tcp and (tcp[tcpflags] & tcp-syn != 0) and not (tcp[tcpflags] & tcp-ack != 0)",
    "tcp[tcpflags] & tcp-push != 0",
    "tcp[12] & 0xf0 > 0x50",
    "tcp[14:2] < 1024",
    "tcp[4:4] == 1",
    "tcp[8:4] != 0",
    "tcp[0:2] == 1234",
    "tcp[2:2] = 80",
    "tcp[((tcp[12:1] & 0xf0) >> 2):4] = 0x47455420",
    "tcp port 80 and tcp[((tcp[12:1] & 0xf0) >> 2):4] = 0x47455420",
    "tcp[((tcp[12:1] & 0xf0) >> 2):4] = 0x48545450",
    "tcp port 80 and (((ip[2:2] - ((ip[0]&0xf)<<2)) - ((tcp[12]&0xf0)>>2)) != 0)",
    // IP bytes and arithmetic
    "ip[2:2] > 576",
    "ip[2:2] > 1500",
    "ip[0] & 0xf != 5",
    "ip[0] & 0xf > 5",
    "ip[8] == 1",
    "ip[8] < 5",
    "ip[1] & 0xfc == 0xb8",
    "ip[1] != 0",
    "ip[6] & 0x20 != 0",
    "ip[6] & 0x40 != 0",
    "ip[6:2] & 0x1fff != 0",
    "ip[6:2] & 0x3fff != 0",
    "ip[9] == 6 && ip[2:2] > 40",
    "ip[12:4] == 0x0a000001",
    "ip[16] >= 224",
    "ip[4:2] == 0",
    "ip[2:2] - ((ip[0]&0xf)<<2) > 40",
    "(ip[2:2] - ((ip[0] & 0xf) << 2)) < 28",
    "udp[4:2] > 100",
    "udp[0:2] == 53 or udp[2:2] == 53",
    "udp port 53 and udp[10] & 0x80 = 0",
    "udp[8:2] == 0x1234",
    "icmp[4:2] == 1",
    "icmp[icmptype] == icmp-echo",
    "icmp[icmptype] = icmp-echo or icmp[icmptype] = icmp-echoreply",
    "icmp[icmptype] != icmp-echo and icmp[icmptype] != icmp-echoreply",
    "icmp and icmp[icmptype] == icmp-unreach",
    "icmp[icmptype] == 3 and icmp[icmpcode] == 3",
    "icmp[0] == 11",
    "ether[0] & 1 != 0",
    "ether[0] & 1 = 0",
    "ether[12:2] == 0x8100",
    "ether[12:2] >= 0x0600",
    "ether[12:2] < 0x0600",
    "ether[0:4] == 0xffffffff",
    "link[12:2] == 0x0800",
    "ether[14] & 0xf0 == 0x40",
    "ip[0] >> 4 == 4",
    "ip[2:2] * 2 > 1000",
    "ip[9] | 1 == 7",
    "ip[1] ^ 0x10 == 0",
    "ip[9] + 1 == 7",
    "ip[9] - 1 == 5",
    "ip[2:2] / 4 > 100",
    // protocols
    "ip",
    "tcp",
    "udp",
    "icmp",
    "igmp",
    "arp",
    "rarp",
    "sctp",
    "ip proto 17",
    "ip proto 6",
    "ip proto \\tcp",
    "ip proto \\udp",
    "ip proto \\icmp",
    "proto \\tcp",
    "proto \\udp",
    "proto 47",
    "ip proto 50",
    "esp",
    "ah",
    "ip and not tcp",
    "not ip",
    "not (ip or ip6)",
    "not ip and not ip6 and not arp",
    "!(arp || rarp)",
    "! tcp",
    "!tcp",
    "tcp && port 80",
    "tcp || udp",
    "ip || ip6 && !arp",
    "icmp or icmp6",
    "ip and not icmp",
    "ip multicast",
    "ip proto 2",
    "ether proto 0x0800",
    "ether proto \\ip6",
    "ether proto \\arp",
    "ether proto 0x88cc",
    // ARP
    "arp and arp[7] = 1",
    "arp[6:2] = 2",
    "arp host 10.0.0.1",
    "arp src host 10.0.0.1",
    "rarp dst host 10.0.0.1",
    // ether
    "ether host 00:11:22:33:44:55",
    "ether src 00:11:22:33:44:55",
    "ether dst ff:ff:ff:ff:ff:ff",
    "ether src host 00:11:22:33:44:55",
    "ether dst 01:00:5e:00:00:fb",
    "ether broadcast",
    "ether multicast",
    "ether multicast and not ether broadcast",
    "broadcast",
    "multicast",
    "ether host 00:11:22:33:44:55 and ip",
    "not ether src 00:11:22:33:44:55",
    "ether host 00-11-22-33-44-55",
    "ether host 0011.2233.4455",
    "ether host 001122334455",
    // length
    "greater 100",
    "less 64",
    "greater 1000 and tcp",
    "len > 1514",
    "len >= 100",
    "len < 60",
    "len <= 64 and udp",
    "len - 14 > 100",
    "len == 60",
    "not greater 100",
    // vlan, mpls, pppoe
    "vlan",
    "vlan 100",
    "vlan 100 and tcp",
    "vlan 100 and tcp port 80",
    "vlan and ip6",
    "vlan 100 or vlan 200",
    "vlan and vlan 200",
    "vlan 100 and vlan 200",
    "not vlan and ip",
    "vlan 100 and host 10.0.0.1",
    "vlan and udp port 53",
    "ip or vlan",
    "vlan or ip",
    "tcp port 80 or (vlan and tcp port 80)",
    "vlan and (tcp port 80 or udp port 53)",
    "vlan 100 && ip6 && tcp",
    "mpls",
    "mpls 100",
    "mpls and ip",
    "mpls and ip6",
    "mpls 100 and host 10.0.0.1",
    "mpls and tcp port 80",
    "pppoes",
    "pppoed",
    "pppoes and tcp port 80",
    "pppoes 0x1234 and host 10.0.0.1",
    "pppoes and ip6",
    "geneve and udp port 53",
    "vlan and mpls",
    // parenthesized combos
    "((tcp and port 80) or (udp and port 53)) and host 10.0.0.1",
    "tcp && (port 80 || port 443) && !host 10.0.0.1",
    "(host 10.0.0.1 or host 10.0.0.2) and (tcp or udp) and not port 22",
    "(src net 10.0.0.0/8 and dst net 192.168.0.0/16) or (src net 192.168.0.0/16 and dst net "
    "10.0.0.0/8)",
    "not (tcp port 22 or udp port 53 or icmp)",
    "(ip and tcp) or (ip6 and udp)",
    "tcp and not (port 22 or port 80)",
    "(ip6 and tcp port 80) or (ip and tcp port 80)",
    "ether broadcast or ip multicast or ip6 multicast",
    "ip and ((ip[6:2] & 0x1fff) != 0 or ip[6] & 0x20 != 0)",
    // refused by libpcap (both must refuse)
    "ip broadcast",
    "gateway 10.0.0.1",
    "tcp port",
    "vlan 5000",
    "net 10.0.0.1/8",
    "port 99999",
    "ip6 protochain",
    "host nosuchhostname.invalid",
};

// Packets made for the expressions above.
class Packets {
 public:
  explicit Packets(uint64_t seed) : rng_(seed) {}

  std::vector<uint8_t> next() {
    b_.clear();
    static const std::array<uint8_t, 6> macs[] = {{0x00, 0x11, 0x22, 0x33, 0x44, 0x55},
                                                  {0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
                                                  {0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb},
                                                  {0x33, 0x33, 0x00, 0x00, 0x00, 0x01},
                                                  {0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee}};
    for (int i = 0; i < 2; ++i)
      for (uint8_t x : macs[pick(i == 0 ? 5 : 5)]) put8(x);
    unsigned tags = pick(4) == 0 ? 1 + pick(2) : 0;
    for (unsigned i = 0; i < tags; ++i) {
      put16(i + 1 < tags ? 0x88a8 : 0x8100);
      static const uint16_t vids[] = {100, 200, 1, 4095};
      put16(uint16_t(pick(8) << 13 | vids[pick(4)]));
    }
    switch (pick(12)) {
      case 0:
      case 1:
        put16(0x86dd), ipv6();
        break;
      case 2:
        put16(pick(4) ? 0x0806 : 0x8035), arp();
        break;
      case 3: {
        put16(0x8847);
        unsigned n = 1 + pick(2);
        static const uint32_t labels[] = {100, 16, 5};
        for (unsigned i = 0; i < n; ++i)
          put32(labels[pick(3)] << 12 | (i + 1 == n ? 0x100 : 0) | 64);
        pick(3) ? ipv4() : ipv6();
        break;
      }
      case 4: {
        put16(pick(5) ? 0x8864 : 0x8863);
        put8(0x11), put8(0);
        put16(pick(2) ? 0x1234 : 1);
        size_t at = b_.size();
        put16(0);
        bool v6 = pick(3) == 0;
        put16(v6 ? 0x57 : 0x21);
        v6 ? ipv6() : ipv4();
        set16(at, unsigned(b_.size() - at - 2));
        break;
      }
      case 5: {
        static const uint16_t others[] = {0x88cc, 0x0060, 0x05dc, 0x9000};
        put16(others[pick(4)]);
        fill(10 + pick(40));
        break;
      }
      default:
        put16(0x0800), ipv4();
    }
    if (pick(3) == 0) fill(pick(1200));  // long frames for greater/len
    return b_;
  }

 private:
  unsigned pick(unsigned n) { return unsigned(rng_() % n); }
  void put8(unsigned v) { b_.push_back(uint8_t(v)); }
  void put16(unsigned v) { put8(v >> 8), put8(v); }
  void put32(uint32_t v) { put16(v >> 16), put16(v); }
  void set16(size_t at, unsigned v) { b_[at] = uint8_t(v >> 8), b_[at + 1] = uint8_t(v); }
  void fill(size_t n) {
    for (size_t i = 0; i < n; ++i) put8(unsigned(rng_()));
  }

  void ipv4() {
    static const uint32_t hosts[] = {0x0a000001, 0x0a000002, 0xc0a80101, 0xac100005, 0x08080808,
                                     0xffffffff, 0xe00000fb, 0x7f000001, 0x0affffff};
    size_t start = b_.size();
    unsigned words = pick(5) == 0 ? 1 + pick(3) : 0;
    unsigned ihl = pick(40) == 0 ? pick(5) : 5 + words;
    put8(0x40 | ihl);
    static const uint8_t tos[] = {0, 0, 0xb8, 0x10};
    put8(tos[pick(4)]);
    put16(0), put16(pick(3));
    static const uint16_t frags[] = {0x4000, 0, 0x2000, 0x2001, 0x0003, 0x4000, 0x4000};
    put16(frags[pick(7)]);
    static const uint8_t ttls[] = {64, 1, 3, 128};
    put8(ttls[pick(4)]);
    static const uint8_t protos[] = {6, 6, 6, 17, 17, 1, 2, 132, 47, 50};
    uint8_t proto = protos[pick(10)];
    put8(proto), put16(0);
    put32(hosts[pick(9)]), put32(hosts[pick(9)]);
    for (unsigned i = 0; i < 4 * words; ++i) put8(1);
    if ((b_[start + 6] & 0x1f) == 0 && b_[start + 7] == 0) transport(proto);
    set16(start + 2, pick(10) == 0 ? unsigned(rng_()) : unsigned(b_.size() - start));
  }

  void ipv6() {
    size_t start = b_.size();
    put32(0x60000000u), put16(0);
    size_t next_at = b_.size();
    put8(0), put8(64);
    for (int a = 0; a < 2; ++a) {
      switch (pick(5)) {
        case 0:
          put32(0), put32(0), put32(0), put32(1);
          break;
        case 1:
          put32(0xff020000u), put32(0), put32(0), put32(1);
          break;
        case 2:
          put32(0xfe800000u), put32(0), put32(0), put32(1);
          break;
        default:
          put32(0x20010db8), put32(0), put32(0), put32(1 + pick(2));
      }
    }
    unsigned n = pick(4) == 0 ? 1 + pick(2) : 0;
    for (unsigned i = 0; i < n; ++i) {
      static const uint8_t exts[] = {0, 60, 43, 44};
      uint8_t kind = exts[pick(4)];
      b_[next_at] = kind;
      next_at = b_.size();
      put8(0);
      if (kind == 44) {
        put8(0), put16(pick(2) ? 0 : 9), put32(1);
      } else {
        put8(0), fill(6);
      }
    }
    static const uint8_t finals[] = {6, 6, 17, 58, 58, 132};
    uint8_t last = finals[pick(6)];
    b_[next_at] = last;
    transport(last);
    set16(start + 4, unsigned(b_.size() - start - 40));
  }

  void transport(uint8_t proto) {
    static const uint16_t ports[] = {22, 53, 67, 68, 80, 123, 443, 1234, 5353, 6005, 8080, 40000};
    switch (proto) {
      case 6: {
        put16(ports[pick(12)]), put16(ports[pick(12)]);
        put32(pick(2)), put32(pick(2));
        unsigned opt = pick(4) == 0 ? 1 + pick(3) : 0;
        put8((5 + opt) << 4);
        static const uint8_t flags[] = {0x02, 0x12, 0x10, 0x11, 0x04, 0x18, 0x01, 0x3f, 0x00};
        put8(flags[pick(9)]);
        put16(pick(2) ? 512 : 65535), put16(0), put16(0);
        for (unsigned i = 0; i < 4 * opt; ++i) put8(1);
        static const uint32_t payloads[] = {0x47455420, 0x48545450, 0x504f5354};
        if (pick(2)) put32(payloads[pick(3)]);
        return;
      }
      case 17:
        put16(ports[pick(12)]), put16(ports[pick(12)]), put16(pick(2) ? 8 : 200), put16(0);
        put16(pick(2) ? 0x1234 : 0), put8(pick(2) ? 0x81 : 0x01);
        fill(pick(12));
        return;
      case 1: {
        static const uint8_t types[] = {0, 3, 8, 11, 5};
        put8(types[pick(5)]), put8(pick(4)), put16(0), put16(pick(2)), put16(1);
        return;
      }
      case 58: {
        static const uint8_t types[] = {128, 129, 135, 136, 1};
        put8(types[pick(5)]), put8(0), put16(0), put32(0);
        return;
      }
      case 132:
        put16(ports[pick(12)]), put16(ports[pick(12)]), put32(1), put32(0);
        return;
      default:
        fill(8);
    }
  }

  void arp() {
    static const uint32_t hosts[] = {0x0a000001, 0xc0a80101, 0x0a000002};
    put16(1), put16(0x0800), put8(6), put8(4), put16(1 + pick(4));
    fill(6), put32(hosts[pick(3)]), fill(6), put32(hosts[pick(3)]);
  }

  std::mt19937_64 rng_;
  std::vector<uint8_t> b_;
};

std::vector<std::vector<uint8_t>> packet_set() {
  std::vector<std::vector<uint8_t>> out;
  const char* seed_env = std::getenv("EVERYDAY_SEED");  // other packets, for longer runs
  uint64_t seed = seed_env ? std::strtoull(seed_env, nullptr, 0) : 0;
  Packets made(2026 + seed);
  testing::FrameMaker corpus(99 + seed);
  std::mt19937_64 rng(7 + seed);
  for (int i = 0; i < 1500; ++i) out.push_back(made.next());
  for (int i = 0; i < 700; ++i) out.push_back(corpus.next());
  // Every truncation of a few.
  for (int i = 0; i < 12; ++i) {
    std::vector<uint8_t> p = made.next();
    for (size_t n = 0; n < std::min<size_t>(p.size(), 90); ++n)
      out.emplace_back(p.begin(), p.begin() + ptrdiff_t(n));
  }
  // Large frames (GSO/jumbo sizes, up to libpcap's 262144-byte snapshot): loads and lengths past
  // 65535.
  for (size_t size : {1600u, 9000u, 65535u, 65536u, 65550u, 70000u, 131072u, 200000u, 262144u}) {
    for (int i = 0; i < 3; ++i) {
      std::vector<uint8_t> p = made.next();
      size_t old = p.size();
      p.resize(size);
      for (size_t j = old; j < size; ++j) p[j] = uint8_t(i == 0 ? 0 : rng());
      out.push_back(std::move(p));
    }
  }
  // Mutations: a few bytes of the headers changed.
  size_t base = out.size();
  for (size_t i = 0; i < 1500; ++i) {
    std::vector<uint8_t> p = out[rng() % base];
    if (p.empty()) continue;
    unsigned flips = 1 + unsigned(rng() % 3);
    for (unsigned f = 0; f < flips; ++f) {
      size_t at = rng() % std::min<size_t>(p.size(), 80);
      p[at] = rng() % 2 ? uint8_t(rng()) : uint8_t(p[at] ^ (1u << (rng() % 8)));
    }
    out.push_back(std::move(p));
  }
  return out;
}

struct LibpcapProgram {
  bpf_program prog{};
  std::string error;
  bool ok = false;
  explicit LibpcapProgram(const std::string& expr) {
    pcap_t* dead = pcap_open_dead(DLT_EN10MB, 262144);
    ok = pcap_compile(dead, &prog, expr.c_str(), 1, PCAP_NETMASK_UNKNOWN) == 0;
    if (!ok) error = pcap_geterr(dead);
    pcap_close(dead);
  }
  ~LibpcapProgram() {
    if (ok) pcap_freecode(&prog);
  }
  LibpcapProgram(const LibpcapProgram&) = delete;
  bool accepts(const std::vector<uint8_t>& p) const {
    pcap_pkthdr h{};
    h.caplen = h.len = bpf_u_int32(p.size());
    return pcap_offline_filter(&prog, &h, p.data()) != 0;
  }
};

std::string hex(const std::vector<uint8_t>& p) {
  std::string s;
  for (uint8_t b : p) s += fmt::format("{:02x}", b);
  return s;
}

// Runs every expression in every engine over the packets; returns the findings.
std::vector<std::string> check(const std::vector<std::string>& expressions, size_t* compiled_out) {
  static const std::vector<std::vector<uint8_t>> packets = packet_set();
  testing::GuardedPages guard(262144);
  std::vector<std::string> findings;
  size_t exprs = 0, compiled = 0, opaque = 0, accepted = 0, untrusted_refused = 0, runs = 0,
         layered_count = 0;
  struct Entry {
    std::string expr;
    std::unique_ptr<LibpcapProgram> lp;
    FilterId trusted_id, untrusted_id;
  };
  std::vector<Entry> all;
  Engine all_trusted, all_untrusted;
  for (const std::string& xs : expressions) {
    const char* x = xs.c_str();
    ++exprs;
    auto lp = std::make_unique<LibpcapProgram>(x);
    PcapFilter f;
    try {
      f = compile_pcap(x);
    } catch (const Error& e) {
      if (std::getenv("EVERYDAY_VERBOSE")) std::printf("refused: %-50s %s\n", x, e.what());
      if (lp->ok)
        findings.push_back(fmt::format("REFUSED (libpcap accepts): `{}`: {}", x, e.what()));
      else
        EXPECT_EQ(std::string(e.what()), "pcap filter: " + lp->error) << x;
      continue;
    }
    if (!lp->ok) {
      findings.push_back(fmt::format("ACCEPTED (libpcap refuses: {}): `{}`", lp->error, x));
      continue;
    }
    ++compiled;
    opaque += f.lifted.opaque;
    if (f.lifted.opaque && std::getenv("EVERYDAY_VERBOSE"))
      std::printf("opaque: %-50s %s\n", x, f.lifted.reason.c_str());
    // Engines: trusted (plain code), untrusted (hardened), a low layer threshold (the second
    // layer), strict alignment, and an untrusted owner without the broad right (refusals there
    // are the owner's rights, counted, not findings).
    struct Variant {
      const char* name;
      EngineOptions eo;
      InsertOptions io;
    };
    EngineOptions layered;
    layered.layer_threshold = 1;
    EngineOptions strict;
    strict.strict_alignment = true;
    const Variant variants[] = {
        {"trusted", {}, {.owner = 1, .broad = true, .trusted = true}},
        {"untrusted", {}, {.owner = 5, .broad = true, .trusted = false}},
        {"untrusted-layered", layered, {.owner = 5, .broad = true}},
        {"trusted-strict", strict, {.owner = 1, .broad = true, .trusted = true}},
        {"untrusted-notbroad", {}, {.owner = 6}},
        {"untrusted-stateful", {}, {.owner = 5, .share = 1, .broad = true}},
    };
    for (const Variant& v : variants) {
      Engine e(v.eo);
      FilterId id = 0, base = 0;
      std::vector<FilterId> others;     // the engine's other filters (never on these packets)
      if (v.eo.layer_threshold == 1) {  // the base layer's; the expression goes to the second
        base = e.insert(compile_pcap("tcp port 9 and host 10.9.9.9"), {.owner = 5});
        others.push_back(base);
        for (int i = 0; i < 40; ++i)
          others.push_back(e.insert(compile_pcap(fmt::format("tcp port {} and host 10.9.{}.{}",
                                                             9 + i % 7, i / 50, i % 50 + 1)),
                                    {.owner = 5}));
      }
      if (std::string(v.name) == "untrusted-stateful") {  // demux goes out of line
        const Filter frag[] = {
            parse_filter("(12:16 == 0x800) && (23:8 == 17) && (30:32 == 10.9.9.9) && "
                         "((20:16 & 0x1fff) == 0) && RECORD((18:16 << 32) | 26:32) && SHIFT(14) "
                         "&& SHIFT((0:8 & 0xf) << 2) && (2:16 == 9)"),
            parse_filter("(12:16 == 0x800) && (23:8 == 17) && (30:32 == 10.9.9.9) && "
                         "((20:16 & 0x1fff) > 0) && RECORDED((18:16 << 32) | 26:32)")};
        others.push_back(e.insert(std::span<const Filter>(frag), {.owner = 9, .share = 1}));
      }
      try {
        id = e.insert(f, v.io);
      } catch (const Error& err) {
        if (v.io.broad)
          findings.push_back(
              fmt::format("REFUSED by insert ({}): `{}`: {}", v.name, x, err.what()));
        else if (++untrusted_refused, std::getenv("EVERYDAY_VERBOSE"))
          std::printf("not broad: %-50s %s\n", x, err.what());
        continue;
      }
      layered_count += e.layered();
      size_t bad = 0;
      for (const auto& p : packets) {
        bool want = lp->accepts(p);
        const uint8_t* at = guard.place(p.data(), p.size());
        FilterId got = e.demux(at, p.size());
        ++runs;
        bool ok = want ? got == id : got != id;
        if (got && std::count(others.begin(), others.end(), got))
          ok = !want || e.accepting(at, p.size()).size() >= 2;
        FilterId ref = e.demux_reference(at, p.size());
        if (ref != got) ok = false;
        FilterId burst = 0;
        size_t len = p.size();
        e.demux_burst(&at, &len, 1, &burst);
        if (burst != got) ok = false;
        if (!ok && bad++ < 2)
          findings.push_back(
              fmt::format("DIFFERS ({}{}): `{}` libpcap {} engine {} ref {} burst {} on {}", v.name,
                          f.lifted.opaque ? ", opaque" : "", x, want ? "accepts" : "rejects", got,
                          ref, burst, hex(p)));
      }
    }
    FilterId tid = all_trusted.insert(f, {.owner = 1, .share = 1, .broad = true, .trusted = true});
    FilterId uid =
        all_untrusted.insert(f, {.owner = uint32_t(10 + exprs), .share = 1, .broad = true});
    all.push_back({x, std::move(lp), tid, uid});
  }
  // Everything in one engine, trusted and untrusted: each id accepts where libpcap does; then
  // again after every other expression is removed (tables rewritten, filters masked).
  size_t bad_all = 0;
  for (int round = 0; round < 2; ++round) {
    if (round == 1) {
      std::vector<Entry> kept;
      for (size_t i = 0; i < all.size(); ++i) {
        if (i % 2 == 0) {
          all_trusted.remove(all[i].trusted_id, 1);
          all_untrusted.remove(all[i].untrusted_id, all_untrusted.owner_of(all[i].untrusted_id));
        } else {
          kept.push_back(std::move(all[i]));
        }
      }
      all = std::move(kept);
    }
    for (const auto& p : packets) {
      const uint8_t* at = guard.place(p.data(), p.size());
      std::vector<FilterId> want_t, want_u;
      for (const Entry& en : all)
        if (en.lp->accepts(p)) want_t.push_back(en.trusted_id), want_u.push_back(en.untrusted_id);
      accepted += want_t.size();
      std::vector<FilterId> got_t = all_trusted.accepting(at, p.size());
      std::vector<FilterId> got_u = all_untrusted.accepting(at, p.size());
      FilterId wt = all_trusted.demux(at, p.size()), wu = all_untrusted.demux(at, p.size());
      bool ok = got_t == want_t && got_u == want_u &&
                (want_t.empty() ? wt == 0 : std::count(want_t.begin(), want_t.end(), wt) == 1) &&
                (want_u.empty() ? wu == 0 : std::count(want_u.begin(), want_u.end(), wu) == 1) &&
                all_trusted.demux_reference(at, p.size()) == wt &&
                all_untrusted.demux_reference(at, p.size()) == wu;
      if (!ok && bad_all++ < 5)
        findings.push_back(
            fmt::format("DIFFERS (all in one engine, round {}) on {}", round, hex(p)));
    }
  }
  std::printf(
      "%zu expressions, %zu compiled (%zu opaque), %zu refused by an untrusted owner without the "
      "broad right (by design); %zu in a layered engine; %zu packets, %zu demuxes alone, %zu "
      "accepted verdicts in one "
      "engine\n",
      exprs, compiled, opaque, untrusted_refused, layered_count, packets.size(), runs, accepted);
  for (const std::string& s : findings) std::printf("FINDING %s\n", s.c_str());
  EXPECT_GT(accepted, 0u);
  if (compiled_out) *compiled_out = compiled;
  return findings;
}

// EVERYDAY_PROBE="expr;expr;..." (or @file): the lift of each (a debugging aid, no check).
TEST(DpfPcapEveryday, Probe) {
  const char* probe = std::getenv("EVERYDAY_PROBE");
  if (!probe) GTEST_SKIP() << "set EVERYDAY_PROBE";
  std::string all = probe;
  if (all.size() > 1 && all[0] == '@') {  // @file: the expressions in a file
    std::FILE* in = std::fopen(all.c_str() + 1, "rb");
    ASSERT_NE(in, nullptr);
    all.clear();
    for (int c; (c = std::fgetc(in)) != EOF;) all += char(c);
    std::fclose(in);
  }
  for (size_t at = 0; at <= all.size();) {
    size_t end = std::min(all.find(';', at), all.size());
    std::string x = all.substr(at, end - at);
    at = end + 1;
    try {
      PcapFilter f = compile_pcap(x);
      std::printf("%-50s %s (%zu disjuncts)\n", x.c_str(),
                  f.lifted.opaque ? f.lifted.reason.c_str() : "lifted", f.lifted.disjuncts.size());
      if (std::getenv("EVERYDAY_BPF")) std::printf("%s\n", bpf_image(f.program).c_str());
    } catch (const Error& e) {
      std::printf("%-50s %s\n", x.c_str(), e.what());
    }
  }
}

TEST(DpfPcapEveryday, AgreesWithLibpcapInEveryEngine) {
  std::vector<std::string> exprs(std::begin(kEveryday), std::end(kEveryday));
  ASSERT_GE(exprs.size(), 150u);
  size_t compiled = 0;
  std::vector<std::string> findings = check(exprs, &compiled);
  EXPECT_GE(compiled, 250u);
  EXPECT_TRUE(findings.empty()) << findings.size() << " findings";
}

// Arithmetic at its edges: 32-bit wrap-around of libpcap's accumulator, shifts, divisions,
// negation, offsets computed from packet bytes (wrapping, huge, negative), unsigned compares of
// values with the top bit set.
TEST(DpfPcapEveryday, ArithmeticEdgesAgreeWithLibpcap) {
  std::vector<std::string> exprs = {
      "ip[2:2] - 1000 > 0",
      "ip[2:2] - 1000 < 100",
      "len - 100 > 0",
      "len - 100 < 10",
      "ip[0] - ip[1] > 5",
      "ip[1] - ip[0] < 3",
      "tcp[0:2] - tcp[2:2] > 0",
      "tcp[0:4] > 0x80000000",
      "tcp[4:4] >= 0xffffffff",
      "ip[12:4] > 0xc0000000",
      "ip[12:4] & 0x80000000 != 0",
      "ip[0] << 24 > 0x40000000",
      "ip[0] << 28 == 0x50000000",
      "ip[0] << 31 = 0",
      "ip[12:4] << 1 > 0x20000000",
      "ip[12:4] >> 31 = 1",
      "ip[0] >> 8 = 0",
      "ip[12:4] * 2 = 0x14000002",
      "ip[12:4] * 256 > 0x1000",
      "ip[12:4] + 0xf6000000 = 1",
      "ip[12:4] + ip[16:4] = 0",
      "ip[12:4] + ip[16:4] < 0x10000000",
      "-ip[0] > 0xffffff00",
      "-ip[12:4] = 0xf5ffffff",
      "ip[0] / 2 = 0x22",
      "ip[12:4] / 16 > 0x0a00000",
      "ip[0] % 16 = 5",
      "ip[0] / ip[1] = 0",
      "ip[1] % ip[0] = 0",
      "ip[0] * ip[1] = 0",
      "ip[0] & ip[1] = 0",
      "ip[0] | ip[9] = 0x47",
      "ip[0] ^ ip[9] = 0x43",
      "ip[9] << 2 = 24",
      "ip[0] << ip[9] = 0",
      "ip[12:4] >> ip[9] = 0",
      "ether[ether[0] - 10] = 0",
      "ether[ether[14] - 0x40] = 0x45",
      "ip[ip[0] - 0x45] = 0x45",
      "ip[ip[9] * 1000] = 0",
      "ether[ether[12:2]] = 0",
      "ether[ether[12:2] - 0x7f0] = 0",
      "tcp[tcp[12] * 100] = 0",
      "tcp[tcp[12] - 0x50] = 0",
      "tcp[tcp[12] >> 2] = 0x47",
      "tcp[(tcp[12] & 0xf0) >> 2] = 0x47",
      "udp[udp[4:2] - 8] = 0",
      "udp[udp[4:2]] = 0",
      "ip[(ip[0] & 0xf) << 2] = 0",
      "ip[((ip[0] & 0xf) << 2) + 13] & 2 != 0",
      "ether[0xfffffff0] = 0",
      "ip[65535] = 0",
      "ether[1514] = 0",
      "ether[59:1] = 0",
      "ip[ip[2:2] - 1] = 0",
      "ip6[ip6[4:2] + 39] = 0",
      "icmp[icmp[0]] = 0",
      "tcp[12:1] & 0xf0 = 0x50 and tcp[20:4] = 0x47455420",
      "tcp[tcp[12]/4:4] = 0x47455420",
      "ip[2:2] > ip[0] & 0xf",
      "ip[2:2] = len - 14",
      "ip[2:2] + 14 != len",
      "len = ip[2:2] + 14",
      "ip6[4:2] + 54 = len",
      "len > ip[2:2]",
      "len & 1 = 1",
      "len >> 1 = 30",
      "len * len > 1000",
      "len / 2 > 30",
      "len - len = 0",
      "len % 7 = 3",
      "ether[12:2] = 0x800 and len > 0",
      "ip[0] = 0 or ip[0] = 1 or ip[0] = 2 or ip[0] = 3 or ip[0] = 0x45",
      "1 = 1",
      "0 = 1",
      "len >= 0",
      "ip[0] >= 0",
      "ip[0] > 255",
      "ip[0:2] > 65535",
      "ip[0:4] >= 0",
      "tcp[13] & 0 = 0",
      "tcp[13] & 0 != 0",
      "ip[0] & 0xf0 = 0x45",
      "ip[1] | 0x80 = 0",
      "vlan and ether[14] & 0xe0 = 0",
      "vlan and vlan[0:2] & 0xfff = 100",
      "mpls and mpls[2] & 1 = 1",
      "ip6 and ip6[0] & 0xf0 = 0x60",
      "greater 65535",
      "greater 70000",
      "less 65536",
      "len > 65535",
      "len - 65536 > 0",
      "len > 200000",
      "len = 65536",
      "len >> 16 = 1",
      "len & 0xffff = 0",
      "ip[ip[9] * 1000] = 0",
      "tcp[tcp[12] * 1000] = 0",
      "ip[ip[0] * 1000] = 0",
      "ether[ether[0] * 0x400] = 0",
      "ip[ip[1] * 0x100] = 0",
      "ether[ether[12:2] * 4] = 0",
      "tcp[tcp[12:2] * 2:4] = 0",
      "udp[udp[4:2] * 4] = 0",
      "ip[ip[2:2] + 65000] = 0",
      "ether[ether[12:2] + 60000] = 0",
  };
  size_t compiled = 0;
  std::vector<std::string> findings = check(exprs, &compiled);
  EXPECT_GE(compiled, 60u);
  EXPECT_TRUE(findings.empty()) << findings.size() << " findings";
}

// Odd but valid inputs: empty and blank expressions, upper case, long disjunctions (past the
// lift's 256 paths), deep parentheses, names.
TEST(DpfPcapEveryday, OddInputsAgreeWithLibpcap) {
  std::vector<std::string> exprs = {
      "", " ", "\t\n", "TCP port 80", "Host 10.0.0.1", "tcp PORT 80", "ip and TCP",
      "  tcp   port   80  ", "tcp port 80\n", "(tcp)", "((((((((((tcp))))))))))",
      "not not not not tcp", "!!tcp", "tcp and tcp and tcp",
      // address and number forms, values at their limits
      "host ::ffff:10.0.0.1", "host 2001:db8:0:0:0:0:0:1", "net 2001:db8::1/128", "ip6 net ::/0",
      "host fe80::1%lo", "host 10.1", "net 10.0.0.0/33", "host 0x0a000001", "host 167772161",
      "net 192.168.1", "net 192.168.1.0/25", "net 10.0.0.0/31", "port 0", "port 65535",
      "portrange 0-65535", "portrange 80-80", "portrange 8080-80",
      "ip[2:2] > 576 and ip[2:2] < 576", "greater 0", "less 0", "less 4294967295",
      "len > 0xffffffff", "vlan 0", "vlan 4095", "mpls 1048575", "mpls 1048576", "pppoes 65535",
      "pppoes 65536", "geneve 16777215", "ether proto 0xffff", "ether proto 1500",
      "ether proto 1501", "ip proto 255", "ip proto 256", "ip6 proto 0", "tcp[0xffff] = 0",
      "ether host ff:ff:ff:ff:ff:ff", "ether host 1:2:3:4:5:6", "ether[0:4] = 4294967295",
      "ip[0] = -1", "ip[0] = 256", "tcp[13] & 0xffffffff = 2", "icmp[icmptype] = 255",
      "dst port 80 or src port 80", "src and dst port 80", "src or dst portrange 1-2",
      "tcp src or dst port 80"};
  std::string hosts, ports, nets, deep = "tcp";
  for (int i = 1; i <= 100; ++i)
    hosts += fmt::format("{}host 10.0.{}.{}", i > 1 ? " or " : "", i / 50, i % 50 + 1);
  for (int i = 1; i <= 60; ++i) ports += fmt::format("{}port {}", i > 1 ? " or " : "", 6000 + i);
  for (int i = 1; i <= 40; ++i) nets += fmt::format("{}net 10.{}.0.0/16", i > 1 ? " or " : "", i);
  for (int i = 0; i < 60; ++i) deep = "(" + deep + " and port 80)";
  exprs.insert(exprs.end(), {hosts, ports, nets, deep, "tcp and (" + ports + ")",
                             "not (" + hosts + ")", "udp and (" + ports + ") and (" + nets + ")"});
  size_t compiled = 0;
  std::vector<std::string> findings = check(exprs, &compiled);
  EXPECT_GE(compiled, 10u);
  EXPECT_TRUE(findings.empty()) << findings.size() << " findings";
}

// Random combinations of the everyday primitives: and/or/not, &&/||/!, nested parentheses.
TEST(DpfPcapEveryday, RandomCombinationsAgreeWithLibpcap) {
  static const char* const prims[] = {"tcp",
                                      "udp",
                                      "icmp",
                                      "ip",
                                      "ip6",
                                      "arp",
                                      "vlan",
                                      "vlan 100",
                                      "mpls",
                                      "pppoes",
                                      "host 10.0.0.1",
                                      "src host 10.0.0.2",
                                      "dst net 192.168.0.0/16",
                                      "net 10.0.0.0/8",
                                      "port 80",
                                      "port 53",
                                      "src port 1234",
                                      "dst port 443",
                                      "tcp port 80",
                                      "udp port 53",
                                      "portrange 6000-6010",
                                      "ether broadcast",
                                      "ether multicast",
                                      "ether host 00:11:22:33:44:55",
                                      "greater 100",
                                      "less 64",
                                      "len > 200",
                                      "ip[2:2] > 576",
                                      "ip[0] & 0xf != 5",
                                      "tcp[tcpflags] & (tcp-syn|tcp-ack) != 0",
                                      "tcp[tcpflags] & tcp-syn != 0",
                                      "icmp[icmptype] == icmp-echo",
                                      "ip6 host 2001:db8::1",
                                      "icmp6",
                                      "ip proto 17",
                                      "ip[6:2] & 0x1fff != 0",
                                      "ip6 net fe80::/10",
                                      "ip multicast",
                                      "ip6 multicast",
                                      "tcp[((tcp[12:1] & 0xf0) >> 2):4] = 0x47455420",
                                      "udp[8:2] == 0x1234",
                                      "ip[8] < 5",
                                      "ip[2:2] - 1000 > 0",
                                      "tcp[13] & 0x12 = 0x12",
                                      "len - 100 > 0",
                                      "ip[12:4] + 0xf6000000 = 1",
                                      "ip[2:2] - ((ip[0]&0xf)<<2) > 40",
                                      "tcp[tcp[12] >> 2] = 0x47",
                                      "udp[udp[4:2]] = 0",
                                      "ip[ip[9] * 10] = 0",
                                      "ip6[40] = 128",
                                      "icmp6[0] = 135",
                                      "ether[12:2] > 0x600",
                                      "vlan 200",
                                      "mpls 100",
                                      "pppoes 0x1234",
                                      "ip6 and tcp",
                                      "ip[0] << 28 == 0x50000000",
                                      "tcp[0:2] - tcp[2:2] > 0",
                                      "arp[7] = 1",
                                      "ip[9] | 1 == 7"};
  std::mt19937_64 rng(20261203);
  std::function<std::string(int)> gen = [&](int depth) -> std::string {
    unsigned k = unsigned(rng() % 10);
    if (depth == 0 || k < 4) return prims[rng() % std::size(prims)];
    if (k < 5) {
      std::string inner = gen(depth - 1);
      return (rng() % 2 ? "not (" : "!(") + inner + ")";
    }
    std::string a = gen(depth - 1);
    std::string b = gen(depth - 1);
    static const char* const ops[] = {" and ", " or ", " && ", " || "};
    std::string op = ops[rng() % 4];
    return "(" + a + op + b + ")";
  };
  std::vector<std::string> exprs;
  const char* count = std::getenv("EVERYDAY_RANDOM");  // more, for longer runs
  const char* seed = std::getenv("EVERYDAY_SEED");
  if (seed) rng.seed(20261203 + std::strtoull(seed, nullptr, 0));
  size_t n = count ? std::strtoull(count, nullptr, 0) : 400;
  for (size_t i = 0; i < n; ++i) exprs.push_back(gen(1 + int(rng() % 4)));
  size_t compiled = 0;
  std::vector<std::string> findings = check(exprs, &compiled);
  EXPECT_GT(compiled, n * 3 / 4);  // the rest libpcap refuses (both must, with its message)
  EXPECT_TRUE(findings.empty()) << findings.size() << " findings";
}

}  // namespace
}  // namespace exojit::dpf
