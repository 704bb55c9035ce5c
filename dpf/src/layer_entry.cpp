// SPDX-License-Identifier: MIT
// The reader view (reader_view_p.h): built from the layers, and compiled into a layered
// engine's entry -- one small generated function that runs both layers' code and applies
// ReaderView::answer's rules, so that demux serves a layered engine inline too.
#include <exojit/vcode/builder.h>

#include <algorithm>

#include "layer_p.h"
#include "reader_view_p.h"

namespace exojit::dpf::detail {

std::unique_ptr<ReaderView> ReaderView::of(const Layer& base, const Layer& recent,
                                           const OpaqueSet& opaque) {
  auto v = std::make_unique<ReaderView>();
  for (const OpaqueSet::Entry& e : opaque.entries())
    v->opaque.push_back(Program{e.key, e.filter.function()});
  v->base = base.fn;
  v->recent = recent.empty() ? nullptr : recent.fn;
  v->base_dead.assign(base.dead.begin(), base.dead.end());
  v->recent_dead.assign(recent.dead.begin(), recent.dead.end());
  std::sort(v->base_dead.begin(), v->base_dead.end());
  std::sort(v->recent_dead.begin(), v->recent_dead.end());
  if (v->recent) {
    // The root chain: single-child steps before any SHIFT, through nodes where no filter ends
    // (follow_chain), so every filter of the layer -- and every killed accept, whose packets
    // the walk answers without it anyway -- lies below each step.
    std::vector<Step> steps;
    follow_chain(&recent.trie.root(), false, &steps);
    for (const Step& s : steps) {
      if (v->recent_guard.size() == kMaxGuard) break;
      const ExprNode& e = *s.expr;
      if (s.kind != Atom::Kind::Compare || s.cmp != Cmp::Eq || e.op != ExprOp::Load ||
          e.bits > 32 || s.value >> e.bits != 0)
        continue;
      v->recent_guard.push_back(GuardAtom{e.offset, e.bits, uint32_t(s.value)});
    }
  }
  return v;
}

namespace {

using vcode::Builder;
using vcode::Label;
using vcode::Reg;
using vcode::RegClass;
using vcode::Type;

// Jumps to `hit` if x is one of sorted[lo, hi), else to `miss`: a binary search (the masks are
// bounded by the merge rule, a few hundred ids at most).
void member(Builder& b, Reg x, const std::vector<uint32_t>& sorted, size_t lo, size_t hi, Label hit,
            Label miss) {
  if (hi - lo <= 4) {
    for (size_t i = lo; i < hi; ++i) b.beq(x, int64_t(sorted[i]), hit);
    b.jmp(miss);
    return;
  }
  size_t mid = lo + (hi - lo) / 2;
  Label right = b.label();
  b.bgt(x, int64_t(sorted[mid]), right);
  b.beq(x, int64_t(sorted[mid]), hit);
  member(b, x, sorted, lo, mid, hit, miss);
  b.place(right);
  member(b, x, sorted, mid + 1, hi, hit, miss);
}

// The id (low half) of layer answer `k` into a fresh temporary.
Reg id_of(Builder& b, Reg k) {
  Reg id = b.getreg(Type::U32);
  b.cvt(id, k);
  return id;
}

// Jumps to `fail` unless the packet passes every guard atom (fields past its end fail).
// Hardened, one check covers every field, and the pointer the loads use is zeroed unless it
// holds (bound_zero right after the check, as the layers' code does: README "Hardening").
void guard(Builder& b, const std::vector<ReaderView::GuardAtom>& atoms, Reg pkt, Reg len,
           bool harden, Label fail) {
  uint64_t need = 0;
  for (const ReaderView::GuardAtom& a : atoms)
    need = std::max<uint64_t>(need, a.offset + a.bits / 8);
  Reg p = pkt;
  if (harden) {
    p = b.getreg(Type::P);
    b.mov(p, pkt);
    Reg m = b.getreg(Type::U64);
    b.set(m, int64_t(need));
    b.bgt(m, len, fail);
    b.bound_zero(p, m, len);
    b.putreg(m);
  } else {
    b.blt(len, int64_t(need), fail);
  }
  for (const ReaderView::GuardAtom& a : atoms) {
    Reg t = b.getreg(a.bits == 8 ? Type::U8 : a.bits == 16 ? Type::U16 : Type::U32);
    if (a.bits == 8)
      b.ldu(t, p, a.offset);
    else
      b.ldbe(t, p, a.offset);
    b.bne(t, int64_t(a.value), fail);
    b.putreg(t);
  }
  if (harden) b.putreg(p);
}

// Jumps to `out` if base answer k (in a register) is a masked id.
void check_masked(Builder& b, Reg k, const std::vector<uint32_t>& dead, Label out) {
  if (dead.empty()) return;
  Label go = b.label();
  Reg id = id_of(b, k);
  b.beq(id, 0, go);
  member(b, id, dead, 0, dead.size(), out, go);
  b.place(go);
  b.putreg(id);
}

}  // namespace

// The layout, for the common packet (one the recent layer's guard refuses): the guard's loads
// and compares, one call of the base's code, its answer returned. The parameters are
// temporaries and the full path keeps them in stack slots across its calls: no callee-saved
// register to save and restore on every packet.
vcode::Code compile_entry(const ReaderView& v, bool harden) {
  vcode::Module m;
  uint32_t base = m.add_extern("dpf_base", v.base);
  Builder b(m, "dpf_layers", Type::U64, {Type::P, Type::U64});
  Reg pkt = b.arg(0), len = b.arg(1);
  Label out = b.label();        // the answer needs the mutex
  Label base_only = b.label();  // the recent layer cannot accept the packet
  Label both = b.label();       // both layers run
  if (v.recent) {
    if (!v.recent_guard.empty()) guard(b, v.recent_guard, pkt, len, harden, base_only);
    b.jmp(both);
  }
  b.place(base_only);
  {
    Reg k = b.getreg(Type::U64);
    b.ccall(k, base, {pkt, len});
    if (!v.base_dead.empty()) {
      b.beq(k, int64_t(kNeedsMutex), out);
      check_masked(b, k, v.base_dead, out);
    }
    b.ret(k);  // kNeedsMutex too: the same answer as the entry's
    b.putreg(k);
  }
  if (v.recent) {
    b.place(both);
    uint32_t recent = m.add_extern("dpf_recent", v.recent);
    vcode::Local saved = b.local(16, 8);
    b.st(pkt, saved, 0);
    b.st(len, saved, 8);
    Reg k = b.getreg(Type::U64);
    b.ccall(k, base, {pkt, len});
    b.beq(k, int64_t(kNeedsMutex), out);
    check_masked(b, k, v.base_dead, out);
    vcode::Local answer = b.local(Type::U64);
    b.st(k, answer, 0);
    b.putreg(k);
    Reg p = b.getreg(Type::P), n = b.getreg(Type::U64);
    b.ld(p, saved, 0);
    b.ld(n, saved, 8);
    Reg r = b.getreg(Type::U64);
    b.ccall(r, recent, {p, n});
    b.putreg(p);
    b.putreg(n);
    b.beq(r, int64_t(kNeedsMutex), out);
    Label recent_none = b.label(), ok = b.label();
    Reg rid = id_of(b, r);
    b.beq(rid, 0, recent_none);
    Reg bk = b.getreg(Type::U64);
    b.ld(bk, answer, 0);
    Reg bid = id_of(b, bk);
    b.bne(bid, 0, out);  // both layers answered: the winner rule needs the priorities
    b.putreg(bid);
    b.putreg(bk);
    if (!v.recent_dead.empty()) member(b, rid, v.recent_dead, 0, v.recent_dead.size(), out, ok);
    b.place(ok);
    b.ret(r);
    b.place(recent_none);
    b.putreg(rid);
    b.putreg(r);
    Reg k2 = b.getreg(Type::U64);
    b.ld(k2, answer, 0);
    b.ret(k2);
    b.putreg(k2);
  }
  b.place(out);
  b.ret(int64_t(kNeedsMutex));
  b.finish();
  vcode::CompileOptions co;
  co.blind_constants = harden;  // the masks and the guard's values are owners' constants
  return vcode::compile(m, co);
}

}  // namespace exojit::dpf::detail
