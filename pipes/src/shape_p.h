// SPDX-License-Identifier: MIT
// What a pipe's body does, as far as the compiler's choices go (private to pipes/).
//
//   Copy       an empty body: the data passes through.
//   Map        every word is transformed on its own by lane-wise operations (add sub and or xor
//              com neg mov set, shifts by constants, bswap) of the input, temporaries,
//              constants and read-only persistent registers: it can run on vector lanes.
//   Reduction  `acc = cksum|add|crc32c(acc, input)` on a persistent register and nothing else:
//              partial results may be kept in wider (or vector) accumulators and combined at
//              the end, bit for bit as if the words had been taken one at a time.
//   Generic    anything else: run word by word, in order.
#pragma once

#include <cstdint>

#include "exojit/pipes/pipe.h"

namespace exojit::pipes::detail {

struct Shape {
  enum Kind { Copy, Map, Reduction, Generic } kind = Generic;
  vcode::Op op = vcode::Op::Add;  // Reduction: the accumulating operation
  uint32_t acc = 0;               // Reduction: the accumulator's register in the body
  Type acc_type = Type::U64;

  // May run in the vector loop (lane-wise map, or a reduction the lanes can share), which the
  // pipe's attributes must allow: commutative (seeing the words out of order).
  bool vector_ok = false;
  // A reduction that may take a whole 64-bit chunk at once in the scalar loop (crc32c; cksum
  // whose accumulator is as wide as its gauge).
  bool chunk_ok = false;
};

Shape analyze(const Pipe& pipe);

}  // namespace exojit::pipes::detail
