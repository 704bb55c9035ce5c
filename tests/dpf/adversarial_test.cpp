// SPDX-License-Identifier: MIT
// The engine's promises against owners it does not trust (issue 16): each class of attack the
// issue found, its reproducers, and more of the same kind. Packets sit flush against PROT_NONE
// pages (guarded.h), so a stray read faults in any build; answers are checked against the model
// of what each filter means (model.h), the trie walk and the generated code.
#include <exojit/dpf/engine.h>
#include <exojit/error.h>
#include <exojit/vcode/ir.h>
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <string>

#include "guarded.h"
#include "model.h"
#include "packets.h"
#include "random_filters.h"

namespace exojit::dpf {
namespace {

using testing::Bytes;
using testing::Model;

// The filters inserted so far (id -> disjuncts), for the model.
using Filters = std::map<FilterId, std::vector<Filter>>;

// Every length from 0 to the packet's (or, with `all_lengths` false, the packet's only), placed
// flush against the guard after it and before it: the code, the walk and the model name the same
// filter.
void expect_agree(Engine& e, const Filters& filters, const Bytes& p, const char* what = "",
                  bool all_lengths = true) {
  static testing::GuardedPages pages;
  for (size_t n = all_lengths ? 0 : p.size(); n <= p.size(); ++n)
    for (bool at_end : {true, false}) {
      const uint8_t* at = pages.place(p.data(), n, at_end);
      FilterId want = Model::winner(e, filters, at, n);
      ASSERT_EQ(e.demux_reference(at, n), want) << what << " length " << n << "\n" << e.dump_trie();
      ASSERT_EQ(e.demux(at, n), want) << what << " length " << n << "\n" << e.dump_trie();
    }
}

// Inserts a text filter and records it for the model.
FilterId add(Engine& e, Filters& filters, const std::string& text, InsertOptions o = {}) {
  Filter f = parse_filter(text);
  FilterId id = e.insert(f, o);
  filters[id] = {f};
  return id;
}

Bytes random_bytes(std::mt19937_64& rng, size_t n, int range = 256) {
  Bytes b(n);
  for (uint8_t& x : b) x = uint8_t(rng() % unsigned(range));
  return b;
}

// What an engine looks like from outside, to check a refused change left it as it was.
struct Snapshot {
  size_t size, regenerations;
  std::string trie;
  explicit Snapshot(const Engine& e)
      : size(e.size()), regenerations(e.regenerations()), trie(e.dump_trie()) {}
  bool operator==(const Snapshot&) const = default;
};

constexpr InsertOptions kBroad{.broad = true};

// --- 1. reads past the packet --------------------------------------------------------------

// Hash nodes whose SHIFT amount has a huge or wrapping upper bound: the bounds check must cover
// the amount plus what follows whatever the amount is.
TEST(DpfAdversarial, ShiftsWithHugeOrWrappingBoundsNeverReadPastThePacket) {
  const char* amounts[] = {"(1:8 << 40) | 2:8",                 // the issue's: bound 2^48
                           "2:8 - 1:8",                         // wraps: bound 2^64 - 1
                           "1:8 * 0x100000000000000",           // multiplied
                           "2:16 - ((1:8 & 0xf) << 2)",         // a length minus a header length
                           "(1:8 << 56) + 0xff00000000000000",  // wraps past 2^64 to small values
                           "0xfffffffffffffff0 + 2:8"};         // small values after wrapping
  std::mt19937_64 rng(1);
  for (const char* amount : amounts)
    for (int keys : {1, 4, 9}) {  // a chain, a hash node, a larger hash node
      Engine e;
      Filters filters;
      for (int k = 1; k <= keys; ++k)
        add(e, filters,
            fmt::format("(0:8 == {}) && SHIFT({}) && (1000:8 == 7) && (1:8 == 2)", k, amount),
            kBroad);
      expect_agree(e, filters, Bytes{1, 0, 0}, amount);
      for (int i = 0; i < 40; ++i) {
        Bytes p = random_bytes(rng, 3 + rng() % 1200, i % 2 ? 4 : 256);
        p[0] = uint8_t(1 + rng() % unsigned(keys));
        expect_agree(e, filters, p, amount);
      }
    }
}

// The same through several SHIFTs of a hash chain, with fields after each.
TEST(DpfAdversarial, HashChainsCheckEverySegment) {
  std::mt19937_64 rng(2);
  Engine e;
  Filters filters;
  for (int k = 1; k <= 8; ++k)
    add(e, filters,
        fmt::format("(0:8 == {}) && (1:8 == 9) && SHIFT(2:8 - 3:8) && (0:16 == {}) && "
                    "SHIFT(0:8 * 3) && (1:8 == 5) && (40:8 == 1)",
                    k, 100 + k),
        kBroad);
  for (int i = 0; i < 300; ++i) {
    Bytes p = random_bytes(rng, 4 + rng() % 300, 12);
    p[0] = uint8_t(1 + rng() % 8), p[1] = 9;
    expect_agree(e, filters, p);
  }
}

// --- 2. crashes on bad input ---------------------------------------------------------------

TEST(DpfAdversarial, HugeExpressionsAreRefusedWithoutRecursingThroughThem) {
  // Text: a flat 300,000-term sum.
  std::string text = "(0:8";
  for (int i = 0; i < 300000; ++i) text += " + 0:8";
  text += ") == 1";
  EXPECT_THROW(parse_filter(text), Error);
  // The API: the same chain built by hand (and taken apart by hand: its destructor would recurse
  // 300,000 deep in this test, not in the engine).
  std::vector<std::shared_ptr<ExprNode>> nodes;
  auto leaf = std::make_shared<ExprNode>();
  leaf->op = ExprOp::Load, leaf->bits = 8;
  nodes.push_back(leaf);
  for (int i = 0; i < 300000; ++i) {
    auto n = std::make_shared<ExprNode>();
    n->op = ExprOp::Add, n->a = nodes.back(), n->b = leaf;
    nodes.push_back(n);
  }
  Engine e;
  Snapshot before(e);
  Filter f;
  f.eq(Expr(nodes.back()), 1);
  try {
    e.insert(f, kBroad);
    FAIL() << "accepted";
  } catch (const Error& x) {
    EXPECT_NE(std::string(x.what()).find("larger than 64 nodes"), std::string::npos) << x.what();
  }
  EXPECT_EQ(Snapshot(e), before);
  f = Filter();
  for (auto it = nodes.rbegin(); it != nodes.rend(); ++it) (*it)->a.reset(), (*it)->b.reset();
  // A DAG: 2^60 nodes as a tree, 61 shared ones; refused after counting 64.
  ExprPtr dag = field(0, 8).node();
  for (int i = 0; i < 60; ++i) dag = (Expr(dag) + Expr(dag)).node();
  Filter g;
  g.eq(Expr(dag), 5);
  EXPECT_THROW(e.insert(g, kBroad), Error);
  EXPECT_EQ(Snapshot(e), before);
}

TEST(DpfAdversarial, MalformedTreesAndEnumsFromTheApiAreRefused) {
  Engine e;
  Filters filters;
  add(e, filters, "(12:16 == 0x800) && (23:8 == 6) && (26:32 == 1.2.3.4)");
  Snapshot before(e);
  auto refused = [&](Filter f) {
    try {
      e.insert(f, kBroad);
    } catch (const Error&) {
      return Snapshot(e) == before;
    }
    return false;
  };
  Filter null_expr;
  null_expr.atoms().push_back(Atom{Atom::Kind::Compare, nullptr, Cmp::Eq, 1});
  EXPECT_TRUE(refused(null_expr));
  Filter null_operand;
  null_operand.eq(field(12, 16) & Expr(ExprPtr()), 1);
  EXPECT_TRUE(refused(null_operand));
  Filter null_shift;
  null_shift.shift(Expr(ExprPtr()));
  EXPECT_TRUE(refused(null_shift));
  auto bad_op = std::make_shared<ExprNode>();
  bad_op->op = ExprOp(99), bad_op->a = field(0, 8).node(), bad_op->b = field(1, 8).node();
  Filter op;
  op.eq(Expr(bad_op), 1);
  EXPECT_TRUE(refused(op));
  auto load_with_operands = std::make_shared<ExprNode>();
  load_with_operands->op = ExprOp::Load, load_with_operands->bits = 8;
  load_with_operands->a = field(1, 8).node();
  Filter load;
  load.eq(Expr(load_with_operands), 1);
  EXPECT_TRUE(refused(load));
  Filter cmp;
  cmp.compare(field(12, 16), Cmp(17), 0x800);
  EXPECT_TRUE(refused(cmp));
  Filter kind;
  kind.atoms().push_back(Atom{Atom::Kind(9), field(12, 16).node(), Cmp::Eq, 0x800});
  EXPECT_TRUE(refused(kind));
  // Still fine afterwards.
  testing::Ipv4 s;
  s.src = 0x01020304;
  expect_agree(e, filters, testing::ipv4(s));
}

// The heap-use-after-free: a refused insertion's rollback refilled a table whose branch
// had been freed by earlier removals. (Refusals no longer touch tables; the filter that was
// refused is now accepted.)
TEST(DpfAdversarial, RemovalsThenAFilterThatOnceFailedLeaveNoDanglingTable) {
  Engine e;
  Filters filters;
  add(e, filters, "(0:8 == 1) && (1:8 == 9)", kBroad);
  std::vector<FilterId> four;
  for (int i = 1; i <= 4; ++i)
    four.push_back(add(e, filters, fmt::format("(0:8 == 2) && (1:8 == {})", i), kBroad));
  for (FilterId id : four) e.remove(id, 0), filters.erase(id);
  add(e, filters,
      "(0:8 == 3) && SHIFT(0:8) && SHIFT(0:8) && SHIFT(0:8) && SHIFT(0:8) && SHIFT(0:8) && "
      "(0:8 == 1)",
      kBroad);
  std::mt19937_64 rng(3);
  for (int i = 0; i < 200; ++i) {
    Bytes p = random_bytes(rng, rng() % 40, 5);
    expect_agree(e, filters, p);
  }
}

// Constant SHIFTs whose sum wraps past 2^64, and a constant folded into a variable SHIFT whose
// amount wraps.
TEST(DpfAdversarial, ShiftSumsThatWrapKeepTheirMeaning) {
  Engine e;
  EXPECT_THROW(
      e.insert(parse_filter("SHIFT(10) && SHIFT(0xfffffffffffffffb) && (0:8 == 1)"), kBroad),
      Error);
  Filters filters;
  add(e, filters, "SHIFT(10) && SHIFT(0:8 - 10) && (0:8 == 1)", kBroad);
  add(e, filters, "SHIFT(3) && SHIFT(0:8 - 0xfffffffffffffffe) && (1:8 == 1)", kBroad);
  std::mt19937_64 rng(4);
  for (int i = 0; i < 400; ++i) expect_agree(e, filters, random_bytes(rng, rng() % 40, 24));
}

// --- 3. code = walk --------------------------------------------------------------------------

// The code's early return assumed the best id of a hash node; a key written into the table with
// a lower custom id must not be skipped.
TEST(DpfAdversarial, TableKeysWithLowerCustomIdsAreNotSkippedByEarlyReturns) {
  Engine e;
  Filters filters;
  add(e, filters, "1:8 == 7", {.id = 10, .broad = true});
  for (FilterId id = 20; id <= 23; ++id)
    add(e, filters, fmt::format("0:8 == {}", id - 19), {.id = id, .broad = true});
  add(e, filters, "0:8 == 5", {.id = 5, .broad = true});
  Bytes p{5, 7};
  EXPECT_EQ(e.demux(p.data(), p.size()), 5u);
  EXPECT_EQ(e.demux_reference(p.data(), p.size()), 5u);
  expect_agree(e, filters, p);
  // Random custom ids, insertions and removals, against the model.
  std::mt19937_64 rng(5);
  for (int round = 0; round < 30; ++round) {
    Engine r;
    Filters fs;
    for (int i = 0; i < 24; ++i) {
      FilterId id = FilterId(1 + rng() % 40);
      if (fs.count(id)) {
        r.remove(id, 0);
        fs.erase(id);
        continue;
      }
      // (One draw per statement: argument order is unspecified, so that every architecture
      // draws the same filters from the seed.)
      const bool single = rng() % 2;
      const uint64_t k0 = rng() % 8;
      std::string text = single ? fmt::format("0:8 == {}", k0)
                                : fmt::format("(0:8 == {}) && (1:8 == {})", k0, rng() % 4);
      if (rng() % 4 == 0) {
        const uint64_t k1 = rng() % 4;
        text = fmt::format("(1:8 == {}) && (2:8 > {})", k1, rng() % 4);
      }
      add(r, fs, text, {.id = id, .broad = true});
      for (int k = 0; k < 4; ++k) expect_agree(r, fs, random_bytes(rng, rng() % 4, 8));
    }
  }
}

// A hash window over an expression that is not a plain field.
TEST(DpfAdversarial, HashWindowsReadTheWholeExpression) {
  Engine e;
  Filters filters;
  for (int k = 1; k <= 6; ++k) add(e, filters, fmt::format("(0:16 & 2:16) == {}", k), kBroad);
  expect_agree(e, filters, Bytes{0x00, 0xff, 0x00, 0x01});
  std::mt19937_64 rng(6);
  for (int i = 0; i < 300; ++i) expect_agree(e, filters, random_bytes(rng, 4, 8));
}

// Atoms that fold to a constant still need their fields inside the packet.
TEST(DpfAdversarial, AtomsThatFoldAwayStillReadTheirFields) {
  const char* texts[] = {"(50:8 & 0) == 0",
                         "(50:8 >> 8) == 0",
                         "(50:8 * 0) == 0",
                         "50:8 <= 255",
                         "(0:8 == 1) && (50:16 != 0x10000)",
                         "(0:8 == 1) && RECORD(60:8)",
                         "(0:8 == 1) && SHIFT(30)",
                         "(0:8 == 3) && SHIFT(40:8 * 0)",
                         "SHIFT((40:8 & 0) + 3) && (0:8 == 1)",
                         "SHIFT(20) && ((9:8 & 0) == 0) && SHIFT(0:8) && (0:8 == 1)"};
  std::mt19937_64 rng(7);
  for (const char* text : texts) {
    Engine e;
    Filters filters;
    add(e, filters, text, kBroad);
    Bytes p(70, 1);
    expect_agree(e, filters, p, text);
    for (int i = 0; i < 20; ++i) expect_agree(e, filters, random_bytes(rng, 70, 3), text);
  }
  Engine e;
  Filters filters;
  add(e, filters, "(50:8 & 0) == 0", kBroad);
  Bytes four(4, 0);
  EXPECT_EQ(e.demux(four.data(), four.size()), 0u);
  EXPECT_EQ(e.specificity(1), std::vector<unsigned>{0});  // true when 51 bytes are there
}

// --- 4. legitimate filters refused, engine left broken -------------------------------------

TEST(DpfAdversarial, NestedShiftsInHashChainsAreAccepted) {
  Engine e;
  Filters filters;
  for (int k = 1; k <= 6; ++k)
    add(e, filters, fmt::format("(0:8 == {}) && SHIFT(1:8) && SHIFT(0:8) && (0:8 == 7)", k),
        kBroad);
  std::mt19937_64 rng(8);
  for (int i = 0; i < 300; ++i) {
    Bytes p = random_bytes(rng, rng() % 24, 8);
    if (!p.empty()) p[0] = uint8_t(1 + rng() % 6);
    expect_agree(e, filters, p);
  }
}

// A removal that makes a branch hashable (the shape that once broke the hash path), then more
// insertions by other owners: nothing wedges.
TEST(DpfAdversarial, RemovalThatMakesABranchHashableLeavesTheEngineWorking) {
  Engine e;
  Filters filters;
  for (int k = 1; k <= 4; ++k)
    add(e, filters, fmt::format("(0:8 == {}) && SHIFT(1:8) && SHIFT(0:8) && (0:8 == 7)", k),
        kBroad);
  FilterId odd = add(e, filters, "(0:8 == 5) && (1:8 == 3)", kBroad);
  e.remove(odd, 0);
  filters.erase(odd);
  add(e, filters, "(0:8 == 6) && SHIFT(1:8) && SHIFT(0:8) && (0:8 == 7)",
      {.owner = 0, .broad = true});
  add(e, filters, "(0:8 == 9) && (3:8 == 3)", {.owner = 4, .broad = true});
  std::mt19937_64 rng(9);
  for (int i = 0; i < 300; ++i) {
    Bytes p = random_bytes(rng, rng() % 24, 10);
    expect_agree(e, filters, p);
  }
}

// Connection filters ending in a constant SHIFT; deep SHIFT nests; all of it with RECORDED
// atoms (calls) and hash nodes in the same function.
TEST(DpfAdversarial, DeepNestsAndTrailingShiftsAreAccepted) {
  Engine e;
  Filters filters;
  for (uint32_t i = 0; i < 12; ++i)
    add(e, filters,
        fmt::format("(12:16 == 0x800) && (23:8 == 6) && (26:32 == {}) && SHIFT(14) && "
                    "SHIFT((0:8 & 0xf) << 2) && (0:16 == {}) && SHIFT(20)",
                    0x0a000000 + i, 1000 + i));
  for (int depth : {5, 16, 64, 120}) {
    std::string text = fmt::format("(0:8 == {})", 200 + depth / 4);
    for (int d = 0; d < depth; ++d) text += fmt::format(" && SHIFT(1:8 & 3) && (0:8 == {})", d % 3);
    add(e, filters, text, kBroad);
  }
  // The same nests below a hash node.
  for (int k = 1; k <= 5; ++k) {
    std::string text = fmt::format("(0:8 == {}) && (2:8 == 1)", 100 + k);
    for (int d = 0; d < 9; ++d) text += " && SHIFT(1:8 & 3) && (0:8 == 1)";
    add(e, filters, text, kBroad);
  }
  std::mt19937_64 rng(10);
  for (int i = 0; i < 400; ++i) {
    Bytes p = random_bytes(rng, rng() % 300, 3);
    if (!p.empty()) p[0] = uint8_t(i % 3 ? 200 + std::array{5, 16, 64, 120}[rng() % 4] / 4 : 101);
    expect_agree(e, filters, p);
  }
  for (uint32_t i = 0; i < 12; ++i) {
    testing::Ipv4 s;
    s.src = 0x0a000000 + i, s.sport = uint16_t(1000 + i), s.option_words = i % 3, s.payload = 0;
    expect_agree(e, filters, testing::ipv4(s));
  }
}

TEST(DpfAdversarial, DeepNestsBesideRecordedAtoms) {
  Engine e;
  e.set_clock([] { return uint64_t(1); });
  e.insert(parse_filter("(12:16 == 0x800) && (23:8 == 17) && RECORD(18:16) && SHIFT(14) && "
                        "SHIFT(0:8 & 3) && SHIFT(0:8 & 3) && SHIFT(0:8 & 3) && (0:8 == 1)"),
           {.id = 1});
  std::string deep = "(12:16 == 0x800) && (23:8 == 17) && RECORDED(18:16)";
  for (int d = 0; d < 30; ++d) deep += " && SHIFT(1:8 & 1) && RECORDED(0:8)";
  e.insert(parse_filter(deep), {.id = 2});
  std::mt19937_64 rng(11);
  testing::GuardedPages pages;
  for (int i = 0; i < 2000; ++i) {
    Bytes p = random_bytes(rng, rng() % 80, 3);
    if (p.size() > 23) p[12] = 8, p[13] = 0, p[23] = 17;
    const uint8_t* at = pages.place(p.data(), p.size());
    FilterId walked = e.demux_reference(at, p.size());
    ASSERT_EQ(e.demux(at, p.size()), walked);
  }
}

// --- 5. stateful atoms -----------------------------------------------------------------------

Bytes datagram(uint16_t ip_id, uint16_t sport, bool first) {
  testing::Ipv4 s;
  s.proto = 17, s.id = ip_id, s.sport = sport, s.dport = 53, s.payload = 8;
  s.frag = uint16_t(first ? 0x2000 : 0x2003);
  return testing::ipv4(s);
}

// Two RECORDED atoms in one disjunct: a held packet waits for both values.
TEST(DpfAdversarial, HeldPacketsWaitForEveryRecordedValue) {
  Engine e;
  e.set_clock([] { return uint64_t(1); });
  std::vector<Filter> f{
      parse_filter("(12:16 == 0x800) && (23:8 == 17) && ((20:16 & 0x1fff) == 0) && "
                   "RECORD(18:16) && SHIFT(34) && (2:16 == 53)"),
      parse_filter("(12:16 == 0x800) && (23:8 == 17) && ((20:16 & 0x1fff) > 0) && "
                   "RECORDED(18:16) && RECORDED(34:16)")};
  FilterId id = e.insert(std::span<const Filter>(f));
  Bytes later = datagram(7, 0, false);
  testing::put16(later, 34, 9);                        // the second value the fragment waits for: 9
  EXPECT_EQ(e.demux(later.data(), later.size()), 0u);  // held
  Bytes first = datagram(7, 1, true);
  EXPECT_EQ(e.demux(first.data(), first.size()), id);  // 7 recorded, 9 not: still held
  EXPECT_TRUE(e.take_released().empty());
  Bytes nine = datagram(9, 1, true);
  EXPECT_EQ(e.demux(nine.data(), nine.size()), id);  // 9 recorded: released
  std::vector<Released> r = e.take_released();
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].packet, later);
}

