// SPDX-License-Identifier: MIT
// The vcode interpreter: the reference semantics every back end is tested against.
//
// Values. An integer register of type T holds a value of exactly T's width: results are
// truncated to the width (two's complement wrap-around). `p` is a 64-bit unsigned integer.
// Floats follow IEEE 754 in the register's own precision (f32 arithmetic is done in float). The
// sign and payload of a NaN that an operation creates are not specified (IEEE 754 leaves them
// open: x86 makes negative quiet NaNs, AArch64 and LLVM's constant folding positive ones); every
// NaN compares and converts alike.
//
// Arithmetic. div/mod truncate toward zero (signed by type, like C); a zero divisor, and
// INT_MIN / -1 in 32 or 64 bits, are errors (the machine traps on them). lsh/rsh take the count
// modulo 32 for types up to 32 bits and modulo 64 for 64-bit types; rsh is arithmetic for signed
// types. `not` is logical (1 if the operand is 0), `com` bitwise. cvt converts between any two
// numeric types as C does; a float converted to an integer is truncated and must fit in 64 bits
// (it then wraps to the destination width), else it is an error.
//
// Networking instructions (ASH paper §2.2; RFC 1071 "Computing the Internet Checksum"):
//   cksum d, a, b    one's-complement accumulate: d = a + zext(b), and if that carries out of
//                    d's width (u32 or u64), d += 1 (end-around carry). Summing a buffer's 16-,
//                    32- or 64-bit words this way and folding gives the RFC 1071 sum; the sum is
//                    byte-order independent (RFC 1071 §2(B)), so native loads give the checksum
//                    in the buffer's own byte order.
//   cksum_fold d, a  folds a to 16 bits: while (a > 0xffff) a = (a & 0xffff) + (a >> 16). The
//                    result is the sum, not yet complemented: the Internet checksum is
//                    `com` of it (16-bit).
//   bound_mask d, a, b  all ones (at d's width) when a <= b unsigned, else 0: the mask of a
//                    bounds check, computed without a branch (Spectre v1 hardening).
//   bound_zero d, a, b  d = 0 unless a <= b unsigned (d is read): the guarded pointer or index
//                    itself, zeroed without a branch (x86-64 cmov, AArch64 csel).
//   bswap d, a       reverses the bytes of a 16-, 32- or 64-bit value.
//   ld/st            need natural alignment (the interpreter checks it); ldu/stu do not;
//   ldbe/stbe        access big-endian (network order) values at any alignment.
//   crc32c d, a, b   CRC-32C (Castagnoli, reflected polynomial 0x82f63b78) of the crc a (u32)
//                    updated with the bytes of b in memory (little-endian) order, b being u8,
//                    u16, u32 or u64: exactly the x86 SSE4.2 `crc32` instruction, no inversion
//                    (the caller starts from ~0 and complements at the end, as RFC 3720 does).
//
// Vectors (v16u8 .. v4u64): a vector register holds 16 or 32 bytes; lane i is the i-th group of
// lane-width bytes in memory order. add/sub/and/or/xor/mov work lane-wise on registers of the
// same type (mov also reinterprets between types of the same width); lsh/rsh shift every lane by
// an immediate count below the lane width (logical). set puts an immediate (truncated to the
// lane) in every lane; ld/ldu/st/stu move the whole register (ld/st need the register's
// alignment).
//   splat d, a       every lane of d = scalar integer register a, truncated to the lane width.
//   widen d, a, h    d's lanes (twice a's lane width, same register width) = the zero-extended
//                    lanes of a's low half (h = 0) or high half (h = 1).
//   shuf d, a, p     byte shuffle within each 128-bit lane: byte i of d's lane = byte
//                    ((p >> 4*i) & 15) of the same lane of a (the pshufb of a constant).
//   hsum d, a        scalar d = the sum of a's lanes, zero-extended, wrapping at d's width.
//
// Calls to C functions go through the host ABI; calls to module functions are interpreted.
#pragma once

#include <bit>
#include <cstdint>
#include <span>
#include <string_view>
#include <type_traits>
#include <vector>

#include "exojit/vcode/ir.h"

namespace exojit::vcode {

class Interpreter {
 public:
  explicit Interpreter(const Module& m);

  // Calls a function with raw argument values: integers as 64-bit values, floats as the bits of
  // a double (f64) or of a float in the low half (f32). Returns the raw result the same way.
  uint64_t call(size_t function_index, std::span<const uint64_t> args);
  uint64_t call(std::string_view name, std::span<const uint64_t> args);

  // Typed convenience: `interp.run<uint16_t>("cksum", buf, len)`.
  template <typename R, typename... A>
  R run(std::string_view name, A... args) {
    const uint64_t raw[] = {to_raw(args)..., 0};
    return from_raw<R>(call(name, std::span<const uint64_t>(raw, sizeof...(A))));
  }

  // Bounds the number of executed instructions (0 = unbounded); exceeding it is an Error.
  void set_step_limit(uint64_t steps) { step_limit_ = steps; }
  uint64_t steps() const { return steps_; }

  template <typename T>
  static uint64_t to_raw(T v);
  template <typename R>
  static R from_raw(uint64_t v);

 private:
  struct Prepared {
    std::vector<uint32_t> label_pos;
    std::vector<uint32_t> local_offset;
    size_t frame_bytes = 0;
    bool has_vectors = false;
  };
  uint64_t execute(size_t fi, std::span<const uint64_t> args, int depth);
  uint64_t call_extern(const Extern& e, const uint64_t* args);

  const Module& m_;
  std::vector<Prepared> prepared_;
  uint64_t step_limit_ = 0;
  uint64_t steps_ = 0;
};

template <typename T>
uint64_t Interpreter::to_raw(T v) {
  if constexpr (std::is_pointer_v<T>)
    return uint64_t(reinterpret_cast<uintptr_t>(v));
  else if constexpr (std::is_same_v<T, double>)
    return std::bit_cast<uint64_t>(v);
  else if constexpr (std::is_same_v<T, float>)
    return std::bit_cast<uint32_t>(v);
  else if constexpr (std::is_signed_v<T>)
    return uint64_t(int64_t(v));
  else
    return uint64_t(v);
}

template <typename R>
R Interpreter::from_raw(uint64_t v) {
  if constexpr (std::is_void_v<R>)
    return;
  else if constexpr (std::is_pointer_v<R>)
    return reinterpret_cast<R>(uintptr_t(v));
  else if constexpr (std::is_same_v<R, double>)
    return std::bit_cast<double>(v);
  else if constexpr (std::is_same_v<R, float>)
    return std::bit_cast<float>(uint32_t(v));
  else
    return R(v);
}

}  // namespace exojit::vcode
