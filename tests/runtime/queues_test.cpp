// SPDX-License-Identifier: MIT
// Multi-queue NICs: RSS steering and per-queue counters (scheduler model), then the race test
// of issue 18 (thread mode): frames of many flows through 4 receive queues into plain
// environments and C++ message handlers, with the environments draining their rings on their
// own threads; every frame is counted exactly once (delivered to a ring, consumed by a handler,
// or dropped with a reason). Bounded (well under a second; a few seconds under
// ThreadSanitizer, where `./exo tsan` runs it: ctest label `concurrency`).
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <thread>
#include <vector>

#include "exojit/error.h"
#include "exojit/runtime/builtin_demux.h"
#include "exojit/runtime/kernel.h"

namespace exojit::runtime {
namespace {

constexpr uint16_t kUnclaimedPort = 999;
const Capability kNicGuard = Capability::make({0x4e}, kPermWrite);

// A UDP/IPv4 frame of flow (src, sport) to port `dport`, payload byte 0 = `tag`.
std::vector<uint8_t> flow_frame(uint32_t src, uint16_t sport, uint16_t dport, uint8_t tag) {
  std::vector<uint8_t> f(14 + 20 + 8 + 18, 0);
  f[12] = 0x08;
  f[14] = 0x45;
  f[14 + 3] = 20 + 8 + 18;
  f[14 + 9] = 17;
  for (int i = 0; i < 4; ++i) f[14 + 12 + i] = uint8_t(src >> (24 - 8 * i));
  f[14 + 16] = 10, f[14 + 19] = 1;  // 10.0.0.1
  f[14 + 20] = uint8_t(sport >> 8), f[14 + 21] = uint8_t(sport);
  f[14 + 22] = uint8_t(dport >> 8), f[14 + 23] = uint8_t(dport);
  f[14 + 28] = tag;
  return f;
}

TEST(Queues, RssSteersEachFlowToOneQueueAndCountsPerQueue) {
  Kernel k({.frames = 1024});
  BuiltinDemux demux;
  k.set_demux(&demux);
  Nic& nic = k.add_nic({.rx_slots = 64, .interrupts = false, .queues = 4}, kNicGuard);
  ASSERT_EQ(nic.queues(), 4u);
  std::vector<uint32_t> expected(4, 0);
  std::map<std::pair<uint32_t, uint16_t>, uint32_t> flow_queue;
  for (uint32_t flow = 0; flow < 100; ++flow) {
    uint32_t src = 0xc0a80000 + flow * 7;
    uint16_t sport = uint16_t(20000 + flow);
    std::vector<uint8_t> f = flow_frame(src, sport, 7, 0);
    uint32_t q = nic.rss().queue(f.data(), f.size());
    ASSERT_LT(q, 4u);
    ++expected[q];
    nic.receive_from_wire(f.data(), f.size());
    EXPECT_EQ(nic.rx_pending(q), expected[q]) << "flow " << flow;
    // The hash's low 7 bits pick the indirection entry (round robin by default).
    EXPECT_EQ(q, *nic.rss().hash(f.data(), f.size()) % 128 % 4);
  }
  for (uint32_t q = 0; q < 4; ++q) {
    EXPECT_EQ(nic.queue_counters(q).rx_frames, expected[q]);
    EXPECT_GT(expected[q], 10u) << "100 flows spread over every queue";
  }
  // Servicing one queue delivers its frames only (no owner: counted on that queue).
  EXPECT_EQ(nic.service_rx_queue(2), expected[2]);
  EXPECT_EQ(nic.queue_counters(2).rx_drops_no_owner, expected[2]);
  EXPECT_EQ(nic.queue_counters(1).rx_drops_no_owner, 0u);
  EXPECT_EQ(nic.rx_pending(), 100 - expected[2]);
  nic.service_rx();
  EXPECT_EQ(nic.counters().rx_drops_no_owner, 100u);
  EXPECT_EQ(nic.rx_pending(), 0u);
  // Non-IP frames and runts go to the default queue (indirection entry 0).
  std::vector<uint8_t> arp(60, 0);
  arp[12] = 0x08, arp[13] = 0x06;
  nic.receive_from_wire(arp.data(), arp.size());
  uint8_t runt[6] = {};
  nic.receive_from_wire(runt, sizeof runt);
  EXPECT_EQ(nic.rx_pending(0), 1u);
  EXPECT_EQ(nic.queue_counters(0).rx_drops_runt, 1u);
  EXPECT_THROW(nic.wait_rx_idle(), Error);  // polling: nothing would ever drain the rings
  EXPECT_THROW(nic.queue_counters(4), Error);
  EXPECT_THROW(nic.service_rx_queue(4), Error);
}

TEST(Queues, AnIndirectionTableCanPinEveryFlowToOneQueue) {
  Kernel k({.frames = 1024});
  Nic& nic = k.add_nic({.rx_slots = 64,
                        .interrupts = false,
                        .queues = 2,
                        .rss = {.indirection = std::vector<uint16_t>(8, 1)}},
                       kNicGuard);
  for (uint32_t flow = 0; flow < 20; ++flow)
    nic.receive_from_wire(flow_frame(flow, uint16_t(flow), 7, 0).data(), 60);
  EXPECT_EQ(nic.rx_pending(1), 20u);
  EXPECT_EQ(nic.rx_pending(0), 0u);
}

TEST(Queues, BadConfigurationsAreRefused) {
  Kernel k({.frames = 64});
  EXPECT_THROW(k.add_nic({.queues = 0}, kNicGuard), Error);
  EXPECT_THROW(k.add_nic({.queues = 65}, kNicGuard), Error);
  EXPECT_THROW(k.add_nic({.queues = 2, .rss = {.indirection = {0, 2}}}, kNicGuard), Error);
  EXPECT_THROW(k.add_nic({.queue_threads = true}, kNicGuard), Error);  // scheduler mode
  // 8 queues of 256 buffers need 1024 frames: refused before any is taken.
  uint32_t free_before = k.memory().free_frames();
  EXPECT_THROW(k.add_nic({.queues = 8}, kNicGuard), Error);
  EXPECT_EQ(k.memory().free_frames(), free_before);
  Kernel t({.frames = 64, .mode = Mode::Threads});
  EXPECT_THROW(t.add_nic({.dma = DmaMode::Direct, .queue_threads = true}, kNicGuard), Error);
}

// Lanes number the receive queues of all of a kernel's NICs (a concurrent handler's run state is
// kept per lane): consecutive, in the order the NICs were added, at most kMaxLanes.
TEST(Queues, LanesNumberEveryQueueOfTheKernel) {
  Kernel k({.frames = 64});
  Nic& a = k.add_nic({.dma = DmaMode::Direct, .queues = 4}, kNicGuard);
  Nic& b = k.add_nic({.dma = DmaMode::Direct, .queues = 1}, kNicGuard);
  EXPECT_EQ(a.first_lane(), 0u);
  EXPECT_EQ(b.first_lane(), 4u);
  EXPECT_EQ(k.lanes(), 5u);
  while (k.lanes() + 64 <= kMaxLanes) k.add_nic({.dma = DmaMode::Direct, .queues = 64}, kNicGuard);
  uint32_t lanes = k.lanes();
  EXPECT_THROW(k.add_nic({.dma = DmaMode::Direct, .queues = 64}, kNicGuard), Error);
  EXPECT_EQ(k.lanes(), lanes);  // refused before anything was made
  Nic& last = k.add_nic({.dma = DmaMode::Direct, .queues = kMaxLanes - lanes}, kNicGuard);
  EXPECT_EQ(last.first_lane() + last.queues(), kMaxLanes);
  EXPECT_THROW(k.add_nic({.dma = DmaMode::Direct}, kNicGuard), Error);
}

// A C++ handler: consumes frames whose tag is odd (replying to one in 8), declines even ones.
// Its own counters are plain integers: the kernel runs it one call at a time (it is not
// concurrent), and ThreadSanitizer checks that it does. It records the threads it ran on.
class CountingHandler : public MessageHandler {
 public:
  HandlerVerdict handle(HandlerContext& ctx, const Message& m) override {
    ++runs;
    threads.insert(std::this_thread::get_id());
    uint8_t tag = m.data[14 + 28];
    if (!(tag & 1)) return HandlerVerdict::Declined;
    ++consumed;
    if (tag % 8 == 1) replies += ctx.reply(m.data, m.length);
    return HandlerVerdict::Consumed;
  }
  uint64_t runs = 0, consumed = 0, replies = 0;
  std::set<std::thread::id> threads;
};

constexpr uint64_t kRingVa = 0x200000, kAreaVa = 0x201000;
constexpr uint32_t kRingSlots = 32, kBuffer = 2048;
constexpr int kEnvs = 4;

// 4 environments, each with a port (1000 + i), a ring and a draining thread; environments 0 and
// 1 also have a CountingHandler; port 999 has no owner.
struct Machine {
  Kernel kernel;
  BuiltinDemux demux;
  Environment& root;
  Nic& nic;
  std::vector<Environment*> envs;
  std::vector<uint32_t> rings, filters;
  CountingHandler handlers[2];
  std::atomic<bool> stop_draining{false};
  std::vector<uint64_t> drained = std::vector<uint64_t>(kEnvs, 0);
  std::vector<std::thread> drainers;

