// SPDX-License-Identifier: MIT
// Code guards ([TEMPO04], 2.2): every invariant of a specialized send has a guard, provoked here.
// Application-triggered changes are refused or fall back to the generic path, as declared;
// environment-triggered ones invalidate the code (generic path, then a fresh specialization);
// replaced code is freed only when no call is still inside it.
#include <gtest/gtest.h>

#include "exojit/error.h"
#include "exojit/specializer/send.h"
#include "sender.h"

namespace exojit::specializer {
namespace {

using testing::Sender;

const uint8_t kPayload[2000] = {1, 2, 3, 4, 5};

// The frame a generic send of the same bytes produces, with the same IP identification.
std::vector<std::vector<uint8_t>> generic_frames(Sender& net, const SendToken& t, uint32_t len) {
  exo_stack* s = net.stack();
  uint16_t id = s->next_ip_id;
  net.frames.clear();
  exo_sendto(s, t.context().fd, kPayload, len, t.context().ip, t.context().port);
  s->next_ip_id = id;
  auto f = net.frames;
  net.frames.clear();
  return f;
}

void expect_like_generic(Sender& net, SendToken& t, uint32_t len) {
  auto want = generic_frames(net, t, len);
  ASSERT_FALSE(want.empty());
  EXPECT_EQ(t.send(kPayload, len), int(len));
  EXPECT_EQ(net.frames, want);
}

struct Guarded : ::testing::Test {
  Sender net;
  exo_stack* s = net.stack();
  Specializer sp;
  SendSpecializer guard{sp, s};
  int fd = exo_socket(s);

