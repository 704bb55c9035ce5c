// SPDX-License-Identifier: MIT
#include "exojit/ash/compose.h"

#include "exojit/error.h"
#include "exojit/pipes/library.h"

namespace exojit::ash {

using vcode::Op;

void LayerContext::fail() {
  *fail_used_ = true;
  b.jmp(*fail_label_);
}

void LayerContext::fail_if(Op op, Reg a, int64_t imm) {
  *fail_used_ = true;
  vcode::Label l = *fail_label_;
  switch (op) {
    case Op::Blt:
      return b.blt(a, imm, l);
    case Op::Ble:
      return b.ble(a, imm, l);
    case Op::Bgt:
      return b.bgt(a, imm, l);
    case Op::Bge:
      return b.bge(a, imm, l);
    case Op::Beq:
      return b.beq(a, imm, l);
    case Op::Bne:
      return b.bne(a, imm, l);
    default:
      exojit::fail("fail_if: {} is not a compare-and-branch", vcode::op_name(op));
  }
}

void LayerContext::fail_if(Op op, Reg a, Reg r) {
  *fail_used_ = true;
  vcode::Label l = *fail_label_;
  switch (op) {
    case Op::Blt:
      return b.blt(a, r, l);
    case Op::Ble:
      return b.ble(a, r, l);
    case Op::Bgt:
      return b.bgt(a, r, l);
    case Op::Bge:
      return b.bge(a, r, l);
    case Op::Beq:
      return b.beq(a, r, l);
    case Op::Bne:
      return b.bne(a, r, l);
    default:
      exojit::fail("fail_if: {} is not a compare-and-branch", vcode::op_name(op));
  }
}

int LayerContext::add_pipe(std::string name, int gauge, unsigned attrs,
                           const pipes::PipeList::Definition& d) {
  if (data_list_ >= 0) exojit::fail("add_pipe after the data pass (pipes are added by bodies)");
  return data_.add(std::move(name), gauge, attrs, d);
}

int LayerContext::add_library_pipe(int (*make)(pipes::PipeList&)) {
  if (data_list_ >= 0)
    exojit::fail("add_library_pipe after the data pass (pipes are added by bodies)");
  return make(data_);
}

void LayerContext::deliver_to(Reg va) {
  if (deliver_.valid()) exojit::fail("two layers deliver the data part");
  deliver_ = va;
}

void LayerContext::pipe_get(Reg d, int pipe, const std::string& reg) {
  if (data_list_ < 0) exojit::fail("pipe_get before the data pass (use it in commit parts)");
  b.pipe_get(d, b.pipe_ref(data_list_, pipe, reg));
}

Reg LayerContext::shared(const std::string& name, vcode::Type t) {
  auto it = shared_.find(name);
  if (it != shared_.end()) {
    if (b.function().reg(it->second.id).type != t)
      exojit::fail("shared register {} has another type", name);
    return it->second;
  }
  Reg r = b.getreg(t, RegClass::Var);
  shared_.emplace(name, r);
  return r;
}

void compose(HandlerBuilder& h, const std::vector<Layer*>& layers) {
  if (layers.empty()) exojit::fail("compose: no layers");
  LayerContext c(h);
  const size_t n = layers.size();
  std::vector<vcode::Label> body_fail, commit_fail;
  std::vector<uint8_t> body_used(n, 0), commit_used(n, 0);
  for (size_t i = 0; i < n; ++i) {
    body_fail.push_back(h.label());
    commit_fail.push_back(h.label());
  }
  vcode::Label final_abort = h.label();
  bool final_used = false;

  // 1. Bodies, lowest first.
  for (size_t i = 0; i < n; ++i) {
    bool used = false;
    c.fail_label_ = &body_fail[i];
    c.fail_used_ = &used;
    layers[i]->body(c);
    body_used[i] = used;
  }
  // 2. The data pass: one fused pipe list over the rest of the message.
  Reg left = h.getreg(vcode::Type::U64);
  h.remaining(left);
  if (!c.data_.empty()) {
    c.data_list_ = h.add_pipes(c.data_);
    if (c.deliver_.valid())
      h.consume(c.deliver_, left, c.data_list_);
    else
      h.scan(left, c.data_list_);
  } else if (c.deliver_.valid()) {
    h.consume(c.deliver_, left);
  }
  h.putreg(left);
  // 3. Commit parts in FIFO order.
  for (size_t i = 0; i < n; ++i) {
    bool used = false;
    c.fail_label_ = &commit_fail[i];
    c.fail_used_ = &used;
    layers[i]->commit(c);
    commit_used[i] = used;
  }
  h.commit();

  // Abort parts cannot fail further: a fail() there just aborts the handler.
  c.fail_label_ = &final_abort;
  c.fail_used_ = &final_used;
  // A body failure: its abort part and those below it, highest first (falling through).
  size_t top = n;
  for (size_t i = n; i-- > 0;)
    if (body_used[i]) {
      top = i;
      break;
    }
  if (top < n) {
    for (size_t i = top + 1; i-- > 0;) {
      h.place(body_fail[i]);
      layers[i]->abort(c);
    }
    h.abort();
  }
  // A commit failure: the abort parts of the layers above it, lowest first.
  for (size_t j = 0; j < n; ++j) {
    if (!commit_used[j]) continue;
    h.place(commit_fail[j]);
    for (size_t k = j + 1; k < n; ++k) layers[k]->abort(c);
    h.abort();
  }
  if (final_used) {
    h.place(final_abort);
    h.abort();
  }
  h.finish();
}

// -- library layers --

void EthernetLayer::body(LayerContext& c) {
  HandlerBuilder& b = c.b;
  Reg type = b.getreg(vcode::Type::U16);
  b.peek(type, int64_t(12));
  c.fail_if(Op::Bne, type, 0x0800);
  b.putreg(type);
  b.skip(int64_t(14));
}

void Ipv4Layer::body(LayerContext& c) {
  HandlerBuilder& b = c.b;
  Reg t8 = b.getreg(vcode::Type::U8);
  b.peek(t8, int64_t(0));
  c.fail_if(Op::Bne, t8, 0x45);  // version 4, no options
  b.peek(t8, int64_t(9));
  c.fail_if(Op::Bne, t8, 17);  // UDP
  b.putreg(t8);
  Reg w = b.getreg(vcode::Type::U32), acc = b.getreg(vcode::Type::U32);
  b.peek(w, int64_t(16));
  c.fail_if(Op::Bne, w, int64_t(ip_));
  // Header checksum: 32-bit big-endian words summed with end-around carry fold to the 16-bit
  // sum (RFC 1071), which must be all ones.
  b.set(acc, 0);
  for (int k = 0; k < 5; ++k) {
    b.peek(w, int64_t(4 * k));
    b.cksum(acc, acc, w);
  }
  b.cksum_fold(acc, acc);
  c.fail_if(Op::Bne, acc, 0xffff);
  // The UDP pseudo-header's addresses and protocol.
  Reg pseudo = c.shared("ip.pseudo", vcode::Type::U32);
  b.set(pseudo, 17);
  b.peek(w, int64_t(12));
  b.cksum(pseudo, pseudo, w);
  b.peek(w, int64_t(16));
  b.cksum(pseudo, pseudo, w);
  b.putreg(w);
  b.putreg(acc);
  b.skip(int64_t(20));
}

void UdpLayer::body(LayerContext& c) {
  HandlerBuilder& b = c.b;
  Reg w16 = b.getreg(vcode::Type::U16), w = b.getreg(vcode::Type::U32);
  b.peek(w16, int64_t(2));
  c.fail_if(Op::Bne, w16, port_);
  sum_ = b.getreg(vcode::Type::U32, RegClass::Var);
  b.mov(sum_, c.shared("ip.pseudo", vcode::Type::U32));
  b.peek(w16, int64_t(4));  // the UDP length, also in the pseudo-header
  b.cvt(w, w16);
  b.cksum(sum_, sum_, w);
  b.peek(w, int64_t(0));  // ports
  b.cksum(sum_, sum_, w);
  b.peek(w, int64_t(4));  // length and checksum
  b.cksum(sum_, sum_, w);
  b.putreg(w16);
  b.putreg(w);
  cksum_pipe_ = c.add_library_pipe(pipes::library::cksum);
  b.skip(int64_t(8));
}

void UdpLayer::commit(LayerContext& c) {
  HandlerBuilder& b = c.b;
  Reg ck = b.getreg(vcode::Type::U16);
  vcode::Label none = b.label();
  b.peek_at(ck, int64_t(40));
  b.beq(ck, 0, none);  // the sender computed no checksum
  b.putreg(ck);
  Reg acc = b.getreg(vcode::Type::U32), half = b.getreg(vcode::Type::U16);
  c.pipe_get(acc, cksum_pipe_, "acc");
  // The pipe summed the data in memory order (little-endian words): fold, then swap the bytes
  // to add it to the big-endian header sums (RFC 1071, 2(B)).
  b.cksum_fold(acc, acc);
  b.cvt(half, acc);
  b.bswap(half, half);
  b.cvt(acc, half);
  b.cksum(sum_, sum_, acc);
  b.cksum_fold(acc, sum_);
  c.fail_if(Op::Bne, acc, 0xffff);
  b.putreg(acc);
  b.putreg(half);
  b.place(none);
}

}  // namespace exojit::ash
