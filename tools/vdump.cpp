// SPDX-License-Identifier: MIT
// vdump: compiles a vcode listing and prints, per function, the vcode next to the x86-64 machine
// code it became (addresses and bytes); optionally calls a function natively and in the
// reference interpreter.
//
//   vdump fib.vc                       dump every function
//   vdump fib.vc --run fib 20 --interp call @fib(20), check it against the interpreter
//   cat x.vc | vdump --asm-only        read the listing from stdin
//   vdump --pipes cksum,bswap32        the loop the pipe compiler makes of library pipes
//   vdump cksum.vc --tier llvm         also the LLVM tier: its IR and machine code
//   vdump --dpf filters.txt            the merged DPF trie and the demultiplexer generated for it
//   vdump --ash remote_increment       an example ASH, verified and sandboxed, and its machine code
//   vdump fib.vc --lines               each vcode line followed by the machine code it became
#include <fmt/format.h>

#include <bit>
#include <cctype>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <new>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "example_set.h"
#include "exojit/ash/handler.h"
#include "exojit/dpf/engine.h"
#include "exojit/dpf/filter_file.h"
#include "exojit/pipes.h"
#include "exojit/vcode.h"

namespace {

using namespace exojit;
using namespace exojit::vcode;

constexpr std::string_view kUsage = R"(usage: vdump [options] [FILE]
       vdump --pipes NAME[,NAME...] [--read-only] [--vector BITS] [--target MACHINE]
             [--listing-only | --asm-only]

Parses the vcode listing FILE (stdin when FILE is absent or '-'), compiles it, and prints for
every function a header (name, signature, code address and size), its vcode listing and its
disassembled machine code with addresses and bytes.

options:
  --run [NAME] [ARG...]  call function NAME (default: the first one) with the arguments and print
                         the result; the arguments run up to the next option. Integers are
                         decimal or 0x hex (a leading '-' allowed), floats for f32/f64
                         parameters (also inf, nan). A pointer parameter takes an integer, or
                         str:TEXT (a NUL-terminated copy of TEXT) or hex:BYTES (a buffer holding
                         BYTES, e.g. hex:4500001c); buffers changed by the call are printed.
                         NAME may be written @NAME; a NAME that reads as a number needs the '@'.
  --interp               with --run: also run the call in the vcode interpreter (first, so that
                         a trap it detects is reported instead of crashing) and say whether the
                         two agree
  --dpf                  FILE holds DPF filters, one per line (DPF syntax, or tcpdump syntax
                         after `pcap:`; a filter's id is its line number): print the merged
                         trie, then the demultiplexer generated for it
  --lines                print each function as its vcode lines, each followed by the machine
                         instructions it became (the line table, CompileOptions::line_table; the
                         listing's line numbers on the left)
  --perf-map             append the functions to /tmp/perf-<pid>.map (CompileOptions::perf_map)
  --tier llvm            also compile on the LLVM tier and print, after each function's fast-tier
                         machine code, its optimized LLVM IR and the LLVM tier's machine code;
                         --run then calls the LLVM tier's code
  --llvm-opt N           the LLVM tier's optimization level, 0-3 (default 2)
  --target MACHINE       generate code for x86-64 or aarch64 (default: this host's); another
                         machine's code is disassembled, not run (cross-JIT)
  --listing-only         print the vcode listings, not the machine code
  --asm-only             print the machine code, not the vcode listings
  --harden               the hardened code (README "Hardening"): constants blinded
                         (CompileOptions::blind_constants); with --dpf, the filters inserted as
                         an untrusted owner's (also every packet access masked after its bounds
                         check); with --ash, the handler as installed (also every checked
                         access masked). Without it, the plain code, for comparison.
  -q, --quiet            print neither (with --run: only the results)
  -h, --help             this help

pipes (instead of FILE):
  --pipes NAME,...       compose library pipes (cksum bswap16 bswap32 cipher crc32c copy) in
                         this order, compile them with exojit::pipes and dump the generated
                         function, with the compiler's plan and the main loop's cost
  --read-only            compile for Direction::ReadOnly (default: Write, copying src to dst)
  --vector BITS          vector width: 0 (scalar loops), 128 or 256 (default: the CPU's widest)

ash (instead of FILE):
  --ash NAME             an example ASH (remote_write remote_increment udp_echo cache_server),
                         installed for a simulated server environment: prints the verified,
                         sandboxed vcode the handler became and its machine code
  --trusted              with --ash: the trusted (unsandboxed) version, for comparison

exit status: 0 success; 1 error in the listing, compilation or interpretation; 2 bad usage;
3 the interpreter disagrees with the machine code.
)";

constexpr std::string_view kShortUsage =
    "usage: vdump [--run [NAME] [ARG...]] [--interp] [--perf-map] [--target MACHINE]\n"
    "             [--tier fast|llvm] [--harden] [--lines | --listing-only | --asm-only | -q]\n"
    "             [FILE]\n"
    "       vdump --dpf [--harden] [--listing-only | --asm-only] FILTERS\n"
    "       vdump --pipes NAME[,NAME...] [--read-only] [--vector BITS] [--target MACHINE]\n"
    "       vdump --ash NAME [--trusted] [--harden] [--listing-only | --asm-only]\n"
    "       (vdump --help for details)\n";

// Bad command-line usage: exit status 2, with a short usage text.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Options {
  std::string file;  // "" or "-": stdin
  bool listing = true;
  bool assembly = true;
  bool run = false;
  bool interp = false;
  bool perf_map = false;
  bool lines = false;  // --lines: vcode lines, each with its machine code
  bool dpf = false;
  std::vector<std::string> run_args;  // [NAME] ARG... as given
  std::string pipes;                  // --pipes: comma-separated library pipe names
  std::string ash;                    // --ash: an example handler's name
  bool trusted = false;               // --trusted (with --ash)
  bool harden = false;                // --harden
  bool read_only = false;
  int vector_bits = -1;
  bool llvm = false;  // --tier llvm
  int llvm_opt = 2;
  Target target = kHostTarget;
};

bool starts_with(std::string_view s, std::string_view p) {
  return s.substr(0, p.size()) == p;
}

// --- numbers on the command line ------------------------------------------------------------

// An integer: optional sign, then decimal or 0x hex. Returns false if `s` is not one.
bool parse_integer(std::string_view s, bool* negative, uint64_t* magnitude) {
  *negative = false;
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
    *negative = s[0] == '-';
    s.remove_prefix(1);
  }
  int base = 10;
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    s.remove_prefix(2);
    base = 16;
  }
  if (s.empty()) return false;
  uint64_t v = 0;
  for (char c : s) {
    int d;
    if (c >= '0' && c <= '9')
      d = c - '0';
    else if (base == 16 && c >= 'a' && c <= 'f')
      d = c - 'a' + 10;
    else if (base == 16 && c >= 'A' && c <= 'F')
      d = c - 'A' + 10;
    else
      return false;
    if (v > (UINT64_MAX - uint64_t(d)) / uint64_t(base)) return false;  // overflow
    v = v * uint64_t(base) + uint64_t(d);
  }
  *magnitude = v;
  return true;
}

