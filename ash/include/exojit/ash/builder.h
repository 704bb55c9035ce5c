// SPDX-License-Identifier: MIT
// Writing an ASH ([ASH96], section 2): the vcode builder plus the message primitives.
//
//   HandlerBuilder h("remote_write");
//   Reg dst = h.getreg(Type::P, RegClass::Var), len = h.getreg(Type::U64, RegClass::Var);
//   h.consume_field(dst, Endian::Little);         // the destination address (8 bytes)
//   h.consume_field(len, Endian::Little);         // the length (8 bytes)
//   h.consume(dst, len);                          // copy len message bytes to dst (pipes: DILP)
//   h.commit();
//
// The handler is a vcode function; ordinary instructions compute, and every load or store
// through a register addresses the *application's* memory (virtual addresses of the
// environment the handler is installed for): the sandbox (ash/README.md) checks and translates
// each of them. Message bytes are reachable only through the primitives below. Locals (stack
// slots) are the handler's own scratch memory.
//
// Primitives come in two kinds, as they lower (ash/README.md, "How a handler is made safe"):
//   inline:  peek, peek_at, consume_field, skip, msg_length, remaining — recorded as loads/stores
//   based
//            on the reserved state register, so temporaries survive them;
//   calls:   consume (data through pipes), scan, pipe_get/pipe_set, reply_*, — recorded as
//            calls (temporaries do not survive them, as for any vcode call).
// commit() and abort() end the handler (ret 1 / ret 0).
//
// Registers: the builder reserves one variable (the run-time state) and three temporaries (the
// sandbox's scratch registers); the rest of vcode's pools is the handler's.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "exojit/pipes/pipe.h"
#include "exojit/vcode/builder.h"

namespace exojit::ash {

using vcode::Label;
using vcode::Reg;
using vcode::RegClass;
using vcode::Type;

enum class Endian : uint8_t { Little, Big };

// A primitive's operand: a register of the handler or a constant.
using Operand = std::variant<Reg, int64_t>;

// The run-time primitives a handler's calls stand for (one Site per call site).
enum class PrimKind : uint8_t {
  // inline
  Peek,          // d = message[cursor + off], width of d
  PeekAt,        // d = message[off] (an absolute offset: headers behind the cursor)
  ConsumeField,  // d = message[cursor]; cursor += width
  Skip,          // cursor += n
  Length,        // d = message length
  Remaining,     // d = length - cursor
  // calls
  Consume,     // copy n message bytes at cursor to application va through pipe list `pipes`
  Scan,        // run read-only pipe list `pipes` over n message bytes at cursor; cursor += n
  PipeGet,     // d = persistent register `ref`
  PipeSet,     // persistent register `ref` = v
  ReplyBegin,  // empty the reply under construction
  ReplyPut,    // append v (width bytes, endian)
  ReplyPoke,   // write v (width bytes, endian) at reply offset off
  ReplyCopy,   // append n message bytes from absolute message offset off
  ReplyApp,    // append n bytes of application memory at va through pipe list `pipes`
  ReplyCksum,  // d = one's-complement sum (folded, not complemented) of reply bytes [off, off+n)
  ReplySend,   // transmit the reply; d = 1 sent, 0 refused (no capability, ring full, flood)
};

std::string_view prim_name(PrimKind k);
inline bool prim_is_inline(PrimKind k) {
  return k <= PrimKind::Remaining;
}

// What one primitive call site needs beyond its registers.
struct Site {
  PrimKind kind;
  Endian endian = Endian::Little;
  uint8_t width = 0;  // bytes of the value (peek, put, poke)
  int pipes = -1;     // pipe list index (consume, scan, reply_app); -1: a plain copy
  int ref = -1;       // persistent-register reference (pipe_get/pipe_set)
  Type result = Type::Void;
  // Operands in order; the register ones are passed at run time, constants are kept here.
  std::vector<Operand> operands;
};

// A persistent register of a pipe in one of the handler's pipe lists.
struct PipeRef {
  int pipes;  // pipe list index
  int pipe;   // pipe id within the list
  std::string reg;
};

namespace detail {
struct ModuleHolder {
  vcode::Module held_module;
};
}  // namespace detail

class HandlerBuilder : private detail::ModuleHolder, public vcode::Builder {
 public:
  explicit HandlerBuilder(std::string name = "handler");
  HandlerBuilder(const HandlerBuilder&) = delete;
  HandlerBuilder& operator=(const HandlerBuilder&) = delete;

