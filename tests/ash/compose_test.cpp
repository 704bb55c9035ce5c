// SPDX-License-Identifier: MIT
// Protocol composition: commit parts in FIFO order, abort propagation (down from a failing
// body, up from a failing commit part), one fused data pass, and the composed cache server
// against the same server written in C++.
#include "exojit/ash/compose.h"

#include <gtest/gtest.h>

#include "cache_server.h"
#include "exojit/pipes/library.h"
#include "exojit/pipes/reference.h"
#include "handlers.h"
#include "machine.h"

namespace exojit::ash::testing {
namespace {

using vcode::Op;
using vcode::Type;

// Appends v to a log in application memory: [count][entries...] at kApp.
void append(HandlerBuilder& b, int64_t v) {
  Reg p = b.getreg(Type::P), n = b.getreg(Type::U64), x = b.getreg(Type::U64);
  b.set(p, int64_t(Machine::kApp));
  b.ld(n, p);
  b.set(x, v);
  b.lsh(n, n, 3);
  b.st(x, p, n, 8);
  b.ld(n, p);
  b.add(n, n, 1);
  b.st(n, p);
  b.putreg(p);
  b.putreg(n);
  b.putreg(x);
}

// Layer `id` reads control byte msg[id]: 1 fails its body, 2 fails its commit part.
class LogLayer : public Layer {
 public:
  explicit LogLayer(int id) : id_(id) {}
  std::string_view name() const override { return "log"; }
  void body(LayerContext& c) override {
    Reg k = c.b.getreg(Type::U8);
    c.b.peek_at(k, int64_t(id_));
    c.fail_if(Op::Beq, k, 1);
    c.b.putreg(k);
    append(c.b, id_);
  }
  void commit(LayerContext& c) override {
    Reg k = c.b.getreg(Type::U8);
    c.b.peek_at(k, int64_t(id_));
    c.fail_if(Op::Beq, k, 2);
    c.b.putreg(k);
    append(c.b, 10 + id_);
  }
  void abort(LayerContext& c) override { append(c.b, 100 + id_); }

