// SPDX-License-Identifier: MIT
// The libOS between two simulated hosts: ARP, UDP echo, options, fragmentation and reassembly in
// any arrival order, ICMP echo, and bad packets dropped and counted.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

#include "exojit/libos/two_hosts.h"

namespace exojit::libos {
namespace {

using namespace exojit::runtime;

// Runs the scheduler with bodies that only poll their stacks, until `done` or idle.
void pump(TwoHosts& net, const std::function<bool()>& done = {}) {
  auto poll = [](Host& h) {
    return [&h](Environment&) {
      exo_stack_poll(h.stack());
      return Step::Block;
    };
  };
  net.env_a.set_body(poll(net.a));
  net.env_b.set_body(poll(net.b));
  net.scheduler.run(done, 1000000);
}

std::vector<uint8_t> pattern(size_t n, uint32_t seed) {
  std::vector<uint8_t> v(n);
  std::mt19937 rng(seed);
  for (auto& c : v) c = uint8_t(rng());
  return v;
}

TEST(Libos, UdpEchoResolvesArpFirst) {
  TwoHosts net;
  exo_stack* a = net.a.stack();
  exo_stack* b = net.b.stack();
  int sa = exo_socket(a), sb = exo_socket(b);
  ASSERT_EQ(exo_bind(b, sb, 7), 0);
  ASSERT_EQ(exo_connect(a, sa, TwoHosts::kIpB, 7), 0);
  const char msg[] = "hello, exokernel";
  ASSERT_EQ(exo_sendto(a, sa, msg, sizeof msg, 0, 0), int(sizeof msg));
  EXPECT_EQ(a->counters.arp_requests_sent, 1u);
  pump(net);
  char buf[64];
  uint32_t ip = 0;
  uint16_t port = 0;
  ASSERT_EQ(exo_setsockopt(b, sb, EXO_SO_NONBLOCK, 1), 0);
  ASSERT_EQ(exo_recvfrom(b, sb, buf, sizeof buf, &ip, &port), int(sizeof msg));
  EXPECT_STREQ(buf, msg);
  EXPECT_EQ(ip, TwoHosts::kIpA);
  // Echo it back to the sender's port.
  ASSERT_EQ(exo_sendto(b, sb, buf, sizeof msg, ip, port), int(sizeof msg));
  pump(net);
  ASSERT_EQ(exo_setsockopt(a, sa, EXO_SO_NONBLOCK, 1), 0);
  char back[64];
  ASSERT_EQ(exo_recvfrom(a, sa, back, sizeof back, nullptr, nullptr), int(sizeof msg));
  EXPECT_STREQ(back, msg);
  EXPECT_EQ(exo_recvfrom(a, sa, back, sizeof back, nullptr, nullptr), -EAGAIN);
  EXPECT_EQ(b->counters.arp_replies_sent, 1u);
  EXPECT_EQ(b->counters.arp_requests_sent, 0u);  // learned from A's request
  EXPECT_EQ(net.a.ring().counters.drops_full, 0u);
}

// A pair whose link loses everything: the test captures what A transmits and injects frames
// into B itself, in any order.
struct Captured {
  TwoHosts net;
  std::vector<std::vector<uint8_t>> frames;
  explicit Captured(TwoHostsConfig c) : net(with_loss(c)) {
    net.nic_a.add_tx_tap(
        [this](const uint8_t* f, size_t n, uint64_t) { frames.emplace_back(f, f + n); });
  }
  static TwoHostsConfig with_loss(TwoHostsConfig c) {
    c.link.loss = 1.0;
    c.static_arp = true;
    return c;
  }
  void inject(const std::vector<uint8_t>& f) { net.nic_b.receive_from_wire(f.data(), f.size()); }
};

TEST(Libos, FragmentedDatagramsReassembleInAnyOrder) {
  Captured cap(TwoHostsConfig{});
  exo_stack* a = cap.net.a.stack();
  exo_stack* b = cap.net.b.stack();
  int sa = exo_socket(a), sb = exo_socket(b);
  ASSERT_EQ(exo_bind(b, sb, 9000), 0);
  ASSERT_EQ(exo_setsockopt(b, sb, EXO_SO_NONBLOCK, 1), 0);
  std::vector<uint8_t> payload = pattern(5000, 1);  // 4 fragments at MTU 1500
  ASSERT_EQ(exo_sendto(a, sa, payload.data(), uint32_t(payload.size()), TwoHosts::kIpB, 9000),
            5000);
  ASSERT_EQ(cap.frames.size(), 4u);
  EXPECT_EQ(a->counters.tx_fragments, 4u);
  std::vector<int> order = {0, 1, 2, 3};
  int permutations = 0;
  std::vector<uint8_t> got(6000);
  do {
    for (int i : order) cap.inject(cap.frames[size_t(i)]);
    exo_stack_poll(b);
    uint32_t ip = 0;
    ASSERT_EQ(exo_recvfrom(b, sb, got.data(), uint32_t(got.size()), &ip, nullptr), 5000)
        << "order " << order[0] << order[1] << order[2] << order[3];
    EXPECT_TRUE(std::equal(payload.begin(), payload.end(), got.begin()));
    EXPECT_EQ(ip, TwoHosts::kIpA);
    ++permutations;
  } while (std::next_permutation(order.begin(), order.end()));
  EXPECT_EQ(permutations, 24);
  EXPECT_EQ(b->counters.frag_reassembled, 24u);
  // Duplicated fragments are harmless; the datagram completes once.
  for (int i : {2, 0, 2, 3, 0, 1}) cap.inject(cap.frames[size_t(i)]);
  exo_stack_poll(b);
  ASSERT_EQ(exo_recvfrom(b, sb, got.data(), uint32_t(got.size()), nullptr, nullptr), 5000);
  EXPECT_TRUE(std::equal(payload.begin(), payload.end(), got.begin()));
  EXPECT_EQ(b->counters.udp_bad_checksum, 0u);
}

TEST(Libos, InterleavedFragmentedDatagrams) {
  Captured cap(TwoHostsConfig{.mtu = 576});
  exo_stack* a = cap.net.a.stack();
  exo_stack* b = cap.net.b.stack();
  int sa = exo_socket(a), sb = exo_socket(b);
  ASSERT_EQ(exo_bind(b, sb, 9000), 0);
  ASSERT_EQ(exo_setsockopt(b, sb, EXO_SO_NONBLOCK, 1), 0);
  std::vector<std::vector<uint8_t>> sent;
  for (uint32_t i = 0; i < 3; ++i) {
    sent.push_back(pattern(1000 + 777 * i, 10 + i));
    ASSERT_GT(
        exo_sendto(a, sa, sent.back().data(), uint32_t(sent.back().size()), TwoHosts::kIpB, 9000),
        0);
  }
  std::vector<std::vector<uint8_t>> frames = cap.frames;
  std::mt19937 rng(7);
  std::shuffle(frames.begin(), frames.end(), rng);
  for (auto& f : frames) cap.inject(f);
  exo_stack_poll(b);
  std::vector<std::vector<uint8_t>> got;
  std::vector<uint8_t> buf(4000);
  int n;
  while ((n = exo_recvfrom(b, sb, buf.data(), uint32_t(buf.size()), nullptr, nullptr)) > 0)
    got.emplace_back(buf.begin(), buf.begin() + n);
  ASSERT_EQ(got.size(), 3u);
  std::sort(got.begin(), got.end());
  std::sort(sent.begin(), sent.end());
  EXPECT_EQ(got, sent);
}

TEST(Libos, FragmentsBetweenHostsOverTheLink) {
  TwoHosts net({.link = {.latency_ns = 5000, .bits_per_second = 100000000}});
  exo_stack* a = net.a.stack();
  exo_stack* b = net.b.stack();
  int sa = exo_socket(a), sb = exo_socket(b);
  ASSERT_EQ(exo_bind(b, sb, 9), 0);
  ASSERT_EQ(exo_setsockopt(b, sb, EXO_SO_NONBLOCK, 1), 0);
  std::vector<uint8_t> payload = pattern(20000, 3);
  ASSERT_EQ(exo_sendto(a, sa, payload.data(), uint32_t(payload.size()), TwoHosts::kIpB, 9), 20000);
  pump(net);
  std::vector<uint8_t> got(30000);
  ASSERT_EQ(exo_recvfrom(b, sb, got.data(), uint32_t(got.size()), nullptr, nullptr), 20000);
  EXPECT_TRUE(std::equal(payload.begin(), payload.end(), got.begin()));
  // 13 fragments of 1480 bytes and one of 768, with their headers, at 100 Mb/s (80 ns a byte),
  // 5 us away, after the ARP exchange (two 60-byte frames, each 5 us away).
  uint64_t wire = (13 * 1514 + 14 + 20 + 768) * 80;
  EXPECT_EQ(net.clock.now(), wire + 5000 + 2 * (60 * 80 + 5000));
}

TEST(Libos, IcmpEcho) {
  TwoHosts net({.static_arp = true});
  ASSERT_EQ(exo_ping(net.a.stack(), TwoHosts::kIpB, 77, 5, 56), 0);
  pump(net);
  EXPECT_EQ(net.b.stack()->counters.icmp_echo_replies_sent, 1u);
  EXPECT_EQ(net.a.stack()->counters.icmp_echo_replies_rx, 1u);
  EXPECT_EQ(net.a.stack()->last_echo_id, 77);
  EXPECT_EQ(net.a.stack()->last_echo_seq, 5);
}

TEST(Libos, SocketOptionsAndErrors) {
  Captured cap(TwoHostsConfig{});
  exo_stack* a = cap.net.a.stack();
  int s = exo_socket(a);
  char x[3000] = {};
  EXPECT_EQ(exo_sendto(a, 99, x, 1, TwoHosts::kIpB, 1), -EBADF);
  EXPECT_EQ(exo_sendto(a, s, x, 1, 0, 0), -EDESTADDRREQ);
  EXPECT_EQ(exo_sendto(a, s, x, 70000, TwoHosts::kIpB, 1), -EMSGSIZE);
  EXPECT_EQ(exo_sendto(a, s, x, 1, ipv4(192, 168, 1, 1), 1), -ENETUNREACH);
  EXPECT_EQ(exo_setsockopt(a, s, EXO_SO_TTL, 0), -EINVAL);
  EXPECT_EQ(exo_setsockopt(a, s, 42, 0), -ENOPROTOOPT);
  ASSERT_EQ(exo_setsockopt(a, s, EXO_SO_DONTFRAG, 1), 0);
  EXPECT_EQ(exo_sendto(a, s, x, 3000, TwoHosts::kIpB, 1), -EMSGSIZE);
  ASSERT_EQ(exo_setsockopt(a, s, EXO_SO_DONTFRAG, 0), 0);
  ASSERT_EQ(exo_setsockopt(a, s, EXO_SO_TTL, 9), 0);
  ASSERT_EQ(exo_setsockopt(a, s, EXO_SO_CHECKSUM, 0), 0);
  int v = -1;
  ASSERT_EQ(exo_getsockopt(a, s, EXO_SO_TTL, &v), 0);
  EXPECT_EQ(v, 9);
  ASSERT_EQ(exo_sendto(a, s, x, 10, TwoHosts::kIpB, 1), 10);
  ASSERT_EQ(cap.frames.size(), 1u);
  const std::vector<uint8_t>& f = cap.frames[0];
  EXPECT_EQ(f[14 + 8], 9);                        // TTL
  EXPECT_EQ(f[14 + 20 + 6] | f[14 + 20 + 7], 0);  // no UDP checksum
  ASSERT_EQ(exo_setsockopt(a, s, EXO_SO_CHECKSUM, 1), 0);
  ASSERT_EQ(exo_sendto(a, s, x, 10, TwoHosts::kIpB, 1), 10);
  EXPECT_NE(cap.frames[1][14 + 20 + 6] | cap.frames[1][14 + 20 + 7], 0);
  EXPECT_EQ(exo_close(a, s), 0);
  EXPECT_EQ(exo_close(a, s), -EBADF);
}

// Bad packets: every mutation of a valid frame is dropped and counted, none delivered, none
// crashes; then random garbage.
TEST(Libos, BadPacketsAreDroppedAndCounted) {
  Captured cap(TwoHostsConfig{});
  exo_stack* a = cap.net.a.stack();
  exo_stack* b = cap.net.b.stack();
  int sa = exo_socket(a), sb = exo_socket(b);
  ASSERT_EQ(exo_bind(b, sb, 9000), 0);
  ASSERT_EQ(exo_setsockopt(b, sb, EXO_SO_NONBLOCK, 1), 0);
  std::vector<uint8_t> payload = pattern(100, 5);
  ASSERT_EQ(exo_sendto(a, sa, payload.data(), 100, TwoHosts::kIpB, 9000), 100);
  const std::vector<uint8_t> good = cap.frames.at(0);
  auto drops = [b] {
    const exo_counters& c = b->counters;
    return c.ip_bad_header + c.ip_bad_checksum + c.ip_bad_length + c.udp_bad_length +
           c.udp_bad_checksum + c.frag_bad;
  };
  auto expect_dropped = [&](std::vector<uint8_t> f, const char* what) {
    uint64_t before = drops() + cap.net.nic_b.counters().rx_drops_runt +
                      cap.net.nic_b.counters().rx_drops_no_owner;
    cap.inject(f);
    exo_stack_poll(b);
    uint8_t buf[200];
    EXPECT_EQ(exo_recvfrom(b, sb, buf, sizeof buf, nullptr, nullptr), -EAGAIN) << what;
    EXPECT_EQ(drops() + cap.net.nic_b.counters().rx_drops_runt +
                  cap.net.nic_b.counters().rx_drops_no_owner,
              before + 1)
        << what;
  };
  // Truncated anywhere (the Ethernet header must survive for the demux to pick host B).
  for (size_t n = 0; n < good.size(); ++n)
    if (n != 14) expect_dropped(std::vector<uint8_t>(good.begin(), good.begin() + n), "truncated");
  std::vector<uint8_t> f = good;
  f[14 + 12] ^= 1;  // source address: header checksum now wrong
  expect_dropped(f, "ip checksum");
  f = good;
  f[14 + 20 + 8 + 50] ^= 0xff;  // payload: UDP checksum wrong
  expect_dropped(f, "udp checksum");
  f = good;
  f[14 + 2] = 0x7f;  // IP total length beyond the frame (checksum fixed below)
  auto fix_ip = [](std::vector<uint8_t>& g) {
    g[14 + 10] = g[14 + 11] = 0;
    uint16_t c = exo_cksum_fold(exo_cksum_add(0, g.data() + 14, 20));
    g[14 + 10] = uint8_t(c >> 8), g[14 + 11] = uint8_t(c);
  };
  fix_ip(f);
  expect_dropped(f, "ip total length too long");
  f = good;
  f[14 + 2] = 0, f[14 + 3] = 10;  // shorter than the header
  fix_ip(f);
  expect_dropped(f, "ip total length too short");
  f = good;
  f[14] = 0x4f;  // header length 60 > what the frame has as header
  fix_ip(f);
  expect_dropped(f, "ihl");
  f = good;
  f[14] = 0x44;  // header length 16
  expect_dropped(f, "ihl short");
  f = good;
  f[14 + 20 + 4] = 0x40;  // UDP length beyond the datagram
  expect_dropped(f, "udp length long");
  f = good;
  f[14 + 20 + 4] = 0, f[14 + 20 + 5] = 4;  // UDP length below its header
  expect_dropped(f, "udp length short");
  f = good;
  f[14 + 6] = 0x20 | 0x1f, f[14 + 7] = 0xff;  // MF at offset 65528: beyond 65535
  fix_ip(f);
  expect_dropped(f, "fragment offset");
  f = good;
  f[14 + 6] = 0x20;  // MF with 108 bytes: not a multiple of 8
  fix_ip(f);
  expect_dropped(f, "fragment length");
  // Random garbage after a valid Ethernet header: nothing is delivered, nothing crashes.
  std::mt19937 rng(99);
  for (int i = 0; i < 20000; ++i) {
    std::vector<uint8_t> g = good;
    int flips = 1 + int(rng() % 6);
    for (int k = 0; k < flips; ++k) g[14 + rng() % (g.size() - 14)] = uint8_t(rng());
    if (rng() % 3 == 0) g.resize(14 + rng() % (g.size() - 14));
    cap.inject(g);
    exo_stack_poll(b);
    uint8_t buf[2000];
    while (exo_recvfrom(b, sb, buf, sizeof buf, nullptr, nullptr) >= 0) {
    }
  }
  // The stack still works.
  cap.inject(good);
  exo_stack_poll(b);
  uint8_t buf[200];
  EXPECT_EQ(exo_recvfrom(b, sb, buf, sizeof buf, nullptr, nullptr), 100);
}

}  // namespace
}  // namespace exojit::libos

