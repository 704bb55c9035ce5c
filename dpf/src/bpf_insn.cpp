// SPDX-License-Identifier: MIT
// Classic BPF programs: validation (what the kernel's bpf_validate checks, from the instructions
// alone) and the bpf_dump text form. Kept apart from the JIT it protects.
#include <fmt/format.h>

#include "bpf_ops_p.h"
#include "exojit/dpf/bpf.h"
#include "exojit/error.h"

namespace exojit::dpf {

using namespace detail::bpf;

namespace {

// The mnemonic and operand of an instruction; empty mnemonic for an unknown opcode.
struct Image {
  std::string name, operand;
  bool jump = false;  // conditional: jt/jf follow
};

std::string_view alu_name(uint16_t o) {
  switch (o) {
    case kAdd:
      return "add";
    case kSub:
      return "sub";
    case kMul:
      return "mul";
    case kDiv:
      return "div";
    case kMod:
      return "mod";
    case kAnd:
      return "and";
    case kOr:
      return "or";
    case kXor:
      return "xor";
    case kLsh:
      return "lsh";
    case kRsh:
      return "rsh";
    default:
      return "";
  }
}

Image image(const BpfInsn& in, size_t pc) {
  const uint16_t c = in.code;
  const uint32_t k = in.k;
  std::string_view suffix = size(c) == kH ? "h" : size(c) == kB ? "b" : "";
  switch (c) {
    case kRet | kK:
      return {"ret", fmt::format("#{}", k)};
    case kRet | kRetA:
      return {"ret", "a"};
    case kLd | kW | kAbs:
    case kLd | kH | kAbs:
    case kLd | kB | kAbs:
      return {fmt::format("ld{}", suffix), fmt::format("[{}]", k)};
    case kLd | kW | kInd:
    case kLd | kH | kInd:
    case kLd | kB | kInd:
      return {fmt::format("ld{}", suffix), fmt::format("[x + {}]", k)};
    case kLd | kW | kLen:
      return {"ld", "#pktlen"};
    case kLdx | kW | kLen:
      return {"ldx", "#pktlen"};
    case kLd | kImm:
      return {"ld", fmt::format("#{:#x}", k)};
    case kLdx | kImm:
      return {"ldx", fmt::format("#{:#x}", k)};
    case kLdx | kMsh | kB:
      return {"ldxb", fmt::format("4*([{}]&0xf)", k)};
    case kLd | kMem:
      return {"ld", fmt::format("M[{}]", k)};
    case kLdx | kMem:
      return {"ldx", fmt::format("M[{}]", k)};
    case kSt:
      return {"st", fmt::format("M[{}]", k)};
    case kStx:
      return {"stx", fmt::format("M[{}]", k)};
    case kJmp | kJa:
      return {"ja", fmt::format("{}", ja_target(in, pc))};
    case kAlu | kNeg:
      return {"neg", ""};
    case kMisc | kTax:
      return {"tax", ""};
    case kMisc | kTxa:
      return {"txa", ""};
    default:
      break;
  }
  if (cls(c) == kJmp && (c & ~uint16_t(0xf8)) == kJmp) {
    std::string_view name = op(c) == kJeq    ? "jeq"
                            : op(c) == kJgt  ? "jgt"
                            : op(c) == kJge  ? "jge"
                            : op(c) == kJset ? "jset"
                                             : "";
    if (!name.empty())
      return {std::string(name), src(c) == kX ? "x" : fmt::format("#{:#x}", k), true};
  }
  if (cls(c) == kAlu && (c & ~uint16_t(0xf8)) == kAlu && op(c) != kNeg) {
    std::string_view name = alu_name(op(c));
    if (!name.empty()) {
      bool bits = op(c) == kAnd || op(c) == kOr || op(c) == kXor;  // masks in hex, as bpf_dump
      return {std::string(name), src(c) == kX ? "x"
                                 : bits       ? fmt::format("#{:#x}", k)
                                              : fmt::format("#{}", k)};
    }
  }
  return {};
}

}  // namespace

std::string bpf_image(const BpfInsn& in, size_t pc) {
  Image im = image(in, pc);
  if (im.name.empty()) return fmt::format("unknown opcode {:#x}", in.code);
  std::string out = im.name;
  if (!im.operand.empty()) out += " " + im.operand;
  if (im.jump) out += fmt::format(" jt {} jf {}", pc + 1 + in.jt, pc + 1 + in.jf);
  return out;
}

std::string bpf_image(std::span<const BpfInsn> program) {
  std::string out;
  for (size_t pc = 0; pc < program.size(); ++pc)
    out += fmt::format("({:03}) {}\n", pc, bpf_image(program[pc], pc));
  return out;
}

void validate_bpf(std::span<const BpfInsn> p) {
  if (p.empty()) fail("bpf: empty program");
  if (p.size() > kBpfMaxInsns) fail("bpf: {} instructions (at most {})", p.size(), kBpfMaxInsns);
  const size_t n = p.size();
  for (size_t pc = 0; pc < n; ++pc) {
    const BpfInsn& in = p[pc];
    auto bad = [&](std::string_view why) {
      fail("bpf: instruction {} `{}`: {}", pc, bpf_image(in, pc), why);
    };
    if (image(in, pc).name.empty()) bad("unknown opcode");
    const uint16_t c = in.code;
    switch (cls(c)) {
      case kLd:
      case kLdx:
        if (mode(c) == kMem && in.k >= kBpfMemWords) bad("no such scratch memory word");
        break;
      case kSt:
      case kStx:
        if (in.k >= kBpfMemWords) bad("no such scratch memory word");
        break;
      case kAlu:
        if (src(c) == kK && (op(c) == kDiv || op(c) == kMod) && in.k == 0)
          bad("division by the constant 0");
        if (src(c) == kK && (op(c) == kLsh || op(c) == kRsh) && in.k >= 32)
          bad("shift by 32 bits or more");
        break;
      case kJmp:
        if (op(c) == kJa) {
          int64_t to = ja_target(in, pc);
          if (to < 0 || to >= int64_t(n)) bad("jumps outside the program");
          if (to == int64_t(pc)) bad("jumps to itself");
        } else if (pc + 1 + in.jt >= n || pc + 1 + in.jf >= n) {
          bad("jumps outside the program");
        }
        break;
      default:
        break;
    }
  }
  if (cls(p[n - 1].code) != kRet)
    fail("bpf: the last instruction `{}` is not a ret", bpf_image(p[n - 1], n - 1));
}

}  // namespace exojit::dpf
