// SPDX-License-Identifier: MIT
// The pcap-filter front end against libpcap: random expressions (the primitives of connection
// and service filters, and/or/not) several to an engine, on generated packets of every kind
// (truncated and garbage ones included): the filters under each id accept exactly the packets
// libpcap's pcap_offline_filter accepts, and the winner is always one of them. Plus libpcap's
// errors, as compile_pcap reports them.
#include <exojit/dpf/engine.h>
#include <exojit/dpf/pcap.h>
#include <exojit/error.h>
#include <gtest/gtest.h>
#include <pcap/pcap.h>

#include <optional>

#include "packets.h"

namespace exojit::dpf {
namespace {

using testing::Bytes;

class Bpf {
 public:
  explicit Bpf(const std::string& expr) {
    pcap_t* dead = pcap_open_dead(DLT_EN10MB, 262144);
    int rc = pcap_compile(dead, &prog_, expr.c_str(), 1, PCAP_NETMASK_UNKNOWN);
    std::string err = pcap_geterr(dead);
    pcap_close(dead);
    if (rc != 0) throw std::runtime_error("libpcap: " + expr + ": " + err);
  }
  ~Bpf() { pcap_freecode(&prog_); }
  Bpf(const Bpf&) = delete;
  // Through pcap_offline_filter, as a capture program would.
  bool accepts(const uint8_t* p, size_t len, size_t caplen) const {
    pcap_pkthdr h{};
    h.caplen = bpf_u_int32(caplen);
    h.len = bpf_u_int32(len);
    return pcap_offline_filter(&prog_, &h, p) != 0;
  }

