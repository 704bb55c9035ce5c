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

#include "exojit/ash/dpf_demux.h"
#include "exojit/ash/handler.h"
#include "exojit/dpf/filter.h"
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

// The same, over the 1 KiB of the page that belongs to the message's receive queue (the byte
// at message offset kQueueByte, which the sender sets): concurrent runs on different queues
// store to different bytes, as two threads of one program would have to for their stores not to
// race (in C++ terms: the interpreter's stores are C++ stores).
constexpr int64_t kQueueByte = 14 + 28;
void queue_store_loop(HandlerBuilder& h, int64_t stores) {
  Reg base = h.getreg(Type::P, RegClass::Var), i = h.getreg(Type::U64, RegClass::Var),
      n = h.getreg(Type::I64, RegClass::Var), v = h.getreg(Type::U64, RegClass::Var);
  Reg q = h.getreg(Type::U8, RegClass::Temp);
  h.peek(q, kQueueByte);
  h.cvt(i, q);
  h.putreg(q);
  h.and_(i, i, 3);
  h.lsh(i, i, 10);
  h.set(base, int64_t(kApp));
  h.add(base, base, i);
  h.set(i, 0);
  h.set(n, stores);
  h.set(v, int64_t(0xabababababababab));
  Label head = h.label();
  h.place(head);
  h.st(v, base, i, 0);
  h.add(i, i, 8);
  h.and_(i, i, 1023);
  h.sub(n, n, 1);
  h.bgt(n, 0, head);
  h.commit();
  h.finish();
}

// A kernel in thread mode with a multi-queue NIC (a delivery thread per queue), an environment
// with one page at kApp, and the filter slot `filter` it claimed (UDP to port 7; the demux is
// the built-in one unless `demux` is given).
// The same stores as an array walk whose check is hoisted out of the inner loop (a constant
// step from a base set by the outer loop): the run holds one translation (a host page address)
// across 512 stores, in registers, while the kernel unmaps, frees and hands out the frame.
void hoisted_walk(HandlerBuilder& h, int64_t pages) {
  Reg base = h.getreg(Type::P, RegClass::Var), n = h.getreg(Type::I64, RegClass::Var),
      k = h.getreg(Type::I64, RegClass::Var), v = h.getreg(Type::U64, RegClass::Var);
  h.set(k, pages);
  h.set(v, int64_t(0xabababababababab));
  Label outer = h.label(), inner = h.label();
  h.place(outer);
  h.set(base, int64_t(kApp));
  h.set(n, int64_t(kPageSize / 8));
  h.place(inner);
  h.st(v, base, 0);
  h.add(base, base, 8);
  h.sub(n, n, 1);
  h.bgt(n, 0, inner);
  h.sub(k, k, 1);
  h.bgt(k, 0, outer);
  h.commit();
  h.finish();
}

struct MultiQueue {
  Kernel kernel{KernelConfig{.frames = 256, .mode = Mode::Threads}};
  BuiltinDemux builtin;
  Nic& nic;
  Environment& app;
  uint32_t filter;

  MultiQueue(uint32_t queues, uint32_t rx_slots, Demux* demux = nullptr, uint32_t id = 0,
             Capability cap = Capability::make({1}, kPermAll))
      : nic(kernel.add_nic({.rx_slots = rx_slots, .queues = queues, .queue_threads = true},
                           kNicGuard)),
        app(kernel.create_environment("app", cap)) {
    kernel.set_demux(demux ? demux : &builtin);
    kernel.alloc_pages(app, 0, kApp, 1, kPteRead | kPteWrite);
    filter =
        demux ? id : builtin.add(DemuxRule{.ethertype = 0x0800, .ip_proto = 17, .dst_port = 7});
    kernel.claim_filter(app, 0, filter);
  }