// Held packets are counted per owner: one owner's fragments never evict another's; bytes are
// bounded too.
TEST(DpfAdversarial, HeldPacketsAreBoundedPerOwner) {
  EngineOptions o;
  o.owner_limits.held_packets = 4;
  o.owner_limits.held_bytes = 1 << 20;
  Engine e(o);
  e.set_clock([] { return uint64_t(1); });
  auto fragments = [](uint32_t owner, uint16_t port) {
    return std::vector<Filter>{
        parse_filter(fmt::format("(12:16 == 0x800) && (23:8 == 17) && ((20:16 & 0x1fff) == 0) "
                                 "&& RECORD(18:16) && SHIFT(34) && (0:16 == {})",
                                 port)),
        parse_filter(fmt::format("(12:16 == 0x800) && (23:8 == 17) && ((20:16 & 0x1fff) > 0) "
                                 "&& (30:32 == {}) && RECORDED(18:16)",
                                 0x0a000000 + owner))};
  };
  auto frag = [](uint32_t owner, uint16_t ip_id, size_t payload) {
    testing::Ipv4 s;
    s.proto = 17, s.id = ip_id, s.dst = 0x0a000000 + owner, s.frag = 0x2003, s.payload = payload;
    return testing::ipv4(s);
  };
  auto a = fragments(1, 1000), b = fragments(2, 2000);
  e.insert(std::span<const Filter>(a), {.owner = 1});
  e.insert(std::span<const Filter>(b), {.owner = 2});
  for (uint16_t i = 0; i < 3; ++i) {
    Bytes p = frag(2, uint16_t(100 + i), 10);
    e.demux(p.data(), p.size());
  }
  for (uint16_t i = 0; i < 50; ++i) {  // owner 1 floods
    Bytes p = frag(1, i, 10);
    e.demux(p.data(), p.size());
  }
  EXPECT_EQ(e.usage(1).held_packets, 4u);
  EXPECT_EQ(e.usage(2).held_packets, 3u);
  // Bytes: a 1 MiB packet fits alone; a larger one is not held; 64 of them never exceed 1 MiB.
  for (int i = 0; i < 64; ++i) {
    Bytes p = frag(1, uint16_t(500 + i), size_t(i % 2 ? 300000 : 2000000));
    e.demux(p.data(), p.size());
    ASSERT_LE(e.usage(1).held_bytes, size_t(1) << 20);
  }
  EXPECT_EQ(e.usage(2).held_packets, 3u);
  EXPECT_GT(e.stats().held_evicted, 0u);
}

