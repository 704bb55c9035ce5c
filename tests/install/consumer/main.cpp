// SPDX-License-Identifier: MIT
// Generates, compiles and calls a function using only the installed headers and library.
#include <exojit/pipes.h>
#include <exojit/vcode.h>

#include <cstdio>
#include <cstring>

int main() {
  using namespace exojit::vcode;
  Module m;
  Builder b(m, "twice_plus_one", Type::I64, {Type::I64});
  b.lsh(b.arg(0), b.arg(0), 1);
  b.add(b.arg(0), b.arg(0), 1);
  b.ret(b.arg(0));
  b.finish();
  Code code = compile(m);
  long r = long(code.as<int64_t(int64_t)>()(20));
  std::printf("twice_plus_one(20) = %ld\n", r);

  // A pipe list: copy + checksum of a message.
  exojit::pipes::PipeList pl;
  int cksum = exojit::pipes::library::cksum(pl);
  exojit::pipes::CompiledPipes ilp = exojit::pipes::compile(pl, exojit::pipes::Direction::Write);
  const char msg[] = "exojit pipes";
  char copy[sizeof msg] = {};
  ilp(copy, msg, sizeof msg);
  uint16_t sum = exojit::pipes::library::internet_checksum(uint32_t(ilp.get(cksum, "acc")));
  bool same = std::memcmp(copy, msg, sizeof msg) == 0;
  std::printf("pipes: copied %s, checksum %#06x\n", same ? "intact" : "CORRUPTED", sum);
  return r == 41 && same ? 0 : 1;
}
