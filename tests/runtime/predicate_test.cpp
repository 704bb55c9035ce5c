// SPDX-License-Identifier: MIT
// Wake-up predicates: compiled once with vcode, evaluated over the environment's memory,
// re-armed by changing parameters (no recompilation), addresses checked at install.
#include "exojit/runtime/predicate.h"

#include <gtest/gtest.h>

#include <cstring>

#include "exojit/error.h"
#include "exojit/runtime/kernel.h"
#include "exojit/runtime/scheduler.h"

namespace exojit::runtime {
namespace {

constexpr uint64_t kVa = 0x300000;

struct Fixture {
  Kernel k;
  Environment& env;
  Fixture() : k({.frames = 64}), env(k.create_environment("e", Capability::root())) {
    k.alloc_pages(env, 0, kVa, 2, kPteRead | kPteWrite);
  }
  template <typename T>
  void poke(uint64_t va, T v) {
    std::memcpy(env.mmu().translate(va, kWrite), &v, sizeof v);
  }
};

TEST(Predicate, EvaluatesTermsAndSubPredicates) {
  Fixture f;
  PredicateSpec spec;
  // Sub-predicate 0: u32 at kVa != p0 (e.g. "the ring's produced count moved").
  // Sub-predicate 1: u8 at kVa+8 >= p1 and u64 at kVa+16 has a bit of p2 ("error or timeout").
  spec.any_of = {{{kVa, 4, Compare::Ne, 0}},
                 {{kVa + 8, 1, Compare::Ge, 1}, {kVa + 16, 8, Compare::AnySet, 2}}};
  auto p = CompiledPredicate::install(f.k, f.env, spec);
  EXPECT_EQ(p->params(), 3u);
  p->set_param(0, 0);
  p->set_param(1, 5);
  p->set_param(2, 0x100);
  EXPECT_EQ(p->evaluate(), 0u);
  f.poke<uint32_t>(kVa, 1);
  EXPECT_EQ(p->evaluate(), 1u);
  p->set_param(0, 1);  // re-armed for the next change
  EXPECT_EQ(p->evaluate(), 0u);
  f.poke<uint8_t>(kVa + 8, 5);
  EXPECT_EQ(p->evaluate(), 0u);  // the second term does not hold yet
  f.poke<uint64_t>(kVa + 16, 0x300);
  EXPECT_EQ(p->evaluate(), 2u);
  p->enable(1, false);  // dormant, still installed
  EXPECT_EQ(p->evaluate(), 0u);
  p->enable(1, true);
  EXPECT_EQ(p->evaluate(), 2u);
  EXPECT_THROW(p->set_param(3, 0), Error);
  EXPECT_THROW(p->enable(2, true), Error);
}

TEST(Predicate, EveryComparisonAtEveryWidth) {
  Fixture f;
  const Compare ops[] = {Compare::Eq, Compare::Ne, Compare::Lt,    Compare::Le,
                         Compare::Gt, Compare::Ge, Compare::AnySet};
  for (uint8_t w : {1, 2, 4, 8})
    for (Compare op : ops) {
      PredicateSpec spec;
      spec.any_of = {{{kVa + 64, w, op, 0}}};
      auto p = CompiledPredicate::install(f.k, f.env, spec);
      const uint64_t values[] = {0, 1, 2, 0x7f, 0x80, 0xff, 0xffff, 0xffffffffull, ~0ull};
      for (uint64_t mem : values)
        for (uint64_t par : values) {
          uint64_t mask = w == 8 ? ~0ull : (1ull << (8 * w)) - 1;
          uint64_t m = mem & mask, q = par & mask;
          std::memcpy(f.env.mmu().translate(kVa + 64, kWrite), &m, w);
          p->set_param(0, par);
          bool want = op == Compare::Eq   ? m == q
                      : op == Compare::Ne ? m != q
                      : op == Compare::Lt ? m < q
                      : op == Compare::Le ? m <= q
                      : op == Compare::Gt ? m > q
                      : op == Compare::Ge ? m >= q
                                          : (m & q) != 0;
          ASSERT_EQ(p->evaluate(), want ? 1u : 0u)
              << int(w) << " " << int(op) << " " << m << " " << q;
        }
    }
}

TEST(Predicate, RearmingDoesNotRecompile) {
  Fixture f;
  PredicateSpec spec;
  spec.any_of = {{{kVa, 4, Compare::Eq, 0}}};
  auto p = CompiledPredicate::install(f.k, f.env, spec);
  uint64_t compiled = CompiledPredicate::compilations();
  for (uint32_t i = 0; i < 10000; ++i) {
    p->set_param(0, i);
    f.poke<uint32_t>(kVa, i);
    ASSERT_EQ(p->evaluate(), 1u);
  }
  EXPECT_EQ(CompiledPredicate::compilations(), compiled);
}

TEST(Predicate, AddressesAreCheckedAtInstallAndPagesPinned) {
  Fixture f;
  Environment& other = f.k.create_environment("other", Capability::root());
  PredicateSpec spec;
  spec.any_of = {{{kVa, 4, Compare::Eq, 0}}};
  EXPECT_THROW(CompiledPredicate::install(f.k, other, spec), Error);  // not mapped there
  spec.any_of = {{{kVa + 2, 4, Compare::Eq, 0}}};
  EXPECT_THROW(CompiledPredicate::install(f.k, f.env, spec), Error);  // misaligned
  spec.any_of = {{{kVa, 3, Compare::Eq, 0}}};
  EXPECT_THROW(CompiledPredicate::install(f.k, f.env, spec), Error);
  spec.any_of = {};
  EXPECT_THROW(CompiledPredicate::install(f.k, f.env, spec), Error);
  spec.any_of = {{{kVa + kPageSize, 8, Compare::Eq, 0}}};
  {
    auto p = CompiledPredicate::install(f.k, f.env, spec);
    EXPECT_THROW(f.k.unmap_page(f.env, 0, kVa + kPageSize), Error);  // pinned while installed
  }
  f.k.unmap_page(f.env, 0, kVa + kPageSize);
}

TEST(Predicate, WakesABlockedEnvironmentUnderTheScheduler) {
  Fixture f;
  Environment& writer = f.k.create_environment("writer", Capability::root());
  PredicateSpec spec;
  spec.any_of = {{{kVa, 4, Compare::Ge, 0}}};
  auto p = CompiledPredicate::install(f.k, f.env, spec);
  p->set_param(0, 3);
  f.env.set_predicate(p.get());
  int woken = 0, writes = 0;
  f.env.set_body([&](Environment&) {
    ++woken;
    uint32_t v;
    std::memcpy(&v, f.env.mmu().translate(kVa, kRead), 4);
    p->set_param(0, v + 3);  // re-arm: wake me three increments from now
    return Step::Block;
  });
  writer.set_body([&](Environment&) {
    uint32_t v;
    std::memcpy(&v, f.env.mmu().translate(kVa, kRead), 4);
    ++v;
    std::memcpy(f.env.mmu().translate(kVa, kWrite), &v, 4);
    return ++writes == 12 ? Step::Exit : Step::Yield;
  });
  Scheduler s(f.k);
  s.set_slices({&f.env, &writer});
  s.run();
  EXPECT_EQ(woken, 1 + 4);  // its first slice, then every third increment
  EXPECT_EQ(s.stats().predicate_wakeups, 4u);
}

}  // namespace
}  // namespace exojit::runtime
