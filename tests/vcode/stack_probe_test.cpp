// SPDX-License-Identifier: MIT
// Stack probes (vcode/src/stack_probe_p.h): a frame larger than a page touches the stack a page
// at a time as the prologue allocates it, so that it cannot jump over the guard page below a
// stack into the mapping beyond (stack clash). Checked by running large frames on a stack of our
// own with a guard page and a "victim" mapping right below it (the probed frame must fault on
// the guard, the victim untouched; in a death test, its process must die of SIGSEGV); by running
// frames around and beyond a page and the largest frame against the interpreter; and by comparing
// the code of small frames with the code the back end emits with probing off (byte for byte the
// same).
#include <gtest/gtest.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "exojit/vcode.h"
#include "random_program.h"
#include "src/backend_p.h"

#if EXOJIT_WITH_DISASM
#include "exojit/vcode/disasm.h"
#endif

namespace exojit::vcode {
namespace {

constexpr uint64_t kMarker = 0x5eedc1a5deadbeefull;  // what @f stores at its deepest byte

// @f(u64 x) -> u64 with a local of `bytes` (8-aligned): stores x at its deepest byte first, then
// x + 1 in its middle and x + 2 at its top, and returns the sum read back. `pushes`: a variable
// register too (callee-saved: the prologue pushes or stores it); `calls`: @f also calls a small
// @g (defined first: index 0), the sum kept in a variable across the call.
Module frame_module(uint32_t bytes, bool pushes = false, bool calls = false) {
  Module m;
  {
    Builder g(m, "g", Type::U64, {Type::U64});
    Reg r = g.getreg(Type::U64);
    g.add(r, g.arg(0), 3);
    g.ret(r);
    g.finish();
  }
  Builder b(m, "f", Type::U64, {Type::U64});
  Local l = b.local(bytes, 8);
  const int64_t mid = int64_t(bytes / 2) & ~7, top = int64_t(bytes - 8) & ~7;
  b.st(b.arg(0), l, 0);
  Reg t = b.getreg(Type::U64);
  Reg s = pushes || calls ? b.getreg(Type::U64, RegClass::Var) : b.getreg(Type::U64);
  b.add(t, b.arg(0), 1);
  b.st(t, l, mid);
  b.add(t, b.arg(0), 2);
  b.st(t, l, top);
  b.ld(s, l, 0);
  b.ld(t, l, mid);
  b.add(s, s, t);
  b.ld(t, l, top);
  b.add(s, s, t);
  if (calls) {
    b.call(t, 0, {s});
    b.add(s, s, t);
  }
  b.ret(s);
  b.finish();
  return m;
}

// The fast tier's code of `m` for `target`, with or without stack probes.
detail::MachineCode machine_code(const Module& m, Target target, bool probes) {
  if (target == Target::AArch64) return detail::emit_a64(m, nullptr, nullptr, probes);
  detail::X64Features features;
  features.stack_probes = probes;
  return detail::emit_x64(m, features, nullptr, nullptr);
}

bool same_code(const Module& m, Target target) {
  detail::MachineCode with = machine_code(m, target, true),
                      without = machine_code(m, target, false);
  return with.size == without.size &&
         std::memcmp(with.bytes.get(), without.bytes.get(), with.size) == 0;
}

// --- running a function on a stack of our own

size_t page_size() {
  return size_t(sysconf(_SC_PAGESIZE));
}

// One anonymous mapping: [victim | guard | stack]. The guard is PROT_NONE, one page (at least the
// 4 KiB probe interval); the victim, writable, starts all zero. Shared, so that a death test's
// parent sees what its child wrote.
class GuardedStack {
 public:
  GuardedStack(size_t victim, size_t stack) : victim_(victim), guard_(page_size()), stack_(stack) {
    total_ = victim_ + guard_ + stack_;
    void* p = mmap(nullptr, total_, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) throw Error("mmap failed");
    base_ = static_cast<uint8_t*>(p);
    if (mprotect(base_ + victim_, guard_, PROT_NONE) != 0) throw Error("mprotect failed");
  }
  ~GuardedStack() { munmap(base_, total_); }
  GuardedStack(const GuardedStack&) = delete;
  GuardedStack& operator=(const GuardedStack&) = delete;

