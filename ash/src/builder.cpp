// SPDX-License-Identifier: MIT
#include "exojit/ash/builder.h"

#include <fmt/format.h>

#include "exojit/error.h"

namespace exojit::ash {

namespace {
// Marker externs are never called once the handler is lowered; the raw IR, run as it is,
// aborts at the first call primitive.
uint32_t unlowered_primitive() {
  return 0;
}

// Offsets into the message are at most 16 bits: messages are at most 64 KiB.
constexpr int64_t kMaxOffset = 0xffff;
}  // namespace

std::string_view prim_name(PrimKind k) {
  switch (k) {
    case PrimKind::Peek:
      return "peek";
    case PrimKind::PeekAt:
      return "peek_at";
    case PrimKind::ConsumeField:
      return "consume_field";
    case PrimKind::Skip:
      return "skip";
    case PrimKind::Length:
      return "msg_length";
    case PrimKind::Remaining:
      return "remaining";
    case PrimKind::Consume:
      return "consume";
    case PrimKind::Scan:
      return "scan";
    case PrimKind::PipeGet:
      return "pipe_get";
    case PrimKind::PipeSet:
      return "pipe_set";
    case PrimKind::ReplyBegin:
      return "reply_begin";
    case PrimKind::ReplyPut:
      return "reply_put";
    case PrimKind::ReplyPoke:
      return "reply_poke";
    case PrimKind::ReplyCopy:
      return "reply_copy";
    case PrimKind::ReplyApp:
      return "reply_app";
    case PrimKind::ReplyCksum:
      return "reply_cksum";
    case PrimKind::ReplySend:
      return "reply_send";
  }
  return "?";
}

HandlerBuilder::HandlerBuilder(std::string name)
    : vcode::Builder(held_module, name, Type::U32, {Type::P}, {RegClass::Var}),
      name_(std::move(name)),
      state_(arg(0)) {
  // The sandbox's scratch registers: taken now so the handler's own registers never use them.
  for (int i = 0; i < 3; ++i) scratch_.push_back(getreg(Type::P, RegClass::Temp));
  vcode::Builder::name(state(), "ash_state");
}

uint32_t HandlerBuilder::add_site(Site s) {
  for (const Operand& o : s.operands)
    if (const int64_t* v = std::get_if<int64_t>(&o); v && (*v < 0 || *v > (int64_t(1) << 48)))
      fail("{}: {}: constant operand {} out of range", name_, prim_name(s.kind), *v);
  sites_.push_back(std::move(s));
  return uint32_t(sites_.size() - 1);
}

void HandlerBuilder::peek(Reg d, Operand off, Endian e) {
  peek_site(PrimKind::Peek, d, off, e);
}

void HandlerBuilder::peek_at(Reg d, Operand off, Endian e) {
  peek_site(PrimKind::PeekAt, d, off, e);
}

void HandlerBuilder::peek_site(PrimKind kind, Reg d, Operand off, Endian e) {
  Type t = function().reg(d.id).type;
  if (!vcode::is_int(t)) fail("{}: peek into a non-integer register", name_);
  if (const int64_t* v = std::get_if<int64_t>(&off); v && *v > kMaxOffset)
    fail("{}: peek offset {} beyond a 64 KiB message", name_, *v);
  uint32_t site = add_site(Site{kind, e, uint8_t(vcode::type_bytes(t)), -1, -1, t, {off}});
  int64_t tag = kSiteTag + site;
  bool big = e == Endian::Big && t != Type::U8 && t != Type::I8;
  if (const Reg* r = std::get_if<Reg>(&off)) {
    if (big)
      ldbe(d, state(), *r, tag);
    else
      ldu(d, state(), *r, tag);
  } else if (big) {
    ldbe(d, state(), tag);
  } else {
    ldu(d, state(), tag);
  }
}

void HandlerBuilder::consume_field(Reg d, Endian e) {
  Type t = function().reg(d.id).type;
  if (!vcode::is_int(t)) fail("{}: consume_field into a non-integer register", name_);
  uint32_t site =
      add_site(Site{PrimKind::ConsumeField, e, uint8_t(vcode::type_bytes(t)), -1, -1, t, {}});
  bool big = e == Endian::Big && t != Type::U8 && t != Type::I8;
  if (big)
    ldbe(d, state(), kSiteTag + site);
  else
    ldu(d, state(), kSiteTag + site);
}

void HandlerBuilder::skip(Operand n) {
  uint32_t site = add_site(Site{PrimKind::Skip, Endian::Little, 0, -1, -1, Type::Void, {n}});
  if (const Reg* r = std::get_if<Reg>(&n))
    stu(*r, state(), kSiteTag + site);
  else
    stu(state(), state(), kSiteTag + site);
}

void HandlerBuilder::msg_length(Reg d) {
  Type t = function().reg(d.id).type;
  uint32_t site = add_site(Site{PrimKind::Length, Endian::Little, 0, -1, -1, t, {}});
  ldu(d, state(), kSiteTag + site);
}

void HandlerBuilder::remaining(Reg d) {
  Type t = function().reg(d.id).type;
  uint32_t site = add_site(Site{PrimKind::Remaining, Endian::Little, 0, -1, -1, t, {}});
  ldu(d, state(), kSiteTag + site);
}

void HandlerBuilder::call_site(Site s, Reg result) {
  std::vector<Reg> args;
  vcode::Signature sig;
  for (const Operand& o : s.operands)
    if (const Reg* r = std::get_if<Reg>(&o)) {
      args.push_back(*r);
      sig.params.push_back(function().reg(r->id).type);
    }
  if (result.valid()) {
    s.result = function().reg(result.id).type;
    if (!vcode::is_int(s.result))
      fail("{}: {} into a non-integer register", name_, prim_name(s.kind));
  }
  sig.ret = result.valid() ? s.result : Type::Void;
  std::string ext_name = fmt::format("ash.{}#{}", prim_name(s.kind), sites_.size());
  uint32_t site = add_site(std::move(s));
  uint32_t ext =
      held_module.add_extern(ext_name, sig, reinterpret_cast<void*>(&unlowered_primitive));
  if (extern_site_.size() <= ext) extern_site_.resize(ext + 1, -1);
  extern_site_[ext] = int(site);
  ccall(result, ext, args);
}

int HandlerBuilder::add_pipes(pipes::PipeList pl) {
  if (pl.empty()) fail("{}: an empty pipe list", name_);
  pipe_lists_.push_back(std::move(pl));
  return int(pipe_lists_.size() - 1);
}

void HandlerBuilder::consume(Operand va, Operand n, int pipes) {
  if (pipes < -1 || pipes >= int(pipe_lists_.size()))
    fail("{}: consume through pipe list {} (the handler has {})", name_, pipes, pipe_lists_.size());
  call_site(Site{PrimKind::Consume, Endian::Little, 0, pipes, -1, Type::Void, {va, n}}, Reg{});
}

void HandlerBuilder::scan(Operand n, int pipes) {
  if (pipes < 0 || pipes >= int(pipe_lists_.size()))
    fail("{}: scan through pipe list {} (the handler has {})", name_, pipes, pipe_lists_.size());
  call_site(Site{PrimKind::Scan, Endian::Little, 0, pipes, -1, Type::Void, {n}}, Reg{});
}

int HandlerBuilder::pipe_ref(int pipes, int pipe, std::string reg) {
  if (pipes < 0 || pipes >= int(pipe_lists_.size()))
    fail("{}: pipe list {} does not exist", name_, pipes);
  if (pipe < 0 || size_t(pipe) >= pipe_lists_[size_t(pipes)].size())
    fail("{}: pipe {} does not exist in pipe list {}", name_, pipe, pipes);
  refs_.push_back(PipeRef{pipes, pipe, std::move(reg)});
  return int(refs_.size() - 1);
}

void HandlerBuilder::pipe_get(Reg d, int ref) {
  if (ref < 0 || size_t(ref) >= refs_.size()) fail("{}: no pipe register reference {}", name_, ref);
  call_site(Site{PrimKind::PipeGet, Endian::Little, 0, -1, ref, Type::Void, {}}, d);
}

void HandlerBuilder::pipe_set(int ref, Operand v) {
  if (ref < 0 || size_t(ref) >= refs_.size()) fail("{}: no pipe register reference {}", name_, ref);
  call_site(Site{PrimKind::PipeSet, Endian::Little, 0, -1, ref, Type::Void, {v}}, Reg{});
}

void HandlerBuilder::reply_begin() {
  call_site(Site{PrimKind::ReplyBegin, Endian::Little, 0, -1, -1, Type::Void, {}}, Reg{});
}

void HandlerBuilder::reply_put(Operand v, int width, Endian e) {
  if (width != 1 && width != 2 && width != 4 && width != 8)
    fail("{}: reply_put of {} bytes (1, 2, 4 or 8)", name_, width);
  call_site(Site{PrimKind::ReplyPut, e, uint8_t(width), -1, -1, Type::Void, {v}}, Reg{});
}

void HandlerBuilder::reply_poke(Operand off, Operand v, int width, Endian e) {
  if (width != 1 && width != 2 && width != 4 && width != 8)
    fail("{}: reply_poke of {} bytes (1, 2, 4 or 8)", name_, width);
  call_site(Site{PrimKind::ReplyPoke, e, uint8_t(width), -1, -1, Type::Void, {off, v}}, Reg{});
}

void HandlerBuilder::reply_copy(Operand msg_off, Operand n) {
  call_site(Site{PrimKind::ReplyCopy, Endian::Little, 0, -1, -1, Type::Void, {msg_off, n}}, Reg{});
}

void HandlerBuilder::reply_app(Operand va, Operand n, int pipes) {
  if (pipes < -1 || pipes >= int(pipe_lists_.size()))
    fail("{}: reply_app through pipe list {} (the handler has {})", name_, pipes,
         pipe_lists_.size());
  call_site(Site{PrimKind::ReplyApp, Endian::Little, 0, pipes, -1, Type::Void, {va, n}}, Reg{});
}

void HandlerBuilder::reply_cksum(Reg d, Operand off, Operand n) {
  call_site(Site{PrimKind::ReplyCksum, Endian::Little, 0, -1, -1, Type::Void, {off, n}}, d);
}

void HandlerBuilder::reply_send(Reg ok) {
  call_site(Site{PrimKind::ReplySend, Endian::Little, 0, -1, -1, Type::Void, {}}, ok);
}

}  // namespace exojit::ash