namespace exojit::libos {
namespace {

// The word-at-a-time checksum against the RFC 1071 definition, every length and alignment, and
// summed in pieces.
TEST(Libos, ChecksumMatchesTheDefinition) {
  std::vector<uint8_t> buf(300);
  std::mt19937 rng(3);
  for (auto& c : buf) c = uint8_t(rng());
  buf[10] = buf[11] = 0xff;
  auto reference = [](uint32_t sum, const uint8_t* p, size_t n) {
    uint64_t acc = sum;
    for (size_t i = 0; i + 1 < n; i += 2) acc += uint32_t(p[i] << 8 | p[i + 1]);
    if (n % 2) acc += uint32_t(p[n - 1] << 8);
    while (acc >> 16) acc = (acc & 0xffff) + (acc >> 16);
    return uint16_t(~acc);
  };
  for (size_t off = 0; off < 8; ++off)
    for (size_t n = 0; n + off <= buf.size(); ++n)
      ASSERT_EQ(exo_cksum_fold(exo_cksum_add(0, buf.data() + off, uint32_t(n))),
                reference(0, buf.data() + off, n))
          << off << " " << n;
  for (size_t split = 0; split <= 200; split += 2) {
    uint32_t s = exo_cksum_add(0xfffe1234u, buf.data(), uint32_t(split));
    s = exo_cksum_add(s, buf.data() + split, uint32_t(251 - split));
    ASSERT_EQ(exo_cksum_fold(s), reference(0xfffe1234u, buf.data(), 251)) << split;
  }
}

}  // namespace
}  // namespace exojit::libos
