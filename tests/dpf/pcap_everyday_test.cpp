// SPDX-License-Identifier: MIT
// An outside check of the tcpdump front end: the expressions people type (pcap-filter(7)'s
// everyday forms: hosts and nets with masks and CIDR, ports and port ranges, TCP flags, byte
// arithmetic, VLAN/MPLS/PPPoE, IPv6, ether, greater/less/len, not/!/&&/||, parentheses; the
// lists are data/pcap_everyday.txt, pcap_arithmetic_edges.txt, pcap_odd_inputs.txt and
// pcap_random_primitives.txt), each compiled by libpcap itself (DLT_EN10MB, optimizer on,
// netmask unknown) and by dpf::compile_pcap, then inserted in engines of every kind -- a trusted
// owner's (plain code), an untrusted owner's (hardened code), a layered engine (second layer),
// strict alignment, and all expressions in one engine -- and run over packets made for these
// expressions (pcap_everyday_packets.h: IPv4 with options and fragments, IPv6 with extension
// headers, VLAN/QinQ, MPLS, PPPoE, ARP, HTTP payloads), the corpus's frame maker, every
// truncation of some, and random byte mutations.
// Requirements: libpcap refuses <=> compile_pcap refuses; every engine accepts exactly where
// pcap_offline_filter does. Disagreements are collected (expression + packet hex) and the test
// fails listing them.
#include <exojit/dpf/engine.h>
#include <exojit/dpf/pcap.h>
#include <exojit/error.h>
#include <gtest/gtest.h>
#include <pcap/pcap.h>

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "expression_file.h"
#include "guarded.h"
#include "libpcap_reference.h"
#include "pcap_everyday_packets.h"

