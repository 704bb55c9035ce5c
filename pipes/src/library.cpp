// SPDX-License-Identifier: MIT
// The library pipes (library.h), written as a user would write them.
#include "exojit/pipes/library.h"

#include <string>

#include "exojit/error.h"

namespace exojit::pipes::library {

int cksum(PipeList& pl) {
  return pl.add("cksum", 32, kCommutative | kNonModifying, [](PipeBody& p) {
    Reg acc = p.persistent(Type::U32, "acc");
    p.cksum(acc, acc, p.input());
  });
}

int bswap16(PipeList& pl) {
  return pl.add("bswap16", 16, kCommutative, [](PipeBody& p) { p.bswap(p.input(), p.input()); });
}

int bswap32(PipeList& pl) {
  return pl.add("bswap32", 32, kCommutative, [](PipeBody& p) { p.bswap(p.input(), p.input()); });
}

int cipher(PipeList& pl, uint32_t key) {
  if (key == 0) fail("cipher pipe: the key must not be 0 (xorshift would stay at 0)");
  return pl.add("cipher", 32, kPlain, [key](PipeBody& p) {
    Reg state = p.persistent(Type::U32, "state", key);
    Reg t = p.getreg(Type::U32);
    p.lsh(t, state, 13);  // xorshift32: the next key word
    p.xor_(state, state, t);
    p.rsh(t, state, 17);
    p.xor_(state, state, t);
    p.lsh(t, state, 5);
    p.xor_(state, state, t);
    p.xor_(p.input(), p.input(), state);
  });
}

int crc32c(PipeList& pl) {
  return pl.add("crc32c", 8, kNonModifying, [](PipeBody& p) {
    Reg crc = p.persistent(Type::U32, "crc", 0xffffffffu);
    p.crc32c(crc, crc, p.input());
  });
}

int copy(PipeList& pl) {
  return pl.add("copy", 64, kCommutative | kNonModifying, [](PipeBody&) {});
}

const std::vector<std::string_view>& names() {
  static const std::vector<std::string_view> all = {"cksum",  "bswap16", "bswap32",
                                                    "cipher", "crc32c",  "copy"};
  return all;
}

int add(PipeList& pl, std::string_view name) {
  if (name == "cksum") return cksum(pl);
  if (name == "bswap16") return bswap16(pl);
  if (name == "bswap32") return bswap32(pl);
  if (name == "cipher") return cipher(pl, kDemoKey);
  if (name == "crc32c") return crc32c(pl);
  if (name == "copy") return copy(pl);
  std::string known;
  for (std::string_view n : names()) known += (known.empty() ? "" : ", ") + std::string(n);
  fail("no library pipe '{}' (known: {})", name, known);
}

uint16_t internet_checksum(uint32_t acc) {
  uint32_t s = acc;
  while (s > 0xffff) s = (s & 0xffff) + (s >> 16);
  return uint16_t(~s);
}

}  // namespace exojit::pipes::library
