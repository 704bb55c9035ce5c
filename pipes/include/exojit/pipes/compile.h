// SPDX-License-Identifier: MIT
// Compiling a pipe list into one data-copying loop.
//
//   CompiledPipes ilp = compile(pl, Direction::Write);
//   ilp.set(cksum, "acc", 0);           // export: seed the accumulator
//   ilp(dst, src, len);                 // copy src to dst through every pipe, in list order
//   uint32_t acc = uint32_t(ilp.get(cksum, "acc"));  // import
//
// The message is processed as a sequence of words of each pipe's gauge, in memory byte order
// (a 32-bit pipe's input is the little-endian value of 4 message bytes on x86-64). Pipes run in
// list order on each word; a pipe sees the output of the one before it, so non-modifying pipes
// placed before a modifying one see the original data. Any length and alignment works.
//
// The tail rule. A message whose length is not a multiple of a pipe's gauge ends in a partial
// word of r bytes: that pipe sees it zero-padded to its gauge (the missing high-address bytes
// are 0), and only the r real bytes of its output go on (to the next pipe, and to dst). This is
// RFC 1071's rule for the Internet checksum's odd byte, and the result is exactly that of running
// each pipe's straightforward one-pass C reference (reference.h) over the whole message, one
// after another.
//
// The loop (what compile() chooses, per list): a vector loop when every pipe is commutative and
// lane-wise (a map) or a reduction the lanes can share (cksum, add), unrolled over 4 vector
// registers of the widest width the CPU offers; then an unrolled scalar loop over 64-bit chunks
// (crc32c and same-width cksum reductions take whole chunks); then words of the widest gauge;
// then the tail. Persistent registers stay in machine registers for the whole call.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "exojit/pipes/pipe.h"
#include "exojit/vcode/code.h"
#include "exojit/vcode/interp.h"

namespace exojit::pipes {

enum class Direction {
  Write,     // copy src to dst through the pipes
  ReadOnly,  // run the pipes over src; dst is not touched (may be null)
};

enum class Backend {
  Native,       // machine code (vcode's x86-64 back end)
  Interpreter,  // the vcode interpreter: the reference semantics, for testing
};

struct CompileOptions {
  Backend backend = Backend::Native;
  // Vector width in bits: -1 = the widest the CPU offers (vcode::vector_width), 0 = scalar
  // loops only, 128 or 256.
  int vector_bits = -1;
  vcode::CompileOptions codegen;
};

// Cost figures of the main loop (the ASH sandbox charges handlers by these).
struct PipeCost {
  uint32_t insns_per_iteration = 0;  // vcode instructions of one main-loop iteration
  uint32_t bytes_per_iteration = 0;  // message bytes one main-loop iteration consumes
  int vector_bits = 0;               // 0: the main loop is scalar
};

class CompiledPipes {
 public:
  using Fn = size_t(void* dst, const void* src, size_t nbytes);

  CompiledPipes(CompiledPipes&&) noexcept;
  CompiledPipes& operator=(CompiledPipes&&) noexcept;
  ~CompiledPipes();

  // Runs the pipes over nbytes of src (writing dst in Direction::Write); returns nbytes.
  // Not reentrant: persistent registers are shared state.
  size_t operator()(void* dst, const void* src, size_t nbytes);

  // The machine-code entry point (Backend::Native only, else an Error).
  Fn* function() const;

  // Persistent registers, by pipe id and register name: export (set) and import (get).
  void set(int pipe, std::string_view reg, uint64_t value);
  uint64_t get(int pipe, std::string_view reg) const;
  // The same through a handle looked up once, for per-message use.
  struct Persistent {
    size_t slot;
    Type type;
  };
  Persistent persistent(int pipe, std::string_view reg) const;
  void set(Persistent r, uint64_t value);
  uint64_t get(Persistent r) const;
  void reset();  // every persistent register back to its initial value

  const PipeCost& cost() const;
  Direction direction() const;
  // What was generated: the vcode module (function "pipes") and its machine code.
  const vcode::Module& module() const;
  const vcode::Code& code() const;  // empty with Backend::Interpreter
  // One line per pipe: its shape and how the compiler runs it.
  std::string plan() const;

  struct Impl;

 private:
  friend CompiledPipes compile(const PipeList&, Direction, const CompileOptions&);
  explicit CompiledPipes(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Compiles `pipes` (any number >= 1, in order). Errors: an empty list, too many persistent
// registers or constants for the machine's registers.
CompiledPipes compile(const PipeList& pipes, Direction direction,
                      const CompileOptions& options = {});

}  // namespace exojit::pipes