 private:
  bpf_program prog_{};
};

std::string ip(uint32_t a) {
  return fmt::format("{}.{}.{}.{}", a >> 24, a >> 16 & 255, a >> 8 & 255, a & 255);
}

// Every draw from `rng` is its own statement: the order in which a call's arguments (or an
// overloaded operator's operands) are evaluated is unspecified, and differs between gcc's x86-64
// and AArch64 code, which would give each architecture other expressions from the same seed.
std::string random_primitive(std::mt19937_64& rng) {
  auto pick = [&](auto& pool) { return pool[rng() % std::size(pool)]; };
  static const char* dirs[] = {"", "src ", "dst "};
  const unsigned kind = unsigned(rng() % 15);
  const std::string dir = kind >= 6 && kind <= 8 ? pick(dirs) : "";
  switch (kind) {
    case 0:
      return "ip";
    case 1:
      return "ip6";
    case 2:
      return "arp";
    case 3:
      return "tcp";
    case 4:
      return "udp";
    case 5:
      return "icmp";
    case 6:
      return dir + "host " + ip(pick(testing::kHosts));
    case 7:
      return dir + "net " + ip(pick(testing::kHosts) & 0xffffff00) + "/24";
    case 8:
      return dir + "port " + std::to_string(pick(testing::kPorts));
    case 9: {
      std::string proto = rng() % 2 ? "tcp " : "udp ";
      std::string d = pick(dirs);
      return proto + d + "port " + std::to_string(pick(testing::kPorts));
    }
    case 10:
      return "ip proto " + std::to_string(std::array<int, 4>{1, 6, 17, 47}[rng() % 4]);
    case 11:
      return fmt::format("ether proto {:#x}", std::array<int, 3>{0x800, 0x86dd, 0x806}[rng() % 3]);
    case 12:
      return "net " + ip(pick(testing::kHosts) & 0xff000000) + " mask 255.0.0.0";
    case 13: {  // (with a conjunction, sometimes a contradiction libpcap does not refuse)
      std::string op = rng() % 2 ? "less " : "greater ";
      return op + std::to_string(20 + rng() % 100);
    }
    default: {
      std::string host = ip(pick(testing::kHosts));
      return "src host " + host + " and dst port " + std::to_string(pick(testing::kPorts));
    }
  }
}

std::string random_expression(std::mt19937_64& rng, int depth) {
  if (depth == 0 || rng() % 3 == 0) {
    std::string p = random_primitive(rng);
    return rng() % 5 == 0 ? "not " + (p.find(' ') != std::string::npos ? "(" + p + ")" : p) : p;
  }
  std::string a = random_expression(rng, depth - 1), b = random_expression(rng, depth - 1);
  std::string op = rng() % 3 == 0 ? " or " : " and ";
  std::string e = "(" + a + ")" + op + "(" + b + ")";
  return rng() % 6 == 0 ? "not (" + e + ")" : e;
}

TEST(DpfPcap, AgreesWithLibpcapOnGeneratedPackets) {
  std::mt19937_64 rng(1996);
  size_t compared = 0, accepted = 0, empty = 0;
  for (int round = 0; round < 300; ++round) {
    Engine e;
    std::vector<std::string> exprs;
    std::vector<std::unique_ptr<Bpf>> bpf;
    int n = 1 + int(rng() % 5);
    for (int i = 0; i < n; ++i) {
      std::string x;
      std::optional<PcapFilter> f;
      // (A contradiction such as `icmp and ip proto 47`: libpcap's optimizer may refuse it;
      // else the lift finds that no path accepts and the id never matches.)
      while (!f) {
        x = random_expression(rng, int(rng() % 3));
        try {
          f = compile_pcap(x);
        } catch (const Error& err) {
          ASSERT_EQ(std::string(err.what()), "pcap filter: expression rejects all packets");
        }
      }
      empty += !f->lifted.opaque && f->lifted.disjuncts.empty();
      FilterId id = e.insert(*f, {.share = 1, .broad = true});
      ASSERT_EQ(id, FilterId(i + 1));
      exprs.push_back(x);
      bpf.push_back(std::make_unique<Bpf>(x));
    }
    for (int k = 0; k < 200; ++k) {
      Bytes p = testing::random_packet(rng);
      auto exact = testing::exact_copy(p);
      std::vector<FilterId> acc = e.accepting(exact.get(), p.size());
      for (int i = 0; i < n; ++i) {
        bool want = bpf[size_t(i)]->accepts(exact.get(), p.size(), p.size());
        bool mine = std::count(acc.begin(), acc.end(), FilterId(i + 1)) != 0;
        ASSERT_EQ(mine, want) << "`" << exprs[size_t(i)] << "` on " << p.size() << " bytes";
        ++compared;
        accepted += want;
      }
      FilterId got = e.demux(exact.get(), p.size());
      ASSERT_EQ(got, e.demux_reference(exact.get(), p.size()));
      ASSERT_EQ(got == 0, acc.empty());
      if (got) {
        ASSERT_TRUE(bpf[got - 1]->accepts(exact.get(), p.size(), p.size()));
      }
    }
  }
  EXPECT_GT(compared, 150000u);
  EXPECT_GT(accepted, compared / 10);
  // Expressions that accept no packet are inserted too.
  EXPECT_GT(empty, 0u);
  std::printf(
      "compared %zu filter/packet pairs exactly (%zu accepted; %zu expressions accept no packet)\n",
      compared, accepted, empty);
}

std::string error_of(const char* x) {
  try {
    compile_pcap(x);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

std::vector<Filter> lifted(const char* x) {
  PcapFilter f = compile_pcap(x);
  EXPECT_FALSE(f.lifted.opaque) << x;
  return f.lifted.disjuncts;
}

TEST(DpfPcap, ExpansionsAndErrors) {
  EXPECT_EQ(lifted("ip").size(), 1u);
  EXPECT_EQ(lifted("tcp").size(), 3u);  // IPv4, IPv6, IPv6 fragment header
  EXPECT_EQ(lifted("tcp dst port 80").size(), 2u);
  EXPECT_EQ(to_string(lifted("ip and not icmp")[0]), "(12:16 == 0x800) && (23:8 != 1)");
  EXPECT_EQ(to_string(lifted("udp src port 53")[1]),
            "(12:16 == 0x800) && (23:8 == 0x11) && ((20:16 & 0x1fff) == 0) && "
            "(SHIFT(((14:8 & 0xf) << 2) + 0xe)) && (0:16 == 0x35)");
  // Numbers as libpcap reads them: a leading 0 is octal.
  EXPECT_EQ(to_string(lifted("ip proto 017")[0]), "(12:16 == 0x800) && (23:8 == 0xf)");
  // What the hand-written parser refused, libpcap compiles.
  for (const char* x : {"vlan 10", "tcp port http", "tcp[0] = 1", "ether proto 100",
                        "net 10.0.0.0/8", "", "portrange 8000-8080"})
    EXPECT_NO_THROW(compile_pcap(x)) << x;
  // libpcap's own messages.
  EXPECT_EQ(error_of("host example.invalid"), "pcap filter: unknown host 'example.invalid'");
  EXPECT_EQ(error_of("ip and"), "pcap filter: can't parse filter expression: syntax error");
  EXPECT_EQ(error_of("vlan 5000"), "pcap filter: VLAN tag 5000 greater than maximum 4095");
  EXPECT_EQ(error_of("ip broadcast"),
            "pcap filter: netmask not known, so 'ip broadcast' not supported");
  EXPECT_EQ(error_of("ip and not ip"), "pcap filter: expression rejects all packets");
  EXPECT_EQ(error_of("ip[0:3] = 1"), "pcap filter: data size must be 1, 2, or 4");
  EXPECT_EQ(error_of("net 10.0.0.1/8"), "pcap filter: non-network bits set in \"10.0.0.1/8\"");
  // Not expressible as DPF filters: the program itself, run by the engine (opaque_test.cpp).
  PcapFilter chain = compile_pcap("ip6 protochain 6");
  EXPECT_TRUE(chain.lifted.opaque);
  EXPECT_EQ(chain.lifted.reason, "a backward jump (a loop, as protochain compiles to)");
  // Accepting no packet is no error: no disjunct (where libpcap's optimizer does not see it:
  // it refuses `ip and arp` itself).
  PcapFilter none = compile_pcap("less 10 and greater 20");
  EXPECT_TRUE(!none.lifted.opaque && none.lifted.disjuncts.empty());
}

TEST(DpfPcap, ProgramsAreLibpcaps) {
  PcapFilter f = compile_pcap("tcp port 80");
  Bpf reference("tcp port 80");
  EXPECT_FALSE(f.lifted.opaque);
  EXPECT_EQ(f.lifted.disjuncts.size(), 4u);
  EXPECT_EQ(bpf_image(f.program).substr(0, 14), "(000) ldh [12]");
  EXPECT_EQ(f.program.size(), 20u);
}

}  // namespace
}  // namespace exojit::dpf

namespace exojit::dpf {
namespace {

// Issue 17, requirement 3: connection filters written in tcpdump syntax still merge. 10,000 of
// them, each from libpcap's compiler and the lift, land in one hash node of the trie (its dump
// shows one table and every filter's path below it), and the code demultiplexes them flat: every
// connection's packet finds its filter, in one function (no second layer left over).
// Trusted owners' filters (unhardened code), and untrusted ones' (issue 20: hardened, the new
// base after the SHIFT guarded by bound_zero, which needs no register of its own): one table
// either way.
void ten_thousand_tcpdump_connections(bool trusted) {
  constexpr int kConnections = 10000;
  Engine e;
  auto src = [](int i) { return 0x0a000000u | uint32_t(i / 250) << 8 | uint32_t(i % 250 + 1); };
  auto sport = [](int i) { return uint16_t(1024 + i % 50000); };
  for (int i = 0; i < kConnections; ++i) {
    PcapFilter f = compile_pcap(
        fmt::format("tcp and src host {} and src port {} and dst host 192.168.0.1 and dst port 80",
                    ip(src(i)), sport(i)));
    ASSERT_EQ(f.lifted.disjuncts.size(), 1u) << f.expression;  // IPv4 hosts: one path
    ASSERT_EQ(e.insert(f, {.owner = uint32_t(i), .trusted = trusted}), FilterId(i + 1));
  }
  std::string dump = e.dump_trie();
  size_t tables = 0;
  for (size_t at = dump.find("(hash table"); at != std::string::npos;
       at = dump.find("(hash table", at + 1))
    ++tables;
  EXPECT_EQ(tables, 1u) << dump.substr(0, 2000);
  EXPECT_NE(dump.find("26:32 == one of 10000 keys (hash table)"), std::string::npos)
      << dump.substr(0, 2000);
  EXPECT_EQ(dump.find("searched after a miss"), std::string::npos);  // every key in the table
  EXPECT_FALSE(e.layered());
  for (int i = 0; i < kConnections; i += 7) {
    testing::Ipv4 s;
    s.src = src(i), s.dst = 0xc0a80001, s.sport = sport(i), s.dport = 80;
    Bytes p = testing::ipv4(s);
    ASSERT_EQ(e.demux(p.data(), p.size()), FilterId(i + 1));
    s.dport = 81;
    p = testing::ipv4(s);
    ASSERT_EQ(e.demux(p.data(), p.size()), 0u);
  }
}

TEST(DpfPcap, TenThousandTcpdumpConnectionsLandInOneHashNode) {
  ten_thousand_tcpdump_connections(true);
}

TEST(DpfPcap, TenThousandUntrustedTcpdumpConnectionsLandInOneHashNode) {
  ten_thousand_tcpdump_connections(false);
}

}  // namespace
}  // namespace exojit::dpf
