// SPDX-License-Identifier: MIT
// compile(): runs a back end (or the LLVM tier) and installs the result in executable memory
// owned by a Code handle.
#include "exojit/vcode/code.h"

#include <asmjit/core.h>
#include <unistd.h>

#include <bit>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <optional>

#include "backend_p.h"
#include "debug/code_debug_p.h"
#include "exojit/vcode/text.h"
#include "exojit/vcode/verify.h"

namespace exojit::vcode {

namespace {

bool env_flag(const char* name) {
  const char* v = std::getenv(name);
  return v && *v && std::strcmp(v, "0") != 0;
}

// One process-wide allocator. Dual mapping: each block is mapped twice, read+write for copying
// the code in and read+execute for running it, so no page is writable and executable at once.
// EXOJIT_NO_DUAL_MAPPING=1 is for user-mode emulators (qemu-aarch64 runs the AArch64 tests): they
// do not see code written through the second mapping and would run stale translations of freed
// code, so the pages are then mapped read+write+execute instead (no W^X).
asmjit::JitAllocator& allocator() {
  static asmjit::JitAllocator* instance = [] {
    asmjit::JitAllocator::CreateParams params{};
    if (!env_flag("EXOJIT_NO_DUAL_MAPPING"))
      params.options = asmjit::JitAllocatorOptions::kUseDualMapping;
    return new asmjit::JitAllocator(&params);
  }();
  return *instance;
}

bool perf_map_from_env() {
  static const bool on = env_flag("EXOJIT_PERF_MAP");
  return on;
}

// The optional x86-64 instructions this CPU has and the options allow.
detail::X64Features x64_features(const CompileOptions& o) {
  const auto& cpu = asmjit::CpuInfo::host().features().x86();
  const bool avx = o.use_avx && cpu.hasAVX();
  detail::X64Features f;
  f.movbe = o.use_movbe && cpu.hasMOVBE();
  f.bmi2 = o.use_bmi2 && cpu.hasBMI2();
  f.avx = avx;
  f.avx2 = avx && cpu.hasAVX2();
  f.sse41 = cpu.hasSSSE3() && cpu.hasSSE4_1();
  f.sse42 = o.use_sse42 && cpu.hasSSE4_2();
  return f;
}

void write_perf_map(const uint8_t* base, const std::vector<Code::Symbol>& symbols) {
  static std::mutex lock;
  std::lock_guard<std::mutex> guard(lock);
  std::string path = fmt::format("/tmp/perf-{}.map", getpid());
  FILE* f = std::fopen(path.c_str(), "a");
  if (!f) return;  // profiling aid only; never fail a compile for it
  for (const Code::Symbol& s : symbols)
    fmt::print(f, "{:x} {:x} vcode:{}\n", reinterpret_cast<uintptr_t>(base) + s.offset, s.size,
               s.name);
  std::fclose(f);
}

}  // namespace

Code::Code(Code&& o) noexcept
    : base_(std::exchange(o.base_, nullptr)),
      size_(o.size_),
      target_(o.target_),
      symbols_(std::move(o.symbols_)),
      owner_(std::move(o.owner_)),
      debug_(std::move(o.debug_)) {}

Code& Code::operator=(Code&& o) noexcept {
  if (this != &o) {
    release();
    base_ = std::exchange(o.base_, nullptr);
    size_ = o.size_;
    symbols_ = std::move(o.symbols_);
    target_ = o.target_;
    owner_ = std::move(o.owner_);
    debug_ = std::move(o.debug_);
  }
  return *this;
}

Code::~Code() {
  release();
}

// Host code lives in the JIT allocator's executable memory; another machine's code in a plain
// heap block.
void Code::release() {
  debug_.reset();  // the debugger lets go of the code first
  if (!base_) return;
  if (owner_)  // the LLVM tier's code, or code in private pages for gdb: its owner frees it
    owner_.reset();
  else if (runnable())
    allocator().release(base_);
  else
    delete[] base_;
  base_ = nullptr;
}

void Code::not_runnable() const {
  fail("Code: this is {} code, which cannot run on this {} host (disassemble it instead)",
       target_name(target_), target_name(kHostTarget));
}

std::string_view target_name(Target t) {
  return t == Target::AArch64 ? "aarch64" : "x86-64";
}

void* Code::entry() const {
  require_runnable();
  if (symbols_.empty()) fail("Code: no code");
  return const_cast<uint8_t*>(base_) + symbols_.front().offset;
}

const LineTable* Code::line_table() const {
  return debug_ && debug_->lines ? &*debug_->lines : nullptr;
}

const Code::Symbol& Code::find(std::string_view name) const {
  for (const Symbol& s : symbols_)
    if (s.name == name) return s;
  fail("Code: no function @{}", name);
}

bool Code::same_abi(const Signature& a, const Signature& b) {
  if (a.params.size() != b.params.size() || a.ret != b.ret) return false;
  for (size_t i = 0; i < a.params.size(); ++i) {
    Type x = a.params[i], y = b.params[i];
    // Pointers and 64-bit integers travel the same way.
    bool wide_x = x == Type::P || x == Type::U64 || x == Type::I64;
    bool wide_y = y == Type::P || y == Type::U64 || y == Type::I64;
    if (x != y && !(wide_x && wide_y)) return false;
  }
  return true;
}

void Code::signature_mismatch(const Symbol& s, const Signature& want) {
  auto text = [](const Signature& sig) {
    std::string t = "(";
    for (size_t i = 0; i < sig.params.size(); ++i)
      t += fmt::format("{}{}", i ? ", " : "", type_name(sig.params[i]));
    return t + fmt::format(") -> {}", type_name(sig.ret));
  };
  fail("Code::as: @{} is {}, but the C++ type asks for {}", s.name, text(s.sig), text(want));
}

uint64_t call_raw(const void* entry, const Signature& sig, const uint64_t* args) {
  uint64_t ia[kMaxIntArgs] = {};
  double fa[8] = {};
  size_t ni = 0, nf = 0;
  for (size_t k = 0; k < sig.params.size(); ++k) {
    Type t = sig.params[k];
    if (is_float(t)) {
      if (nf == std::size(fa)) fail("call_raw: more than {} float arguments", std::size(fa));
      fa[nf++] = std::bit_cast<double>(t == Type::F32 ? uint64_t(uint32_t(args[k])) : args[k]);
    } else {
      if (ni == std::size(ia)) fail("call_raw: more than {} integer arguments", std::size(ia));
      // Narrow values travel extended to 32 bits and zero above, as the back end keeps them.
      uint64_t v = uint64_t(normalize_imm(t, int64_t(args[k])));
      ia[ni++] = type_bits(t) < 64 ? uint64_t(uint32_t(v)) : v;
    }
  }
  if (is_float(sig.ret)) {
    using Fn = double (*)(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, double,
                          double, double, double, double, double, double, double);
    double r = reinterpret_cast<Fn>(const_cast<void*>(entry))(ia[0], ia[1], ia[2], ia[3], ia[4],
                                                              ia[5], fa[0], fa[1], fa[2], fa[3],
                                                              fa[4], fa[5], fa[6], fa[7]);
    uint64_t bits = std::bit_cast<uint64_t>(r);
    return sig.ret == Type::F32 ? uint64_t(uint32_t(bits)) : bits;
  }
  using Fn = uint64_t (*)(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, double,
                          double, double, double, double, double, double, double);
  uint64_t r = reinterpret_cast<Fn>(const_cast<void*>(entry))(ia[0], ia[1], ia[2], ia[3], ia[4],
                                                              ia[5], fa[0], fa[1], fa[2], fa[3],
                                                              fa[4], fa[5], fa[6], fa[7]);
  return sig.ret == Type::Void ? 0 : uint64_t(normalize_imm(sig.ret, int64_t(r)));
}

int vector_width(const CompileOptions& options) {
  if (options.target == Target::AArch64) return 128;  // NEON; no 256-bit registers
  const auto& x86 = asmjit::CpuInfo::host().features().x86();
  if (options.use_avx && x86.hasAVX() && x86.hasAVX2()) return 256;
  if (x86.hasSSSE3() && x86.hasSSE4_1()) return 128;
  return 0;
}

bool llvm_tier_available() {
#if EXOJIT_HAVE_LLVM
  return true;
#else
  return false;
#endif
}

std::string llvm_ir(const Module& m, int opt_level) {
#if EXOJIT_HAVE_LLVM
  return detail::llvm_ir_text(m, opt_level);
#else
  (void)m, (void)opt_level;
  fail("llvm_ir: exojit was built without LLVM (EXOJIT_WITH_LLVM=OFF)");
#endif
}

Code compile(const Module& m, const CompileOptions& options) {
  if (m.functions().empty()) fail("compile: the module has no functions");
  for (const auto& f : m.functions())
    if (!f->verified) verify(m, *f);  // never lower unchecked IR
  if (options.tier == Tier::Llvm) {
    if (options.blind_constants)
      fail(
          "compile: the LLVM tier does not blind constants (it folds `imm ^ key ^ key` back into "
          "imm); use the fast tier (Tier::Fast)");
    if (options.target != kHostTarget)
      fail("compile: the LLVM tier compiles for this {} host only", target_name(kHostTarget));
    if (options.llvm_opt_level < 0 || options.llvm_opt_level > 3)
      fail("compile: LLVM optimization level {} is not 0-3", options.llvm_opt_level);
#if !EXOJIT_HAVE_LLVM
    fail("compile: no LLVM tier: exojit was built without LLVM (EXOJIT_WITH_LLVM=OFF)");
#else
    const detail::DebugRequest debug = detail::debug_request(options);
    detail::LlvmCode llvm = detail::compile_llvm(m, options.llvm_opt_level, debug.gdb);
    Code code;
    code.base_ = llvm.base;
    code.size_ = llvm.size;
    code.symbols_ = std::move(llvm.symbols);
    code.owner_ = std::move(llvm.owner);
    if (debug.gdb || debug.jitdump)
      code.debug_ = detail::describe_llvm_code(debug, code.base_, code.symbols_,
                                               std::move(llvm.debug_objects));
    if (options.perf_map || perf_map_from_env()) write_perf_map(code.base_, code.symbols_);
    return code;
#endif
  }
  const detail::DebugRequest debug = detail::debug_request(options);
  std::optional<detail::CodeNotes> notes;
  if (debug.notes()) notes.emplace();
  detail::CodeNotes* notes_ptr = notes ? &*notes : nullptr;
  detail::BlindKey key{};
  if (options.blind_constants) key = detail::fresh_blind_key();
  const detail::BlindKey* blind = options.blind_constants ? &key : nullptr;
  detail::MachineCode machine = options.target == Target::AArch64
                                    ? detail::emit_a64(m, notes_ptr, blind)
                                    : detail::emit_x64(m, x64_features(options), notes_ptr, blind);
  Code code = detail::install(m, std::move(machine), options);
  if (notes)
    code.debug_ =
        detail::describe_code(debug, m, options.target, code.base_, code.symbols_, *notes);
  return code;
}

// Copies position-independent machine code into executable memory (or, for another machine,
// into a plain heap block) owned by a Code.
Code detail::install(const Module& m, MachineCode&& machine, const CompileOptions& options) {
  const size_t size = machine.size;
  const bool runnable = options.target == kHostTarget;
  const bool for_gdb = detail::debug_request(options).gdb;
  void* rx = nullptr;
  void* rw = nullptr;
  std::shared_ptr<void> owner;  // code in private pages, for gdb's breakpoints (debug/)
  if (!runnable) {
    rx = rw = new uint8_t[size];  // cross-JIT: bytes to look at, never to run
  } else if (for_gdb) {
    owner = detail::map_private_code(size);
    rx = rw = owner.get();
  } else if (allocator().alloc(&rx, &rw, size) != asmjit::kErrorOk) {
    fail("compile: cannot allocate {} bytes of executable memory", size);
  }
  std::memcpy(rw, machine.bytes.get(), size);
  if (owner) detail::seal_private_code(owner.get(), size);
  if (runnable) asmjit::VirtMem::flushInstructionCache(rx, size);

  Code code;
  code.target_ = options.target;
  code.base_ = static_cast<uint8_t*>(rx);
  code.size_ = size;
  code.owner_ = std::move(owner);
  code.symbols_.reserve(machine.functions.size());
  for (size_t i = 0; i < machine.functions.size(); ++i) {
    const detail::MachineCode::Range r = machine.functions[i];
    const Function& f = *m.functions()[i];
    code.symbols_.push_back(Code::Symbol{f.name, r.begin, r.end - r.begin, f.sig});
  }
  if (runnable && (options.perf_map || perf_map_from_env()))
    write_perf_map(code.base_, code.symbols_);
  return code;
}

}  // namespace exojit::vcode
