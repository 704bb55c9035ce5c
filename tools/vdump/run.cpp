// SPDX-License-Identifier: MIT
// --run (run_p.h): the arguments, read for the parameters' types; the call, in the interpreter
// and natively, on fresh copies of the argument buffers; the results compared.
#include <fmt/format.h>

#include <bit>
#include <cfloat>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <new>
#include <string_view>

#include "dump_p.h"
#include "numbers_p.h"
#include "run_p.h"

namespace vdump {

using namespace exojit;
using namespace exojit::vcode;

namespace {

Arg parse_arg(const std::string& text, Type t, size_t index) {
  Arg a{text, 0, std::nullopt};
  auto bad = [&](std::string_view why) -> UsageError {
    return UsageError(fmt::format("--run: argument {} '{}': {}", index + 1, text, why));
  };
  if (is_float(t)) {
    double d;
    if (!parse_double(text, &d))
      throw bad(fmt::format("not a number ({} parameter)", type_name(t)));
    if (t == Type::F32 && std::isfinite(d) && std::fabs(d) > double(FLT_MAX))
      throw bad("out of range for f32");
    a.raw =
        t == Type::F32 ? uint64_t(std::bit_cast<uint32_t>(float(d))) : std::bit_cast<uint64_t>(d);
    return a;
  }
  if (t == Type::P && starts_with(text, "str:")) {
    std::string_view s = std::string_view(text).substr(4);
    a.buffer.emplace(s.begin(), s.end());
    a.buffer->push_back(0);
    return a;
  }
  if (t == Type::P && starts_with(text, "hex:")) {
    std::string_view s = std::string_view(text).substr(4);
    std::vector<uint8_t> bytes;
    int pending = -1;
    for (char c : s) {
      if (c == ' ' || c == '_' || c == ':' || c == '.') continue;  // readable separators
      int d = c >= '0' && c <= '9'   ? c - '0'
              : c >= 'a' && c <= 'f' ? c - 'a' + 10
              : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                     : -1;
      if (d < 0) throw bad(fmt::format("'{}' is not a hex digit", c));
      if (pending < 0) {
        pending = d;
      } else {
        bytes.push_back(uint8_t(pending << 4 | d));
        pending = -1;
      }
    }
    if (pending >= 0) throw bad("odd number of hex digits");
    a.buffer = std::move(bytes);
    return a;
  }
  bool negative;
  uint64_t mag;
  if (!parse_integer(text, &negative, &mag))
    throw bad(fmt::format("not an integer ({} parameter{})", type_name(t),
                          t == Type::P ? "; pointers also take str:TEXT or hex:BYTES" : ""));
  // Accept the signed and the unsigned reading of the type's width: -1 and 0xff are both u8.
  int bits = type_bits(t);
  uint64_t max_pos = bits == 64 ? UINT64_MAX : (uint64_t(1) << bits) - 1;
  uint64_t max_neg = uint64_t(1) << (bits - 1);
  if (negative ? mag > max_neg : mag > max_pos)
    throw bad(fmt::format("out of range for {}", type_name(t)));
  a.raw = uint64_t(normalize_imm(t, int64_t(negative ? uint64_t(0) - mag : mag)));
  return a;
}

// Buffers for one call: fresh copies of the argument buffers, 16-byte aligned, so that the
// native call and the interpreter each see the original contents.
class Buffers {
 public:
  explicit Buffers(const std::vector<Arg>& args) {
    for (const Arg& a : args) {
      if (!a.buffer) {
        raw_.push_back(a.raw);
        blocks_.push_back(nullptr);
        continue;
      }
      size_t n = std::max<size_t>(a.buffer->size(), 1);
      blocks_.emplace_back(static_cast<uint8_t*>(::operator new(n, std::align_val_t(16))));
      if (!a.buffer->empty()) std::memcpy(blocks_.back().get(), a.buffer->data(), a.buffer->size());
      raw_.push_back(uint64_t(reinterpret_cast<uintptr_t>(blocks_.back().get())));
    }
  }
  const std::vector<uint64_t>& raw() const { return raw_; }
  const uint8_t* block(size_t i) const { return blocks_[i].get(); }