// An unmatched packet that reaches no RECORDED atom does not touch the stateful machinery (the
// clock is not even read): its cost is the code's.
TEST(DpfAdversarial, UnmatchedPacketsDoNotPayForStatefulFilters) {
  Engine e;
  size_t reads = 0;
  e.set_clock([&] { return ++reads; });
  std::vector<Filter> f{
      parse_filter("(12:16 == 0x800) && (23:8 == 17) && ((20:16 & 0x1fff) == 0) && "
                   "RECORD(18:16) && SHIFT(34) && (2:16 == 53)"),
      parse_filter("(12:16 == 0x800) && (23:8 == 17) && ((20:16 & 0x1fff) > 0) && "
                   "RECORDED(18:16)")};
  e.insert(std::span<const Filter>(f));
  for (uint32_t i = 0; i < 500; ++i) {
    Filter c;
    c.eq(field(12, 16), 0x800).eq(field(23, 8), 6).eq(field(26, 32), 0x0b000000 + i).shift(34);
    e.insert(c.eq(field(2, 16), 80));
  }
  Bytes tcp = testing::ipv4(testing::Ipv4{});  // TCP to port 80 from an unknown host
  for (int i = 0; i < 100; ++i) EXPECT_EQ(e.demux(tcp.data(), tcp.size()), 0u);
  EXPECT_EQ(reads, 0u);
  EXPECT_EQ(e.usage(0).held_packets, 0u);
}