  SendToken request(OnApplicationChange app, OnEnvironmentChange env, uint32_t ip = Sender::kPeer,
                    uint32_t adu = 64) {
    SendToken t = guard.request(
        {.fd = fd, .ip = ip, .port = 7, .adu = adu, .on_application = app, .on_environment = env});
    EXPECT_TRUE(t.specialized()) << t.reason();
    return t;
  }
};

TEST_F(Guarded, FrozenSocketOptionIsRefused) {
  SendToken t = request(OnApplicationChange::Refuse, OnEnvironmentChange::Respecialize);
  for (int option : {EXO_SO_TTL, EXO_SO_CHECKSUM, EXO_SO_DONTFRAG}) {
    int value = option == EXO_SO_TTL ? 9 : option == EXO_SO_CHECKSUM ? 0 : 1;
    EXPECT_EQ(exo_setsockopt(s, fd, option, value), -EBUSY) << option;
  }
  int ttl = 0;
  exo_getsockopt(s, fd, EXO_SO_TTL, &ttl);
  EXPECT_EQ(ttl, 64);
  EXPECT_EQ(exo_setsockopt(s, fd, EXO_SO_TTL, 64), 0);      // no change: allowed
  EXPECT_EQ(exo_setsockopt(s, fd, EXO_SO_NONBLOCK, 1), 0);  // not read by the send path
  EXPECT_TRUE(t.specialized());
  expect_like_generic(net, t, 64);
}

TEST_F(Guarded, FrozenSocketOptionFallsBackToGeneric) {
  SendToken t = request(OnApplicationChange::Generic, OnEnvironmentChange::Respecialize);
  EXPECT_EQ(exo_setsockopt(s, fd, EXO_SO_TTL, 9), 0);
  EXPECT_FALSE(t.specialized());
  EXPECT_NE(t.reason().find("socket option 3 changed"), std::string::npos) << t.reason();
  EXPECT_EQ(t.residual(), nullptr);
  expect_like_generic(net, t, 64);
  EXPECT_EQ(net.frames.at(0)[14 + 8], 9);  // the new TTL
  // An application change is not undone by a later environment change.
  exo_route_add(s, libos::ipv4(172, 16, 0, 0), 0xffff0000u, Sender::kGateway);
  EXPECT_FALSE(t.specialized());
}

TEST_F(Guarded, OtherSizeThanTheAduIsRefused) {
  SendToken t = request(OnApplicationChange::Refuse, OnEnvironmentChange::Respecialize);
  net.frames.clear();
  EXPECT_EQ(t.send(kPayload, 65), -EMSGSIZE);
  EXPECT_TRUE(net.frames.empty());
  EXPECT_TRUE(t.specialized());
}

TEST_F(Guarded, OtherSizeThanTheAduGoesGeneric) {
  SendToken t = request(OnApplicationChange::Generic, OnEnvironmentChange::Respecialize);
  expect_like_generic(net, t, 1000);  // this call only
  EXPECT_TRUE(t.specialized());
  expect_like_generic(net, t, 64);
}

TEST_F(Guarded, ConnectOfATokenSendingToThePeer) {
  ASSERT_EQ(exo_connect(s, fd, Sender::kPeer, 9), 0);
  SendToken refuse = request(OnApplicationChange::Refuse, OnEnvironmentChange::Generic, 0);
  EXPECT_EQ(exo_connect(s, fd, Sender::kGateway, 9), -EBUSY);
  EXPECT_EQ(exo_connect(s, fd, Sender::kPeer, 9), 0);  // the same peer: no change
  EXPECT_TRUE(refuse.specialized());
  expect_like_generic(net, refuse, 64);
  refuse = SendToken();
  SendToken fallback = request(OnApplicationChange::Generic, OnEnvironmentChange::Generic, 0);
  EXPECT_EQ(exo_connect(s, fd, Sender::kGateway, 9), 0);
  EXPECT_FALSE(fallback.specialized());
  expect_like_generic(net, fallback, 64);
  EXPECT_EQ(net.frames.at(0)[5], 0xfe);  // to the gateway's MAC now
}

TEST_F(Guarded, CloseInvalidatesForGood) {
  SendToken t = request(OnApplicationChange::Refuse, OnEnvironmentChange::Respecialize);
  std::weak_ptr<const Residual> code = t.residual();
  ASSERT_EQ(exo_close(s, fd), 0);
  EXPECT_FALSE(t.specialized());
  EXPECT_EQ(t.reason(), "socket closed");
  EXPECT_TRUE(code.expired());  // no call was inside: freed at once
  // The descriptor is reused by a new socket: the token does not send through it.
  ASSERT_EQ(exo_socket(s), fd);
  net.frames.clear();
  EXPECT_EQ(t.send(kPayload, 64), -EBADF);
  EXPECT_EQ(t.send(kPayload, 65), -EMSGSIZE);
  EXPECT_TRUE(net.frames.empty());
}

TEST_F(Guarded, RouteChangeRespecializes) {
  constexpr uint32_t far = libos::ipv4(192, 168, 1, 5);
  SendToken t = request(OnApplicationChange::Refuse, OnEnvironmentChange::Respecialize, far);
  expect_like_generic(net, t, 64);
  EXPECT_EQ(net.frames.at(0)[5], 0xfe);  // through the gateway
  std::weak_ptr<const Residual> old = t.residual();
  // A more specific route: 192.168.1.0/24 through the peer.
  ASSERT_EQ(exo_route_add(s, libos::ipv4(192, 168, 1, 0), 0xffffff00u, Sender::kPeer), 0);
  EXPECT_TRUE(t.specialized()) << t.reason();
  EXPECT_EQ(t.invalidations(), 1u);
  EXPECT_TRUE(old.expired());
  expect_like_generic(net, t, 64);
  EXPECT_EQ(net.frames.at(0)[5], 0x02);  // through the peer now
}

TEST_F(Guarded, RouteChangeFallsBackToGeneric) {
  SendToken t = request(OnApplicationChange::Refuse, OnEnvironmentChange::Generic);
  ASSERT_EQ(exo_route_add(s, libos::ipv4(172, 16, 0, 0), 0xffff0000u, Sender::kGateway), 0);
  EXPECT_FALSE(t.specialized());
  EXPECT_EQ(t.reason(), "a route was added");
  expect_like_generic(net, t, 64);
}

TEST_F(Guarded, ArpChangeRespecializes) {
  SendToken t = request(OnApplicationChange::Refuse, OnEnvironmentChange::Respecialize);
  const uint8_t moved[6] = {0x02, 0, 0, 0, 0, 0x77};
  // A change to an entry the lookup does not read changes nothing.
  const uint8_t other[6] = {0x02, 0, 0, 0, 0, 0x55};
  ASSERT_EQ(exo_arp_add(s, libos::ipv4(10, 0, 0, 55), other), 0);
  EXPECT_EQ(t.invalidations(), 0u);
  ASSERT_EQ(exo_arp_add(s, Sender::kPeer, moved), 0);
  EXPECT_TRUE(t.specialized()) << t.reason();
  EXPECT_EQ(t.invalidations(), 1u);
  expect_like_generic(net, t, 64);
  EXPECT_EQ(net.frames.at(0)[5], 0x77);
}

TEST_F(Guarded, ArpReplyFromTheWireInvalidates) {
  SendToken t = request(OnApplicationChange::Refuse, OnEnvironmentChange::Generic);
  // An ARP reply from the peer with a new MAC address, through the NIC and the libOS.
  uint8_t f[60] = {0x02, 0, 0,    0, 0, 1,    0x02, 0, 0, 0, 0, 0x66, 0x08, 0x06,  // Ethernet
                   0,    1, 0x08, 0, 6, 4,    0,    2,                             // ARP reply
                   0x02, 0, 0,    0, 0, 0x66, 10,   0, 0, 2,                       // sender
                   0x02, 0, 0,    0, 0, 1,    10,   0, 0, 1};                      // target
  net.nic.receive_from_wire(f, sizeof f);
  exo_stack_poll(s);
  EXPECT_FALSE(t.specialized());
  EXPECT_EQ(t.reason(), "ARP entry of 10.0.0.2 changed");
  expect_like_generic(net, t, 64);
  EXPECT_EQ(net.frames.at(0)[5], 0x66);
}

TEST_F(Guarded, MtuChangeRespecializes) {
  SendToken t =
      request(OnApplicationChange::Refuse, OnEnvironmentChange::Respecialize, Sender::kPeer, 1400);
  expect_like_generic(net, t, 1400);
  EXPECT_EQ(net.frames.size(), 1u);
  ASSERT_EQ(exo_set_mtu(s, 576), 0);
  EXPECT_TRUE(t.specialized()) << t.reason();
  expect_like_generic(net, t, 1400);
  EXPECT_EQ(net.frames.size(), 3u);  // fragments now
}

TEST_F(Guarded, RespecializationThatFailsStaysGeneric) {
  constexpr uint32_t far = libos::ipv4(192, 168, 1, 5);
  SendToken t = request(OnApplicationChange::Refuse, OnEnvironmentChange::Respecialize, far);
  // The new route's gateway is not in the ARP table: no specialization for now.
  ASSERT_EQ(exo_route_add(s, libos::ipv4(192, 168, 1, 0), 0xffffff00u, libos::ipv4(10, 0, 0, 3)),
            0);
  EXPECT_FALSE(t.specialized());
  EXPECT_NE(t.reason().find("respecialization failed: specialized send: next hop 10.0.0.3"),
            std::string::npos)
      << t.reason();
  net.frames.clear();
  EXPECT_EQ(t.send(kPayload, 64), 64);  // generic: queued on the ARP entry, a request sent
}

// The old code must survive a change made while a call is still running in it: here the NIC's
// transmit tap, called from inside the specialized send, changes the MTU.
TEST_F(Guarded, CodeIsFreedOnlyWhenNoCallIsInside) {
  SendToken t = request(OnApplicationChange::Refuse, OnEnvironmentChange::Respecialize);
  std::weak_ptr<const Residual> old = t.residual();
  bool alive_inside = false;
  bool changed = false;
  net.nic.add_tx_tap([&](const uint8_t*, size_t, uint64_t) {
    if (changed) return;
    changed = true;
    ASSERT_EQ(exo_set_mtu(s, 1000), 0);
    alive_inside = !old.expired();  // replaced, but the caller is still inside it
  });
  EXPECT_EQ(t.send(kPayload, 64), 64);
  EXPECT_TRUE(changed);
  EXPECT_TRUE(alive_inside);
  EXPECT_TRUE(old.expired());  // freed when the call left it
  EXPECT_TRUE(t.specialized());
  EXPECT_EQ(t.invalidations(), 1u);
  EXPECT_NE(t.residual(), nullptr);
  expect_like_generic(net, t, 64);
}

TEST_F(Guarded, TokensFallBackWhenTheGuardIsGone) {
  auto sp2 = std::make_unique<Specializer>();
  Sender other;
  auto g = std::make_unique<SendSpecializer>(*sp2, other.stack());
  int ofd = exo_socket(other.stack());
  SendToken t = g->request({.fd = ofd, .ip = Sender::kPeer, .port = 7});
  EXPECT_TRUE(t.specialized());
  EXPECT_THROW(SendSpecializer(*sp2, other.stack()), Error);  // one guard per stack
  g.reset();
  EXPECT_FALSE(t.specialized());
  EXPECT_EQ(t.send(kPayload, 10), 10);
}

}  // namespace
}  // namespace exojit::specializer
