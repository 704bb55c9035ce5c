// SPDX-License-Identifier: MIT
// The lift (classic BPF -> DPF filters) against libpcap's bpf_filter: random programs of every
// instruction and libpcap's programs for real expressions; whenever the lift succeeds, the
// disjunction of its filters (each on its own, and inserted alone in an engine) accepts exactly
// the packets libpcap accepts, truncated and garbage ones included. Plus the shapes it produces.
#include <exojit/dpf/engine.h>
#include <exojit/dpf/lift.h>
#include <exojit/dpf/pcap.h>
#include <exojit/error.h>
#include <gtest/gtest.h>
#include <pcap/pcap.h>

#include "packets.h"
#include "random_bpf.h"

namespace exojit::dpf {
namespace {

using testing::Bytes;

// libpcap's optimized program for an expression (pcap_compile on a DLT_EN10MB dead handle).
std::vector<BpfInsn> pcap_program(const std::string& expr) {
  return compile_pcap_bpf(expr);
}

bool libpcap(const std::vector<BpfInsn>& p, const Bytes& pkt) {
  return bpf_filter(reinterpret_cast<const bpf_insn*>(p.data()), pkt.data(), u_int(pkt.size()),
                    u_int(pkt.size())) != 0;
}

// The lifted filters on one packet: each on its own (any accepts), and the engine.
void check(const std::vector<BpfInsn>& p, const Lifted& l, Engine* e, const Bytes& pkt,
           const std::string& what) {
  auto exact = testing::exact_copy(pkt);
  bool want = libpcap(p, pkt);
  bool any = false;
  for (const Filter& f : l.disjuncts) any = any || matches(f, exact.get(), pkt.size());
  std::string filters;
  for (const Filter& f : l.disjuncts) filters += to_string(f) + "\n";
  ASSERT_EQ(any, want) << what << " on " << pkt.size() << " bytes\n" << bpf_image(p) << filters;
  if (e) {
    ASSERT_EQ(e->demux(exact.get(), pkt.size()) != 0, want) << what << " (engine)\n" << filters;
  }
}

TEST(DpfLift, RandomProgramsEqualLibpcap) {
  std::mt19937_64 rng(2024);
  size_t lifted = 0, opaque = 0, compared = 0, accepted = 0;
  for (int round = 0; round < 3000; ++round) {
    std::vector<BpfInsn> p = testing::random_bpf(rng, 24);
    Lifted l = lift_bpf(p);
    if (l.opaque) {
      ++opaque;
      continue;
    }
    ++lifted;
    std::unique_ptr<Engine> e;
    if (!l.disjuncts.empty()) {
      e = std::make_unique<Engine>();
      e->insert(std::span<const Filter>(l.disjuncts), {.broad = true});
    }
    for (int k = 0; k < 12; ++k) {
      Bytes pkt(rng() % 80);
      for (auto& b : pkt) b = uint8_t(rng() % 3 == 0 ? rng() % 4 : rng());
      if (rng() % 2 && pkt.size() > 14) pkt[14] = uint8_t(0x40 | (rng() % 16));
      check(p, l, e.get(), pkt, "random program " + std::to_string(round));
      if (HasFatalFailure()) return;
      ++compared;
      accepted += libpcap(p, pkt);
    }
  }
  std::printf("random programs: %zu lifted, %zu opaque; %zu packets compared, %zu accepted\n",
              lifted, opaque, compared, accepted);
  EXPECT_GT(lifted, opaque / 4);
  EXPECT_GT(accepted, compared / 10);  // both answers are well represented
}

TEST(DpfLift, LibpcapProgramsEqualLibpcap) {
  const char* exprs[] = {
      "ip",
      "tcp port 80",
      "udp dst port 53 or icmp",
      "host 192.168.0.1 and not port 22",
      "vlan and tcp",
      "vlan 100 and vlan 200 and ip",
      "ip[2:2] - ip[0] > 2",
      "tcp[tcpflags] & (tcp-syn|tcp-fin) != 0",
      "ip[0] & 0xf != 5",
      "greater 60",
      "less 40",
      "len - 14 > 20",
      "ip[1] << 2 >> 1 = 4",
      "geneve and ip",
      "portrange 1000-2000",
      "ether host 02:03:04:05:06:07",
      "ip and ip[6:2] & 0x1fff = 0",
      "tcp[0:2] = 1234 and tcp[2:2] = 80",
      "not (tcp or udp)",
      "tcp[2:2] > tcp[0:2]",
      "ip[9] = ip[8] * 2",
  };
  std::mt19937_64 rng(8);
  for (const char* x : exprs) {
    std::vector<BpfInsn> p = pcap_program(x);
    Lifted l = lift_bpf(p);
    ASSERT_FALSE(l.opaque) << x << ": " << l.reason << "\n" << bpf_image(p);
    Engine e;
    if (!l.disjuncts.empty()) e.insert(std::span<const Filter>(l.disjuncts), {.broad = true});
    for (int k = 0; k < 300; ++k) {
      Bytes pkt = testing::random_packet(rng);
      check(p, l, l.disjuncts.empty() ? nullptr : &e, pkt, x);
      if (HasFatalFailure()) return;
    }
  }
}

std::string lifted_text(const std::string& expr) {
  Lifted l = lift_bpf(pcap_program(expr));
  if (l.opaque) return "opaque: " + l.reason;
  std::string out;
  for (const Filter& f : l.disjuncts) out += to_string(f) + "\n";
  return out;
}

TEST(DpfLift, Shapes) {
  // A connection filter: one conjunction, its header SHIFT as a hand-written filter has it.
  EXPECT_EQ(lifted_text("tcp and src host 192.0.2.1 and dst host 10.0.0.1 and src port 1234 "
                        "and dst port 80"),
            "(12:16 == 0x800) && (23:8 == 6) && (26:32 == 0xc0000201) && "
            "(30:32 == 0xa000001) && ((20:16 & 0x1fff) == 0) && "
            "(SHIFT(((14:8 & 0xf) << 2) + 0xe)) && (0:16 == 0x4d2) && (2:16 == 0x50)\n");
  EXPECT_EQ(lifted_text("greater 1000"), "(LEN >= 0x3e8)\n");
  EXPECT_EQ(lifted_text("less 100"), "(LEN <= 0x64)\n");
  Lifted none = lift_bpf(std::vector<BpfInsn>{testing::stmt(testing::op::kRetK, 0)});
  EXPECT_TRUE(!none.opaque && none.disjuncts.empty());  // accepts nothing
  EXPECT_EQ(lifted_text("ip or not ip"), "\n");         // one empty filter: accepts everything
  EXPECT_EQ(lifted_text("ip6 protochain 6"),
            "opaque: a backward jump (a loop, as protochain compiles to)");
  EXPECT_EQ(lifted_text("ip[0] / 3 = 1"), "opaque: a division by 3 (not a power of two)");
  EXPECT_EQ(lifted_text("ip[0] / 4 = 1"), "(12:16 == 0x800) && ((14:8 >> 2) == 1)\n");
}

TEST(DpfLift, GuardsLoadsNoAtomReads) {
  // ld [x + 20] whose value nothing tests, then ret: the packet must still hold the bytes.
  using namespace testing::op;
  std::vector<BpfInsn> p = {testing::stmt(kLdxMsh, 14), testing::stmt(kLdIndW, 20),
                            testing::stmt(kRetK, 1)};
  Lifted l = lift_bpf(p);
  ASSERT_FALSE(l.opaque) << l.reason;
  ASSERT_EQ(l.disjuncts.size(), 1u);
  EXPECT_EQ(to_string(l.disjuncts[0]), "(SHIFT(((14:8 & 0xf) << 2) + 0x17)) && (0:8 <= 0xff)");
  for (size_t len = 0; len < 80; ++len) {
    Bytes pkt(len, 0x45);
    check(p, l, nullptr, pkt, "guard");
  }
}

TEST(DpfLift, RefusesInvalidPrograms) {
  EXPECT_THROW(lift_bpf(std::vector<BpfInsn>{testing::stmt(0x0e, 0)}), Error);
}

}  // namespace
}  // namespace exojit::dpf