// --- 6. ownership ----------------------------------------------------------------------------

TEST(DpfAdversarial, OnlyTheOwnerRemoves) {
  Engine e;
  FilterId a =
      e.insert(parse_filter("(12:16 == 0x800) && (23:8 == 6) && (26:32 == 1.2.3.4)"), {.owner = 1});
  Snapshot before(e);
  try {
    e.remove(a, 2);
    FAIL() << "removed another owner's filter";
  } catch (const Error& x) {
    EXPECT_EQ(std::string(x.what()), fmt::format("dpf: owner 2 has no filter {}", a));
  }
  EXPECT_EQ(Snapshot(e), before);
  EXPECT_EQ(e.owner_of(a), 1u);
  e.remove(a, 1);
  EXPECT_EQ(e.size(), 0u);
}

TEST(DpfAdversarial, SharingNeedsBothOwnersConsent) {
  const char* web = "(12:16 == 0x800) && (23:8 == 6) && SHIFT(34) && (2:16 == 80)";
  const char* conn =
      "(12:16 == 0x800) && (23:8 == 6) && (26:32 == 1.2.3.4) && SHIFT(34) && (2:16 == 80)";
  {
    Engine e;  // the first never agreed: refused whatever the second says
    e.insert(parse_filter(web), {.owner = 1});
    EXPECT_THROW(e.insert(parse_filter(conn), {.owner = 2, .share = 5}), Error);
  }
  {
    Engine e;  // different groups: refused
    e.insert(parse_filter(web), {.owner = 1, .share = 4});
    EXPECT_THROW(e.insert(parse_filter(conn), {.owner = 2, .share = 5}), Error);
    EXPECT_THROW(e.insert(parse_filter(conn), {.owner = 2}), Error);
  }
  {
    Engine e;  // both agreed: the more specific wins its packets
    FilterId w = e.insert(parse_filter(web), {.owner = 1, .share = 5});
    FilterId c = e.insert(parse_filter(conn), {.owner = 2, .share = 5});
    testing::Ipv4 s;
    s.src = 0x01020304;
    Bytes p = testing::ipv4(s);
    EXPECT_EQ(e.demux(p.data(), p.size()), c);
    s.src = 0x01020305;
    p = testing::ipv4(s);
    EXPECT_EQ(e.demux(p.data(), p.size()), w);
  }
}

