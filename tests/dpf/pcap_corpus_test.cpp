// SPDX-License-Identifier: MIT
// The tcpdump language, end to end, against libpcap: every expression of the corpus
// (data/pcap_corpus.txt: every primitive of pcap-filter(7) that applies to Ethernet) compiled by
// compile_pcap, on generated frames of every encapsulation (pcap_packets.h), truncated and
// garbage ones included:
//   - refused by libpcap: an exojit::Error carrying libpcap's own message;
//   - the classic-BPF JIT of libpcap's program returns what pcap_offline_filter returns;
//   - every expression libpcap compiles -- lifted, opaque or accepting nothing -- inserted alone
//     in an engine accepts exactly what libpcap accepts (code, trie walk and accepting());
//   - all of them in one engine: each id accepts exactly where libpcap does, and the winner is
//     the model's (tests/dpf/model.h: most specific, then lowest id), always one libpcap
//     accepts.
// The counts (lifted / opaque / refused) are printed and checked, so that a change shows.
#include <exojit/dpf/engine.h>
#include <exojit/dpf/pcap.h>
#include <exojit/error.h>
#include <gtest/gtest.h>
#include <pcap/pcap.h>

#include <fstream>
#include <map>
#include <sstream>

#include "guarded.h"
#include "model.h"
#include "pcap_packets.h"

namespace exojit::dpf {
namespace {

std::vector<std::string> corpus() {
  std::ifstream in(PCAP_CORPUS);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);)
    if (!line.empty() && line[0] != '#') out.push_back(line);
  return out;
}

std::vector<std::vector<uint8_t>> frames(size_t n) {
  testing::FrameMaker m(17);
  std::vector<std::vector<uint8_t>> out;
  for (size_t i = 0; i < n; ++i) out.push_back(m.next());
  return out;
}

uint32_t libpcap(const PcapFilter& f, const uint8_t* p, size_t len) {
  bpf_program prog{u_int(f.program.size()),
                   const_cast<bpf_insn*>(reinterpret_cast<const bpf_insn*>(f.program.data()))};
  pcap_pkthdr h{};
  h.caplen = h.len = bpf_u_int32(len);
  return uint32_t(pcap_offline_filter(&prog, &h, p));
}

TEST(DpfPcapCorpus, EveryExpressionEqualsLibpcap) {
  std::vector<std::string> exprs = corpus();
  ASSERT_GT(exprs.size(), 200u);
  std::vector<std::vector<uint8_t>> packets = frames(1500);
  testing::GuardedPages guard(4096);
  size_t lifted = 0, opaque = 0, empty = 0, refused = 0, accepted = 0, disjuncts = 0;
  std::map<std::string, size_t> reasons;
  Engine all;  // every expression libpcap compiles
  std::vector<std::pair<FilterId, PcapFilter>> in_all;
  for (const std::string& x : exprs) {
    PcapFilter f;
    try {
      f = compile_pcap(x);
    } catch (const Error& e) {
      ++refused;
      EXPECT_EQ(std::string(e.what()).substr(0, 13), "pcap filter: ") << x;
      std::printf("refused by libpcap: %-40s %s\n", x.c_str(), e.what() + 13);
      continue;
    }
    BpfFilter jit = compile_bpf(f.program);
    if (f.lifted.opaque) {
      ++opaque;
      ++reasons[f.lifted.reason];
      std::printf("opaque: %-40s (%s)\n", x.c_str(), f.lifted.reason.c_str());
    } else {
      ++lifted;
      empty += f.lifted.disjuncts.empty();
      disjuncts += f.lifted.disjuncts.size();
    }
    Engine alone;
    FilterId id = alone.insert(f, {.broad = true});
    ASSERT_EQ(alone.opaque(id), f.lifted.opaque) << x;
    in_all.emplace_back(all.insert(f, {.share = 1, .broad = true}), f);
    for (const auto& p : packets) {
      uint32_t want = libpcap(f, p.data(), p.size());
      accepted += want != 0;
      const uint8_t* at = guard.place(p.data(), p.size());
      ASSERT_EQ(jit(at, p.size()), want) << x << " (JIT) on a " << p.size() << "-byte frame";
      FilterId got = alone.demux(at, p.size());
      ASSERT_EQ(got, want ? id : 0) << x << (f.lifted.opaque ? " (opaque)" : " (lifted)")
                                    << " on a " << p.size() << "-byte frame\n"
                                    << bpf_image(f.program);
      ASSERT_EQ(alone.demux_reference(at, p.size()), got) << x;
    }
  }
  // Every expression in one engine.
  size_t won = 0, won_opaque = 0;
  for (const auto& p : packets) {
    const uint8_t* at = guard.place(p.data(), p.size());
    std::vector<FilterId> acc = all.accepting(at, p.size());
    std::vector<FilterId> want;
    FilterId best = 0;
    unsigned best_spec = 0;
    for (const auto& [id, f] : in_all) {
      if (!libpcap(f, p.data(), p.size())) continue;
      want.push_back(id);
      // The model's winner: an opaque filter by its program's measure, a lifted one by its
      // most specific accepting disjunct (the engine's measure, checked against the model
      // elsewhere).
      unsigned spec = 0;
      if (f.lifted.opaque) {
        spec = testing::Model::specificity(f.program);
        EXPECT_EQ(all.specificity(id), std::vector<unsigned>{spec}) << f.expression;
      } else {
        std::vector<unsigned> s = all.specificity(id);
        for (size_t i = 0; i < f.lifted.disjuncts.size(); ++i)
          if (testing::Model::accepts(f.lifted.disjuncts[i], at, p.size()))
            spec = std::max(spec, s[i]);
      }
      if (best == 0 || spec > best_spec) best = id, best_spec = spec;
    }
    ASSERT_EQ(acc, want) << "every expression in one engine";
    FilterId winner = all.demux(at, p.size());
    ASSERT_EQ(winner, best) << "the winner rule";
    ASSERT_EQ(all.demux_reference(at, p.size()), winner);
    if (winner) {
      ++won;
      won_opaque += all.opaque(winner);
    }
  }
  std::printf(
      "%zu expressions: %zu lifted (%zu filters; %zu accept no packet), %zu opaque, %zu refused "
      "by libpcap; %zu frames, %zu accepted verdicts; %zu frames won by one of %zu expressions "
      "in one engine (%zu by an opaque one)\n",
      exprs.size(), lifted, disjuncts, empty, opaque, refused, packets.size(), accepted, won,
      in_all.size(), won_opaque);
  for (auto& [why, n] : reasons) std::printf("  opaque x%zu: %s\n", n, why.c_str());
  // The corpus's split (README): what lifts, what stays a classic-BPF program, what libpcap
  // refuses on Ethernet. Everything libpcap compiles is in the engine.
  EXPECT_EQ(lifted, 213u);
  EXPECT_EQ(empty, 1u);
  EXPECT_EQ(opaque, 9u);
  EXPECT_EQ(refused, 14u);
  EXPECT_EQ(in_all.size(), lifted + opaque);
  EXPECT_GT(accepted, exprs.size() * packets.size() / 50);
  EXPECT_GT(won, packets.size() / 2);
}

}  // namespace
}  // namespace exojit::dpf
