// SPDX-License-Identifier: MIT
// Kernel operations while a handler runs on another thread (thread mode): unmap + free + another
// environment's allocation of the frame, protect, and capability revocation. A handler run in
// progress finishes against the old, still-owned frame; once the operation has returned, the
// handler never touches the frame again. Bounded (a few hundred milliseconds), and meant to be
// run under ThreadSanitizer as well (-DEXOJIT_TSAN=ON): the interpreter engine's stores are
// instrumented, so a frame handed over too early is also a reported race.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <memory>
#include <thread>

#include "exojit/ash/handler.h"
#include "exojit/runtime/builtin_demux.h"
#include "exojit/runtime/kernel.h"

namespace exojit::ash::testing {
namespace {

using namespace exojit::runtime;
using vcode::Type;

constexpr uint64_t kApp = 0x20000000, kVictimVa = 0x30000000;
constexpr uint16_t kEtherType = 0x88b5;
const Capability kNicGuard = Capability::make({0x4e}, kPermWrite);

// A handler that stores 0xab.. over its first page, one 8-byte word after the other, `stores`
// times: indexed accesses, checked in full each time, so every store goes through the software
// TLB of the run.
void store_loop(HandlerBuilder& h, int64_t stores) {
  Reg base = h.getreg(Type::P, RegClass::Var), i = h.getreg(Type::U64, RegClass::Var),
      n = h.getreg(Type::I64, RegClass::Var), v = h.getreg(Type::U64, RegClass::Var);
  h.set(base, int64_t(kApp));
  h.set(i, 0);
  h.set(n, stores);
  h.set(v, int64_t(0xabababababababab));
  Label head = h.label();
  h.place(head);
  h.st(v, base, i, 0);
  h.add(i, i, 8);
  h.and_(i, i, int64_t(kPageSize - 1));
  h.sub(n, n, 1);
  h.bgt(n, 0, head);
  h.commit();
  h.finish();
}

struct Threaded {
  Kernel kernel{KernelConfig{.frames = 64, .mode = Mode::Threads}};
  BuiltinDemux demux;
  Nic& nic;
  Environment& attacker;
  Environment& victim;
  uint32_t filter;
  std::atomic<bool> stop{false};

  Threaded()
      : nic(kernel.add_nic(NicConfig{.name = "n0", .mac = {2, 0, 0, 0, 0, 2}, .rx_slots = 8},
                           kNicGuard)),
        attacker(kernel.create_environment("attacker", Capability::make({1}, kPermAll))),
        victim(kernel.create_environment("victim", Capability::make({2}, kPermAll))) {
    kernel.set_demux(&demux);
    kernel.alloc_pages(attacker, 0, kApp, 1, kPteRead | kPteWrite);
    filter = demux.add(DemuxRule{.ethertype = kEtherType});
    kernel.claim_filter(attacker, 0, filter);
  }

  HandlerOptions options(Engine e) const {
    HandlerOptions o;
    o.region = Region{kApp, kPageSize};
    o.engine = e;
    o.budget = 1 << 22;
    return o;
  }

  // Delivers frames to the handler until told to stop (the NIC's receive path: the delivery
  // lock and a handler run, as in production).
  std::thread deliverer() {
    return std::thread([this] {
      uint8_t frame[64] = {};
      frame[12] = kEtherType >> 8;
      frame[13] = kEtherType & 0xff;
      while (!stop.load(std::memory_order_acquire)) nic.receive_from_wire(frame, sizeof frame);
    });
  }

  static bool all(const uint8_t* p, uint8_t v) {
    for (size_t i = 0; i < kPageSize; ++i)
      if (p[i] != v) return false;
    return true;
  }
};

void pause_a_little() {
  std::this_thread::sleep_for(std::chrono::microseconds(300));
}

// Each test: the store loop installed on the attacker, frames delivered to it on a thread of
// its own while the test's thread runs kernel operations.
class Concurrency : public ::testing::TestWithParam<Engine> {
 protected:
  Threaded t;
  HandlerBuilder program{"stores"};
  std::unique_ptr<Handler> handler;
  std::thread delivery;

