// SPDX-License-Identifier: MIT
// Compiling a module to machine code, and the RAII handle that owns the executable memory.
//
//   Code code = compile(m);
//   auto cksum = code.as<uint16_t(const uint8_t*, size_t)>("cksum");
//   uint16_t sum = cksum(buf, len);
//
// Code is written through a separate writable mapping of the same pages (dual mapping), so no
// page is ever writable and executable at once (W^X). Destroying the Code frees the code.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "exojit/error.h"
#include "exojit/vcode/ir.h"
#include "exojit/vcode/line_table.h"

namespace exojit::vcode {

namespace detail {
struct CodeDebug;
}

// The machine the code is generated for. Code for another machine than the host (cross-JIT) can
// be disassembled but not called.
enum class Target { X86_64, AArch64 };

#if defined(__aarch64__)
inline constexpr Target kHostTarget = Target::AArch64;
#else
inline constexpr Target kHostTarget = Target::X86_64;
#endif

std::string_view target_name(Target t);  // "x86-64", "aarch64"

// vcode's two run-time systems (tcc's idea, [EXOTOOLS02] 2.3): the fast tier emits machine code in
// one pass; the LLVM tier lowers to LLVM IR, optimizes it and compiles it with ORC, for better code
// at a much higher compile cost. Both have the interpreter's semantics.
enum class Tier { Fast, Llvm };

struct CompileOptions {
  Target target = kHostTarget;
  // Append the functions to /tmp/perf-<pid>.map so `perf report` names them. Also enabled by
  // the environment variable EXOJIT_PERF_MAP=1.
  bool perf_map = false;
  // Keep the line table: which vcode line each machine instruction came from
  // (Code::line_table(), `vdump --lines`). The fast tier only; implied by the next two.
  bool line_table = false;
  // Register the code with gdb through the GDB JIT interface: an in-memory ELF object with the
  // functions' symbols, DWARF lines into the listing (written to a file, see README "Debugging
  // generated code with gdb") and call frame information, unregistered when the Code dies. The
  // code then lives in private pages, written and then made executable (W^X still holds), so
  // that gdb can put breakpoints in it. Also enabled by EXOJIT_GDB=1. Host code only.
  bool debug_info = false;
  // Write perf's jitdump (jit-<pid>.dump in $JITDUMPDIR, else a new directory under
  // ~/.debug/jit/): the functions' code and vcode lines, for `perf inject --jit` (README
  // "Profiling generated code with perf"). Also enabled by EXOJIT_JITDUMP=1. Host code only.
  bool jitdump = false;
  // Optional x86-64 instructions, used when the CPU has them; turning them off selects the
  // portable sequences (mov+bswap instead of movbe, shifts through cl instead of shlx).
  bool use_movbe = true;
  bool use_bmi2 = true;
  // AVX/AVX2: VEX-encoded vector instructions and 256-bit vector registers. Off: 128-bit vectors
  // use SSE encodings and 256-bit ones are an error.
  bool use_avx = true;
  // SSE4.2's crc32 for crc32c; off: a bitwise loop.
  bool use_sse42 = true;
  // Constant blinding against JIT spraying (README "Hardening"): every client immediate that
  // does not fit in a signed byte (ALU operands, compares, set, returns, displacements) is
  // emitted as `imm ^ key` and recovered by one xor into a reserved register, with a fresh
  // random key (getrandom) per compilation. Results are the same. The fast tier only: the
  // LLVM tier would fold the xor back (an Error).
  bool blind_constants = false;
  Tier tier = Tier::Fast;
  // The LLVM tier's optimization level, 0-3 (IR pipeline and codegen), like -O0..-O3.
  int llvm_opt_level = 2;
};

// The optimized LLVM IR the LLVM tier compiles for `m` (what `vdump --tier llvm` prints).
std::string llvm_ir(const Module& m, int opt_level = 2);

// False when exojit was built without LLVM (EXOJIT_WITH_LLVM=OFF, e.g. the AArch64 cross build):
// then Tier::Llvm is an exojit::Error.
bool llvm_tier_available();

// The widest vector registers compile() accepts on this host with these options: 256 (AVX2),
// 128 (SSSE3 + SSE4.1), or 0; for AArch64 always 128 (NEON: 256-bit vector types are an error on
// that target). Code generators pick their vector width with it.
int vector_width(const CompileOptions& options = {});

class Code;
namespace detail {
struct MachineCode;
// Copies a back end's machine code into memory owned by a Code (code.cpp).
Code install(const Module& m, MachineCode&& machine, const CompileOptions& options);
}  // namespace detail

class Code {
 public:
  struct Symbol {
    std::string name;
    size_t offset;  // from the start of the code
    size_t size;
    Signature sig;
  };

