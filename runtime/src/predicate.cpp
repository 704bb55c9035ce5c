// SPDX-License-Identifier: MIT
#include "exojit/runtime/predicate.h"

#include <algorithm>
#include <atomic>

#include "exojit/error.h"
#include "exojit/runtime/environment.h"
#include "exojit/runtime/kernel.h"
#include "exojit/vcode/builder.h"

namespace exojit::runtime {

namespace {
std::atomic<uint64_t> g_compilations{0};

vcode::Type width_type(uint8_t w) {
  switch (w) {
    case 1:
      return vcode::Type::U8;
    case 2:
      return vcode::Type::U16;
    case 4:
      return vcode::Type::U32;
    default:
      return vcode::Type::U64;
  }
}
}  // namespace

uint64_t CompiledPredicate::compilations() {
  return g_compilations.load();
}

std::unique_ptr<CompiledPredicate> CompiledPredicate::install(Kernel& kernel, Environment& env,
                                                              const PredicateSpec& spec) {
  (void)kernel;
  if (spec.any_of.empty()) fail("wake-up predicate without a sub-predicate");
  uint32_t nparams = 0;
  std::vector<std::vector<const uint8_t*>> hosts(spec.any_of.size());
  // Check everything before pinning anything: a refused predicate changes nothing.
  for (size_t s = 0; s < spec.any_of.size(); ++s)
    for (const PredicateTerm& t : spec.any_of[s]) {
      if (t.width != 1 && t.width != 2 && t.width != 4 && t.width != 8)
        fail("predicate term at 0x{:x}: width {} (1, 2, 4 or 8)", t.va, t.width);
      if (t.va % t.width) fail("predicate term at 0x{:x}: not aligned to {} bytes", t.va, t.width);
      if (uint8_t(t.compare) > uint8_t(Compare::AnySet)) fail("predicate term: bad comparison");
      if (t.param >= 4096) fail("predicate term at 0x{:x}: parameter {} (< 4096)", t.va, t.param);
      // The kernel reads these words: the environment must be allowed to read them itself.
      const uint8_t* p = env.mmu().walk(t.va, kRead);
      if (!p)
        fail("environment {}: predicate word 0x{:x} is not mapped readable", env.name(), t.va);
      hosts[s].push_back(p);
      nparams = std::max(nparams, t.param + 1);
    }
  std::unique_ptr<CompiledPredicate> pred(new CompiledPredicate());
  pred->env_ = &env;
  pred->subs_ = uint32_t(spec.any_of.size());
  pred->params_.assign(pred->subs_ + nparams, 0);
  std::fill(pred->params_.begin(), pred->params_.begin() + pred->subs_, 1);  // all enabled

  // uint32_t pred(const uint64_t* params): for each enabled sub-predicate, all terms must hold.
  vcode::Module m;
  vcode::Builder b(m, "wakeup", vcode::Type::U32, {vcode::Type::P});
  vcode::Reg params = b.arg(0);
  vcode::Reg addr = b.getreg(vcode::Type::P);
  vcode::Reg flag = b.getreg(vcode::Type::U64);
  for (size_t s = 0; s < spec.any_of.size(); ++s) {
    vcode::Label next = b.label();
    b.ld(flag, params, int64_t(s * 8));
    b.beq(flag, 0, next);
    for (size_t i = 0; i < spec.any_of[s].size(); ++i) {
      const PredicateTerm& t = spec.any_of[s][i];
      vcode::Type ty = width_type(t.width);
      vcode::Reg word = b.getreg(ty), want = b.getreg(ty);
      b.set(addr, int64_t(reinterpret_cast<uintptr_t>(hosts[s][i])));
      b.ld(word, addr);
      b.ld(want, params, int64_t((pred->subs_ + t.param) * 8));  // low bytes: little-endian
      // Branch to `next` when the term fails.
      switch (t.compare) {
        case Compare::Eq:
          b.bne(word, want, next);
          break;
        case Compare::Ne:
          b.beq(word, want, next);
          break;
        case Compare::Lt:
          b.bge(word, want, next);
          break;
        case Compare::Le:
          b.bgt(word, want, next);
          break;
        case Compare::Gt:
          b.ble(word, want, next);
          break;
        case Compare::Ge:
          b.blt(word, want, next);
          break;
        case Compare::AnySet:
          b.and_(word, word, want);
          b.beq(word, 0, next);
          break;
      }
      b.putreg(word);
      b.putreg(want);
    }
    b.ret(int64_t(s + 1));
    b.place(next);
  }
  b.ret(int64_t(0));
  b.finish();
  pred->code_ = vcode::compile(m);
  pred->fn_ = pred->code_.as<uint32_t(const uint64_t*)>("wakeup");
  g_compilations.fetch_add(1);

  for (const auto& sub : spec.any_of)
    for (const PredicateTerm& t : sub) {
      uint64_t page = t.va & ~(kPageSize - 1);
      env.mmu().pin(page);
      pred->pinned_.push_back(page);
    }
  return pred;
}

CompiledPredicate::~CompiledPredicate() {
  if (env_ && env_->predicate() == this) env_->set_predicate(nullptr);
  for (uint64_t page : pinned_) env_->mmu().unpin(page);
}

void CompiledPredicate::set_param(uint32_t i, uint64_t value) {
  if (i >= params()) fail("predicate parameter {} (it has {})", i, params());
  params_[subs_ + i] = value;
}

void CompiledPredicate::enable(uint32_t sub, bool on) {
  if (sub >= subs_) fail("predicate sub-predicate {} (it has {})", sub, subs_);
  params_[sub] = on;
}

}  // namespace exojit::runtime