  void start() {
    store_loop(program, GetParam() == Engine::Native ? 200000 : 20000);
    handler = std::make_unique<Handler>(program, t.attacker, t.options(GetParam()));
    t.kernel.install_handler(t.attacker, 0, t.filter, handler.get());
    delivery = t.deliverer();
  }
  void stop() {
    t.stop.store(true, std::memory_order_release);
    delivery.join();
  }
  ~Concurrency() override {
    if (delivery.joinable()) stop();
  }
};

// The reproducer: unmap + free on one thread while the handler stores on another, then
// the victim allocates (and gets the same frame: the free list is a stack).
TEST_P(Concurrency, UnmapFreeAndReuseWhileAHandlerStores) {
  uint32_t free_before = t.kernel.memory().free_frames();
  start();
  int reused = 0;
  for (int round = 0; round < 40; ++round) {
    pause_a_little();
    uint32_t frame = t.attacker.mmu().lookup(kApp)->frame;
    t.kernel.unmap_page(t.attacker, 0, kApp);
    t.kernel.free_frame(t.attacker, 0, frame);
    uint32_t f = t.kernel.alloc_frame(t.victim, 0, Capability::make({2}, kPermAll));
    reused += f == frame;
    t.kernel.map_page(t.victim, 0, kVictimVa, f, kPteRead | kPteWrite);
    const uint8_t* page = t.kernel.memory().frame_data(f);
    EXPECT_TRUE(Threaded::all(page, 0)) << "round " << round;  // zeroed, and stays so
    pause_a_little();
    EXPECT_TRUE(Threaded::all(page, 0)) << "round " << round;
    t.kernel.unmap_page(t.victim, 0, kVictimVa);
    t.kernel.free_frame(t.victim, 0, f);
    t.kernel.alloc_pages(t.attacker, 0, kApp, 1, kPteRead | kPteWrite);
  }
  stop();
  EXPECT_GT(reused, 0);
  EXPECT_GT(handler->counters().committed + handler->counters().aborted_fault, 0u);
  // Every frame is counted once: as many free as before (the attacker has its one page again).
  EXPECT_EQ(t.kernel.memory().free_frames(), free_before);
}

TEST_P(Concurrency, ProtectWhileAHandlerStores) {
  start();
  uint8_t* page = t.kernel.memory().frame_data(t.attacker.mmu().lookup(kApp)->frame);
  for (int round = 0; round < 40; ++round) {
    pause_a_little();
    t.kernel.protect_page(t.attacker, 0, kApp, kPteRead);
    std::memset(page, round, kPageSize);  // after protect returns no handler stores here
    pause_a_little();
    EXPECT_TRUE(Threaded::all(page, uint8_t(round))) << "round " << round;
    t.kernel.protect_page(t.attacker, 0, kApp, kPteRead | kPteWrite);
  }
  stop();
  EXPECT_GT(handler->counters().aborted_fault, 0u);
}

TEST_P(Concurrency, RevokeWhileAHandlerStores) {
  // A second, narrower capability survives the revocation (indexes do not move).
  size_t narrow = t.kernel.grant(t.attacker, 0, t.attacker, Capability::make({1, 5}, kPermWrite));
  uint32_t frame = t.attacker.mmu().lookup(kApp)->frame;
  uint8_t* page = t.kernel.memory().frame_data(frame);
  start();
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  t.kernel.revoke(t.attacker, 0);
  std::memset(page, 0x11, kPageSize);
  pause_a_little();
  EXPECT_TRUE(Threaded::all(page, 0x11));
  EXPECT_EQ(t.attacker.mmu().lookup(kApp), nullptr);
  EXPECT_EQ(t.kernel.filter(t.filter)->handler, nullptr);
  EXPECT_FALSE(t.attacker.caps()[0].valid());
  EXPECT_TRUE(t.attacker.caps()[narrow].valid());
  EXPECT_THROW(t.kernel.revoke(t.attacker, 0), Error);
  EXPECT_EQ(t.kernel.memory().mappings(frame), 0u);  // the held mapping was let go
  stop();
}

// A multi-queue NIC (4 queues, a delivery thread each): frames of many UDP flows reach one ASH
// on whichever queue's thread received them, while the test's thread write-protects and
// unprotects the page the handler stores into (grace periods against runs on four threads).
// The handler's counters stay exact: every run is one matched frame, committed ones are
// consumed, faulted ones declined (no ring: dropped as no owner, counted once).
TEST_P(Concurrency, HandlerOnEveryQueueOfAMultiQueueNic) {
  Kernel kernel{KernelConfig{.frames = 256, .mode = Mode::Threads}};
  BuiltinDemux demux;
  kernel.set_demux(&demux);
  Nic& nic = kernel.add_nic({.rx_slots = 32, .queues = 4, .queue_threads = true}, kNicGuard);
  Environment& app = kernel.create_environment("app", Capability::make({1}, kPermAll));
  kernel.alloc_pages(app, 0, kApp, 1, kPteRead | kPteWrite);
  uint32_t filter = demux.add(DemuxRule{.ethertype = 0x0800, .ip_proto = 17, .dst_port = 7});
  kernel.claim_filter(app, 0, filter);
  store_loop(program, 16);
  HandlerOptions o;
  o.region = Region{kApp, kPageSize};
  o.engine = GetParam();
  handler = std::make_unique<Handler>(program, app, o);
  kernel.install_handler(app, 0, filter, handler.get());
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> sent{0};
  std::thread wire([&] {
    uint8_t f[60] = {};
    f[12] = 0x08, f[14] = 0x45, f[14 + 9] = 17, f[14 + 23] = 7;
    for (uint32_t i = 0; !stop.load(std::memory_order_acquire); ++i) {
      f[14 + 15] = uint8_t(i), f[14 + 21] = uint8_t(i >> 8);  // 256 x 256 flows
      nic.receive_from_wire(f, sizeof f);
      ++sent;
    }
  });
  uint8_t* page = kernel.memory().frame_data(app.mmu().lookup(kApp)->frame);
  // Waits (a second at most) until the NIC's counter `field` has moved: a run has committed, or
  // faulted on the read-only page, since `before`.
  auto moved = [&nic](uint64_t NicCounters::*field, uint64_t before) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    while (nic.counters().*field == before && std::chrono::steady_clock::now() < deadline)
      std::this_thread::yield();
  };
  for (int round = 0; round < 20; ++round) {
    moved(&NicCounters::rx_handled, nic.counters().rx_handled);
    kernel.protect_page(app, 0, kApp, kPteRead);
    std::memset(page, round, kPageSize);  // no handler stores here any more, on any queue
    moved(&NicCounters::rx_drops_no_owner, nic.counters().rx_drops_no_owner);
    EXPECT_TRUE(Threaded::all(page, uint8_t(round))) << "round " << round;
    kernel.protect_page(app, 0, kApp, kPteRead | kPteWrite);
  }
  stop.store(true, std::memory_order_release);
  wire.join();
  nic.wait_rx_idle();
  NicCounters n = nic.counters();
  const HandlerCounters& c = handler->counters();
  const FilterSlot* s = kernel.filter(filter);
  EXPECT_EQ(n.rx_frames + n.rx_drops_ring_full, sent.load());
  EXPECT_EQ(c.runs, uint64_t(s->counters.matched));
  EXPECT_EQ(c.runs, n.rx_frames);
  EXPECT_EQ(c.committed, uint64_t(s->counters.handled));
  EXPECT_EQ(c.committed, n.rx_handled);
  EXPECT_EQ(c.aborted_fault, uint64_t(s->counters.declined));
  EXPECT_EQ(c.aborted_fault, n.rx_drops_no_owner);
  EXPECT_GT(c.aborted_fault, 0u);
  EXPECT_GT(c.committed, 0u);
  uint32_t busy = 0;
  for (uint32_t q = 0; q < 4; ++q) busy += nic.queue_counters(q).rx_handled > 0;
  EXPECT_GT(busy, 1u) << "the handler ran on several queues";
}

INSTANTIATE_TEST_SUITE_P(Engines, Concurrency,
                         ::testing::Values(Engine::Native, Engine::Interpreter), [](const auto& p) {
                           return p.param == Engine::Native ? "native" : "interp";
                         });

}  // namespace
}  // namespace exojit::ash::testing
