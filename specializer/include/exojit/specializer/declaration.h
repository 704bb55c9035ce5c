// SPDX-License-Identifier: MIT
// Specialization declarations, in the spirit of Tempo's S/D annotations ([TEMPO04], Figure 2):
// for one entry function of the libOS bitcode, which parameters are static (and their values),
// which memory is invariant (read as constants at specialization time), and — by omission —
// that everything else is dynamic.
//
//   Declaration d{"exo_sendto",
//                 {S(stack), S(fd), D, S(64), S(dst_ip), S(dst_port)},  // data stays dynamic
//                 {invariant(&stack->cfg, "stack configuration"),
//                  invariant(&stack->routes, "routes")}};
//
// Invariant memory is an address range, read by the specializer when it specializes: a load from
// it in the generic code becomes the constant it holds now. Whoever declares it guarantees that
// it does not change while the specialization is in use, or that a code guard notices (send.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

namespace exojit::specializer {

// One parameter of the entry function: static with a value, or dynamic.
struct Arg {
  bool is_static = false;
  uint64_t value = 0;  // integers zero-extended; pointers as their address
};

// Dynamic: passed at every call.
inline constexpr Arg D{};

// Static: the value is known now and is substituted into the code.
template <typename T>
Arg S(T v) {
  if constexpr (std::is_pointer_v<T>)
    return Arg{true, uint64_t(reinterpret_cast<uintptr_t>(v))};
  else
    return Arg{true, uint64_t(v)};
}

struct Range {
  uintptr_t address = 0;
  size_t size = 0;
  std::string what;  // named in messages and in exo-spec's output
};

// `size` bytes at `p` are invariant.
inline Range invariant(const void* p, size_t size, std::string what) {
  return Range{reinterpret_cast<uintptr_t>(p), size, std::move(what)};
}
// The whole object at `p` is invariant.
template <typename T>
Range invariant(const T* p, std::string what) {
  return invariant(p, sizeof(T), std::move(what));
}

struct Declaration {
  std::string function;           // a function of the libOS bitcode, e.g. "exo_sendto"
  std::vector<Arg> args;          // one per parameter
  std::vector<Range> invariants;  // memory read as constants

  // Whether [address, address + size) lies inside one declared range.
  bool is_invariant(uintptr_t address, size_t size) const;
  // The cache key: function, static values, and the invariant ranges with their contents now.
  std::string key() const;
  // Checks the declaration itself (ranges non-empty and not wrapping); throws exojit::Error.
  void check() const;
};

}  // namespace exojit::specializer
