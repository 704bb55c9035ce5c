// SPDX-License-Identifier: MIT
// The program the gdb and perf tests (gdb_backtrace.test, perf_annotate.test) look at.
//
//   debug_target gdb          compiles two functions with CompileOptions::debug_info and calls
//                             @outer(20), which calls @inner(21), which calls the C function
//                             exojit_debug_stop(42), where gdb stops; prints the result (85)
//   debug_target spin SECONDS compiles @spin with CompileOptions::jitdump and calls it for about
//                             SECONDS, for perf record
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "exojit/vcode.h"

extern "C" [[gnu::noinline]] uint64_t exojit_debug_stop(uint64_t x) {
  asm volatile("" ::: "memory");  // a real call, where gdb's breakpoint goes
  return x * 2;
}

namespace {

using namespace exojit::vcode;

constexpr std::string_view kCalls = R"(extern @exojit_debug_stop(u64) -> u64

func @outer(%n: u64 var) -> u64 {
  %r: u64 var
  add %n, %n, 1
  call %r, @inner(%n)
  ret %r
}

func @inner(%x: u64 var) -> u64 {
  %y: u64 var
  mul %x, %x, 2
  call %y, @exojit_debug_stop(%x)
  add %y, %y, 1
  ret %y
}
)";

// A loop of a few dependent operations: perf's samples land on its lines.
constexpr std::string_view kSpin = R"(func @spin(%n: u64 temp) -> u64 {
  %acc: u64 temp
  set %acc, 1
loop:
  beq %n, 0, done
  mul %acc, %acc, 6364136223846793005
  add %acc, %acc, 1442695040888963407
  xor %acc, %acc, %n
  sub %n, %n, 1
  jmp loop
done:
  ret %acc
}
)";

int gdb_mode() {
  Module m = parse(kCalls, [](std::string_view name) -> void* {
    return name == "exojit_debug_stop" ? reinterpret_cast<void*>(&exojit_debug_stop) : nullptr;
  });
  Code code = compile(m, {.debug_info = true});
  auto outer = code.as<uint64_t(uint64_t)>("outer");
  std::printf("outer(20) = %lu\n", static_cast<unsigned long>(outer(20)));
  return 0;
}

int spin_mode(double seconds) {
  Module m = parse(kSpin);
  Code code = compile(m, {.jitdump = true});
  auto spin = code.as<uint64_t(uint64_t)>("spin");
  auto start = std::chrono::steady_clock::now();
  uint64_t sum = 0, calls = 0;
  while (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() < seconds)
    sum += spin(1000000), ++calls;
  std::printf("spin: %lu calls (%lx)\n", static_cast<unsigned long>(calls),
              static_cast<unsigned long>(sum));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    if (argc == 2 && std::strcmp(argv[1], "gdb") == 0) return gdb_mode();
    if (argc == 3 && std::strcmp(argv[1], "spin") == 0) return spin_mode(std::atof(argv[2]));
  } catch (const exojit::Error& e) {
    std::fprintf(stderr, "debug_target: %s\n", e.what());
    return 1;
  }
  std::fprintf(stderr, "usage: debug_target gdb | spin SECONDS\n");
  return 2;
}
