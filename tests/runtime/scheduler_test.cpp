// SPDX-License-Identifier: MIT
// The deterministic scheduler model (time-slice vector, round-robin among runnable environments,
// clock jumps when idle) and real host threads woken by the kernel.
#include "exojit/runtime/scheduler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "exojit/error.h"
#include "exojit/libos/two_hosts.h"

namespace exojit::runtime {
namespace {

TEST(Scheduler, TimeSliceVectorRoundRobinAmongRunnable) {
  Kernel k;
  Environment& a = k.create_environment("a", Capability::root());
  Environment& b = k.create_environment("b", Capability::root());
  Environment& c = k.create_environment("c", Capability::root());
  std::string trace;
  int a_left = 4, b_left = 6;
  a.set_body([&](Environment&) {
    trace += 'a';
    return --a_left ? Step::Yield : Step::Exit;
  });
  b.set_body([&](Environment&) {
    trace += 'b';
    return --b_left ? Step::Yield : Step::Exit;
  });
  c.set_body([&](Environment&) {
    trace += 'c';
    return Step::Block;  // runs once, then waits to be woken
  });
  Scheduler s(k);
  s.set_slices({&a, &b, &b, &c});  // b gets twice a's share
  s.run();
  EXPECT_EQ(trace, "abbcabbabba");
  EXPECT_TRUE(a.exited && b.exited);
  EXPECT_FALSE(c.runnable);
  // A timer wakes c at virtual time 5000: the clock jumps there since nothing else can run.
  k.wake_at(c, 5000);
  s.run();
  EXPECT_EQ(trace, "abbcabbabbac");
  EXPECT_EQ(k.clock().now(), 5000u);
  EXPECT_EQ(s.stats().idle_jumps, 1u);
  EXPECT_THROW(s.set_slices({nullptr}), Error);
}

TEST(Scheduler, QuantumChargesVirtualTimeAndRunsAreDeterministic) {
  auto run_once = [] {
    libos::TwoHosts net({.link = {.latency_ns = 3000, .bits_per_second = 1000000000}});
    net.scheduler.quantum_ns = 100;
    exo_stack* a = net.a.stack();
    exo_stack* b = net.b.stack();
    int sa = exo_socket(a), sb = exo_socket(b);
    exo_bind(b, sb, 7);
    exo_setsockopt(a, sa, EXO_SO_NONBLOCK, 1);
    exo_setsockopt(b, sb, EXO_SO_NONBLOCK, 1);
    int rounds = 0;
    std::vector<uint64_t> times;
    char buf[64] = "ping";
    exo_sendto(a, sa, buf, 8, libos::TwoHosts::kIpB, 7);
    net.env_a.set_body([&](Environment&) {
      if (exo_recvfrom(a, sa, buf, sizeof buf, nullptr, nullptr) > 0) {
        times.push_back(net.clock.now());
        if (++rounds == 10) return Step::Exit;
        exo_sendto(a, sa, buf, 8, libos::TwoHosts::kIpB, 7);
      }
      return Step::Block;
    });
    net.env_b.set_body([&](Environment&) {
      uint32_t ip;
      uint16_t port;
      int n;
      while ((n = exo_recvfrom(b, sb, buf, sizeof buf, &ip, &port)) > 0)
        exo_sendto(b, sb, buf, uint32_t(n), ip, port);
      return Step::Block;
    });
    net.scheduler.run();
    return times;
  };
  std::vector<uint64_t> t1 = run_once(), t2 = run_once();
  ASSERT_EQ(t1.size(), 10u);
  EXPECT_EQ(t1, t2);  // same virtual times, slice for slice
  // A round trip: two 50-byte frames (0.4 us each at 1 Gb/s... rounded up) plus 2 x 3 us.
  EXPECT_GE(t1[9] - t1[8], 2u * 3000);
}

TEST(Threads, EnvironmentsAreWokenByTheKernel) {
  libos::TwoHosts net({.mode = Mode::Threads, .static_arp = true});
  exo_stack* a = net.a.stack();
  exo_stack* b = net.b.stack();
  int sa = exo_socket(a), sb = exo_socket(b);
  ASSERT_EQ(exo_bind(b, sb, 7), 0);
  ASSERT_EQ(exo_connect(a, sa, libos::TwoHosts::kIpB, 7), 0);
  ThreadRunner runner(net.kernel_b);
  std::atomic<int> echoed{0};
  // B: a blocking echo server on its own host thread (exo_recvfrom sleeps in wait()).
  runner.start(net.env_b, [&](Environment&) {
    char buf[256];
    uint32_t ip;
    uint16_t port;
    while (!runner.stopping()) {
      exo_setsockopt(b, sb, EXO_SO_NONBLOCK, 0);
      int n = exo_recvfrom(b, sb, buf, sizeof buf, &ip, &port);
      if (n < 0) continue;
      if (n == 4 && std::string(buf, 4) == "stop") break;
      exo_sendto(b, sb, buf, uint32_t(n), ip, port);
      ++echoed;
    }
  });
  // A: this thread, blocking receives too.
  char buf[256];
  for (int i = 0; i < 200; ++i) {
    std::string msg = "message " + std::to_string(i);
    ASSERT_EQ(exo_sendto(a, sa, msg.data(), uint32_t(msg.size()), 0, 0), int(msg.size()));
    int n = exo_recvfrom(a, sa, buf, sizeof buf, nullptr, nullptr);
    ASSERT_EQ(std::string(buf, size_t(n)), msg);
  }
  exo_sendto(a, sa, "stop", 4, 0, 0);
  runner.join();
  EXPECT_EQ(echoed.load(), 200);
  EXPECT_GE(net.env_b.wakeups(), 200u);
}

TEST(Threads, ThreadRunnerNeedsThreadMode) {
  Kernel k;
  EXPECT_THROW(ThreadRunner r(k), Error);
  Kernel kt({.mode = Mode::Threads});
  Nic& a = kt.add_nic({}, Capability::root());
  Nic& b = kt.add_nic({}, Capability::root());
  EXPECT_THROW(kt.connect(a, b, {}), Error);  // needs an immediate link
}

}  // namespace
}  // namespace exojit::runtime

