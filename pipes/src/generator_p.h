// SPDX-License-Identifier: MIT
// The pipe compiler's code generator (private to pipes/): records one vcode function
//
//   u64 pipes(p dst, p src, u64 n)
//
// that loads the persistent registers from the state block, runs the vector loop (vector.cpp),
// the 64-bit chunk loop, the word loop and the tail (scalar.cpp), stores the persistent
// registers back and returns n. See compile.h for the loop structure and the tail rule.
#pragma once

#include <map>
#include <utility>
#include <vector>

#include "exojit/pipes/compile.h"
#include "shape_p.h"

namespace exojit::pipes::detail {

// A pipe of the list as the generated function sees it.
struct PipeSite {
  const Pipe* pipe;
  Shape shape;
  std::vector<Reg> persistent;  // loop registers, parallel to pipe->persistent
  size_t first_slot = 0;        // its first persistent register's slot in the state block
  Reg wide;                     // chunk-wide cksum accumulator (u64), when it has one
};

class Generator {
 public:
  Generator(vcode::Module& m, const PipeList& pipes, Direction dir, int vector_bits,
            const uint64_t* state);
  // Records the whole function; returns the main loop's cost.
  PipeCost generate();

 private:
  friend class VectorLoop;

  // --- registers
  Reg alloc(Type t);  // a free register of either class, or an Error naming the pipe list
  Reg persistent_reg(const PipeSite& site, uint32_t body_reg) const;  // invalid if not one

  // --- scalar.cpp
  void chunk_loop();                // unrolled loop over 64-bit chunks
  void word_loop();                 // words of the widest gauge
  void tail();                      // the last partial word (tail rule)
  void process(Reg word, Reg rem);  // every pipe on one word; rem valid in the tail
  void process_chunk(Reg chunk);    // every pipe on one 64-bit chunk
  void pipe_on_word(PipeSite& site, Reg word, Reg rem, Reg mask);
  void run_body(const PipeSite& site, Reg input);  // transcribes the body once
  void fold_wide_accumulators();

  // --- vector.cpp
  bool vectorizable() const;
  void vector_loop();

  void advance(int64_t bytes);  // src += bytes, dst += bytes, rem -= bytes

  vcode::Builder b_;
  Direction dir_;
  int vector_bits_;
  const uint64_t* state_;
  std::vector<PipeSite> sites_;
  int widest_gauge_ = 8;
  Reg dst_, src_, n_, rem_;
  PipeCost cost_;
};

}  // namespace exojit::pipes::detail
