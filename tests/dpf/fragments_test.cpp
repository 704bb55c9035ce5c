// SPDX-License-Identifier: MIT
// Stateful atoms for IP fragments ([EXOTOOLS02], 2.1.6): a UDP datagram fragmented in any order
// reaches its filter; the state is bounded in space and time.
#include <exojit/dpf/engine.h>
#include <exojit/error.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "live_tables.h"
#include "packets.h"

namespace exojit::dpf {
namespace {

using testing::Bytes;

// Fragment `offset` (in 8-byte units) of datagram `ip_id` from `src`; the first one carries the
// UDP header (destination port 53).
Bytes fragment(uint16_t ip_id, uint32_t src, uint16_t offset, bool more) {
  testing::Ipv4 s;
  s.proto = 17, s.id = ip_id, s.src = src, s.sport = 3333, s.dport = 53, s.payload = 16;
  s.frag = uint16_t((more ? 0x2000 : 0) | offset);
  return testing::ipv4(s);
}

// One id, two disjuncts: the first fragment (or a whole datagram) to port 53 records the
// datagram's IP ID and source address; later fragments match when their pair was recorded.
std::vector<Filter> dns_with_fragments() {
  Expr chain = (field(18, 16) << 32) | field(26, 32);
  Filter first = parse_filter(
      "(12:16 == 0x800) && (23:8 == 17) && ((20:16 & 0x1fff) == 0) && "
      "RECORD((18:16 << 32) | 26:32) && SHIFT(14) && SHIFT((0:8 & 0xf) << 2) && (2:16 == 53)");
  Filter later;
  later.eq(field(12, 16), 0x800).eq(field(23, 8), 17).gt(field(20, 16) & 0x1fff, 0);
  later.recorded(chain);
  return {first, later};
}

// TCP from `src` to port 80 (a connection of a web server beside the DNS one).
Filter web_connection(uint32_t src) {
  Filter conn;
  conn.eq(field(12, 16), 0x800).eq(field(23, 8), 6).eq(field(26, 32), src).shift(34);
  return conn.eq(field(2, 16), 80);
}

struct Clock {
  uint64_t now = 1000;
};

TEST(DpfFragments, AnyOrderReachesTheFilter) {
  Engine e;
  Clock clock;
  e.set_clock([&] { return clock.now; });
  std::vector<Filter> dns = dns_with_fragments();
  FilterId id = e.insert(std::span<const Filter>(dns));
  Filter other;
  other.eq(field(12, 16), 0x806);
  FilterId arp = e.insert(other, {.owner = 7, .broad = true});
  // In order: first, middle, last.
  for (Bytes p : {fragment(7, 0x0a000001, 0, true), fragment(7, 0x0a000001, 3, true),
                  fragment(7, 0x0a000001, 6, false)}) {
    EXPECT_EQ(e.demux(p.data(), p.size()), id);
    EXPECT_EQ(e.demux_reference(p.data(), p.size()), id);
  }
  // Another datagram's later fragments (same IP ID, other source): not this chain.
  Bytes stray = fragment(7, 0x0a000002, 3, true);
  EXPECT_EQ(e.demux(stray.data(), stray.size()), 0u);
  // Reverse order: the last and middle fragments are held, then released with the first.
  Bytes last = fragment(9, 0x0a000001, 6, false), mid = fragment(9, 0x0a000001, 3, true);
  EXPECT_EQ(e.demux(last.data(), last.size()), 0u);
  EXPECT_EQ(e.demux(mid.data(), mid.size()), 0u);
  EXPECT_TRUE(e.take_released().empty());
  Bytes first = fragment(9, 0x0a000001, 0, true);
  EXPECT_EQ(e.demux(first.data(), first.size()), id);
  std::vector<Released> r = e.take_released();
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].id, id);
  EXPECT_EQ(r[0].packet, last);
  EXPECT_EQ(r[1].packet, mid);
  EXPECT_TRUE(e.take_released().empty());
  // Later fragments of datagram 9 now match directly.
  EXPECT_EQ(e.demux(mid.data(), mid.size()), id);
  Bytes a = testing::arp(1, 2);
  EXPECT_EQ(e.demux(a.data(), a.size()), arp);
  // The stray fragment of 0x0a000002 was held; it expires with the lifetime, and so does the
  // remembered chain 7.
  clock.now += EngineOptions{}.record_lifetime_ns;
  Bytes first2 = fragment(7, 0x0a000002, 0, true);
  EXPECT_EQ(e.demux(first2.data(), first2.size()), id);
  EXPECT_TRUE(e.take_released().empty());  // the held stray had expired
  Bytes mid7 = fragment(7, 0x0a000001, 3, true);
  EXPECT_EQ(e.demux(mid7.data(), mid7.size()), 0u);  // chain 7 from 0x0a000001 expired
}