TEST(DpfAdversarial, CatchAllFiltersNeedTheBroadRight) {
  Engine e;
  for (const char* text : {"SHIFT(0)", "12:16 == 0x800", "(12:16 == 0x800) && (23:8 == 6)",
                           "(12:16 == 0x800) && (23:8 == 6) && (34:16 > 1)"}) {
    try {
      e.insert(parse_filter(text), {.owner = 1});
      FAIL() << text << " accepted";
    } catch (const Error& x) {
      EXPECT_NE(std::string(x.what()).find("InsertOptions::broad"), std::string::npos) << x.what();
    }
  }
  EXPECT_EQ(e.size(), 0u);
  // Narrow filters of anyone go in; a catch-all with the right goes in, but only beside filters
  // it does not overlap unless they share.
  e.insert(parse_filter("(12:16 == 0x806) && (38:32 == 10.0.0.1)"), {.owner = 2});
  e.insert(parse_filter("(12:16 == 0x800) && (23:8 == 17) && SHIFT(34) && (2:16 == 53)"),
           {.owner = 3});
  EXPECT_THROW(e.insert(parse_filter("SHIFT(0)"), {.owner = 1, .broad = true}), Error);
  Engine monitor;
  monitor.insert(parse_filter("SHIFT(0)"), {.owner = 1, .share = 7, .broad = true});
  monitor.insert(parse_filter("(12:16 == 0x806) && (38:32 == 10.0.0.1)"), {.owner = 2, .share = 7});
  EXPECT_THROW(
      monitor.insert(parse_filter("(12:16 == 0x806) && (38:32 == 10.0.0.2)"), {.owner = 3}), Error);
}

