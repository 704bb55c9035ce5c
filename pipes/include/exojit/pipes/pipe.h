// SPDX-License-Identifier: MIT
// Pipes and pipe lists (ASH paper §2.2, Figures 1-2): small computations on streaming data,
// written once with vcode instructions and composed at run time into one data-copying loop.
//
//   PipeList pl;
//   int cksum = pl.add("cksum", 32, kCommutative | kNonModifying, [](PipeBody& p) {
//     Reg acc = p.persistent(Type::U32, "acc");  // survives iterations and calls
//     p.cksum(acc, acc, p.input());               // any vcode instruction on the input
//   });
//   int swap = pl.add("bswap32", 32, kCommutative, [](PipeBody& p) {
//     p.bswap(p.input(), p.input());              // a modifying pipe rewrites its input
//   });
//   CompiledPipes ilp = compile(pl, Direction::Write);  // see compile.h
//
// A pipe's body is straight-line code over its input register (the next word of the message at
// the pipe's gauge, in memory byte order), its temporaries (getreg) and its persistent registers;
// its output is its input register once the body has run. Bodies may not branch, call, touch
// memory, divide (which could fault) or use vectors or floating point (integer registers only):
// the pipe compiler decides how to unroll, widen and vectorize them, from their attributes and
// what their instructions do.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "exojit/vcode/builder.h"

namespace exojit::pipes {

using vcode::Reg;
using vcode::Type;

// Pipe attributes (ASH paper: P_COMMUTATIVE, P_NO_MOD).
enum PipeAttr : unsigned {
  kPlain = 0,
  kCommutative = 1,   // may see the words of a message out of order
  kNonModifying = 2,  // never writes its input: its output is the data it was given
};

struct PersistentInfo {
  std::string name;
  Type type;
  uint64_t initial;  // the value a new compiled pipe list (or reset()) starts from
  uint32_t reg;      // register id in the pipe's body function
  size_t entry_def;  // the body record that stands for "defined on entry" (not emitted)
};

// One recorded pipe: its attributes and its body as a vcode function `void body(input)`.
struct Pipe {
  std::string name;
  int gauge;  // bits of input and output: 8, 16, 32 or 64
  unsigned attrs;
  vcode::Module module;  // holds the body function
  std::vector<PersistentInfo> persistent;
  // The body's instructions proper: without the persistent registers' entry definitions and
  // the final ret.
  std::vector<vcode::Insn> code;

  const vcode::Function& body() const { return *module.functions()[0]; }
  bool commutative() const { return attrs & kCommutative; }
  bool non_modifying() const { return attrs & kNonModifying; }
};

// What a pipe's definition writes with: the vcode builder of the body, plus the pipe's input and
// its persistent registers.
class PipeBody : public vcode::Builder {
 public:
  // The input word: u8, u16, u32 or u64 by the gauge.
  Reg input() const { return arg(0); }
  // A register that keeps its value across iterations and calls; the caller sets (exports) and
  // reads (imports) it through the compiled pipe list, by pipe and name.
  Reg persistent(Type t, std::string name, uint64_t initial = 0);

 private:
  friend class PipeList;
  PipeBody(Pipe& pipe, vcode::Type input_type);
  Pipe& pipe_;
};

class PipeList {
 public:
  using Definition = std::function<void(PipeBody&)>;

  // Adds a pipe; returns its id (its position in the list). The body is recorded and checked
  // at once: a bad gauge, a forbidden instruction, a non-modifying pipe that writes its input,
  // or a duplicate name is an exojit::Error and leaves the list unchanged.
  int add(std::string name, int gauge, unsigned attrs, const Definition& define);

  size_t size() const { return pipes_.size(); }
  bool empty() const { return pipes_.empty(); }
  const Pipe& operator[](size_t i) const { return *pipes_[i]; }
  std::shared_ptr<const Pipe> share(size_t i) const { return pipes_[i]; }
  int find(std::string_view name) const;  // -1 if absent

  // An independent copy, every pipe checked again from its records: a body's records stay
  // reachable to its author after add() (the PipeBody's function()), so whoever compiles a list
  // handed across a trust boundary (the ASH sandbox) compiles a checked copy of its own. An
  // edited body that no longer passes is an exojit::Error.
  PipeList checked_copy() const;

 private:
  std::vector<std::shared_ptr<const Pipe>> pipes_;  // shared: compiled lists keep their pipes
};

}  // namespace exojit::pipes