TEST(DpfFragments, StateIsBoundedInSpace) {
  EngineOptions o;
  o.record_capacity = 4;
  o.owner_limits.held_packets = 3;
  Engine e(o);
  std::vector<Filter> dns = dns_with_fragments();
  FilterId id = e.insert(std::span<const Filter>(dns));
  for (uint16_t ip_id = 1; ip_id <= 10; ++ip_id) {
    Bytes p = fragment(ip_id, 0x0a000001, 0, true);
    EXPECT_EQ(e.demux(p.data(), p.size()), id);
  }
  // Only the last 4 chains are remembered.
  for (uint16_t ip_id = 1; ip_id <= 10; ++ip_id) {
    Bytes p = fragment(ip_id, 0x0a000001, 5, false);
    EXPECT_EQ(e.demux(p.data(), p.size()), ip_id > 6 ? id : 0u) << ip_id;
  }
  // Held packets: at most 3 (the oldest go).
  for (uint16_t ip_id = 20; ip_id < 30; ++ip_id) {
    Bytes p = fragment(ip_id, 0x0a000001, 5, false);
    EXPECT_EQ(e.demux(p.data(), p.size()), 0u);
  }
  e.take_released();
  for (uint16_t ip_id = 20; ip_id < 30; ++ip_id) {
    Bytes p = fragment(ip_id, 0x0a000001, 0, true);
    e.demux(p.data(), p.size());
  }
  EXPECT_EQ(e.take_released().size(), 3u);
  // Removing the filter drops its state; the engine is stateless again.
  e.remove(id, 0);
  Bytes p = fragment(29, 0x0a000001, 5, false);
  EXPECT_EQ(e.demux(p.data(), p.size()), 0u);
}

TEST(DpfFragments, GeneratedCodeCallsTheLookupAndAgreesWithTheWalk) {
  Engine e;
  std::vector<Filter> dns = dns_with_fragments();
  e.insert(std::span<const Filter>(dns));
  // More filters around it, so that registers live across the call.
  for (uint32_t i = 0; i < 6; ++i) {
    Filter f;
    f.eq(field(12, 16), 0x800).eq(field(23, 8), 6).eq(field(26, 32), 0x0b000000 + i).shift(34);
    f.eq(field(2, 16), 80);
    e.insert(f);
  }
  std::mt19937_64 rng(12);
  for (int i = 0; i < 3000; ++i) {
    Bytes p;
    if (rng() % 3) {
      p = testing::random_packet(rng);
    } else {  // one draw per statement: argument order is unspecified
      const auto id = uint16_t(rng() % 3);
      const uint32_t host = testing::kHosts[rng() % 5];
      p = fragment(id, host, uint16_t(rng() % 2 ? 0 : 3), true);
    }
    auto exact = testing::exact_copy(p);
    FilterId walked = e.demux_reference(exact.get(), p.size());
    ASSERT_EQ(e.demux(exact.get(), p.size()), walked);
  }
  // Both paths ran: the fragments under the mutex, the packets that reach no lookup without it.
  size_t locked = e.stats().locked_demuxes;
  EXPECT_GT(locked, 100u);
  EXPECT_LT(locked, 2000u);
}