namespace exojit::dpf {
namespace {

// The expression lists (data/pcap_*.txt, read by expression_file.h).
const std::string kData = PCAP_DATA_DIR "/";

std::string hex(const std::vector<uint8_t>& p) {
  std::string s;
  for (uint8_t b : p) s += fmt::format("{:02x}", b);
  return s;
}

// Runs every expression in every engine over the packets; returns the findings.
std::vector<std::string> check(const std::vector<std::string>& expressions, size_t* compiled_out) {
  static const std::vector<std::vector<uint8_t>> packets = testing::everyday_packets();
  testing::GuardedPages guard(262144);
  std::vector<std::string> findings;
  size_t exprs = 0, compiled = 0, opaque = 0, accepted = 0, untrusted_refused = 0, runs = 0,
         layered_count = 0;
  struct Entry {
    std::string expr;
    std::unique_ptr<testing::LibpcapCompiled> lp;
    FilterId trusted_id, untrusted_id;
  };
  std::vector<Entry> all;
  Engine all_trusted, all_untrusted;
  for (const std::string& xs : expressions) {
    const char* x = xs.c_str();
    ++exprs;
    auto lp = std::make_unique<testing::LibpcapCompiled>(x);
    PcapFilter f;
    try {
      f = compile_pcap(x);
    } catch (const Error& e) {
      if (std::getenv("EVERYDAY_VERBOSE")) std::printf("refused: %-50s %s\n", x, e.what());
      if (lp->ok)
        findings.push_back(fmt::format("REFUSED (libpcap accepts): `{}`: {}", x, e.what()));
      else
        EXPECT_EQ(std::string(e.what()), "pcap filter: " + lp->error) << x;
      continue;
    }
    if (!lp->ok) {
      findings.push_back(fmt::format("ACCEPTED (libpcap refuses: {}): `{}`", lp->error, x));
      continue;
    }
    ++compiled;
    opaque += f.lifted.opaque;
    if (f.lifted.opaque && std::getenv("EVERYDAY_VERBOSE"))
      std::printf("opaque: %-50s %s\n", x, f.lifted.reason.c_str());
    // Engines: trusted (plain code), untrusted (hardened), a low layer threshold (the second
    // layer), strict alignment, and an untrusted owner without the broad right (refusals there
    // are the owner's rights, counted, not findings).
    struct Variant {
      const char* name;
      EngineOptions eo;
      InsertOptions io;
    };
    EngineOptions layered;
    layered.layer_threshold = 1;
    EngineOptions strict;
    strict.strict_alignment = true;
    const Variant variants[] = {
        {"trusted", {}, {.owner = 1, .broad = true, .trusted = true}},
        {"untrusted", {}, {.owner = 5, .broad = true, .trusted = false}},
        {"untrusted-layered", layered, {.owner = 5, .broad = true}},
        {"trusted-strict", strict, {.owner = 1, .broad = true, .trusted = true}},
        {"untrusted-notbroad", {}, {.owner = 6}},
        {"untrusted-stateful", {}, {.owner = 5, .share = 1, .broad = true}},
    };
    for (const Variant& v : variants) {
      Engine e(v.eo);
      FilterId id = 0, base = 0;
      std::vector<FilterId> others;     // the engine's other filters (never on these packets)
      if (v.eo.layer_threshold == 1) {  // the base layer's; the expression goes to the second
        base = e.insert(compile_pcap("tcp port 9 and host 10.9.9.9"), {.owner = 5});
        others.push_back(base);
        for (int i = 0; i < 40; ++i)
          others.push_back(e.insert(compile_pcap(fmt::format("tcp port {} and host 10.9.{}.{}",
                                                             9 + i % 7, i / 50, i % 50 + 1)),
                                    {.owner = 5}));
      }
      if (std::string(v.name) == "untrusted-stateful") {  // demux goes out of line
        const Filter frag[] = {
            parse_filter("(12:16 == 0x800) && (23:8 == 17) && (30:32 == 10.9.9.9) && "
                         "((20:16 & 0x1fff) == 0) && RECORD((18:16 << 32) | 26:32) && SHIFT(14) "
                         "&& SHIFT((0:8 & 0xf) << 2) && (2:16 == 9)"),
            parse_filter("(12:16 == 0x800) && (23:8 == 17) && (30:32 == 10.9.9.9) && "
                         "((20:16 & 0x1fff) > 0) && RECORDED((18:16 << 32) | 26:32)")};
        others.push_back(e.insert(std::span<const Filter>(frag), {.owner = 9, .share = 1}));
      }
      try {
        id = e.insert(f, v.io);
      } catch (const Error& err) {
        if (v.io.broad)
          findings.push_back(
              fmt::format("REFUSED by insert ({}): `{}`: {}", v.name, x, err.what()));
        else if (++untrusted_refused, std::getenv("EVERYDAY_VERBOSE"))
          std::printf("not broad: %-50s %s\n", x, err.what());
        continue;
      }
      layered_count += e.layered();
      size_t bad = 0;
      for (const auto& p : packets) {
        bool want = lp->accepts(p);
        const uint8_t* at = guard.place(p.data(), p.size());
        FilterId got = e.demux(at, p.size());
        ++runs;
        bool ok = want ? got == id : got != id;
        if (got && std::count(others.begin(), others.end(), got))
          ok = !want || e.accepting(at, p.size()).size() >= 2;
        FilterId ref = e.demux_reference(at, p.size());
        if (ref != got) ok = false;
        FilterId burst = 0;
        size_t len = p.size();
        e.demux_burst(&at, &len, 1, &burst);
        if (burst != got) ok = false;
        if (!ok && bad++ < 2)
          findings.push_back(
              fmt::format("DIFFERS ({}{}): `{}` libpcap {} engine {} ref {} burst {} on {}", v.name,
                          f.lifted.opaque ? ", opaque" : "", x, want ? "accepts" : "rejects", got,
                          ref, burst, hex(p)));
      }
    }
    FilterId tid = all_trusted.insert(f, {.owner = 1, .share = 1, .broad = true, .trusted = true});
    FilterId uid =
        all_untrusted.insert(f, {.owner = uint32_t(10 + exprs), .share = 1, .broad = true});
    all.push_back({x, std::move(lp), tid, uid});
  }
  // Everything in one engine, trusted and untrusted: each id accepts where libpcap does; then
  // again after every other expression is removed (tables rewritten, filters masked).
  size_t bad_all = 0;
  for (int round = 0; round < 2; ++round) {
    if (round == 1) {
      std::vector<Entry> kept;
      for (size_t i = 0; i < all.size(); ++i) {
        if (i % 2 == 0) {
          all_trusted.remove(all[i].trusted_id, 1);
          all_untrusted.remove(all[i].untrusted_id, all_untrusted.owner_of(all[i].untrusted_id));
        } else {
          kept.push_back(std::move(all[i]));
        }
      }
      all = std::move(kept);
    }
    for (const auto& p : packets) {
      const uint8_t* at = guard.place(p.data(), p.size());
      std::vector<FilterId> want_t, want_u;
      for (const Entry& en : all)
        if (en.lp->accepts(p)) want_t.push_back(en.trusted_id), want_u.push_back(en.untrusted_id);
      accepted += want_t.size();
      std::vector<FilterId> got_t = all_trusted.accepting(at, p.size());
      std::vector<FilterId> got_u = all_untrusted.accepting(at, p.size());
      FilterId wt = all_trusted.demux(at, p.size()), wu = all_untrusted.demux(at, p.size());
      bool ok = got_t == want_t && got_u == want_u &&
                (want_t.empty() ? wt == 0 : std::count(want_t.begin(), want_t.end(), wt) == 1) &&
                (want_u.empty() ? wu == 0 : std::count(want_u.begin(), want_u.end(), wu) == 1) &&
                all_trusted.demux_reference(at, p.size()) == wt &&
                all_untrusted.demux_reference(at, p.size()) == wu;
      if (!ok && bad_all++ < 5)
        findings.push_back(
            fmt::format("DIFFERS (all in one engine, round {}) on {}", round, hex(p)));
    }
  }
  std::printf(
      "%zu expressions, %zu compiled (%zu opaque), %zu refused by an untrusted owner without the "
      "broad right (by design); %zu in a layered engine; %zu packets, %zu demuxes alone, %zu "
      "accepted verdicts in one "
      "engine\n",
      exprs, compiled, opaque, untrusted_refused, layered_count, packets.size(), runs, accepted);
  for (const std::string& s : findings) std::printf("FINDING %s\n", s.c_str());
  EXPECT_GT(accepted, 0u);
  if (compiled_out) *compiled_out = compiled;
  return findings;
}

// EVERYDAY_PROBE="expr;expr;..." (or @file): the lift of each (a debugging aid, no check).
TEST(DpfPcapEveryday, Probe) {
  const char* probe = std::getenv("EVERYDAY_PROBE");
  if (!probe) GTEST_SKIP() << "set EVERYDAY_PROBE";
  std::string all = probe;
  if (all.size() > 1 && all[0] == '@') {  // @file: the expressions in a file
    std::FILE* in = std::fopen(all.c_str() + 1, "rb");
    ASSERT_NE(in, nullptr);
    all.clear();
    for (int c; (c = std::fgetc(in)) != EOF;) all += char(c);
    std::fclose(in);
  }
  for (size_t at = 0; at <= all.size();) {
    size_t end = std::min(all.find(';', at), all.size());
    std::string x = all.substr(at, end - at);
    at = end + 1;
    try {
      PcapFilter f = compile_pcap(x);
      std::printf("%-50s %s (%zu disjuncts)\n", x.c_str(),
                  f.lifted.opaque ? f.lifted.reason.c_str() : "lifted", f.lifted.disjuncts.size());
      if (std::getenv("EVERYDAY_BPF")) std::printf("%s\n", bpf_image(f.program).c_str());
    } catch (const Error& e) {
      std::printf("%-50s %s\n", x.c_str(), e.what());
    }
  }
}

TEST(DpfPcapEveryday, AgreesWithLibpcapInEveryEngine) {
  std::vector<std::string> exprs = testing::read_expressions(kData + "pcap_everyday.txt");
  ASSERT_GE(exprs.size(), 150u);
  size_t compiled = 0;
  std::vector<std::string> findings = check(exprs, &compiled);
  EXPECT_GE(compiled, 250u);
  EXPECT_TRUE(findings.empty()) << findings.size() << " findings";
}

// Arithmetic at its edges: 32-bit wrap-around of libpcap's accumulator, shifts, divisions,
// negation, offsets computed from packet bytes (wrapping, huge, negative), unsigned compares of
// values with the top bit set.
TEST(DpfPcapEveryday, ArithmeticEdgesAgreeWithLibpcap) {
  std::vector<std::string> exprs = testing::read_expressions(kData + "pcap_arithmetic_edges.txt");
  ASSERT_GE(exprs.size(), 100u);
  size_t compiled = 0;
  std::vector<std::string> findings = check(exprs, &compiled);
  EXPECT_GE(compiled, 60u);
  EXPECT_TRUE(findings.empty()) << findings.size() << " findings";
}

// Odd but valid inputs: empty and blank expressions, upper case, long disjunctions (past the
// lift's 256 paths), deep parentheses, names.
TEST(DpfPcapEveryday, OddInputsAgreeWithLibpcap) {
  std::vector<std::string> exprs = testing::read_expressions(kData + "pcap_odd_inputs.txt");
  ASSERT_GE(exprs.size(), 60u);
  std::string hosts, ports, nets, deep = "tcp";
  for (int i = 1; i <= 100; ++i)
    hosts += fmt::format("{}host 10.0.{}.{}", i > 1 ? " or " : "", i / 50, i % 50 + 1);
  for (int i = 1; i <= 60; ++i) ports += fmt::format("{}port {}", i > 1 ? " or " : "", 6000 + i);
  for (int i = 1; i <= 40; ++i) nets += fmt::format("{}net 10.{}.0.0/16", i > 1 ? " or " : "", i);
  for (int i = 0; i < 60; ++i) deep = "(" + deep + " and port 80)";
  exprs.insert(exprs.end(), {hosts, ports, nets, deep, "tcp and (" + ports + ")",
                             "not (" + hosts + ")", "udp and (" + ports + ") and (" + nets + ")"});
  size_t compiled = 0;
  std::vector<std::string> findings = check(exprs, &compiled);
  EXPECT_GE(compiled, 10u);
  EXPECT_TRUE(findings.empty()) << findings.size() << " findings";
}

// Random combinations of the everyday primitives: and/or/not, &&/||/!, nested parentheses.
TEST(DpfPcapEveryday, RandomCombinationsAgreeWithLibpcap) {
  static const std::vector<std::string> prims =
      testing::read_expressions(kData + "pcap_random_primitives.txt");
  ASSERT_GE(prims.size(), 60u);
  std::mt19937_64 rng(20261203);
  std::function<std::string(int)> gen = [&](int depth) -> std::string {
    unsigned k = unsigned(rng() % 10);
    if (depth == 0 || k < 4) return prims[rng() % prims.size()];
    if (k < 5) {
      std::string inner = gen(depth - 1);
      return (rng() % 2 ? "not (" : "!(") + inner + ")";
    }
    std::string a = gen(depth - 1);
    std::string b = gen(depth - 1);
    static const char* const ops[] = {" and ", " or ", " && ", " || "};
    std::string op = ops[rng() % 4];
    return "(" + a + op + b + ")";
  };
  std::vector<std::string> exprs;
  const char* count = std::getenv("EVERYDAY_RANDOM");  // more, for longer runs
  const char* seed = std::getenv("EVERYDAY_SEED");
  if (seed) rng.seed(20261203 + std::strtoull(seed, nullptr, 0));
  size_t n = count ? std::strtoull(count, nullptr, 0) : 400;
  for (size_t i = 0; i < n; ++i) exprs.push_back(gen(1 + int(rng() % 4)));
  size_t compiled = 0;
  std::vector<std::string> findings = check(exprs, &compiled);
  EXPECT_GT(compiled, n * 3 / 4);  // the rest libpcap refuses (both must, with its message)
  EXPECT_TRUE(findings.empty()) << findings.size() << " findings";
}

}  // namespace
}  // namespace exojit::dpf
