// SPDX-License-Identifier: MIT
// The escape fuzzer's input format (fuzz_escape.cpp decodes it; fuzz_escape_main.cpp writes the
// seeds with the encoder below). An input is a little program for the handler builder:
//
//   header: region choice, budget choice, flags; with kFlagExtended, six more bytes: the
//           handler's limits (max_locals, max_insns choices), options (harden off, max_replies,
//           the local's size), the pipe lists (how many, which pipes) and the two messages'
//           sizes (at the boundaries: 0, 1, the reply buffer, the staging buffer, the largest)
//   ops:    one opcode byte and its operands each, up to kEnd
//   edits:  a count, then edits of the finished function's records (op, flags, operands,
//           constants, types, register slots, parameters, call arguments, labels, locals,
//           removed or swapped instructions)
//   rest:   the messages (split in up to three)
//
// Constants are a selector byte: a pool entry (addresses in, around and outside the region, the
// victim's pages, host canaries, physical memory, the extremes), a small multiple of 8, or eight
// raw bytes.
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

namespace exojit::ash::fuzz {

enum Opcode : uint8_t {
  kSet,      // reg, constant
  kAddImm,   // reg, constant: reg += constant
  kAlu,      // op, reg, reg
  kStore,    // width, form, base, constant displacement
  kLoad,     // width, form, base, constant displacement
  kIndexed,  // store?, width, base, constant displacement (the index register)
  kLoop,     // count, early back edge?, prefix and body lengths (their ops follow)
  kIf,       // reg, constant, body length (ops follow)
  kDivide,   // mod?, register or constant divisor
  kPrim,     // primitive selector, operands
  kLocal,    // store?, offset
  kAbortIf,  // constant
  kSpin,     // constant (a loop that may never end: the budget's)
  kPipe,     // pipe primitive selector, pipe list index, operands (consume, scan, reply_app...)
  kNumOps,
  kEnd = 0xff,
};

enum EditField : uint8_t {
  kEditOp,
  kEditFlags,
  kEditDst,
  kEditA,
  kEditB,
  kEditImm,
  kEditType,
  kEditRegSlot,
  kEditRegClass,
  kEditRegType,
  kEditParam,
  kEditCallArg,
  kEditLabels,
  kEditLocal,
  kEditRemove,
  kEditSwap,
  kEditSig,
  kEditPipeBody,  // a pipe body's records edited after PipeList::add (its parameter, registers)
  kNumEdits,
};

// Header flags.
inline constexpr uint8_t kFlagAbortAtEnd = 1, kFlagTrustedProbe = 2, kFlagExtended = 4;
// The extended header's options byte.
inline constexpr uint8_t kOptNoHarden = 1;

inline constexpr int kPoolSize = 16;
inline constexpr uint8_t kSmallBase = 16, kRawSelector = 48;

// Writes inputs in the format above (for seeds and regression cases).
struct Encoder {
  std::vector<uint8_t> bytes;

  Encoder(uint8_t region, uint8_t budget, uint8_t flags = 0) { bytes = {region, budget, flags}; }
  // The extended header (flags must have kFlagExtended): choices of fuzz_escape.cpp's tables.
  Encoder& extended(uint8_t locals, uint8_t insns, uint8_t options, uint8_t pipes, uint8_t msg_a,
                    uint8_t msg_b) {
    return b(locals).b(insns).b(options).b(pipes).b(msg_a).b(msg_b);
  }
  Encoder& b(uint8_t v) {
    bytes.push_back(v);
    return *this;
  }
  // A pool entry (index < kPoolSize).
  Encoder& pool(uint8_t index) { return b(index); }
  Encoder& small(int v8) { return b(uint8_t(kSmallBase + 16 + v8)); }  // v8 * 8, -16..15
  Encoder& raw(uint64_t v) {
    b(kRawSelector);
    for (int i = 0; i < 8; ++i) b(uint8_t(v >> (8 * i)));
    return *this;
  }
  Encoder& op(Opcode o) { return b(o); }
  Encoder& end_ops() { return b(kEnd); }
  Encoder& edits(uint8_t n) { return b(n); }
  Encoder& edit(EditField f, uint8_t index, uint8_t value) { return b(f).b(index).b(value); }
  Encoder& message(std::vector<uint8_t> m) {
    bytes.insert(bytes.end(), m.begin(), m.end());
    return *this;
  }
};

}  // namespace exojit::ash::fuzz