// Filters and atoms per owner: an insertion over the limit is refused, nothing changes, other
// owners are not affected.
TEST(DpfAdversarial, OwnerLimitsRefuseWithoutChangingAnything) {
  Engine e;
  e.set_owner_limits(1, OwnerLimits{.filters = 3, .atoms = 15});
  auto conn = [](uint32_t i) {
    return parse_filter(
        fmt::format("(12:16 == 0x800) && (23:8 == 6) && (26:32 == {}) && "
                    "SHIFT(34) && (2:16 == 80)",
                    0x0a000000 + i));
  };
  e.insert(conn(1), {.owner = 1});  // 4 canonical atoms each
  e.insert(conn(2), {.owner = 1});
  e.insert(conn(3), {.owner = 1});
  Snapshot before(e);
  try {
    e.insert(conn(4), {.owner = 1});
    FAIL() << "over the filter limit";
  } catch (const Error& x) {
    EXPECT_NE(std::string(x.what()).find("owner 1 holds 3 filters"), std::string::npos) << x.what();
  }
  EXPECT_EQ(Snapshot(e), before);
  EXPECT_EQ(e.usage(1).filters, 3u);
  EXPECT_EQ(e.usage(1).atoms, 12u);
  e.remove(1, 1);
  Filter big = conn(5);  // 4 atoms + 4 more: 8 + 8 > 15
  for (int i = 0; i < 4; ++i) big.gt(field(40 + i, 8), 1);
  EXPECT_THROW(e.insert(big, {.owner = 1}), Error);
  EXPECT_EQ(e.usage(1).atoms, 8u);
  e.insert(conn(6), {.owner = 1});
  for (uint32_t i = 0; i < 10; ++i) e.insert(conn(100 + i), {.owner = 2});  // the default limits
  EXPECT_EQ(e.usage(2).filters, 10u);
}

