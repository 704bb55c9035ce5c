// SPDX-License-Identifier: MIT
// Differential tests: for random filter sets and random packets (every protocol, options,
// fragments, truncated and garbage packets), the generated machine code, the vcode interpreter
// running the same generated function, the trie walk, and each filter evaluated on its own with
// the most-specific rule must all name the same filter. Packets sit in buffers of exactly their
// length, so a read past the end is caught by AddressSanitizer in the sanitizer build.
#include <exojit/dpf/engine.h>
#include <exojit/vcode/interp.h>
#include <gtest/gtest.h>

#include <map>

#include "live_tables.h"
#include "packets.h"
#include "random_filters.h"

namespace exojit::dpf {
namespace {

using testing::Bytes;

// The rule of engine.h, applied to filters evaluated one by one.
FilterId expected(const Engine& e, const std::map<FilterId, std::vector<Filter>>& filters,
                  const Bytes& p) {
  FilterId best = 0;
  unsigned best_spec = 0;
  for (auto& [id, disjuncts] : filters) {
    std::vector<unsigned> spec = e.specificity(id);
    for (size_t i = 0; i < disjuncts.size(); ++i)
      if (matches(disjuncts[i], p.data(), p.size()) && (best == 0 || spec[i] > best_spec)) {
        best = id;
        best_spec = spec[i];
      }
  }
  return best;
}

void check_all(Engine& e, const std::map<FilterId, std::vector<Filter>>& filters,
               std::mt19937_64& rng, int packets, bool interp) {
  vcode::Interpreter in(e.module());
  for (int i = 0; i < packets; ++i) {
    Bytes p = testing::random_packet(rng);
    auto exact = testing::exact_copy(p);
    FilterId want = expected(e, filters, p);
    ASSERT_EQ(e.demux_reference(exact.get(), p.size()), want) << e.dump_trie();
    ASSERT_EQ(e.demux(exact.get(), p.size()), want) << e.dump_trie();
    if (interp) {
      uint64_t raw = in.run<uint64_t>("dpf_demux", static_cast<const uint8_t*>(exact.get()),
                                      uint64_t(p.size()));
      ASSERT_EQ(FilterId(raw), want);
    }
  }
}

TEST(DpfDifferential, RandomFilterSetsAgreeEverywhere) {
  std::mt19937_64 rng(20260523);
  for (int round = 0; round < 60; ++round) {
    Engine e;
    std::map<FilterId, std::vector<Filter>> filters;
    int n = 1 + int(rng() % (round < 30 ? 8 : 40));
    for (int i = 0; i < n; ++i) {
      std::vector<Filter> d{testing::random_filter(rng)};
      if (rng() % 5 == 0) d.push_back(testing::random_filter(rng));  // a disjunction
      // Odd rounds: trusted owners (plain code); even: untrusted (hardened code).
      FilterId id = e.insert(std::span<const Filter>(d),
                             {.share = 1, .broad = true, .trusted = round % 2 == 1});
      filters[id] = d;
    }
    check_all(e, filters, rng, 300, round % 4 == 0);
    // Remove some and check again (tables rewritten or code regenerated).
    for (auto it = filters.begin(); it != filters.end();)
      if (rng() % 3 == 0) {
        e.remove(it->first, 0);
        it = filters.erase(it);
      } else {
        ++it;
      }
    check_all(e, filters, rng, 150, false);
  }
}

// Many connection filters: hash nodes (with and without collisions), keys added to the table
// without new code, then packets for every connection and for none.
TEST(DpfDifferential, ConnectionTablesAgree) {
  std::mt19937_64 rng(7);
  for (int n : {4, 5, 17, 100, 600}) {
    Engine e;
    std::map<FilterId, std::vector<Filter>> filters;
    std::vector<testing::Ipv4> conns;
    size_t patched = 0;
    for (int i = 0; i < n; ++i) {
      testing::Ipv4 s;
      // Some connections share a source address: keys whose paths branch below the table's
      // first field.
      s.src = conns.empty() || rng() % 4 ? uint32_t(rng()) : conns[rng() % conns.size()].src;
      s.dst = 0x0a000001, s.sport = uint16_t(rng()), s.dport = uint16_t(80 + rng() % 2);
      Filter f;
      f.eq(field(12, 16), 0x800).eq(field(23, 8), 6).eq(field(26, 32), s.src);
      f.eq(field(30, 32), s.dst).shift(14).shift((field(0, 8) & 0xf) << 2);
      f.eq(field(0, 16), s.sport).eq(field(2, 16), s.dport);
      size_t before = e.regenerations();
      FilterId id = e.insert(f);
      patched += e.regenerations() == before;
      filters[id] = {f};
      conns.push_back(s);
    }
    if (n >= 100 && kLiveTableWrites) {
      EXPECT_GT(patched, size_t(n) / 2) << "most keys go into the table, no new code";
    }
    for (size_t i = 0; i < conns.size(); ++i) {
      testing::Ipv4 s = conns[i];
      s.option_words = unsigned(i % 3);
      Bytes p = testing::ipv4(s);
      ASSERT_EQ(e.demux(p.data(), p.size()), FilterId(i + 1)) << n;
      s.sport ^= 1;
      p = testing::ipv4(s);
      ASSERT_EQ(e.demux(p.data(), p.size()), expected(e, filters, p));
    }
    check_all(e, filters, rng, 200, n <= 17);
  }
}

// A connection table that grows to thousands of keys regenerates code only when the table must
// grow or a key cannot be placed, not for a fixed share of insertions: the hash function and the
// probe bound of a large table leave room for keys to come. Every connection is still found,
// after insertions and after removing half of them.
TEST(DpfDifferential, LargeConnectionTableRarelyRegenerates) {
  if (!kLiveTableWrites)
    GTEST_SKIP() << "this host's tables are not written live: every key is new code";
  std::mt19937_64 rng(21);
  const size_t n = 3000;
  Engine e;
  std::vector<testing::Ipv4> conns;
  std::vector<FilterId> ids;
  for (size_t i = 0; i < n; ++i) {
    testing::Ipv4 s;
    s.src = 0xc0000000u | uint32_t(rng() & 0xffffff), s.dst = 0x0a000001;
    s.sport = uint16_t(1024 + rng() % 60000), s.dport = uint16_t(i % 2 ? 443 : 80);
    Filter f;
    f.eq(field(12, 16), 0x800).eq(field(23, 8), 6).eq(field(26, 32), s.src);
    f.eq(field(30, 32), s.dst).shift(14).shift((field(0, 8) & 0xf) << 2);
    f.eq(field(0, 16), s.sport).eq(field(2, 16), s.dport);
    ids.push_back(e.insert(f));
    conns.push_back(s);
  }
  EXPECT_LT(e.regenerations(), n / 20) << "insertions into the table regenerate code";
  auto check = [&](size_t from, size_t step, bool present) {
    for (size_t i = from; i < n; i += step) {
      Bytes p = testing::ipv4(conns[i]);
      ASSERT_EQ(e.demux(p.data(), p.size()), present ? ids[i] : 0) << i;
    }
  };
  check(0, 1, true);
  for (size_t i = 0; i < n; i += 2) e.remove(ids[i], 0);
  check(0, 2, false);
  check(1, 2, true);
}

}  // namespace
}  // namespace exojit::dpf
