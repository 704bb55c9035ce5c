// SPDX-License-Identifier: MIT
// The LLVM tier as a Code (lifetime, symbols, options, errors) and tier-up: a function called
// from several threads while it moves from the fast tier to the LLVM tier gives the right result
// on every call, and the switch happens after the requested number of calls.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "examples/cksum.h"
#include "exojit/vcode.h"

namespace exojit::vcode {
namespace {

using CksumFn = uint16_t(const uint8_t*, uint64_t);

Module cksum_module() {
  Module m;
  examples::build_cksum(m);
  return m;
}

uint16_t cksum_c(const uint8_t* p, size_t n) {
  uint32_t s = 0;
  for (size_t i = 0; i + 1 < n; i += 2) s += uint32_t(p[i]) | uint32_t(p[i + 1]) << 8;
  if (n & 1) s += p[n - 1];
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return uint16_t(~s);
}

TEST(LlvmTier, CompilesCallsAndFrees) {
  Module m = cksum_module();
  std::vector<uint8_t> buf(1501);
  for (size_t i = 0; i < buf.size(); ++i) buf[i] = uint8_t(i * 37 + 1);
  for (int level = 0; level <= 3; ++level) {
    CompileOptions o;
    o.tier = Tier::Llvm;
    o.llvm_opt_level = level;
    Code code = compile(m, o);
    ASSERT_FALSE(code.empty());
    ASSERT_EQ(code.symbols().size(), 1u);
    EXPECT_GT(code.symbols()[0].size, 16u);  // the object file's symbol size
    auto fn = code.as<CksumFn>("cksum");
    for (size_t n : {size_t(0), size_t(1), size_t(2), size_t(1500), size_t(1501)})
      EXPECT_EQ(fn(buf.data(), n), cksum_c(buf.data(), n)) << "O" << level << " n " << n;
    // The machine code disassembles completely.
    EXPECT_GT(count_instructions(code.data() + code.symbols()[0].offset, code.symbols()[0].size),
              3u);
  }
  // Many compilations into the one JIT: each handle frees its own code.
  for (int i = 0; i < 50; ++i) {
    CompileOptions o;
    o.tier = Tier::Llvm;
    Code code = compile(m, o);
    EXPECT_EQ(code.as<CksumFn>()(buf.data(), 100), cksum_c(buf.data(), 100));
  }
  CompileOptions bad;
  bad.tier = Tier::Llvm;
  bad.llvm_opt_level = 7;
  EXPECT_THROW(compile(m, bad), Error);
  std::string ir = llvm_ir(m);
  EXPECT_NE(ir.find("define"), std::string::npos);
}

TEST(TierUp, SwitchesAfterNCallsWhileThreadsCall) {
  Tiered<CksumFn> cksum(cksum_module(), "cksum", {.after_calls = 2000});
  EXPECT_EQ(cksum.tier(), Tier::Fast);
  std::vector<uint8_t> buf(4096);
  for (size_t i = 0; i < buf.size(); ++i) buf[i] = uint8_t(i * 13 + 5);
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 3000; ++i) {
        size_t n = size_t((i * 7 + t) % 4096);
        if (cksum(buf.data(), n) != cksum_c(buf.data(), n)) wrong++;
      }
    });
  for (auto& th : threads) th.join();
  cksum.core().wait();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(cksum.core().calls(), 12000u);
  EXPECT_EQ(cksum.tier(), Tier::Llvm) << cksum.core().error();
  EXPECT_EQ(cksum(buf.data(), 4096), cksum_c(buf.data(), 4096));
}

TEST(TierUp, OnRequestOnlyAndErrors) {
  Tiered<CksumFn> cksum(cksum_module(), "cksum", {.after_calls = 0});
  std::vector<uint8_t> buf(64, 0xab);
  for (int i = 0; i < 100; ++i) cksum(buf.data(), 64);
  EXPECT_EQ(cksum.tier(), Tier::Fast);  // never by count
  cksum.core().tier_up();
  cksum.core().wait();
  EXPECT_EQ(cksum.tier(), Tier::Llvm);
  EXPECT_EQ(cksum(buf.data(), 64), cksum_c(buf.data(), 64));
  EXPECT_THROW(TieredCode(cksum_module(), "nope"), Error);
  EXPECT_THROW((Tiered<uint32_t(int)>(cksum_module(), "cksum")), Error);  // wrong C++ type
}

}  // namespace
}  // namespace exojit::vcode