// --- 7. costs an attacker controls (counted, not timed: bench_demux has the times) ----------

// The overlap check follows the new filter's keys through the trie: next to thousands of other
// owners' connections it compares a handful of filters, not all of them.
TEST(DpfAdversarial, OverlapChecksFollowTheKeys) {
  Engine e;
  std::mt19937_64 rng(12);
  auto connection = [&](uint32_t src, uint16_t sport, uint16_t dport) {
    Filter f;
    f.eq(field(12, 16), 0x800).eq(field(23, 8), 6).eq(field(26, 32), src).shift(14);
    f.shift((field(0, 8) & 0xf) << 2).eq(field(0, 16), sport).eq(field(2, 16), dport);
    return f;
  };
  for (uint32_t i = 0; i < 5000; ++i)
    e.insert(connection(0x0b000000 + i, uint16_t(rng()), 80), {.owner = 1 + i % 50});
  size_t before = e.stats().overlap_checks;
  e.insert(connection(0x0c000001, 1234, 80), {.owner = 99});
  EXPECT_LE(e.stats().overlap_checks - before, 2u);
  // A disjunction of 300 connections: about one comparison each at most.
  std::vector<Filter> many;
  for (uint32_t i = 0; i < 300; ++i) many.push_back(connection(0x0b000000 + i, 7, 443));
  before = e.stats().overlap_checks;
  e.insert(std::span<const Filter>(many), {.owner = 100});
  EXPECT_LE(e.stats().overlap_checks - before, 300u);
}

// Structural insertions into a large engine regenerate a small layer, not everything: the
// vcode generated for n of them grows like n sqrt n, not n^2.
TEST(DpfAdversarial, StructuralInsertionsDoNotRegenerateEverything) {
  Engine e;
  Filters filters;
  const int n = 1500;
  for (int i = 0; i < n; ++i) {
    Filter f = parse_filter(fmt::format(
        "(12:16 == 0x800) && (23:8 == 17) && SHIFT(34) && (2:16 == {}) && (0:16 > {})", i, i % 7));
    filters[e.insert(f)] = {f};
  }
  EngineStats s = e.stats();
  size_t final_size = e.module().functions()[0]->code.size();
  // Regenerating everything each time would generate about n/2 whole functions.
  EXPECT_LT(s.instructions_generated, final_size * n / 2 / 5) << "merges " << s.merges;
  std::mt19937_64 rng(13);
  for (int i = 0; i < 200; ++i) {
    testing::Ipv4 p;
    p.proto = 17, p.dport = uint16_t(rng() % (n + 10)), p.sport = uint16_t(rng() % 9);
    expect_agree(e, filters, testing::ipv4(p), "", false);
  }
  // Removals too: masked, then merged.
  for (int i = 0; i < n; i += 3) {
    FilterId id = FilterId(i + 1);
    e.remove(id, 0);
    filters.erase(id);
  }
  for (int i = 0; i < 200; ++i) {
    testing::Ipv4 p;
    p.proto = 17, p.dport = uint16_t(rng() % (n + 10)), p.sport = uint16_t(rng() % 9);
    expect_agree(e, filters, testing::ipv4(p), "", false);
  }
}

