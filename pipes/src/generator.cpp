// SPDX-License-Identifier: MIT
// The generated function's frame: parameters, persistent registers in and out of the state
// block, and the order of the loops.
#include <algorithm>

#include "exojit/error.h"
#include "generator_p.h"

namespace exojit::pipes::detail {

using vcode::RegClass;

Generator::Generator(vcode::Module& m, const PipeList& pipes, Direction dir, int vector_bits,
                     const uint64_t* state)
    : b_(m, "pipes", Type::U64, {Type::P, Type::P, Type::U64}),
      dir_(dir),
      vector_bits_(vector_bits),
      state_(state) {
  size_t slot = 0;
  for (size_t i = 0; i < pipes.size(); ++i) {
    PipeSite site{&pipes[i], analyze(pipes[i]), {}, slot, {}};
    slot += pipes[i].persistent.size();
    widest_gauge_ = std::max(widest_gauge_, pipes[i].gauge);
    sites_.push_back(std::move(site));
  }
  dst_ = b_.arg(0);
  src_ = b_.arg(1);
  n_ = b_.arg(2);
  b_.name(dst_, "dst");
  b_.name(src_, "src");
  b_.name(n_, "n");
}

Reg Generator::alloc(Type t) {
  try {
    return b_.getreg(t, RegClass::Temp);
  } catch (const Error&) {
  }
  try {
    return b_.getreg(t, RegClass::Var);
  } catch (const Error&) {
    size_t persistent = 0;
    for (const PipeSite& s : sites_) persistent += s.pipe->persistent.size();
    fail(
        "pipe list: out of {} registers ({} pipes with {} persistent registers in all; the "
        "loop needs 5 integer registers of its own)",
        vcode::in_float_file(t) ? "vector" : "integer", sites_.size(), persistent);
  }
}

Reg Generator::persistent_reg(const PipeSite& site, uint32_t body_reg) const {
  for (size_t k = 0; k < site.pipe->persistent.size(); ++k)
    if (site.pipe->persistent[k].reg == body_reg) return site.persistent[k];
  return Reg{};
}

void Generator::advance(int64_t bytes) {
  b_.add(src_, src_, bytes);
  if (dir_ == Direction::Write) b_.add(dst_, dst_, bytes);
  b_.sub(rem_, rem_, bytes);
}

PipeCost Generator::generate() {
  // Persistent registers come in from the state block (its address is a constant of the code).
  Reg state = alloc(Type::P);
  b_.set(state, int64_t(reinterpret_cast<uintptr_t>(state_)));
  for (PipeSite& site : sites_) {
    for (size_t k = 0; k < site.pipe->persistent.size(); ++k) {
      const PersistentInfo& info = site.pipe->persistent[k];
      Reg r = alloc(info.type);
      b_.name(r, fmt::format("{}.{}.{}", site.pipe->name, &site - sites_.data(), info.name));
      b_.ld(r, state, int64_t(8 * (site.first_slot + k)));
      site.persistent.push_back(r);
    }
    if (site.shape.kind == Shape::Reduction && site.shape.chunk_ok &&
        site.shape.op == vcode::Op::Cksum && vcode::type_bits(site.shape.acc_type) < 64) {
      site.wide = alloc(Type::U64);
      b_.set(site.wide, 0);
    }
  }
  b_.putreg(state);
  rem_ = alloc(Type::U64);
  b_.name(rem_, "rem");
  b_.mov(rem_, n_);

  if (vectorizable()) vector_loop();
  chunk_loop();
  fold_wide_accumulators();  // (frees their registers for the tail)
  word_loop();
  tail();

  state = alloc(Type::P);
  b_.set(state, int64_t(reinterpret_cast<uintptr_t>(state_)));
  for (PipeSite& site : sites_)
    for (size_t k = 0; k < site.persistent.size(); ++k)
      b_.st(site.persistent[k], state, int64_t(8 * (site.first_slot + k)));
  b_.ret(n_);
  b_.finish();
  return cost_;
}

}  // namespace exojit::pipes::detail
