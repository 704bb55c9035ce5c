// SPDX-License-Identifier: MIT
// Prints modules, functions and single instructions in the vcode text format (see text.h).
#include <fmt/format.h>

#include <bit>
#include <cmath>

#include "exojit/vcode/text.h"

namespace exojit::vcode {

namespace {

std::string slot_text(const RegInfo& r) {
  return fmt::format("{}{}", r.cls == RegClass::Temp ? 't' : 'v', r.slot);
}

std::string imm_text(Type t, int64_t v) {
  if (is_float(t)) {
    double d = std::bit_cast<double>(v);
    if (std::isnan(d)) return fmt::format("nan:{:#x}", uint64_t(v));
    if (std::isinf(d)) return d < 0 ? "-inf" : "inf";
    return fmt::format("{}", d);
  }
  if (t == Type::U64 || t == Type::P) return fmt::format("{}", uint64_t(v));
  return fmt::format("{}", v);
}

std::string signature_text(const Signature& sig) {
  std::string s = "(";
  for (size_t i = 0; i < sig.params.size(); ++i)
    s += fmt::format("{}{}", i ? ", " : "", type_name(sig.params[i]));
  return s + fmt::format(") -> {}", type_name(sig.ret));
}

// `owned ` before a constant marked kOwnedImm.
const char* owned_text(const Insn& in) {
  return (in.flags & kOwnedImm) ? "owned " : "";
}

std::string mem_text(const Function& f, const Insn& in) {
  std::string s = "[";
  s += (in.flags & kLocalBase) ? fmt::format("${}", in.a) : f.reg_label(in.a);
  if (in.flags & kIndex) s += " + " + f.reg_label(in.b);
  if (in.imm > 0 || (in.imm == 0 && (in.flags & kOwnedImm)))
    s += fmt::format(" + {}{}", owned_text(in), in.imm);
  if (in.imm < 0) s += fmt::format(" - {}{}", owned_text(in), uint64_t(0) - uint64_t(in.imm));
  return s + "]";
}

}  // namespace

// The syntax of each form is in ops.h.
std::string print_insn(const Module& m, const Function& f, const Insn& in) {
  auto r = [&](uint32_t id) {
    return id < f.regs.size() ? f.reg_label(id) : fmt::format("%?{}", id);
  };
  auto label = [&](uint32_t id) { return f.label_label(id); };
  if (unsigned(in.op) >= unsigned(kNumOps)) return fmt::format("?op{}", unsigned(in.op));
  std::string_view name = op_name(in.op);
  const bool imm = in.flags & kImm;
  auto constant = [&] { return owned_text(in) + imm_text(in.type, in.imm); };
  auto source = [&] { return imm ? constant() : r(in.b); };
  switch (form_of(in.op)) {
    case Form::Binary:
      return fmt::format("{} {}, {}, {}", name, r(in.dst), r(in.a), source());
    case Form::Unary:
      return fmt::format("{} {}, {}", name, r(in.dst), r(in.a));
    case Form::UnaryImm:  // widen's half in decimal, shuf's pattern in hex
      if (in.op == Op::Shuf)
        return fmt::format("{} {}, {}, {:#x}", name, r(in.dst), r(in.a), uint64_t(in.imm));
      return fmt::format("{} {}, {}, {}", name, r(in.dst), r(in.a), in.imm);
    case Form::SetImm:
      return fmt::format("{} {}, {}", name, r(in.dst), constant());
    case Form::Load:
      return fmt::format("{} {}, {}", name, r(in.dst), mem_text(f, in));
    case Form::Store:
      return fmt::format("{} {}, {}", name, mem_text(f, in), r(in.dst));
    case Form::LocalAddr:
      return fmt::format("{} {}, ${}", name, r(in.dst), in.a);
    case Form::Branch:
      return fmt::format("{} {}, {}, {}", name, r(in.a), source(), label(in.dst));
    case Form::Jump:
      return fmt::format("{} {}", name, label(in.dst));
    case Form::JumpReg:
      return fmt::format("{} {}", name, r(in.a));
    case Form::LabelAddr:
      return fmt::format("{} {}, {}", name, r(in.a), label(in.dst));
    case Form::Place:
      return label(in.dst) + ":";
    case Form::Call: {
      bool ext = in.flags & kExtern;
      std::string callee;
      if (ext && uint64_t(in.imm) < m.externs().size())
        callee = m.externs()[size_t(in.imm)].name;
      else if (!ext && uint64_t(in.imm) < m.functions().size())
        callee = m.functions()[size_t(in.imm)]->name;
      else
        callee = fmt::format("?{}", in.imm);
      std::string s = fmt::format("{} ", name);
      if (!(in.flags & kVoid)) s += r(in.dst) + ", ";
      s += "@" + callee + "(";
      // An edited record may claim up to 2^32 arguments: print what a call can have (error
      // messages about hostile records stay short; the verifier refuses such a call).
      constexpr uint32_t kMaxShown = 32;
      for (uint32_t k = 0; k < in.b && k < kMaxShown; ++k) {
        size_t at = size_t(in.a) + k;
        s += (k ? ", " : "") + (at < f.call_args.size() ? r(f.call_args[at]) : "?");
      }
      if (in.b > kMaxShown) s += fmt::format(", ... {} arguments", in.b);
      return s + ")";
    }
    case Form::Return:
      if (in.flags & kVoid) return std::string(name);
      return fmt::format("{} {}", name, imm ? constant() : r(in.a));
  }
  return "?";
}

std::string print(const Module& m, const Function& f) {
  std::string s = fmt::format("func @{}(", f.name);
  std::vector<uint8_t> is_param(f.regs.size(), 0);
  for (size_t i = 0; i < f.params.size(); ++i) {
    uint32_t id = f.params[i].id;
    is_param[id] = 1;
    s += fmt::format("{}{}: {} {}", i ? ", " : "", f.reg_label(id), type_name(f.regs[id].type),
                     slot_text(f.regs[id]));
  }
  s += fmt::format(") -> {} {{\n", type_name(f.sig.ret));
  for (size_t id = 0; id < f.regs.size(); ++id)
    if (!is_param[id])
      s += fmt::format("  {}: {} {}\n", f.reg_label(uint32_t(id)), type_name(f.regs[id].type),
                       slot_text(f.regs[id]));
  for (size_t l = 0; l < f.locals.size(); ++l)
    s += fmt::format("  ${}: local {} align {}\n", l, f.locals[l].size, f.locals[l].align);
  for (const Insn& in : f.code) {
    s += in.op == Op::Place ? "" : "  ";
    s += print_insn(m, f, in);
    s += '\n';
  }
  return s + "}\n";
}

std::string print(const Module& m) {
  std::string s;
  for (const Extern& e : m.externs())
    s += fmt::format("extern @{}{}\n", e.name, signature_text(e.sig));
  for (size_t i = 0; i < m.functions().size(); ++i) {
    if (i || !m.externs().empty()) s += '\n';
    s += print(m, *m.functions()[i]);
  }
  return s;
}

}  // namespace exojit::vcode