namespace exojit::runtime {
namespace {

// Handlers on both ends of an immediate link, replying to each other while both environments'
// threads send: replies are queued and sent after the receive path, so no lock is held across
// the two machines (no deadlock) and no handler recurses into the other.
struct Bouncer : MessageHandler {
  std::atomic<int> seen{0};
  HandlerVerdict handle(HandlerContext& c, const Message& m) override {
    ++seen;
    std::vector<uint8_t> f(m.data, m.data + m.length);
    uint8_t& hops = f[14 + 20 + 8];
    if (hops == 0) return HandlerVerdict::Consumed;
    --hops;
    for (int i = 0; i < 6; ++i) std::swap(f[size_t(i)], f[size_t(6 + i)]);
    c.reply(f.data(), f.size());
    return HandlerVerdict::Consumed;
  }
};

TEST(Threads, HandlersReplyingAcrossAnImmediateLinkFromBothSides) {
  libos::TwoHosts net({.mode = Mode::Threads, .static_arp = true});
  Bouncer ba, bb;
  uint32_t fa = net.demux_a.add({0x0800, 0, 17, 5}), fb = net.demux_b.add({0x0800, 0, 17, 5});
  net.kernel_a.claim_filter(net.env_a, 0, fa);
  net.kernel_b.claim_filter(net.env_b, 0, fb);
  net.kernel_a.install_handler(net.env_a, 0, fa, &ba, &net.nic_a);
  net.kernel_b.install_handler(net.env_b, 0, fb, &bb, &net.nic_b);
  auto frame = [](const Nic& from, const Nic& to, uint8_t hops) {
    std::vector<uint8_t> f(60, 0);
    std::copy(to.mac().begin(), to.mac().end(), f.begin());
    std::copy(from.mac().begin(), from.mac().end(), f.begin() + 6);
    f[12] = 0x08, f[14] = 0x45, f[14 + 3] = 46, f[14 + 9] = 17, f[14 + 20 + 3] = 5;
    f[14 + 20 + 8] = hops;
    return f;
  };
  constexpr int kFrames = 300, kHops = 9;  // each frame crosses the link 10 times
  auto sender = [&](Kernel& k, Environment& env, Nic& from, Nic& to) {
    std::vector<uint8_t> f = frame(from, to, kHops);
    for (int i = 0; i < kFrames; ++i)
      while (!k.transmit_bytes(env, 0, from, f.data(), f.size())) std::this_thread::yield();
  };
  std::thread ta([&] { sender(net.kernel_a, net.env_a, net.nic_a, net.nic_b); });
  std::thread tb([&] { sender(net.kernel_b, net.env_b, net.nic_b, net.nic_a); });
  ta.join();
  tb.join();
  EXPECT_EQ(ba.seen + bb.seen, 2 * kFrames * (kHops + 1));
  EXPECT_EQ(net.nic_a.counters().tx_drops_ring_full + net.nic_b.counters().tx_drops_ring_full, 0u);
}

}  // namespace
}  // namespace exojit::runtime