 private:
  int id_;
};

struct Composed : Machine {
  LogLayer l0{0}, l1{1}, l2{2};
  std::unique_ptr<Handler> handler;
  Composed() {
    HandlerBuilder h("log3");
    compose(h, {&l0, &l1, &l2});
    handler = std::make_unique<Handler>(h, env, options());
  }
  std::vector<uint64_t> run_log(std::vector<uint8_t> control, Outcome want) {
    write<uint64_t>(kApp, 0);
    control.resize(8, 0);
    EXPECT_EQ(run(*handler, control), want);
    std::vector<uint64_t> log(read<uint64_t>(kApp));
    for (size_t i = 0; i < log.size(); ++i) log[i] = read<uint64_t>(kApp + 8 + 8 * i);
    return log;
  }
};

TEST(Compose, CommitPartsRunInFifoOrder) {
  Composed m;
  EXPECT_EQ(m.run_log({0, 0, 0}, Outcome::Committed), (std::vector<uint64_t>{0, 1, 2, 10, 11, 12}));
}

TEST(Compose, BodyFailurePropagatesDown) {
  Composed m;
  EXPECT_EQ(m.run_log({0, 1, 0}, Outcome::Aborted), (std::vector<uint64_t>{0, 101, 100}));
  EXPECT_EQ(m.run_log({0, 0, 1}, Outcome::Aborted), (std::vector<uint64_t>{0, 1, 102, 101, 100}));
  EXPECT_EQ(m.run_log({1, 0, 0}, Outcome::Aborted), (std::vector<uint64_t>{100}));
}

TEST(Compose, CommitFailurePropagatesUp) {
  Composed m;
  EXPECT_EQ(m.run_log({0, 2, 0}, Outcome::Aborted), (std::vector<uint64_t>{0, 1, 2, 10, 102}));
  EXPECT_EQ(m.run_log({2, 0, 0}, Outcome::Aborted), (std::vector<uint64_t>{0, 1, 2, 101, 102}));
  EXPECT_EQ(m.run_log({0, 0, 2}, Outcome::Aborted), (std::vector<uint64_t>{0, 1, 2, 10, 11}));
}

// An application layer that takes the UDP payload to memory, byte-swapped: with the UDP
// layer's checksum, one pipe list (cksum then bswap32) and one pass over the data.
class StoreLayer : public Layer {
 public:
  std::string_view name() const override { return "store"; }
  void body(LayerContext& c) override {
    c.add_library_pipe(pipes::library::bswap32);
    Reg dst = c.shared("store.dst", Type::P);
    c.b.set(dst, int64_t(Machine::kApp + 1000));
    c.deliver_to(dst);
  }
};

TEST(Compose, LayersShareOneDataPass) {
  examples::Testbed t(runtime::Mode::Threads, 5000);
  EthernetLayer eth;
  Ipv4Layer ip(libos::TwoHosts::kIpB);
  UdpLayer udp(5000);
  StoreLayer store;
  HandlerBuilder h("udp_store");
  compose(h, {&eth, &ip, &udp, &store});
  ASSERT_EQ(h.pipe_lists().size(), 1u);
  ASSERT_EQ(h.pipe_lists()[0].size(), 2u);  // the UDP checksum and the byte swap, fused
  int transfers = 0;
  for (const Site& s : h.sites())
    if (s.kind == PrimKind::Consume || s.kind == PrimKind::Scan) ++transfers;
  EXPECT_EQ(transfers, 1);
  Handler handler(h, t.server(), t.options());
  runtime::HandlerContext ctx(t.net.kernel_b, t.server(), t.net.nic_b, false);
  std::vector<uint8_t> payload(301);
  for (size_t i = 0; i < payload.size(); ++i) payload[i] = uint8_t(i * 13);
  auto f = t.request(payload.data(), payload.size());
  handler.handle(ctx, runtime::Message{f.data(), uint32_t(f.size()), 1});
  ASSERT_EQ(handler.last_outcome(), Outcome::Committed);
  std::vector<uint8_t> got(payload.size()), want = payload;
  pipes::reference::bswap32(want.data(), want.size());
  t.server().user_copy_in(got.data(), Machine::kApp + 1000, got.size());
  EXPECT_EQ(got, want);
  // A corrupted payload fails the UDP commit part: the handler aborts.
  f[60] ^= 1;
  handler.handle(ctx, runtime::Message{f.data(), uint32_t(f.size()), 1});
  EXPECT_EQ(handler.last_outcome(), Outcome::Aborted);
  // No checksum (0): accepted.
  f[40] = f[41] = 0;
  handler.handle(ctx, runtime::Message{f.data(), uint32_t(f.size()), 1});
  EXPECT_EQ(handler.last_outcome(), Outcome::Committed);
  // A bad IPv4 header checksum fails the IPv4 body.
  f[24] ^= 0x10;
  handler.handle(ctx, runtime::Message{f.data(), uint32_t(f.size()), 1});
  EXPECT_EQ(handler.last_outcome(), Outcome::Aborted);
}

TEST(Compose, CacheServerHitsMatchTheCppServer) {
  using examples::CacheServer;
  examples::Testbed t(runtime::Mode::Threads, examples::kCachePort);
  CacheServer cache(t.server(), examples::Testbed::kApp);
  HandlerBuilder h("cache_server");
  cache.build(h, libos::TwoHosts::kIpB, examples::kCachePort);
  Handler handler(h, t.server(), t.options());
  t.install(handler);
  for (uint32_t key : {1u, 2u, 65u, 1000u, 0xdeadbeefu}) {
    auto req = examples::cache_request(t, key);
    // Miss: aborted to the server's ring; the server loads, caches and replies.
    t.send(req);
    std::vector<uint8_t> reply;
    EXPECT_FALSE(t.take_reply(&reply));
    runtime::RingSlot* s = t.server_message();
    ASSERT_NE(s, nullptr);
    auto r = cache.serve(t.server_bytes(s), s->length);
    t.server_release();
    t.server_transmit(r.data(), r.size());
    ASSERT_TRUE(t.take_reply(&reply));
    EXPECT_TRUE(examples::udp_checksums_ok(reply.data(), reply.size()));
    // Hit: the handler's reply equals the C++ server's, byte for byte.
    t.send(req);
    std::vector<uint8_t> hit;
    ASSERT_TRUE(t.take_reply(&hit)) << key;
    EXPECT_EQ(hit, cache.reply(req.data(), key)) << key;
    EXPECT_TRUE(examples::udp_checksums_ok(hit.data(), hit.size())) << key;
  }
  EXPECT_EQ(handler.counters().committed, 5u);
  EXPECT_EQ(handler.counters().aborted_voluntary, 5u);
}

}  // namespace
}  // namespace exojit::ash::testing
