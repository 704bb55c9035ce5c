// SPDX-License-Identifier: MIT
// LEN, the bytes from the current base to the end of the packet (tcpdump's `greater`/`less`
// and `len` lift to it): text form, canonical folding through constant SHIFTs, and the
// generated code = the trie walk = each filter on its own, on packets of every length, with LEN
// before and after constant and variable SHIFTs and inside hash nodes.
#include <exojit/dpf/engine.h>
#include <exojit/error.h>
#include <gtest/gtest.h>

#include <random>

#include "live_tables.h"
#include "packets.h"

namespace exojit::dpf {
namespace {

using testing::Bytes;

// Every packet length 0..max, bytes random except those that set the variable SHIFTs small.
void check_all_lengths(const std::vector<std::vector<std::string>>& filters, size_t max = 90) {
  Engine e;
  std::vector<std::vector<Filter>> parsed;
  for (const auto& disjuncts : filters) {
    std::vector<Filter> d;
    for (const std::string& text : disjuncts) d.push_back(parse_filter(text));
    e.insert(std::span<const Filter>(d), {.share = 1, .broad = true});
    parsed.push_back(std::move(d));
  }
  std::mt19937_64 rng(42);
  for (int round = 0; round < 8; ++round) {
    Bytes full(max);
    for (auto& b : full) b = uint8_t(rng());
    full[0] = uint8_t(0x40 | (rng() % 4));  // (0:8 & 0xf) << 2: 0..12
    for (size_t len = 0; len <= max; ++len) {
      Bytes p(full.begin(), full.begin() + long(len));
      auto exact = testing::exact_copy(p);
      FilterId want = 0;
      unsigned best = 0;
      for (size_t id = 0; id < parsed.size(); ++id) {
        std::vector<unsigned> spec = e.specificity(FilterId(id + 1));
        for (size_t i = 0; i < parsed[id].size(); ++i)
          if (matches(parsed[id][i], exact.get(), len) && (want == 0 || spec[i] > best))
            want = FilterId(id + 1), best = spec[i];
      }
      ASSERT_EQ(e.demux_reference(exact.get(), len), want) << "walk, " << len << " bytes";
      ASSERT_EQ(e.demux(exact.get(), len), want) << "code, " << len << " bytes\n" << e.dump_trie();
    }
  }
}

TEST(DpfLength, PrintsAndParsesBack) {
  Filter f;
  f.ge(length(), 1000).shift(14).le(length() - 20, 60);
  EXPECT_EQ(to_string(f), "(LEN >= 0x3e8) && (SHIFT(0xe)) && ((LEN - 0x14) <= 0x3c)");
  EXPECT_EQ(to_string(parse_filter(to_string(f))), to_string(f));
  EXPECT_EQ(to_string(parse_filter("LEN<64&&(LEN)>1")), "(LEN < 0x40) && (LEN > 1)");
  EXPECT_THROW(parse_filter("LENGTH:8 == 1"), Error);
}

TEST(DpfLength, CodeEqualsWalkEqualsEachFilter) {
  check_all_lengths({
      {"LEN >= 60"},
      {"LEN <= 20 && 0:8 == 0x41"},
      {"SHIFT(14) && LEN > 30"},                 // folded: LEN - 14 > 30
      {"SHIFT(40) && LEN < 10"},                 // the SHIFT's check stays
      {"SHIFT((0:8 & 0xf) << 2) && LEN == 50"},  // the remaining length after a header
      {"SHIFT((0:8 & 0xf) << 2) && 1:8 == 7 && LEN >= 3", "LEN == 1"},
      {"(LEN & 3) == 1 && 2:8 != 0"},
  });
}

TEST(DpfLength, InHashNodes) {
  // Five keys under one branch: a hash node whose key includes LEN, in the first segment and
  // after a SHIFT.
  std::vector<std::vector<std::string>> filters;
  for (int k = 0; k < 5; ++k) filters.push_back({fmt::format("LEN == {}", 40 + 7 * k)});
  for (int k = 0; k < 5; ++k)
    filters.push_back(
        {fmt::format("1:8 == {} && SHIFT((0:8 & 0xf) << 2) && LEN == {}", k, 30 + k)});
  check_all_lengths(filters);
  Engine e;
  for (int k = 0; k < 5; ++k)
    e.insert(parse_filter(fmt::format("LEN == {}", 40 + 7 * k)), {.broad = true});
  // A hash node: some new key goes into the table without new code (a compare chain would
  // always need new code).
  bool written = false;
  for (int k = 100; k < 200 && !written; ++k) {
    size_t regenerations = e.regenerations();
    e.remove(e.insert(parse_filter(fmt::format("LEN == {}", k)), {.broad = true}), 0);
    written = e.regenerations() == regenerations;
  }
  EXPECT_EQ(written, kLiveTableWrites);
}

TEST(DpfLength, HashNodeThroughTwoVariableShifts) {
  // A hash node whose key lies after two variable SHIFTs: the second SHIFT's bounds check needs
  // the first one's remaining length.
  std::vector<std::vector<std::string>> filters;
  for (int k = 0; k < 6; ++k)
    filters.push_back({fmt::format(
        "1:8 == {} && SHIFT((0:8 & 0xf) << 2) && SHIFT((0:8 & 0x3) << 2) && 2:8 == {}", k, k)});
  check_all_lengths(filters);
}

}  // namespace
}  // namespace exojit::dpf