  explicit Machine(bool queue_threads)
      : kernel({.frames = 2048, .mode = Mode::Threads}),
        root(kernel.create_environment("root", Capability::make({}, kPermAll))),
        nic(kernel.add_nic({.rx_slots = 64, .queues = 4, .queue_threads = queue_threads},
                           kNicGuard)) {
    kernel.set_demux(&demux);
    for (int i = 0; i < kEnvs; ++i) {
      Environment& e = kernel.create_environment("env" + std::to_string(i),
                                                 Capability::make({uint8_t(i + 1)}, kPermAll));
      kernel.grant(root, 0, e, kNicGuard);  // replies need the NIC's transmit capability
      kernel.alloc_pages(e, 0, kRingVa, 1 + kRingSlots * kBuffer / kPageSize, kPteRead | kPteWrite);
      uint32_t r = kernel.create_ring(e, 0, kRingVa, kRingSlots, kAreaVa, kRingSlots * kBuffer);
      kernel.init_ring_buffers(e, r, kBuffer);
      uint32_t f = demux.add({0x0800, 0, 17, uint16_t(1000 + i)});
      kernel.claim_filter(e, 0, f);
      kernel.bind_filter(e, 0, f, r);
      if (i < 2) kernel.install_handler(e, 0, f, &handlers[i], &nic);
      envs.push_back(&e);
      rings.push_back(r);
      filters.push_back(f);
    }
    for (int i = 0; i < kEnvs; ++i) drainers.emplace_back([this, i] { drain(i); });
  }
  ~Machine() { stop(); }