bool parse_double(std::string_view s, double* out) {
  if (s.empty() || std::isspace(uint8_t(s[0]))) return false;
  std::string text(s);
  char* end = nullptr;
  *out = std::strtod(text.c_str(), &end);
  return end == text.c_str() + text.size();
}

bool looks_numeric(std::string_view s) {
  bool neg;
  uint64_t mag;
  double d;
  return parse_integer(s, &neg, &mag) || parse_double(s, &d);
}

// --- arguments of a --run call --------------------------------------------------------------

// One argument: a raw value (as Interpreter::call takes it), or a buffer whose address is passed.
struct Arg {
  std::string text;
  uint64_t raw = 0;
  std::optional<std::vector<uint8_t>> buffer;
};

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

// --- the dump -------------------------------------------------------------------------------

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

// llvm: the LLVM tier's code and the module's IR, when --tier llvm.
void dump(const Module& m, const Code& code_in, const Options& o, std::string_view source,
          const Code* llvm = nullptr, const std::string& llvm_ir_text = "") {
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

// --- --run ----------------------------------------------------------------------------------

// A --run call, checked against the listing before anything is compiled or printed.
struct Call {
  size_t function = 0;
  std::vector<Arg> args;
  std::string text;  // "@fib(20)"
};

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

// --- main -----------------------------------------------------------------------------------

Options parse_options(int argc, char** argv) {
  Options o;
  bool listing_only = false, asm_only = false, quiet = false, file_set = false;
  bool options_done = false;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (!options_done && a == "--") {
      options_done = true;
    } else if (!options_done && (a == "-h" || a == "--help")) {
      fmt::print("{}", kUsage);
      std::exit(0);
    } else if (!options_done && a == "--run") {
      if (o.run) throw UsageError("--run given twice");
      o.run = true;
      // NAME and arguments: up to the next option ("-" for stdin and "--" included; negative
      // numbers are arguments).
      auto is_option = [](std::string_view t) {
        return starts_with(t, "--") || t == "-" || t == "-q" || t == "-h";
      };
      while (i + 1 < argc && !is_option(argv[i + 1])) o.run_args.push_back(argv[++i]);
    } else if (!options_done && a == "--interp") {
      o.interp = true;
    } else if (!options_done && a == "--dpf") {
      o.dpf = true;
    } else if (!options_done && a == "--perf-map") {
      o.perf_map = true;
    } else if (!options_done && a == "--lines") {
      o.lines = true;
    } else if (!options_done && a == "--listing-only") {
      listing_only = true;
    } else if (!options_done && a == "--asm-only") {
      asm_only = true;
    } else if (!options_done && a == "--ash") {
      if (i + 1 >= argc) throw UsageError("--ash needs a handler name");
      o.ash = argv[++i];
    } else if (!options_done && a == "--harden") {
      o.harden = true;
    } else if (!options_done && a == "--trusted") {
      o.trusted = true;
    } else if (!options_done && a == "--pipes") {
      if (i + 1 >= argc) throw UsageError("--pipes needs a list of pipe names");
      o.pipes = argv[++i];
    } else if (!options_done && a == "--tier") {
      if (i + 1 >= argc) throw UsageError("--tier needs a tier: fast or llvm");
      std::string_view t = argv[++i];
      if (t != "fast" && t != "llvm") throw UsageError(fmt::format("--tier {}: fast or llvm", t));
      o.llvm = t == "llvm";
    } else if (!options_done && a == "--llvm-opt") {
      if (i + 1 >= argc) throw UsageError("--llvm-opt needs a level, 0-3");
      std::string_view l = argv[++i];
      if (l.size() != 1 || l[0] < '0' || l[0] > '3')
        throw UsageError(fmt::format("--llvm-opt {}: the level is 0, 1, 2 or 3", l));
      o.llvm_opt = l[0] - '0';
    } else if (!options_done && a == "--read-only") {
      o.read_only = true;
    } else if (!options_done && a == "--target") {
      if (i + 1 >= argc) throw UsageError("--target needs a machine: x86-64 or aarch64");
      std::string_view t = argv[++i];
      if (t == "x86-64" || t == "x86_64")
        o.target = Target::X86_64;
      else if (t == "aarch64" || t == "arm64")
        o.target = Target::AArch64;
      else
        throw UsageError(fmt::format("--target {}: the machines are x86-64 and aarch64", t));
    } else if (!options_done && a == "--vector") {
      if (i + 1 >= argc) throw UsageError("--vector needs a width: 0, 128 or 256");
      std::string_view w = argv[++i];
      if (w != "0" && w != "128" && w != "256")
        throw UsageError(fmt::format("--vector {}: the width is 0, 128 or 256", w));
      o.vector_bits = std::stoi(std::string(w));
    } else if (!options_done && (a == "-q" || a == "--quiet")) {
      quiet = true;
    } else if (!options_done && a.size() > 1 && a[0] == '-') {
      throw UsageError(fmt::format("unknown option '{}'", a));
    } else {
      if (file_set) throw UsageError(fmt::format("more than one FILE ('{}', '{}')", o.file, a));
      o.file = std::string(a);
      file_set = true;
    }
  }
  // `vdump --run fib 10 fib.vc`: the FILE was swallowed by --run; take it back.
  if (!file_set && !o.run_args.empty()) {
    const std::string& last = o.run_args.back();
    std::error_code ec;
    if (!looks_numeric(last) && !starts_with(last, "str:") && !starts_with(last, "hex:") &&
        std::filesystem::is_regular_file(last, ec)) {
      o.file = last;
      o.run_args.pop_back();
    }
  }
  if (listing_only && asm_only)
    throw UsageError("--listing-only and --asm-only exclude each other");
  if (o.lines && (listing_only || asm_only || quiet))
    throw UsageError("--lines excludes --listing-only, --asm-only and --quiet");
  if (o.interp && !o.run) throw UsageError("--interp needs --run");
  if (o.run && o.target != kHostTarget)
    throw UsageError(fmt::format("--run needs code for this {} host, not --target {}",
                                 target_name(kHostTarget), target_name(o.target)));
  if (!o.pipes.empty() && (file_set || o.run))
    throw UsageError("--pipes takes no FILE and no --run");
  if (o.pipes.empty() && (o.read_only || o.vector_bits >= 0))
    throw UsageError("--read-only and --vector go with --pipes");
  if (o.dpf && o.run) throw UsageError("--dpf and --run exclude each other");
  if (!o.ash.empty() && (file_set || o.run || o.dpf || !o.pipes.empty() || o.llvm))
    throw UsageError("--ash takes no FILE, --run, --dpf, --pipes or --tier");
  if (o.trusted && o.ash.empty()) throw UsageError("--trusted goes with --ash");
  if (o.harden && (o.llvm || !o.pipes.empty()))
    throw UsageError("--harden excludes --tier llvm and --pipes (the fast tier blinds constants)");
  if (o.dpf && (!o.pipes.empty() || o.llvm)) throw UsageError("--dpf excludes --pipes and --tier");
  if (o.llvm && o.target != kHostTarget)
    throw UsageError(fmt::format("--tier llvm compiles for this {} host only, not --target {}",
                                 target_name(kHostTarget), target_name(o.target)));
  if (listing_only) o.assembly = false;
  if (asm_only) o.listing = false;
  if (quiet) o.listing = o.assembly = false;
  return o;
}

