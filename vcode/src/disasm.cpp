// SPDX-License-Identifier: MIT
// Disassembly through LLVM's C disassembler API (LLVMCreateDisasm).
#include "exojit/vcode/disasm.h"

#include <fmt/format.h>
#include <llvm-c/Disassembler.h>
#include <llvm-c/Target.h>

#include <memory>
#include <mutex>

#include "exojit/error.h"

namespace exojit::vcode {

namespace {

struct DisasmDeleter {
  void operator()(void* ctx) const { LLVMDisasmDispose(ctx); }
};
using DisasmContext = std::unique_ptr<void, DisasmDeleter>;

DisasmContext make_context(Target target) {
  static std::once_flag once;
  std::call_once(once, [] {
    LLVMInitializeX86TargetInfo();
    LLVMInitializeX86TargetMC();
    LLVMInitializeX86Disassembler();
    LLVMInitializeAArch64TargetInfo();
    LLVMInitializeAArch64TargetMC();
    LLVMInitializeAArch64Disassembler();
  });
  const char* triple =
      target == Target::AArch64 ? "aarch64-unknown-linux-gnu" : "x86_64-unknown-linux-gnu";
  // AArch64: the generic CPU lacks the optional CRC32 instructions the back end emits.
  void* ctx = target == Target::AArch64
                  ? LLVMCreateDisasmCPUFeatures(triple, "", "+v8.1a,+crc,+neon,+fp-armv8", nullptr,
                                                0, nullptr, nullptr)
                  : LLVMCreateDisasm(triple, nullptr, 0, nullptr, nullptr);
  if (!ctx) fail("disassembler: LLVM has no disassembler for {}", triple);
  if (target == Target::X86_64)
    LLVMSetDisasmOptions(ctx, LLVMDisassembler_Option_AsmPrinterVariant);  // Intel syntax
  return DisasmContext(ctx);
}

}  // namespace

std::vector<DisasmLine> disassemble(const uint8_t* code, size_t size, uint64_t address,
                                    Target target) {
  DisasmContext ctx = make_context(target);
  std::vector<DisasmLine> out;
  size_t pos = 0;
  char text[256];
  while (pos < size) {
    size_t n = LLVMDisasmInstruction(ctx.get(), const_cast<uint8_t*>(code + pos), size - pos,
                                     address + pos, text, sizeof text);
    DisasmLine line{address + pos, {}, {}};
    if (n == 0) {
      line.bytes.push_back(code[pos]);
      line.text = fmt::format(".byte {:#04x}", code[pos]);
      n = 1;
    } else {
      line.bytes.assign(code + pos, code + pos + n);
      std::string_view t(text);
      while (!t.empty() && (t.front() == ' ' || t.front() == '\t')) t.remove_prefix(1);
      line.text = std::string(t);
      for (char& c : line.text)
        if (c == '\t') c = ' ';
    }
    out.push_back(std::move(line));
    pos += n;
  }
  return out;
}

std::string disassembly_text(const Code& code, const Code::Symbol& symbol) {
  std::string s;
  const uint8_t* start = code.data() + symbol.offset;
  for (const DisasmLine& line :
       disassemble(start, symbol.size, reinterpret_cast<uintptr_t>(start), code.target())) {
    std::string bytes;
    for (uint8_t b : line.bytes) bytes += fmt::format("{:02x} ", b);
    s += fmt::format("  {:012x}:  {:<30} {}\n", line.address, bytes, line.text);
  }
  return s;
}

size_t count_instructions(const uint8_t* code, size_t size, Target target) {
  return disassemble(code, size, 0, target).size();
}

}  // namespace exojit::vcode
