// SPDX-License-Identifier: MIT
// Thousands of random well-formed programs per run: the x86-64 back end (and, for every fifth,
// the LLVM tier at O0-O3) must agree with the interpreter on the result and on every byte of
// memory, and every program must print and parse back to the same listing.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstring>

#include "harness.h"
#include "random_program.h"

namespace exojit::vcode {
namespace {

constexpr uint64_t kPrograms = 3000;
constexpr uint64_t kLlvmEvery = 5;

// Memory equal but for the bits of NaNs (which interp.h leaves unspecified): every differing
// byte lies in a 4- or 8-byte window that holds a NaN in both buffers.
bool same_but_nans(const uint8_t* a, const uint8_t* b, size_t n) {
  auto nan_at = [n](const uint8_t* p, size_t at, size_t width) {
    if (at + width > n) return false;
    if (width == 8) {
      double d;
      std::memcpy(&d, p + at, 8);
      return std::isnan(d);
    }
    float f;
    std::memcpy(&f, p + at, 4);
    return std::isnan(f);
  };
  for (size_t i = 0; i < n; ++i) {
    if (a[i] == b[i]) continue;
    bool covered = false;
    for (size_t width : {size_t(8), size_t(4)})
      for (size_t back = 0; back < width && back <= i && !covered; ++back)
        covered = nan_at(a, i - back, width) && nan_at(b, i - back, width);
    if (!covered) return false;
  }
  return true;
}

void check_program(uint64_t seed) {
  Module m = test::RandomProgram(seed).build();
  std::string listing = print(m);
  Module reparsed = parse(listing, [](std::string_view name) -> void* {
    return name == "mix" ? reinterpret_cast<void*>(&test::random_program_mix) : nullptr;
  });
  ASSERT_EQ(listing, print(reparsed)) << "seed " << seed;

  CompileOptions options;  // odd seeds use the portable instruction sequences
  options.use_movbe = options.use_bmi2 = seed % 2 == 0;
  Code code = compile(m, options);
  Interpreter interp(m);
  interp.set_step_limit(10'000'000);
  alignas(64) std::array<uint8_t, test::kBufferBytes> a{}, b{};
  for (size_t i = 0; i < a.size(); ++i) a[i] = b[i] = uint8_t(seed * 131 + i * 29);
  std::mt19937_64 rng(seed);
  uint64_t x = rng(), y = uint32_t(rng()),
           z = std::bit_cast<uint64_t>(double(int(rng() % 2000)) / 8);
  uint64_t args_a[] = {uint64_t(reinterpret_cast<uintptr_t>(a.data())), x, y, z};
  uint64_t args_b[] = {uint64_t(reinterpret_cast<uintptr_t>(b.data())), x, y, z};
  uint64_t want = interp.call("main", args_a);
  uint64_t got = test::call_jit(code, "main", args_b);
  ASSERT_EQ(want, got) << "seed " << seed << "\n" << listing;
  ASSERT_EQ(0, std::memcmp(a.data(), b.data(), a.size())) << "memory differs, seed " << seed << "\n"
                                                          << listing;
  // Constant blinding (a fresh key each time) changes the code, never the results.
  options.blind_constants = true;
  Code blinded = compile(m, options);
  std::array<uint8_t, test::kBufferBytes> d{};
  for (size_t i = 0; i < d.size(); ++i) d[i] = uint8_t(seed * 131 + i * 29);
  uint64_t args_d[] = {uint64_t(reinterpret_cast<uintptr_t>(d.data())), x, y, z};
  ASSERT_EQ(want, test::call_jit(blinded, "main", args_d)) << "blinded, seed " << seed << "\n"
                                                           << listing;
  ASSERT_EQ(0, std::memcmp(a.data(), d.data(), a.size()))
      << "blinded: memory differs, seed " << seed << "\n"
      << listing;
  if (seed % kLlvmEvery || !llvm_tier_available()) return;
  // The LLVM tier too (its compile costs milliseconds: every kLlvmEvery-th program).
  CompileOptions llvm;
  llvm.tier = Tier::Llvm;
  llvm.llvm_opt_level = int(seed / kLlvmEvery % 4);  // O0..O3
  Code optimized = compile(m, llvm);
  std::array<uint8_t, test::kBufferBytes> c{};
  for (size_t i = 0; i < c.size(); ++i) c[i] = uint8_t(seed * 131 + i * 29);
  uint64_t args_c[] = {uint64_t(reinterpret_cast<uintptr_t>(c.data())), x, y, z};
  ASSERT_EQ(want, test::call_jit(optimized, "main", args_c))
      << "LLVM tier O" << llvm.llvm_opt_level << ", seed " << seed << "\n"
      << listing;
  ASSERT_TRUE(same_but_nans(a.data(), c.data(), a.size()))
      << "LLVM tier: memory differs, seed " << seed << "\n"
      << listing;
}

TEST(RandomPrograms, BackEndAgreesWithInterpreter) {
  for (uint64_t seed = 1; seed <= kPrograms; ++seed) {
    check_program(seed);
    if (HasFatalFailure()) return;
  }
}

}  // namespace
}  // namespace exojit::vcode