// --pipes: the library pipes, composed and compiled; the dump of the generated function.
int dump_pipes(const Options& o) {
  pipes::PipeList pl;
  std::string_view list = o.pipes;
  while (!list.empty()) {
    size_t comma = list.find(',');
    std::string_view name = list.substr(0, comma);
    if (name.empty()) throw UsageError(fmt::format("--pipes {}: an empty pipe name", o.pipes));
    pipes::library::add(pl, name);
    list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
  }
  pipes::CompileOptions options;
  options.vector_bits = o.vector_bits;
  options.codegen.target = o.target;
  options.codegen.line_table = o.lines;
  pipes::CompiledPipes c = pipes::compile(
      pl, o.read_only ? pipes::Direction::ReadOnly : pipes::Direction::Write, options);
  fmt::print("; pipes {} ({})\n", o.pipes, o.read_only ? "read-only" : "write");
  std::string plan = c.plan();
  for (size_t at = 0; at < plan.size();) {
    size_t end = plan.find('\n', at);
    fmt::print(";   {}\n", plan.substr(at, end - at));
    at = end + 1;
  }
  const pipes::PipeCost& cost = c.cost();
  fmt::print("; main loop: {} vcode instructions per {} bytes ({})\n", cost.insns_per_iteration,
             cost.bytes_per_iteration,
             cost.vector_bits ? fmt::format("{}-bit vectors", cost.vector_bits) : "scalar");
  if (o.listing || o.assembly) dump(c.module(), c.code(), o, "pipes");
  return 0;
}

