// Test helpers: call a compiled function with raw values, the way the interpreter is called.
#pragma once

#include <bit>
#include <cstdint>
#include <span>

#include "exojit/vcode.h"

namespace exojit::test {

// Calls `sym` in `code` with raw argument values (as Interpreter::call takes them) and returns
// the raw result normalized to the return type. Integer and float arguments travel in separate
// register files (SysV x86-64), so one prototype with 6 integers and 4 doubles fits any
// signature the tests use.
inline uint64_t call_jit(const vcode::Code& code, const vcode::Code::Symbol& sym,
                         std::span<const uint64_t> args) {
  using vcode::Type;
  uint64_t ia[6] = {};
  double fa[4] = {};
  int ni = 0, nf = 0;
  for (size_t k = 0; k < sym.sig.params.size(); ++k) {
    if (vcode::is_float(sym.sig.params[k]))
      fa[nf++] = std::bit_cast<double>(args[k]);
    else
      ia[ni++] = args[k];
  }
  void* entry = code.entry(sym.name);
  Type rt = sym.sig.ret;
  if (vcode::is_float(rt)) {
    using Fn = double (*)(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, double,
                          double, double, double);
    uint64_t bits = std::bit_cast<uint64_t>(reinterpret_cast<Fn>(entry)(
        ia[0], ia[1], ia[2], ia[3], ia[4], ia[5], fa[0], fa[1], fa[2], fa[3]));
    return rt == Type::F32 ? uint32_t(bits) : bits;
  }
  using Fn = uint64_t (*)(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, double,
                          double, double, double);
  uint64_t r = reinterpret_cast<Fn>(entry)(ia[0], ia[1], ia[2], ia[3], ia[4], ia[5], fa[0], fa[1],
                                           fa[2], fa[3]);
  return rt == Type::Void ? 0 : uint64_t(vcode::normalize_imm(rt, int64_t(r)));
}

inline uint64_t call_jit(const vcode::Code& code, std::string_view name,
                         std::span<const uint64_t> args) {
  for (const auto& s : code.symbols())
    if (s.name == name) return call_jit(code, s, args);
  throw Error("no such function");
}

}  // namespace exojit::test
