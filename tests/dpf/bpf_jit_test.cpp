// SPDX-License-Identifier: MIT
// The classic-BPF JIT against libpcap's bpf_filter (the reference interpreter) and against the
// vcode interpreter running the same generated function: random valid programs of every
// instruction, libpcap's own programs for real expressions (including protochain's loop), and
// packets of every length, each placed flush against a PROT_NONE page so that any read past its
// end faults. Plus the validator's refusals.
#include <exojit/dpf/bpf.h>
#include <exojit/dpf/pcap.h>
#include <exojit/error.h>
#include <exojit/vcode/interp.h>
#include <gtest/gtest.h>
#include <pcap/pcap.h>

#include <chrono>
#include <string>

#include "guarded.h"
#include "packets.h"
#include "random_bpf.h"

namespace exojit::dpf {
namespace {

using namespace testing::op;
using testing::Bytes;
using testing::jump;
using testing::stmt;

uint32_t libpcap(const std::vector<BpfInsn>& p, const uint8_t* pkt, size_t wire, size_t cap) {
  return bpf_filter(reinterpret_cast<const bpf_insn*>(p.data()), pkt, u_int(wire), u_int(cap));
}

// libpcap's optimized program for an expression (pcap_compile on a DLT_EN10MB dead handle).
std::vector<BpfInsn> pcap_program(const std::string& expr) {
  return compile_pcap_bpf(expr);
}

std::string refusal(std::vector<BpfInsn> p) {
  try {
    validate_bpf(p);
  } catch (const Error& e) {
    EXPECT_THROW(compile_bpf(p), Error);
    return e.what();
  }
  return "valid";
}

TEST(BpfJit, ValidatorRefusesWhatTheKernelRefuses) {
  EXPECT_EQ(refusal({}), "bpf: empty program");
  EXPECT_EQ(refusal(std::vector<BpfInsn>(kBpfMaxInsns + 1, stmt(kRetK, 0))),
            "bpf: 65537 instructions (at most 65536)");
  EXPECT_EQ(refusal({stmt(0x0e, 0)}), "bpf: instruction 0 `unknown opcode 0xe`: unknown opcode");
  EXPECT_EQ(refusal({stmt(0x120, 0), stmt(kRetK, 0)}),
            "bpf: instruction 0 `unknown opcode 0x120`: unknown opcode");
  EXPECT_EQ(refusal({stmt(kLdMem, 16), stmt(kRetA, 0)}),
            "bpf: instruction 0 `ld M[16]`: no such scratch memory word");
  EXPECT_EQ(refusal({stmt(kStx, 99), stmt(kRetA, 0)}),
            "bpf: instruction 0 `stx M[99]`: no such scratch memory word");
  EXPECT_EQ(refusal({stmt(kAlu | 0x30, 0), stmt(kRetA, 0)}),
            "bpf: instruction 0 `div #0`: division by the constant 0");
  EXPECT_EQ(refusal({stmt(kAlu | 0x90, 0), stmt(kRetA, 0)}),
            "bpf: instruction 0 `mod #0`: division by the constant 0");
  EXPECT_EQ(refusal({stmt(kAlu | 0x60, 32), stmt(kRetA, 0)}),
            "bpf: instruction 0 `lsh #32`: shift by 32 bits or more");
  EXPECT_EQ(refusal({jump(kJeq, 1, 0, 1), stmt(kRetA, 0)}),
            "bpf: instruction 0 `jeq #0x1 jt 1 jf 2`: jumps outside the program");
  EXPECT_EQ(refusal({stmt(kJa, 1), stmt(kRetA, 0)}),
            "bpf: instruction 0 `ja 2`: jumps outside the program");
  EXPECT_EQ(refusal({stmt(kRetA, 0), stmt(kJa, 0xfffffffd)}),
            "bpf: instruction 1 `ja -1`: jumps outside the program");
  EXPECT_EQ(refusal({stmt(kJa, 0xffffffff), stmt(kRetA, 0)}),
            "bpf: instruction 0 `ja 0`: jumps to itself");
  EXPECT_EQ(refusal({stmt(kLdImm, 1)}), "bpf: the last instruction `ld #0x1` is not a ret");
  // Backward `ja` is libpcap's (protochain): accepted.
  EXPECT_EQ(refusal({stmt(kLdImm, 1), stmt(kJeq, 0), stmt(kJa, 0xfffffffd), stmt(kRetA, 0)}),
            "valid");
}

TEST(BpfJit, ImageReadsLikeBpfDump) {
  std::vector<BpfInsn> p = pcap_program("tcp dst port 80");
  std::string text = bpf_image(p);
  EXPECT_NE(text.find("(000) ldh [12]\n(001) jeq #0x86dd jt 2 jf 6\n"), std::string::npos) << text;
  EXPECT_NE(text.find("ldxb 4*([14]&0xf)\n"), std::string::npos) << text;
  EXPECT_NE(text.find("ldh [x + 16]\n"), std::string::npos) << text;
  EXPECT_NE(text.find("ret #262144\n"), std::string::npos) << text;
}

// The JIT, the vcode interpreter on the same function, and libpcap on one packet (every prefix
// of it, each flush against the guard page); wirelen also differs from caplen.
void check_packet(const std::vector<BpfInsn>& p, const BpfFilter& jit, vcode::Interpreter& interp,
                  const Bytes& pkt, testing::GuardedPages& guard, const std::string& what) {
  for (size_t cap = 0; cap <= pkt.size(); ++cap) {
    const uint8_t* at = guard.place(pkt.data(), cap);
    for (size_t wire : {cap, pkt.size() + 7}) {
      uint32_t want = libpcap(p, at, wire, cap);
      uint32_t got = jit(at, wire, cap);
      ASSERT_EQ(got, want) << what << " on " << cap << " of " << pkt.size() << " bytes, wirelen "
                           << wire << "\n"
                           << bpf_image(p);
      uint32_t ref = interp.run<uint32_t>("bpf_filter", at, uint64_t(wire), uint64_t(cap));
      ASSERT_EQ(ref, want) << what << " (vcode interpreter) on " << cap << " bytes\n"
                           << bpf_image(p);
    }
  }
}

TEST(BpfJit, RandomProgramsEqualLibpcap) {
  std::mt19937_64 rng(1990);
  testing::GuardedPages guard(4096);
  size_t programs = 0, accepted = 0;
  for (int round = 0; round < 1500; ++round) {
    std::vector<BpfInsn> p = testing::random_bpf(rng);
    ASSERT_NO_THROW(validate_bpf(p)) << bpf_image(p);
    // Trusted and untrusted (hardened: blinded, loads masked) in turn.
    BpfFilter jit = compile_bpf(p, {.trusted = round % 2 == 0});
    vcode::Interpreter interp(jit.module());
    ++programs;
    for (int k = 0; k < 6; ++k) {
      Bytes pkt(rng() % 80);
      for (auto& b : pkt) b = uint8_t(rng() % 4 == 0 ? rng() % 4 : rng());
      check_packet(p, jit, interp, pkt, guard, "random program " + std::to_string(round));
      if (HasFatalFailure()) return;
      accepted += libpcap(p, pkt.data(), pkt.size(), pkt.size()) != 0;
    }
  }
  EXPECT_GT(accepted, size_t(programs));  // the programs are not all trivially rejecting
}

TEST(BpfJit, LibpcapProgramsEqualLibpcap) {
  const char* exprs[] = {
      "ip",
      "tcp port 80",
      "udp dst port 53 or icmp",
      "host 192.168.0.1 and not port 22",
      "vlan and tcp",
      "ip[2:2] - ip[0] > 2",
      "tcp[tcpflags] & (tcp-syn|tcp-fin) != 0",
      "ip[0] & 0xf != 5",
      "greater 60",
      "less 40",
      "len * 2 / 3 % 7 = 1",
      "ip[1] << 2 >> 1 = 4",
      "ip6 protochain 6",
      "ip protochain 17",
      "geneve and ip",
      "portrange 1000-2000",
      "ether host 02:03:04:05:06:07",
      "ip and ip[6:2] & 0x1fff = 0",
      "tcp[0:2] = 1234 and tcp[2:2] = 80",
  };
  std::mt19937_64 rng(7);
  testing::GuardedPages guard(4096);
  for (const char* e : exprs) {
    std::vector<BpfInsn> p = pcap_program(e);
    BpfFilter jit = compile_bpf(p);
    vcode::Interpreter interp(jit.module());
    for (int k = 0; k < 60; ++k) {
      Bytes pkt = testing::random_packet(rng);
      check_packet(p, jit, interp, pkt, guard, e);
      if (HasFatalFailure()) return;
    }
  }
}

// IPv6 with a chain of extension headers (hop-by-hop 0, destination options 60, routing 43,
// fragment 44, AH 51), then `last`.
Bytes ipv6_chain(const std::vector<uint8_t>& headers, uint8_t last) {
  Bytes b = testing::ethernet(0x86dd, 40);
  b[14] = 0x60;
  b[20] = headers.empty() ? last : headers[0];
  for (size_t i = 0; i < headers.size(); ++i) {
    uint8_t next = i + 1 < headers.size() ? headers[i + 1] : last;
    size_t at = b.size();
    b.resize(at + 8, 0);
    b[at] = next;  // length byte 0: 8 bytes
  }
  b.resize(b.size() + 20, 0);
  return b;
}

TEST(BpfJit, ProtochainLoopsEqualLibpcapAndStopOnALoopingPacket) {
  std::vector<BpfInsn> p = pcap_program("ip6 protochain 6");
  BpfFilter jit = compile_bpf(p);
  vcode::Interpreter interp(jit.module());
  testing::GuardedPages guard(4096);
  std::mt19937_64 rng(3);
  // (No AH here: libpcap 1.10 takes its length as the new offset, not added to the old one, and
  // may loop forever on what follows.)
  static constexpr uint8_t kinds[] = {0, 60, 43, 44};
  for (int round = 0; round < 200; ++round) {
    std::vector<uint8_t> chain(rng() % 6);
    for (auto& h : chain) h = kinds[rng() % 4];
    Bytes pkt = ipv6_chain(chain, rng() % 2 ? 6 : 17);
    check_packet(p, jit, interp, pkt, guard, "protochain");
    if (HasFatalFailure()) return;
  }
  EXPECT_NE(jit(ipv6_chain({0, 60, 43}, 6).data(), ipv6_chain({0, 60, 43}, 6).size()), 0u);
  // An AH header whose length brings X back to itself: libpcap 1.10 loops forever on it;
  // libpcap >= 1.11 and the JIT give up after kBpfMaxBackwardJumps backward jumps.
  Bytes loop = ipv6_chain({51}, 51);
  loop[55] = 8;  // X = (8 + 2) * 4 = 40: the same AH header again
  loop[54] = 51;
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(jit(loop.data(), loop.size()), 0u);
  EXPECT_EQ(
      interp.run<uint32_t>("bpf_filter", loop.data(), uint64_t(loop.size()), uint64_t(loop.size())),
      0u);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

TEST(BpfJit, EdgeCasesOfTheInstructionSet) {
  auto run = [](std::vector<BpfInsn> p, Bytes pkt, size_t wire = ~size_t(0)) {
    BpfFilter f = compile_bpf(p);
    return f(pkt.data(), wire == ~size_t(0) ? pkt.size() : wire, pkt.size());
  };
  Bytes pkt{1, 2, 3, 4, 5, 6, 7, 8};
  // Division and modulo by X = 0 reject (the kernel's rule); by a constant they compute.
  EXPECT_EQ(run({stmt(kLdImm, 7), stmt(kAlu | kSrcX | 0x30, 0), stmt(kRetA, 0)}, pkt), 0u);
  EXPECT_EQ(run({stmt(kLdImm, 7), stmt(kAlu | kSrcX | 0x90, 0), stmt(kRetA, 0)}, pkt), 0u);
  EXPECT_EQ(run({stmt(kLdImm, 7), stmt(kAlu | 0x90, 4), stmt(kRetA, 0)}, pkt), 3u);
  // Shifts by X of 32 or more give 0 (libpcap), not the hardware's count modulo 32.
  EXPECT_EQ(
      run({stmt(kLdImm, 5), stmt(kLdxImm, 33), stmt(kAlu | kSrcX | 0x60, 0), stmt(kRetA, 0)}, pkt),
      0u);
  EXPECT_EQ(
      run({stmt(kLdImm, 5), stmt(kLdxImm, 31), stmt(kAlu | kSrcX | 0x60, 0), stmt(kRetA, 0)}, pkt),
      0x80000000u);
  // 32-bit arithmetic wraps; neg is 0 - A.
  EXPECT_EQ(run({stmt(kLdImm, 1), stmt(kNeg, 0), stmt(kRetA, 0)}, pkt), 0xffffffffu);
  EXPECT_EQ(run({stmt(kLdImm, 0x80000000u), stmt(kAlu | 0x20, 2), stmt(kRetA, 0)}, pkt), 0u);
  // Loads: big-endian; one byte past the end rejects; `ld len` is the wire length.
  EXPECT_EQ(run({stmt(kLdW, 4), stmt(kRetA, 0)}, pkt), 0x05060708u);
  EXPECT_EQ(run({stmt(kLdW, 5), stmt(kRetK, 1)}, pkt), 0u);
  EXPECT_EQ(run({stmt(kLdxMsh, 0), stmt(kRetK, 0), stmt(kRetA, 0)}, pkt), 0u);
  EXPECT_EQ(run({stmt(kLdxMsh, 0), stmt(kTxa, 0), stmt(kRetA, 0)}, pkt), 4u);
  EXPECT_EQ(run({stmt(kLdLen, 0), stmt(kRetA, 0)}, pkt, 1500), 1500u);
  // X + k wraps past 2^32 in 32 bits: still out of bounds (libpcap checks without wrapping).
  EXPECT_EQ(run({stmt(kLdxImm, 0xfffffffe), stmt(kLdIndB, 3), stmt(kRetK, 1)}, pkt), 0u);
  EXPECT_EQ(run({stmt(kLdxImm, 3), stmt(kLdIndH, 5), stmt(kRetK, 1)}, pkt), 0u);
  EXPECT_EQ(run({stmt(kLdxImm, 3), stmt(kLdIndH, 3), stmt(kRetA, 0)}, pkt), 0x0708u);
  // Scratch memory read before any write is 0.
  EXPECT_EQ(run({stmt(kLdMem, 5), stmt(kRetA, 0)}, pkt), 0u);
  EXPECT_EQ(
      run({stmt(kLdImm, 9), stmt(kSt, 15), stmt(kLdxMem, 15), stmt(kTxa, 0), stmt(kRetA, 0)}, pkt),
      9u);
  // A backward loop that never ends: rejected after kBpfMaxBackwardJumps jumps.
  EXPECT_EQ(run({stmt(kLdImm, 1), stmt(kAlu, 1), stmt(kJa, 0xfffffffe), stmt(kRetA, 0)}, pkt), 0u);
  // Counting loop: 10 backward jumps, then A = 10.
  EXPECT_EQ(run({stmt(kAlu, 1), jump(kJeq, 10, 1, 0), stmt(kJa, 0xfffffffd), stmt(kRetA, 0)}, pkt),
            10u);
  EXPECT_EQ(run({stmt(kAlu, 1), jump(kJeq, 65, 1, 0), stmt(kJa, 0xfffffffd), stmt(kRetA, 0)}, pkt),
            65u);
  EXPECT_EQ(run({stmt(kAlu, 1), jump(kJeq, 66, 1, 0), stmt(kJa, 0xfffffffd), stmt(kRetA, 0)}, pkt),
            0u);
}

TEST(BpfJit, HoistsBoundsChecks) {
  // Connection filter (Table 3, variable header): one check for the fixed-offset loads and one
  // for the two port loads after the variable IP header.
  std::vector<BpfInsn> p = pcap_program(
      "tcp and ip src 192.0.2.1 and ip dst 10.0.0.1 and tcp[0:2] == 1234 and tcp[2:2] == 80");
  BpfFilter f = compile_bpf(p);
  size_t length_checks = 0;
  const vcode::Function& fn = *f.module().functions()[0];
  for (const vcode::Insn& in : fn.code)
    if (vcode::is_branch(in.op) && (in.a == fn.params[2].id || in.b == fn.params[2].id))
      ++length_checks;
  EXPECT_EQ(length_checks, 2u);
}

}  // namespace
}  // namespace exojit::dpf
