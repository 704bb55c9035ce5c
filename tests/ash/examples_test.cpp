// SPDX-License-Identifier: MIT
// The examples between two simulated hosts: each handler's effect and replies equal those of
// the plain C++ server doing the same work in the environment (the ring path).
#include <gtest/gtest.h>

#include <random>

#include "handlers.h"
#include "testbed.h"

namespace exojit::ash::examples {
namespace {

using runtime::Mode;

std::vector<uint8_t> increment_payload(uint64_t va) {
  std::vector<uint8_t> p(16, 0);
  std::memcpy(p.data(), &va, 8);
  return p;
}

// Serves every message waiting in the server's ring with `serve`.
template <typename F>
int drain_server(Testbed& t, F serve) {
  int n = 0;
  while (runtime::RingSlot* s = t.server_message()) {
    std::vector<uint8_t> reply = serve(t.server_bytes(s), s->length);
    t.server_release();
    if (!reply.empty()) t.server_transmit(reply.data(), reply.size());
    ++n;
  }
  return n;
}

TEST(Examples, RemoteIncrementMatchesTheRingServer) {
  for (Sandbox sb : {Sandbox::Checked, Sandbox::Trusted}) {
    Testbed with(Mode::Threads, kIncrementPort), without(Mode::Threads, kIncrementPort);
    HandlerBuilder h("remote_increment");
    remote_increment(h);
    Handler handler(h, with.server(), with.options(sb));
    with.install(handler);
    for (int i = 0; i < 20; ++i) {
      uint64_t va = Testbed::kApp + uint64_t(i % 5) * 8 + (i % 2 ? 4096 : 0);
      auto req = with.request(increment_payload(va).data(), 16);
      with.send(req);
      without.send(req);
      EXPECT_EQ(
          drain_server(without, [&](const uint8_t* f,
                                    size_t n) { return serve_increment(without.server(), f, n); }),
          1);
      std::vector<uint8_t> a, b;
      ASSERT_TRUE(with.take_reply(&a)) << i;
      ASSERT_TRUE(without.take_reply(&b)) << i;
      EXPECT_EQ(a, b) << i;
      EXPECT_TRUE(udp_checksums_ok(a.data(), a.size()));
    }
    EXPECT_EQ(handler.counters().committed, 20u);
    EXPECT_EQ(with.server_message(), nullptr);  // nothing reached the ring
    uint64_t x = 0;
    with.server().user_copy_in(&x, Testbed::kApp + 4096 + 8, 8);
    EXPECT_EQ(x, 2u);
    // An address outside the region: the handler aborts, the ring server gets the message.
    // (Trusted handlers are not checked: that is what trusted means.)
    if (sb == Sandbox::Trusted) continue;
    auto bad = with.request(increment_payload(0x1000).data(), 16);
    with.send(bad);
    EXPECT_EQ(handler.counters().aborted_fault, 1u);
    EXPECT_NE(with.server_message(), nullptr);
  }
}

TEST(Examples, RemoteWriteDeliversInPlace) {
  Testbed t(Mode::Threads, kIncrementPort);
  HandlerBuilder h("remote_write");
  remote_write(h);
  Handler handler(h, t.server(), t.options());
  runtime::HandlerContext ctx(t.net.kernel_b, t.server(), t.net.nic_b, false);
  std::mt19937 rng(3);
  for (uint32_t n : {0u, 1u, 40u, 128u, 4096u + 100u}) {
    std::vector<uint8_t> data(n);
    for (auto& b : data) b = uint8_t(rng());
    uint64_t va = Testbed::kApp + 4000;  // crosses pages
    auto f = remote_write_frame(t.net.nic_b.mac(), va, data.data(), n);
    handler.handle(ctx, runtime::Message{f.data(), uint32_t(f.size()), 1});
    ASSERT_EQ(handler.last_outcome(), Outcome::Committed) << n;
    std::vector<uint8_t> got(n);
    t.server().user_copy_in(got.data(), va, n);
    EXPECT_EQ(got, data);
    // A length beyond the message aborts.
    f.pop_back();
    if (n) {
      handler.handle(ctx, runtime::Message{f.data(), uint32_t(f.size()), 1});
      EXPECT_EQ(handler.last_outcome(), Outcome::Aborted);
    }
  }
}

TEST(Examples, UdpEchoMatchesTheRingServer) {
  Testbed with(Mode::Threads, kEchoPort), without(Mode::Threads, kEchoPort);
  HandlerBuilder h("udp_echo");
  udp_echo(h);
  Handler handler(h, with.server(), with.options());
  with.install(handler);
  std::mt19937 rng(5);
  for (size_t n : {0, 1, 17, 64, 1400}) {
    std::vector<uint8_t> payload(n);
    for (auto& b : payload) b = uint8_t(rng());
    auto req = with.request(payload.data(), n);
    with.send(req);
    without.send(req);
    drain_server(without, [](const uint8_t* f, size_t len) { return serve_echo(f, len); });
    std::vector<uint8_t> a, b;
    ASSERT_TRUE(with.take_reply(&a));
    ASSERT_TRUE(without.take_reply(&b));
    EXPECT_EQ(a, b);
    EXPECT_TRUE(udp_checksums_ok(a.data(), a.size()));
  }
  EXPECT_EQ(handler.counters().committed, 5u);
}

}  // namespace
}  // namespace exojit::ash::examples