// --ash: an example handler installed for a testbed's server environment; the dump of the
// sandboxed function it became.
int dump_ash(const Options& o) {
  ash::examples::Testbed t(runtime::Mode::Scheduler, 9);
  std::unique_ptr<ash::Handler> h = ash::examples::make_example(
      o.ash, t, o.trusted ? ash::Sandbox::Trusted : ash::Sandbox::Checked, o.harden);
  fmt::print("; ash handler {} ({}{}), region 0x{:x}+{}, straight-line cost {} instructions\n",
             o.ash, o.trusted ? "trusted: no memory checks" : "verified and sandboxed",
             o.harden ? ", hardened" : "", ash::examples::Testbed::kApp,
             ash::examples::Testbed::kAppPages * runtime::kPageSize, h->static_cost());
  if (o.listing || o.assembly) dump(h->lowered(), h->code(), o, o.ash);
  return 0;
}

std::string read_input(const std::string& file) {
  std::ostringstream text;
  if (file.empty() || file == "-") {
    text << std::cin.rdbuf();
    if (std::cin.bad()) throw std::runtime_error("cannot read stdin");
    return text.str();
  }
  std::ifstream in(file, std::ios::binary);
  if (!in) throw std::runtime_error(fmt::format("cannot open {}: {}", file, std::strerror(errno)));
  text << in.rdbuf();
  if (in.bad()) throw std::runtime_error(fmt::format("cannot read {}", file));
  return text.str();
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  try {
    o = parse_options(argc, argv);
  } catch (const UsageError& e) {
    fmt::print(stderr, "vdump: {}\n{}", e.what(), kShortUsage);
    return 2;
  }
  std::string source = o.file.empty() || o.file == "-" ? "<stdin>" : o.file;
  try {
    if (!o.pipes.empty()) return dump_pipes(o);
    if (!o.ash.empty()) return dump_ash(o);
    std::string text = read_input(o.file);
    if (o.dpf) {
      std::vector<dpf::FilterLine> filters;
      dpf::Engine engine;
      try {
        filters = dpf::parse_filter_file(text);
        dpf::insert_all(engine, filters, !o.harden);
      } catch (const Error& e) {
        throw Error(fmt::format("{}: {}", source, e.what()));
      }
      fmt::print("; {}: {} filter{}, merged trie:\n{}\n", source, filters.size(),
                 filters.size() == 1 ? "" : "s", engine.dump_trie());
      if (o.listing || o.assembly) dump(engine.module(), engine.code(), o, source);
      return 0;
    }
    Module m;
    try {
      m = parse(text);
    } catch (const Error& e) {
      throw Error(fmt::format("{}: {}", source, e.what()));  // "FILE: line L, column C: ..."
    }
    std::optional<Call> call;
    if (o.run) call = prepare_call(m, o);
    CompileOptions copts;
    copts.perf_map = o.perf_map;
    copts.target = o.target;
    copts.line_table = o.lines;
    copts.blind_constants = o.harden;
    Code code;  // a listing of externs only parses, and has nothing to compile
    if (!m.functions().empty()) code = compile(m, copts);
    Code llvm;
    std::string ir;
    if (o.llvm && !m.functions().empty()) {
      CompileOptions lopts = copts;
      lopts.tier = Tier::Llvm;
      lopts.llvm_opt_level = o.llvm_opt;
      llvm = compile(m, lopts);
      if (o.listing) ir = llvm_ir(m, o.llvm_opt);
    }
    if (o.listing || o.assembly) dump(m, code, o, source, o.llvm ? &llvm : nullptr, ir);
    std::fflush(stdout);
    return call ? run(m, o.llvm ? llvm : code, o, *call) : 0;
  } catch (const UsageError& e) {
    std::fflush(stdout);
    fmt::print(stderr, "vdump: {}\n{}", e.what(), kShortUsage);
    return 2;
  } catch (const Error& e) {
    std::fflush(stdout);
    fmt::print(stderr, "vdump: {}\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fflush(stdout);
    fmt::print(stderr, "vdump: {}\n", e.what());
    return 1;
  }
}
