// SPDX-License-Identifier: MIT
// The pipes example of README.md, verbatim between the markers, checked.
#include <exojit/pipes.h>
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

namespace {

TEST(Readme, PipesExample) {
  std::vector<uint8_t> in(1501), out(1501);
  for (size_t i = 0; i < in.size(); ++i) in[i] = uint8_t(i * 7);
  uint8_t* dst = out.data();
  const uint8_t* src = in.data();
  size_t len = in.size();
  // --- README
  using namespace exojit::pipes;

  PipeList pl;
  int cksum = pl.add("cksum", 32, kCommutative | kNonModifying, [](PipeBody& p) {
    Reg acc = p.persistent(Type::U32, "acc");  // survives iterations and calls
    p.cksum(acc, acc, p.input());              // any vcode instruction on the input word
  });
  pl.add("bswap32", 32, kCommutative, [](PipeBody& p) { p.bswap(p.input(), p.input()); });

  CompiledPipes ilp = compile(pl, Direction::Write);  // or Direction::ReadOnly
  ilp.set(cksum, "acc", 0);                           // export
  ilp(dst, src, len);                                 // any length, any alignment
  uint16_t sum = library::internet_checksum(uint32_t(ilp.get(cksum, "acc")));  // import
  // --- end
  std::vector<uint8_t> want(in);
  reference::bswap32(want.data(), len);
  EXPECT_EQ(out, want);
  uint16_t rfc = reference::rfc1071(in.data(), len);
  uint8_t stored[2];
  std::memcpy(stored, &sum, 2);
  EXPECT_EQ(stored[0], rfc >> 8);
  EXPECT_EQ(stored[1], rfc & 0xff);
}

}  // namespace