// A stateful engine's packets that reach no RECORDED lookup and that no recording filter wins
// are answered without the engine's mutex (issue 16: an unmatched packet costs about what it
// costs in a stateless engine); the others take it, and the fragment state works as before.
TEST(DpfFragments, PacketsThatNeedNoStateTakeNoLock) {
  Engine e;
  std::vector<Filter> dns = dns_with_fragments();
  FilterId id = e.insert(std::span<const Filter>(dns), {.owner = 1});
  FilterId web = e.insert(web_connection(0x0b000001), {.owner = 2});
  testing::Ipv4 tcp;
  tcp.src = 0x0b000001, tcp.dport = 80;
  Bytes hit = testing::ipv4(tcp);
  tcp.src = 0x0b000002;
  Bytes miss = testing::ipv4(tcp);
  testing::Ipv4 udp;
  udp.proto = 17, udp.dport = 99;
  Bytes other_port = testing::ipv4(udp);  // the first disjunct's path up to the port: no lookup
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(e.demux(hit.data(), hit.size()), web);
    EXPECT_EQ(e.demux(miss.data(), miss.size()), 0u);
    EXPECT_EQ(e.demux(other_port.data(), other_port.size()), 0u);
  }
  EXPECT_EQ(e.stats().locked_demuxes, 0u);
  // A later fragment reaches the lookup (held: locked); the first fragment's winner records.
  Bytes later = fragment(5, 0x0a000001, 3, false), first = fragment(5, 0x0a000001, 0, true);
  EXPECT_EQ(e.demux(later.data(), later.size()), 0u);
  EXPECT_EQ(e.stats().locked_demuxes, 1u);
  EXPECT_EQ(e.demux(first.data(), first.size()), id);
  EXPECT_EQ(e.stats().locked_demuxes, 2u);
  ASSERT_EQ(e.take_released().size(), 1u);
  EXPECT_EQ(e.demux(later.data(), later.size()), id);
  EXPECT_EQ(e.stats().locked_demuxes, 3u);
  // While a thread holds the engine's mutex (its fragment's lookup reads a clock that waits),
  // another thread's packets that need no state are answered.
  std::atomic<int> stage{0};
  e.set_clock([&] {
    if (stage.load() == 1) {
      stage.store(2);
      for (int i = 0; i < 10000 && stage.load() != 3; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return uint64_t(1000);
  });
  stage.store(1);
  Bytes held = fragment(6, 0x0a000001, 3, false);
  std::thread locked([&] { e.demux(held.data(), held.size()); });
  while (stage.load() != 2) std::this_thread::yield();
  std::atomic<bool> answered{false};
  std::thread other([&] {
    bool right = e.demux(hit.data(), hit.size()) == web && e.demux(miss.data(), miss.size()) == 0;
    answered.store(right);
  });
  for (int i = 0; i < 5000 && !answered.load(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_TRUE(answered.load());  // before the locked demux ends
  stage.store(3);
  locked.join(), other.join();
}

// The generated code says itself which packets need the fragment state: the published function
// answers Engine::kOutOfLine for them (demux then takes the mutex) and the winner for the others,
// so demux serves a stateful engine inline like a stateless one.
TEST(DpfFragments, TheCodeSaysWhichPacketsNeedTheState) {
  Engine e;
  std::vector<Filter> dns = dns_with_fragments();
  FilterId id = e.insert(std::span<const Filter>(dns), {.owner = 1});
  FilterId web = e.insert(web_connection(0x0b000001), {.owner = 2});
  ASSERT_FALSE(e.layered());
  testing::Ipv4 tcp;
  tcp.src = 0x0b000001, tcp.dport = 80;
  Bytes hit = testing::ipv4(tcp);
  Bytes first = fragment(5, 0x0a000001, 0, true), later = fragment(5, 0x0a000001, 3, false);
  Engine::DemuxFn* fn = e.function();
  uint64_t k = fn(hit.data(), hit.size());
  EXPECT_NE(k, Engine::kOutOfLine);
  EXPECT_EQ(uint32_t(k), web);                                    // the id in the low half
  EXPECT_EQ(fn(first.data(), first.size()), Engine::kOutOfLine);  // its winner records
  EXPECT_EQ(fn(later.data(), later.size()), Engine::kOutOfLine);  // a RECORDED lookup
  EXPECT_EQ(e.stats().locked_demuxes, 0u);
  EXPECT_EQ(e.demux(later.data(), later.size()), 0u);  // held
  EXPECT_EQ(e.demux(first.data(), first.size()), id);
  ASSERT_EQ(e.take_released().size(), 1u);
  EXPECT_EQ(e.stats().locked_demuxes, 2u);
}

// A recording filter that does not win a packet records nothing: a more specific filter of its
// owner accepts the first fragments from one host (the code reaches the recording filter's
// accept first: that packet goes to the mutex, which finds the real winner).
TEST(DpfFragments, ARecordingFilterThatLosesRecordsNothing) {
  Engine e;
  std::vector<Filter> dns = dns_with_fragments();
  FilterId id = e.insert(std::span<const Filter>(dns), {.owner = 1});
  Filter host = parse_filter(
      "(12:16 == 0x800) && (23:8 == 17) && ((20:16 & 0x1fff) == 0) && (26:32 == 0x0a000009) && "
      "SHIFT(14) && SHIFT((0:8 & 0xf) << 2) && (2:16 == 53) && (0:16 == 3333)");
  FilterId special = e.insert(host, {.owner = 1});
  Bytes first = fragment(8, 0x0a000009, 0, true), later = fragment(8, 0x0a000009, 3, false);
  EXPECT_EQ(e.demux(first.data(), first.size()), special);
  EXPECT_EQ(e.demux_reference(first.data(), first.size()), special);
  EXPECT_EQ(e.demux(later.data(), later.size()), 0u);  // its chain was not recorded: held
  EXPECT_TRUE(e.take_released().empty());
  // Another host's datagram: the recording filter wins and records.
  Bytes other = fragment(8, 0x0a000001, 0, true), other_later = fragment(8, 0x0a000001, 3, false);
  EXPECT_EQ(e.demux(other.data(), other.size()), id);
  EXPECT_EQ(e.demux(other_later.data(), other_later.size()), id);
}

// A layered engine (the fragment filters in the layer of recent changes) with stateful filters:
// its entry runs both layers' code inline; packets that need no state take no lock, fragments
// still reassemble.
TEST(DpfFragments, LayeredStatefulEngineTakesNoLockForOtherPackets) {
  EngineOptions o;
  o.layer_threshold = 16;
  Engine e(o);
  std::vector<FilterId> conns;
  for (uint32_t i = 0; i < 8; ++i) {
    conns.push_back(e.insert(web_connection(0x0b000001 + i), {.owner = 2}));
  }
  std::vector<Filter> dns = dns_with_fragments();
  FilterId id = e.insert(std::span<const Filter>(dns), {.owner = 1});
  // (Where every table change is new code (AArch64), the connections' regenerations merge the
  // layers: this engine is not layered there.)
  if (!kLiveTableWrites) {
    ASSERT_FALSE(e.layered());
    GTEST_SKIP() << "no live table writes on this architecture: the engine is not layered";
  }
  ASSERT_TRUE(e.layered());
  testing::Ipv4 tcp;
  tcp.dport = 80;
  for (uint32_t i = 0; i < 10; ++i) {
    tcp.src = 0x0b000001 + i;
    Bytes p = testing::ipv4(tcp);
    EXPECT_EQ(e.demux(p.data(), p.size()), i < 8 ? conns[i] : 0u) << i;
    EXPECT_EQ(e.demux_reference(p.data(), p.size()), i < 8 ? conns[i] : 0u) << i;
  }
  EXPECT_EQ(e.stats().locked_demuxes, 0u);
  Bytes first = fragment(9, 0x0a000001, 0, true), later = fragment(9, 0x0a000001, 3, false);
  EXPECT_EQ(e.demux(later.data(), later.size()), 0u);
  EXPECT_EQ(e.demux(first.data(), first.size()), id);
  ASSERT_EQ(e.take_released().size(), 1u);
  EXPECT_EQ(e.stats().locked_demuxes, 2u);
  // A removal masks a connection (its id still in the code): that packet takes the walk.
  e.remove(conns[3], 2);
  tcp.src = 0x0b000004;
  Bytes masked = testing::ipv4(tcp);
  EXPECT_EQ(e.demux(masked.data(), masked.size()), 0u);
  EXPECT_EQ(e.demux_reference(masked.data(), masked.size()), 0u);
}

}  // namespace
}  // namespace exojit::dpf
