// SPDX-License-Identifier: MIT
// Classic BPF (McCanne and Jacobson's BSD Packet Filter: the language libpcap compiles tcpdump
// expressions to, and Linux socket filters) compiled to machine code through the vcode builder.
//
//   std::vector<BpfInsn> prog = ...;          // e.g. libpcap's bpf_program::bf_insns
//   BpfFilter f = compile_bpf(prog);          // validates, then compiles
//   uint32_t snap = f(pkt, wirelen, caplen);  // 0: rejected; else the bytes to keep
//
// Semantics are libpcap's bpf_filter(): A and X start at 0; every packet load is checked
// against `caplen` and one past the end returns 0; `ld len` reads `wirelen`; division or modulo
// by X = 0 returns 0 (as the kernel does); a shift by X >= 32 gives 0. Scratch memory that may
// be read before it is written starts at 0. Backward `ja` (libpcap emits them for `protochain`
// only) is accepted as libpcap's userland interpreter accepts it, and bounded as libpcap >= 1.11
// bounds it: the packet is rejected when it would take more than kBpfMaxBackwardJumps of them.
//
// A program is validated from its instructions alone, as the kernel's bpf_validate does:
// 1..kBpfMaxInsns instructions, known opcodes, scratch indexes below kBpfMemWords, shifts by a
// constant below 32, no division by a constant 0, every jump inside the program (no `ja` to
// itself), and the last instruction a `ret`. Anything else is an exojit::Error naming the
// instruction. The generated code never reads outside [pkt, pkt + caplen).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace exojit::vcode {
class Code;
class Module;
}  // namespace exojit::vcode

namespace exojit::dpf {

// One instruction, laid out as libpcap's `struct bpf_insn` and Linux's `struct sock_filter`
// (so a bpf_program's instructions can be passed as they are).
struct BpfInsn {
  uint16_t code;
  uint8_t jt;
  uint8_t jf;
  uint32_t k;
  friend bool operator==(const BpfInsn&, const BpfInsn&) = default;
};
static_assert(sizeof(BpfInsn) == 8, "BpfInsn must keep the classic BPF layout");

inline constexpr size_t kBpfMaxInsns = 65536;  // the kernel takes 4096; libpcap emits more
inline constexpr unsigned kBpfMemWords = 16;
inline constexpr unsigned kBpfMaxBackwardJumps = 64;  // libpcap's MAX_BACKWARD_JUMPS

// Throws exojit::Error ("bpf: instruction 3 `ldh [x + 14]`: ...") unless the program is valid.
void validate_bpf(std::span<const BpfInsn> program);

// One instruction as libpcap's bpf_dump prints it, e.g. "jeq #0x800 jt 2 jf 5" (`pc` is its
// index, for the jump targets); a whole program, one numbered line per instruction.
std::string bpf_image(const BpfInsn& insn, size_t pc);
std::string bpf_image(std::span<const BpfInsn> program);

// A validated program compiled to machine code; owns the code (move-only).
// A program from a party the kernel does not trust (the default) is compiled hardened: its
// constants blinded and every packet load's offset masked by the bounds checks before it, so
// that a mispredicted check reads the packet's first bytes (README "Threat model").
struct BpfCompileOptions {
  bool trusted = false;
};

class BpfFilter {
 public:
  using Fn = uint32_t(const uint8_t* pkt, uint64_t wirelen, uint64_t caplen);

  BpfFilter(BpfFilter&&) noexcept;
  BpfFilter& operator=(BpfFilter&&) noexcept;
  ~BpfFilter();

  // The program's return value: 0 rejects; otherwise the snapshot length (libpcap's convention).
  uint32_t operator()(const uint8_t* pkt, uint64_t wirelen, uint64_t caplen) const {
    return fn_(pkt, wirelen, caplen);
  }
  uint32_t operator()(const uint8_t* pkt, uint64_t len) const { return fn_(pkt, len, len); }

  Fn* function() const { return fn_; }
  std::span<const BpfInsn> program() const;
  const vcode::Module& module() const;  // the vcode function `bpf_filter`, for listings
  const vcode::Code& code() const;

 private:
  friend BpfFilter compile_bpf(std::span<const BpfInsn> program, BpfCompileOptions options);
  struct Impl;
  explicit BpfFilter(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  Fn* fn_ = nullptr;
};

// Validates and compiles; throws exojit::Error on an invalid program.
BpfFilter compile_bpf(std::span<const BpfInsn> program, BpfCompileOptions options = {});
inline BpfFilter compile_bpf(const BpfInsn* insns, size_t count, BpfCompileOptions options = {}) {
  return compile_bpf(std::span<const BpfInsn>(insns, count), options);
}

}  // namespace exojit::dpf
