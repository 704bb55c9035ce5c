// SPDX-License-Identifier: MIT
// Opaque filters: classic-BPF programs the lift cannot express (Engine::insert_bpf, and tcpdump
// expressions such as `ip protochain 6`) run beside the trie with the same winner rule, under
// the same owner rules and limits as other filters; filters that accept no packet get an id
// that never matches. Checked against the model (model.h: libpcap's bpf_filter for programs,
// their specificity computed independently) on packets flush against guard pages.
#include <exojit/dpf/engine.h>
#include <exojit/dpf/pcap.h>
#include <exojit/error.h>
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <string>

#include "guarded.h"
#include "live_tables.h"
#include "model.h"
#include "packets.h"
#include "pcap_packets.h"

namespace exojit::dpf {
namespace {

using testing::Bytes;
using testing::Model;

// IPv4 UDP whose first IP byte divided by 3 is non-zero: not liftable (a division by 3); three
// conditional jumps on its only accepting path.
const std::vector<BpfInsn> kDivides = {
    {0x28, 0, 0, 12},       // ldh [12]
    {0x15, 0, 5, 0x800},    // jeq #0x800 jt 2 jf 7
    {0x30, 0, 0, 23},       // ldb [23]
    {0x15, 0, 3, 17},       // jeq #17 jt 4 jf 7
    {0x30, 0, 0, 14},       // ldb [14]
    {0x34, 0, 0, 3},        // div #3
    {0x25, 1, 0, 0},        // jgt #0 jt 8 jf 7
    {0x06, 0, 0, 0},        // ret #0
    {0x06, 0, 0, 0x40000},  // ret #262144
};

Bytes udp_packet() {
  testing::Ipv4 s;
  s.proto = 17, s.dport = 53;
  return testing::ipv4(s);
}

// What every packet must get from an engine whose filters are `meaning` (id -> disjuncts, or a
// program for an opaque filter): code = trie walk = the model's winner, accepting() = the
// model's set. Packets flush against a guard page.
struct Meaning {
  std::vector<Filter> disjuncts;
  std::vector<BpfInsn> program;  // an opaque filter's
};

void expect_model(const Engine& e, Engine& demux, const std::map<FilterId, Meaning>& filters,
                  const std::vector<Bytes>& packets) {
  static testing::GuardedPages pages(8192);
  for (const Bytes& p : packets) {
    const uint8_t* at = pages.place(p.data(), p.size());
    FilterId best = 0;
    unsigned best_spec = 0;
    std::vector<FilterId> want;
    for (const auto& [id, m] : filters) {
      std::vector<unsigned> spec = e.specificity(id);
      unsigned s = 0;
      bool any = false;
      if (e.opaque(id)) {
        EXPECT_EQ(spec, std::vector<unsigned>{Model::specificity(m.program)});
        any = Model::accepts(m.program, at, p.size()), s = spec[0];
      } else {
        for (size_t i = 0; i < m.disjuncts.size(); ++i)
          if (Model::accepts(m.disjuncts[i], at, p.size())) any = true, s = std::max(s, spec[i]);
      }
      if (!any) continue;
      want.push_back(id);
      if (best == 0 || s > best_spec) best = id, best_spec = s;
    }
    ASSERT_EQ(e.accepting(at, p.size()), want);
    ASSERT_EQ(e.demux_reference(at, p.size()), best) << e.dump_trie();
    ASSERT_EQ(demux.demux(at, p.size()), best) << e.dump_trie();
  }
}

TEST(DpfOpaque, SpecificityIsTheFewestTestsToAnAccept) {
  Engine e;
  FilterId id = e.insert_bpf(kDivides, {.broad = true});
  EXPECT_TRUE(e.opaque(id));
  EXPECT_EQ(e.specificity(id), std::vector<unsigned>{3});
  EXPECT_EQ(Model::specificity(kDivides), 3u);
  EXPECT_EQ(e.stats().opaque_filters, 1u);
  // protochain: a loop; the shortest way through it.
  PcapFilter chain = compile_pcap("ip protochain 6");
  ASSERT_TRUE(chain.lifted.opaque);
  FilterId c = e.insert(chain, {.broad = true});
  EXPECT_EQ(e.specificity(c), std::vector<unsigned>{Model::specificity(chain.program)});
  EXPECT_GT(e.specificity(c)[0], 0u);
  EXPECT_NE(e.dump_trie().find("opaque filter 1 (specificity 3)"), std::string::npos)
      << e.dump_trie();
}

TEST(DpfOpaque, WinnerRuleAcrossTrieAndPrograms) {
  Bytes pkt = udp_packet();  // byte 14 is 0x45: 0x45 / 3 > 0
  Filter two = parse_filter("(12:16 == 0x800) && (23:8 == 17)");
  Filter three = parse_filter("(12:16 == 0x800) && (23:8 == 17) && (14:8 == 0x45)");
  Filter four = parse_filter("(12:16 == 0x800) && (23:8 == 17) && (14:8 == 0x45) && (36:16 == 53)");
  {
    Engine e;  // fewer tests than the program: the program wins, whatever the ids
    FilterId t = e.insert(two, {.broad = true});
    FilterId o = e.insert_bpf(kDivides, {.broad = true});
    EXPECT_LT(t, o);
    EXPECT_EQ(e.demux(pkt.data(), pkt.size()), o);
    EXPECT_EQ(e.demux_reference(pkt.data(), pkt.size()), o);
  }
  for (bool program_first : {true, false}) {  // as many: the lower id
    Engine e;
    FilterId first =
        program_first ? e.insert_bpf(kDivides, {.broad = true}) : e.insert(three, {.broad = true});
    if (program_first)
      e.insert(three, {.broad = true});
    else
      e.insert_bpf(kDivides, {.broad = true});
    EXPECT_EQ(e.demux(pkt.data(), pkt.size()), first) << program_first;
    EXPECT_EQ(e.demux_reference(pkt.data(), pkt.size()), first);
  }
  {
    Engine e;  // more tests: the trie's filter wins, even inserted after the program
    e.insert_bpf(kDivides, {.broad = true});
    FilterId f = e.insert(four, {.broad = true});
    EXPECT_EQ(e.demux(pkt.data(), pkt.size()), f);
    EXPECT_EQ(e.accepting(pkt.data(), pkt.size()), (std::vector<FilterId>{1, f}));
    e.remove(f, 0);  // the program alone again
    EXPECT_EQ(e.demux(pkt.data(), pkt.size()), 1u);
    e.remove(1, 0);
    EXPECT_EQ(e.demux(pkt.data(), pkt.size()), 0u);
    EXPECT_EQ(e.stats().opaque_filters, 0u);
  }
}

TEST(DpfOpaque, AcceptingNoPacketIsAnIdThatNeverMatches) {
  // (libpcap's optimizer refuses `ip and arp` itself: "expression rejects all packets".)
  PcapFilter none = compile_pcap("less 10 and greater 20");
  ASSERT_FALSE(none.lifted.opaque);
  ASSERT_TRUE(none.lifted.disjuncts.empty());
  Engine e;
  // No key and no right to be broad needed, no sharing group: it overlaps nothing.
  FilterId id = e.insert(none, {.owner = 4});
  e.insert(compile_pcap("udp dst port 53"), {.owner = 5, .share = 3});
  e.insert_bpf(kDivides, {.owner = 6, .share = 3, .broad = true});  // overlaps all but owner 4's
  EXPECT_FALSE(e.opaque(id));
  EXPECT_TRUE(e.specificity(id).empty());
  EXPECT_EQ(e.usage(4).filters, 1u);
  EXPECT_EQ(e.usage(4).atoms, 0u);
  testing::FrameMaker frames(4);
  for (int i = 0; i < 500; ++i) {
    std::vector<uint8_t> f = frames.next();
    std::vector<FilterId> acc = e.accepting(f.data(), f.size());
    EXPECT_EQ(std::count(acc.begin(), acc.end(), id), 0);
  }
  EXPECT_THROW(e.remove(id, 5), Error);
  e.remove(id, 4);
  EXPECT_EQ(e.usage(4).filters, 0u);
}

TEST(DpfOpaque, OwnershipRule) {
  Engine e;
  std::string before = e.dump_trie();
  // No key it can prove: broad only with the right.
  try {
    e.insert(compile_pcap("ip protochain 6"), {.owner = 1});
    ADD_FAILURE() << "an opaque filter without the broad right";
  } catch (const Error& x) {
    EXPECT_EQ(std::string(x.what()).find("pcap filter `ip protochain 6`: dpf: an opaque filter"),
              0u)
        << x.what();
    EXPECT_NE(std::string(x.what()).find("InsertOptions::broad"), std::string::npos) << x.what();
  }
  EXPECT_EQ(e.size(), 0u);
  EXPECT_EQ(e.dump_trie(), before);
  FilterId chain = e.insert(compile_pcap("ip protochain 6"), {.owner = 1, .broad = true});
  // Another owner's filter overlaps it, whatever its key, without a common group.
  before = e.dump_trie();
  try {
    e.insert(compile_pcap("udp dst port 53"), {.owner = 2});
    ADD_FAILURE() << "a filter next to another owner's opaque filter";
  } catch (const Error& x) {
    EXPECT_NE(std::string(x.what()).find("overlaps filter 1 of owner 1 (an opaque filter)"),
              std::string::npos)
        << x.what();
  }
  EXPECT_THROW(e.insert(compile_pcap("udp dst port 53"), {.owner = 2, .share = 7}), Error);
  EXPECT_EQ(e.dump_trie(), before);
  EXPECT_EQ(e.size(), 1u);
  // Only its owner removes it; then the other owner's filter goes in.
  EXPECT_THROW(e.remove(chain, 2), Error);
  e.remove(chain, 1);
  FilterId dns = e.insert(compile_pcap("udp dst port 53"), {.owner = 2});
  // And an opaque filter overlaps that one.
  try {
    e.insert_bpf(kDivides, {.owner = 1, .broad = true});
    ADD_FAILURE() << "an opaque filter next to another owner's filter";
  } catch (const Error& x) {
    EXPECT_NE(std::string(x.what()).find("overlaps filter " + std::to_string(dns) +
                                         " of owner 2 (an opaque filter overlaps every filter)"),
              std::string::npos)
        << x.what();
  }
  // The same owner, or one sharing group: accepted, and the winner rule decides.
  Engine s;
  FilterId a = s.insert(compile_pcap("udp dst port 53"), {.owner = 2, .share = 9});
  FilterId b = s.insert_bpf(kDivides, {.owner = 1, .share = 9, .broad = true});
  FilterId c = s.insert(compile_pcap("udp src port 1234"), {.owner = 1, .share = 9});
  Bytes pkt = udp_packet();
  EXPECT_EQ(s.accepting(pkt.data(), pkt.size()), (std::vector<FilterId>{a, b, c}));
  EXPECT_EQ(s.demux(pkt.data(), pkt.size()), a);  // 5 tests: more than the program's 3
  EXPECT_THROW(s.insert(compile_pcap("udp src port 99"), {.owner = 3, .share = 8}), Error);
  Engine one;  // one owner's filters never conflict
  FilterId p = one.insert_bpf(kDivides, {.owner = 1, .broad = true});
  FilterId q = one.insert(compile_pcap("udp dst port 53"), {.owner = 1});
  EXPECT_EQ(one.accepting(pkt.data(), pkt.size()), (std::vector<FilterId>{p, q}));
}

TEST(DpfOpaque, CountedInTheOwnersLimits) {
  Engine e;
  e.set_owner_limits(1, {.filters = 2, .atoms = kDivides.size() + 4});
  FilterId a = e.insert_bpf(kDivides, {.owner = 1, .broad = true});
  EXPECT_EQ(e.usage(1).filters, 1u);
  EXPECT_EQ(e.usage(1).atoms, kDivides.size());  // its instructions
  std::string before = e.dump_trie();
  try {
    e.insert_bpf(kDivides, {.owner = 1, .broad = true});
    ADD_FAILURE();
  } catch (const Error& x) {
    EXPECT_NE(std::string(x.what()).find("over its limit"), std::string::npos) << x.what();
  }
  EXPECT_EQ(e.dump_trie(), before);
  e.insert(parse_filter("(12:16 == 0x800) && (23:8 == 17) && (14:8 == 0x45)"),
           {.owner = 1, .broad = true});  // 3 atoms fit
  EXPECT_THROW(e.insert(parse_filter("(12:16 == 0x806)"), {.owner = 1, .broad = true}), Error);
  e.remove(a, 1);
  EXPECT_EQ(e.usage(1).atoms, 3u);
  EXPECT_EQ(e.usage(1).filters, 1u);
}

TEST(DpfOpaque, BadProgramsAreRefused) {
  Engine e;
  EXPECT_THROW(e.insert_bpf(std::vector<BpfInsn>{}, {.broad = true}), Error);
  std::vector<BpfInsn> no_ret = {{0x28, 0, 0, 12}};
  try {
    e.insert_bpf(no_ret, {.broad = true});
    ADD_FAILURE();
  } catch (const Error& x) {
    EXPECT_EQ(std::string(x.what()).substr(0, 4), "bpf:") << x.what();
  }
  EXPECT_EQ(e.size(), 0u);
  EXPECT_EQ(e.stats().opaque_filters, 0u);
}

// A program whose paths hold more atoms than a DPF filter may is no error: the lift keeps it
// whole and it runs as a program.
TEST(DpfOpaque, PathsBeyondTheLanguagesBoundsRunAsPrograms) {
  std::string x;
  for (int i = 0; i < 300; ++i) x += (i ? " and ether[" : "ether[") + std::to_string(i) + "] != 7";
  PcapFilter f = compile_pcap(x);
  ASSERT_TRUE(f.lifted.opaque);
  EXPECT_EQ(f.lifted.reason, "a path of more atoms than a DPF filter holds");
  Engine e;
  FilterId id = e.insert(f, {.broad = true});
  EXPECT_TRUE(e.opaque(id));
  std::map<FilterId, Meaning> meaning{{id, Meaning{{}, f.program}}};
  std::vector<Bytes> packets;
  for (size_t n : {0, 100, 299, 300, 301, 400}) {
    packets.push_back(Bytes(n, 1));
    if (n > 150) packets.push_back(Bytes(n, 1)), packets.back()[150] = 7;
  }
  expect_model(e, e, meaning, packets);
  EXPECT_EQ(e.accepting(packets[4].data(), packets[4].size()), std::vector<FilterId>{id});
}

// Lifted, opaque and empty filters of one owner, in an engine whose layers are exercised (a low
// layer threshold): code = walk = model, before and after removals.
TEST(DpfOpaque, BesideLayersAndTables) {
  const char* exprs[] = {
      "ip protochain 6",
      "tcp dst port 80",
      "ip[1] / 3 = 0",
      "udp and src host 192.168.0.1",
      "less 10 and greater 20",
      "tcp[len - 54] = 0",
      "ip6 protochain 17",
      "icmp or arp",
      "ip[len - 100] = 0",
      "vlan and tcp",
      "tcp port 80 and (((ip[2:2] - ((ip[0]&0xf)<<2)) - ((tcp[12]&0xf0)>>2)) != 0)",
      "portrange 1000-2000",
      "ip proto 17 and ip[6:2] & 0x1fff = 0",
      "greater 100"};
  Engine e({.layer_threshold = 16});
  std::map<FilterId, Meaning> meaning;
  auto add = [&](const PcapFilter& f) {
    FilterId id = e.insert(f, {.broad = true});
    meaning[id] = Meaning{f.lifted.disjuncts, f.program};
  };
  for (const char* x : exprs) add(compile_pcap(x));
  std::mt19937_64 rng(17);  // connection filters: a table beside the programs
  for (int i = 0; i < 40; ++i)
    add(compile_pcap(fmt::format("tcp and src host 10.0.{}.{} and src port {} and dst port 80",
                                 i / 7, i % 7 + 1, 1000 + i)));
  std::vector<Bytes> packets;
  testing::FrameMaker frames(11);
  for (int i = 0; i < 600; ++i) packets.push_back(frames.next());
  for (int i = 0; i < 300; ++i) packets.push_back(testing::random_packet(rng));
  for (int i = 0; i < 40; ++i) {
    testing::Ipv4 s;
    s.src = 0x0a000000 | uint32_t(i / 7) << 8 | uint32_t(i % 7 + 1), s.sport = uint16_t(1000 + i);
    packets.push_back(testing::ipv4(s));
  }
  ASSERT_GE(e.stats().opaque_filters, 6u);
  expect_model(e, e, meaning, packets);
  bool odd = false;
  for (auto it = meaning.begin(); it != meaning.end();)
    if ((odd = !odd)) {
      e.remove(it->first, 0);
      it = meaning.erase(it);
    } else {
      ++it;
    }
  expect_model(e, e, meaning, packets);
}

// Issue 18: demux answers an engine with opaque filters without the mutex -- their programs are
// in the published view -- also where a table hit (the id alone) must be weighed against a
// program that accepts the same packet (the id's priority, from the lock-free index).
TEST(DpfOpaque, DemuxTakesNoLock) {
  for (size_t threshold : {size_t(16), size_t(2048)}) {  // layered, and one function
    Engine e({.layer_threshold = threshold});
    PcapFilter tcp = compile_pcap("ip protochain 6");  // every IPv4 TCP packet: opaque
    ASSERT_TRUE(tcp.lifted.opaque);
    FilterId chain = e.insert(tcp, {.owner = 1, .share = 9, .broad = true});
    std::vector<FilterId> conns;
    for (uint32_t i = 0; i < 40; ++i) {
      Filter f;
      f.eq(field(12, 16), 0x800).eq(field(23, 8), 6).eq(field(26, 32), 0x0b000001 + i).shift(34);
      conns.push_back(e.insert(f.eq(field(2, 16), 80), {.owner = 2, .share = 9}));
    }
    FilterId divides = e.insert_bpf(kDivides, {.owner = 3, .share = 9, .broad = true});
    Filter udp_53 = parse_filter("(12:16 == 0x800) && (23:8 == 17) && (36:16 == 53)");
    FilterId dns = e.insert(udp_53, {.owner = 3, .share = 9, .broad = true});
    testing::Ipv4 s;
    s.dport = 80;
    auto check = [&](const std::string& when) {
      for (uint32_t i = 0; i < 42; ++i) {  // two sources without a connection
        s.src = 0x0b000001 + i, s.proto = 6;
        Bytes p = testing::ipv4(s);
        FilterId want = i < conns.size() && conns[i] ? conns[i] : chain;
        EXPECT_EQ(e.demux(p.data(), p.size()), want) << when << " " << i;
        EXPECT_EQ(e.demux_reference(p.data(), p.size()), want) << when << " " << i;
      }
      Bytes udp = udp_packet();  // port 53: the trie's filter (3 tests) ties the program's
      FilterId want = dns < divides ? dns : divides;
      EXPECT_EQ(e.demux(udp.data(), udp.size()), want) << when;
      Bytes other = testing::arp(1, 2);
      EXPECT_EQ(e.demux(other.data(), other.size()), 0u) << when;
      EXPECT_EQ(e.stats().locked_demuxes, 0u) << when;
    };
    check("threshold " + std::to_string(threshold));
    // (Where table changes are new code (AArch64) the layers differ; the answers above do not.)
    if (kLiveTableWrites) {
      ASSERT_EQ(e.layered(), threshold == 16);
    }
    // Programs come and go (a removed one retired after a grace period), connections too.
    e.remove(chain, 1);
    chain = e.insert(tcp, {.owner = 1, .share = 9, .broad = true});
    e.remove(conns[5], 2);
    conns[5] = 0;
    Filter f;
    f.eq(field(12, 16), 0x800).eq(field(23, 8), 6).eq(field(26, 32), 0x0b000029).shift(34);
    conns.push_back(e.insert(f.eq(field(2, 16), 80), {.owner = 2, .share = 9}));
    s.src = 0x0b000006;
    Bytes removed = testing::ipv4(s);
    size_t locked = e.stats().locked_demuxes;  // (a masked connection's packet takes the walk)
    EXPECT_EQ(e.demux(removed.data(), removed.size()), chain);
    conns[5] = chain;
    if (e.stats().locked_demuxes == locked) check("after changes");
  }
}

}  // namespace
}  // namespace exojit::dpf