  // A UDP frame to port 7 of flow i (source address and port from i), naming at kQueueByte the
  // receive queue RSS steers it to.
  std::vector<uint8_t> frame(uint32_t i) const {
    std::vector<uint8_t> f(60, 0);
    f[12] = 0x08, f[14] = 0x45, f[14 + 9] = 17, f[14 + 23] = 7;
    f[14 + 15] = uint8_t(i), f[14 + 21] = uint8_t(i >> 8);
    f[kQueueByte] = uint8_t(nic.rss().queue(f.data(), f.size()));
    return f;
  }
};

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

  void start(bool hoisted = false) {
    if (hoisted)
      hoisted_walk(program, GetParam() == Engine::Native ? 400 : 40);
    else
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
void unmap_free_and_reuse(Threaded& t, Handler& handler);

TEST_P(Concurrency, UnmapFreeAndReuseWhileAHandlerStores) {
  uint32_t free_before = t.kernel.memory().free_frames();
  start();
  unmap_free_and_reuse(t, *handler);
  stop();
  EXPECT_EQ(t.kernel.memory().free_frames(), free_before);
}

// The same against a hoisted array walk (its translation held across iterations).
TEST_P(Concurrency, UnmapFreeAndReuseWhileAHoistedWalkStores) {
  uint32_t free_before = t.kernel.memory().free_frames();
  start(true);
  unmap_free_and_reuse(t, *handler);
  stop();
  EXPECT_EQ(t.kernel.memory().free_frames(), free_before);
}

void unmap_free_and_reuse(Threaded& t, Handler& handler) {
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
  EXPECT_GT(reused, 0);
  EXPECT_GT(handler.counters().committed + handler.counters().aborted_fault, 0u);
  // Every frame is counted once (the callers compare the free frames once delivery stopped).
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
  MultiQueue mq(4, 32);
  Kernel& kernel = mq.kernel;
  Nic& nic = mq.nic;
  Environment& app = mq.app;
  uint32_t filter = mq.filter;
  queue_store_loop(program, 16);
  HandlerOptions o;
  o.region = Region{kApp, kPageSize};
  o.engine = GetParam();
  handler = std::make_unique<Handler>(program, app, o);
  EXPECT_TRUE(handler->concurrent());  // no run lock: the four queues run it at once
  kernel.install_handler(app, 0, filter, handler.get());
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> sent{0};
  std::thread wire([&] {
    for (uint32_t i = 0; !stop.load(std::memory_order_acquire); ++i) {
      std::vector<uint8_t> f = mq.frame(i);  // 65536 flows
      nic.receive_from_wire(f.data(), f.size());
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
  HandlerCounters c = handler->counters();
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
  // Each queue's last run: committed or faulted, never a budget or a voluntary abort.
  for (uint32_t q = 0; q < 4; ++q) {
    Outcome last = handler->last_outcome(nic.first_lane() + q);
    EXPECT_TRUE(last == Outcome::Committed || last == Outcome::Fault) << q;
  }
}

// Two runs of one handler really overlap: each, on its own queue's thread, raises its flag in
// the environment's page and spins (within its budget) until it sees the other's. Run one at a
// time, the first would spin its budget out before the second could start (a budget abort, not
// two commits). The flags are shared memory the two runs race on, as two threads of the
// environment would: native code only (the interpreter's loads and stores are C++ accesses,
// which ThreadSanitizer would rightly report).
TEST(ConcurrentRuns, TwoRunsOfOneHandlerOverlap) {
  // Root: the budget below (seconds of spinning) is past what an environment may choose.
  MultiQueue mq(2, 8, nullptr, 0, Capability::root());
  HandlerBuilder h("rendezvous");
  Reg me = h.getreg(Type::P, RegClass::Var), other = h.getreg(Type::P, RegClass::Var),
      x = h.getreg(Type::U64, RegClass::Var), n = h.getreg(Type::I64, RegClass::Var);
  Reg r = h.getreg(Type::U8, RegClass::Temp);
  h.peek(r, kQueueByte);  // 0 or 1: which flag is this run's
  h.cvt(x, r);
  h.putreg(r);
  h.and_(x, x, 1);
  h.lsh(x, x, 3);
  h.set(me, int64_t(kApp));
  h.add(me, me, x);
  h.set(other, int64_t(kApp + 8));
  h.sub(other, other, x);
  h.set(x, 1);
  h.st(x, me, 0);
  h.set(n, int64_t(1) << 31);  // seconds of spinning: longer than any scheduling delay
  Label spin = h.label(), met = h.label();
  h.place(spin);
  h.ld(x, other, 0);
  h.bne(x, 0, met);
  h.sub(n, n, 1);
  h.bgt(n, 0, spin);
  h.abort();
  h.place(met);
  h.commit();
  h.finish();
  HandlerOptions o;
  o.region = Region{kApp, kPageSize};
  o.budget = int64_t(1) << 40;
  Handler handler(h, mq.app, o);
  mq.kernel.install_handler(mq.app, 0, mq.filter, &handler);
  // One flow per queue: the run's flag is its queue.
  std::vector<std::vector<uint8_t>> flows(2);
  for (uint32_t i = 1; flows[0].empty() || flows[1].empty(); ++i) {
    std::vector<uint8_t> f = mq.frame(i);
    if (flows[f[kQueueByte]].empty()) flows[f[kQueueByte]] = f;
  }
  constexpr int kRounds = 3;
  for (int round = 0; round < kRounds; ++round) {
    uint64_t zero[2] = {0, 0};
    mq.app.user_copy_out(kApp, zero, sizeof zero);
    for (const auto& f : flows) mq.nic.receive_from_wire(f.data(), f.size());
    mq.nic.wait_rx_idle();
  }
  HandlerCounters c = handler.counters();
  EXPECT_EQ(c.runs, 2u * kRounds);
  EXPECT_EQ(c.committed, 2u * kRounds) << c.aborted_voluntary << " runs gave up waiting";
  EXPECT_EQ(mq.nic.queue_counters(0).rx_handled, uint64_t(kRounds));
  EXPECT_EQ(mq.nic.queue_counters(1).rx_handled, uint64_t(kRounds));
}

// dpf's engine as the kernel's demux classifies on every queue's thread at once (it is safe for
// concurrent readers: DpfDemux::concurrent()), while a control thread inserts and removes
// connection filters that overlap nothing the wire sends: every frame reaches the ASH on its
// filter, none is lost to a half-made change, and the counters agree.
TEST(ConcurrentRuns, DpfDemuxOnEveryQueueWhileFiltersComeAndGo) {
  dpf::Engine engine;
  DpfDemux demux(engine);
  EXPECT_TRUE(demux.concurrent());  // no kernel-wide classify lock
  uint32_t port7 =
      engine.insert(dpf::parse_filter("(12:16 == 0x800) && (23:8 == 17) && (36:16 == 7)"));
  MultiQueue mq(4, 32, &demux, port7);
  Nic& nic = mq.nic;
  HandlerBuilder program("stores");
  queue_store_loop(program, 16);
  HandlerOptions o;
  o.region = Region{kApp, kPageSize};
  Handler handler(program, mq.app, o);
  mq.kernel.install_handler(mq.app, 0, mq.filter, &handler);
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> changes{0};
  std::thread control([&] {
    for (uint16_t k = 0; !stop.load(std::memory_order_acquire); ++k) {
      std::string port = std::to_string(10000 + k % 512);
      uint32_t id = engine.insert(
          dpf::parse_filter("(12:16 == 0x800) && (23:8 == 17) && (36:16 == " + port + ")"));
      engine.remove(id, 0);
      ++changes;
    }
  });
  // Changes between every batch of frames (on a loaded machine the control thread may otherwise
  // not run before the last frame is sent): the filters change while frames are on the queues.
  constexpr uint32_t kFrames = 20000, kBatch = 1000;
  uint64_t seen = 0;
  for (uint32_t i = 0; i < kFrames; ++i) {
    if (i % kBatch == 0) {
      while (changes.load() == seen) std::this_thread::yield();
      seen = changes.load();
    }
    std::vector<uint8_t> f = mq.frame(i);
    nic.receive_from_wire(f.data(), f.size());
  }
  nic.wait_rx_idle();
  stop.store(true, std::memory_order_release);
  control.join();
  NicCounters n = nic.counters();
  HandlerCounters c = handler.counters();
  EXPECT_EQ(n.rx_frames + n.rx_drops_ring_full, kFrames);
  EXPECT_EQ(n.rx_drops_no_owner, 0u);
  EXPECT_EQ(c.runs, n.rx_frames);
  EXPECT_EQ(c.committed, n.rx_frames);
  EXPECT_EQ(n.rx_handled, n.rx_frames);
  EXPECT_GE(changes.load(), kFrames / kBatch);
  uint32_t busy = 0;
  for (uint32_t q = 0; q < 4; ++q) busy += nic.queue_counters(q).rx_handled > 0;
  EXPECT_GT(busy, 1u);
}

// Lanes are independent run states: a run nested in another on the same thread (kernel code
// re-entering delivery: here a transmit tap, run while the outer run queues its reply) is
// refused on the outer run's lane, whose run state is in use, and runs on any other lane.
TEST(Lanes, ARunNestedOnItsOwnLaneIsRefusedAndRunsOnAnother) {
  for (uint32_t nested_lane : {0u, 1u}) {
    Kernel kernel;  // the scheduler model: one thread
    Nic& nic = kernel.add_nic({.name = "n0", .rx_slots = 8}, kNicGuard);
    Environment& app = kernel.create_environment("app", Capability::make({1}, kPermAll));
    kernel.alloc_pages(app, 0, kApp, 1, kPteRead | kPteWrite);
    HandlerBuilder h("replier");
    h.reply_begin();
    h.reply_put(0x1111, 8);
    h.reply_put(0x2222, 8);
    h.reply_send();
    h.commit();
    h.finish();
    HandlerOptions o;
    o.region = Region{kApp, kPageSize};
    Handler handler(h, app, o);
    uint8_t msg[60] = {};
    int depth = 0;
    std::vector<HandlerVerdict> inner;
    nic.add_tx_tap([&](const uint8_t*, size_t, uint64_t) {
      if (depth++ > 0) return;  // the nested run's own reply
      HandlerContext ctx(kernel, app, nic, true, nested_lane);
      inner.push_back(handler.handle(ctx, Message{msg, sizeof msg, 1}));
    });
    HandlerContext ctx(kernel, app, nic, true, 0);
    EXPECT_EQ(handler.handle(ctx, Message{msg, sizeof msg, 1}), HandlerVerdict::Consumed);
    nic.service_rx(0);
    ASSERT_EQ(inner.size(), 1u);
    HandlerCounters c = handler.counters();
    EXPECT_EQ(c.runs, 2u);
    if (nested_lane == 0) {
      EXPECT_EQ(inner[0], HandlerVerdict::Declined);
      EXPECT_EQ(c.committed, 1u);
      EXPECT_EQ(c.aborted_fault, 1u);
      EXPECT_EQ(c.replies_sent, 1u);
    } else {
      EXPECT_EQ(inner[0], HandlerVerdict::Consumed);
      EXPECT_EQ(c.committed, 2u);
      EXPECT_EQ(c.replies_sent, 2u);
      EXPECT_EQ(handler.last_outcome(1), Outcome::Committed);
    }
    EXPECT_EQ(handler.last_outcome(0), Outcome::Committed);  // the outer run's
    EXPECT_THROW(HandlerContext(kernel, app, nic, true, kMaxLanes), Error);
  }
}

INSTANTIATE_TEST_SUITE_P(Engines, Concurrency,
                         ::testing::Values(Engine::Native, Engine::Interpreter), [](const auto& p) {
                           return p.param == Engine::Native ? "native" : "interp";
                         });

}  // namespace
}  // namespace exojit::ash::testing
