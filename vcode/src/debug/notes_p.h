// SPDX-License-Identifier: MIT
// What a back end notes, while it emits, for debuggers and profilers (private header): where
// each IR record's machine code starts, and how each instruction that moves the stack pointer
// or saves a register changes the frame. compile() asks for notes only when a line table, GDB
// debug information or a perf jitdump is wanted (CompileOptions); then the back end calls
//
//   begin_function(offset)      at the function's first byte
//   record(offset, index)       before lowering record `index` of Function::code
//   sp(offset, delta)           after an instruction that moved sp down by delta (up: negative)
//   saved(offset, reg, at)      after an instruction that stored the caller's `reg` at [sp + at]
//   cfa_in(offset, reg, below)  after an instruction that set `reg` = sp - below: the frame is
//                               found from `reg` until the next sp() (a stack probe loop moves sp
//                               a page at a time; that sp() gives the loop's whole move)
//   epilogue(offset)            before an epilogue (the body's frame is remembered)
//   returned(offset)            after its return (the body's frame holds again)
//
// with `offset` the assembler's offset in the code section. From these, debug/ builds the line
// table (line_table.cpp) and the call frame information gdb unwinds with (dwarf.cpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace exojit::vcode::detail {

struct CodeNotes {
  struct Row {
    uint32_t offset;  // section offset where the record's machine code starts
    uint32_t record;  // index into Function::code
  };
  struct Frame {  // one change of the call frame, after the instruction ending at `offset`
    enum Kind : uint8_t { kSp, kSaved, kRemember, kRestore, kCfaIn };
    Kind kind;
    uint32_t offset;
    int32_t value;     // kSp: bytes sp moved down; kSaved: where, from sp; kCfaIn: below sp
    uint16_t reg = 0;  // kSaved, kCfaIn: the DWARF register number
  };
  struct Function {
    uint32_t begin = 0;  // section offset of the function's first byte
    std::vector<Row> rows;
    std::vector<Frame> frame;
  };
  std::vector<Function> functions;  // in the module's order

  void begin_function(size_t offset) { functions.push_back(Function{uint32_t(offset), {}, {}}); }
  void record(size_t offset, size_t index) {
    functions.back().rows.push_back(Row{uint32_t(offset), uint32_t(index)});
  }
  void sp(size_t offset, int32_t delta) { note(Frame::kSp, offset, delta, 0); }
  void saved(size_t offset, unsigned dwarf_reg, int32_t sp_offset) {
    note(Frame::kSaved, offset, sp_offset, dwarf_reg);
  }
  void cfa_in(size_t offset, unsigned dwarf_reg, int32_t below) {
    note(Frame::kCfaIn, offset, below, dwarf_reg);
  }
  void epilogue(size_t offset) { note(Frame::kRemember, offset, 0, 0); }
  void returned(size_t offset) { note(Frame::kRestore, offset, 0, 0); }

 private:
  void note(Frame::Kind k, size_t offset, int32_t value, unsigned reg) {
    functions.back().frame.push_back(Frame{k, uint32_t(offset), value, uint16_t(reg)});
  }
};

// DWARF register numbers (the psABIs' tables) of the registers the back ends save.
// x86-64: from asmjit's general-purpose register id (rax 0, rcx 1, rdx 2, rbx 3, rsp 4, rbp 5,
// rsi 6, rdi 7, r8-r15) to DWARF's (rax 0, rdx 1, rcx 2, rbx 3, rsi 4, rdi 5, rbp 6, rsp 7,
// r8-r15); the return address is column 16.
inline unsigned dwarf_x64_gp(unsigned asmjit_id) {
  static constexpr uint8_t kMap[8] = {0, 2, 1, 3, 7, 6, 4, 5};
  return asmjit_id < 8 ? kMap[asmjit_id] : asmjit_id;
}
inline constexpr unsigned kDwarfX64Sp = 7;
inline constexpr unsigned kDwarfX64ReturnAddress = 16;
// AArch64: x0-x30 are 0-30, sp 31, v0-v31 (and so d0-d31) 64-95; the return address is x30.
inline unsigned dwarf_a64_x(unsigned n) {
  return n;
}
inline unsigned dwarf_a64_d(unsigned n) {
  return 64 + n;
}
inline constexpr unsigned kDwarfA64Sp = 31;
inline constexpr unsigned kDwarfA64ReturnAddress = 30;

}  // namespace exojit::vcode::detail
