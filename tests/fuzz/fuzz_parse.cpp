// SPDX-License-Identifier: MIT
// libFuzzer target for the vcode text format (parse.cpp, print.cpp and the verifier behind
// parse()).
//
// Any input: parse() either returns a verified module or throws exojit::Error; a crash, a
// sanitizer report or any other exception is a bug. When it parses, the listing must round-trip:
// print(parse(text)) parses again, prints identically, and gives the same IR.
//
// Built with EXOJIT_FUZZ_COMPILE, a parsed module is also compiled (x86-64 back end; nothing is
// run), where again only exojit::Error is an acceptable failure.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "exojit/error.h"
#include "exojit/vcode/ir.h"
#include "exojit/vcode/text.h"
#ifdef EXOJIT_FUZZ_COMPILE
#include "exojit/vcode/code.h"
#endif

// Outcome of the last input, for the corpus driver: 0 rejected with an Error, 1 parsed.
int exojit_fuzz_parse_outcome = 0;

namespace {

using namespace exojit::vcode;

// Externs resolve without dlsym, so that every input sees the same symbols and no lookup of an
// arbitrary name reaches the dynamic linker; names starting with "undef" stay unresolved (the
// parser's error path). Nothing is ever called.
void* resolve(std::string_view name) {
  static char fake_symbol;
  if (name.substr(0, 5) == "undef") return nullptr;
  return &fake_symbol;
}

[[noreturn]] void die(std::string_view what, std::string_view input, std::string_view first,
                      std::string_view second) {
  std::fprintf(stderr, "fuzz_parse: %.*s\n--- input (%zu bytes)\n%.*s\n--- first\n%.*s\n",
               int(what.size()), what.data(), input.size(), int(input.size()), input.data(),
               int(first.size()), first.data());
  if (!second.empty())
    std::fprintf(stderr, "--- second\n%.*s\n", int(second.size()), second.data());
  std::fflush(stderr);
  std::abort();
}

bool same_sig(const Signature& a, const Signature& b) {
  return a.params == b.params && a.ret == b.ret;
}

bool same_insn(const Insn& a, const Insn& b) {
  return a.op == b.op && a.type == b.type && a.flags == b.flags && a.reserved == b.reserved &&
         a.dst == b.dst && a.a == b.a && a.b == b.b && a.imm == b.imm;
}

// The first difference between two modules' IR, or "" if they are the same.
std::string ir_difference(const Module& x, const Module& y) {
  if (x.externs().size() != y.externs().size()) return "number of externs";
  for (size_t i = 0; i < x.externs().size(); ++i) {
    const Extern &a = x.externs()[i], &b = y.externs()[i];
    if (a.name != b.name || !same_sig(a.sig, b.sig) || a.address != b.address)
      return "extern " + a.name;
  }
  if (x.functions().size() != y.functions().size()) return "number of functions";
  for (size_t i = 0; i < x.functions().size(); ++i) {
    const Function &a = *x.functions()[i], &b = *y.functions()[i];
    std::string where = "function @" + a.name + ": ";
    if (a.name != b.name) return where + "name";
    if (!same_sig(a.sig, b.sig)) return where + "signature";
    if (a.params.size() != b.params.size()) return where + "parameters";
    for (size_t k = 0; k < a.params.size(); ++k)
      if (!(a.params[k] == b.params[k])) return where + "parameter registers";
    if (a.regs.size() != b.regs.size()) return where + "number of registers";
    for (size_t k = 0; k < a.regs.size(); ++k)
      if (a.regs[k].type != b.regs[k].type || a.regs[k].cls != b.regs[k].cls ||
          a.regs[k].slot != b.regs[k].slot)
        return where + "register " + a.reg_label(uint32_t(k));
    for (size_t k = 0; k < a.regs.size(); ++k)
      if (a.reg_label(uint32_t(k)) != b.reg_label(uint32_t(k)))
        return where + "name of register " + std::to_string(k);
    if (a.num_labels != b.num_labels) return where + "number of labels";
    for (uint32_t k = 0; k < a.num_labels; ++k)
      if (a.label_label(k) != b.label_label(k)) return where + "name of label " + std::to_string(k);
    if (a.locals.size() != b.locals.size()) return where + "number of locals";
    for (size_t k = 0; k < a.locals.size(); ++k)
      if (a.locals[k].size != b.locals[k].size || a.locals[k].align != b.locals[k].align)
        return where + "local $" + std::to_string(k);
    if (a.call_args != b.call_args) return where + "call arguments";
    if (a.code.size() != b.code.size()) return where + "number of instructions";
    for (size_t k = 0; k < a.code.size(); ++k)
      if (!same_insn(a.code[k], b.code[k]))
        return where + "instruction " + std::to_string(k) + " `" + print_insn(x, a, a.code[k]) +
               "`";
  }
  return "";
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  exojit_fuzz_parse_outcome = 0;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  Module first;
  try {
    first = parse(input, resolve);
  } catch (const exojit::Error& e) {
    if (std::strlen(e.what()) == 0) die("an Error without a message", input, "", "");
    return 0;  // the expected outcome for malformed text
  }
  exojit_fuzz_parse_outcome = 1;

  std::string once = print(first);
  Module second;
  try {
    second = parse(once, resolve);
  } catch (const exojit::Error& e) {
    die(std::string("the printed listing does not parse: ") + e.what(), input, once, "");
  }
  std::string twice = print(second);
  if (once != twice) die("print(parse(print(m))) differs from print(m)", input, once, twice);
  std::string diff = ir_difference(first, second);
  if (!diff.empty()) die("the IR changed in the round trip: " + diff, input, once, twice);

#ifdef EXOJIT_FUZZ_COMPILE
  try {
    if (!first.functions().empty()) {
      Code code = compile(first);
      if (code.symbols().size() != first.functions().size())
        die("compile() lost functions", input, once, "");
    }
  } catch (const exojit::Error&) {
    // Acceptable: a limit of the back end, reported as an Error.
  }
#endif
  return 0;
}
