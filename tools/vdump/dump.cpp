// SPDX-License-Identifier: MIT
// The dump (dump_p.h): what vdump prints of a module and its machine code.
#include <fmt/format.h>

#include <algorithm>
#include <vector>

#include "dump_p.h"
#include "numbers_p.h"

namespace vdump {

using namespace exojit::vcode;

std::string hex_bytes(const uint8_t* p, size_t n) {
  std::string s;
  for (size_t i = 0; i < n; ++i) s += fmt::format("{}{:02x}", i ? " " : "", p[i]);
  return s;
}

std::string signature_text(const Signature& sig) {
  std::string s = "(";
  for (size_t i = 0; i < sig.params.size(); ++i)
    s += fmt::format("{}{}", i ? ", " : "", type_name(sig.params[i]));
  return s + fmt::format(") -> {}", type_name(sig.ret));
}

namespace {

// Names the target of a relative branch or call, and extern addresses loaded for calls.
std::string annotate(const DisasmLine& line, const Code& code, const Module& m) {
  std::string_view text = line.text;
  size_t space = text.rfind(' ');
  if (space == std::string_view::npos) return "";
  std::string_view operand = text.substr(space + 1);
  // AArch64 writes immediates as #N; its PC-relative ones count from the instruction itself.
  const bool a64 = code.target() == Target::AArch64;
  if (a64 && starts_with(operand, "#")) operand.remove_prefix(1);
  bool negative;
  uint64_t mag;
  if (!parse_integer(operand, &negative, &mag)) return "";
  uint64_t value = negative ? uint64_t(0) - mag : mag;
  std::string_view mnemonic = text.substr(0, text.find(' '));
  const bool relative = a64 ? (mnemonic == "b" || mnemonic == "bl" || starts_with(mnemonic, "b.") ||
                               mnemonic == "cbz" || mnemonic == "cbnz" || mnemonic == "tbz" ||
                               mnemonic == "tbnz" || mnemonic == "adr")
                            : (mnemonic.size() >= 2 && mnemonic[0] == 'j') || mnemonic == "call";
  if (relative) {
    if (!a64 && text.find(',') != std::string_view::npos) return "";
    uint64_t target = line.address + (a64 ? 0 : line.bytes.size()) + value;
    uint64_t base = uint64_t(reinterpret_cast<uintptr_t>(code.data()));
    for (const Code::Symbol& s : code.symbols()) {
      if (target >= base + s.offset && target < base + s.offset + s.size) {
        uint64_t off = target - base - s.offset;
        return off ? fmt::format("-> @{}+{:#x}", s.name, off) : fmt::format("-> @{}", s.name);
      }
    }
    return fmt::format("-> {:#x}", target);
  }
  for (const Extern& e : m.externs())
    if (value == uint64_t(reinterpret_cast<uintptr_t>(e.address))) return "@" + e.name;
  return "";
}

// One function's instructions, each as a printed line: address, bytes, instruction, and what a
// branch or call goes to. `offsets` gets each one's offset in the function.
std::vector<std::string> instruction_lines(const Code& code, const Code::Symbol& sym,
                                           const Module& m, std::string_view indent,
                                           std::vector<uint32_t>* offsets = nullptr) {
  const uint8_t* start = code.data() + sym.offset;
  const uint64_t address = uint64_t(reinterpret_cast<uintptr_t>(start));
  std::vector<DisasmLine> lines = disassemble(start, sym.size, address, code.target());
  size_t width = 0;
  for (const DisasmLine& l : lines) width = std::max(width, l.bytes.size() * 3);
  std::vector<std::string> out;
  for (const DisasmLine& l : lines) {
    std::string note = annotate(l, code, m);
    std::string text = fmt::format("{}{:012x}:  {:<{}}  {}", indent, l.address,
                                   hex_bytes(l.bytes.data(), l.bytes.size()), width, l.text);
    if (!note.empty()) text = fmt::format("{:<{}}  ; {}", text, width + 48 + indent.size(), note);
    out.push_back(text + "\n");
    if (offsets) offsets->push_back(uint32_t(l.address - address));
  }
  return out;
}

std::string disassembly(const Code& code, const Code::Symbol& sym, const Module& m) {
  std::string s;
  for (const std::string& line : instruction_lines(code, sym, m, "  ")) s += line;
  return s;
}

// --lines: function `i` as its vcode lines (the listing's numbers on the left), each followed by
// the instructions it became: the prologue under the `func` line, then each record. Records
// that emit no code (labels) stand alone.
std::string by_line(const Code& code, size_t i, const Module& m) {
  const LineTable& t = *code.line_table();
  const LineTable::Function& f = t.functions[i];
  std::vector<uint32_t> offsets;
  std::vector<std::string> insns =
      instruction_lines(code, code.symbols()[i], m, "         ", &offsets);
  auto source = [&](uint32_t line) { return fmt::format("{:>5}  {}\n", line, t.line_text(line)); };
  std::string s = source(f.header_line);
  size_t next = 0;  // the next instruction to print
  auto until = [&](uint32_t end) {
    for (; next < insns.size() && offsets[next] < end; ++next) s += insns[next];
  };
  for (size_t r = 0; r < f.rows.size(); ++r) {
    until(f.rows[r].offset);
    s += source(t.line_of(i, f.rows[r]));
  }
  until(UINT32_MAX);
  return s;
}

// The LLVM IR of function @name in a module's IR text ("" if absent).
std::string llvm_function_ir(const std::string& ir, const std::string& name) {
  size_t at = ir.find(" @" + name + "(");
  if (at == std::string::npos) return "";
  size_t begin = ir.rfind("\ndefine ", at);
  size_t end = ir.find("\n}\n", at);
  if (begin == std::string::npos || end == std::string::npos) return "";
  return ir.substr(begin + 1, end + 3 - (begin + 1));
}

}  // namespace

void dump(const Module& m, const Code& code_in, const Options& o, std::string_view source,
          const Code* llvm, const std::string& llvm_ir_text) {
  // --lines needs the line table: code compiled elsewhere (a DPF engine, a handler) is compiled
  // again here with one, the same way.
  Code relined;
  if (o.lines && !code_in.empty() && !code_in.line_table())
    relined = compile(m, {.target = code_in.target(), .line_table = true});
  const Code& code = relined.empty() ? code_in : relined;
  size_t n = m.functions().size();
  fmt::print("; {}: {} function{}, {} extern{}", source, n, n == 1 ? "" : "s", m.externs().size(),
             m.externs().size() == 1 ? "" : "s");
  if (code.empty())
    fmt::print("\n");
  else
    fmt::print(", {} bytes of {} code at {:#x}\n", code.size(), target_name(code.target()),
               reinterpret_cast<uintptr_t>(code.data()));
  for (const Extern& e : m.externs())
    fmt::print("extern @{}{}  ; at {:#x}\n", e.name, signature_text(e.sig),
               reinterpret_cast<uintptr_t>(e.address));
  for (size_t i = 0; i < n; ++i) {
    const Function& f = *m.functions()[i];
    const Code::Symbol& sym = code.symbols()[i];
    fmt::print("\n== @{} {}  code {:#x}, {} bytes\n", f.name, signature_text(f.sig),
               reinterpret_cast<uintptr_t>(code.data() + sym.offset), sym.size);
    if (o.lines) {
      fmt::print("-- {}, by vcode line\n{}", target_name(code.target()), by_line(code, i, m));
    } else {
      if (o.listing) fmt::print("{}", print(m, f));
      if (o.listing && o.assembly) fmt::print("-- {}\n", target_name(code.target()));
      if (o.assembly) fmt::print("{}", disassembly(code, sym, m));
    }
    if (!llvm) continue;
    const Code::Symbol& lsym = llvm->symbols()[i];
    if (o.listing)
      fmt::print("-- LLVM IR (O{})\n{}", o.llvm_opt, llvm_function_ir(llvm_ir_text, f.name));
    if (o.assembly)
      fmt::print("-- {}, LLVM tier (O{}): {:#x}, {} bytes\n{}", target_name(kHostTarget),
                 o.llvm_opt, reinterpret_cast<uintptr_t>(llvm->data() + lsym.offset), lsym.size,
                 disassembly(*llvm, lsym, m));
  }
}

}  // namespace vdump
