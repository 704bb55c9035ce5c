// SPDX-License-Identifier: MIT
// Recording and checking pipe bodies.
#include "exojit/pipes/pipe.h"

#include <fmt/format.h>

#include <string>

#include "exojit/error.h"
#include "exojit/vcode/text.h"

namespace exojit::pipes {

using vcode::Op;

namespace {

Type gauge_type(int gauge) {
  switch (gauge) {
    case 8:
      return Type::U8;
    case 16:
      return Type::U16;
    case 32:
      return Type::U32;
    case 64:
      return Type::U64;
    default:
      fail("pipe gauge {} is not supported: 8, 16, 32 or 64 bits", gauge);
  }
}

// The body's records hold together: one parameter, the input, of the gauge's type; every
// register the code or a persistent register names exists, is an integer and, for persistent
// ones, of the type declared. Whatever the builder made passes; what matters is a body edited
// after add() (its records are the author's, reachable through the PipeBody's function()).
void check_records(const Pipe& p) {
  const vcode::Function& f = p.body();
  auto refuse = [&](const std::string& why) { fail("pipe '{}': {}", p.name, why); };
  if (f.params.size() != 1 || f.params[0].id >= f.regs.size() ||
      f.regs[f.params[0].id].type != gauge_type(p.gauge))
    refuse("the body's parameter is not its input word");
  for (const PersistentInfo& info : p.persistent)
    if (info.reg >= f.regs.size() || info.reg == f.params[0].id ||
        f.regs[info.reg].type != info.type || !vcode::is_int(info.type))
      refuse(fmt::format("persistent register '{}' does not match the body's", info.name));
  for (const vcode::Insn& in : p.code) {
    // Calls name their arguments through call_args: refused by check_body before it reads them.
    if (vcode::has_flag(in.op, vcode::kOpCall)) continue;
    auto known = [&](uint32_t r) {
      if (r >= f.regs.size() || !vcode::is_int(f.regs[r].type))
        refuse(fmt::format("register %r{} is not an integer register of the body", r));
    };
    vcode::for_each_use(f, in, known);
    if (int64_t d = vcode::defined_reg(in); d >= 0) known(uint32_t(d));
  }
}

// Bodies are straight-line scalar code: no control flow, memory, calls, faults or vectors.
void check_body(const Pipe& p) {
  check_records(p);
  const vcode::Function& f = p.body();
  const uint32_t input = f.params[0].id;
  for (const vcode::Insn& in : p.code) {
    auto refuse = [&](const char* why) {
      fail("pipe '{}': `{}`: {}", p.name, vcode::print_insn(p.module, f, in), why);
    };
    // What the instruction table says about the opcode decides; the scalar loops copy the
    // records of these three forms (scalar.cpp).
    const vcode::Op op = in.op;
    if (vcode::refers_to_label(op) || vcode::is_terminator(op) ||
        vcode::has_flag(op, vcode::kOpCodeAddress))
      refuse("a pipe body is straight-line code (no labels, branches or returns)");
    if (vcode::is_memory(op) || vcode::has_flag(op, vcode::kOpStackAddress))
      refuse("a pipe body does not access memory: the pipe compiler moves the data");
    if (vcode::has_flag(op, vcode::kOpCall)) refuse("a pipe body does not call functions");
    if (vcode::has_flag(op, vcode::kOpTraps))
      refuse("a pipe body does not divide (it could fault)");
    bool vector = vcode::is_vector(in.type);
    vcode::for_each_use(f, in, [&](uint32_t r) { vector |= vcode::is_vector(f.regs[r].type); });
    if (vector) refuse("pipes are written in scalar code; the compiler vectorizes them");
    const vcode::Form form = vcode::form_of(op);
    if (form != vcode::Form::Binary && form != vcode::Form::Unary && form != vcode::Form::SetImm)
      refuse("a pipe body uses scalar arithmetic, set and the networking instructions");
    if (p.non_modifying() && vcode::defined_reg(in) == int64_t(input))
      refuse("the pipe is declared non-modifying but writes its input");
  }
}

}  // namespace

PipeBody::PipeBody(Pipe& pipe, Type input_type)
    : vcode::Builder(pipe.module, pipe.name, Type::Void, {input_type}), pipe_(pipe) {}

Reg PipeBody::persistent(Type t, std::string name, uint64_t initial) {
  if (!vcode::is_int(t))
    fail("pipe '{}': persistent register '{}' must be an integer or pointer type", pipe_.name,
         name);
  for (const PersistentInfo& p : pipe_.persistent)
    if (p.name == name)
      fail("pipe '{}': persistent register '{}' declared twice", pipe_.name, name);
  Reg r = getreg(t, vcode::RegClass::Var);
  this->name(r, name);
  // The register holds the caller's value on entry; this record says so to the verifier and
  // is not part of the body.
  size_t at = function().code.size();
  set(r, 0);
  pipe_.persistent.push_back(PersistentInfo{std::move(name), t, initial, r.id, at});
  return r;
}

int PipeList::add(std::string name, int gauge, unsigned attrs, const Definition& define) {
  if (name.empty()) fail("a pipe needs a name");
  if (attrs & ~unsigned(kCommutative | kNonModifying))
    fail("pipe '{}': unknown attribute bits {:#x}", name, attrs);
  auto pipe = std::make_shared<Pipe>();
  pipe->name = std::move(name);
  pipe->gauge = gauge;
  pipe->attrs = attrs;
  Type input = gauge_type(gauge);
  {
    PipeBody body(*pipe, input);
    body.name(body.input(), "in");
    define(body);
    body.ret();
    body.finish();
  }
  const auto& records = pipe->body().code;
  for (size_t i = 0; i + 1 < records.size(); ++i) {
    bool entry = false;
    for (const PersistentInfo& info : pipe->persistent) entry |= info.entry_def == i;
    if (!entry) pipe->code.push_back(records[i]);
  }
  check_body(*pipe);
  pipes_.push_back(std::move(pipe));
  return int(pipes_.size() - 1);
}

PipeList PipeList::checked_copy() const {
  PipeList out;
  for (const std::shared_ptr<const Pipe>& p : pipes_) {
    auto c = std::make_shared<Pipe>();
    c->name = p->name;
    c->gauge = p->gauge;
    c->attrs = p->attrs;
    c->persistent = p->persistent;
    c->code = p->code;
    const vcode::Function& body = p->body();
    c->module.add_function(body.name, body.sig) = body;
    check_body(*c);
    out.pipes_.push_back(std::move(c));
  }
  return out;
}

int PipeList::find(std::string_view name) const {
  for (size_t i = 0; i < pipes_.size(); ++i)
    if (pipes_[i]->name == name) return int(i);
  return -1;
}

}  // namespace exojit::pipes
