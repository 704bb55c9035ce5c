// SPDX-License-Identifier: MIT
// A layered engine's compiled entry (dpf/src/layer_entry.cpp): the recent layer's guard -- the
// tests every filter of that layer makes first -- lets the entry answer a packet with the base
// alone. These tests build engines whose recent layer has a guard (UDP filters inserted after a
// large base) and compare demux with the trie walk on every prefix of packets the base answers,
// the recent layer answers, neither answers, a masked (removed) filter answered, and fragments
// that need the engine's mutex, each placed flush against a PROT_NONE page.
#include <exojit/dpf/engine.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "guarded.h"
#include "live_tables.h"
#include "packets.h"

namespace exojit::dpf {
namespace {

using testing::Bytes;

Filter tcp_connection(uint32_t src) {
  Filter f;
  f.eq(field(12, 16), 0x800).eq(field(23, 8), 6).eq(field(26, 32), src).shift(34);
  return f.eq(field(2, 16), 80);
}

Filter udp_port(uint16_t port) {
  Filter f;
  f.eq(field(12, 16), 0x800).eq(field(23, 8), 17).shift(14).shift((field(0, 8) & 0xf) << 2);
  return f.eq(field(2, 16), port);
}

// The DNS server's fragment filters (as in fragments_test.cpp): one id, two disjuncts.
std::vector<Filter> dns_with_fragments() {
  return {parse_filter("(12:16 == 0x800) && (23:8 == 17) && ((20:16 & 0x1fff) == 0) && "
                       "RECORD((18:16 << 32) | 26:32) && SHIFT(14) && SHIFT((0:8 & 0xf) << 2) && "
                       "(2:16 == 53)"),
          parse_filter("(12:16 == 0x800) && (23:8 == 17) && ((20:16 & 0x1fff) > 0) && "
                       "RECORDED((18:16 << 32) | 26:32)")};
}

Bytes udp_to(uint16_t port, uint32_t src = 0x0c000001) {
  testing::Ipv4 s;
  s.proto = 17, s.src = src, s.dport = port;
  return testing::ipv4(s);
}

Bytes tcp_from(uint32_t src) {
  testing::Ipv4 s;
  s.src = src, s.dport = 80;
  return testing::ipv4(s);
}

Bytes fragment(uint16_t ip_id, uint16_t offset, bool more) {
  testing::Ipv4 s;
  s.proto = 17, s.id = ip_id, s.src = 0x0a000001, s.sport = 3333, s.dport = 53, s.payload = 16;
  s.frag = uint16_t((more ? 0x2000 : 0) | offset);
  return testing::ipv4(s);
}

// demux == the trie walk for every prefix of each packet, flush against the guard page at both
// ends.
void expect_code_is_walk(Engine& e, const std::vector<Bytes>& packets, const std::string& when) {
  testing::GuardedPages pages(2048);
  for (size_t i = 0; i < packets.size(); ++i)
    for (size_t len = 0; len <= packets[i].size(); ++len)
      for (bool at_end : {true, false}) {
        const uint8_t* p = pages.place(packets[i].data(), len, at_end);
        ASSERT_EQ(e.demux(p, len), e.demux_reference(p, len))
            << when << ": packet " << i << ", " << len << " bytes, at_end " << at_end;
      }
}

class DpfLayers : public ::testing::TestWithParam<bool> {};  // trusted (plain) or hardened code

// A base of TCP connections and one UDP port (7); then UDP ports in the recent layer, whose
// filters all begin with `12:16 == 0x800 && 23:8 == 17`: the entry's guard.
TEST_P(DpfLayers, TheRecentLayersGuardSkipsOnlyPacketsItCannotAccept) {
  const bool trusted = GetParam();
  EngineOptions o;
  o.layer_threshold = 16;
  Engine e(o);
  FilterId seven = e.insert(udp_port(7), {.owner = 1, .trusted = trusted});
  std::vector<FilterId> conns;
  for (uint32_t i = 0; i < 40; ++i)
    conns.push_back(e.insert(tcp_connection(0x0b000001 + i), {.owner = 2, .trusted = trusted}));
  std::vector<FilterId> ports;
  for (uint16_t p = 5000; p < 5004; ++p)
    ports.push_back(e.insert(udp_port(p), {.owner = 3, .trusted = trusted}));
  if (!kLiveTableWrites) {
    // (Every table change is new code there: the connections' regenerations merge the layers.)
    GTEST_SKIP() << "no live table writes on this architecture: the engine is not layered";
  }
  ASSERT_TRUE(e.layered());
  ASSERT_NE(e.dump_trie().find("recent changes"), std::string::npos);

  std::vector<Bytes> packets{
      udp_to(7),          udp_to(5000),         udp_to(5003),         udp_to(5004),
      udp_to(53),         tcp_from(0x0b000001), tcp_from(0x0b000028), tcp_from(0x0c000001),
      testing::arp(1, 2), testing::ipv6({})};
  packets.push_back(fragment(9, 3, false));  // a later fragment: no filter yet
  EXPECT_EQ(e.demux(packets[0].data(), packets[0].size()), seven);
  EXPECT_EQ(e.demux(packets[1].data(), packets[1].size()), ports[0]);
  EXPECT_EQ(e.demux(packets[5].data(), packets[5].size()), conns[0]);
  EXPECT_EQ(e.demux(packets[7].data(), packets[7].size()), 0u);
  expect_code_is_walk(e, packets, "layered");
  EXPECT_EQ(e.stats().locked_demuxes, 0u);  // no masked id, no state: all lock-free

  // A removed base filter whose id the code still returns: masked, its packets take the walk.
  e.remove(seven, 1);
  ASSERT_TRUE(e.layered());
  EXPECT_EQ(e.demux(packets[0].data(), packets[0].size()), 0u);
  expect_code_is_walk(e, packets, "port 7 masked");
  // A removed recent filter (that layer regenerates), and more in it.
  e.remove(ports[1], 3);
  ports.push_back(e.insert(udp_port(5004), {.owner = 3, .trusted = trusted}));
  EXPECT_EQ(e.demux(packets[3].data(), packets[3].size()), ports.back());
  expect_code_is_walk(e, packets, "recent changed");

  // Stateful filters in the recent layer (the UDP ports' owner: later fragments overlap them):
  // fragments need the mutex (and reassemble), the others
  // still take none.
  std::vector<Filter> dns = dns_with_fragments();
  FilterId dns_id = e.insert(std::span<const Filter>(dns), {.owner = 3, .trusted = trusted});
  ASSERT_TRUE(e.layered());
  size_t locked = e.stats().locked_demuxes;
  for (size_t i : {1, 3, 5, 6, 7, 8, 9}) e.demux(packets[i].data(), packets[i].size());
  EXPECT_EQ(e.stats().locked_demuxes, locked);
  Bytes first = fragment(9, 0, true);
  EXPECT_EQ(e.demux(packets.back().data(), packets.back().size()), 0u);  // held
  EXPECT_EQ(e.demux(first.data(), first.size()), dns_id);
  std::vector<Released> released = e.take_released();
  ASSERT_EQ(released.size(), 1u);
  EXPECT_EQ(released[0].id, dns_id);
  EXPECT_EQ(e.stats().locked_demuxes, locked + 2);
  packets.pop_back();  // (the later fragment's answer depends on the state it changes)
  expect_code_is_walk(e, packets, "stateful");
}

// Recent filters that share no first test (a TCP listener and a UDP port): no guard; ARP in the
// recent layer, whose guard is 12:16 == 0x806 alone.
TEST_P(DpfLayers, RecentLayersWithoutACommonTestOrAnotherOne) {
  const bool trusted = GetParam();
  for (int variant = 0; variant < 2; ++variant) {
    EngineOptions o;
    o.layer_threshold = 16;
    Engine e(o);
    for (uint32_t i = 0; i < 40; ++i)
      e.insert(tcp_connection(0x0b000001 + i), {.owner = 2, .trusted = trusted});
    if (variant == 0) {
      Filter listener;
      listener.eq(field(12, 16), 0x800).eq(field(23, 8), 6).shift(34).eq(field(2, 16), 8080);
      e.insert(listener, {.owner = 3, .trusted = trusted});
      e.insert(udp_port(9), {.owner = 3, .trusted = trusted});
    } else {
      Filter arp;
      arp.eq(field(12, 16), 0x806).eq(field(28, 32), 1);
      e.insert(arp, {.owner = 3, .trusted = trusted});
    }
    if (!kLiveTableWrites) GTEST_SKIP() << "not layered on this architecture";
    ASSERT_TRUE(e.layered());
    testing::Ipv4 listen;
    listen.dport = 8080;
    std::vector<Bytes> packets{
        testing::ipv4(listen), udp_to(9),          udp_to(10),         tcp_from(0x0b000002),
        tcp_from(0x0d000001),  testing::arp(1, 2), testing::arp(2, 1), testing::ipv6({})};
    expect_code_is_walk(e, packets, "variant " + std::to_string(variant));
    EXPECT_EQ(e.stats().locked_demuxes, 0u);
  }
}

INSTANTIATE_TEST_SUITE_P(Code, DpfLayers, ::testing::Values(true, false),
                         [](const ::testing::TestParamInfo<bool>& i) {
                           return std::string(i.param ? "Trusted" : "Hardened");
                         });

}  // namespace
}  // namespace exojit::dpf
