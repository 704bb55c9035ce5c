// SPDX-License-Identifier: MIT
// Packet rings, the NIC model in both DMA styles, the built-in demux, message handlers and the
// link on the virtual clock. Every drop is counted exactly.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "exojit/error.h"
#include "exojit/runtime/builtin_demux.h"
#include "exojit/runtime/kernel.h"

namespace exojit::runtime {
namespace {

constexpr uint64_t kRingVa = 0x200000;
constexpr uint64_t kAreaVa = 0x201000;

// A UDP/IPv4 frame to `port` whose first payload byte is `tag`.
std::vector<uint8_t> udp_frame(uint16_t port, uint8_t tag, size_t payload = 18) {
  std::vector<uint8_t> f(14 + 20 + 8 + payload, 0);
  f[12] = 0x08;
  f[14] = 0x45;
  f[14 + 2] = uint8_t((20 + 8 + payload) >> 8), f[14 + 3] = uint8_t(20 + 8 + payload);
  f[14 + 9] = 17;
  f[14 + 20 + 2] = uint8_t(port >> 8), f[14 + 20 + 3] = uint8_t(port);
  f[14 + 20 + 8] = tag;
  return f;
}

struct Machine {
  Kernel kernel;
  BuiltinDemux demux;
  Nic& nic;
  Environment& env;
  uint32_t ring;
  uint32_t filter;
  explicit Machine(NicConfig nc = {}, uint32_t slots = 8, uint32_t buffer = 512)
      : kernel({.frames = 512}),
        nic(kernel.add_nic(nc, Capability::make({0x4e}, kPermWrite))),
        env(kernel.create_environment("app", Capability::make({1}, kPermAll))) {
    kernel.set_demux(&demux);
    kernel.alloc_pages(env, 0, kRingVa, 1 + (slots * buffer + 4095) / 4096, kPteRead | kPteWrite);
    ring = kernel.create_ring(env, 0, kRingVa, slots, kAreaVa, uint64_t(slots) * buffer);
    kernel.init_ring_buffers(env, ring, buffer);
    filter = demux.add({0x0800, 0, 17, 7});
    kernel.claim_filter(env, 0, filter);
    kernel.bind_filter(env, 0, filter, ring);
  }
  RingHeader* header() {
    return reinterpret_cast<RingHeader*>(env.mmu().translate(kRingVa, kRead | kWrite));
  }
  // The environment drains one message (returning its tag) and refills the slot with the same
  // buffer.
  int drain_one() {
    RingHeader* h = header();
    RingSlot* s = ring_peek(h);
    if (!s) return -1;
    uint8_t tag = env.mmu().translate(s->buffer + 14 + 20 + 8, kRead)[0];
    ring_release(h, s->buffer, s->capacity);
    return tag;
  }
};

TEST(Ring, WrapsAroundAndDropsExactlyWhenFull) {
  Machine m;
  uint32_t woken = uint32_t(m.env.wakeups());
  // 8 slots: 11 frames -> 8 placed, 3 dropped (counted on the ring, in its header, on the NIC).
  for (uint8_t i = 0; i < 11; ++i) m.nic.receive_from_wire(udp_frame(7, i).data(), 60);
  const PacketRing& r = m.kernel.ring(m.ring);
  EXPECT_EQ(r.counters.delivered, 8u);
  EXPECT_EQ(r.counters.drops_full, 3u);
  EXPECT_EQ(m.header()->dropped, 3u);
  EXPECT_EQ(m.nic.counters().rx_drops_owner_ring, 3u);
  EXPECT_EQ(m.env.wakeups() - woken, 8u);
  // Drain 5, receive 5 more: the ring wraps.
  for (int i = 0; i < 5; ++i) EXPECT_EQ(m.drain_one(), i);
  for (uint8_t i = 100; i < 105; ++i) m.nic.receive_from_wire(udp_frame(7, i).data(), 60);
  std::vector<int> got;
  for (int t; (t = m.drain_one()) >= 0;) got.push_back(t);
  EXPECT_EQ(got, (std::vector<int>{5, 6, 7, 100, 101, 102, 103, 104}));
  EXPECT_EQ(r.counters.drops_full, 3u);
  // Many more rounds: the free-running counters keep wrapping the slot index correctly.
  for (int round = 0; round < 1000; ++round) {
    m.nic.receive_from_wire(udp_frame(7, uint8_t(round)).data(), 60);
    ASSERT_EQ(m.drain_one(), uint8_t(round));
  }
  EXPECT_EQ(m.header()->produced, 1013u);
  EXPECT_EQ(r.counters.delivered, 1013u);
}

TEST(Ring, BadDescriptorsAndOversizeMessagesAreCounted) {
  Machine m;
  RingHeader* h = m.header();
  // The environment posts a buffer outside the ring's area: the kernel refuses to write there.
  ring_slots(h)[0].buffer = 0x900000;
  m.nic.receive_from_wire(udp_frame(7, 1).data(), 60);
  EXPECT_EQ(m.kernel.ring(m.ring).counters.drops_bad_buffer, 1u);
  ring_slots(h)[0] = RingSlot{kAreaVa + 8 * 512 - 10, 100, 0};  // runs past the area's end
  m.nic.receive_from_wire(udp_frame(7, 1).data(), 60);
  EXPECT_EQ(m.kernel.ring(m.ring).counters.drops_bad_buffer, 2u);
  ring_slots(h)[0] = RingSlot{kAreaVa, 40, 0};  // too small for the message
  m.nic.receive_from_wire(udp_frame(7, 1).data(), 60);
  EXPECT_EQ(m.kernel.ring(m.ring).counters.drops_too_big, 1u);
  h->slots = 3;  // corrupted by the environment: not a power of two
  m.nic.receive_from_wire(udp_frame(7, 1).data(), 60);
  EXPECT_EQ(m.kernel.ring(m.ring).counters.drops_full, 1u);
  EXPECT_EQ(h->produced, 0u);
  EXPECT_EQ(h->dropped, 4u);
}

TEST(Nic, ReceiveRingFullRuntOversizeAndNoOwner) {
  NicConfig nc;
  nc.rx_slots = 4;
  nc.interrupts = false;  // frames wait in the NIC's ring until serviced
  Machine m(nc);
  for (uint8_t i = 0; i < 6; ++i) m.nic.receive_from_wire(udp_frame(7, i).data(), 60);
  EXPECT_EQ(m.nic.rx_pending(), 4u);
  EXPECT_EQ(m.nic.counters().rx_drops_ring_full, 2u);
  EXPECT_EQ(m.nic.service_rx(3), 3u);
  EXPECT_EQ(m.nic.service_rx(), 1u);
  EXPECT_EQ(m.kernel.ring(m.ring).counters.delivered, 4u);
  uint8_t runt[10] = {};
  m.nic.receive_from_wire(runt, sizeof runt);
  std::vector<uint8_t> big(4000, 0);
  m.nic.receive_from_wire(big.data(), big.size());
  m.nic.receive_from_wire(udp_frame(8, 0).data(), 60);  // no rule for port 8
  m.nic.service_rx();
  EXPECT_EQ(m.nic.counters().rx_drops_runt, 1u);
  EXPECT_EQ(m.nic.counters().rx_drops_oversize, 1u);
  EXPECT_EQ(m.nic.counters().rx_drops_no_owner, 1u);
  EXPECT_EQ(m.nic.counters().rx_frames, 5u);
}

TEST(Nic, KernelBuffersCopyOnceDirectDmaDoesNot) {
  NicConfig eth;
  Machine a(eth);
  NicConfig an2;
  an2.dma = DmaMode::Direct;
  Machine b(an2);
  auto f = udp_frame(7, 42, 100);
  a.nic.receive_from_wire(f.data(), f.size());
  b.nic.receive_from_wire(f.data(), f.size());
  EXPECT_EQ(a.drain_one(), 42);
  EXPECT_EQ(b.drain_one(), 42);
  EXPECT_EQ(a.nic.counters().rx_copied_bytes, f.size());
  EXPECT_EQ(b.nic.counters().rx_copied_bytes, 0u);
}

TEST(BuiltinDemux, MostSpecificRuleWinsAndFieldsAreBoundsChecked) {
  BuiltinDemux d;
  uint32_t ip = d.add({0x0800, 0, 0, 0});
  uint32_t udp7 = d.add({0x0800, 0, 17, 7});
  uint32_t host = d.add({0x0800, 0x0a000002, 0, 0});
  uint32_t arp = d.add({0x0806, 0, 0, 0});
  auto f = udp_frame(7, 0);
  EXPECT_EQ(d.classify(f.data(), f.size()), udp7);
  f[14 + 20 + 3] = 9;
  EXPECT_EQ(d.classify(f.data(), f.size()), ip);
  f[14 + 16] = 10, f[14 + 19] = 2;
  EXPECT_EQ(d.classify(f.data(), f.size()), host);
  f[12] = 0x08, f[13] = 0x06;
  EXPECT_EQ(d.classify(f.data(), f.size()), arp);
  // A later fragment carries no port: the port rule cannot match it.
  f = udp_frame(7, 0);
  f[14 + 7] = 10;  // offset 80
  EXPECT_EQ(d.classify(f.data(), f.size()), ip);
  // Every truncation: no read beyond the length (ASan checks), a port only when present.
  f = udp_frame(7, 0);
  for (size_t n = 0; n <= f.size(); ++n) {
    std::vector<uint8_t> g(f.begin(), f.begin() + n);  // exact-size heap copy
    uint32_t id = d.classify(g.data(), g.size());
    EXPECT_EQ(id, n < 14 ? 0u : n < 38 ? ip : udp7) << n;  // ip: EtherType alone
  }
  EXPECT_THROW(d.add({0, 0, 0, 0}), Error);
  EXPECT_THROW(d.add({0x0806, 1, 0, 0}), Error);
  EXPECT_THROW(d.add({0x0800, 0, 1, 7}), Error);
  d.remove(udp7);
  EXPECT_THROW(d.remove(udp7), Error);
}

// A handler that consumes port-7 messages whose tag is even, writes the tag into the
// environment's memory (through its MMU) and replies; declines odd tags.
struct EvenHandler : MessageHandler {
  uint64_t counter_va;
  int runs = 0;
  HandlerVerdict handle(HandlerContext& c, const Message& m) override {
    ++runs;
    uint8_t tag = m.data[14 + 20 + 8];
    if (tag % 2) return HandlerVerdict::Declined;
    uint32_t count = 0;
    if (!c.copy_in(&count, counter_va, 4)) return HandlerVerdict::Declined;
    ++count;
    if (!c.copy_out(counter_va, &count, 4)) return HandlerVerdict::Declined;
    std::vector<uint8_t> reply(m.data, m.data + m.length);
    reply[14 + 20 + 8] = uint8_t(tag + 1);
    c.reply(reply.data(), reply.size());
    return HandlerVerdict::Consumed;
  }
};

TEST(Handler, ConsumesRepliesOrDeclinesToTheRing) {
  Machine m;
  Environment& netenv = m.env;
  m.kernel.grant(netenv, 0, netenv, Capability::make({1, 1}, kPermWrite));
  // The environment also needs the NIC's transmit capability for its handler to reply.
  Environment& boot = m.kernel.create_environment("boot", Capability::root());
  m.kernel.grant(boot, 0, netenv, Capability::make({0x4e}, kPermWrite));
  std::vector<std::vector<uint8_t>> sent;
  m.nic.add_tx_tap([&](const uint8_t* f, size_t n, uint64_t) { sent.emplace_back(f, f + n); });
  EvenHandler h;
  h.counter_va = kAreaVa + 8 * 512 - 8;  // a word of the environment's memory
  m.kernel.install_handler(netenv, 0, m.filter, &h, &m.nic);
  for (uint8_t t = 0; t < 6; ++t) m.nic.receive_from_wire(udp_frame(7, t).data(), 60);
  EXPECT_EQ(h.runs, 6);
  const FilterSlot* s = m.kernel.filter(m.filter);
  EXPECT_EQ(s->counters.handled, 3u);
  EXPECT_EQ(s->counters.declined, 3u);
  EXPECT_EQ(m.nic.counters().rx_handled, 3u);
  uint32_t count = 0;
  netenv.mmu().copy_in(&count, h.counter_va, 4);
  EXPECT_EQ(count, 3u);
  ASSERT_EQ(sent.size(), 3u);
  EXPECT_EQ(sent[2][14 + 20 + 8], 5);
  std::vector<int> ring;
  for (int t; (t = m.drain_one()) >= 0;) ring.push_back(t);
  EXPECT_EQ(ring, (std::vector<int>{1, 3, 5}));  // declined messages, as if no handler existed
  // A handler touching memory that is not mapped aborts: the message goes to the ring.
  h.counter_va = 0x7000000;
  m.nic.receive_from_wire(udp_frame(7, 8).data(), 60);
  EXPECT_EQ(m.drain_one(), 8);
  m.kernel.remove_handler(netenv, 0, m.filter);
  m.nic.receive_from_wire(udp_frame(7, 10).data(), 60);
  EXPECT_EQ(h.runs, 7);
  EXPECT_EQ(m.drain_one(), 10);
}

TEST(Link, LatencyBandwidthAndLossOnTheVirtualClock) {
  VirtualClock clock;
  Kernel ka({.frames = 512, .clock = &clock}), kb({.frames = 512, .clock = &clock});
  Capability g = Capability::make({0x4e}, kPermWrite);
  NicConfig nc;
  nc.tx_slots = 4;
  Nic& a = ka.add_nic(nc, g);
  Nic& b = kb.add_nic(nc, g);
  Link& link =
      ka.connect(a, b, {.latency_ns = 1000, .bits_per_second = 8000000000ull});  // 1 ns/byte
  std::vector<uint64_t> arrivals;
  b.add_rx_tap([&](const uint8_t*, size_t, uint64_t t) { arrivals.push_back(t); });
  auto f = udp_frame(7, 0, 100 - 42);  // 100 bytes: 100 ns on the wire
  for (int i = 0; i < 6; ++i) a.transmit(f.data(), f.size());
  EXPECT_EQ(a.counters().tx_frames, 4u);
  EXPECT_EQ(a.counters().tx_drops_ring_full, 2u);  // 4 in flight at most
  EXPECT_EQ(a.tx_in_flight(), 4u);
  while (clock.run_next()) {
  }
  EXPECT_EQ(arrivals, (std::vector<uint64_t>{1100, 1200, 1300, 1400}));
  EXPECT_EQ(a.tx_in_flight(), 0u);
  EXPECT_EQ(b.counters().rx_drops_no_owner, 4u);  // b's kernel has no demux
  EXPECT_EQ(link.counters(a).delivered, 4u);

  // Loss: seeded, so the count is exactly reproducible; every frame is accounted for.
  VirtualClock c2;
  Kernel kc({.frames = 512, .clock = &c2}), kd({.frames = 512, .clock = &c2});
  Nic& c = kc.add_nic({}, g);
  Nic& d = kd.add_nic({}, g);
  Link& lossy = kc.connect(c, d, {.loss = 0.25, .seed = 42});
  for (int i = 0; i < 1000; ++i) {
    c.transmit(f.data(), f.size());
    c2.run_next();
  }
  const LinkCounters& lc = lossy.counters(c);
  EXPECT_EQ(lc.sent, 1000u);
  EXPECT_EQ(lc.lost + lc.delivered, 1000u);
  EXPECT_EQ(d.counters().rx_frames, lc.delivered);
  EXPECT_GT(lc.lost, 200u);
  EXPECT_LT(lc.lost, 300u);
  EXPECT_THROW(kc.connect(c, d, {}), Error);  // already linked
}

}  // namespace
}  // namespace exojit::runtime
