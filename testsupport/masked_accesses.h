// SPDX-License-Identifier: MIT
// The structural check of speculative-load masking (issue 20): which checked memory accesses of
// a vcode function use an offset or a pointer that did not pass through a bound_mask since its
// check. Shared by the ash and dpf tests.
//
// A forward "must" analysis over the records, per machine register slot (registers that share a
// slot are one: the sandbox's aliases): whether the slot holds a mask (bound_mask's result, or a
// cvt/mov/and of masks) or a masked value (something and-ed with a mask, or passed through
// bound_zero, then shifted or and-ed with a constant); locals remember what was stored at each
// displacement. Paths meet by
// intersection, so a value is masked at an access only when it is on every path to it.
//
// Which accesses are checked: with `roots` empty (an ASH handler), every indexed access outside
// the stack (the sandbox's application and message accesses, and the software TLB's); with
// roots (the parameters holding the packet), every access whose base derives from a root by
// arithmetic (not the tables the code reads through loaded values). A checked access is masked
// when its base or its index is.
#pragma once

#include <cstdint>
#include <map>
#include <utility>
#include <vector>

#include "exojit/vcode/detail/flow.h"
#include "exojit/vcode/ir.h"

namespace exojit::testing {

class MaskedAccesses {
 public:
  MaskedAccesses(const vcode::Function& f, std::vector<uint32_t> roots)
      : f_(f), roots_(std::move(roots)) {}

  // The indexes of the checked accesses that are not masked.
  std::vector<size_t> unmasked() {
    label_in_.assign(f_.num_labels, State{});
    for (int pass = 0; pass < 64; ++pass) {
      std::vector<State> before = label_in_;
      walk(nullptr);
      if (before == label_in_) break;
    }
    std::vector<size_t> bad;
    walk(&bad);
    return bad;
  }
  // How many checked accesses the last unmasked() saw (a test that checks nothing fails).
  size_t checked() const { return checked_; }

 private:
  using Bits = uint32_t;  // one bit per slot key (vcode::detail::kSlotKeys == 32)
  struct Fact {
    bool mask = false, masked = false, derived = false;
    bool operator==(const Fact&) const = default;
  };
  struct State {
    bool top = true;  // not reached yet: the identity of meet
    Bits mask = 0, masked = 0, derived = 0;
    std::map<std::pair<uint32_t, int64_t>, Fact> locals;
    bool operator==(const State&) const = default;
  };

  static void meet(State& into, const State& s) {
    if (s.top) return;
    if (into.top) {
      into = s;
      return;
    }
    into.mask &= s.mask, into.masked &= s.masked, into.derived |= s.derived;
    std::map<std::pair<uint32_t, int64_t>, Fact> locals;
    for (auto& [k, v] : into.locals) {
      auto it = s.locals.find(k);
      Fact w = it == s.locals.end() ? Fact{} : it->second;
      locals[k] = Fact{v.mask && w.mask, v.masked && w.masked, v.derived || w.derived};
    }
    for (auto& [k, w] : s.locals)
      if (!into.locals.count(k)) locals[k] = Fact{false, false, w.derived};
    into.locals = std::move(locals);
  }

  Bits bit(uint32_t r) const { return Bits(1) << vcode::detail::slot_key(f_.regs[r]); }
  Fact get(const State& s, uint32_t r) const {
    Bits b = bit(r);
    return Fact{(s.mask & b) != 0, (s.masked & b) != 0, (s.derived & b) != 0};
  }
  void set(State& s, uint32_t r, Fact v) const {
    Bits b = bit(r);
    s.mask = v.mask ? s.mask | b : s.mask & ~b;
    s.masked = v.masked ? s.masked | b : s.masked & ~b;
    s.derived = v.derived ? s.derived | b : s.derived & ~b;
  }

  State entry() const {
    State s;
    s.top = false;
    for (uint32_t r : roots_) s.derived |= bit(r);
    return s;
  }

  // The fact a record's definition gives its destination.
  Fact defined(const State& s, const vcode::Insn& in) const {
    using vcode::Op;
    const bool imm = in.flags & vcode::kImm;
    const Fact a = vcode::operand_roles(in) & vcode::kUsesA ? get(s, in.a) : Fact{};
    const Fact b = !imm && (vcode::operand_roles(in) & vcode::kUsesB) ? get(s, in.b) : Fact{};
    switch (in.op) {
      case Op::BoundMask:
        return Fact{true, false, false};
      case Op::BoundZero:  // d itself, zeroed unless its check holds
        return Fact{false, true, get(s, in.dst).derived};
      case Op::And:
        if (imm) return Fact{false, a.masked, a.derived};
        return Fact{a.mask && b.mask, a.mask || b.mask || a.masked || b.masked,
                    a.derived || b.derived};
      case Op::Lsh:
      case Op::Rsh:
        return Fact{false, imm && a.masked, false};
      case Op::Mov:
      case Op::Cvt:
        return a;
      case Op::Add:
      case Op::Sub:
        return Fact{false, false, a.derived || b.derived};
      default:
        return Fact{};
    }
  }

  bool is_checked(const State& s, const vcode::Insn& in) const {
    if (in.flags & vcode::kLocalBase) return false;
    if (roots_.empty()) return (in.flags & vcode::kIndex) != 0;
    return get(s, in.a).derived;
  }
  bool is_masked(const State& s, const vcode::Insn& in) const {
    return get(s, in.a).masked || ((in.flags & vcode::kIndex) && get(s, in.b).masked);
  }

  void walk(std::vector<size_t>* bad) {
    checked_ = 0;
    State cur = entry();
    for (size_t i = 0; i < f_.code.size(); ++i) {
      const vcode::Insn& in = f_.code[i];
      if (in.op == vcode::Op::Place) {
        if (!bad) meet(label_in_[in.dst], cur);
        State s = label_in_[in.dst];
        meet(s, cur);
        cur = s;
        continue;
      }
      if (cur.top) continue;  // unreachable
      if (vcode::is_load(in.op) || vcode::is_store(in.op)) {
        if (is_checked(cur, in)) {
          ++checked_;
          if (bad && !is_masked(cur, in)) bad->push_back(i);
        }
        if ((in.flags & vcode::kLocalBase) && vcode::is_store(in.op))
          cur.locals[{in.a, in.imm}] = get(cur, in.dst);
      }
      if (vcode::is_branch(in.op) || in.op == vcode::Op::Jmp) meet(label_in_[in.dst], cur);
      if (int64_t d = vcode::defined_reg(in); d >= 0) {
        Fact v = defined(cur, in);
        if (vcode::is_load(in.op) && (in.flags & vcode::kLocalBase)) {
          auto it = cur.locals.find({in.a, in.imm});
          if (it != cur.locals.end()) v = it->second;
        }
        set(cur, uint32_t(d), v);
      }
      if (in.op == vcode::Op::Call) {  // temporaries die (class 0 of both files)
        Bits temps = 0;
        for (int k = 0; k < 8; ++k) temps |= Bits(1) << k | Bits(1) << (16 + k);
        cur.mask &= ~temps, cur.masked &= ~temps, cur.derived &= ~temps;
      }
      if (vcode::is_terminator(in.op)) cur = State{};
    }
  }

  const vcode::Function& f_;
  std::vector<uint32_t> roots_;
  std::vector<State> label_in_;
  size_t checked_ = 0;
};

}  // namespace exojit::testing
