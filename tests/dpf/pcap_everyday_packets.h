// SPDX-License-Identifier: MIT
// The packets of the everyday tcpdump-expression test (pcap_everyday_test.cpp), beside the
// corpus's frames (pcap_packets.h), which they include.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <random>
#include <vector>

#include "pcap_packets.h"

namespace exojit::dpf::testing {

// Frames made for the everyday expressions (pcap_everyday_test.cpp): link addresses of every
// kind, VLAN and QinQ tags, IPv4 with options and fragments, IPv6 with extension headers, MPLS
// stacks, PPPoE sessions and discovery, ARP/RARP, other EtherTypes, TCP with flags, options and
// HTTP-looking payloads, UDP, ICMP, ICMPv6, SCTP; long frames for greater/len.
class EverydayFrameMaker : FrameBytes {
 public:
  explicit EverydayFrameMaker(uint64_t seed) : FrameBytes(seed) {}

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
        put16_at(at, unsigned(b_.size() - at - 2));
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
    put16_at(start + 2, pick(10) == 0 ? unsigned(rng_()) : unsigned(b_.size() - start));
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
    put16_at(start + 4, unsigned(b_.size() - start - 40));
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
};

// The everyday test's packets: these frames, the corpus's (FrameMaker), every truncation of some,
// jumbo and GSO sizes up to libpcap's 262144-byte snapshot, and random byte mutations.
// EVERYDAY_SEED=N draws others, for longer runs.
inline std::vector<std::vector<uint8_t>> everyday_packets() {
  std::vector<std::vector<uint8_t>> out;
  const char* seed_env = std::getenv("EVERYDAY_SEED");  // other packets, for longer runs
  uint64_t seed = seed_env ? std::strtoull(seed_env, nullptr, 0) : 0;
  EverydayFrameMaker made(2026 + seed);
  FrameMaker corpus(99 + seed);
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

}  // namespace exojit::dpf::testing