  // The environment's side: takes messages off its ring and gives the buffers back, checking
  // each is one of its own port's frames.
  void drain(int i) {
    Environment& e = *envs[size_t(i)];
    RingHeader* h = reinterpret_cast<RingHeader*>(e.mmu().translate(kRingVa, kRead | kWrite));
    for (;;) {
      bool stopping = stop_draining.load(std::memory_order_acquire);
      uint32_t seen = e.wake_seq();
      bool any = false;
      while (RingSlot* s = ring_peek(h)) {
        const uint8_t* msg = e.mmu().translate(s->buffer, kRead);
        EXPECT_EQ(msg[14 + 22] << 8 | msg[14 + 23], 1000 + i);
        ++drained[size_t(i)];
        ring_release(h, s->buffer, s->capacity);
        any = true;
      }
      if (stopping) return;
      if (!any) e.wait(seen);
    }
  }
  void stop() {
    if (drainers.empty()) return;
    stop_draining.store(true, std::memory_order_release);
    for (Environment* e : envs) e->wake();
    for (std::thread& t : drainers) t.join();
    drainers.clear();
  }
};

class QueuesRace : public ::testing::TestWithParam<bool> {};

TEST_P(QueuesRace, EveryFrameIsCountedExactlyOnce) {
  Machine m(GetParam());
  constexpr int kWire = 2, kPerWire = 6000, kFlows = 64;
  std::atomic<uint64_t> runts{0}, unclaimed{0};
  std::vector<uint64_t> sent_to_queue(4, 0);
  // The frames, made up front: flow f goes to port 999 (one in 9), else to 1000 + f % 4.
  std::vector<std::vector<std::vector<uint8_t>>> frames(kWire);
  for (int w = 0; w < kWire; ++w)
    for (int i = 0; i < kPerWire; ++i) {
      int flow = (i * 7 + w * 13) % kFlows;
      uint16_t port = flow % 9 == 0 ? kUnclaimedPort : uint16_t(1000 + flow % kEnvs);
      if (i % 500 == 499) {  // a runt now and then
        frames[size_t(w)].push_back(std::vector<uint8_t>(10, 0));
        ++runts;
        continue;
      }
      frames[size_t(w)].push_back(
          flow_frame(0x0a000100 + uint32_t(flow), uint16_t(4000 + flow), port, uint8_t(i)));
      unclaimed += port == kUnclaimedPort;
    }
  for (auto& wire : frames)
    for (auto& f : wire)
      if (f.size() >= 14) ++sent_to_queue[m.nic.rss().queue(f.data(), f.size())];
  std::vector<std::thread> wires;
  for (int w = 0; w < kWire; ++w)
    wires.emplace_back([&m, &frames, w] {
      size_t i = 0;
      for (auto& f : frames[size_t(w)]) {
        m.nic.receive_from_wire(f.data(), f.size());
        // Let the queues and the drainers keep up, mostly (drops are counted either way).
        if (++i % 16 == 0) std::this_thread::yield();
        while (m.nic.rx_pending() > 128) std::this_thread::yield();
      }
    });
  for (std::thread& t : wires) t.join();
  m.nic.wait_rx_idle();
  m.stop();

  NicCounters n = m.nic.counters();
  uint64_t sent = uint64_t(kWire) * kPerWire;
  // The NIC: every frame accepted into a queue, or dropped at the door with a reason.
  EXPECT_EQ(n.rx_frames + n.rx_drops_ring_full + n.rx_drops_runt + n.rx_drops_oversize, sent);
  EXPECT_EQ(n.rx_drops_runt, runts.load());
  for (uint32_t q = 0; q < 4; ++q) {
    NicCounters c = m.nic.queue_counters(q);
    EXPECT_EQ(c.rx_frames + c.rx_drops_ring_full, sent_to_queue[q]) << "queue " << q;
    EXPECT_EQ(c.rx_frames, c.rx_delivered + c.rx_drops_no_owner + c.rx_drops_owner_ring);
    EXPECT_GT(c.rx_frames, 0u) << "queue " << q;
  }
  // Each accepted frame: delivered (ring or handler), no owner, or the owner's ring was full.
  EXPECT_EQ(n.rx_frames, n.rx_delivered + n.rx_drops_no_owner + n.rx_drops_owner_ring);
  EXPECT_LE(n.rx_drops_no_owner, unclaimed.load());
  uint64_t matched = 0, to_rings = 0, ring_drops = 0, drained = 0;
  for (int i = 0; i < kEnvs; ++i) {
    const FilterSlot* s = m.kernel.filter(m.filters[size_t(i)]);
    const PacketRing& r = m.kernel.ring(m.rings[size_t(i)]);
    matched += s->counters.matched;
    to_rings += r.counters.delivered;
    ring_drops += r.counters.drops_full + r.counters.drops_bad_buffer + r.counters.drops_too_big;
    drained += m.drained[size_t(i)];
    EXPECT_EQ(m.drained[size_t(i)], r.counters.delivered) << "env " << i;
    EXPECT_EQ(r.counters.drops_bad_buffer + r.counters.drops_too_big, 0u);
    if (i < 2) {
      const CountingHandler& h = m.handlers[i];
      EXPECT_EQ(h.runs, uint64_t(s->counters.matched));
      EXPECT_EQ(h.consumed, uint64_t(s->counters.handled));
      EXPECT_EQ(h.runs - h.consumed, uint64_t(s->counters.declined));
      EXPECT_GT(h.threads.size(), 1u) << "the handler ran on several queues' threads";
    }
  }
  EXPECT_EQ(matched + n.rx_drops_no_owner, n.rx_frames);
  EXPECT_EQ(n.rx_handled, m.handlers[0].consumed + m.handlers[1].consumed);
  EXPECT_EQ(n.rx_delivered, n.rx_handled + to_rings);
  EXPECT_EQ(n.rx_drops_owner_ring, ring_drops);
  EXPECT_EQ(drained, to_rings);
  EXPECT_GT(to_rings, 0u);
  EXPECT_GT(n.rx_handled, 0u);
  // Replies from handlers on any queue's thread: each admitted one counted once.
  EXPECT_EQ(n.tx_frames, m.handlers[0].replies + m.handlers[1].replies);
  EXPECT_GT(n.tx_frames, 0u);
}

INSTANTIATE_TEST_SUITE_P(Delivery, QueuesRace, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& p) {
                           return p.param ? "QueueThreads" : "OnArrival";
                         });

// Kernel calls that change what delivery reads (handlers installed and removed, filters
// released and claimed) while frames flow through 4 queue threads: no frame is lost or counted
// twice, and no handler runs after remove_handler has returned.
TEST(QueuesRace, HandlersComeAndGoWhileQueuesDeliver) {
  Machine m(true);
  std::atomic<bool> stop{false};
  std::vector<std::thread> wires;
  std::atomic<uint64_t> sent{0};
  for (int w = 0; w < 2; ++w)
    wires.emplace_back([&, w] {
      for (uint32_t i = 0; !stop.load(std::memory_order_acquire); ++i) {
        std::vector<uint8_t> f =
            flow_frame(0x0a000000 + i % 32, uint16_t(5000 + w), 1000, uint8_t(i | 1));
        m.nic.receive_from_wire(f.data(), f.size());
        ++sent;
        if (i % 64 == 0) std::this_thread::yield();
      }
    });
  Environment& e = *m.envs[0];
  for (int round = 0; round < 200; ++round) {
    m.kernel.remove_handler(e, 0, m.filters[0]);
    uint64_t runs = m.handlers[0].runs;  // no run in progress, none to come
    std::this_thread::yield();
    EXPECT_EQ(m.handlers[0].runs, runs);
    m.kernel.install_handler(e, 0, m.filters[0], &m.handlers[0], &m.nic);
  }
  stop.store(true, std::memory_order_release);
  for (std::thread& t : wires) t.join();
  m.nic.wait_rx_idle();
  m.stop();
  NicCounters n = m.nic.counters();
  EXPECT_EQ(n.rx_frames + n.rx_drops_ring_full, sent.load());
  EXPECT_EQ(n.rx_frames, n.rx_delivered + n.rx_drops_no_owner + n.rx_drops_owner_ring);
  const FilterSlot* s = m.kernel.filter(m.filters[0]);
  EXPECT_EQ(uint64_t(s->counters.matched), n.rx_frames);
  EXPECT_EQ(s->counters.handled + s->counters.declined, m.handlers[0].runs);
  EXPECT_EQ(n.rx_handled, m.handlers[0].consumed);
}

}  // namespace
}  // namespace exojit::runtime
