// SPDX-License-Identifier: MIT
// Differential test: for many contexts (destination on the link, through the gateway, or the
// connected peer; checksums on or off; TTL; don't-fragment; two MTUs; fixed or varying sizes)
// and payloads, including sizes that fragment, the specialized send path puts byte-identical
// frames on the NIC, returns the same value and counts the same as the generic path.
#include <gtest/gtest.h>

#include <random>

#include "exojit/specializer/send.h"
#include "sender.h"

namespace exojit::specializer {
namespace {

using testing::Sender;

struct Case {
  uint32_t ip;  // 0: connected to the peer
  int checksum, ttl, dontfrag;
  uint32_t adu;  // 0: sizes vary
};

constexpr uint32_t kFar = libos::ipv4(192, 168, 7, 9);  // through the gateway

std::vector<uint64_t> counters(const exo_stack* s) {
  const auto* p = reinterpret_cast<const uint64_t*>(&s->counters);
  return std::vector<uint64_t>(p, p + sizeof s->counters / sizeof(uint64_t));
}

// Sends `len` bytes generically, then through the token with the same IP identification;
// both must put the same frames on the NIC, return the same and count the same.
void expect_same(Sender& net, SendToken& t, const std::vector<uint8_t>& payload, uint32_t len) {
  exo_stack* s = net.stack();
  const SendContext& c = t.context();
  uint16_t id = s->next_ip_id;
  auto before = counters(s);
  net.frames.clear();
  int rg = exo_sendto(s, c.fd, payload.data(), len, c.ip, c.port);
  auto generic = net.frames;
  auto generic_counted = counters(s);
  s->next_ip_id = id;
  net.frames.clear();
  ASSERT_TRUE(t.specialized()) << t.reason();
  int rs = t.send(payload.data(), len);
  EXPECT_EQ(rs, rg) << len << " bytes";
  ASSERT_EQ(net.frames.size(), generic.size()) << len << " bytes";
  for (size_t i = 0; i < generic.size(); ++i)
    EXPECT_EQ(net.frames[i], generic[i]) << "frame " << i << " of a " << len << "-byte send";
  // Counted the same: the generic send's increments happened twice.
  auto after = counters(s);
  for (size_t i = 0; i < after.size(); ++i)
    EXPECT_EQ(after[i] - generic_counted[i], generic_counted[i] - before[i]) << "counter " << i;
}

void run_cases(uint16_t mtu, const std::vector<Case>& cases, const std::vector<uint32_t>& sizes) {
  Sender net({.mtu = mtu});
  exo_stack* s = net.stack();
  Specializer sp;
  SendSpecializer guard(sp, s);
  std::mt19937 rng(mtu);
  std::vector<uint8_t> payload(65507);
  for (auto& b : payload) b = uint8_t(rng());
  for (const Case& k : cases) {
    SCOPED_TRACE(::testing::Message()
                 << "MTU " << mtu << ", to " << std::hex << k.ip << std::dec << ", checksum "
                 << k.checksum << ", TTL " << k.ttl << ", DF " << k.dontfrag << ", ADU " << k.adu);
    int fd = exo_socket(s);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(exo_setsockopt(s, fd, EXO_SO_CHECKSUM, k.checksum), 0);
    ASSERT_EQ(exo_setsockopt(s, fd, EXO_SO_TTL, k.ttl), 0);
    ASSERT_EQ(exo_setsockopt(s, fd, EXO_SO_DONTFRAG, k.dontfrag), 0);
    if (k.ip == 0) {
      ASSERT_EQ(exo_connect(s, fd, Sender::kPeer, 4242), 0);
    }
    SendToken t = guard.request({.fd = fd, .ip = k.ip, .port = 7, .adu = k.adu});
    if (k.adu) {
      for (int round = 0; round < 3; ++round) {
        std::shuffle(payload.begin(), payload.begin() + k.adu, rng);
        expect_same(net, t, payload, k.adu);
      }
    } else {
      for (uint32_t len : sizes) expect_same(net, t, payload, len);
    }
    ASSERT_EQ(exo_close(s, fd), 0);
  }
}

const std::vector<uint32_t> kSizes = {0,  1,    2,    7,    8,    63,   64,
                                      65, 1024, 1471, 1472, 1473, 4000, 9000};

TEST(Equivalence, FixedSizesOnTheLink) {
  std::vector<Case> cases;
  for (uint32_t adu : {1u, 17u, 64u, 1024u, 1472u, 1473u, 3001u, 8192u, 65507u})
    cases.push_back({Sender::kPeer, 1, 64, 0, adu});
  run_cases(1500, cases, kSizes);
}

TEST(Equivalence, OptionsAndDestinations) {
  std::vector<Case> cases;
  for (uint32_t ip : {Sender::kPeer, kFar, 0u})
    for (int checksum : {0, 1})
      for (int dontfrag : {0, 1})
        for (uint32_t adu : {64u, 2000u})
          cases.push_back({ip, checksum, int(1 + adu % 255), dontfrag, adu});
  cases.push_back({kFar, 1, 255, 0, 0});
  cases.push_back({0, 0, 1, 1, 0});
  run_cases(1500, cases, kSizes);
}

TEST(Equivalence, SmallMtuFragmentsMore) {
  std::vector<Case> cases;
  for (uint32_t adu : {0u, 64u, 548u, 549u, 1024u, 5000u})
    cases.push_back({Sender::kPeer, 1, 64, 0, adu});
  cases.push_back({kFar, 0, 30, 1, 1024});
  run_cases(576, cases, kSizes);
}

}  // namespace
}  // namespace exojit::specializer
