// SPDX-License-Identifier: MIT
// Wake-up predicates ([ERLANG99], 4.6.12), compiled with vcode and re-armed without recompiling.
//
// A predicate is a disjunction of sub-predicates ("I/O completed, or an error, or a timeout"),
// each a conjunction of terms comparing a word of the environment's own memory with a parameter.
// The addresses are checked when the predicate is installed (mapped, readable, aligned to their
// width) and their pages pinned; the code is generated once, with the addresses as constants.
// The values compared against and an on/off switch per sub-predicate are parameters read from
// memory at run time: changing them re-arms the predicate at the cost of a store, which is the
// [ERLANG99]'s remedy for ExOS select() spending its time compiling predicates.
//
//   PredicateSpec spec;
//   spec.any_of = {{{ring_va + 4, 4, Compare::Ne, 0}}};   // ring.produced != param 0
//   auto pred = CompiledPredicate::install(kernel, env, spec);
//   pred->set_param(0, consumed);                          // re-arm: no compilation
//   env.set_predicate(pred.get());
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "exojit/runtime/plugins.h"
#include "exojit/vcode/code.h"

namespace exojit::runtime {

class Environment;
class Kernel;

enum class Compare : uint8_t { Eq, Ne, Lt, Le, Gt, Ge, AnySet };  // unsigned; AnySet: (w & p) != 0

struct PredicateTerm {
  uint64_t va;    // the word, in the environment's address space
  uint8_t width;  // 1, 2, 4 or 8 bytes, little-endian as the machine stores it
  Compare compare;
  uint32_t param;  // index of the parameter compared against
};

struct PredicateSpec {
  std::vector<std::vector<PredicateTerm>> any_of;  // OR of ANDs; empty conjunctions always hold
};

class CompiledPredicate : public WakeupPredicate {
 public:
  // Checks every address against the environment's page table, pins the pages, compiles.
  static std::unique_ptr<CompiledPredicate> install(Kernel& kernel, Environment& env,
                                                    const PredicateSpec& spec);
  ~CompiledPredicate() override;

  // 0 when no sub-predicate holds, else 1 + the index of the first enabled one that holds.
  uint32_t evaluate() override { return fn_(params_.data()); }

  // Re-arming: the value of parameter i, and whether sub-predicate s is tested at all.
  void set_param(uint32_t i, uint64_t value);
  void enable(uint32_t sub, bool on);
  uint32_t params() const { return uint32_t(params_.size() - subs_); }

  // Machine-code generations since the process started (tests check re-arming compiles nothing).
  static uint64_t compilations();

 private:
  CompiledPredicate() = default;
  Environment* env_ = nullptr;
  std::vector<uint64_t> pinned_;  // page addresses pinned in env_'s address space
  std::vector<uint64_t> params_;  // [0, subs_): enable flags; then the parameters
  uint32_t subs_ = 0;
  vcode::Code code_;
  uint32_t (*fn_)(const uint64_t*) = nullptr;
};

}  // namespace exojit::runtime
