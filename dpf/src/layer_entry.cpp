// SPDX-License-Identifier: MIT
// The reader view (reader_view_p.h): built from the layers, and compiled into a layered
// engine's entry -- one small generated function that runs both layers' code and applies
// ReaderView::answer's rules, so that demux serves a layered engine inline too.
#include <exojit/vcode/builder.h>

#include <algorithm>

#include "layer_p.h"
#include "reader_view_p.h"

namespace exojit::dpf::detail {

std::unique_ptr<ReaderView> ReaderView::of(const Layer& base, const Layer& recent) {
  auto v = std::make_unique<ReaderView>();
  v->base = base.fn;
  v->recent = recent.empty() ? nullptr : recent.fn;
  v->base_dead.assign(base.dead.begin(), base.dead.end());
  v->recent_dead.assign(recent.dead.begin(), recent.dead.end());
  std::sort(v->base_dead.begin(), v->base_dead.end());
  std::sort(v->recent_dead.begin(), v->recent_dead.end());
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

}  // namespace

vcode::Code compile_entry(const ReaderView& v, bool harden) {
  vcode::Module m;
  uint32_t base = m.add_extern("dpf_base", v.base);
  Builder b(m, "dpf_layers", Type::U64, {Type::P, Type::U64}, {RegClass::Var, RegClass::Var});
  Reg pkt = b.arg(0), len = b.arg(1);
  Label out = b.label();  // the answer needs the mutex
  Reg k = b.getreg(Type::U64, RegClass::Var);
  b.ccall(k, base, {pkt, len});
  b.beq(k, int64_t(kNeedsMutex), out);
  if (!v.base_dead.empty()) {  // a masked id: its packets need the walk
    Label go = b.label();
    Reg id = id_of(b, k);
    b.beq(id, 0, go);
    member(b, id, v.base_dead, 0, v.base_dead.size(), out, go);
    b.place(go);
    b.putreg(id);
  }
  if (v.recent) {
    uint32_t recent = m.add_extern("dpf_recent", v.recent);
    Reg r = b.getreg(Type::U64);
    b.ccall(r, recent, {pkt, len});
    b.beq(r, int64_t(kNeedsMutex), out);
    Label recent_none = b.label(), answer = b.label();
    Reg rid = id_of(b, r);
    b.beq(rid, 0, recent_none);
    Reg bid = id_of(b, k);
    b.bne(bid, 0, out);  // both layers answered: the winner rule needs the priorities
    b.putreg(bid);
    if (!v.recent_dead.empty()) member(b, rid, v.recent_dead, 0, v.recent_dead.size(), out, answer);
    b.place(answer);
    b.ret(r);
    b.place(recent_none);
    b.putreg(rid);
    b.putreg(r);
  }
  b.ret(k);
  b.place(out);
  b.ret(int64_t(kNeedsMutex));
  b.finish();
  vcode::CompileOptions co;
  co.blind_constants = harden;  // the masks are owners' ids
  return vcode::compile(m, co);
}

}  // namespace exojit::dpf::detail