  const std::string& name() const { return name_; }

  // -- inline message primitives (bounds-checked against the message; out of bounds aborts) --
  // d = the value of d's width at message offset cursor + off (off >= 0).
  void peek(Reg d, Operand off, Endian e = Endian::Big);
  // The same at an absolute message offset (layers re-reading headers already consumed).
  void peek_at(Reg d, Operand off, Endian e = Endian::Big);
  // d = the value at the cursor, which advances past it (the paper's consume into a variable).
  void consume_field(Reg d, Endian e = Endian::Big);
  void skip(Operand n);
  void msg_length(Reg d);
  void remaining(Reg d);

  // -- data transfer (DILP) --
  // A pipe list the handler uses; returns its index. Compiled when the handler is installed.
  int add_pipes(pipes::PipeList pl);
  const std::vector<pipes::PipeList>& pipe_lists() const { return pipe_lists_; }
  // Copies n message bytes at the cursor to application address va through pipe list `pipes`
  // (-1: a plain copy), advancing the cursor. Aborts (fault) if the message is shorter or the
  // destination is not writable application memory; charged per pipe-loop iteration.
  void consume(Operand va, Operand n, int pipes = -1);
  // Runs read-only pipe list `pipes` over n message bytes at the cursor, advancing it.
  void scan(Operand n, int pipes);
  int pipe_ref(int pipes, int pipe, std::string reg);  // a handle for pipe_get/pipe_set
  void pipe_get(Reg d, int ref);
  void pipe_set(int ref, Operand v);

  // -- message initiation: a reply built in kernel memory, sent on the NIC --
  void reply_begin();
  void reply_put(Operand v, int width, Endian e = Endian::Big);
  void reply_poke(Operand off, Operand v, int width, Endian e = Endian::Big);
  void reply_copy(Operand msg_off, Operand n);
  void reply_app(Operand va, Operand n, int pipes = -1);
  void reply_cksum(Reg d, Operand off, Operand n);
  void reply_send(Reg ok = Reg{});

  // -- ends --
  void commit() { ret(1); }
  void abort() { ret(0); }

  // What the sandbox reads. The reserved registers are the ones this builder took when it was
  // made; the sandbox checks that the records still say so (they may have been edited).
  Reg state() const { return state_; }
  const std::vector<Reg>& scratch() const { return scratch_; }
  const std::vector<Site>& sites() const { return sites_; }
  const std::vector<PipeRef>& pipe_refs() const { return refs_; }
  const vcode::Module& module() const { return held_module; }
  // Inline primitives are loads/stores on the state register with this tag in the displacement.
  static constexpr int64_t kSiteTag = int64_t(1) << 40;
  // Call primitives are calls to externs named "ash.<kind>#<site>"; the site of an extern:
  int site_of_extern(uint32_t ext) const {
    return ext < extern_site_.size() ? extern_site_[ext] : -1;
  }

 private:
  uint32_t add_site(Site s);
  void peek_site(PrimKind k, Reg d, Operand off, Endian e);
  void call_site(Site s, Reg result);
  Reg operand_reg(const Operand& o) const { return std::get<Reg>(o); }

  std::string name_;
  Reg state_;
  std::vector<Reg> scratch_;
  std::vector<Site> sites_;
  std::vector<int> extern_site_;
  std::vector<pipes::PipeList> pipe_lists_;
  std::vector<PipeRef> refs_;
};

}  // namespace exojit::ash
