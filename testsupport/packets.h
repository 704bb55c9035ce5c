// SPDX-License-Identifier: MIT
// Packet construction for the dpf tests and benchmarks: Ethernet frames carrying ARP, IPv4
// (with options and fragments), IPv6, TCP, UDP and ICMP, and random ones drawn from small pools
// of addresses and ports so that random filters match often.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <memory>
#include <random>
#include <vector>

namespace exojit::dpf::testing {

using Bytes = std::vector<uint8_t>;

// A heap copy of exactly the packet's bytes (plus nothing), so that AddressSanitizer catches a
// read past its end; never null.
inline std::unique_ptr<uint8_t[]> exact_copy(const Bytes& p) {
  auto out = std::make_unique<uint8_t[]>(p.empty() ? 1 : p.size());
  if (!p.empty()) std::memcpy(out.get(), p.data(), p.size());
  return out;
}

inline void put16(Bytes& b, size_t at, uint16_t v) {
  b[at] = uint8_t(v >> 8);
  b[at + 1] = uint8_t(v);
}
inline void put32(Bytes& b, size_t at, uint32_t v) {
  put16(b, at, uint16_t(v >> 16));
  put16(b, at + 2, uint16_t(v));
}

inline Bytes ethernet(uint16_t type, size_t payload) {
  Bytes b(14 + payload, 0);
  for (int i = 0; i < 6; ++i)
    b[size_t(i)] = uint8_t(0x02 + i), b[size_t(6 + i)] = uint8_t(0x10 + i);
  put16(b, 12, type);
  return b;
}

struct Ipv4 {
  uint32_t src = 0xc0a80001, dst = 0xc0a80002;
  uint8_t proto = 6;
  unsigned option_words = 0;  // IHL - 5
  uint16_t id = 1;
  uint16_t frag = 0x4000;  // flags and fragment offset (DF set, offset 0)
  uint16_t sport = 1234, dport = 80;
  uint8_t icmp_type = 8;
  size_t payload = 6;
};

// Ethernet + IPv4 + (TCP|UDP|ICMP header when the fragment offset is 0) + payload.
inline Bytes ipv4(const Ipv4& s) {
  size_t ihl = 20 + 4 * s.option_words;
  bool first = (s.frag & 0x1fff) == 0;
  size_t l4 = !first ? 0 : s.proto == 6 ? 20 : s.proto == 17 ? 8 : s.proto == 1 ? 8 : 0;
  Bytes b = ethernet(0x0800, ihl + l4 + s.payload);
  b[14] = uint8_t(0x40 | (ihl / 4));
  put16(b, 16, uint16_t(ihl + l4 + s.payload));
  put16(b, 18, s.id);
  put16(b, 20, s.frag);
  b[22] = 64;
  b[23] = s.proto;
  put32(b, 26, s.src);
  put32(b, 30, s.dst);
  for (size_t i = 0; i < 4 * s.option_words; ++i) b[34 + i] = 1;  // NOP options
  size_t t = 14 + ihl;
  if (first && (s.proto == 6 || s.proto == 17)) {
    put16(b, t, s.sport);
    put16(b, t + 2, s.dport);
    if (s.proto == 6) b[t + 12] = 0x50;
  } else if (first && s.proto == 1) {
    b[t] = s.icmp_type;
  }
  return b;
}

struct Ipv6 {
  uint8_t next = 6;
  uint8_t src_last = 1, dst_last = 2;  // low byte of 2001:db8::x
  uint16_t sport = 1234, dport = 80;
  size_t payload = 6;
};

inline Bytes ipv6(const Ipv6& s) {
  size_t l4 = s.next == 6 ? 20 : s.next == 17 ? 8 : s.next == 58 ? 8 : 0;
  Bytes b = ethernet(0x86dd, 40 + l4 + s.payload);
  b[14] = 0x60;
  put16(b, 18, uint16_t(l4 + s.payload));
  b[20] = s.next;
  b[21] = 64;
  for (size_t a : {22u, 38u}) put32(b, a, 0x20010db8);
  b[37] = s.src_last;
  b[53] = s.dst_last;
  if (s.next == 6 || s.next == 17) {
    put16(b, 54, s.sport);
    put16(b, 56, s.dport);
  }
  return b;
}

inline Bytes arp(uint32_t sender, uint32_t target) {
  Bytes b = ethernet(0x0806, 28);
  put16(b, 14, 1);
  put16(b, 16, 0x0800);
  b[18] = 6;
  b[19] = 4;
  put16(b, 20, 1);
  put32(b, 28, sender);
  put32(b, 38, target);
  return b;
}

// Small pools: values filters and packets are drawn from.
inline constexpr uint32_t kHosts[] = {0xc0a80001, 0xc0a80002, 0x0a000001, 0x0a000102, 0xc00c4501};
inline constexpr uint16_t kPorts[] = {53, 80, 443, 1234, 4321};

// A random packet: every protocol above, IP options, fragments (first, middle, last), and
// occasionally truncated or pure garbage.
inline Bytes random_packet(std::mt19937_64& rng) {
  auto pick = [&](auto& pool) { return pool[rng() % std::size(pool)]; };
  Bytes b;
  switch (rng() % 8) {
    case 0: {
      const uint32_t sender = pick(kHosts);  // one draw per statement: the same on every arch
      b = arp(sender, pick(kHosts));
      break;
    }
    case 1: {
      Ipv6 s;
      s.next = std::array<uint8_t, 4>{6, 17, 58, 0}[rng() % 4];
      s.src_last = uint8_t(1 + rng() % 3), s.dst_last = uint8_t(1 + rng() % 3);
      s.sport = pick(kPorts), s.dport = pick(kPorts);
      b = ipv6(s);
      break;
    }
    case 2: {  // garbage
      b.resize(rng() % 80);
      for (auto& x : b) x = uint8_t(rng());
      if (rng() % 2 && b.size() > 13) put16(b, 12, rng() % 2 ? 0x0800 : 0x86dd);
      return b;
    }
    default: {
      Ipv4 s;
      s.src = pick(kHosts), s.dst = pick(kHosts);
      s.proto = std::array<uint8_t, 5>{6, 17, 1, 6, 47}[rng() % 5];
      s.option_words = rng() % 4 == 0 ? unsigned(rng() % 4) : 0;
      s.sport = pick(kPorts), s.dport = pick(kPorts);
      s.id = uint16_t(rng() % 3);
      s.icmp_type = rng() % 2 ? 8 : 0;
      switch (rng() % 6) {
        case 0:
          s.frag = 0x2000;  // first fragment (MF)
          break;
        case 1:
          s.frag = uint16_t(0x2000 | (1 + rng() % 20));  // middle
          break;
        case 2:
          s.frag = uint16_t(1 + rng() % 20);  // last
          break;
        default:
          s.frag = rng() % 2 ? 0x4000 : 0;
      }
      b = ipv4(s);
    }
  }
  if (rng() % 6 == 0 && !b.empty()) b.resize(rng() % b.size());  // truncated
  return b;
}

}  // namespace exojit::dpf::testing
