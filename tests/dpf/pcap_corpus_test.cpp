// The tcpdump language, end to end, against libpcap: every expression of the corpus
// (data/pcap_corpus.txt: every primitive of pcap-filter(7) that applies to Ethernet) compiled by
// compile_pcap_filter, on generated frames of every encapsulation (pcap_packets.h), truncated
// and garbage ones included:
//   - refused by libpcap: an exojit::Error carrying libpcap's own message;
//   - the classic-BPF JIT of libpcap's program returns what pcap_offline_filter returns;
//   - lifted: the filters, inserted alone in an engine, accept exactly what libpcap accepts;
//     and all lifted expressions in one engine: each id accepts exactly where libpcap does, and
//     the winner is always one libpcap accepts.
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
  size_t lifted = 0, opaque = 0, refused = 0, accepted = 0, disjuncts = 0;
  std::map<std::string, size_t> reasons;
  Engine all;  // every lifted expression
  std::vector<std::pair<FilterId, PcapFilter>> in_all;
  for (const std::string& x : exprs) {
    PcapFilter f;
    try {
      f = compile_pcap_filter(x);
    } catch (const Error& e) {
      ++refused;
      EXPECT_EQ(std::string(e.what()).substr(0, 13), "pcap filter: ") << x;
      std::printf("refused by libpcap: %-40s %s\n", x.c_str(), e.what() + 13);
      continue;
    }
    BpfFilter jit = compile_bpf(f.program);
    std::unique_ptr<Engine> alone;
    if (f.lifted.opaque) {
      ++opaque;
      ++reasons[f.lifted.reason];
      std::printf("opaque: %-40s (%s)\n", x.c_str(), f.lifted.reason.c_str());
    } else {
      ++lifted;
      disjuncts += f.lifted.disjuncts.size();
      if (!f.lifted.disjuncts.empty()) {
        alone = std::make_unique<Engine>();
        alone->insert(std::span<const Filter>(f.lifted.disjuncts), {.broad = true});
        FilterId id =
            all.insert(std::span<const Filter>(f.lifted.disjuncts), {.share = 1, .broad = true});
        in_all.emplace_back(id, f);
      }
    }
    for (const auto& p : packets) {
      uint32_t want = libpcap(f, p.data(), p.size());
      accepted += want != 0;
      const uint8_t* at = guard.place(p.data(), p.size());
      ASSERT_EQ(jit(at, p.size()), want) << x << " (JIT) on a " << p.size() << "-byte frame";
      if (!f.lifted.opaque) {
        bool got = alone && alone->demux(at, p.size()) != 0;
        ASSERT_EQ(got, want != 0) << x << " (lifted) on a " << p.size() << "-byte frame\n"
                                  << bpf_image(f.program);
      }
    }
  }
  // Many expressions in one engine.
  size_t won = 0;
  for (const auto& p : packets) {
    auto exact = std::make_unique<uint8_t[]>(p.size() + 1);
    std::copy(p.begin(), p.end(), exact.get());
    std::vector<FilterId> acc = all.accepting(exact.get(), p.size());
    std::vector<FilterId> want;
    for (const auto& [id, f] : in_all)
      if (libpcap(f, p.data(), p.size())) want.push_back(id);
    ASSERT_EQ(acc, want) << "all lifted expressions in one engine";
    FilterId winner = all.demux(exact.get(), p.size());
    ASSERT_EQ(winner == 0, want.empty());
    if (winner) {
      ASSERT_TRUE(std::count(want.begin(), want.end(), winner)) << winner;
      ++won;
    }
  }
  std::printf(
      "%zu expressions: %zu lifted (%zu filters), %zu opaque, %zu refused by libpcap; "
      "%zu frames, %zu accepted verdicts; %zu frames won by one of %zu expressions in one engine\n",
      exprs.size(), lifted, disjuncts, opaque, refused, packets.size(), accepted, won,
      in_all.size());
  for (auto& [why, n] : reasons) std::printf("  opaque x%zu: %s\n", n, why.c_str());
  // The corpus's split (README): what lifts, what stays a classic-BPF program, what libpcap
  // refuses on Ethernet.
  EXPECT_EQ(lifted, 212u);
  EXPECT_EQ(opaque, 9u);
  EXPECT_EQ(refused, 14u);
  EXPECT_GT(accepted, exprs.size() * packets.size() / 50);
  EXPECT_GT(won, packets.size() / 2);
}

}  // namespace
}  // namespace exojit::dpf