 private:
  struct Free {
    void operator()(uint8_t* p) const { ::operator delete(p, std::align_val_t(16)); }
  };
  std::vector<std::unique_ptr<uint8_t, Free>> blocks_;
  std::vector<uint64_t> raw_;
};

// Canonical form of a raw result, for comparing the machine code with the interpreter.
uint64_t canonical(Type t, uint64_t raw) {
  if (t == Type::Void) return 0;
  if (t == Type::F32) return uint32_t(raw);
  if (t == Type::F64) return raw;
  return uint64_t(normalize_imm(t, int64_t(raw)));
}

bool same_result(Type t, uint64_t a, uint64_t b) {
  a = canonical(t, a);
  b = canonical(t, b);
  if (a == b) return true;
  if (t == Type::F32)
    return std::isnan(std::bit_cast<float>(uint32_t(a))) &&
           std::isnan(std::bit_cast<float>(uint32_t(b)));
  if (t == Type::F64)
    return std::isnan(std::bit_cast<double>(a)) && std::isnan(std::bit_cast<double>(b));
  return false;
}

std::string format_value(Type t, uint64_t raw) {
  raw = canonical(t, raw);
  switch (t) {
    case Type::Void:
      return "void";
    case Type::F32:
      return fmt::format("{}", std::bit_cast<float>(uint32_t(raw)));
    case Type::F64:
      return fmt::format("{}", std::bit_cast<double>(raw));
    case Type::P:
      return fmt::format("{:#x}", raw);
    default:
      break;
  }
  int bits = type_bits(t);
  uint64_t masked = bits == 64 ? raw : raw & ((uint64_t(1) << bits) - 1);
  std::string dec = is_signed(t) ? fmt::format("{}", int64_t(raw)) : fmt::format("{}", raw);
  return fmt::format("{} ({:#x})", dec, masked);
}

}  // namespace

Call prepare_call(const Module& m, const Options& o) {
  // NAME, if the first token is not a number or a buffer (or is spelled @NAME).
  std::vector<std::string> tokens = o.run_args;
  Call c;
  if (m.functions().empty()) throw UsageError("--run: the listing has no functions");
  if (!tokens.empty() && (starts_with(tokens[0], "@") ||
                          (!looks_numeric(tokens[0]) && !starts_with(tokens[0], "str:") &&
                           !starts_with(tokens[0], "hex:")))) {
    std::string name = starts_with(tokens[0], "@") ? tokens[0].substr(1) : tokens[0];
    int found = m.find_function(name);
    if (found < 0) throw UsageError(fmt::format("--run: the listing has no function @{}", name));
    c.function = size_t(found);
    tokens.erase(tokens.begin());
  }
  const Function& f = *m.functions()[c.function];
  if (tokens.size() != f.sig.params.size())
    throw UsageError(fmt::format("--run: @{}{} takes {} argument{}, {} given", f.name,
                                 signature_text(f.sig), f.sig.params.size(),
                                 f.sig.params.size() == 1 ? "" : "s", tokens.size()));
  for (size_t k = 0; k < tokens.size(); ++k)
    c.args.push_back(parse_arg(tokens[k], f.sig.params[k], k));
  c.text = "@" + f.name + "(";
  for (size_t k = 0; k < c.args.size(); ++k) c.text += (k ? ", " : "") + c.args[k].text;
  c.text += ")";
  return c;
}

int run(const Module& m, const Code& code, const Options& o, const Call& c) {
  const Function& f = *m.functions()[c.function];
  const Code::Symbol& sym = code.symbols()[c.function];
  const std::vector<Arg>& args = c.args;
  const std::string& call = c.text;
  fmt::print("\n== run {} -> {}\n", call, type_name(f.sig.ret));
  std::fflush(stdout);

  // The interpreter goes first: a division by zero or a bad jump that it reports as an Error
  // would crash the machine code.
  std::optional<Buffers> ibuf;
  uint64_t iresult = 0;
  if (o.interp) {
    ibuf.emplace(args);
    Interpreter interp(m);
    try {
      iresult = interp.call(c.function, ibuf->raw());
    } catch (const Error& e) {
      fail("{} (the machine code was not run)", e.what());
    }
  }
  Buffers nbuf(args);
  uint64_t nresult = call_raw(code.entry(sym.name), f.sig, nbuf.raw().data());

  auto print_buffers = [&](const Buffers& b) {
    for (size_t k = 0; k < args.size(); ++k) {
      if (!args[k].buffer) continue;
      const std::vector<uint8_t>& before = *args[k].buffer;
      if (before.empty() || std::memcmp(b.block(k), before.data(), before.size()) == 0) continue;
      fmt::print("             argument {} now holds: {}\n", k + 1,
                 hex_bytes(b.block(k), before.size()));
    }
  };
  fmt::print("native:      {}\n", format_value(f.sig.ret, nresult));
  print_buffers(nbuf);
  if (!o.interp) return 0;
  bool agree = same_result(f.sig.ret, nresult, iresult);
  for (size_t k = 0; k < args.size(); ++k)
    if (args[k].buffer && std::memcmp(nbuf.block(k), ibuf->block(k), args[k].buffer->size()) != 0)
      agree = false;
  fmt::print("interpreter: {}  [{}]\n", format_value(f.sig.ret, iresult),
             agree ? "agrees" : "DISAGREES");
  print_buffers(*ibuf);
  if (!agree) {
    std::fflush(stdout);
    fmt::print(stderr, "vdump: the interpreter disagrees with the machine code for {}\n", call);
    return 3;
  }
  return 0;
}

}  // namespace vdump