  Code() = default;
  Code(Code&&) noexcept;
  Code& operator=(Code&&) noexcept;
  ~Code();

  bool empty() const { return !base_; }
  // The machine the code is for; runnable() is false for another machine's code (cross-JIT),
  // whose bytes are kept in ordinary memory: entry() and as() are then an Error.
  Target target() const { return target_; }
  bool runnable() const { return target_ == kHostTarget; }
  const uint8_t* data() const { return base_; }
  size_t size() const { return size_; }
  const std::vector<Symbol>& symbols() const { return symbols_; }
  // Which vcode line each machine instruction came from; null unless compiled on the fast tier
  // with line_table, debug_info or jitdump.
  const LineTable* line_table() const;

  // Entry address of a function (by name, or the only/first one).
  void* entry(std::string_view name) const {
    require_runnable();
    return const_cast<uint8_t*>(base_) + find(name).offset;
  }
  void* entry() const;

  // Typed entry point; the C++ signature must match the vcode one (else exojit::Error).
  template <typename F>
  F* as(std::string_view name) const {
    require_runnable();
    const Symbol& s = find(name);
    check_signature<F>(s);
    return reinterpret_cast<F*>(const_cast<uint8_t*>(base_) + s.offset);
  }
  template <typename F>
  F* as() const {
    require_runnable();
    if (symbols_.empty()) fail("Code::as: no code");
    check_signature<F>(symbols_.front());
    return reinterpret_cast<F*>(entry());
  }

  // Throws unless the C++ function type F has the ABI of `sig` (what as<F>() checks).
  template <typename F>
  static void check_signature_of(const Signature& sig, std::string_view name) {
    check_signature<F>(Symbol{std::string(name), 0, 0, sig});
  }

 private:
  friend Code compile(const Module& m, const CompileOptions& options);
  friend Code detail::install(const Module& m, detail::MachineCode&& machine,
                              const CompileOptions& options);
  const Symbol& find(std::string_view name) const;
  void require_runnable() const {
    if (!runnable()) not_runnable();
  }
  [[noreturn]] void not_runnable() const;
  void release();
  template <typename F>
  struct SigOf;
  template <typename R, typename... A>
  struct SigOf<R(A...)> {
    static Signature get() { return Signature{{type_of<A>()...}, type_of<R>()}; }
  };
  template <typename F>
  static void check_signature(const Symbol& s) {
    Signature want = SigOf<F>::get();
    if (!same_abi(want, s.sig)) signature_mismatch(s, want);
  }
  static bool same_abi(const Signature& a, const Signature& b);
  [[noreturn]] static void signature_mismatch(const Symbol& s, const Signature& want);

  uint8_t* base_ = nullptr;
  size_t size_ = 0;
  Target target_ = kHostTarget;
  std::vector<Symbol> symbols_;
  // Frees the code when it is not in the fast tier's allocator: the LLVM tier's, and code
  // compiled for gdb (in private pages); null otherwise.
  std::shared_ptr<void> owner_;
  // The line table and the debugger's registration (undone before the code is freed).
  std::shared_ptr<detail::CodeDebug> debug_;
};

// Compiles every function of the (verified) module in one pass over its IR.
Code compile(const Module& m, const CompileOptions& options = {});

// Calls native code at `entry` (a C function, or generated code) of signature `sig` with raw
// argument values, as the interpreter takes them (integers as 64-bit values, floats as the bits
// of a double, or of a float in the low half), and returns the raw result in the same form,
// normalized to the return type. Up to 6 integer/pointer and 8 float arguments (SysV x86-64:
// the two kinds travel in separate registers, so one prototype serves every signature).
uint64_t call_raw(const void* entry, const Signature& sig, const uint64_t* args);

}  // namespace exojit::vcode