  uint8_t* stack() const { return base_ + victim_ + guard_; }
  size_t stack_size() const { return stack_; }
  bool in_guard(uintptr_t a) const {
    return a >= uintptr_t(base_ + victim_) && a < uintptr_t(base_ + victim_ + guard_);
  }
  // Where in the victim the marker was written (-1: nowhere).
  int64_t marker_at() const {
    for (size_t i = 0; i + 8 <= victim_; i += 8) {
      uint64_t v;
      std::memcpy(&v, base_ + i, 8);
      if (v == kMarker) return int64_t(i);
    }
    return -1;
  }
  bool victim_untouched() const {
    for (size_t i = 0; i < victim_; ++i)
      if (base_[i]) return false;
    return true;
  }

 private:
  uint8_t* base_ = nullptr;
  size_t victim_, guard_, stack_, total_ = 0;
};

using Fn = uint64_t (*)(uint64_t);
sigjmp_buf g_fault_jump;
volatile uintptr_t g_fault_address;

// Calls fn(arg) with the stack pointer at the top of `s`'s stack, and puts it back. A few
// instructions rather than makecontext/swapcontext, which AddressSanitizer warns about: only
// the generated code runs on that stack.
uint64_t call_on(const GuardedStack& s, Fn fn, uint64_t arg) {
  void* top = s.stack() + s.stack_size();  // 16-byte aligned
#if defined(__x86_64__)
  uint64_t result;
  asm volatile(
      "mov %%rsp, %%rbx\n\t"
      "mov %[top], %%rsp\n\t"
      "call *%[fn]\n\t"
      "mov %%rbx, %%rsp"
      : "=a"(result), "+D"(arg)
      : [fn] "r"(fn), [top] "r"(top)
      : "rbx", "rcx", "rdx", "rsi", "r8", "r9", "r10", "r11", "xmm0", "xmm1", "xmm2", "xmm3",
        "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14",
        "xmm15", "memory", "cc");
  return result;
#elif defined(__aarch64__)
  register uint64_t x0 asm("x0") = arg;
  asm volatile(
      "mov x19, sp\n\t"
      "mov sp, %[top]\n\t"
      "blr %[fn]\n\t"
      "mov sp, x19"
      : "+r"(x0)
      : [fn] "r"(fn), [top] "r"(top)
      : "x1", "x2", "x3", "x4", "x5", "x6", "x7", "x8", "x9", "x10", "x11", "x12", "x13", "x14",
        "x15", "x16", "x17", "x18", "x19", "x30", "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7",
        "v8", "v9", "v10", "v11", "v12", "v13", "v14", "v15", "v16", "v17", "v18", "v19", "v20",
        "v21", "v22", "v23", "v24", "v25", "v26", "v27", "v28", "v29", "v30", "v31", "memory",
        "cc");
  return x0;
#else
#error "a host target vcode has no back end for"
#endif
}

void on_fault(int, siginfo_t* info, void*) {
  g_fault_address = uintptr_t(info->si_addr);
  siglongjmp(g_fault_jump, 1);
}

struct Outcome {
  bool faulted = false;
  uintptr_t fault_address = 0;
  uint64_t result = 0;
};

// call_on() in this process, a SIGSEGV caught (on an alternate signal stack: the stack that
// faulted is no use) with its address; the function's stack is then abandoned. In-process,
// because fork() hangs under qemu-user, where the AArch64 code runs.
Outcome run_on(const GuardedStack& s, Fn fn, uint64_t arg) {
  std::vector<uint8_t> alternate(256u << 10);
  stack_t ss{}, old_ss{};
  ss.ss_sp = alternate.data();
  ss.ss_size = alternate.size();
  struct sigaction sa {};
  struct sigaction old_sa {};
  sa.sa_sigaction = on_fault;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  if (sigaltstack(&ss, &old_ss) != 0 || sigaction(SIGSEGV, &sa, &old_sa) != 0)
    throw Error("cannot catch SIGSEGV");
  Outcome o;
  g_fault_address = 0;
  if (sigsetjmp(g_fault_jump, 1) == 0)
    o.result = call_on(s, fn, arg);
  else
    o.faulted = true;
  o.fault_address = g_fault_address;
  sigaction(SIGSEGV, &old_sa, nullptr);
  sigaltstack(&old_ss, nullptr);
  return o;
}

// A 16 KiB stack, the guard, and 2 MiB of victim below: each frame below is larger than the
// stack and its guard, so without probes its deepest local lands in the victim.
constexpr size_t kVictim = 2u << 20, kSmallStack = 16u << 10;
// 22 KiB: probes one after the other; 64 KiB and 1 MiB: the probe loop.
constexpr uint32_t kJumpingFrames[] = {22u << 10, 64u << 10, 1u << 20};

// The demonstration that the test can fail: with probing off, the frame jumps the guard, and
// @f's first store lands in the victim (then returns as if nothing happened).
TEST(StackProbe, WithoutProbesALargeFrameWritesBeyondTheGuard) {
  for (uint32_t bytes : kJumpingFrames) {
    SCOPED_TRACE(bytes);
    Module m = frame_module(bytes);
    Code code = detail::install(m, machine_code(m, kHostTarget, false), CompileOptions{});
    GuardedStack s(kVictim, kSmallStack);
    Outcome o = run_on(s, code.as<uint64_t(uint64_t)>("f"), kMarker);
    EXPECT_FALSE(o.faulted) << std::hex << o.fault_address;
    EXPECT_EQ(o.result, 3 * kMarker + 3);
    EXPECT_GE(s.marker_at(), 0) << "the unprobed frame did not reach the victim";
  }
}

// With probes (the default), the same frames fault on the guard page itself, the victim
// untouched.
TEST(StackProbe, ALargeFrameFaultsOnTheGuardInsteadOfWritingBeyond) {
  for (uint32_t bytes : kJumpingFrames)
    for (bool pushes : {false, true}) {
      SCOPED_TRACE(testing::Message() << bytes << " bytes, pushes " << pushes);
      Module m = frame_module(bytes, pushes);
      Code code = compile(m);
      GuardedStack s(kVictim, kSmallStack);
      Outcome o = run_on(s, code.as<uint64_t(uint64_t)>("f"), kMarker);
      EXPECT_TRUE(o.faulted) << "returned " << o.result;
      EXPECT_TRUE(s.in_guard(o.fault_address)) << std::hex << o.fault_address;
      EXPECT_TRUE(s.victim_untouched()) << "marker at " << s.marker_at();
    }
}

// The same as a death test: the process dies of SIGSEGV (no handler), the victim untouched.
// (Forks: not run under qemu-user, where fork() hangs; see ./exo cross.)
TEST(StackProbe, ALargeFrameKillsItsProcessOnTheGuard) {
  // The "fast" style (the default): the child is a fork that shares the victim with this process.
  GTEST_FLAG_SET(death_test_style, "fast");
  for (uint32_t bytes : {22u << 10, 1u << 20}) {
    SCOPED_TRACE(bytes);
    Module m = frame_module(bytes);
    Code code = compile(m);
    GuardedStack s(kVictim, kSmallStack);
    const Fn f = code.as<uint64_t(uint64_t)>("f");
    EXPECT_EXIT(
        {
          signal(SIGSEGV, SIG_DFL);  // the kernel's verdict, not a sanitizer's handler
          call_on(s, f, kMarker);
          _exit(0);
        },
        testing::KilledBySignal(SIGSEGV), "");
    EXPECT_TRUE(s.victim_untouched()) << "marker at " << s.marker_at();
  }
}

#if EXOJIT_WITH_DISASM  // built with LLVM
// The LLVM tier asks LLVM for its inline probes ("probe-stack"="inline-asm"; LLVM 14 has them for
// x86-64). At -O0, so that the locals stay in the frame.
TEST(StackProbe, TheLlvmTierFaultsOnTheGuardToo) {
  if (kHostTarget != Target::X86_64) GTEST_SKIP() << "LLVM 14 probes inline on x86-64 only";
  CompileOptions o;
  o.tier = Tier::Llvm;
  o.llvm_opt_level = 0;
  for (uint32_t bytes : kJumpingFrames) {
    SCOPED_TRACE(bytes);
    Module m = frame_module(bytes);
    Code code = compile(m, o);
    EXPECT_EQ(code.as<uint64_t(uint64_t)>("f")(1), Interpreter(m).run<uint64_t>("f", uint64_t(1)));
    GuardedStack s(kVictim, kSmallStack);
    Outcome o2 = run_on(s, code.as<uint64_t(uint64_t)>("f"), kMarker);
    EXPECT_TRUE(o2.faulted) << "returned " << o2.result;
    EXPECT_TRUE(s.in_guard(o2.fault_address)) << std::hex << o2.fault_address;
    EXPECT_TRUE(s.victim_untouched()) << "marker at " << s.marker_at();
  }
}
#endif

// Frames around a page, whole pages, the unrolled/loop boundary, and beyond: the same results
// as the interpreter, with and without a pushed register and a call. Run on the test's stack.
TEST(StackProbe, FramesAroundAndBeyondAPageRunAsInterpreted) {
  const uint32_t sizes[] = {8,        1016,         1024,         1032,           3064,
                            3072,     3080,         4000,         4080,           4088,
                            4089,     4096,         4104,         8184,           8192,
                            8200,     3 * 4096,     5 * 4096 - 8, 5 * 4096,       5 * 4096 + 3000,
                            6 * 4096, 6 * 4096 + 8, 64u << 10,    (1u << 20) + 24};
  for (uint32_t bytes : sizes)
    for (int variant = 0; variant < 4; ++variant) {
      SCOPED_TRACE(testing::Message() << bytes << " bytes, variant " << variant);
      Module m = frame_module(bytes, variant & 1, variant & 2);
      Interpreter interp(m);
      Code code = compile(m);
      for (uint64_t x : {uint64_t(0), uint64_t(41), kMarker}) {
        const uint64_t want = interp.run<uint64_t>("f", x);
        EXPECT_EQ(code.as<uint64_t(uint64_t)>("f")(x), want);
      }
    }
}

// @f(u64 x) -> u64 with the largest frame a function may have: locals of kMaxFrameBytes (each
// local's size plus its alignment; a local is at most 16 MiB). x is stored at the deepest byte,
// x + 1 at the top; returns their sum read back.
Module largest_frame_module(bool calls) {
  Module m;
  {
    Builder g(m, "g", Type::U64, {Type::U64});
    g.ret(g.arg(0));
    g.finish();
  }
  Builder b(m, "f", Type::U64, {Type::U64});
  constexpr uint32_t kLocal = 16u << 20;
  std::vector<Local> locals;
  uint64_t total = 0;
  while (total < kMaxFrameBytes) {
    const uint32_t size = uint32_t(std::min<uint64_t>(kLocal, kMaxFrameBytes - total - 8));
    locals.push_back(b.local(size, 8));
    total += size + 8;
  }
  Reg s = b.getreg(Type::U64, RegClass::Var), t = b.getreg(Type::U64);
  b.st(b.arg(0), locals.front(), 0);
  b.add(t, b.arg(0), 1);
  b.st(t, locals.back(), int64_t(kMaxFrameBytes - 3 * kLocal - 4 * 8 - 8));
  if (calls) b.call(t, 0, {b.arg(0)});
  b.ld(s, locals.front(), 0);
  b.ld(t, locals.back(), int64_t(kMaxFrameBytes - 3 * kLocal - 4 * 8 - 8));
  b.add(s, s, t);
  b.ret(s);
  b.finish();
  return m;
}

// The largest frame, on a stack of its size (the test's own is smaller).
TEST(StackProbe, TheLargestFrameRunsAsInterpreted) {
  for (bool calls : {false, true}) {
    Module m = largest_frame_module(calls);
    Interpreter interp(m);
    const uint64_t want = interp.run<uint64_t>("f", uint64_t(7));
    Code code = compile(m);
    GuardedStack s(page_size(), kMaxFrameBytes + (1u << 20));
    Outcome o = run_on(s, code.as<uint64_t(uint64_t)>("f"), 7);
    EXPECT_FALSE(o.faulted) << std::hex << o.fault_address;
    EXPECT_EQ(o.result, want);
    EXPECT_TRUE(s.victim_untouched());
  }
}

// Small frames keep exactly the code they had: the same bytes as with probing off, on both
// targets, for every random program and for frames up to the limit of each target (x86-64: the
// frame and a call's return address within a page; AArch64: within the page less the 1 KiB a
// caller may leave untouched, and no more than that at a call). Larger frames differ.
TEST(StackProbe, SmallFramesKeepTheirCode) {
  for (Target t : {Target::X86_64, Target::AArch64}) {
    SCOPED_TRACE(target_name(t));
    for (uint64_t seed = 1; seed <= 300; ++seed)
      ASSERT_TRUE(same_code(test::RandomProgram(seed).build(), t)) << "seed " << seed;
    for (uint32_t bytes = 8; bytes <= 3072; bytes += 8)
      ASSERT_TRUE(same_code(frame_module(bytes), t)) << bytes;
    for (uint32_t bytes : {8u, 512u, 800u})
      EXPECT_TRUE(same_code(frame_module(bytes, true, true), t)) << bytes;
    for (uint32_t bytes : {4089u, 4096u, 8192u, 1u << 20})
      EXPECT_FALSE(same_code(frame_module(bytes), t)) << bytes;
  }
  // x86-64: a leaf with no pushes has a frame of bytes rounded so that rsp stays 16-aligned
  // (rsp is 8 mod 16 at entry): 4088 bytes is the last unprobed frame.
  EXPECT_TRUE(same_code(frame_module(4088), Target::X86_64));
  EXPECT_FALSE(same_code(frame_module(4089), Target::X86_64));
  // AArch64: a leaf that saves nothing: 3072 bytes; one that calls: 1 KiB below its last store.
  EXPECT_TRUE(same_code(frame_module(3072), Target::AArch64));
  EXPECT_FALSE(same_code(frame_module(3073), Target::AArch64));
  EXPECT_FALSE(same_code(frame_module(2048, true, true), Target::AArch64));
  EXPECT_TRUE(same_code(frame_module(2048, true, true), Target::X86_64));
}

#if EXOJIT_WITH_DISASM
std::string text_of(const Module& m, Target t) {
  CompileOptions o;
  o.target = t;
  Code code = compile(m, o);
  std::string text;
  for (const Code::Symbol& s : code.symbols())
    if (s.name == "f") text = disassembly_text(code, s);
  EXPECT_EQ(text.find(".byte"), std::string::npos) << text;
  return text;
}

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// The probe sequences as emitted: a probe per page, unrolled for a few pages, a loop for more,
// the last partial page probed too.
TEST(StackProbe, X64ProbeSequences) {
  // 22 KiB (a frame of 22536 bytes): 4096 x 5, then the 2056 left.
  std::string text = text_of(frame_module(22u << 10), Target::X86_64);
  EXPECT_EQ(count(text, "or qword ptr [rsp], 0"), 6u) << text;
  EXPECT_EQ(count(text, "sub rsp, 4096"), 5u) << text;
  EXPECT_EQ(count(text, "sub rsp, 2056"), 1u) << text;
  // 1 MiB (1048584 bytes): one page, a loop over 255 more, the 8 bytes left.
  text = text_of(frame_module(1u << 20), Target::X86_64);
  EXPECT_EQ(count(text, "or qword ptr [rsp], 0"), 3u) << text;
  EXPECT_NE(text.find("lea r11, [rsp - 1044480]"), std::string::npos) << text;
  EXPECT_NE(text.find("cmp rsp, r11"), std::string::npos) << text;
  EXPECT_NE(text.find("jne"), std::string::npos) << text;
  EXPECT_NE(text.find("sub rsp, 8\n"), std::string::npos) << text;
  EXPECT_NE(text.find("add rsp, 1048584"), std::string::npos) << text;  // one add back
}

TEST(StackProbe, A64ProbeSequences) {
  // 22 KiB leaf, nothing saved: 3072 first (the caller may have left 1 KiB above), 4096 x 4,
  // then the 3072 left; a probe after each.
  std::string text = text_of(frame_module(22u << 10), Target::AArch64);
  EXPECT_EQ(count(text, "str xzr, [sp]"), 6u) << text;
  EXPECT_EQ(count(text, "sub sp, sp, #1, lsl #12"), 4u) << text;
  EXPECT_EQ(count(text, "sub sp, sp, #3072"), 2u) << text;
  // 1 MiB with a call (x30 saved, so the first step is a whole page): a loop.
  text = text_of(frame_module(1u << 20, false, true), Target::AArch64);
  EXPECT_NE(text.find("cmp sp, x17"), std::string::npos) << text;
  EXPECT_NE(text.find("b.ne"), std::string::npos) << text;
  EXPECT_GE(count(text, "str xzr, [sp]"), 3u) << text;
}
#endif

// The debug notes of a probe loop (the frame found from r11/x17 while sp moves) make valid
// call frame information.
TEST(StackProbe, LargeFramesHaveDebugInfo) {
  CompileOptions o;
  o.debug_info = kHostTarget == Target::X86_64 || kHostTarget == Target::AArch64;
  o.line_table = true;
  for (uint32_t bytes : {22u << 10, 1u << 20}) {
    Module m = frame_module(bytes, true, true);
    Code code = compile(m, o);
    Interpreter interp(m);
    EXPECT_EQ(code.as<uint64_t(uint64_t)>("f")(5), interp.run<uint64_t>("f", uint64_t(5)));
  }
}

}  // namespace
}  // namespace exojit::vcode
