// The pcap-filter front end against libpcap: the same expressions compiled by libpcap
// (pcap_compile, optimized) and by dpf, on generated packets of every kind, must accept the same
// packets. libpcap rejects a packet as soon as one of its loads falls past the end (whatever
// else the expression says); dpf only makes that atom false (pcap.h). So where libpcap's answer
// depends on bytes past the end (it changes when the packet is padded), dpf must accept whatever
// libpcap accepts; everywhere else the answers must be equal.
#include <exojit/dpf/engine.h>
#include <exojit/dpf/pcap.h>
#include <exojit/error.h>
#include <gtest/gtest.h>
#include <pcap/pcap.h>

#include "packets.h"

namespace exojit::dpf {
namespace {

using testing::Bytes;

class Bpf {
 public:
  explicit Bpf(const std::string& expr) {
    pcap_t* dead = pcap_open_dead(DLT_EN10MB, 65535);
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

std::string random_primitive(std::mt19937_64& rng) {
  auto pick = [&](auto& pool) { return pool[rng() % std::size(pool)]; };
  static const char* dirs[] = {"", "src ", "dst "};
  switch (rng() % 14) {
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
      return std::string(pick(dirs)) + "host " + ip(pick(testing::kHosts));
    case 7:
      return std::string(pick(dirs)) + "net " + ip(pick(testing::kHosts) & 0xffffff00) + "/24";
    case 8:
      return std::string(pick(dirs)) + "port " + std::to_string(pick(testing::kPorts));
    case 9:
      return std::string(rng() % 2 ? "tcp " : "udp ") + pick(dirs) + "port " +
             std::to_string(pick(testing::kPorts));
    case 10:
      return "ip proto " + std::to_string(std::array<int, 4>{1, 6, 17, 47}[rng() % 4]);
    case 11:
      return fmt::format("ether proto {:#x}", std::array<int, 3>{0x800, 0x86dd, 0x806}[rng() % 3]);
    case 12:
      return "net " + ip(pick(testing::kHosts) & 0xff000000) + " mask 255.0.0.0";
    default:
      return "src host " + ip(pick(testing::kHosts)) + " and dst port " +
             std::to_string(pick(testing::kPorts));
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
  size_t compared = 0, past_end = 0;
  for (int round = 0; round < 300; ++round) {
    Engine e;
    std::vector<std::string> exprs;
    std::vector<std::unique_ptr<Bpf>> bpf;
    int n = 1 + int(rng() % 5);
    for (int i = 0; i < n; ++i) {
      std::string x;
      std::vector<Filter> d;
      while (d.empty()) {  // (a contradiction such as `icmp and ip proto 47` is an error)
        x = random_expression(rng, int(rng() % 3));
        try {
          d = compile_pcap(x);
        } catch (const Error& err) {
          ASSERT_NE(std::string(err.what()).find("can never be true"), std::string::npos);
        }
      }
      FilterId id = e.insert(std::span<const Filter>(d), {.share = 1, .broad = true});
      ASSERT_EQ(id, FilterId(i + 1));
      exprs.push_back(x);
      bpf.push_back(std::make_unique<Bpf>(x));
    }
    for (int k = 0; k < 200; ++k) {
      Bytes p = testing::random_packet(rng);
      auto exact = testing::exact_copy(p);
      Bytes zeros = p, ones = p;
      zeros.resize(p.size() + 80, 0);
      ones.resize(p.size() + 80, 0xff);
      std::vector<FilterId> acc = e.accepting(exact.get(), p.size());
      for (int i = 0; i < n; ++i) {
        bool r0 = bpf[size_t(i)]->accepts(exact.get(), p.size(), p.size());
        bool rz = bpf[size_t(i)]->accepts(zeros.data(), zeros.size(), zeros.size());
        bool rf = bpf[size_t(i)]->accepts(ones.data(), ones.size(), ones.size());
        bool mine = std::count(acc.begin(), acc.end(), FilterId(i + 1)) != 0;
        std::string what = fmt::format("`{}` on {} bytes: libpcap {} (padded {} {}), dpf {}",
                                       exprs[size_t(i)], p.size(), r0, rz, rf, mine);
        if (r0 == rz && r0 == rf) {
          ASSERT_EQ(mine, r0) << what;
          ++compared;
        } else {
          ASSERT_TRUE(!r0 || mine) << what;
          ++past_end;
        }
      }
      FilterId got = e.demux(exact.get(), p.size());
      ASSERT_EQ(got, e.demux_reference(exact.get(), p.size()));
      ASSERT_EQ(got == 0, acc.empty());
    }
  }
  EXPECT_GT(compared, 50000u);
  EXPECT_LT(past_end, compared / 10);
  std::printf("compared %zu filter/packet pairs exactly, %zu where libpcap read past the end\n",
              compared, past_end);
}

TEST(DpfPcap, ExpansionsAndErrors) {
  EXPECT_EQ(compile_pcap("ip").size(), 1u);
  EXPECT_EQ(compile_pcap("tcp").size(), 3u);  // IPv4, IPv6, IPv6 fragment header
  EXPECT_EQ(compile_pcap("tcp dst port 80").size(), 2u);
  EXPECT_EQ(to_string(compile_pcap("ip and not icmp")[0]), "(12:16 == 0x800) && (23:8 != 1)");
  EXPECT_EQ(to_string(compile_pcap("udp src port 53")[1]),
            "(12:16 == 0x800) && ((20:16 & 0x1fff) == 0) && (23:8 == 0x11) && "
            "(SHIFT(0xe)) && (SHIFT((0:8 & 0xf) << 2)) && (0:16 == 0x35)");
  auto error_of = [](const char* x) {
    try {
      compile_pcap(x);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(error_of("vlan 10"), "pcap filter: unsupported token 'vlan'");
  EXPECT_EQ(error_of("host example.com"), "pcap filter: unsupported token 'example.com'");
  EXPECT_EQ(error_of("tcp port http"), "pcap filter: unsupported token 'http'");
  EXPECT_EQ(error_of("ip and"), "pcap filter: unexpected end of expression");
  EXPECT_EQ(error_of("ether proto 100"), "pcap filter: unsupported token '100'");
  EXPECT_EQ(error_of("tcp[0] = 1"), "pcap filter: unsupported token '['");
  EXPECT_EQ(error_of("net 10.0.0.1/8"),
            "pcap filter: '10.0.0.1/8' has bits set outside its netmask");
  EXPECT_EQ(error_of("ip and not ip"), "pcap filter: `ip and not ip` can never be true");
  EXPECT_EQ(error_of(""), "pcap filter: empty expression");
}

}  // namespace
}  // namespace exojit::dpf
