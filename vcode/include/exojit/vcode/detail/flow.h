// SPDX-License-Identifier: MIT
// Definedness tracking shared by the Builder (as instructions are recorded) and the verifier
// (over a finished function). Not part of the API.
//
// A register is defined at a point when every path to it defined the register and did not
// end its life since: a call ends every temporary, and defining a register ends the register
// that held its physical slot before. So at most one register per slot is defined at a time,
// and the state is simply "which register each slot holds": 32 slots, whatever the number of
// registers. The meet of two paths keeps the slots on which they agree.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <vector>

#include "exojit/vcode/ir.h"

namespace exojit::vcode::detail {

inline constexpr uint32_t kNoReg = 0xffffffffu;   // the slot holds nothing defined
inline constexpr uint32_t kAnyReg = 0xfffffffeu;  // not yet known (unreachable so far): anything
inline constexpr size_t kSlotKeys = 2 * 2 * 8;    // file x class x slot

// (same_machine_register in ir.h is the public form of this key's equality.)
inline int slot_key(const RegInfo& ri) {
  return (int(in_float_file(ri.type)) * 2 + int(ri.cls)) * 8 + (ri.slot & 7);
}

struct SlotState {
  std::array<uint32_t, kSlotKeys> reg;

  static SlotState filled(uint32_t v) {
    SlotState s;
    s.reg.fill(v);
    return s;
  }
  bool holds(const RegInfo& ri, uint32_t r) const {
    uint32_t v = reg[size_t(slot_key(ri))];
    return v == r || v == kAnyReg;
  }
  void define(const RegInfo& ri, uint32_t r) { reg[size_t(slot_key(ri))] = r; }
  void call() {  // temporaries (class 0) of both files die
    for (int k = 0; k < 8; ++k) reg[size_t(k)] = reg[size_t(16 + k)] = kNoReg;
  }
  // Four slots at a time (GCC's and clang's portable vector extension: SSE2 or NEON), since
  // these run at every label and branch the builder records.
  using Lanes = uint32_t __attribute__((vector_size(16)));
  static Lanes lanes(const uint32_t* p) {
    Lanes v;
    std::memcpy(&v, p, sizeof v);
    return v;
  }
  static constexpr Lanes kAnyLanes = {kAnyReg, kAnyReg, kAnyReg, kAnyReg};
  static constexpr Lanes kNoLanes = {kNoReg, kNoReg, kNoReg, kNoReg};

  // Per slot: "anything" takes the other side's value; two different registers make nothing.
  void meet(const SlotState& o) {
    for (size_t k = 0; k < kSlotKeys; k += 4) {
      const Lanes v = lanes(&reg[k]), w = lanes(&o.reg[k]);
      const Lanes any = Lanes(v == kAnyLanes), keep = Lanes(w == kAnyLanes) | Lanes(w == v);
      const Lanes r = (any & w) | (~any & ((keep & v) | (~keep & kNoLanes)));
      std::memcpy(&reg[k], &r, sizeof r);
    }
  }
  // True when everything defined in `sub` is defined here too.
  bool implies(const SlotState& sub) const {
    Lanes bad = {0, 0, 0, 0};
    for (size_t k = 0; k < kSlotKeys; k += 4) {
      const Lanes s = lanes(&sub.reg[k]), v = lanes(&reg[k]);
      bad |= Lanes(s != kNoLanes) & Lanes(v != kAnyLanes) & Lanes(v != s);
    }
    return (bad[0] | bad[1] | bad[2] | bad[3]) == 0;
  }
};

// One pass in program order. At a label the state is the meet of the forward edges seen so far
// (and of the fall-through); a backward edge must bring a state that implies the label's, else
// the pass is not conclusive and the caller runs the full iterative analysis. Errors found are
// real: the states are never smaller than the true ones.
class FlowTracker {
 public:
  void start(const Function& f) {
    state_ = SlotState::filled(kNoReg);
    for (Reg p : f.params) state_.define(f.regs[p.id], p.id);
    reachable_ = true;
    conclusive_ = true;
  }

  bool reachable() const { return reachable_; }
  bool conclusive() const { return conclusive_; }
  bool defined(const Function& f, uint32_t r) const { return state_.holds(f.regs[r], r); }
  // The same, given the register's slot key (the Builder keeps them at hand).
  bool defined_at(int key, uint32_t r) const {
    uint32_t v = state_.reg[size_t(key)];
    return v == r || v == kAnyReg;
  }
  void define_at(int key, uint32_t r) { state_.reg[size_t(key)] = r; }
  void define(const Function& f, uint32_t r) { state_.define(f.regs[r], r); }
  void call() { state_.call(); }
  void indirect_jump() {  // may reach any address-taken label: leave it to the full analysis
    conclusive_ = false;
    reachable_ = false;
  }
  void terminate() { reachable_ = false; }

  // A branch or jump to `label` from instruction `at`.
  void edge(uint32_t label, size_t at) {
    Label& l = label_(label);
    if (l.first_ref < 0) l.first_ref = int64_t(at);
    if (l.placed >= 0) {
      if (!state_.implies(l.state)) conclusive_ = false;
    } else if (l.has_pred) {
      l.state.meet(state_);
    } else {
      l.state = state_;
      l.has_pred = true;
    }
  }
  void reference(uint32_t label, size_t at) {  // la: the label must be placed somewhere
    Label& l = label_(label);
    if (l.first_ref < 0) l.first_ref = int64_t(at);
  }
  // Places `label` at instruction `at`; false if it was placed before.
  bool place(uint32_t label, size_t at) {
    Label& l = label_(label);
    if (l.placed >= 0) return false;
    l.placed = int64_t(at);
    if (!reachable_)
      state_ = l.has_pred ? l.state : SlotState::filled(kAnyReg);
    else if (l.has_pred)
      state_.meet(l.state);
    l.state = state_;
    reachable_ = true;
    return true;
  }
  // A label referenced but never placed, or -1: returns the label and its first reference.
  int64_t unplaced_label(int64_t* at) const {
    for (size_t i = 0; i < labels_.size(); ++i)
      if (labels_[i].first_ref >= 0 && labels_[i].placed < 0) {
        *at = labels_[i].first_ref;
        return int64_t(i);
      }
    return -1;
  }

 private:
  struct Label {
    // (state is written before it is read, by the first edge or place: a constructor of its own
    // keeps vector::resize from zeroing it.)
    Label() {}
    SlotState state;
    bool has_pred = false;
    int64_t placed = -1;
    int64_t first_ref = -1;
  };
  Label& label_(uint32_t id) {
    // (At least 32 at first: each growth moves every label's 128-byte state.)
    if (id >= labels_.size()) [[unlikely]]
      labels_.resize(std::max({size_t(id) + 1, labels_.size() * 2, size_t(32)}));
    return labels_[id];
  }

  SlotState state_;
  std::vector<Label> labels_;
  bool reachable_ = true;
  bool conclusive_ = true;
};

}  // namespace exojit::vcode::detail