// The second layer and masked removals, with a low threshold so that a few filters use them:
// random filters of three owners (sharing), custom ids, removals; after each change the code,
// the walk and the model agree on random packets.
TEST(DpfAdversarial, LayersAgreeUnderChurn) {
  std::mt19937_64 rng(14);
  size_t layered = 0, merges = 0;
  for (int round = 0; round < 12; ++round) {
    EngineOptions o;
    o.layer_threshold = size_t(round % 3) * 8;
    Engine e(o);
    Filters filters;
    std::map<FilterId, uint32_t> owner;
    for (int step = 0; step < 60; ++step) {
      if (!filters.empty() && rng() % 4 == 0) {
        auto it = std::next(filters.begin(), long(rng() % filters.size()));
        e.remove(it->first, owner[it->first]);
        filters.erase(it);
      } else {
        std::vector<Filter> d{testing::random_filter(rng)};
        if (rng() % 6 == 0) d.push_back(testing::random_filter(rng));
        uint32_t who = uint32_t(rng() % 3);
        FilterId want = rng() % 3 == 0 ? FilterId(1 + rng() % 200) : 0;
        if (want && filters.count(want)) want = 0;
        FilterId id = e.insert(std::span<const Filter>(d),
                               {.owner = who, .share = 1, .id = want, .broad = true});
        filters[id] = d;
        owner[id] = who;
      }
      layered += e.layered();
      for (int k = 0; k < 6; ++k) expect_agree(e, filters, testing::random_packet(rng), "", k == 0);
    }
    merges += e.stats().merges;
  }
  EXPECT_GT(layered, 100u);
  EXPECT_GT(merges, 10u);
}

// Keys that collide under every multiplicative hash the engine tries (their fields mix to one
// value): the table keeps what fits and the rest is compiled as code after a miss, or, when most
// keys collide, no table is built; nothing throws, every key is found. (A table this large is
// built with multiplicative hashes only, so a disjunction of 270 connections in one insertion.)
TEST(DpfAdversarial, KeysThatCollideEverywhereDegradeGracefully) {
  auto connection = [](uint32_t src, uint32_t ports) {
    return parse_filter(fmt::format(
        "(12:16 == 0x800) && (23:8 == 6) && (26:32 == {}) && (30:32 == 1) && SHIFT(34) && "
        "(0:16 == {}) && (2:16 == {})",
        src, ports >> 16, ports & 0xffff));
  };
  auto packet = [](uint32_t src, uint32_t ports) {
    testing::Ipv4 s;
    s.src = src, s.dst = 1, s.sport = uint16_t(ports >> 16), s.dport = uint16_t(ports);
    return testing::ipv4(s);
  };
  std::mt19937_64 rng(15);
  std::vector<std::pair<uint32_t, uint32_t>> keys;
  for (uint32_t i = 0; i < 150; ++i) {
    const uint32_t high = uint32_t(rng()) | 0x80000000u;
    keys.emplace_back(high, uint32_t(rng()));
  }
  for (uint32_t i = 0; i < 120; ++i) keys.emplace_back(0x0a000000 ^ i, 0x04d20050 ^ i);
  std::vector<Filter> d;
  for (auto [src, ports] : keys) d.push_back(connection(src, ports));
  Engine e;
  Filters filters;
  FilterId table = e.insert(std::span<const Filter>(d), {.owner = 7});
  filters[table] = d;
  EXPECT_NE(e.dump_trie().find("searched after a miss"), std::string::npos) << e.dump_trie();
  // More colliding keys, one filter each, of another owner.
  for (uint32_t i = 120; i < 140; ++i) {
    Filter f = connection(0x0a000000 ^ i, 0x04d20050 ^ i);
    filters[e.insert(f, {.owner = 8})] = {f};
  }
  for (size_t i = 0; i < keys.size(); i += 7)
    expect_agree(e, filters, packet(keys[i].first, keys[i].second));
  for (uint32_t i = 120; i < 140; i += 3)
    expect_agree(e, filters, packet(0x0a000000 ^ i, 0x04d20050 ^ i));
  // Most keys colliding: a binary search instead of a table.
  std::vector<Filter> all;
  for (uint32_t i = 0; i < 300; ++i) all.push_back(connection(0x0a000000 ^ i, 0x04d20050 ^ i));
  Engine b;
  Filters fs;
  fs[b.insert(std::span<const Filter>(all))] = all;
  EXPECT_EQ(b.dump_trie().find("hash table"), std::string::npos);
  for (uint32_t i = 0; i < 300; i += 11)
    expect_agree(b, fs, packet(0x0a000000 ^ i, 0x04d20050 ^ i));
}

}  // namespace
}  // namespace exojit::dpf
