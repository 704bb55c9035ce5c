// SPDX-License-Identifier: MIT
// RSS: the Toeplitz hash against Microsoft's published verification vectors ("Verifying the RSS
// hash calculation", Windows driver documentation), through the frame parser (IPv4, IPv6, TCP,
// UDP, fragments, VLAN, non-IP) and the indirection table.
#include "exojit/runtime/rss.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <string>
#include <vector>

#include "exojit/error.h"

namespace exojit::runtime {
namespace {

struct Vector {
  const char* dst;
  uint16_t dst_port;
  const char* src;
  uint16_t src_port;
  uint32_t addresses_only;
  uint32_t with_ports;
};

// The published tables, as printed (destination first).
constexpr Vector kIpv4[] = {
    {"161.142.100.80", 1766, "66.9.149.187", 2794, 0x323e8fc2, 0x51ccc178},
    {"65.69.140.83", 4739, "199.92.111.2", 14230, 0xd718262a, 0xc626b0ea},
    {"12.22.207.184", 38024, "24.19.198.95", 12898, 0xd2d0a5de, 0x5c2b394a},
    {"209.142.163.6", 2217, "38.27.205.30", 48228, 0x82989176, 0xafc7327f},
    {"202.188.127.2", 1303, "153.39.163.191", 44251, 0x5d1809c5, 0x10e828a2},
};
constexpr Vector kIpv6[] = {
    {"3ffe:2501:200:3::1", 1766, "3ffe:2501:200:1fff::7", 2794, 0x2cc18cd5, 0x40207d3d},
    {"ff02::1", 4739, "3ffe:501:8::260:97ff:fe40:efab", 14230, 0x0f0c461c, 0xdde51bbf},
    {"fe80::200:f8ff:fe21:67cf", 38024, "3ffe:1900:4545:3:200:f8ff:fe21:67cf", 44251, 0x4b61e985,
     0x02d1feef},
};

void put16(uint8_t* p, uint16_t v) {
  p[0] = uint8_t(v >> 8), p[1] = uint8_t(v);
}

// An Ethernet frame carrying IPv4 or IPv6 (by the address syntax) with a TCP or UDP header
// (proto 6/17) or another protocol (no ports), optionally 802.1Q-tagged.
std::vector<uint8_t> frame(const Vector& v, uint8_t proto, bool vlan = false, uint16_t frag = 0) {
  bool v6 = std::strchr(v.dst, ':') != nullptr;
  size_t l3 = 14 + (vlan ? 4 : 0), ip_len = v6 ? 40 : 20;
  std::vector<uint8_t> f(l3 + ip_len + 20, 0);
  if (vlan) put16(&f[12], 0x8100), put16(&f[16], 0x0005);
  put16(&f[l3 - 2], v6 ? 0x86dd : 0x0800);
  uint8_t* ip = &f[l3];
  if (v6) {
    ip[0] = 0x60;
    ip[6] = proto;
    EXPECT_EQ(inet_pton(AF_INET6, v.src, ip + 8), 1);
    EXPECT_EQ(inet_pton(AF_INET6, v.dst, ip + 24), 1);
  } else {
    ip[0] = 0x45;
    put16(ip + 6, frag);
    ip[9] = proto;
    EXPECT_EQ(inet_pton(AF_INET, v.src, ip + 12), 1);
    EXPECT_EQ(inet_pton(AF_INET, v.dst, ip + 16), 1);
  }
  put16(ip + ip_len, v.src_port);
  put16(ip + ip_len + 2, v.dst_port);
  return f;
}

TEST(Rss, MicrosoftVectorsIpv4) {
  Rss rss({}, 4);
  for (const Vector& v : kIpv4) {
    SCOPED_TRACE(v.dst);
    EXPECT_EQ(rss.hash(frame(v, 6).data(), frame(v, 6).size()), v.with_ports);
    EXPECT_EQ(rss.hash(frame(v, 17).data(), frame(v, 17).size()), v.with_ports);    // UDP alike
    EXPECT_EQ(rss.hash(frame(v, 1).data(), frame(v, 1).size()), v.addresses_only);  // ICMP
  }
}

TEST(Rss, MicrosoftVectorsIpv6) {
  Rss rss({}, 4);
  for (const Vector& v : kIpv6) {
    SCOPED_TRACE(v.dst);
    EXPECT_EQ(rss.hash(frame(v, 6).data(), frame(v, 6).size()), v.with_ports);
    EXPECT_EQ(rss.hash(frame(v, 17).data(), frame(v, 17).size()), v.with_ports);
    EXPECT_EQ(rss.hash(frame(v, 58).data(), frame(v, 58).size()), v.addresses_only);  // ICMPv6
  }
}

TEST(Rss, HashInputIsSourceDestinationThenPorts) {
  // The raw function on the specification's byte layout (source first), independent of frames.
  const Vector& v = kIpv4[0];
  uint8_t in[12];
  inet_pton(AF_INET, v.src, in);
  inet_pton(AF_INET, v.dst, in + 4);
  put16(in + 8, v.src_port);
  put16(in + 10, v.dst_port);
  EXPECT_EQ(toeplitz_hash(kMicrosoftRssKey, in, 8), v.addresses_only);
  EXPECT_EQ(toeplitz_hash(kMicrosoftRssKey, in, 12), v.with_ports);
  EXPECT_EQ(toeplitz_hash(kMicrosoftRssKey, in, 0), 0u);
  uint8_t big[37] = {};
  EXPECT_THROW(toeplitz_hash(kMicrosoftRssKey, big, 37), Error);
}

TEST(Rss, TablesAgreeWithTheBitSerialDefinition) {
  // Differential: random keys and inputs of every length, table-driven vs bit by bit.
  uint64_t x = 0x9e3779b97f4a7c15;
  auto next = [&x] {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    return uint8_t(x);
  };
  for (int k = 0; k < 20; ++k) {
    RssKey key;
    for (uint8_t& b : key) b = next();
    Rss rss({.key = key}, 2);
    for (size_t n = 0; n <= 36; ++n) {
      uint8_t in[36];
      for (uint8_t& b : in) b = next();
      ASSERT_EQ(rss.toeplitz(in, n), toeplitz_hash(key, in, n)) << "key " << k << " n " << n;
    }
  }
  uint8_t big[37] = {};
  EXPECT_THROW(Rss({}, 1).toeplitz(big, 37), Error);
}

TEST(Rss, FragmentsVlanAndNonIp) {
  Rss rss({}, 4);
  const Vector& v = kIpv4[1];
  // Fragments hash by addresses only: the first (more fragments set) and a later one.
  for (uint16_t frag : {uint16_t(0x2000), uint16_t(0x0010)}) {
    std::vector<uint8_t> f = frame(v, 6, false, frag);
    EXPECT_EQ(rss.hash(f.data(), f.size()), v.addresses_only);
  }
  // Don't-fragment alone is not a fragment.
  std::vector<uint8_t> df = frame(v, 6, false, 0x4000);
  EXPECT_EQ(rss.hash(df.data(), df.size()), v.with_ports);
  std::vector<uint8_t> tagged = frame(v, 17, true);
  EXPECT_EQ(rss.hash(tagged.data(), tagged.size()), v.with_ports);
  // ARP, runts, truncated IP headers, a bad IHL: not hashed, default queue.
  std::vector<uint8_t> arp(60, 0);
  put16(&arp[12], 0x0806);
  EXPECT_EQ(rss.hash(arp.data(), arp.size()), std::nullopt);
  std::vector<uint8_t> f = frame(v, 6);
  for (size_t n : {size_t(0), size_t(13), size_t(14), size_t(14 + 19)})
    EXPECT_EQ(rss.hash(f.data(), n), std::nullopt) << n;
  // Ports cut off: addresses only (the header is there, the ports are not).
  EXPECT_EQ(rss.hash(f.data(), 14 + 20 + 3), v.addresses_only);
  f[14] = 0x44;  // IHL 16 bytes
  EXPECT_EQ(rss.hash(f.data(), f.size()), std::nullopt);
  f[14] = 0x4f;  // IHL 60 > the frame's IP part
  EXPECT_EQ(rss.hash(f.data(), f.size()), std::nullopt);
  EXPECT_EQ(rss.queue(arp.data(), arp.size()), rss.config().indirection[0]);
}

TEST(Rss, IndirectionTableSteers) {
  // Default: 128 entries, round robin; a frame goes to indirection[hash % 128].
  Rss rss({}, 3);
  ASSERT_EQ(rss.config().indirection.size(), 128u);
  for (const Vector& v : kIpv4) {
    std::vector<uint8_t> f = frame(v, 6);
    EXPECT_EQ(rss.queue(f.data(), f.size()), (v.with_ports & 127) % 3);
  }
  // A table of one queue's entries steers everything there.
  Rss one({.indirection = std::vector<uint16_t>(64, 2)}, 4);
  for (const Vector& v : kIpv6) {
    std::vector<uint8_t> f = frame(v, 17);
    EXPECT_EQ(one.queue(f.data(), f.size()), 2u);
  }
  // Another key changes the hash.
  RssKey key{};
  key[0] = 1;
  Rss other({.key = key}, 4);
  std::vector<uint8_t> f = frame(kIpv4[0], 6);
  EXPECT_NE(other.hash(f.data(), f.size()), kIpv4[0].with_ports);
}

TEST(Rss, BadConfigurationsAreRefused) {
  EXPECT_THROW(Rss({}, 0), Error);
  EXPECT_THROW(Rss({.indirection = {0, 1, 0}}, 2), Error);                    // not a power of two
  EXPECT_THROW(Rss({.indirection = {0, 2}}, 2), Error);                       // queue 2 of 2
  EXPECT_THROW(Rss({.indirection = std::vector<uint16_t>(1024)}, 2), Error);  // too large
  EXPECT_NO_THROW(Rss({.indirection = {1}}, 2));
}

}  // namespace
}  // namespace exojit::runtime
